//! chimera: a declarative experiment orchestrator for LLM inference performance research.
//!
//! ```text
//! experiments/trNNN.yaml
//!   └─ manifest   raw serde types → checked domain values, errors with file:line:col and key path
//!       └─ plan   matrices → configurations → content-addressed cells → DAG
//!           └─ store → run → backend / workload / telemetry → table → analysis → report
//! ```
//!
//! Every stage is a function from one owned type to the next; `main.rs` only parses the
//! command line, sets up logging and maps errors to exit codes ([`error`]); `commands` holds
//! one function per subcommand.

pub mod analysis;
pub mod backend;
pub mod cli;
mod commands;
pub mod emulator;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod import;
pub mod load;
pub mod manifest;
pub(crate) mod metrics;
pub mod plan;
pub mod record;
pub mod report;
pub mod run;
pub mod scale;
pub(crate) mod server;
pub mod stats;
pub mod store;
pub mod table;
pub mod telemetry;
pub(crate) mod util;
pub mod workload;

/// Sets up `tracing` on stderr with the filter from `--log` / `CHIMERA_LOG` (default `warn`).
pub fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let targets: Targets = filter
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::WARN));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false)
                .with_filter(targets),
        )
        .try_init();
}

/// Runs one command; results go to stdout, messages to stderr.
pub fn run(cli: cli::Cli) -> Result<(), error::Error> {
    commands::dispatch(cli)
}
