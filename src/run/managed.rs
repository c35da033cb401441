//! Managed servers: the servers a manifest's endpoints ask chimera to start (`managed:`).
//!
//! The campaign ([`super::campaign::run_campaign`]) drives one [`ManagedServers`] through
//! this lifecycle:
//!
//! 1. **Start**, before the health check ([`ManagedServers::start`]): every endpoint with
//!    `managed` (deduplicated by URL) has `${VAR}` (from chimera's environment) and a leading
//!    `~/` expanded in its command and env values; an unset variable stops everything before
//!    anything is started. The expanded values are handed to the server only: whatever chimera
//!    writes (the log's header line, messages, errors, the journal) shows `${VAR}` in their
//!    place, and the server output it quotes in errors has them masked the same way, so a
//!    token passed as `${SECRET}` never reaches a file or a terminal through chimera.
//!    Nothing may answer at the endpoint's address yet (a server already
//!    there would be measured instead of the managed one). The command runs with the env added,
//!    stdin closed, stdout and stderr appended to `<campaign>/servers/<endpoint>.log` (mode
//!    0600: the server's own output may hold what it was given), in its
//!    own process group (so a terminal's Ctrl-C reaches chimera, which stops it in order), and
//!    is waited for until it answers (`ollama`/`emulator`: `GET /api/version`; `openai`:
//!    `GET /health`, which llama-server answers with 503 while it loads, falling back to
//!    `GET /v1/models`) within `startup_timeout_s`.
//! 2. **Models** of managed `ollama` endpoints: a model tag the plan uses there and
//!    `/api/tags` lacks is pulled (`POST /api/pull`, progress shown). Unmanaged endpoints are
//!    never pulled into.
//! 3. **Watch** ([`ManagedServers::ensure_alive`]): before every attempt of a cell, the
//!    servers of its endpoints are checked; a dead one is started again (same command, same
//!    log) and a `server_restarted` event is journaled. A cell that failed because its server
//!    died ([`ManagedServers::exited`]) is retried after the restart.
//! 4. **Stop** ([`ManagedServers::stop_all`]), at the end, on an error and on Ctrl-C/SIGTERM:
//!    SIGTERM to each process group, up to 10 s for the whole group to exit, then SIGKILL.
//!    Dropping a server's process handle SIGKILLs its group, so a panic leaves nothing
//!    behind. (Only `kill -9` of chimera itself can orphan a server: the next run then finds
//!    its port in use and says so.)

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use petgraph::graph::NodeIndex;
use tokio::sync::watch;

use super::now_unix_ms;
use crate::manifest::{EndpointKind, ManagedServer};
use crate::plan::{NodeKind, Plan};
use crate::store::{Campaign, JournalEvent};

/// How long a stopped server's process group may take to exit after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// Pause between readiness probes.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// A pull that sends nothing for this long has stalled.
const PULL_STALL: Duration = Duration::from_secs(300);
/// Lines of a server's log shown when it fails to start.
const LOG_TAIL_LINES: usize = 15;
/// Expanded values shorter than this are not masked in the server output quoted in errors
/// (masking `1` or `on` would garble every line, and so short a value is no secret); the
/// command line chimera shows never holds an expanded value, whatever its length.
const MIN_MASKED_LEN: usize = 4;

/// Why managed servers could not be started, kept running, or given their models.
#[derive(Debug, thiserror::Error)]
pub enum ManagedError {
    /// `${VAR}` names a variable that is not set.
    #[error(
        "endpoint `{endpoint}`: `managed.{key}` uses `${{{var}}}`, which is not set in chimera's environment\n  = help: {help}; nothing was run"
    )]
    UnsetVar {
        /// Endpoint id.
        endpoint: String,
        /// The key: `command[0]`, `env.OLLAMA_MODELS`...
        key: String,
        /// The variable.
        var: String,
        /// What to do.
        help: String,
    },
    /// A value cannot be expanded (an unclosed `${`, `~/` without a home directory).
    #[error("endpoint `{endpoint}`: `managed.{key}`: {message}; nothing was run")]
    BadValue {
        /// Endpoint id.
        endpoint: String,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Something already answers where the managed server should listen.
    #[error(
        "endpoint `{endpoint}` ({url}): something already answers at {addr}, so chimera cannot start its managed server there (port in use)\n  = help: stop that server, or remove `managed` from the endpoint (or pass `--unmanaged` to `chimera run`) to use the running server as it is; nothing was run"
    )]
    PortInUse {
        /// Endpoint id.
        endpoint: String,
        /// URL.
        url: String,
        /// host:port.
        addr: String,
    },
    /// The command could not be started.
    #[error(
        "endpoint `{endpoint}`: cannot start `{program}`: {message}\n  = help: {help}; nothing was run"
    )]
    Spawn {
        /// Endpoint id.
        endpoint: String,
        /// The program.
        program: String,
        /// What the OS said.
        message: String,
        /// What to do.
        help: String,
    },
    /// The server log could not be written.
    #[error("endpoint `{endpoint}`: cannot write the server log {}: {source}", path.display())]
    Log {
        /// Endpoint id.
        endpoint: String,
        /// The log file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server exited before it answered, or did not answer in time.
    #[error(
        "endpoint `{endpoint}` ({url}): the managed server `{command}` {why}\n{tail}  = help: {help}"
    )]
    NotReady {
        /// Endpoint id.
        endpoint: String,
        /// URL.
        url: String,
        /// The command line.
        command: String,
        /// What happened.
        why: String,
        /// The last lines of its log, formatted.
        tail: String,
        /// What to do.
        help: String,
    },
    /// A server died during the campaign and an earlier restart failed.
    #[error(
        "endpoint `{endpoint}` ({url}): its managed server died and could not be started again ({message}); see {}", log.display()
    )]
    Down {
        /// Endpoint id.
        endpoint: String,
        /// URL.
        url: String,
        /// The first failure.
        message: String,
        /// The server log.
        log: PathBuf,
    },
    /// A model could not be pulled.
    #[error(
        "endpoint `{endpoint}` ({url}): cannot pull model `{model}`: {message}\n  = help: check the model's `tag` in the manifest and the server log{}; nothing was run",
        log.as_ref().map(|l| format!(" {}", l.display())).unwrap_or_default()
    )]
    Pull {
        /// Endpoint id.
        endpoint: String,
        /// URL.
        url: String,
        /// Model tag.
        model: String,
        /// What went wrong.
        message: String,
        /// The server log, when chimera manages the server.
        log: Option<PathBuf>,
    },
    /// Ctrl-C / SIGTERM while starting or pulling.
    #[error("interrupted")]
    Interrupted,
}

impl From<ManagedError> for super::campaign::CampaignError {
    fn from(e: ManagedError) -> Self {
        match e {
            ManagedError::Interrupted => super::campaign::CampaignError::Interrupted,
            e => super::campaign::CampaignError::Managed(e),
        }
    }
}

impl ManagedError {
    /// What went wrong, in a few words (no endpoint prefix, no advice).
    fn reason(&self) -> String {
        match self {
            ManagedError::NotReady { why, .. } => why.clone(),
            ManagedError::Spawn {
                program, message, ..
            } => format!("cannot start `{program}`: {message}"),
            ManagedError::Pull { model, message, .. } => {
                format!("cannot pull model `{model}`: {message}")
            }
            other => other
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// A server that was started again before a cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restarted {
    /// Endpoint id.
    pub endpoint: String,
    /// URL.
    pub url: String,
    /// How the dead server had ended.
    pub exit: String,
}

/// What `${VAR}` / `~` expansion found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// The variable is not set (or not valid Unicode).
    Unset(String),
    /// `${` without `}`, or an empty name.
    Malformed(String),
    /// `~/` but no home directory is known.
    NoHome,
}

/// Expands `${VAR}` anywhere in `value` (through `lookup`) and a leading `~/` (or a lone `~`)
/// to `home`. A `$` not followed by `{` is kept as it is.
pub fn expand(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    home: Option<&str>,
) -> Result<String, ExpandError> {
    let mut rest = value;
    let mut out = String::with_capacity(value.len());
    if rest == "~" || rest.starts_with("~/") {
        let h = home.filter(|h| !h.is_empty()).ok_or(ExpandError::NoHome)?;
        out.push_str(h.trim_end_matches('/'));
        rest = &rest[1..];
    }
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(ExpandError::Malformed(format!(
                "`${{` without a closing `}}` in `{value}`"
            )));
        };
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ExpandError::Malformed(format!(
                "`${{{name}}}` in `{value}` is not a variable name (letters, digits, `_`)"
            )));
        }
        out.push_str(&lookup(name).ok_or_else(|| ExpandError::Unset(name.to_owned()))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// What to do about an unset variable.
fn unset_help(var: &str) -> String {
    let demo = var == "CHIMERA_LLAMA_SERVER"
        || var.starts_with("CHIMERA_MODEL_")
        || var.starts_with("CHIMERA_LLAMA")
        || var.starts_with("CHIMERA_GEMMA");
    if demo {
        format!(
            "run `scripts/install-llama-server.sh --print` (it builds llama-server and fetches the model once, then prints their paths) and export `{var}` from its output, or run `make demo`, which does both"
        )
    } else {
        format!("export `{var}` before `chimera run`, or write the value into the manifest")
    }
}

/// What to do about a program that cannot be started: `program` (as expanded) chooses the
/// advice, `shown` (as written, `${VAR}` kept) is what the advice may quote.
fn spawn_help(program: &str, shown: &str) -> String {
    let name = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program);
    if name == "ollama" {
        "install Ollama (https://ollama.com/download; on Linux `curl -fsSL https://ollama.com/install.sh | sh`) so that `ollama` is on the PATH, or fix `managed.command[0]`; chimera can also use Ollama servers that are already running: start them yourself and remove `managed` from the endpoint".to_owned()
    } else if name.starts_with("llama-server") {
        "build llama-server with `scripts/install-llama-server.sh` (`--print` prints its path) and put that path in `managed.command[0]`; chimera can also use a llama-server that is already running: remove `managed` from the endpoint".to_owned()
    } else {
        format!(
            "install `{shown}` or fix `managed.command[0]`; to use a server that is already running, remove `managed` from the endpoint"
        )
    }
}

/// A managed server's settings, expanded. `argv` and `env` hold the expanded values and go
/// to the server process only; what chimera writes uses `shown` (and [`ServerSpec::mask`]).
#[derive(Clone)]
struct ServerSpec {
    endpoint: String,
    url: String,
    kind: EndpointKind,
    /// Program and arguments, expanded.
    argv: Vec<String>,
    /// Program and arguments as the manifest writes them (`${VAR}` kept, `~/` expanded): the
    /// only form chimera ever writes.
    shown: Vec<String>,
    env: Vec<(String, String)>,
    /// Each value that came from a `${VAR}` (of the command or the env) with its `${VAR}`,
    /// longest value first; those of at least [`MIN_MASKED_LEN`] bytes.
    secrets: Vec<(String, String)>,
    startup_timeout: Duration,
    log: PathBuf,
}

/// Without the expanded values (`{:?}` of a server must not leak them either).
impl std::fmt::Debug for ServerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSpec")
            .field("endpoint", &self.endpoint)
            .field("url", &self.url)
            .field("kind", &self.kind)
            .field("command", &self.shown)
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .field("startup_timeout", &self.startup_timeout)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl ServerSpec {
    /// `text` with every expanded value replaced by its `${VAR}`: for server output that
    /// chimera quotes (a server may print its command line or environment).
    fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (value, var) in &self.secrets {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), var);
            }
        }
        out
    }

    /// The command line as chimera shows it: `shown`, quoted where needed.
    fn command_line(&self) -> String {
        self.shown
            .iter()
            .map(|a| {
                if a.is_empty() || a.contains(char::is_whitespace) {
                    format!("'{a}'")
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// True when process `pid` is alive and its program (`argv[0]`) is `program`.
fn runs_program(pid: u32, program: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    // A zombie has an empty command line.
    !argv0.is_empty() && argv0 == program.as_bytes()
}

/// A file name for an endpoint id.
fn log_name(endpoint: &str) -> String {
    let safe: String = endpoint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.log")
}

/// Expands one endpoint's `managed` settings.
fn resolve_one(
    endpoint: &str,
    url: &str,
    kind: EndpointKind,
    m: &ManagedServer,
    log_dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    home: Option<&str>,
) -> Result<ServerSpec, ManagedError> {
    let fail = |key: String, e: ExpandError| match e {
        ExpandError::Unset(var) => ManagedError::UnsetVar {
            endpoint: endpoint.to_owned(),
            key,
            help: unset_help(&var),
            var,
        },
        ExpandError::Malformed(message) => ManagedError::BadValue {
            endpoint: endpoint.to_owned(),
            key,
            message,
        },
        ExpandError::NoHome => ManagedError::BadValue {
            endpoint: endpoint.to_owned(),
            key,
            message: "`~/` needs a home directory, and `HOME` is not set".to_owned(),
        },
    };
    // The values looked up, to be masked; and a lookup that gives back the placeholder, for
    // the form chimera shows.
    let used = std::cell::RefCell::new(Vec::<(String, String)>::new());
    let recording = |name: &str| {
        let v = lookup(name)?;
        used.borrow_mut().push((v.clone(), format!("${{{name}}}")));
        Some(v)
    };
    let placeholder = |name: &str| lookup(name).map(|_| format!("${{{name}}}"));
    let mut argv = Vec::with_capacity(m.command.len());
    let mut shown = Vec::with_capacity(m.command.len());
    for (i, a) in m.command.iter().enumerate() {
        argv.push(expand(a, &recording, home).map_err(|e| fail(format!("command[{i}]"), e))?);
        shown.push(expand(a, &placeholder, home).map_err(|e| fail(format!("command[{i}]"), e))?);
    }
    if argv.first().is_none_or(String::is_empty) {
        return Err(ManagedError::BadValue {
            endpoint: endpoint.to_owned(),
            key: "command[0]".to_owned(),
            message: "the program is empty".to_owned(),
        });
    }
    let mut env = Vec::with_capacity(m.env.len());
    for (k, v) in &m.env {
        env.push((
            k.clone(),
            expand(v, &recording, home).map_err(|e| fail(format!("env.{k}"), e))?,
        ));
    }
    let mut secrets = used.into_inner();
    secrets.retain(|(v, _)| v.len() >= MIN_MASKED_LEN);
    secrets.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.cmp(b)));
    secrets.dedup();
    Ok(ServerSpec {
        endpoint: endpoint.to_owned(),
        url: url.trim_end_matches('/').to_owned(),
        kind,
        argv,
        shown,
        env,
        secrets,
        startup_timeout: Duration::try_from_secs_f64(m.startup_timeout_s)
            .unwrap_or(Duration::from_secs(60)),
        log: log_dir.join(log_name(endpoint)),
    })
}

/// Every managed endpoint of the plan (first declaration of a URL wins), expanded.
fn resolve(plan: &Plan, log_dir: &Path) -> Result<Vec<ServerSpec>, ManagedError> {
    let lookup = |name: &str| std::env::var(name).ok();
    let home = std::env::var("HOME").ok();
    let mut out: Vec<ServerSpec> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for rp in &plan.reports {
        for e in &rp.manifest.spec.endpoints {
            let url = e.url.trim_end_matches('/').to_owned();
            if seen.contains(&url) {
                continue;
            }
            seen.push(url);
            if let Some(m) = &e.managed {
                out.push(resolve_one(
                    &e.id,
                    &e.url,
                    e.kind,
                    m,
                    log_dir,
                    &lookup,
                    home.as_deref(),
                )?);
            }
        }
    }
    Ok(out)
}

/// `chimera run --unmanaged`: drops the `managed` settings of every endpoint of `plan`, so
/// that the campaign uses the servers already listening at the endpoints' URLs (health- and
/// model-checked like any unmanaged endpoint) and starts, pulls into and stops nothing. Cell
/// ids do not depend on `managed` (see [`crate::plan::key`]), so a campaign keeps its cells
/// either way; provenance records the servers as not managed by chimera. Says which
/// endpoints it changed.
pub fn use_running_servers(plan: &mut Plan) {
    let mut ids: Vec<String> = Vec::new();
    for rp in &mut plan.reports {
        for e in &mut rp.manifest.spec.endpoints {
            if e.managed.take().is_some() && !ids.contains(&e.id) {
                ids.push(e.id.clone());
            }
        }
    }
    if !ids.is_empty() {
        say(&format!(
            "--unmanaged: using the servers already listening for endpoint{} {} instead of starting them",
            if ids.len() == 1 { "" } else { "s" },
            ids.iter()
                .map(|id| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

/// The endpoint URLs a cell talks to.
pub(crate) fn node_urls(plan: &Plan, ni: NodeIndex) -> Vec<String> {
    let n = &plan.graph[ni];
    let spec = &plan.reports[n.report as usize].manifest.spec;
    let mut urls: Vec<String> = match n.kind {
        NodeKind::Warmup => plan
            .warmups
            .get(n.warmup as usize)
            .map(|w| w.url.clone())
            .into_iter()
            .collect(),
        NodeKind::Isolated => plan.configs[n.config as usize]
            .agents
            .get(n.agent as usize)
            .map(|a| spec.endpoints[a.endpoint].url.clone())
            .into_iter()
            .collect(),
        NodeKind::Single | NodeKind::Concurrent => plan.configs[n.config as usize]
            .agents
            .iter()
            .map(|a| spec.endpoints[a.endpoint].url.clone())
            .collect(),
        NodeKind::Analysis | NodeKind::Report => Vec::new(),
    };
    for u in &mut urls {
        let t = u.trim_end_matches('/').len();
        u.truncate(t);
    }
    urls.sort();
    urls.dedup();
    urls
}

/// The model tags the plan's cells and warm-ups use on the endpoint at `url`.
fn models_on(plan: &Plan, url: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let same = |u: &str| u.trim_end_matches('/') == url;
    for c in &plan.configs {
        let spec = &plan.reports[c.report].manifest.spec;
        let Some(m) = spec.models.iter().find(|m| *m.id == *c.model) else {
            continue;
        };
        if c.agents
            .iter()
            .any(|a| spec.endpoints.get(a.endpoint).is_some_and(|e| same(&e.url)))
            && !tags.contains(&m.tag)
        {
            tags.push(m.tag.clone());
        }
    }
    for w in &plan.warmups {
        if same(&w.url) && !w.model_tag.is_empty() && !tags.contains(&w.model_tag) {
            tags.push(w.model_tag.clone());
        }
    }
    tags
}

/// `exit code 1`, `signal 9 (SIGKILL)`.
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let name = match sig {
                1 => " (SIGHUP)",
                2 => " (SIGINT)",
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            return format!("signal {sig}{name}");
        }
    }
    status.to_string()
}

/// The process of a managed server, leader of its own process group. Dropping it kills the
/// whole group (SIGKILL) unless it has already exited: the last resort after a panic.
#[derive(Debug)]
struct ManagedChild {
    child: Child,
    status: Option<ExitStatus>,
    /// Where this start's part of the (appended) log begins.
    log_from: u64,
}

impl ManagedChild {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The leader's exit status, once it has exited (reaps it).
    fn poll(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Ok(Some(st)) = self.child.try_wait()
        {
            self.status = Some(st);
        }
        self.status
    }

    /// Whether any process of the group is left (the leader until it is reaped included).
    fn group_alive(&mut self) -> bool {
        if self.poll().is_none() {
            return true;
        }
        #[cfg(unix)]
        {
            group_pid(self.pid())
                .is_some_and(|p| rustix::process::test_kill_process_group(p).is_ok())
        }
        #[cfg(not(unix))]
        {
            false
        }
    }

    /// SIGTERM (`kill` false) or SIGKILL to the whole group.
    fn signal(&mut self, kill: bool) {
        #[cfg(unix)]
        {
            use rustix::process::{Signal, kill_process_group};
            if let Some(p) = group_pid(self.pid()) {
                let _ = kill_process_group(p, if kill { Signal::KILL } else { Signal::TERM });
            }
        }
        #[cfg(not(unix))]
        {
            if self.status.is_none() {
                let _ = self.child.kill();
            }
            let _ = kill;
        }
    }
}

#[cfg(unix)]
fn group_pid(pid: u32) -> Option<rustix::process::Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
}

impl Drop for ManagedChild {
    fn drop(&mut self) {
        if self.group_alive() {
            self.signal(true);
        }
        if self.status.is_none() {
            let _ = self.child.kill();
            if let Ok(st) = self.child.wait() {
                self.status = Some(st);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Proc {
    child: Option<ManagedChild>,
    /// Set when a restart failed: later cells fail at once instead of waiting again.
    broken: Option<String>,
}

#[derive(Debug)]
struct Server {
    spec: ServerSpec,
    /// Model tags the plan uses on this server, when it is an Ollama server (pulled when
    /// missing, at start and after a restart).
    models: Vec<String>,
    /// Serialises restarts of this server.
    gate: tokio::sync::Mutex<()>,
    proc: Mutex<Proc>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One line on stderr (never fails: a closed stderr is ignored).
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// The servers a campaign manages. Shared by the scheduler and its workers; every method
/// takes `&self`.
#[derive(Debug, Default)]
pub struct ManagedServers {
    servers: Mutex<Vec<Arc<Server>>>,
    campaign: Mutex<Option<Arc<Campaign>>>,
    cancel: Mutex<Option<watch::Receiver<bool>>>,
    stopping: AtomicBool,
    restarts: AtomicU32,
}

impl ManagedServers {
    /// No servers yet.
    pub fn new() -> ManagedServers {
        ManagedServers::default()
    }

    /// True when no server was started.
    pub fn is_empty(&self) -> bool {
        lock(&self.servers).is_empty()
    }

    /// How many times servers were started again after they had died.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::SeqCst)
    }

    /// The process ids of the running servers, by endpoint id.
    pub fn pids(&self) -> Vec<(String, u32)> {
        lock(&self.servers)
            .iter()
            .filter_map(|s| {
                let mut p = lock(&s.proc);
                let c = p.child.as_mut()?;
                c.poll()
                    .is_none()
                    .then(|| (s.spec.endpoint.clone(), c.pid()))
            })
            .collect()
    }

    fn journal(&self, ev: &JournalEvent) {
        let campaign = lock(&self.campaign).clone();
        if let Some(c) = campaign
            && let Err(e) = c.journal(ev)
        {
            tracing::warn!("cannot journal a managed-server event: {e}");
        }
    }

    fn cancel_rx(&self) -> watch::Receiver<bool> {
        lock(&self.cancel).clone().unwrap_or_else(|| {
            // A receiver whose sender is gone: never cancelled.
            watch::channel(false).1
        })
    }

    fn matching(&self, urls: &[String]) -> Vec<Arc<Server>> {
        lock(&self.servers)
            .iter()
            .filter(|s| urls.iter().any(|u| u.trim_end_matches('/') == s.spec.url))
            .cloned()
            .collect()
    }

    /// Starts every managed server of the plan, waits until each answers, and pulls the
    /// models missing on managed Ollama servers. On an error the servers already started stay
    /// registered, so that [`ManagedServers::stop_all`] stops them.
    pub async fn start(
        &self,
        plan: &Plan,
        campaign: &Arc<Campaign>,
        cancel: watch::Receiver<bool>,
    ) -> Result<(), ManagedError> {
        let specs = resolve(plan, &campaign.dir().join("servers"))?;
        if specs.is_empty() {
            return Ok(());
        }
        *lock(&self.campaign) = Some(campaign.clone());
        *lock(&self.cancel) = Some(cancel.clone());
        self.stop_leftovers(campaign, &specs).await;
        for s in &specs {
            if let Some(addr) = answers(&s.url).await {
                return Err(ManagedError::PortInUse {
                    endpoint: s.endpoint.clone(),
                    url: s.url.clone(),
                    addr,
                });
            }
        }
        // Spawn all first, so that they start in parallel, then wait for each.
        let mut started = Vec::with_capacity(specs.len());
        for spec in specs {
            if self.stopping.load(Ordering::SeqCst) {
                return Err(ManagedError::Interrupted);
            }
            let child = spawn(&spec, "starting")?;
            let models = if spec.kind == EndpointKind::Ollama {
                models_on(plan, &spec.url)
            } else {
                Vec::new()
            };
            let server = Arc::new(Server {
                spec,
                models,
                gate: tokio::sync::Mutex::new(()),
                proc: Mutex::new(Proc {
                    child: Some(child),
                    broken: None,
                }),
            });
            lock(&self.servers).push(server.clone());
            started.push(server);
        }
        for s in &started {
            let mut c = cancel.clone();
            let t0 = Instant::now();
            wait_ready(s, &mut c).await?;
            let pid = lock(&s.proc).child.as_ref().map_or(0, ManagedChild::pid);
            self.journal(&JournalEvent::ServerStarted {
                at_unix_ms: now_unix_ms(),
                endpoint: s.spec.endpoint.clone(),
                url: s.spec.url.clone(),
                pid,
            });
            say(&format!(
                "managed server `{}` ({}) answers after {:.1} s: pid {pid}, log {}",
                s.spec.endpoint,
                s.spec.url,
                t0.elapsed().as_secs_f64(),
                s.spec.log.display()
            ));
        }
        for s in &started {
            for tag in &s.models {
                ensure_model(&s.spec, tag, cancel.clone()).await?;
            }
        }
        Ok(())
    }

    /// Stops the servers a previous run of this campaign started and never stopped (it was
    /// killed with SIGKILL): the journal's last `server_started`/`server_restarted` pid of each
    /// endpoint without a later `server_stopped`, when that process still runs the same
    /// program. Anything else on the port is left alone (and refused afterwards).
    async fn stop_leftovers(&self, campaign: &Arc<Campaign>, specs: &[ServerSpec]) {
        let Ok(events) = campaign.journal_events() else {
            return;
        };
        for spec in specs {
            let mut pid = None;
            for ev in &events {
                match ev {
                    JournalEvent::ServerStarted {
                        endpoint, pid: p, ..
                    }
                    | JournalEvent::ServerRestarted {
                        endpoint, pid: p, ..
                    } if *endpoint == spec.endpoint && *p > 0 => {
                        pid = Some(*p);
                    }
                    JournalEvent::ServerStopped { endpoint, .. } if *endpoint == spec.endpoint => {
                        pid = None;
                    }
                    _ => {}
                }
            }
            let Some(pid) = pid else { continue };
            if !runs_program(
                pid,
                spec.argv.first().map(String::as_str).unwrap_or_default(),
            ) {
                continue;
            }
            say(&format!(
                "managed server `{}` (pid {pid}) was left running by an interrupted run of this \
                 campaign; stopping it",
                spec.endpoint
            ));
            #[cfg(unix)]
            if let Some(p) = group_pid(pid) {
                use rustix::process::{Signal, kill_process_group};
                let _ = kill_process_group(p, Signal::TERM);
                let t0 = Instant::now();
                while runs_program(pid, &spec.argv[0]) && t0.elapsed() < STOP_GRACE {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if runs_program(pid, &spec.argv[0]) {
                    let _ = kill_process_group(p, Signal::KILL);
                }
            }
            self.journal(&JournalEvent::ServerStopped {
                endpoint: spec.endpoint.clone(),
                exit: format!("left running by an interrupted run (pid {pid}); stopped"),
                at_unix_ms: now_unix_ms(),
            });
        }
    }

    /// Starts again every server of `urls` that has exited (before a cell's attempt). Returns
    /// those restarted; an error when one cannot be started again (then, and for every later
    /// call, the cells that need it fail at once).
    pub async fn ensure_alive(&self, urls: &[String]) -> Result<Vec<Restarted>, ManagedError> {
        let mut out = Vec::new();
        for s in self.matching(urls) {
            let _gate = s.gate.lock().await;
            if self.stopping.load(Ordering::SeqCst) {
                return Err(ManagedError::Interrupted);
            }
            let exit = {
                let mut p = lock(&s.proc);
                if let Some(message) = &p.broken {
                    return Err(ManagedError::Down {
                        endpoint: s.spec.endpoint.clone(),
                        url: s.spec.url.clone(),
                        message: message.clone(),
                        log: s.spec.log.clone(),
                    });
                }
                match p.child.as_mut().and_then(ManagedChild::poll) {
                    Some(st) => describe_exit(st),
                    None => continue,
                }
            };
            tracing::warn!(
                "managed server `{}` ({}) has exited ({exit}); starting it again",
                s.spec.endpoint,
                s.spec.url
            );
            match self.restart(&s, &exit).await {
                Ok(()) => {
                    self.restarts.fetch_add(1, Ordering::SeqCst);
                    self.journal(&JournalEvent::ServerRestarted {
                        at_unix_ms: now_unix_ms(),
                        endpoint: s.spec.endpoint.clone(),
                        exit: exit.clone(),
                        pid: lock(&s.proc).child.as_ref().map_or(0, ManagedChild::pid),
                    });
                    out.push(Restarted {
                        endpoint: s.spec.endpoint.clone(),
                        url: s.spec.url.clone(),
                        exit,
                    });
                }
                Err(ManagedError::Interrupted) => return Err(ManagedError::Interrupted),
                Err(e) => {
                    let reason = e.reason();
                    lock(&s.proc).broken = Some(reason.clone());
                    return Err(ManagedError::Down {
                        endpoint: s.spec.endpoint.clone(),
                        url: s.spec.url.clone(),
                        message: reason,
                        log: s.spec.log.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn restart(&self, s: &Server, exit: &str) -> Result<(), ManagedError> {
        {
            let mut p = lock(&s.proc);
            if self.stopping.load(Ordering::SeqCst) {
                return Err(ManagedError::Interrupted);
            }
            // Dropping the old handle kills what is left of its process group.
            drop(p.child.take());
            p.child = Some(spawn(
                &s.spec,
                &format!("restarting after the server exited ({exit})"),
            )?);
        }
        let mut cancel = self.cancel_rx();
        wait_ready(s, &mut cancel).await?;
        // A server with a fresh model store (or an emulator) needs its models again.
        for tag in &s.models {
            ensure_model(&s.spec, tag, cancel.clone()).await?;
        }
        Ok(())
    }

    /// Describes the servers of `urls` that have exited, waiting up to `grace` for a server
    /// whose connections just broke to be seen as exited. Empty when all are alive (or none
    /// of `urls` is managed).
    pub async fn exited(&self, urls: &[String], grace: Duration) -> Vec<String> {
        let servers = self.matching(urls);
        if servers.is_empty() {
            return Vec::new();
        }
        let deadline = Instant::now() + grace;
        loop {
            let dead: Vec<String> = servers
                .iter()
                .filter_map(|s| {
                    let mut p = lock(&s.proc);
                    let st = p.child.as_mut().and_then(ManagedChild::poll)?;
                    Some(format!(
                        "the managed server of endpoint `{}` exited ({})",
                        s.spec.endpoint,
                        describe_exit(st)
                    ))
                })
                .collect();
            if !dead.is_empty() || Instant::now() >= deadline {
                return dead;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every server: SIGTERM to each process group, up to [`STOP_GRACE`] for the
    /// groups to exit, then SIGKILL. Journals how each ended. No restart happens afterwards.
    pub async fn stop_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let servers: Vec<Arc<Server>> = lock(&self.servers).clone();
        let mut children: Vec<(Arc<Server>, ManagedChild)> = servers
            .iter()
            .filter_map(|s| {
                let c = lock(&s.proc).child.take()?;
                Some((s.clone(), c))
            })
            .collect();
        if children.is_empty() {
            return;
        }
        let mut already = Vec::with_capacity(children.len());
        for (_, c) in &mut children {
            already.push(c.poll().is_some());
            if c.group_alive() {
                c.signal(false);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            let gone = children.iter_mut().all(|(_, c)| !c.group_alive());
            if gone || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for ((s, mut c), was_dead) in children.into_iter().zip(already) {
            let forced = c.group_alive();
            if forced {
                c.signal(true);
                let until = Instant::now() + Duration::from_secs(2);
                while c.poll().is_none() && Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            let mut exit = c.poll().map_or_else(|| "unknown".to_owned(), describe_exit);
            if was_dead {
                exit.push_str(", had already exited");
            } else if forced {
                exit.push_str(&format!(
                    ", killed after {} s without exiting on SIGTERM",
                    STOP_GRACE.as_secs()
                ));
            }
            drop(c);
            self.journal(&JournalEvent::ServerStopped {
                at_unix_ms: now_unix_ms(),
                endpoint: s.spec.endpoint.clone(),
                exit: exit.clone(),
            });
            say(&format!(
                "managed server `{}` stopped ({exit})",
                s.spec.endpoint
            ));
        }
    }
}

/// The `host:port` where something accepts connections at `url`, if anything does.
async fn answers(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?.to_owned();
    let port = u.port_or_known_default()?;
    let addr = format!("{host}:{port}");
    let connect = tokio::net::TcpStream::connect(addr.clone());
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(_)) => Some(addr),
        _ => None,
    }
}

/// Starts the server's command (see the module documentation); `note` goes into the log.
fn spawn(spec: &ServerSpec, note: &str) -> Result<ManagedChild, ManagedError> {
    let log_err = |source| ManagedError::Log {
        endpoint: spec.endpoint.clone(),
        path: spec.log.clone(),
        source,
    };
    if let Some(dir) = spec.log.parent() {
        std::fs::create_dir_all(dir).map_err(log_err)?;
    }
    let mut options = std::fs::File::options();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Owner only: the server's output may repeat what it was given (tokens included).
        options.mode(0o600);
    }
    let mut out = options.open(&spec.log).map_err(log_err)?;
    #[cfg(unix)]
    {
        // A log created by an older chimera (or by hand) is tightened too.
        use std::os::unix::fs::PermissionsExt;
        out.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(log_err)?;
    }
    let log_from = out.metadata().map_or(0, |m| m.len());
    writeln!(
        out,
        "=== chimera {}: {note} `{}` (unix ms {:.0}) ===",
        env!("CARGO_PKG_VERSION"),
        spec.command_line(),
        now_unix_ms()
    )
    .map_err(log_err)?;
    let err = out.try_clone().map_err(log_err)?;
    let program = &spec.argv[0];
    let mut cmd = Command::new(program);
    cmd.args(&spec.argv[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let shown = &spec.shown[0];
    let child = cmd.spawn().map_err(|e| ManagedError::Spawn {
        endpoint: spec.endpoint.clone(),
        program: shown.clone(),
        message: match e.kind() {
            std::io::ErrorKind::NotFound if program.contains('/') => "no such file".to_owned(),
            std::io::ErrorKind::NotFound => "program not found on the PATH".to_owned(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied (not an executable file?)".to_owned()
            }
            _ => e.to_string(),
        },
        help: spawn_help(program, shown),
    })?;
    Ok(ManagedChild {
        child,
        status: None,
        log_from,
    })
}

/// The last lines of a log from byte `from` on, indented for an error message.
fn log_tail(path: &Path, from: u64, lines: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(16 * 1024).max(from.min(len));
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &all[all.len().saturating_sub(lines)..];
    if tail.is_empty() {
        return format!("  (its log {} is empty)\n", path.display());
    }
    let mut out = format!("  last lines of {}:\n", path.display());
    for l in tail {
        out.push_str("    | ");
        out.push_str(l);
        out.push('\n');
    }
    out
}

fn probe_client() -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(5))
        .build()
        .ok()
}

/// The innermost cause of an error (reqwest's outer messages say little).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// One readiness probe: `Ok` when the server answers as ready, else what it did.
async fn probe(http: &reqwest::Client, spec: &ServerSpec) -> Result<(), String> {
    let get = |path: &str| http.get(format!("{}{path}", spec.url)).send();
    match spec.kind {
        EndpointKind::Ollama | EndpointKind::Emulator => {
            let r = get("/api/version").await.map_err(|e| root_cause(&e))?;
            if r.status().is_success() {
                Ok(())
            } else {
                Err(format!("GET /api/version answered {}", r.status()))
            }
        }
        EndpointKind::Openai => {
            let r = get("/health").await.map_err(|e| root_cause(&e))?;
            match r.status().as_u16() {
                200 => Ok(()),
                503 => Err("GET /health answered 503 (still loading the model)".to_owned()),
                _ => {
                    let m = get("/v1/models").await.map_err(|e| root_cause(&e))?;
                    if m.status().is_success() {
                        Ok(())
                    } else {
                        Err(format!(
                            "GET /health answered {}, GET /v1/models {}",
                            r.status(),
                            m.status()
                        ))
                    }
                }
            }
        }
    }
}

/// Sleeps `d`; `Err(Interrupted)` when Ctrl-C / SIGTERM arrives first.
async fn pause(d: Duration, cancel: &mut watch::Receiver<bool>) -> Result<(), ManagedError> {
    if *cancel.borrow() {
        return Err(ManagedError::Interrupted);
    }
    tokio::select! {
        () = tokio::time::sleep(d) => Ok(()),
        r = cancel.changed() => match r {
            Ok(()) if *cancel.borrow() => Err(ManagedError::Interrupted),
            Ok(()) => Ok(()),
            Err(_) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
        },
    }
}

/// Waits until the server answers, it exits, or its startup timeout passes.
async fn wait_ready(s: &Server, cancel: &mut watch::Receiver<bool>) -> Result<(), ManagedError> {
    let spec = &s.spec;
    let log_from = lock(&s.proc).child.as_ref().map_or(0, |c| c.log_from);
    let not_ready = |why: String, help: String| ManagedError::NotReady {
        endpoint: spec.endpoint.clone(),
        url: spec.url.clone(),
        command: spec.command_line(),
        why,
        tail: spec.mask(&log_tail(&spec.log, log_from, LOG_TAIL_LINES)),
        help,
    };
    let Some(http) = probe_client() else {
        return Err(not_ready(
            "cannot be probed (the HTTP client could not be built)".to_owned(),
            "report this as a bug".to_owned(),
        ));
    };
    let t0 = Instant::now();
    loop {
        let exited = {
            let mut p = lock(&s.proc);
            match p.child.as_mut() {
                Some(c) => c.poll().map(describe_exit),
                None => Some("stopped".to_owned()),
            }
        };
        if let Some(exit) = exited {
            return Err(not_ready(
                format!("exited with {exit} before it answered"),
                format!(
                    "read the log above ({}); fix the command or its environment in the manifest's `managed` settings",
                    spec.log.display()
                ),
            ));
        }
        let last = match probe(&http, spec).await {
            Ok(()) => return Ok(()),
            Err(why) => why,
        };
        if t0.elapsed() >= spec.startup_timeout {
            return Err(not_ready(
                format!(
                    "did not answer within {} s (last probe: {last})",
                    spec.startup_timeout.as_secs_f64()
                ),
                format!(
                    "read the log ({}); raise `managed.startup_timeout_s` if the server is only slow to start",
                    spec.log.display()
                ),
            ));
        }
        pause(PROBE_EVERY, cancel).await?;
    }
}

/// Pulls `model` into a managed Ollama server unless it already has it, then checks that it
/// is listed.
async fn ensure_model(
    spec: &ServerSpec,
    model: &str,
    cancel: watch::Receiver<bool>,
) -> Result<(), ManagedError> {
    let fail = |message: String| ManagedError::Pull {
        endpoint: spec.endpoint.clone(),
        url: spec.url.clone(),
        model: model.to_owned(),
        message,
        log: Some(spec.log.clone()),
    };
    let client =
        crate::backend::ollama::OllamaClient::new(&spec.url).map_err(|e| fail(e.to_string()))?;
    let listed = |r: Result<Option<String>, crate::backend::RequestError>| match r {
        Ok(d) => Ok(d.is_some()),
        Err(e) => Err(fail(format!(
            "cannot list its models (GET /api/tags): {}",
            e.message
        ))),
    };
    if listed(client.model_digest(model).await)? {
        return Ok(());
    }
    pull_model(&spec.endpoint, &spec.url, model, cancel)
        .await
        .map_err(|e| match e {
            ManagedError::Pull { message, .. } => fail(message),
            other => other,
        })?;
    if listed(client.model_digest(model).await)? {
        Ok(())
    } else {
        Err(fail(
            "the pull reported success, but GET /api/tags does not list the model".to_owned(),
        ))
    }
}

/// How a pull's progress is shown: a progress bar on a terminal, plain lines otherwise.
struct PullDisplay {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    status: String,
    quarter: u64,
}

impl PullDisplay {
    fn new(label: String) -> PullDisplay {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            ) {
                b.set_style(style);
            }
            b.set_message(label.clone());
            b
        });
        PullDisplay {
            bar,
            label,
            status: String::new(),
            quarter: 0,
        }
    }

    fn update(&mut self, status: &str, total: Option<u64>, completed: Option<u64>) {
        let changed = status != self.status;
        if changed {
            self.status = status.to_owned();
            self.quarter = 0;
        }
        match &self.bar {
            Some(b) => {
                if let Some(t) = total {
                    b.set_length(t);
                    b.set_position(completed.unwrap_or(0).min(t));
                }
                if changed {
                    b.set_message(format!("{}: {status}", self.label));
                }
            }
            None => {
                let quarter = match (total, completed) {
                    (Some(t), Some(c)) if t > 0 => (c.min(t) * 4 / t).min(4),
                    _ => 0,
                };
                if changed || quarter > self.quarter {
                    self.quarter = quarter;
                    let size = match (total, completed) {
                        (Some(t), Some(c)) if t > 0 => format!(
                            " {:.0} % of {:.1} MB",
                            c.min(t) as f64 * 100.0 / t as f64,
                            t as f64 / 1e6
                        ),
                        _ => String::new(),
                    };
                    say(&format!("{}: {status}{size}", self.label));
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
            say(&format!("{}: {}", self.label, self.status));
        }
    }
}

impl Drop for PullDisplay {
    fn drop(&mut self) {
        if let Some(b) = &self.bar
            && !b.is_finished()
        {
            b.abandon();
        }
    }
}

/// What one line of an `/api/pull` stream says.
fn pull_line(line: &[u8]) -> Result<(String, Option<u64>, Option<u64>), String> {
    let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        format!(
            "unreadable progress line `{}`: {e}",
            String::from_utf8_lossy(line)
                .chars()
                .take(200)
                .collect::<String>()
        )
    })?;
    if let Some(err) = v.get("error") {
        return Err(err.as_str().map_or_else(|| err.to_string(), str::to_owned));
    }
    let status = v
        .get("status")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let num = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    Ok((status, num("total"), num("completed")))
}

/// Pulls `model` into the Ollama server at `url` (`POST /api/pull`, streamed), showing its
/// progress (`status`, `total`, `completed`): a progress bar on a terminal, plain lines
/// otherwise. An `{"error": …}` line, a stream that fails, stalls for 5 minutes, or ends
/// without `success` is an error. `endpoint` names the server in messages.
pub async fn pull_model(
    endpoint: &str,
    url: &str,
    model: &str,
    mut cancel: watch::Receiver<bool>,
) -> Result<(), ManagedError> {
    let url = url.trim_end_matches('/');
    let fail = |message: String| ManagedError::Pull {
        endpoint: endpoint.to_owned(),
        url: url.to_owned(),
        model: model.to_owned(),
        message,
        log: None,
    };
    let http = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| fail(root_cause(&e)))?;
    let body = serde_json::json!({ "model": model, "stream": true }).to_string();
    let send = http
        .post(format!("{url}/api/pull"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send();
    let mut resp = tokio::select! {
        r = send => r.map_err(|e| fail(root_cause(&e)))?,
        () = cancelled(&mut cancel) => return Err(ManagedError::Interrupted),
    };
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(300).collect());
        return Err(fail(format!("POST /api/pull answered {status}: {msg}")));
    }
    let mut display = PullDisplay::new(format!("endpoint `{endpoint}`: pull {model}"));
    let mut buf: Vec<u8> = Vec::new();
    let mut success = false;
    let mut handle = |line: &[u8], display: &mut PullDisplay| -> Result<(), ManagedError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let (st, total, completed) = pull_line(line).map_err(&fail)?;
        if st == "success" {
            success = true;
        }
        display.update(&st, total, completed);
        Ok(())
    };
    loop {
        let chunk = tokio::select! {
            c = tokio::time::timeout(PULL_STALL, resp.chunk()) => c,
            () = cancelled(&mut cancel) => return Err(ManagedError::Interrupted),
        };
        let chunk = match chunk {
            Err(_) => {
                return Err(fail(format!(
                    "the pull sent nothing for {} s (last status: `{}`)",
                    PULL_STALL.as_secs(),
                    display.status
                )));
            }
            Ok(Err(e)) => {
                return Err(fail(format!(
                    "the pull stream failed: {} (last status: `{}`)",
                    root_cause(&e),
                    display.status
                )));
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(c))) => c,
        };
        buf.extend_from_slice(&chunk);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            handle(&line, &mut display)?;
        }
        if buf.len() > 1024 * 1024 {
            return Err(fail("a progress line longer than 1 MiB".to_owned()));
        }
    }
    let rest = std::mem::take(&mut buf);
    handle(&rest, &mut display)?;
    if !success {
        return Err(fail(format!(
            "the pull stream ended without `success` (last status: `{}`)",
            display.status
        )));
    }
    display.finish();
    Ok(())
}

/// Resolves when Ctrl-C / SIGTERM was signalled (never when the sender is gone).
async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    loop {
        if *cancel.borrow() {
            return;
        }
        if cancel.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The `host` provenance value of an endpoint: the URL's host, marked when chimera managed
/// the server.
pub(crate) fn provenance_host(host: &str, managed: bool) -> String {
    if managed {
        format!("{host} (server managed by chimera)")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("11435".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_a_leading_home() {
        let h = Some("/home/u");
        assert_eq!(
            expand("127.0.0.1:${PORT}", &env, h),
            Ok("127.0.0.1:11435".into())
        );
        assert_eq!(expand("${PORT}${PORT}", &env, h), Ok("1143511435".into()));
        assert_eq!(expand("a${EMPTY}b", &env, h), Ok("ab".into()));
        assert_eq!(
            expand("~/.ollama_1", &env, h),
            Ok("/home/u/.ollama_1".into())
        );
        assert_eq!(expand("~", &env, Some("/home/u/")), Ok("/home/u".into()));
        assert_eq!(expand("a~/b", &env, h), Ok("a~/b".into()));
        assert_eq!(expand("~user/x", &env, h), Ok("~user/x".into()));
        assert_eq!(expand("$PORT and $", &env, h), Ok("$PORT and $".into()));
        assert_eq!(
            expand("${NOPE}/x", &env, h),
            Err(ExpandError::Unset("NOPE".into()))
        );
        assert!(matches!(
            expand("${PORT", &env, h),
            Err(ExpandError::Malformed(_))
        ));
        assert!(matches!(
            expand("${}", &env, h),
            Err(ExpandError::Malformed(_))
        ));
        assert_eq!(expand("~/x", &env, None), Err(ExpandError::NoHome));
        assert_eq!(expand("~/${PORT}", &env, h), Ok("/home/u/11435".into()));
    }

    #[test]
    fn unset_variables_name_endpoint_key_variable_and_remedy() {
        let m = ManagedServer {
            command: vec!["${CHIMERA_LLAMA_SERVER}".into(), "-m".into()],
            env: Default::default(),
            startup_timeout_s: 5.0,
        };
        let e = resolve_one(
            "llama_a",
            "http://127.0.0.1:18181",
            EndpointKind::Openai,
            &m,
            Path::new("/tmp"),
            &|_| None,
            Some("/h"),
        )
        .expect_err("unset");
        let text = e.to_string();
        for want in [
            "llama_a",
            "command[0]",
            "${CHIMERA_LLAMA_SERVER}",
            "install-llama-server.sh --print",
            "make demo",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
        let m = ManagedServer {
            command: vec!["ollama".into(), "serve".into()],
            env: [("OLLAMA_MODELS".to_owned(), "${MY_STORE}/x".to_owned())].into(),
            startup_timeout_s: 5.0,
        };
        let e = resolve_one(
            "o",
            "http://127.0.0.1:1",
            EndpointKind::Ollama,
            &m,
            Path::new("/tmp"),
            &|_| None,
            None,
        )
        .expect_err("unset");
        assert!(e.to_string().contains("`managed.env.OLLAMA_MODELS`"), "{e}");
        assert!(e.to_string().contains("export `MY_STORE`"), "{e}");
    }

    #[test]
    fn expanded_values_are_shown_as_their_variables_and_masked_in_server_output() {
        let m = ManagedServer {
            command: vec![
                "~/bin/server".into(),
                "--token=${TOKEN}".into(),
                "--port".into(),
                "${PORT}".into(),
            ],
            env: [("API_KEY".to_owned(), "k-${KEY}".to_owned())].into(),
            startup_timeout_s: 5.0,
        };
        let lookup = |name: &str| match name {
            "TOKEN" => Some("tok-12345".to_owned()),
            "PORT" => Some("99".to_owned()),
            "KEY" => Some("hunter2-long".to_owned()),
            _ => None,
        };
        let spec = resolve_one(
            "s",
            "http://127.0.0.1:1",
            EndpointKind::Openai,
            &m,
            Path::new("/tmp"),
            &lookup,
            Some("/h"),
        )
        .expect("resolved");
        assert_eq!(
            spec.argv,
            ["/h/bin/server", "--token=tok-12345", "--port", "99"]
        );
        assert_eq!(
            spec.env,
            [("API_KEY".to_owned(), "k-hunter2-long".to_owned())]
        );
        assert_eq!(
            spec.command_line(),
            "/h/bin/server --token=${TOKEN} --port ${PORT}"
        );
        let debug = format!("{spec:?}");
        assert!(
            !debug.contains("tok-12345") && !debug.contains("hunter2"),
            "{debug}"
        );
        assert_eq!(
            spec.mask("argv: --token=tok-12345 --port 99; key k-hunter2-long"),
            "argv: --token=${TOKEN} --port 99; key k-${KEY}"
        );
    }

    #[test]
    fn missing_programs_say_how_to_get_them() {
        assert!(spawn_help("ollama", "ollama").contains("https://ollama.com/download"));
        assert!(spawn_help("ollama", "ollama").contains("remove `managed`"));
        assert!(
            spawn_help("/opt/x/bin/llama-server", "${CHIMERA_LLAMA_SERVER}")
                .contains("scripts/install-llama-server.sh")
        );
        assert!(spawn_help("vllm", "vllm").contains("install `vllm`"));
        let help = spawn_help("/opt/secret-token/vllm", "${VLLM}");
        assert!(
            help.contains("install `${VLLM}`") && !help.contains("secret"),
            "{help}"
        );
        assert_eq!(log_name("ollama 11434/x"), "ollama_11434_x.log");
    }

    #[cfg(unix)]
    #[test]
    fn exits_are_described() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe_exit(ExitStatus::from_raw(9)), "signal 9 (SIGKILL)");
        assert_eq!(describe_exit(ExitStatus::from_raw(1 << 8)), "exit code 1");
    }

    /// Live (not zombie) processes of process group `pgid`.
    #[cfg(target_os = "linux")]
    fn group_members(pgid: u32) -> Vec<u32> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            if f.len() > 2 && f[0] != "Z" && f[2] == pgid.to_string() {
                out.push(pid);
            }
        }
        out
    }

    #[cfg(target_os = "linux")]
    fn shell_server(dir: &Path, script: &str) -> ServerSpec {
        ServerSpec {
            endpoint: "t".into(),
            url: "http://127.0.0.1:9".into(),
            kind: EndpointKind::Emulator,
            argv: vec!["sh".into(), "-c".into(), script.into()],
            shown: vec!["sh".into(), "-c".into(), script.into()],
            env: Vec::new(),
            secrets: Vec::new(),
            startup_timeout: Duration::from_secs(1),
            log: dir.join("servers").join("t.log"),
        }
    }

    #[cfg(target_os = "linux")]
    fn wait_members(pgid: u32, n: usize) -> Vec<u32> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let m = group_members(pgid);
            if m.len() == n || Instant::now() > deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last resort: dropping the handle SIGKILLs the whole group, grandchildren included.
    #[cfg(target_os = "linux")]
    #[test]
    fn dropping_a_server_kills_its_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = shell_server(dir.path(), "trap '' TERM; sleep 30 & sleep 30");
        let child = spawn(&spec, "test").expect("spawn");
        let pgid = child.pid();
        assert_eq!(wait_members(pgid, 3).len(), 3, "sh and two sleeps");
        drop(child);
        assert_eq!(wait_members(pgid, 0), Vec::<u32>::new());
        let log = std::fs::read_to_string(&spec.log).expect("log");
        assert!(log.starts_with("=== chimera"), "{log}");
    }

    /// Stopping: SIGTERM to the group, which exits well within the grace period.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_all_terminates_the_whole_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = shell_server(dir.path(), "sleep 30 & wait");
        let child = spawn(&spec, "test").expect("spawn");
        let pgid = child.pid();
        assert_eq!(wait_members(pgid, 2).len(), 2, "sh and sleep");
        let servers = ManagedServers::new();
        lock(&servers.servers).push(Arc::new(Server {
            spec,
            models: Vec::new(),
            gate: tokio::sync::Mutex::new(()),
            proc: Mutex::new(Proc {
                child: Some(child),
                broken: None,
            }),
        }));
        assert_eq!(servers.pids(), vec![("t".to_owned(), pgid)]);
        let t0 = Instant::now();
        servers.stop_all().await;
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert_eq!(group_members(pgid), Vec::<u32>::new());
        assert!(servers.pids().is_empty());
        // No restart after the stop.
        let urls = vec!["http://127.0.0.1:9".to_owned()];
        assert!(matches!(
            servers.ensure_alive(&urls).await,
            Err(ManagedError::Interrupted)
        ));
    }

    /// A tiny HTTP server answering each path with a fixed status; `/health` answers with
    /// the statuses of `health` in turn (the last one repeated).
    async fn fake_server(health: Vec<u16>, models: u16) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        tokio::spawn(async move {
            let mut n = 0usize;
            while let Ok((mut sock, _)) = l.accept().await {
                let mut buf = vec![0u8; 4096];
                let Ok(k) = sock.read(&mut buf).await else {
                    continue;
                };
                let req = String::from_utf8_lossy(&buf[..k]).into_owned();
                let code = if req.starts_with("GET /health ") {
                    n += 1;
                    health[(n - 1).min(health.len() - 1)]
                } else if req.starts_with("GET /v1/models ") {
                    models
                } else {
                    404
                };
                let resp = format!(
                    "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            }
        });
        url
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn openai_servers_are_ready_on_health_200_or_else_on_v1_models() {
        let http = probe_client().expect("client");
        let spec = |url: String| ServerSpec {
            endpoint: "l".into(),
            url,
            kind: EndpointKind::Openai,
            argv: vec!["llama-server".into()],
            shown: vec!["llama-server".into()],
            env: Vec::new(),
            secrets: Vec::new(),
            startup_timeout: Duration::from_secs(1),
            log: PathBuf::from("/nonexistent/l.log"),
        };
        // llama-server: 503 while it loads the model, then 200.
        let s = spec(fake_server(vec![503, 200], 404).await);
        let first = probe(&http, &s).await.expect_err("loading");
        assert!(first.contains("503 (still loading the model)"), "{first}");
        probe(&http, &s).await.expect("ready");
        // No /health route: /v1/models decides.
        let s = spec(fake_server(vec![404], 200).await);
        probe(&http, &s).await.expect("ready by /v1/models");
        let s = spec(fake_server(vec![404], 500).await);
        let e = probe(&http, &s).await.expect_err("neither");
        assert!(e.contains("/v1/models 500"), "{e}");
        // Nothing listening.
        let s = spec("http://127.0.0.1:9".into());
        assert!(probe(&http, &s).await.is_err());
    }

    #[test]
    fn pull_lines_carry_progress_or_an_error() {
        assert_eq!(
            pull_line(
                br#"{"status":"pulling abc","digest":"sha256:abc","total":10,"completed":4}"#
            ),
            Ok(("pulling abc".into(), Some(10), Some(4)))
        );
        assert_eq!(
            pull_line(br#"{"status":"success"}"#),
            Ok(("success".into(), None, None))
        );
        assert_eq!(
            pull_line(br#"{"error":"pull model manifest: file does not exist"}"#),
            Err("pull model manifest: file does not exist".into())
        );
        assert!(pull_line(b"not json").is_err());
    }
}
