//! `command` workloads: one agent run as an external program (`docs/agent-protocol.md`).
//!
//! The program runs as the leader of its own process group, with its standard output and
//! error drained into bounded tails. While it runs, chimera samples its peak RSS (`VmHWM`)
//! every [`POLL`] and watches the cell deadline and the size of its records file; past either
//! the whole group is killed. After it exits, its CPU times are read from `/proc/<pid>/stat`
//! before it is reaped (`waitid(WNOWAIT)`), then the group is killed (a child it forked
//! does not outlive the cell) and the records are read back and validated line by line.
//! Dropping the future (Ctrl-C cancels cells in flight) kills the group too.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::manifest::template::fill_braces;
use crate::manifest::{
    Api, CommandAgent, Endpoint, EndpointKind, Language, Options, Role, Runtime, Task,
};
use crate::record::ProcessStats;
use crate::util::procfs::{cpu_times, live_members, peak_rss_kb, processes_in, running};
use crate::workload::protocol::{
    AgentJob, AgentRecord, JobTask, PROTOCOL_VERSION, ProtocolKind, parse_record,
};

/// `timing_source` of the requests an agent program recorded.
pub(crate) const TIMING_SOURCE: &str = "agent program";

/// Everything [`prepare`] needs to know about one agent run of a cell.
pub(crate) struct Prepare<'a> {
    /// The workload's program.
    pub command: &'a CommandAgent,
    /// The workload.
    pub task: &'a Task,
    /// The cell.
    pub cell_id: &'a str,
    /// The agent id and role.
    pub agent: &'a str,
    /// Its role.
    pub role: Role,
    /// Its endpoint.
    pub endpoint: &'a Endpoint,
    /// Model tag.
    pub model: &'a str,
    /// `generate` or `chat`.
    pub api: Api,
    /// Streaming.
    pub stream: bool,
    /// Ollama keep_alive.
    pub keep_alive: &'a Option<String>,
    /// Effective options.
    pub options: &'a Options,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The corpus directory of an agent workflow.
    pub corpus: Option<&'a Path>,
    /// The configuration's axes.
    pub runtime: Option<Runtime>,
    /// The configuration's axes.
    pub language: Option<Language>,
    /// The manifest file.
    pub manifest: &'a Path,
    /// Root of the agent runs' scratch directories.
    pub work_root: &'a Path,
    /// The workload's `force_output_tokens`, passed on in the job file.
    pub force_output_tokens: Option<u32>,
}

/// Checks that a program that exited cleanly recorded its whole task: one record per prompt
/// (stage `single`), the persona call (stage `persona`), or the workflow's analysis and,
/// when the analysis succeeded, its report.
pub(crate) fn check_records(task: &Task, records: &[AgentRecord]) -> Result<(), String> {
    use crate::workload::protocol::RecordStage as S;
    let stages: Vec<S> = records.iter().map(|r| r.stage).collect();
    let want: Vec<S> = match task {
        Task::SingleInference { prompts } => vec![S::Single; prompts.len()],
        Task::Persona { .. } => vec![S::Persona],
        Task::AgentWorkflow { .. } => match records.first() {
            Some(a) if a.stage == S::Analysis && a.error.is_some() => vec![S::Analysis],
            _ => vec![S::Analysis, S::Report],
        },
        Task::Load(_) => return Err(LOAD_IN_PROCESS.to_owned()),
    };
    if stages == want {
        return Ok(());
    }
    let name = |v: &[S]| {
        v.iter()
            .map(|s| format!("{s:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(format!(
        "agent program exited with status 0 but recorded [{}] where its task asks for [{}] (one record per request, in order: docs/agent-protocol.md)",
        name(&stages),
        name(&want)
    ))
}

/// Requests the task sends (for the cell deadline).
fn requests_of(task: &Task) -> u32 {
    match task {
        Task::SingleInference { prompts } => prompts.len() as u32,
        Task::Persona { .. } => 1,
        Task::AgentWorkflow { .. } => 2,
        // Never an agent program (validation refuses it); one request per user and second
        // for a load that runs for a duration.
        Task::Load(t) => t
            .requests
            .unwrap_or_else(|| t.duration_s.unwrap_or(1.0).ceil() as u32)
            .saturating_add(t.warmup_requests),
    }
}

/// Why a `load` workload never runs as an agent program (validation refuses it first).
const LOAD_IN_PROCESS: &str = "a `load` workload runs in chimera's own load driver, not as an agent program: remove the workload's `command`";

/// Where the agent runs' scratch directories live: `<work>/agents/<chimera pid>/<cell>/<agent>`
/// (one folder per chimera process, so that two runs sharing a work directory never share
/// one, and a killed chimera's leftovers can be told apart).
fn agents_root(work_root: &Path) -> PathBuf {
    work_root.join("agents")
}

/// Sends SIGKILL to `pids` and waits (at most 2 s) until each is gone or a zombie: a killed
/// process dies when the kernel next schedules it, which on a loaded machine is not at once,
/// and "killed" must mean it no longer runs.
fn kill_pids(pids: &[u32]) {
    for pid in pids {
        if let Some(p) = rustix::process::Pid::from_raw(*pid as i32) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while pids.iter().any(|p| running(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Stops the agent programs a killed chimera left running (SIGKILL gives it no chance to stop
/// them): every process working in the scratch folder of a chimera process that no longer
/// exists is killed, and the folder removed. Returns how many were killed.
pub(crate) fn stop_stale_programs(work_root: &Path) -> usize {
    let Ok(dirs) = std::fs::read_dir(agents_root(work_root)) else {
        return 0;
    };
    let me = std::process::id();
    let mut killed = 0;
    for d in dirs.flatten() {
        let Ok(pid) = d.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = absolute(&d.path());
        let pids = processes_in(&dir);
        kill_pids(&pids);
        killed += pids.len();
        let _ = std::fs::remove_dir_all(&dir);
    }
    killed
}

/// Extra time an agent program gets beyond its requests' timeouts (start-up, ingest).
pub(crate) const DEADLINE_SLACK: Duration = Duration::from_secs(30);

/// `p` made absolute against the current directory (as it is when that fails).
pub(crate) fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The task of one agent run, resolved for its role (persona prompt, role templates).
fn job_task(p: &Prepare<'_>) -> Result<JobTask, String> {
    Ok(match p.task {
        Task::SingleInference { prompts } => JobTask::SingleInference {
            prompts: prompts.clone(),
        },
        Task::Load(_) => return Err(LOAD_IN_PROCESS.to_owned()),
        Task::Persona { .. } => JobTask::Persona {
            prompt: crate::workload::persona_prompt(p.task, p.role)
                .ok_or_else(|| format!("the persona task has no prompt for role `{}`", p.role))?,
        },
        Task::AgentWorkflow {
            expected_files,
            analysis_template,
            report_template,
            role_templates,
            ..
        } => {
            let (a, r) = match role_templates.get(&p.role) {
                Some(t) => (&t.analysis_template, &t.report_template),
                None => (analysis_template, report_template),
            };
            JobTask::AgentWorkflow {
                analysis_template: a.clone(),
                report_template: r.clone(),
                expected_files: *expected_files,
            }
        }
    })
}

/// Writes the job file of one agent run into a fresh scratch directory and fills the
/// program's arguments and environment.
pub(crate) fn prepare(p: &Prepare<'_>) -> Result<ProgramSpec, String> {
    let work_dir = absolute(
        &agents_root(p.work_root)
            .join(std::process::id().to_string())
            .join(p.cell_id)
            .join(p.agent),
    );
    let records = work_dir.join("records.jsonl");
    let job_path = work_dir.join("job.json");
    let manifest_dir = absolute(p.manifest.parent().unwrap_or(Path::new(".")));
    let corpus = p.corpus.map(absolute);
    let task = job_task(p)?;
    let seed = p.options.seed.unwrap_or_else(|| {
        u64::from_str_radix(p.cell_id.get(..16).unwrap_or("0"), 16).unwrap_or(0)
    });
    let protocol_kind = match p.endpoint.kind {
        EndpointKind::Openai => ProtocolKind::Openai,
        EndpointKind::Ollama | EndpointKind::Emulator => ProtocolKind::Ollama,
    };
    let api = match p.api {
        Api::Generate => "generate",
        Api::Chat => "chat",
    };
    let job = AgentJob {
        protocol: PROTOCOL_VERSION,
        cell_id: p.cell_id.to_owned(),
        agent: p.agent.to_owned(),
        role: p.role.to_string(),
        url: p.endpoint.connect_url().trim_end_matches('/').to_owned(),
        protocol_kind,
        model: p.model.to_owned(),
        api: api.to_owned(),
        stream: p.stream,
        keep_alive: p.keep_alive.clone(),
        options: p.options.clone(),
        force_output_tokens: p.force_output_tokens,
        timeout_s: p.timeout.as_secs_f64(),
        task,
        corpus_dir: corpus.as_ref().map(|c| c.display().to_string()),
        records: records.display().to_string(),
        seed,
        runtime: p.runtime.map(|r| r.to_string()),
        language: p.language.map(|l| l.to_string()),
    };
    let _ = std::fs::remove_dir_all(&work_dir);
    std::fs::create_dir_all(&work_dir)
        .and_then(|()| {
            let json = serde_json::to_vec_pretty(&job).map_err(std::io::Error::other)?;
            std::fs::write(&job_path, json)
        })
        .map_err(|e| {
            format!(
                "cannot write the agent program's job file `{}`: {e}",
                job_path.display()
            )
        })?;
    let options_json = serde_json::to_string(p.options).unwrap_or_else(|_| "{}".into());
    let value = |name: &str| -> Option<String> {
        Some(match name {
            "job" => job_path.display().to_string(),
            "records" => records.display().to_string(),
            "url" => job.url.clone(),
            "protocol" => protocol_kind.to_string(),
            "model" => job.model.clone(),
            "options_json" => options_json.clone(),
            "corpus" => job.corpus_dir.clone().unwrap_or_default(),
            "seed" => seed.to_string(),
            "runtime" => job.runtime.clone().unwrap_or_default(),
            "language" => job.language.clone().unwrap_or_default(),
            "agent" => job.agent.clone(),
            "role" => job.role.clone(),
            "cell_id" => job.cell_id.clone(),
            "manifest_dir" => manifest_dir.display().to_string(),
            "work_dir" => work_dir.display().to_string(),
            _ => return None,
        })
    };
    let fill = |arg: &str| {
        fill_braces(arg, value)
            .map_err(|bad| format!("the workload's `command` uses an unknown placeholder {bad}"))
    };
    let mut argv = p
        .command
        .argv_for(p.language)
        .iter()
        .map(|a| fill(a))
        .collect::<Result<Vec<_>, _>>()?;
    // A relative program path with a `/` is taken from chimera's working directory (as the
    // preflight check found it), not from the program's own working directory.
    if let Some(first) = argv.first_mut()
        && first.contains('/')
        && Path::new(first.as_str()).is_relative()
    {
        *first = absolute(Path::new(first.as_str())).display().to_string();
    }
    if argv.is_empty() {
        return Err(format!(
            "the workload's `command` has no argv for language {:?}",
            p.language.map(|l| l.to_string())
        ));
    }
    let mut env = vec![
        ("CHIMERA_JOB".to_owned(), job_path.display().to_string()),
        ("CHIMERA_RECORDS".to_owned(), records.display().to_string()),
        ("CHIMERA_URL".to_owned(), job.url.clone()),
        ("CHIMERA_MODEL".to_owned(), job.model.clone()),
    ];
    for (k, v) in &p.command.env {
        env.push((k.clone(), fill(v)?));
    }
    let deadline = match p.command.deadline_s {
        Some(d) => Duration::try_from_secs_f64(d).unwrap_or(Duration::MAX),
        None => p
            .timeout
            .saturating_mul(requests_of(p.task).max(1))
            .saturating_add(DEADLINE_SLACK),
    };
    Ok(ProgramSpec {
        argv,
        env,
        work_dir,
        records,
        deadline,
        max_record_bytes: p.command.max_record_bytes(),
    })
}

/// How often the process is sampled.
pub(crate) const POLL: Duration = Duration::from_millis(10);
/// Bytes of standard error (and output) kept for the failure message.
const TAIL_BYTES: usize = 4096;
/// Characters of the tail quoted in a failure message.
const TAIL_QUOTED: usize = 800;

/// One prepared agent-program run.
#[derive(Debug, Clone)]
pub(crate) struct ProgramSpec {
    /// The program and its arguments, placeholders filled.
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Its working directory (created).
    pub work_dir: PathBuf,
    /// The records file it writes (created empty).
    pub records: PathBuf,
    /// Killed past this, from spawn.
    pub deadline: Duration,
    /// Killed when the records file grows past this.
    pub max_record_bytes: u64,
}

/// What a run of a program gave.
#[derive(Debug, Default)]
pub(crate) struct ProgramOutcome {
    /// The process measurements (`start_offset_ms` from the `t0` given to [`run_program`]).
    pub stats: ProcessStats,
    /// The valid records, in file order (up to a bad line).
    pub records: Vec<AgentRecord>,
    /// Why the run failed, when it did.
    pub failure: Option<String>,
}

/// The last [`TAIL_BYTES`] of a stream, and whether it reached its end.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    closed: bool,
}

fn drain(mut r: impl Read + Send + 'static) -> Arc<Mutex<Tail>> {
    let tail = Arc::new(Mutex::new(Tail::default()));
    let t = tail.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut g) = t.lock() {
                        g.bytes.extend_from_slice(&buf[..n]);
                        let len = g.bytes.len();
                        if len > 2 * TAIL_BYTES {
                            g.bytes.drain(..len - TAIL_BYTES);
                        }
                    }
                }
            }
        }
        if let Ok(mut g) = t.lock() {
            g.closed = true;
        }
    });
    tail
}

/// The tail's text, last [`TAIL_QUOTED`] characters, lines joined with ` | `.
fn quoted(tail: &Arc<Mutex<Tail>>) -> String {
    let bytes = tail.lock().map(|g| g.bytes.clone()).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let joined = lines.join(" | ");
    let n = joined.chars().count();
    if n > TAIL_QUOTED {
        format!(
            "…{}",
            joined.chars().skip(n - TAIL_QUOTED).collect::<String>()
        )
    } else {
        joined
    }
}

/// Kills process group `pgid` on drop, until disarmed (once the leader is reaped its id may
/// be reused: the waiter kills the group before reaping it).
struct GroupGuard {
    pgid: u32,
    armed: bool,
}

impl GroupGuard {
    fn kill(&self) {
        if !self.armed {
            return;
        }
        if let Some(p) = rustix::process::Pid::from_raw(self.pgid as i32) {
            let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How the process ended.
struct Exit {
    code: Option<i32>,
    signal: Option<i32>,
    cpu: Option<(f64, f64)>,
    /// Live processes left in its group when it exited (killed since).
    left: Vec<u32>,
    at: Instant,
}

/// Waits for `child` to exit without reaping it; while its process id (and so its process
/// group id) is still reserved by the zombie, reads its CPU times, lists the live processes
/// it left in its group and kills the group; then reaps it.
fn wait_blocking(mut child: std::process::Child, work_dir: &Path) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id();
    let mut cpu = None;
    let mut left = Vec::new();
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let opts = rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOWAIT;
        if rustix::process::waitid(rustix::process::WaitId::Pid(p), opts).is_ok() {
            cpu = cpu_times(pid);
            left = live_members(pid);
        }
        let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
        // What left the group (`setsid`, possibly after it was listed as a member) but still
        // works in the program's folder goes too; each one is killed by pid as well.
        for q in processes_in(work_dir) {
            if q != pid && !left.contains(&q) {
                left.push(q);
            }
        }
        kill_pids(&left);
    }
    let at = Instant::now();
    let (code, signal) = match child.wait() {
        Ok(st) => (st.code(), st.signal()),
        Err(_) => (None, None),
    };
    Exit {
        code,
        signal,
        cpu,
        left,
        at,
    }
}

/// Starts the program of `spec`, leader of its own process group, its output piped.
fn spawn(spec: &ProgramSpec) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let program = spec.argv.first().map(String::as_str).unwrap_or_default();
    Command::new(program)
        .args(spec.argv.get(1..).unwrap_or_default())
        .current_dir(&spec.work_dir)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
}

/// Runs `spec` to its end (or its deadline); `t0` is the cell's start, for the start offset;
/// `start`, when given, is waited on right before the spawn (the agents of a concurrent cell
/// start together).
pub(crate) async fn run_program(
    spec: &ProgramSpec,
    t0: Instant,
    start: Option<&tokio::sync::Barrier>,
) -> ProgramOutcome {
    let mut out = ProgramOutcome::default();
    let program = spec.argv.first().cloned().unwrap_or_default();
    if let Err(e) = std::fs::create_dir_all(&spec.work_dir)
        .and_then(|()| std::fs::File::create(&spec.records).map(drop))
    {
        out.failure = Some(format!(
            "cannot prepare the agent program's directory `{}`: {e}",
            spec.work_dir.display()
        ));
        return out;
    }
    if let Some(b) = start {
        b.wait().await;
    }
    let mut child = match spawn(spec) {
        Ok(c) => c,
        Err(e) => {
            out.failure = Some(format!(
                "cannot start agent program `{program}`: {e} (check the workload's `command.argv`; a relative program path is looked up in PATH, use `{{manifest_dir}}/…` for one beside the manifest)"
            ));
            return out;
        }
    };
    // The program is running from here (spawn returns after its exec).
    let spawned = Instant::now();
    out.stats.start_offset_ms = Some(spawned.duration_since(t0).as_secs_f64() * 1000.0);
    let pid = child.id();
    let mut guard = GroupGuard {
        pgid: pid,
        armed: true,
    };
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let work_dir = spec.work_dir.clone();
    let mut waiter = tokio::task::spawn_blocking(move || wait_blocking(child, &work_dir));
    let mut peak_kb = 0u64;
    let mut killed: Option<String> = None;
    let mut overflow = false;
    let exit = loop {
        tokio::select! {
            r = &mut waiter => break r.ok(),
            _ = tokio::time::sleep(POLL) => {
                if let Some(kb) = peak_rss_kb(pid) {
                    peak_kb = peak_kb.max(kb);
                }
                if killed.is_some() {
                    continue;
                }
                let size = std::fs::metadata(&spec.records).map(|m| m.len()).unwrap_or(0);
                if size > spec.max_record_bytes {
                    killed = Some(format!(
                        "wrote {size} bytes of records, more than `max_record_bytes` ({}); killed",
                        spec.max_record_bytes
                    ));
                    overflow = true;
                    guard.kill();
                } else if spawned.elapsed() > spec.deadline {
                    killed = Some(format!(
                        "ran past its deadline of {:.0} s; killed with its process group",
                        spec.deadline.as_secs_f64()
                    ));
                    guard.kill();
                }
            }
        }
    };
    // The waiter killed the group before reaping the leader; from now on its id is free.
    guard.armed = false;
    // Give the drains a moment to see the pipes close (a child outside the group could
    // hold them open: their tails are taken as they are).
    let until = Instant::now() + Duration::from_millis(200);
    for t in [&stdout, &stderr].into_iter().flatten() {
        while !t.lock().map(|g| g.closed).unwrap_or(true) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let stderr_tail = stderr.as_ref().map(quoted).unwrap_or_default();
    let stdout_tail = stdout.as_ref().map(quoted).unwrap_or_default();
    let tails = || {
        let mut s = String::new();
        if !stderr_tail.is_empty() {
            s.push_str(&format!("; stderr: {stderr_tail}"));
        } else if !stdout_tail.is_empty() {
            s.push_str(&format!("; stdout: {stdout_tail}"));
        } else {
            s.push_str("; it printed nothing");
        }
        s
    };
    let who = format!("agent program `{program}`");
    let Some(exit) = exit else {
        out.failure = Some(format!("{who}: lost track of the process{}", tails()));
        return out;
    };
    out.stats.process_wall_ms = Some(exit.at.duration_since(spawned).as_secs_f64() * 1000.0);
    out.stats.process_exit_code = exit.code.map(i64::from);
    if let Some((user, sys)) = exit.cpu {
        out.stats.process_user_cpu_ms = Some(user);
        out.stats.process_sys_cpu_ms = Some(sys);
    }
    out.stats.process_peak_rss_mib = (peak_kb > 0).then(|| peak_kb as f64 / 1024.0);
    if killed.is_none() && !exit.left.is_empty() {
        // Whatever the program left behind in its group went with it, and fails the run: a
        // benchmark agent that leaves processes behind skews the cells after it.
        killed = Some(format!(
            "exited but left {} process(es) running (pid {}); killed them",
            exit.left.len(),
            exit.left
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.failure = match (&killed, exit.code, exit.signal) {
        (Some(why), _, _) => Some(format!("{who} {why}{}", tails())),
        (None, Some(0), _) => None,
        (None, Some(c), _) => Some(format!("{who} exited with status {c}{}", tails())),
        (None, None, Some(s)) => Some(format!("{who} was killed by signal {s}{}", tails())),
        (None, None, None) => Some(format!("{who} ended without an exit status{}", tails())),
    };
    if overflow {
        // A runaway records file is neither read nor kept.
        let _ = std::fs::remove_file(&spec.records);
        return out;
    }
    read_back(spec, &who, &tails(), &mut out).await;
    out
}

/// Reads a finished run's records into `out`: the records written before a failure are kept
/// (a run killed at its deadline keeps the requests it finished); a bad line, or no record
/// from a clean exit, fails the run. Parsing (up to `max_record_bytes`) runs off the async
/// threads.
async fn read_back(spec: &ProgramSpec, who: &str, tails: &str, out: &mut ProgramOutcome) {
    let read = {
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || read_records(&spec)).await
    };
    match read {
        Ok(Ok(recs)) => out.records = recs,
        Ok(Err((recs, why))) => {
            out.records = recs;
            if out.failure.is_none() {
                out.failure = Some(format!("{who} {why}{}", tails));
            }
        }
        Err(e) => {
            out.failure
                .get_or_insert_with(|| format!("{who}: reading its records failed: {e}"));
        }
    }
    if out.failure.is_none() && out.records.is_empty() {
        out.failure = Some(format!(
            "{who} exited with status 0 but wrote no record to `{}`{}",
            spec.records.display(),
            tails
        ));
    }
}

/// The records of a finished run; on a bad line, the records before it and why.
fn read_records(spec: &ProgramSpec) -> Result<Vec<AgentRecord>, (Vec<AgentRecord>, String)> {
    let size = std::fs::metadata(&spec.records)
        .map(|m| m.len())
        .unwrap_or(0);
    if size > spec.max_record_bytes {
        let _ = std::fs::remove_file(&spec.records);
        return Err((
            Vec::new(),
            format!(
                "wrote {size} bytes of records, more than `max_record_bytes` ({})",
                spec.max_record_bytes
            ),
        ));
    }
    let text = match std::fs::read(&spec.records) {
        Ok(b) => b,
        Err(e) => {
            return Err((
                Vec::new(),
                format!("records `{}` cannot be read: {e}", spec.records.display()),
            ));
        }
    };
    let text = String::from_utf8_lossy(&text);
    let mut recs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_record(i + 1, line) {
            Ok(Some(r)) => recs.push(r),
            Ok(None) => {}
            Err(e) => {
                return Err((
                    recs,
                    format!(
                        "wrote an invalid record to `{}`: {e} (the record format: docs/agent-protocol.md, schemas/agent-record.schema.json)",
                        spec.records.display()
                    ),
                ));
            }
        }
    }
    Ok(recs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &std::path::Path, script: &str) -> ProgramSpec {
        ProgramSpec {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![(
                "RECORDS".into(),
                dir.join("records.jsonl").display().to_string(),
            )],
            work_dir: dir.to_path_buf(),
            records: dir.join("records.jsonl"),
            deadline: Duration::from_secs(5),
            max_record_bytes: 4096,
        }
    }

    fn run(script: &str, deadline: Option<Duration>) -> ProgramOutcome {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut s = spec(dir.path(), script);
        if let Some(d) = deadline {
            s.deadline = d;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(run_program(&s, Instant::now(), None))
    }

    #[test]
    fn a_good_program_is_measured() {
        let o = run(
            r#"echo '{"stage":"single","sent_at_unix_ms":1,"e2e_ms":2,"output_tokens":3}' >> "$RECORDS""#,
            None,
        );
        assert_eq!(o.failure, None);
        assert_eq!(o.records.len(), 1);
        assert_eq!(o.stats.process_exit_code, Some(0));
        assert!(o.stats.process_wall_ms.is_some_and(|w| w > 0.0));
        assert!(o.stats.process_user_cpu_ms.is_some());
    }

    #[test]
    fn failures_say_why() {
        let o = run("echo broken >&2; exit 3", None);
        let f = o.failure.unwrap_or_default();
        assert!(f.contains("exited with status 3"), "{f}");
        assert!(f.contains("stderr: broken"), "{f}");
        let o = run(r#"echo 'not json' >> "$RECORDS""#, None);
        let f = o.failure.unwrap_or_default();
        assert!(f.contains("records line 1"), "{f}");
        let o = run("true", None);
        let f = o.failure.unwrap_or_default();
        assert!(f.contains("wrote no record"), "{f}");
        assert!(f.contains("printed nothing"), "{f}");
        let o = run("sleep 30", Some(Duration::from_millis(300)));
        let f = o.failure.unwrap_or_default();
        assert!(f.contains("deadline"), "{f}");
        assert!(o.stats.process_wall_ms.is_some_and(|w| w < 10_000.0));
        let o = run(
            r#"sleep 30 & echo '{"stage":"single","sent_at_unix_ms":1,"e2e_ms":2}' >> "$RECORDS""#,
            None,
        );
        let f = o.failure.unwrap_or_default();
        assert!(f.contains("left 1 process(es)"), "{f}");
        let o = run(r#"yes '{"stage":"single"}' >> "$RECORDS""#, None);
        let f = o.failure.unwrap_or_default();
        assert!(f.contains("max_record_bytes"), "{f}");
    }

    #[test]
    fn records_must_cover_the_task() {
        let rec = |stage: &str, err: bool| {
            let e = if err {
                r#","error":{"kind":"timeout","message":"slow"}"#
            } else {
                ""
            };
            let line = format!(r#"{{"stage":"{stage}","sent_at_unix_ms":1,"e2e_ms":2{e}}}"#);
            crate::workload::protocol::parse_record(1, &line)
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("{line}"))
        };
        let three = Task::SingleInference {
            prompts: vec!["a".into(), "b".into(), "c".into()],
        };
        assert!(check_records(&three, &[rec("single", false)]).is_err());
        assert!(check_records(&three, &vec![rec("single", false); 3]).is_ok());
        let wf = Task::AgentWorkflow {
            corpus: crate::manifest::Corpus::Empty,
            expected_files: None,
            analysis_template: "{data_summary}".into(),
            report_template: "".into(),
            role_templates: Default::default(),
        };
        let only_analysis = check_records(&wf, &[rec("analysis", false)]);
        let e = only_analysis.err().unwrap_or_default();
        assert!(
            e.contains("recorded [analysis] where its task asks for [analysis, report]"),
            "{e}"
        );
        assert!(check_records(&wf, &[rec("analysis", true)]).is_ok());
        assert!(check_records(&wf, &[rec("analysis", false), rec("report", false)]).is_ok());
        assert!(check_records(&wf, &[rec("report", false), rec("analysis", false)]).is_err());
        let persona = Task::Persona {
            prompts: Default::default(),
        };
        assert!(check_records(&persona, &[rec("single", false)]).is_err());
        assert!(check_records(&persona, &[rec("persona", false)]).is_ok());
    }

    #[test]
    fn a_missing_program_is_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut s = spec(dir.path(), "");
        s.argv = vec!["/nonexistent/agent".into()];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let o = rt.block_on(run_program(&s, Instant::now(), None));
        let f = o.failure.unwrap_or_default();
        assert!(
            f.contains("cannot start agent program `/nonexistent/agent`"),
            "{f}"
        );
    }
}
