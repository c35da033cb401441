//! `command` workloads (docs/agent-protocol.md): agent programs run by a campaign. Bad
//! programs fail their own cell with a message that says why and leave no process behind,
//! and the campaign goes on.

use std::path::Path;

use chimera::table::{AgentsRow, CellsRow, RequestsRow, Row};

use crate::support::{Manifest, campaign, emulate, fast_profile, single_config};

/// Every row of `table` of a campaign's committed cells.
pub(crate) fn rows<R: Row>(campaign: &Path) -> Vec<R> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(campaign.join("cells")).expect("cells") {
        let cell = entry.expect("entry").path();
        if !cell.join("MANIFEST.json").exists() {
            continue;
        }
        let part = cell.join(format!("{}.parquet", R::TABLE));
        for b in chimera::table::read_parquet(&part).expect("part") {
            out.extend(R::from_batch(&b).expect("rows"));
        }
    }
    out
}

/// A valid record line.
const RECORD: &str = r#"{"stage":"single","sent_at_unix_ms":1700000000000,"e2e_ms":5,"ttft_ms":1,"output_tokens":3,"prompt_tokens":2}"#;

/// Live processes whose command line is exactly `argv`.
fn live(argv: &[&str]) -> Vec<u32> {
    let want = argv.join("\0") + "\0";
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        if cmdline == want.as_bytes() && !zombie {
            out.push(pid);
        }
    }
    out
}

/// `chimera run MANIFEST --data DATA --campaign NAME` in the background, output discarded.
fn run_in_background(manifest: &Path, data: &Path, campaign: &str) -> std::process::Child {
    run_cmd(manifest, data, campaign)
        .spawn()
        .expect("spawn chimera run")
}

fn run_cmd(manifest: &Path, data: &Path, campaign: &str) -> std::process::Command {
    let mut cmd = crate::support::chimera_cmd(&[
        "run",
        crate::support::s(manifest),
        "--data",
        crate::support::s(data),
        "--campaign",
        campaign,
    ]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// Waits (at most 60 s) until at least `n` live processes run `argv`; returns them.
async fn wait_live(argv: &[&str], n: usize, what: &str) -> Vec<u32> {
    let t0 = std::time::Instant::now();
    loop {
        let pids = live(argv);
        if pids.len() >= n {
            return pids;
        }
        assert!(t0.elapsed() < std::time::Duration::from_secs(60), "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Sends SIGINT (Ctrl-C) to `child` and waits for its exit code.
async fn interrupt(mut child: std::process::Child) -> Option<i32> {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait")
        .code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_agent_programs_fail_their_cell_and_leave_nothing_running() {
    let emu = emulate(&fast_profile(3), 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // Unique sleep lengths, so the orphan check finds exactly these processes.
    let scripts = [
        ("good", format!("echo '{RECORD}' >> \"$CHIMERA_RECORDS\"\n")),
        ("exit3", "echo 'model exploded' >&2\nexit 3\n".to_string()),
        (
            "garbage",
            "echo 'hello, not JSON' >> \"$CHIMERA_RECORDS\"\necho 'garbage on stdout'\n".into(),
        ),
        ("hang", "exec sleep 7771\n".into()),
        (
            "fork",
            format!("sleep 7772 &\necho '{RECORD}' >> \"$CHIMERA_RECORDS\"\n"),
        ),
        (
            "flood",
            format!("yes '{RECORD}' | head -c 1073741824 >> \"$CHIMERA_RECORDS\"\n"),
        ),
        ("silent", "exit 0\n".into()),
    ];
    let mut m =
        Manifest::new("TR950", "bad agent programs").emulator("emu", emu.addrs[0], "local:gpu0");
    m = m.model("gemma3", "gemma3:270m").single("emu");
    for (name, body) in &scripts {
        let path = d.join(format!("{name}.sh"));
        std::fs::write(&path, body).expect("script");
        let deadline = if *name == "hang" {
            ", deadline_s: 1"
        } else {
            ""
        };
        m = m.workload(&format!(
            "id: {name}\n  command: {{argv: [sh, \"{}\"]{deadline}}}\n  task: {{kind: single_inference, prompts: [hi]}}",
            path.display()
        ));
    }
    for (name, _) in &scripts {
        m = m.configurations(name, "gemma3", &[single_config(name, "num_ctx: 512")]);
    }
    let summary = campaign(d, "bad", &m.yaml(), false, None).await;

    // Failed cells are not committed (a later run retries them): their errors are in the
    // summary, by cell id.
    let plan = chimera::plan::build(&[d.join("bad.yaml")]).expect("plan");
    let cell_of = |config: &str| {
        plan.graph
            .node_weights()
            .find(|n| plan.config_of(n).is_some_and(|c| &*c.id == config))
            .map(|n| n.id.hex())
            .unwrap_or_else(|| panic!("no cell for {config}"))
    };
    let cells: Vec<CellsRow> = rows(&d.join("data/bad"));
    let good_id = cell_of("good");
    let good = cells
        .iter()
        .find(|c| c.cell_id == good_id)
        .unwrap_or_else(|| panic!("good cell committed: {:?}", summary.failed));
    assert!(good.ok(), "{:?}", good.error);
    for (config, wants) in [
        (
            "exit3",
            &["exited with status 3", "stderr: model exploded"][..],
        ),
        (
            "garbage",
            &["records line 1", "stdout: garbage on stdout"][..],
        ),
        ("hang", &["ran past its deadline of 1 s", "killed"][..]),
        ("fork", &["left 1 process(es) running"][..]),
        ("flood", &["more than `max_record_bytes` (67108864)"][..]),
        ("silent", &["wrote no record", "printed nothing"][..]),
    ] {
        let id = cell_of(config);
        assert!(cells.iter().all(|c| c.cell_id != id), "{config} must fail");
        let e = summary
            .failed
            .iter()
            .find(|(c, _)| *c == id)
            .map(|(_, e)| e.as_str())
            .unwrap_or_else(|| panic!("{config} failed: {:?}", summary.failed));
        assert!(
            e.starts_with("agent_program: agent program `sh`"),
            "{config}: {e}"
        );
        for w in wants {
            assert!(e.contains(w), "{config}: `{w}` not in {e}");
        }
    }
    assert_eq!(summary.failed.len(), 6, "{:?}", summary.failed);
    for orphan in [["sleep", "7771"], ["sleep", "7772"]] {
        assert_eq!(
            live(&orphan),
            Vec::<u32>::new(),
            "{orphan:?} outlived its cell"
        );
    }
    assert!(
        live(&["yes", RECORD]).is_empty(),
        "the flood's writer was killed"
    );

    // The good program's record and process, as the tables hold them.
    let good_id = &good_id;
    let agents: Vec<AgentsRow> = rows(&d.join("data/bad"));
    let a = agents
        .iter()
        .find(|a| &a.cell_id == good_id)
        .expect("agent row");
    assert_eq!(a.process.process_exit_code, Some(0));
    assert!(a.process.process_wall_ms.is_some_and(|w| w > 0.0));
    assert!(a.process.process_user_cpu_ms.is_some());
    assert_eq!(a.duration_ms, a.process.process_wall_ms.unwrap_or(-1.0));
    let requests: Vec<RequestsRow> = rows(&d.join("data/bad"));
    let r: Vec<&RequestsRow> = requests.iter().filter(|r| &r.cell_id == good_id).collect();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].output_tokens, Some(3));
    assert_eq!(r[0].timing_source.as_deref(), Some("agent program"));
    // A runaway records file is not left on disk.
    let big: Vec<_> = walk(d)
        .into_iter()
        .filter(|p| p.metadata().map(|m| m.len() > 1 << 20).unwrap_or(false))
        .collect();
    assert!(big.is_empty(), "{big:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_a_running_agent_program() {
    let emu = emulate(&fast_profile(4), 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let script = d.join("slow.sh");
    std::fs::write(&script, "sleep 7781 &\nexec sleep 7782\n").expect("script");
    let text = Manifest::new("TR951", "a program stopped by Ctrl-C")
        .emulator("emu", emu.addrs[0], "local:gpu0")
        .model("gemma3", "gemma3:270m")
        .single("emu")
        .workload(&format!(
            "id: slow\n  command: {{argv: [sh, \"{}\"]}}\n  task: {{kind: single_inference, prompts: [hi]}}",
            script.display()
        ))
        .configurations("slow", "gemma3", &[single_config("slow", "num_ctx: 512")])
        .yaml();
    let manifest = crate::support::write_file(d, "slow.yaml", &text);
    let child = run_in_background(&manifest, &d.join("data"), "slow");
    wait_live(&["sleep", "7782"], 1, "the agent program never started").await;
    let status = interrupt(child).await;
    assert_eq!(status, Some(130), "Ctrl-C exit code");
    for orphan in [["sleep", "7781"], ["sleep", "7782"]] {
        assert_eq!(
            live(&orphan),
            Vec::<u32>::new(),
            "{orphan:?} outlived Ctrl-C"
        );
    }
}

#[test]
fn an_unknown_placeholder_is_refused_when_the_manifest_is_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = Manifest::new("TR952", "a typo in a placeholder")
        .endpoint_at("emu", "emulator", "http://127.0.0.1:9", "local:gpu0")
        .model("gemma3", "gemma3:270m")
        .single("emu")
        .workload(
            "id: typo\n  command: {argv: [agent, \"--job={jobb}\"]}\n  task: {kind: single_inference, prompts: [hi]}",
        )
        .configurations("typo", "gemma3", &[single_config("typo", "num_ctx: 512")])
        .yaml();
    let path = crate::support::write_file(dir.path(), "typo.yaml", &text);
    crate::support::chimera(&["validate", crate::support::s(&path)]).assert_refused(&[
        "unknown placeholder in a command argument",
        "{jobb}",
        "workloads[0].command.argv[1]",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_agent_program_stops_the_run_before_any_cell() {
    let emu = emulate(&fast_profile(5), 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = Manifest::new("TR953", "an agent that was never built")
        .emulator("emu", emu.addrs[0], "local:gpu0")
        .model("gemma3", "gemma3:270m")
        .single("emu")
        .workload(
            "id: unbuilt\n  command: {argv: [\"{manifest_dir}/target/release/chimera-agent\", --job, \"{job}\"]}\n  task: {kind: single_inference, prompts: [hi]}",
        )
        .configurations("unbuilt", "gemma3", &[single_config("unbuilt", "num_ctx: 512")])
        .yaml();
    let err = crate::support::try_campaign(dir.path(), "unbuilt", &text, |_| {})
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("workload `unbuilt`"), "{err}");
    assert!(
        err.contains("target/release/chimera-agent` does not exist"),
        "{err}"
    );
    assert!(err.contains("make agents"), "{err}");
    assert!(err.contains("nothing was run"), "{err}");
}

/// The TR914 two-agent workflow manifest (shared emulated GPU) with its workload run by
/// `argv` (a YAML flow sequence).
fn with_command(text: &str, argv: &str) -> String {
    let marker = "  - id: workflow\n";
    assert!(text.contains(marker), "{text}");
    text.replacen(
        marker,
        &format!("{marker}    command: {{argv: {argv}}}\n"),
        1,
    )
}

/// (config, kind, repetition, agent, stage) of a request.
type RequestPlace = (String, String, u32, String, String);

/// (config, kind, repetition, agent, stage) → (prompt tokens, output tokens, response
/// characters) of every measured request of a campaign.
fn work_of(
    campaign: &Path,
) -> std::collections::BTreeMap<RequestPlace, (Option<u64>, Option<u64>, u64)> {
    let cells: Vec<CellsRow> = rows(campaign);
    let requests: Vec<RequestsRow> = rows(campaign);
    let mut out = std::collections::BTreeMap::new();
    for r in requests.iter().filter(|r| !r.warmup) {
        let c = cells
            .iter()
            .find(|c| c.cell_id == r.cell_id)
            .expect("its cell");
        out.insert(
            (
                c.config_id.clone().unwrap_or_default(),
                c.kind.name().to_owned(),
                c.repetition,
                r.agent.clone(),
                r.stage.name().to_owned(),
            ),
            (r.prompt_tokens, r.output_tokens, r.response_chars),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rust_reference_agent_commits_the_same_tables_as_in_process_agents() {
    let agent = crate::support::rust_agent();
    let emu = emulate(&crate::run_e2e::profile(), 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let text = crate::run_e2e::manifest(emu.addrs[0], emu.addrs[1]);
    let inproc = campaign(d, "inproc", &text, false, None).await;
    assert!(inproc.failed.is_empty(), "{:?}", inproc.failed);
    let cmd_text = with_command(
        &text,
        &format!("[\"{}\", --job, \"{{job}}\"]", agent.display()),
    );
    let cmd = campaign(d, "cmd", &cmd_text, false, None).await;
    assert!(cmd.failed.is_empty(), "{:?}", cmd.failed);

    // The same cells, agents and requests, doing the same work: the same prompts (token
    // counts) and the same outputs, request by request.
    let (a, b) = (d.join("data/inproc"), d.join("data/cmd"));
    assert_eq!(rows::<CellsRow>(&a).len(), rows::<CellsRow>(&b).len());
    assert_eq!(rows::<AgentsRow>(&a).len(), rows::<AgentsRow>(&b).len());
    let (wa, wb) = (work_of(&a), work_of(&b));
    assert_eq!(
        wa.len(),
        4 * 2 * 2 + 8 * 2,
        "4 concurrent × 2 agents + 8 isolated, × 2 requests"
    );
    assert_eq!(wa, wb);

    // The process columns are filled for every agent of the command campaign, and the
    // published efficiency hides what the true one shows on one shared GPU.
    let agents: Vec<AgentsRow> = rows(&b);
    for r in agents.iter().filter(|r| r.agent != "warmup") {
        assert_eq!(
            r.files_ingested,
            Some(6),
            "the agent reports its ingest: {r:?}"
        );
        let p = &r.process;
        assert_eq!(p.process_exit_code, Some(0), "{r:?}");
        assert!(p.process_peak_rss_mib.is_some_and(|m| m > 0.5), "{r:?}");
        assert!(
            p.process_user_cpu_ms.is_some() && p.process_sys_cpu_ms.is_some(),
            "{r:?}"
        );
        assert_eq!(Some(r.duration_ms), p.process_wall_ms);
    }
    let cells: Vec<CellsRow> = rows(&b);
    let concurrent: Vec<&CellsRow> = cells
        .iter()
        .filter(|c| c.kind == chimera::record::CellKind::Concurrent)
        .collect();
    assert_eq!(concurrent.len(), 4);
    for c in concurrent {
        let published = c.published_efficiency_pct.expect("published");
        let honest = c.true_efficiency_pct.expect("true");
        assert!(published > 90.0, "{}: published {published}", c.cell_id);
        assert!(
            (35.0..=65.0).contains(&honest),
            "{}: true {honest}",
            c.cell_id
        );
        let skew = c.start_skew_ms.expect("start skew of two programs");
        assert!((0.0..50.0).contains(&skew), "{}: skew {skew}", c.cell_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_reference_agent_sends_the_same_work() {
    let Some(python) = crate::support::python_agent() else {
        return;
    };
    let script = crate::support::root().join("agents/python/chimera_agent.py");
    let emu = emulate(&crate::run_e2e::profile(), 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // One configuration, one repetition: the Python interpreter's start-up makes it slower.
    let text: String = crate::run_e2e::manifest(emu.addrs[0], emu.addrs[1])
        .lines()
        .filter(|l| !l.contains("id: test103"))
        .map(|l| {
            if l.starts_with("repetitions:") {
                "repetitions: 1"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let inproc = campaign(d, "inproc", &text, false, None).await;
    assert!(inproc.failed.is_empty(), "{:?}", inproc.failed);
    let py_text = with_command(
        &text,
        &format!(
            "[\"{}\", \"{}\", --job, \"{{job}}\"]",
            python.display(),
            script.display()
        ),
    );
    let py = campaign(d, "py", &py_text, false, None).await;
    assert!(py.failed.is_empty(), "{:?}", py.failed);
    let (wa, wb) = (work_of(&d.join("data/inproc")), work_of(&d.join("data/py")));
    assert_eq!(
        wa.len(),
        8,
        "1 concurrent × 2 agents + 2 isolated, × 2 requests"
    );
    assert_eq!(wa, wb);
    let agents: Vec<AgentsRow> = rows(&d.join("data/py"));
    for r in agents.iter().filter(|r| r.agent != "warmup") {
        assert_eq!(
            r.files_ingested,
            Some(6),
            "the agent reports its ingest: {r:?}"
        );
        assert_eq!(r.process.process_exit_code, Some(0), "{r:?}");
        // An interpreter with pydantic and httpx loaded is tens of MB.
        assert!(
            r.process.process_peak_rss_mib.is_some_and(|m| m > 10.0),
            "{r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runtime_axis_runs_the_rust_agent_on_every_executor() {
    let agent = crate::support::rust_agent();
    let emu = emulate(&fast_profile(6), 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = Manifest::two_agent_workflow(
        "TR915",
        "TR115-shaped runtime axis",
        [emu.addrs[0], emu.addrs[1]],
        ["local:gpu0", "local:gpu0"],
        1,
    )
    .block(
        "name: runtimes\n  workload: workflow\n  scenario: chimera_homo\n  model: gemma3\n  language: rust\n  apply_to: [A, B]\n  options: {num_ctx: 512}\n  axes:\n    runtime: [tokio-default, tokio-current-thread, tokio-localset, smol, async-std, smol-1kb]\n  id_template: \"{runtime}\"",
    )
    .yaml();
    let text = with_command(
        &text,
        &format!("[\"{}\", --job, \"{{job}}\"]", agent.display()),
    );
    let summary = campaign(dir.path(), "rt", &text, false, None).await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let cells: Vec<CellsRow> = rows(&dir.path().join("data/rt"));
    let mut runtimes: Vec<String> = cells
        .iter()
        .filter(|c| c.kind == chimera::record::CellKind::Concurrent)
        .filter_map(|c| c.axes.runtime.clone())
        .collect();
    runtimes.sort();
    assert_eq!(
        runtimes,
        [
            "async-std",
            "smol",
            "smol-1kb",
            "tokio-current-thread",
            "tokio-default",
            "tokio-localset"
        ]
    );
    // The runtime reached the program: smol-1kb re-chunks the stream into pieces of >= 1 KiB,
    // and these replies (8 tokens) are shorter, so each arrives in one piece: no gap between
    // its chunks, where tokio-default sees the emulator's pacing.
    let requests: Vec<RequestsRow> = rows(&dir.path().join("data/rt"));
    let itl_max = |rt: &str| -> f64 {
        let ids: Vec<&str> = cells
            .iter()
            .filter(|c| c.axes.runtime.as_deref() == Some(rt))
            .map(|c| c.cell_id.as_str())
            .collect();
        requests
            .iter()
            .filter(|r| !r.warmup && ids.contains(&r.cell_id.as_str()))
            .filter_map(|r| r.itl_p99_ms)
            .fold(0.0, f64::max)
    };
    assert_eq!(itl_max("smol-1kb"), 0.0);
    assert!(itl_max("tokio-default") > 0.0);
}

/// The reports about the language and runtime axes plan cells that run the reference agents:
/// TR115_v2 the Rust agent for every runtime, TR116 the Rust agent for its Rust blocks and the
/// Python agent for its Python blocks, TR112_v2 (through TR109 and TR111_v2) both.
#[test]
fn the_axis_reports_plan_cells_that_run_the_reference_agents() {
    let root = crate::support::root();
    for (file, languages) in [
        ("tr115.yaml", &["rust"][..]),
        ("tr116.yaml", &["python", "rust"][..]),
        ("tr112.yaml", &["python", "rust"][..]),
        ("tr116-languages.yaml", &["python", "rust"][..]),
    ] {
        let plan = chimera::plan::build(&[root.join("experiments").join(file)]).expect("plan");
        assert!(!plan.configs.is_empty(), "{file}");
        let mut seen = std::collections::BTreeSet::new();
        for c in &plan.configs {
            let w = &plan.reports[c.report].manifest.spec.workloads[c.workload];
            let cmd = w
                .command
                .as_ref()
                .unwrap_or_else(|| panic!("{file}: {} runs in-process", c.id));
            let argv = cmd.argv_for(c.language).join(" ");
            let lang = c.language.map(|l| l.to_string()).unwrap_or_default();
            match lang.as_str() {
                "rust" => assert!(
                    argv.contains("target/release/chimera-agent"),
                    "{file} {}: {argv}",
                    c.id
                ),
                "python" => assert!(
                    argv.contains("agents/python/chimera_agent.py"),
                    "{file} {}: {argv}",
                    c.id
                ),
                other => panic!("{file} {}: language {other:?}", c.id),
            }
            seen.insert(lang);
        }
        assert_eq!(
            seen.iter().map(String::as_str).collect::<Vec<_>>(),
            languages,
            "{file}"
        );
    }
    let tr115 = chimera::plan::build(&[root.join("experiments/tr115.yaml")]).expect("plan");
    let runtimes: std::collections::BTreeSet<String> = tr115
        .configs
        .iter()
        .filter_map(|c| c.runtime.map(|r| r.to_string()))
        .collect();
    assert_eq!(runtimes.len(), 5, "{runtimes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_that_escape_their_group_or_outlive_a_killed_chimera_are_stopped() {
    let emu = emulate(&fast_profile(8), 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let escape = d.join("escape.sh");
    std::fs::write(
        &escape,
        format!("setsid sleep 7791 < /dev/null > /dev/null 2>&1 &\necho '{RECORD}' >> \"$CHIMERA_RECORDS\"\n"),
    )
    .expect("script");
    let hang = d.join("hang.sh");
    std::fs::write(&hang, "exec sleep 7792\n").expect("script");
    let manifest = |name: &str, script: &Path, deadline: &str| {
        Manifest::new("TR954", "programs that try to outlive their cell")
            .emulator("emu", emu.addrs[0], "local:gpu0")
            .model("gemma3", "gemma3:270m")
            .single("emu")
            .workload(&format!(
                "id: w\n  command: {{argv: [sh, \"{}\"]{deadline}}}\n  task: {{kind: single_inference, prompts: [hi]}}",
                script.display()
            ))
            .configurations("w", "gemma3", &[single_config(name, "num_ctx: 512")])
            .yaml()
    };
    // Out of its process group with `setsid`: still found (it works in the program's folder),
    // killed, and the cell fails.
    let summary = campaign(d, "escape", &manifest("escape", &escape, ""), false, None).await;
    assert_eq!(summary.failed.len(), 1, "{:?}", summary.failed);
    assert!(
        summary.failed[0].1.contains("left 1 process(es) running"),
        "{:?}",
        summary.failed
    );
    assert!(
        live(&["sleep", "7791"]).is_empty(),
        "the setsid child outlived its cell"
    );

    // chimera killed with SIGKILL cannot stop its program; the next run does, first thing.
    let path =
        crate::support::write_file(d, "hang.yaml", &manifest("hang", &hang, ", deadline_s: 2"));
    let data = d.join("data");
    let mut first = run_in_background(&path, &data, "hang");
    let orphan = wait_live(&["sleep", "7792"], 1, "never started").await[0];
    first.kill().expect("SIGKILL chimera");
    let _ = first.wait();
    assert!(
        live(&["sleep", "7792"]).contains(&orphan),
        "SIGKILL leaves it running"
    );
    let mut cmd = run_cmd(&path, &data, "hang");
    let second = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .expect("join");
    assert_eq!(
        second.expect("status").code(),
        Some(1),
        "the hanging cell fails again"
    );
    assert!(
        !live(&["sleep", "7792"]).contains(&orphan),
        "the next run stopped the orphan"
    );
    assert!(live(&["sleep", "7792"]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_both_programs_of_a_concurrent_cell() {
    let emu = emulate(&fast_profile(9), 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let base = Manifest::new("TR955", "Ctrl-C in a concurrent cell")
        .emulator("emu_a", emu.addrs[0], "local:gpu0")
        .emulator("emu_b", emu.addrs[1], "local:gpu0")
        .model("gemma3", "gemma3:270m")
        .homo("chimera_homo", "chimera_homo", "emu_a", "emu_b");
    let script = d.join("agent.sh");
    let with = |m: Manifest| {
        m.workload(&format!(
            "id: w\n  command: {{argv: [sh, \"{}\"], env: {{CELL: \"{{cell_id}}\"}}}}\n  task: {{kind: single_inference, prompts: [hi]}}",
            script.display()
        ))
        .configurations("w", "gemma3", &[crate::support::homo_config("c1", "num_ctx: 512")])
        .yaml()
    };
    let text = with(base);
    let manifest = crate::support::write_file(d, "conc.yaml", &text);
    // The isolated baselines answer at once; the concurrent cell's two programs hang.
    let plan = chimera::plan::build(std::slice::from_ref(&manifest)).expect("plan");
    let concurrent = plan
        .graph
        .node_weights()
        .find(|n| n.kind == chimera::plan::NodeKind::Concurrent)
        .map(|n| n.id.hex())
        .expect("a concurrent cell");
    std::fs::write(
        &script,
        format!("if [ \"$CELL\" = {concurrent} ]; then exec sleep 7801; fi\necho '{RECORD}' >> \"$CHIMERA_RECORDS\"\n"),
    )
    .expect("script");
    let child = run_in_background(&manifest, &d.join("data"), "conc");
    wait_live(
        &["sleep", "7801"],
        2,
        "the concurrent cell's two programs never both started",
    )
    .await;
    let status = interrupt(child).await;
    assert_eq!(status, Some(130), "Ctrl-C exit code");
    assert_eq!(
        live(&["sleep", "7801"]),
        Vec::<u32>::new(),
        "a program outlived Ctrl-C"
    );
}
