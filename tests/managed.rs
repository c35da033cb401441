//! Managed servers end to end: `chimera run` starts `chimera emulate` itself (the manifest's
//! `managed` command, `${CHIMERA_TEST_BIN}` expanded from its environment), restarts a server
//! that dies, pulls an absent model into a managed Ollama endpoint, refuses what it cannot
//! start with a clear message, and leaves no server process behind after success, failure or
//! Ctrl-C (every test's profile path is unique, so `/proc/*/cmdline` tells its servers apart).
//! Unix only (`tests/lib.rs` compiles the module on Unix).

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use serde_json::Value;

use crate::support::{Manifest, Run, pair_config, run_command, write_file};

const BIN: &str = env!("CARGO_BIN_EXE_chimera");
const CAMPAIGN: &str = "managed";

/// An emulator profile of one model, `m:latest`, loaded in 2 ms, whose output rate and length
/// are `$tail`.
macro_rules! one_model_profile {
    ($tail:literal) => {
        concat!(
            "seed: 3\nshared_gpu: false\nmodels:\n  - name: m:latest\n    load_ms: 2\n",
            "    prompt_tok_s: 1000000\n",
            $tail
        )
    };
}

/// Fast: a request takes about 20 ms.
const FAST: &str = one_model_profile!("    output_tok_s: 400\n    output_tokens: 8\n");

/// Slow enough to act mid-campaign: a request takes about 100 ms.
const SLOW: &str = one_model_profile!("    output_tok_s: 100\n    output_tokens: 10\n");

/// One test's directory: the emulator profile (its path marks the test's server processes),
/// the manifest and the data directory.
struct Case {
    dir: tempfile::TempDir,
    profile: PathBuf,
    ports: [u16; 2],
}

/// Settings of a test manifest.
struct Spec<'a> {
    kind: &'a str,
    tag: &'a str,
    reps: u32,
    /// The managed command's program; `None`: `${CHIMERA_TEST_BIN}` (chimera emulate).
    program: Option<&'a str>,
    /// The port the emulator of `emu_a` listens on; `None`: the endpoint's.
    listen: Option<u16>,
    /// A profile path for the emulator; `None`: the test's profile.
    profile: Option<&'a str>,
    startup_timeout_s: f64,
    /// A shell script run first: the command becomes `sh -c '<wrap>; exec "$0" "$@"'
    /// <program> emulate …` (chimera expands `${VAR}` in the script; `$0`, `$@` are the
    /// shell's).
    wrap: Option<&'a str>,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            kind: "emulator",
            tag: "m:latest",
            reps: 2,
            program: None,
            listen: None,
            profile: None,
            startup_timeout_s: 10.0,
            wrap: None,
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a: SocketAddr| a.port())
        .expect("a free port")
}

impl Case {
    fn new(profile: &str) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_file(dir.path(), "managed-test-profile.yaml", profile);
        let a = free_port();
        let mut b = free_port();
        while b == a {
            b = free_port();
        }
        Case {
            dir,
            profile: path,
            ports: [a, b],
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn campaign_dir(&self) -> PathBuf {
        self.data().join(CAMPAIGN)
    }

    /// Writes the manifest: two managed endpoints on their own resources, a chimera_homo
    /// scenario, 2 configurations × `reps` repetitions.
    /// A case on `profile` and its manifest of two default managed endpoints.
    fn with_default_manifest(profile: &str) -> (Case, PathBuf) {
        let case = Case::new(profile);
        let manifest = case.manifest(&Spec::default());
        (case, manifest)
    }

    fn manifest(&self, spec: &Spec) -> PathBuf {
        let endpoint = |id: &str, port: u16, gpu: u32| {
            let program = spec.program.unwrap_or("${CHIMERA_TEST_BIN}");
            let listen = spec.listen.filter(|_| id == "emu_a").unwrap_or(port);
            let profile = spec
                .profile
                .map_or_else(|| self.profile.display().to_string(), str::to_owned);
            let shell = spec.wrap.map_or_else(String::new, |script| {
                format!(
                    "sh, -c, '{}; exec \"$0\" \"$@\"', ",
                    script.replace('\'', "''")
                )
            });
            format!(
                "id: {id}\n  kind: {kind}\n  url: \"http://127.0.0.1:{port}\"\n  \
                 resource: \"local:gpu{gpu}\"\n  managed:\n    command: [{shell}\"{program}\", \
                 emulate, --listen, \"127.0.0.1:{listen}\", --profile, \"{profile}\"]\n    \
                 env: {{CHIMERA_LOG: warn}}\n    startup_timeout_s: {timeout}",
                kind = spec.kind,
                timeout = spec.startup_timeout_s,
            )
        };
        let text = Manifest::new("TR915", "managed servers")
            .endpoint(&endpoint("emu_a", self.ports[0], 0))
            .endpoint(&endpoint("emu_b", self.ports[1], 1))
            .model("m", spec.tag)
            .persona(
                "persona",
                "Summarise the benchmark data.",
                "Give three optimisation insights.",
            )
            .homo("homo", "chimera_homo", "emu_a", "emu_b")
            .repetitions(spec.reps)
            .setting("request_timeout_s: 10")
            .setting("retry: {retries: 3, backoff_ms: 50, max_backoff_ms: 200}")
            .setting("telemetry: {source: none}")
            .configurations(
                "persona",
                "m",
                &[
                    pair_config("c0", "homo", "num_ctx: 512"),
                    pair_config("c1", "homo", "num_ctx: 1024"),
                ],
            )
            .yaml();
        let path = self.dir.path().join("tr915.yaml");
        fs::write(&path, text).expect("manifest");
        path
    }

    fn command(&self, manifest: &Path, extra: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg(manifest)
            .arg("--data")
            .arg(self.data())
            .args(["--campaign", CAMPAIGN])
            .args(extra)
            .env("CHIMERA_TEST_BIN", BIN)
            .env_remove("CHIMERA_LOG")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, manifest: &Path, extra: &[&str]) -> Run {
        run_command(&mut self.command(manifest, extra))
    }

    /// Runs chimera, which must refuse with exit code 2 and say each of `wants`.
    fn refused(&self, manifest: &Path, wants: &[&str]) -> Run {
        let out = self.run(manifest, &[]);
        out.assert_refused(wants);
        out
    }

    /// Spawns `chimera run` on `manifest`, its stderr written to `run.log` (see `run_log`).
    fn spawn_logged(&self, manifest: &Path) -> Child {
        let stderr = fs::File::create(self.dir.path().join("run.log")).expect("log");
        self.command(manifest, &[])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn chimera run")
    }

    /// What the run spawned by `spawn_logged` wrote to stderr so far.
    fn run_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("run.log")).unwrap_or_default()
    }

    /// Waits up to 20 s for `n` committed cells in the journal.
    fn wait_for_commits(&self, n: usize) {
        let committed = wait_for(Duration::from_secs(20), || {
            self.events("cell_committed").len() >= n
        });
        assert!(committed, "no cell committed");
    }

    /// The pid of the one server process listening on `emu_a`'s port.
    fn server_of_emu_a(&self) -> u32 {
        let listen = format!("--listen 127.0.0.1:{} ", self.ports[0]);
        let victim: Vec<u32> = self
            .servers()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains(&listen))
            .map(|(pid, _)| pid)
            .collect();
        assert_eq!(victim.len(), 1, "{:?}", self.servers());
        victim[0]
    }

    /// Pids of live processes whose command line names this test's profile.
    fn servers(&self) -> Vec<(u32, String)> {
        procs_with(&self.profile.display().to_string())
    }

    fn assert_no_server_left(&self, when: &str) {
        let left = self.servers();
        assert!(left.is_empty(), "{when}: server processes left: {left:?}");
    }

    fn journal(&self) -> Vec<Value> {
        let text =
            fs::read_to_string(self.campaign_dir().join("journal.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn events(&self, name: &str) -> Vec<Value> {
        self.journal()
            .into_iter()
            .filter(|e| e["event"] == name)
            .collect()
    }

    /// The `host` column of the campaign's provenance table, asserted non-empty.
    fn provenance_hosts(&self) -> Vec<String> {
        let batches = chimera::table::read_parquet(&self.campaign_dir().join("provenance.parquet"))
            .expect("provenance");
        let hosts: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                let col = b
                    .column_by_name("host")
                    .expect("host column")
                    .as_string::<i32>();
                (0..col.len())
                    .map(|i| col.value(i).to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(!hosts.is_empty());
        hosts
    }

    /// Committed cell directories.
    fn committed(&self) -> usize {
        fs::read_dir(self.campaign_dir().join("cells")).map_or(0, |rd| {
            rd.filter_map(Result::ok)
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.len() == 32 && e.path().is_dir()
                })
                .count()
        })
    }
}

/// Live processes whose command line contains `needle`: (pid, command line).
fn procs_with(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.filter_map(Result::ok) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmd.contains(needle) {
            found.push((pid, cmd));
        }
    }
    found
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).expect("pid")).expect("pid");
    rustix::process::kill_process(pid, sig).expect("signal");
}

/// Polls until `cond` holds or `limit` passes.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("chimera run did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The `N cells:` count of the summary line.
fn total_cells(stderr: &str) -> usize {
    stderr
        .lines()
        .find_map(|l| {
            l.split_once(" cells: ")
                .and_then(|(n, _)| n.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no summary line in\n{stderr}"))
}

#[test]
fn two_managed_emulators_run_a_campaign_and_are_stopped() {
    let (case, manifest) = Case::with_default_manifest(FAST);
    let out = case.run(&manifest, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    case.assert_no_server_left("after success");
    let total = total_cells(&out.stderr);
    assert_eq!(case.committed(), total, "{}", out.stderr);
    assert!(
        !out.stderr.contains("managed-server restart"),
        "{}",
        out.stderr
    );
    let started = case.events("server_started");
    let stopped = case.events("server_stopped");
    assert_eq!(started.len(), 2, "{started:?}");
    assert_eq!(stopped.len(), 2, "{stopped:?}");
    for e in &stopped {
        // `chimera emulate` exits 130 on SIGTERM: stopped in order, not killed.
        assert_eq!(e["exit"], "exit code 130", "{e}");
    }
    let log = fs::read_to_string(case.campaign_dir().join("servers/emu_a.log")).expect("log");
    assert!(log.contains("TEST INSTRUMENT"), "{log}");
    assert!(log.contains("=== chimera"), "{log}");
    // Provenance says the server was managed.
    let hosts = case.provenance_hosts();
    assert!(
        hosts
            .iter()
            .all(|h| h == "127.0.0.1 (server managed by chimera)"),
        "{hosts:?}"
    );
    // Resume: nothing to run, no server started.
    let again = case.run(&manifest, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(case.events("server_started").len(), 2);
}

/// `kind: openai`: ready when `GET /health` answers 200 (the emulator speaks llama-server's
/// protocol too).
#[test]
fn a_managed_openai_endpoint_is_ready_on_health() {
    let case = Case::new(FAST);
    let manifest = case.manifest(&Spec {
        kind: "openai",
        reps: 1,
        ..Spec::default()
    });
    let out = case.run(&manifest, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(case.events("server_started").len(), 2);
    assert_eq!(case.committed(), total_cells(&out.stderr), "{}", out.stderr);
    case.assert_no_server_left("after an openai campaign");
}

#[test]
fn managed_servers_are_stopped_after_failures_and_errors() {
    // A model that fails every request (400 is not retried) with --fail-fast: exit 1.
    let case = Case::new(
        "
shared_gpu: false
models:
  - name: m:latest
    load_ms: 2
    output_tok_s: 400
    output_tokens: 4
    fault: {kind: status, code: 400, message: permanently broken}
",
    );
    let manifest = case.manifest(&Spec::default());
    let out = case.run(&manifest, &["--fail-fast"]);
    out.assert_says(1, "FAILED");
    case.assert_no_server_left("after --fail-fast");
    assert_eq!(case.events("server_stopped").len(), 2);

    // An error after the servers started (the model is not on them): exit 2.
    let case = Case::new(FAST);
    let manifest = case.manifest(&Spec {
        tag: "other:latest",
        ..Spec::default()
    });
    let out = case.run(&manifest, &[]);
    out.assert_says(2, "does not have model `other:latest`");
    assert_eq!(case.events("server_started").len(), 2);
    assert_eq!(case.events("server_stopped").len(), 2);
    case.assert_no_server_left("after an error");
}

#[test]
fn ctrl_c_stops_the_managed_servers() {
    let (case, manifest) = Case::with_default_manifest(SLOW);
    let mut child = case.spawn_logged(&manifest);
    case.wait_for_commits(1);
    assert_eq!(case.servers().len(), 2, "{:?}", case.servers());
    signal(child.id(), rustix::process::Signal::INT);
    let st = wait_exit(&mut child, Duration::from_secs(20));
    let log = case.run_log();
    assert_eq!(st.code(), Some(130), "{log}");
    case.assert_no_server_left("after Ctrl-C");
    assert_eq!(case.events("interrupted").len(), 1, "{log}");
    assert_eq!(case.events("server_stopped").len(), 2, "{log}");
}

/// A managed "Ollama" (the emulator, whose model store starts empty): the model is pulled at
/// start and again after the restart.
/// `kill -9` of `chimera run` leaves its servers running (nothing can stop them then); the next
/// run of the campaign finds them through the journal, stops them, starts its own and finishes.
#[test]
fn servers_left_by_a_killed_run_are_stopped_by_the_next_run() {
    let (case, manifest) = Case::with_default_manifest(SLOW);
    let mut child = case.spawn_logged(&manifest);
    case.wait_for_commits(1);
    signal(child.id(), rustix::process::Signal::KILL);
    let _ = wait_exit(&mut child, Duration::from_secs(10));
    let left = case.servers();
    assert_eq!(
        left.len(),
        2,
        "the killed run's servers outlive it: {left:?}"
    );

    let out = case.run(&manifest, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr
            .matches("left running by an interrupted run")
            .count(),
        2,
        "{}",
        out.stderr
    );
    for (pid, _) in &left {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.is_empty()),
            "leftover server {pid} stopped"
        );
    }
    case.assert_no_server_left("after the resumed run");
}

#[test]
fn a_managed_server_killed_mid_campaign_is_restarted() {
    let case = Case::new(&SLOW.replace("output_tok_s", "absent: true\n    output_tok_s"));
    let manifest = case.manifest(&Spec {
        kind: "ollama",
        reps: 3,
        ..Spec::default()
    });
    let mut child = case.spawn_logged(&manifest);
    case.wait_for_commits(2);
    let victim = case.server_of_emu_a();
    signal(victim, rustix::process::Signal::KILL);
    let st = wait_exit(&mut child, Duration::from_secs(60));
    let log = case.run_log();
    assert_eq!(st.code(), Some(0), "{log}");
    let restarted = case.events("server_restarted");
    assert_eq!(restarted.len(), 1, "{restarted:?}\n{log}");
    assert_eq!(restarted[0]["endpoint"], "emu_a");
    assert_eq!(restarted[0]["exit"], "signal 9 (SIGKILL)");
    assert!(log.contains("restarted managed server `emu_a`"), "{log}");
    assert!(log.contains(", 1 managed-server restart"), "{log}");
    assert_eq!(case.committed(), total_cells(&log), "{log}");
    case.assert_no_server_left("after a restart");
    let server_log =
        fs::read_to_string(case.campaign_dir().join("servers/emu_a.log")).expect("server log");
    assert!(
        server_log.contains("restarting after the server exited"),
        "{server_log}"
    );
    assert_eq!(
        log.matches("endpoint `emu_a`: pull m:latest: success")
            .count(),
        2,
        "pulled at start and after the restart:\n{log}"
    );
    assert_eq!(
        log.matches("endpoint `emu_b`: pull m:latest: success")
            .count(),
        1,
        "{log}"
    );
}

/// A dead server that cannot be started again (its profile is gone): the cells that need it
/// fail with `server_down` at once, the others are measured, and nothing is left behind.
#[test]
fn a_server_that_cannot_be_restarted_fails_only_its_cells() {
    let (case, manifest) = Case::with_default_manifest(SLOW);
    let mut child = case.spawn_logged(&manifest);
    case.wait_for_commits(1);
    let victim = case.server_of_emu_a();
    fs::remove_file(&case.profile).expect("remove the profile");
    signal(victim, rustix::process::Signal::KILL);
    let st = wait_exit(&mut child, Duration::from_secs(60));
    let log = case.run_log();
    assert_eq!(st.code(), Some(1), "{log}");
    let down: Vec<Value> = case
        .events("cell_failed")
        .into_iter()
        .filter(|e| e["kind"] == "server_down")
        .collect();
    assert!(!down.is_empty(), "{log}");
    let msg = down[0]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("its managed server died and could not be started again")
            && msg.contains("exited with exit code 2 before it answered"),
        "{msg}"
    );
    assert!(case.events("server_restarted").is_empty(), "{log}");
    // emu_b's isolated cells went on.
    assert!(log.contains("agent B"), "{log}");
    case.assert_no_server_left("after a failed restart");
}

#[test]
fn unset_variables_and_missing_programs_are_refused_before_anything_runs() {
    let case = Case::new(FAST);
    let manifest = case.manifest(&Spec {
        program: Some("${CHIMERA_TEST_SURELY_UNSET_VAR}"),
        ..Spec::default()
    });
    case.refused(
        &manifest,
        &[
            "endpoint `emu_a`",
            "`managed.command[0]`",
            "${CHIMERA_TEST_SURELY_UNSET_VAR}",
            "is not set",
            "export `CHIMERA_TEST_SURELY_UNSET_VAR`",
            "nothing was run",
        ],
    );
    assert_eq!(case.committed(), 0);
    assert!(case.events("server_started").is_empty());

    // The demo's variable names its installer.
    let manifest = case.manifest(&Spec {
        program: Some("${CHIMERA_LLAMA_SERVER}"),
        ..Spec::default()
    });
    run_command(
        case.command(&manifest, &[])
            .env_remove("CHIMERA_LLAMA_SERVER"),
    )
    .assert_refused(&["scripts/install-llama-server.sh --print", "make demo"]);

    // Missing programs: where to get them, and that running servers can be used instead.
    let empty = case.dir.path().join("empty-path");
    fs::create_dir_all(&empty).expect("dir");
    for (program, want) in [
        ("ollama", "https://ollama.com/download"),
        ("llama-server", "scripts/install-llama-server.sh"),
    ] {
        let manifest = case.manifest(&Spec {
            program: Some(program),
            ..Spec::default()
        });
        run_command(case.command(&manifest, &[]).env("PATH", &empty)).assert_refused(&[
            &format!("cannot start `{program}`"),
            "not found",
            want,
            "remove `managed`",
            "nothing was run",
        ]);
    }
    assert_eq!(case.committed(), 0);
    case.assert_no_server_left("after refusals");
}

/// A server that exits before it answers, and one that never answers where the endpoint
/// says: both fail with the last lines of their log.
#[test]
fn servers_that_never_answer_fail_with_their_log() {
    let case = Case::new(FAST);
    let missing = case.dir.path().join("no-such-profile.yaml");
    let missing = missing.display().to_string();
    let manifest = case.manifest(&Spec {
        profile: Some(&missing),
        ..Spec::default()
    });
    case.refused(
        &manifest,
        &[
            "endpoint `emu_a`",
            "exited with exit code 2 before it answered",
            "last lines of",
            "emu_a.log",
            "cannot read profile",
        ],
    );
    assert_eq!(case.committed(), 0);

    // Listening on another port than the endpoint's URL: a timeout, then stopped.
    let elsewhere = free_port();
    let manifest = case.manifest(&Spec {
        listen: Some(elsewhere),
        startup_timeout_s: 1.0,
        ..Spec::default()
    });
    let t0 = Instant::now();
    case.refused(
        &manifest,
        &[
            "did not answer within 1 s (last probe:",
            "startup_timeout_s",
            &format!("127.0.0.1:{elsewhere}"),
        ],
    );
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    case.assert_no_server_left("after a start-up timeout");
}

#[test]
fn a_port_in_use_is_refused() {
    let (case, manifest) = Case::with_default_manifest(FAST);
    let _squatter = TcpListener::bind(("127.0.0.1", case.ports[1])).expect("bind");
    case.refused(
        &manifest,
        &[
            "endpoint `emu_b`",
            &format!("something already answers at 127.0.0.1:{}", case.ports[1]),
            "port in use",
            "stop that server, or remove `managed`",
        ],
    );
    assert!(case.events("server_started").is_empty());
    case.assert_no_server_left("after the refusal");
}

/// An emulator profile whose one model is absent until pulled (shared with the pull unit test).
const ABSENT: &str = include_str!("fixtures/emulator/absent-model.yaml");

#[test]
fn a_managed_ollama_endpoint_pulls_an_absent_model() {
    let case = Case::new(ABSENT);
    let manifest = case.manifest(&Spec {
        kind: "ollama",
        ..Spec::default()
    });
    let out = case.run(&manifest, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for ep in ["emu_a", "emu_b"] {
        for want in ["pulling manifest", "pulling ", "success"] {
            let line = format!("endpoint `{ep}`: pull m:latest: {want}");
            assert!(out.stderr.contains(&line), "{line}:\n{}", out.stderr);
        }
    }
    assert_eq!(case.committed(), total_cells(&out.stderr), "{}", out.stderr);
    case.assert_no_server_left("after the pull campaign");

    // A model the registry does not have: the pull's error line, exit 2.
    let case = Case::new(ABSENT);
    let manifest = case.manifest(&Spec {
        kind: "ollama",
        tag: "nope:1b",
        ..Spec::default()
    });
    let out = case.run(&manifest, &[]);
    out.assert_says(
        2,
        "cannot pull model `nope:1b`: pull model manifest: file does not exist",
    );
    case.assert_no_server_left("after a failed pull");

    // Unmanaged endpoints are never pulled into: the campaign stops with the pull command.
    let case = Case::new(ABSENT);
    let manifest = case.manifest(&Spec {
        kind: "ollama",
        ..Spec::default()
    });
    let emu = Command::new(BIN)
        .args(["emulate", "--listen", "127.0.0.1:0", "--profile"])
        .arg(&case.profile)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("emulator");
    let mut emu = KillOnDrop(emu);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(emu.0.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("address");
    let addr = line.trim().to_owned();
    let text = fs::read_to_string(&manifest).expect("manifest");
    let plain: String = text
        .lines()
        .filter(|l| {
            !l.contains("managed:")
                && !l.contains("command:")
                && !l.contains("env:")
                && !l.contains("startup_timeout_s")
        })
        .map(|l| {
            l.replace(&format!("127.0.0.1:{}", case.ports[0]), &addr)
                .replace(&format!("127.0.0.1:{}", case.ports[1]), &addr)
                .replace("\"local:gpu1\"", "\"local:gpu0\"")
        })
        .map(|l| l + "\n")
        .collect();
    fs::write(&manifest, plain).expect("manifest");
    let out = case.run(&manifest, &[]);
    out.assert_says(2, "ollama pull m:latest");
    assert!(!out.stderr.contains("pulling manifest"), "{}", out.stderr);
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every file under `dir` (recursively) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read dir").filter_map(Result::ok) {
            let p = e.path();
            let t = e.file_type().expect("file type");
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() {
                let bytes = fs::read(&p).expect("read");
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(p);
                }
            }
        }
    }
    found
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// A managed command that takes a secret from chimera's environment (`${SECRET_TOKEN}`): the
/// server gets it, but no file chimera writes under the campaign (server logs, journal,
/// tables, campaign.json) and nothing it prints holds it; the logs are owner-only, and a log
/// left readable by others is tightened at the next start.
#[test]
fn an_expanded_secret_reaches_the_server_but_no_file_or_message() {
    let case = Case::new(FAST);
    let secret = format!("tok-{}-do-not-log", std::process::id());
    let seen = case.dir.path().join("seen-token");
    let script = format!("printf %s \"${{SECRET_TOKEN}}\" > {}", seen.display());
    let manifest = case.manifest(&Spec {
        wrap: Some(&script),
        ..Spec::default()
    });
    let run = |extra: &[&str]| {
        let out = case
            .command(&manifest, extra)
            .env("SECRET_TOKEN", &secret)
            .output()
            .expect("run chimera");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(!stderr.contains(&secret), "the secret on stderr:\n{stderr}");
        assert!(!stdout.contains(&secret), "the secret on stdout:\n{stdout}");
        stderr
    };
    let stderr = run(&[]);
    assert_eq!(case.committed(), total_cells(&stderr), "{stderr}");
    // The server really was given the value.
    assert_eq!(fs::read_to_string(&seen).expect("seen-token"), secret);
    let logs = [
        case.campaign_dir().join("servers/emu_a.log"),
        case.campaign_dir().join("servers/emu_b.log"),
    ];
    for log in &logs {
        let text = fs::read_to_string(log).expect("log");
        assert!(text.contains("printf %s \"${SECRET_TOKEN}\""), "{text}");
        assert_eq!(mode(log), 0o600, "{}", log.display());
    }
    // A log others can read (an older chimera's) is tightened when the server starts again.
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&logs[0], fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    run(&["--force", "all"]);
    assert_eq!(case.events("server_started").len(), 4);
    assert_eq!(mode(&logs[0]), 0o600);
    let leaks = files_containing(&case.campaign_dir(), &secret);
    assert!(leaks.is_empty(), "the secret is in {leaks:?}");
    // campaign.json keeps the manifest as written: the placeholder, not the value.
    let info = fs::read_to_string(case.campaign_dir().join("campaign.json")).expect("info");
    assert!(info.contains("${SECRET_TOKEN}"), "{info}");
    case.assert_no_server_left("after the runs");
}

/// A server that prints its secret and dies: chimera quotes its log with the value masked
/// (the log itself, the server's own words, stays owner-only).
#[test]
fn a_server_printing_its_secret_is_quoted_masked() {
    let case = Case::new(FAST);
    let secret = format!("tok-{}-do-not-log", std::process::id());
    let manifest = case.manifest(&Spec {
        wrap: Some("echo \"server says token=${SECRET_TOKEN}\"; exit 3"),
        ..Spec::default()
    });
    let out = run_command(case.command(&manifest, &[]).env("SECRET_TOKEN", &secret));
    out.assert_refused(&[
        "exited with exit code 3",
        "server says token=${SECRET_TOKEN}",
    ]);
    let stderr = out.stderr;
    assert!(!stderr.contains(&secret), "the secret on stderr:\n{stderr}");
    let log = case.campaign_dir().join("servers/emu_a.log");
    assert!(fs::read_to_string(&log).expect("log").contains(&secret));
    assert_eq!(mode(&log), 0o600);
    let journal = case.campaign_dir().join("journal.jsonl");
    let journal = fs::read_to_string(journal).unwrap_or_default();
    assert!(!journal.contains(&secret), "{journal}");
    case.assert_no_server_left("after the failure");
}

/// `chimera run --unmanaged`: a manifest whose endpoints are managed runs against servers
/// already listening at their URLs (emulators this test started), starts none of its own
/// (its command could not even run) and commits its cells; without the flag the same manifest
/// is refused because the ports are in use.
#[test]
fn unmanaged_runs_a_managed_manifest_against_running_servers() {
    let mut case = Case::new(FAST);
    let emu = crate::support::Emulator::start(case.dir.path(), "already-running", FAST, 2);
    case.ports = [emu.addrs[0].port(), emu.addrs[1].port()];
    let manifest = case.manifest(&Spec {
        program: Some("/nonexistent/never-started"),
        ..Spec::default()
    });
    case.refused(
        &manifest,
        &["port in use", "pass `--unmanaged` to `chimera run`"],
    );
    assert_eq!(case.committed(), 0);

    let out = case.run(&manifest, &["--unmanaged"]);
    out.assert_says(
        0,
        "--unmanaged: using the servers already listening for endpoints `emu_a`, `emu_b`",
    );
    let total = total_cells(&out.stderr);
    assert!(total > 0);
    assert_eq!(case.committed(), total, "{}", out.stderr);
    assert!(case.events("server_started").is_empty());
    assert!(case.events("server_stopped").is_empty());
    assert!(!case.campaign_dir().join("servers").exists());
    // Provenance does not claim chimera managed these servers.
    let hosts = case.provenance_hosts();
    assert!(hosts.iter().all(|h| !h.contains("managed")), "{hosts:?}");
    drop(emu);
}
