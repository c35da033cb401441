//! The error type of managed-server supervision ([`ManagedError`]); the campaign wraps it.

use std::path::PathBuf;

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
        "endpoint `{endpoint}` ({url}): something already answers at {addr}, so chimera cannot start its managed server there (port in use)\n  = help: stop that server, or remove `managed` from the endpoint (or pass `--unmanaged` to `chimera run`) to use the running server as it is; shards that share this machine each need their own ports (`chimera run --port-offset K`); nothing was run"
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

impl ManagedError {
    /// What went wrong, in a few words (no endpoint prefix, no advice).
    pub(crate) fn reason(&self) -> String {
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
