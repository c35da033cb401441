//! Command dispatch: one function per subcommand of [`crate::cli::Command`].
//!
//! Results go to stdout (buffered, flushed once at the end), messages to stderr; every
//! function returns an [`Error`] that `main` maps to an exit code. The commands that run
//! until interrupted (`run`, `emulate`) share `run::wait_for_stop`.

mod data;
mod load;
mod manifest;
mod run;
mod scale;
mod tools;

use std::io::Write;

use crate::cli::{Cli, Command};
use crate::error::Error;

/// Runs one command.
pub fn dispatch(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Validate(args) => manifest::validate(&args),
        Command::Plan(args) => manifest::plan(&args),
        Command::Schema { agent_record } => manifest::schema(agent_record),
        Command::Run(args) => run::run(&args),
        Command::Status(args) => data::status(&args),
        Command::Compact(args) => data::compact(&args),
        Command::Analyze(args) => data::analyze(&args),
        Command::Report(args) => data::report(&args),
        Command::Compare(args) => data::compare(&args),
        Command::Import(args) => data::import(args),
        Command::Load(args) => load::load(&args),
        Command::Emulate(args) => tools::emulate(&args),
        Command::Telemetry(args) => tools::telemetry(args),
        Command::Slurm(args) => scale::slurm(args),
        Command::K8s(args) => scale::k8s(&args),
    }
}

/// Runs `f` with a buffered stdout, then flushes it.
fn with_stdout(f: impl FnOnce(&mut dyn Write) -> Result<(), Error>) -> Result<(), Error> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    f(&mut out)?;
    out.flush().map_err(Error::Output)
}

/// A multi-threaded async runtime for the commands that talk to servers.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    runtime_with(None)
}

/// The runtime of [`runtime`], with `workers` worker threads (default: one per core).
///
/// Its workers look for I/O after every task they run (`event_interval(1)`; tokio's default
/// is every 61 tasks): chimera notes a reply's arrival when the task that reads it runs, and
/// under a heavy load (64 users on 2 cores) a worker busy with other tasks would otherwise
/// leave an arrived chunk unnoticed for up to 61 task polls, about 0.5 ms there. Measured in
/// `docs/notes/2026-12-05-client-error.md`.
fn runtime_with(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.enable_all().event_interval(1).build()
}
