//! Helpers: run the built binary and capture its output; write emulator campaign manifests;
//! start the emulator and run a campaign in this process.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use chimera::backend::{Client, ErrorKind, LlmRequest, RequestRecord};
use chimera::emulator::{EmulatorHandle, Profile, TruthRecord};
use chimera::manifest::{Api, EndpointKind, Options};
use chimera::run::RunOptions;
use chimera::run::{CampaignError, CampaignOptions, CampaignSummary};

/// Output of one chimera invocation.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the command succeeded and that its stdout says each of `wants`.
    pub fn assert_ok(&self, wants: &[&str]) {
        assert_eq!(self.code, 0, "{}\n{}", self.stdout, self.stderr);
        let missing: Vec<&&str> = wants
            .iter()
            .filter(|w| !self.stdout.contains(**w))
            .collect();
        assert!(missing.is_empty(), "{missing:?} not in:\n{}", self.stdout);
    }

    /// Asserts the command was refused as invalid input (exit code 2) and that its stderr
    /// says each of `wants`.
    pub fn assert_refused(&self, wants: &[&str]) {
        assert_eq!(self.code, 2, "{}", self.stderr);
        for want in wants {
            assert!(self.stderr.contains(want), "{want}:\n{}", self.stderr);
        }
    }

    /// Asserts the command exited with `code` and that its stderr says `want`.
    pub fn assert_says(&self, code: i32, want: impl AsRef<str>) {
        let want = want.as_ref();
        assert_eq!(self.code, code, "{}", self.stderr);
        assert!(self.stderr.contains(want), "{want}:\n{}", self.stderr);
    }
}

/// `chimera args` in `cwd`, without the environment that changes how it logs or commits.
pub fn chimera_cmd_in(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chimera"));
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("CHIMERA_LOG")
        .env_remove("CHIMERA_TEST_COMMIT_PAUSE_MS")
        .stdin(Stdio::null());
    cmd
}

/// `chimera args` in the package root.
pub fn chimera_cmd(args: &[&str]) -> Command {
    chimera_cmd_in(&root(), args)
}

/// Runs `cmd` (a chimera command line) to its end.
pub fn run_command(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("run chimera");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `chimera` with `args` in `cwd`.
pub fn chimera_in(cwd: &Path, args: &[&str]) -> Run {
    run_command(&mut chimera_cmd_in(cwd, args))
}

/// Runs `chimera` with `args` in the package root.
pub fn chimera(args: &[&str]) -> Run {
    chimera_in(&root(), args)
}

/// Asserts that `text` says each of `wants`.
pub fn says(text: &str, wants: &[&str]) {
    for w in wants {
        assert!(text.contains(w), "{w:?} is not in:\n{text}");
    }
}

/// The arguments of `chimera import chimeraforge <source…> --report <report> --data <data>`:
/// `source` is a folder, or `--git` and a repository.
pub fn import_args<'a>(source: &[&'a str], report: &'a str, data: &'a str) -> Vec<&'a str> {
    let mut args = vec!["import", "chimeraforge"];
    args.extend_from_slice(source);
    args.extend(["--report", report, "--data", data]);
    args
}

/// A path as the `&str` a command line takes.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The package root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.yaml` files of a directory, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

/// Writes `text` to `<dir>/<name>` and returns that path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

/// An emulator profile with a known knee: two slots per listener, each reply 16 tokens at
/// `output_tok_s` on its own GPU, so up to two users never wait and from three a request waits
/// for a slot, about a whole reply.
pub fn knee_profile(output_tok_s: u32) -> String {
    format!(
        "
seed: 5
shared_gpu: false
num_parallel: 2
models:
  - name: gemma3:270m
    load_ms: 1
    prompt_tok_s: 1000000
    output_tok_s: {output_tok_s}
    output_tokens: 16
"
    )
}

/// An emulator profile of one `gemma3:270m` model with fast token rates (a whole campaign takes
/// well under a second of server time), each listener its own GPU.
pub fn fast_profile(seed: u64) -> String {
    format!(
        "
seed: {seed}
shared_gpu: false
models:
  - name: gemma3:270m
    load_ms: 2
    prompt_tok_s: 1000000
    output_tok_s: 4000
    output_tokens: 8
"
    )
}

/// An emulator profile of one `gemma3:270m` model on a shared GPU: 40 tokens at 400 tok/s,
/// ~100 ms per request alone, ~200 ms for two streams sharing the GPU.
pub fn shared_gpu_profile(seed: u64) -> String {
    format!(
        "
seed: {seed}
shared_gpu: true
models:
  - name: gemma3:270m
    load_ms: 5
    prompt_tok_s: 200000
    output_tok_s: 400
    output_tokens: 40
"
    )
}

/// A `chimera emulate` child process serving `profile` on `listeners` ephemeral ports; killed
/// when dropped.
pub struct Emulator {
    pub child: Child,
    pub addrs: Vec<SocketAddr>,
}

impl Emulator {
    /// Writes `profile` as `<dir>/<name>-profile.yaml` and starts the emulator on it.
    pub fn start(dir: &Path, name: &str, profile: &str, listeners: usize) -> Emulator {
        let path = dir.join(format!("{name}-profile.yaml"));
        std::fs::write(&path, profile).expect("write profile");
        let mut cmd = chimera_cmd(&["emulate", "--profile", s(&path)]);
        for _ in 0..listeners {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chimera emulate");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut addrs = Vec::new();
        for _ in 0..listeners {
            let mut line = String::new();
            out.read_line(&mut line).expect("read an address");
            addrs.push(line.trim().parse().expect("an address per line"));
        }
        Emulator { child, addrs }
    }

    /// Writes the manifest `text` makes of this emulator's addresses to `<dir>/<file>`.
    pub fn write_manifest(
        &self,
        dir: &Path,
        file: &str,
        text: impl FnOnce(&[SocketAddr]) -> String,
    ) -> PathBuf {
        write_file(dir, file, &text(&self.addrs))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The analysis prompt of the generated-corpus agent workflow.
pub const ANALYSIS_TEMPLATE: &str = "Analyze the following benchmark data.\\n{data_summary}";
/// The report prompt of the generated-corpus agent workflow.
pub const REPORT_TEMPLATE: &str =
    "Write a report.\\n{summary}\\n{key_findings}\\n{performance_metrics}\\n{recommendations}";

/// A campaign manifest (`format: 1`), built up section by section and written by
/// [`Manifest::yaml`]. Every section is a YAML list of items in the order they were added;
/// `repetitions` and the settings (`request_timeout_s`, `retry`, `telemetry`, `warmup`, …)
/// come before the matrix.
#[derive(Clone, Debug)]
pub struct Manifest {
    report: String,
    title: String,
    endpoints: String,
    models: String,
    workloads: String,
    scenarios: String,
    repetitions: Option<u32>,
    settings: String,
    matrix: String,
}

impl Manifest {
    /// An empty manifest of `report`.
    pub fn new(report: &str, title: &str) -> Manifest {
        Manifest {
            report: report.to_owned(),
            title: title.to_owned(),
            endpoints: String::new(),
            models: String::new(),
            workloads: String::new(),
            scenarios: String::new(),
            repetitions: None,
            settings: String::new(),
            matrix: String::new(),
        }
    }

    /// Two agents (A collector on `emu_a`, B insight on `emu_b`) in a `chimera_homo` scenario
    /// on two emulator endpoints on `resources`, model `gemma3` (`gemma3:270m`), and the
    /// `workflow` agent workflow over a generated corpus of `files` files of each kind: the
    /// TR114 shape. The matrix is the test's.
    pub fn two_agent_workflow(
        report: &str,
        title: &str,
        [a, b]: [SocketAddr; 2],
        [gpu_a, gpu_b]: [&str; 2],
        files: u32,
    ) -> Manifest {
        Manifest::new(report, title)
            .emulator("emu_a", a, gpu_a)
            .emulator("emu_b", b, gpu_b)
            .model("gemma3", "gemma3:270m")
            .workflow("workflow", files, ANALYSIS_TEMPLATE, REPORT_TEMPLATE)
            .homo("chimera_homo", "chimera_homo", "emu_a", "emu_b")
    }

    /// One client (`client` on `emu`, `local:gpu0`) in the `single` scenario, model `gemma3`
    /// (`gemma3:270m`), and the streamed H1 `prompts` workload of `prompts`. The matrix is the
    /// test's.
    pub fn single_inference(
        report: &str,
        title: &str,
        addr: SocketAddr,
        prompts: &[&str],
    ) -> Manifest {
        Manifest::new(report, title)
            .emulator("emu", addr, "local:gpu0")
            .model("gemma3", "gemma3:270m")
            .prompts("prompts", "H1", prompts)
            .single("emu")
    }

    /// An endpoint written out whole (a list item's text without the leading `- `).
    pub fn endpoint(mut self, item: &str) -> Manifest {
        item_into(&mut self.endpoints, item);
        self
    }

    /// An endpoint of `kind` at `url` on `resource`.
    pub fn endpoint_at(self, id: &str, kind: &str, url: &str, resource: &str) -> Manifest {
        self.endpoint(&format!(
            "{{id: {id}, kind: {kind}, url: \"{url}\", resource: \"{resource}\"}}"
        ))
    }

    /// An emulator endpoint at `addr` on `resource`.
    pub fn emulator(self, id: &str, addr: SocketAddr, resource: &str) -> Manifest {
        self.endpoint_at(id, "emulator", &format!("http://{addr}"), resource)
    }

    /// A model.
    pub fn model(mut self, id: &str, tag: &str) -> Manifest {
        item_into(&mut self.models, &format!("{{id: {id}, tag: \"{tag}\"}}"));
        self
    }

    /// A workload written out whole.
    pub fn workload(mut self, item: &str) -> Manifest {
        item_into(&mut self.workloads, item);
        self
    }

    /// An H6v2 agent workflow over a generated corpus of `files` CSV, JSON and Markdown files
    /// each (seed 1), with its two prompt templates.
    pub fn workflow(self, id: &str, files: u32, analysis: &str, report: &str) -> Manifest {
        self.workload(&format!(
            "id: {id}\n  harness: H6v2\n  task:\n    kind: agent_workflow\n    \
             corpus: {{kind: generated, csv: {files}, json: {files}, md: {files}, seed: 1}}\n    \
             expected_files: {expected}\n    analysis_template: \"{analysis}\"\n    \
             report_template: \"{report}\"",
            expected = 3 * files,
        ))
    }

    /// A streamed single-inference workload of `prompts` under `harness`.
    pub fn prompts(self, id: &str, harness: &str, prompts: &[&str]) -> Manifest {
        let list = prompts
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        self.workload(&format!(
            "id: {id}\n  harness: {harness}\n  stream: true\n  task:\n    \
             kind: single_inference\n    prompts: [{list}]"
        ))
    }

    /// A persona workload: one prompt for the collector, one for the insight agent.
    pub fn persona(self, id: &str, collector: &str, insight: &str) -> Manifest {
        self.workload(&format!(
            "id: {id}\n  task:\n    kind: persona\n    prompts:\n      \
             collector: \"{collector}\"\n      insight: \"{insight}\""
        ))
    }

    /// A scenario of `kind` with `agents` as (id, role, endpoint).
    pub fn scenario(mut self, id: &str, kind: &str, agents: &[(&str, &str, &str)]) -> Manifest {
        let mut item = format!("id: {id}\n  kind: {kind}\n  agents:");
        for (agent, role, endpoint) in agents {
            write!(
                item,
                "\n    - {{id: {agent}, role: {role}, endpoint: {endpoint}}}"
            )
            .expect("write");
        }
        item_into(&mut self.scenarios, &item);
        self
    }

    /// A two-agent scenario of `kind`: A collector on `a`, B insight on `b`.
    pub fn homo(self, id: &str, kind: &str, a: &str, b: &str) -> Manifest {
        self.scenario(id, kind, &[("A", "collector", a), ("B", "insight", b)])
    }

    /// The `single` scenario: one `client` on `endpoint`.
    pub fn single(self, endpoint: &str) -> Manifest {
        self.scenario("single", "single", &[("client", "client", endpoint)])
    }

    /// Repetitions of every configuration.
    pub fn repetitions(mut self, n: u32) -> Manifest {
        self.repetitions = Some(n);
        self
    }

    /// A top-level setting, one line (`request_timeout_s: 10`, `telemetry: {source: none}`).
    pub fn setting(mut self, line: &str) -> Manifest {
        self.settings.push_str(line);
        self.settings.push('\n');
        self
    }

    /// A matrix block written out whole.
    pub fn block(mut self, item: &str) -> Manifest {
        item_into(&mut self.matrix, item);
        self
    }

    /// A matrix block of `workload` × `model` with one configuration per item of `configs`.
    pub fn configurations(self, workload: &str, model: &str, configs: &[String]) -> Manifest {
        let mut item = format!("workload: {workload}\n  model: {model}\n  configurations:");
        for c in configs {
            write!(item, "\n    - {c}").expect("write");
        }
        self.block(&item)
    }

    /// The manifest's text.
    pub fn yaml(&self) -> String {
        let mut out = format!(
            "format: 1\nreport: {}\ntitle: {}\n",
            self.report, self.title
        );
        for (key, items) in [
            ("endpoints", &self.endpoints),
            ("models", &self.models),
            ("workloads", &self.workloads),
            ("scenarios", &self.scenarios),
        ] {
            write!(out, "{key}:\n{items}").expect("write");
        }
        if let Some(n) = self.repetitions {
            writeln!(out, "repetitions: {n}").expect("write");
        }
        write!(out, "{}matrix:\n{}", self.settings, self.matrix).expect("write");
        out
    }
}

/// Appends `item` as a list item (`  - …`, its further lines indented to match).
fn item_into(list: &mut String, item: &str) {
    for (i, line) in item.lines().enumerate() {
        list.push_str(if i == 0 { "  - " } else { "  " });
        list.push_str(line);
        list.push('\n');
    }
}

/// A `chimera_homo` configuration with the same `options` for agents A and B.
pub fn homo_config(id: &str, options: &str) -> String {
    pair_config(id, "chimera_homo", options)
}

/// A configuration of two-agent `scenario` with the same `options` for agents A and B.
pub fn pair_config(id: &str, scenario: &str, options: &str) -> String {
    format!("{{id: {id}, scenario: {scenario}, options: {{A: {{{options}}}, B: {{{options}}}}}}}")
}

/// A `single` configuration with `options` for the client.
/// Single inference of the prompts `one` and `two` on one endpoint at `a`, in two
/// configurations (`s1`: `num_ctx` 512, `s2`: 1024) × `reps` repetitions.
pub fn two_context_sizes(report: &str, title: &str, a: SocketAddr, reps: u32) -> String {
    Manifest::single_inference(report, title, a, &["one", "two"])
        .repetitions(reps)
        .configurations(
            "prompts",
            "gemma3",
            &[
                single_config("s1", "num_ctx: 512"),
                single_config("s2", "num_ctx: 1024"),
            ],
        )
        .yaml()
}

pub fn single_config(id: &str, options: &str) -> String {
    format!("{{id: {id}, scenario: single, options: {{client: {{{options}}}}}}}")
}

/// The in-process emulator serving `profile` (YAML) on `listeners` ephemeral ports.
pub async fn emulate(profile: &str, listeners: usize) -> EmulatorHandle {
    emulate_profile(Profile::from_yaml(profile).expect("profile"), listeners).await
}

/// The in-process emulator serving `profile` on `listeners` ephemeral ports.
pub async fn emulate_profile(profile: Profile, listeners: usize) -> EmulatorHandle {
    let localhost: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    chimera::emulator::spawn(profile, &vec![localhost; listeners])
        .await
        .expect("emulator")
}

/// The options of a campaign `name` under `data`: no cache, no verification, no forced cells,
/// no time limit, no progress bar, no fake GPUs.
pub fn campaign_options(data: &Path, name: &str) -> CampaignOptions {
    CampaignOptions {
        data: data.to_path_buf(),
        name: name.into(),
        force: Vec::new(),
        fail_fast: false,
        use_cache: false,
        verify: false,
        cell_timeout: None,
        progress: false,
        fake_gpus: None,
        fake_gpu_throttle: 0,
        shard: None,
    }
}

/// Writes `text` as `<dir>/<name>.yaml` and runs it in this process as campaign `name` under
/// `<dir>/data` (work files under `<dir>/work`), with [`campaign_options`] as `edit` leaves
/// them.
pub async fn try_campaign(
    dir: &Path,
    name: &str,
    text: &str,
    edit: impl FnOnce(&mut CampaignOptions),
) -> Result<CampaignSummary, CampaignError> {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).expect("write manifest");
    let plan =
        std::sync::Arc::new(chimera::plan::build(std::slice::from_ref(&path)).expect("plan"));
    let entries = plan
        .reports
        .iter()
        .map(|r| {
            chimera::store::ManifestEntry::new(
                &path.display().to_string(),
                &r.report,
                &r.manifest.source,
            )
        })
        .collect();
    let mut opts = campaign_options(&dir.join("data"), name);
    edit(&mut opts);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    chimera::run::run_campaign(plan, entries, &opts, &RunOptions::new(dir.join("work")), rx).await
}

/// [`try_campaign`] with the shared cache on or off and `fake_gpus`, which must succeed.
pub async fn campaign(
    dir: &Path,
    name: &str,
    text: &str,
    use_cache: bool,
    fake_gpus: Option<u32>,
) -> CampaignSummary {
    try_campaign(dir, name, text, |o| {
        o.use_cache = use_cache;
        o.fake_gpus = fake_gpus;
    })
    .await
    .expect("campaign")
}

/// How a client test checks a failed request: the file's own `assert_error`.
pub type AssertError = fn(&RequestRecord, ErrorKind, Option<u16>);

/// `rec` failed with `kind` and `status`, a message, a send time and an e2e time: the checks
/// every client's `assert_error` starts with.
pub fn assert_failed(rec: &RequestRecord, kind: ErrorKind, status: Option<u16>) {
    let e = rec
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("expected {kind:?}, got success: {rec:?}"));
    assert_eq!(e.kind, kind, "{rec:?}");
    assert_eq!(e.status, status, "{rec:?}");
    assert!(!e.message.is_empty());
    assert!(!rec.ok());
    assert!(rec.sent_at_unix_ms > 1.0e12, "{rec:?}");
    assert!(rec.e2e_ms > 0.0, "{rec:?}");
}

/// Three text chunks arrived before the fault: their timings are kept, but no final chunk
/// told a token count.
pub fn assert_three_chunks_timed(rec: &RequestRecord) {
    assert!(rec.ttft_ms.is_some(), "{rec:?}");
    assert_eq!(rec.itl_ms.len(), 2, "{rec:?}");
    assert!(rec.chunks >= 3, "{rec:?}");
    assert!(rec.e2e_ms >= rec.ttft_ms.unwrap_or(f64::MAX));
    assert_eq!(rec.output_tokens, None, "no final chunk, no token count");
}

/// A streamed request for `model` with default options, a 10 s timeout and a 1 MiB cap.
pub fn request(api: Api, model: &str) -> LlmRequest {
    LlmRequest {
        api,
        model: model.to_owned(),
        prompt: "Why is the sky blue? Answer briefly.".to_owned(),
        stream: true,
        options: Options::default(),
        keep_alive: None,
        timeout: Duration::from_secs(10),
        max_response_bytes: 1 << 20,
    }
}

/// Slack allowed between the client's timings and the emulator's [`truth`]: both run in this
/// process on a small, possibly busy machine.
pub const SLACK_MS: f64 = 50.0;

/// The `n`th truth record, waiting briefly: the emulator records a request when it has
/// finished with it, which may be just after the client has.
pub async fn truth(emu: &EmulatorHandle, n: usize) -> TruthRecord {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let recs = emu.truth.records();
        if recs.len() > n {
            return recs[n].clone();
        }
        assert!(Instant::now() < until, "no truth record #{n}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What the fault tests of an HTTP client need: the client against an emulator serving
/// [`status_fault_models`] and [`stream_fault_models`], the API to send stalls and unstreamed
/// garbled replies on, and the file's own checks.
pub struct Faults {
    pub client: Client,
    pub api: Api,
    /// The emulator's status faults, and what the message about an unknown model says.
    pub statuses: &'static [StatusFault],
    pub unknown: &'static str,
    pub assert_error: AssertError,
    pub assert_three_chunks_kept: fn(&RequestRecord),
}

impl Faults {
    /// A client of `kind` for a port nothing listens on: the request is refused before any
    /// chunk, and so is the version probe.
    pub async fn connection_refused(kind: EndpointKind, api: Api, assert_error: AssertError) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        let client = Client::new(kind, &format!("http://{addr}")).expect("client");
        let rec = client.send(&request(api, "fast:1b")).await;
        assert_error(&rec, ErrorKind::ConnectionRefused, None);
        assert_eq!((rec.ttft_ms, rec.chunks), (None, 0));
        let e = client.version().await.expect_err("no server");
        assert_eq!(e.kind, ErrorKind::ConnectionRefused);
    }

    /// A server that closes the connection without a response counts as refused.
    pub async fn closed_without_a_response(&self) {
        let rec = self.client.send(&request(Api::Generate, "hangs-up")).await;
        (self.assert_error)(&rec, ErrorKind::ConnectionRefused, None);
    }

    /// An unknown model and each status fault fail on both APIs with their kind and status
    /// and the server's message (not the body), before any chunk.
    pub async fn status_errors(&self) {
        let unknown = ("unknown:7b", ErrorKind::ModelNotFound, 404, self.unknown);
        for &(model, kind, status, text) in std::iter::once(&unknown).chain(self.statuses) {
            for api in [Api::Generate, Api::Chat] {
                let rec = self.client.send(&request(api, model)).await;
                (self.assert_error)(&rec, kind, Some(status));
                let msg = &rec.error.as_ref().expect("error").message;
                assert!(msg.contains(text), "{model}: {msg:?}");
                assert!(
                    !msg.contains("{\""),
                    "the server's message, not the body: {msg:?}"
                );
                assert_eq!(rec.ttft_ms, None);
            }
        }
    }

    /// Streams cut after three chunks (cleanly and abruptly) are truncated, their chunks kept.
    pub async fn truncated_streams(&self) {
        for model in ["truncates", "dies"] {
            let rec = self.client.send(&request(Api::Chat, model)).await;
            (self.assert_error)(&rec, ErrorKind::Truncated, Some(200));
            (self.assert_three_chunks_kept)(&rec);
        }
    }

    /// A stream garbled after three chunks is malformed, its chunks kept; so is a garbled
    /// unstreamed reply.
    pub async fn malformed_reply(&self) {
        let rec = self.client.send(&request(Api::Generate, "garbles")).await;
        (self.assert_error)(&rec, ErrorKind::MalformedResponse, Some(200));
        (self.assert_three_chunks_kept)(&rec);
        let mut req = request(self.api, "garbles");
        req.stream = false;
        let rec = self.client.send(&req).await;
        (self.assert_error)(&rec, ErrorKind::MalformedResponse, Some(200));
    }

    /// A stream that stalls after three chunks times out at the request's timeout, not at the
    /// stall's end, its chunks kept.
    pub async fn stall_times_out(&self) {
        let mut req = request(self.api, "stalls");
        req.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let rec = self.client.send(&req).await;
        let took = started.elapsed();
        (self.assert_error)(&rec, ErrorKind::Timeout, Some(200));
        (self.assert_three_chunks_kept)(&rec);
        assert!(
            took < Duration::from_millis(1500),
            "gave up after {took:?}, not at the stall's end"
        );
        assert!(rec.e2e_ms >= 300.0 - 1.0, "{rec:?}");
    }

    /// A huge reply is too large under a 4 kB cap, streamed or not; under the default cap it
    /// is fine.
    pub async fn too_large_with_a_small_cap(&self) {
        for stream in [true, false] {
            let mut req = request(Api::Generate, "verbose");
            req.stream = stream;
            req.max_response_bytes = 4096;
            let rec = self.client.send(&req).await;
            (self.assert_error)(&rec, ErrorKind::TooLarge, Some(200));
            assert!(rec.text.len() <= 4096);
        }
        let rec = self.client.send(&request(Api::Generate, "verbose")).await;
        assert!(rec.ok(), "{rec:?}");
        assert!(rec.text.len() >= 100_000);
    }
}

/// An unstreamed `fast:1b` reply on each API is one object of 12 words without TTFT or
/// ITLs; `check` adds the protocol's own checks on each record.
pub async fn unstreamed_replies(client: &Client, check: fn(&RequestRecord)) {
    for api in [Api::Generate, Api::Chat] {
        let mut req = request(api, "fast:1b");
        req.stream = false;
        let rec = client.send(&req).await;
        assert!(rec.ok(), "{api:?}: {rec:?}");
        assert_eq!(rec.ttft_ms, None);
        assert!(rec.itl_ms.is_empty());
        assert_eq!(rec.chunks, 1);
        assert_eq!(rec.output_tokens, Some(12));
        assert_eq!(rec.text.split_whitespace().count(), 12);
        check(&rec);
    }
}

/// A model the emulator answers with an HTTP status: (name, the error kind the client
/// reports, the status, the message).
pub type StatusFault = (&'static str, ErrorKind, u16, &'static str);

/// Emulator models as YAML list items: `hangs-up`, which closes the connection unanswered,
/// and one model per [`StatusFault`] that answers its status and message.
pub fn status_fault_models(statuses: &[StatusFault]) -> String {
    let mut yaml = String::from("  - name: hangs-up\n    fault: {kind: refuse_after_accept}\n");
    for (name, _, code, message) in statuses {
        yaml.push_str(&format!(
            "  - name: {name}\n    fault: {{kind: status, code: {code}, message: {message:?}}}\n"
        ));
    }
    yaml
}

/// The emulator models [`Faults`] sends to, as YAML list items: a reply cut
/// cleanly (`truncates`) and abruptly (`dies`), garbled (`garbles`) and stalled for 2 s
/// (`stalls`) after three tokens, and a 100 kB reply (`verbose`). `per_model` is a YAML line
/// every one of them also gets (such as `load_ms: 0`), or empty.
pub fn stream_fault_models(per_model: &str) -> String {
    let faults = [
        ("truncates", "{kind: truncate_after, tokens: 3}"),
        ("dies", "{kind: truncate_after, tokens: 3, abrupt: true}"),
        ("garbles", "{kind: malformed_after, tokens: 3}"),
        ("stalls", "{kind: stall_after, tokens: 3, ms: 2000}"),
        ("verbose", "{kind: huge, bytes: 100000}"),
    ];
    let mut yaml = String::new();
    for (name, fault) in faults {
        yaml.push_str(&format!("  - name: {name}\n"));
        if !per_model.is_empty() {
            yaml.push_str(&format!("    {per_model}\n"));
        }
        yaml.push_str("    output_tok_s: 1000\n");
        if name == "verbose" {
            yaml.push_str("    output_tokens: 8\n");
        }
        yaml.push_str(&format!("    fault: {fault}\n"));
    }
    yaml
}

/// The fault tests both HTTP clients share, written once: in the calling file it expands to
/// one `#[tokio::test]` per [`Faults`] scenario, on that file's `start()`, `assert_error` and
/// `assert_three_chunks_kept`. `$wrap` makes the file's client a [`Client`], `$kind` is the
/// endpoint kind refused, `$api` is [`Faults::api`] and the API a refused request is sent on,
/// `$statuses` and `$unknown` are [`Faults::statuses`] and [`Faults::unknown`].
// `tests/real.rs` also includes this file, and uses no macro.
#[allow(unused_macros)]
macro_rules! client_fault_tests {
    ($wrap:path, $kind:expr, $api:expr, $statuses:expr, $unknown:expr) => {
        async fn faults() -> (chimera::emulator::EmulatorHandle, crate::support::Faults) {
            let (emu, client) = start().await;
            let faults = crate::support::Faults {
                client: $wrap(client),
                api: $api,
                statuses: $statuses,
                unknown: $unknown,
                assert_error,
                assert_three_chunks_kept,
            };
            (emu, faults)
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn connection_refused() {
            crate::support::Faults::connection_refused($kind, $api, assert_error).await;
        }

        crate::support::client_fault_tests!(@on_emulator
            closed_without_a_response_counts_as_refused: closed_without_a_response,
            status_errors: status_errors,
            truncated_streams: truncated_streams,
            malformed_reply: malformed_reply,
            stall_times_out: stall_times_out,
            too_large_with_a_small_cap: too_large_with_a_small_cap,
        );
    };
    (@on_emulator $($test:ident: $scenario:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let (emu, faults) = faults().await;
                faults.$scenario().await;
                emu.shutdown().await;
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use client_fault_tests;

/// The reference Rust agent (`agents/rust`, `target/debug/chimera-agent`), built on first use.
pub fn rust_agent() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "-p", "chimera-agent"])
                .current_dir(root())
                .status()
                .expect("run cargo build -p chimera-agent");
            assert!(status.success(), "cargo build -p chimera-agent failed");
            root().join("target/debug/chimera-agent")
        })
        .clone()
}

/// The reference Python agent's interpreter (`agents/python/.venv`, made by `make agents`),
/// or why it cannot be used. With `CHIMERA_REQUIRE_PYTHON_TESTS=1` (set by `.ci/run`) a
/// missing environment fails the test instead of skipping it.
pub fn python_agent() -> Option<PathBuf> {
    let python = root().join("agents/python/.venv/bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import ollama, httpx"])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Some(python);
    }
    assert!(
        std::env::var("CHIMERA_REQUIRE_PYTHON_TESTS").as_deref() != Ok("1"),
        "agents/python/.venv is missing or lacks its requirements (run `make agents`), and CHIMERA_REQUIRE_PYTHON_TESTS=1 requires it"
    );
    eprintln!("skipped: agents/python/.venv is missing (run `make agents`)");
    None
}
