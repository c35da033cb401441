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
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
