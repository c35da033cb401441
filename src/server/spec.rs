//! Server specs: a manifest endpoint's `managed` settings with `${VAR}` and a leading `~/`
//! expanded (the expanded values go to the server only; what chimera writes shows `${VAR}`),
//! and the plan's questions about them (which endpoints, which models on each).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::console::say;
use super::error::ManagedError;
use crate::manifest::{EndpointKind, ManagedServer, ServerFlags};
use crate::plan::Plan;

/// Expanded values shorter than this are not masked in the server output quoted in errors
/// (masking `1` or `on` would garble every line, and so short a value is no secret); the
/// command line chimera shows never holds an expanded value, whatever its length.
const MIN_MASKED_LEN: usize = 4;

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
pub(crate) fn spawn_help(program: &str, shown: &str) -> String {
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
pub(crate) struct ServerSpec {
    pub(crate) endpoint: String,
    /// Where the server listens (the endpoint's URL, or its `--port-offset` one).
    pub(crate) url: String,
    /// The endpoint's URL as the manifest writes it (what cells name it by).
    pub(crate) nominal: String,
    pub(crate) kind: EndpointKind,
    /// Program and arguments, expanded.
    pub(crate) argv: Vec<String>,
    /// Program and arguments as the manifest writes them (`${VAR}` kept, `~/` expanded): the
    /// only form chimera ever writes.
    pub(crate) shown: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    /// Each value that came from a `${VAR}` (of the command or the env) with its `${VAR}`,
    /// longest value first; those of at least [`MIN_MASKED_LEN`] bytes.
    pub(crate) secrets: Vec<(String, String)>,
    pub(crate) startup_timeout: Duration,
    pub(crate) log: PathBuf,
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
    pub(crate) fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (value, var) in &self.secrets {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), var);
            }
        }
        out
    }

    /// The command line as chimera shows it: `shown`, quoted where needed.
    pub(crate) fn command_line(&self) -> String {
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
        nominal: url.trim_end_matches('/').to_owned(),
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

/// A managed endpoint's settings before `{server.NAME}` is filled in: what a configuration's
/// `server` values are rendered into (see [`ServerTemplate::render`]).
#[derive(Debug, Clone)]
pub(crate) struct ServerTemplate {
    endpoint: String,
    /// The URL as the manifest writes it (what cells name it by).
    pub(crate) nominal: String,
    /// Where the server listens (`--port-offset` applied).
    connect: String,
    kind: EndpointKind,
    managed: ManagedServer,
    log_dir: PathBuf,
}

impl ServerTemplate {
    /// The server spec for a configuration's `server` values (`flags`), `${VAR}` expanded.
    pub(crate) fn render(&self, flags: &ServerFlags) -> Result<ServerSpec, ManagedError> {
        let m = self.managed.render(flags).map_err(|e| ManagedError::BadValue {
            endpoint: self.endpoint.clone(),
            key: e.key,
            message: format!(
                "`{{server.{}}}` has no value: the configuration's `server` settings ({}) and `managed.defaults` lack `{}`",
                e.name,
                if flags.is_empty() { "none".to_owned() } else { flags.to_string() },
                e.name
            ),
        })?;
        let lookup = |name: &str| std::env::var(name).ok();
        let home = std::env::var("HOME").ok();
        let mut spec = resolve_one(
            &self.endpoint,
            &self.nominal,
            self.kind,
            &m,
            &self.log_dir,
            &lookup,
            home.as_deref(),
        )?;
        spec.url = self.connect.clone();
        Ok(spec)
    }
}

/// Every managed endpoint of the plan (first declaration of a URL wins), not yet rendered.
pub(crate) fn templates(plan: &Plan, log_dir: &Path) -> Vec<ServerTemplate> {
    let mut out: Vec<ServerTemplate> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for rp in &plan.reports {
        for e in &rp.manifest.spec.endpoints {
            let url = e.url.trim_end_matches('/').to_owned();
            if seen.contains(&url) {
                continue;
            }
            seen.push(url.clone());
            if let Some(m) = &e.managed {
                out.push(ServerTemplate {
                    endpoint: e.id.clone(),
                    nominal: url,
                    connect: e.connect_url().trim_end_matches('/').to_owned(),
                    kind: e.kind,
                    managed: m.clone(),
                    log_dir: log_dir.to_owned(),
                });
            }
        }
    }
    out
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

/// `chimera run --port-offset K`: every managed endpoint on this host (a loopback URL) listens
/// `K` ports higher, so that several shards of one campaign can run on one machine. The port
/// is replaced in the server's command arguments and environment values (an argument equal to
/// the port, or `:PORT` inside an argument or value, as in `--port 11434`,
/// `--listen 127.0.0.1:11434` or `OLLAMA_HOST=127.0.0.1:11434`); cells keep the manifest's
/// URL as their identity, so the campaign's cell ids do not change. An endpoint whose command
/// and environment do not mention its port is refused: its server would not move. Returns
/// what moved (`` `emu_a` 11434 → 11534 ``).
pub fn offset_ports(plan: &mut Plan, offset: u16) -> Result<Vec<String>, String> {
    if offset == 0 {
        return Ok(Vec::new());
    }
    let mut moved: Vec<String> = Vec::new();
    for rp in &mut plan.reports {
        for e in &mut rp.manifest.spec.endpoints {
            let Some(m) = e.managed.as_mut() else {
                continue;
            };
            let Some((base, port)) = loopback_port(&e.url) else {
                tracing::warn!(
                    "--port-offset: endpoint `{}` ({}) is not on this machine's loopback; its \
                     managed server keeps its address",
                    e.id,
                    e.url
                );
                continue;
            };
            let to = port.checked_add(offset).ok_or_else(|| {
                format!(
                    "endpoint `{}`: port {port} + --port-offset {offset} is past 65535; use a \
                     smaller offset",
                    e.id
                )
            })?;
            let (from_s, to_s) = (port.to_string(), to.to_string());
            let (from_c, to_c) = (format!(":{port}"), format!(":{to}"));
            let mut hits = 0;
            let mut swap = |v: &mut String| {
                let new = if *v == from_s {
                    to_s.clone()
                } else {
                    v.replace(&from_c, &to_c)
                };
                if new != *v {
                    hits += 1;
                    *v = new;
                }
            };
            m.command.iter_mut().skip(1).for_each(&mut swap);
            m.env.values_mut().for_each(&mut swap);
            if hits == 0 {
                return Err(format!(
                    "endpoint `{}` ({}): --port-offset cannot move its managed server: neither \
                     its command nor its environment mentions port {port}\n  = help: pass the \
                     port on the command line (e.g. `--port {port}`), or run the shards on \
                     separate machines without --port-offset",
                    e.id, e.url
                ));
            }
            e.listen_url = Some(format!("{base}:{to}"));
            moved.push(format!("`{}` {port} → {to}", e.id));
        }
    }
    Ok(moved)
}

/// `(scheme://host, port)` of a URL whose host is this machine (`127.0.0.1`, `localhost`,
/// `[::1]`) with an explicit port.
fn loopback_port(url: &str) -> Option<(String, u16)> {
    let url = url.trim_end_matches('/');
    let (scheme, rest) = url.split_once("://")?;
    let (host, port) = rest.rsplit_once(':')?;
    let local = matches!(host, "127.0.0.1" | "localhost" | "[::1]") || host.starts_with("127.");
    let port: u16 = port.parse().ok()?;
    local.then(|| (format!("{scheme}://{host}"), port))
}

/// The model tags the plan's cells and warm-ups use on the endpoint at `url`.
pub(crate) fn models_on(plan: &Plan, url: &str) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `m` resolved for endpoint `endpoint` (at a fixed URL, logs under `/tmp`).
    fn resolved(
        endpoint: &str,
        kind: EndpointKind,
        m: &ManagedServer,
        lookup: &dyn Fn(&str) -> Option<String>,
        home: Option<&str>,
    ) -> Result<ServerSpec, ManagedError> {
        let log_dir = Path::new("/tmp");
        resolve_one(
            endpoint,
            "http://127.0.0.1:1",
            kind,
            m,
            log_dir,
            lookup,
            home,
        )
    }

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
            defaults: Default::default(),
        };
        let e = resolved("llama_a", EndpointKind::Openai, &m, &|_| None, Some("/h"))
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
            defaults: Default::default(),
        };
        let e = resolved("o", EndpointKind::Ollama, &m, &|_| None, None).expect_err("unset");
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
            defaults: Default::default(),
        };
        let lookup = |name: &str| match name {
            "TOKEN" => Some("tok-12345".to_owned()),
            "PORT" => Some("99".to_owned()),
            "KEY" => Some("hunter2-long".to_owned()),
            _ => None,
        };
        let spec = resolved("s", EndpointKind::Openai, &m, &lookup, Some("/h")).expect("resolved");
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
}
