//! chimera: a declarative experiment orchestrator for LLM inference performance research.
//!
//! ```text
//! experiments/trNNN.yaml
//!   └─ manifest   parse + validate, errors with file:line:col and key path   (built)
//!       └─ plan   matrices → configurations → content-addressed cells → DAG  (built)
//!           └─ store → run → backend / workload / telemetry → table → analysis → report
//!                                                                   (later stages)
//! ```
//!
//! Every stage is a function from one owned type to the next; `main.rs` only parses the
//! command line, sets up logging and maps errors to exit codes ([`error`]).

pub mod backend;
pub mod cli;
pub mod emulator;
pub mod error;
pub mod manifest;
pub mod metrics;
pub mod plan;
pub mod workload;

use std::io::Write;

use cli::{Cli, Command, PlanFormat};
use error::Error;

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
pub fn run(cli: Cli) -> Result<(), Error> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match cli.command {
        Command::Validate { manifests } => {
            let plan = plan::build(&manifests)?;
            for rp in &plan.reports {
                let cells = plan
                    .graph
                    .node_weights()
                    .filter(|n| {
                        n.report as usize
                            == plan
                                .reports
                                .iter()
                                .position(|r| r.report == rp.report)
                                .unwrap_or(0)
                    })
                    .count();
                writeln!(
                    out,
                    "ok  {}  {}: {} configuration(s){}, {} node(s){}",
                    rp.manifest.path.display(),
                    rp.report,
                    rp.configs.len(),
                    if rp.missing.is_empty() {
                        String::new()
                    } else {
                        format!(" (+{} declared missing)", rp.missing.len())
                    },
                    cells,
                    if rp.pulled_in { " [dependency]" } else { "" }
                )
                .map_err(Error::Output)?;
            }
        }
        Command::Plan {
            manifests,
            format,
            explain,
        } => {
            let plan = plan::build(&manifests)?;
            tracing::info!(nodes = plan.graph.node_count(), "plan built");
            if let Some(prefix) = explain {
                let ni = plan.find(&prefix)?;
                out.write_all(plan::render::explain(&plan, ni).as_bytes())
                    .map_err(Error::Output)?;
            } else {
                match format {
                    PlanFormat::Text => out.write_all(plan::render::summary(&plan).as_bytes()),
                    PlanFormat::Json => plan::render::json(&plan, &mut out),
                    PlanFormat::Dot => plan::render::dot(&plan, &mut out),
                }
                .map_err(Error::Output)?;
            }
        }
        Command::Schema => out
            .write_all(manifest::schema_json().as_bytes())
            .map_err(Error::Output)?,
        Command::Run(_) => {
            return Err(Error::NotBuilt {
                command: "run",
                what: "campaign execution with resume and cache",
                help: "`chimera plan <manifest>` shows what a run would execute",
            });
        }
        Command::Status(_) => {
            return Err(Error::NotBuilt {
                command: "status",
                what: "campaign progress from the store",
                help: "`chimera plan <manifest>` shows the planned cells",
            });
        }
        Command::Analyze(_) => {
            return Err(Error::NotBuilt {
                command: "analyze",
                what: "statistics over a campaign's Parquet tables",
                help: "nothing to analyse until `chimera run` exists",
            });
        }
        Command::Report(_) => {
            return Err(Error::NotBuilt {
                command: "report",
                what: "TR-style Markdown reports with reproduction verdicts",
                help: "the published reference values are listed in each manifest's `references`",
            });
        }
        Command::Import(_) => {
            return Err(Error::NotBuilt {
                command: "import",
                what: "conversion of the original raw results into chimera tables",
                help: "the raw files are described in the reproduction specification",
            });
        }
        Command::Emulate(_) => {
            return Err(Error::NotBuilt {
                command: "emulate",
                what: "a deterministic Ollama-protocol test server",
                help: "no replacement yet",
            });
        }
        Command::Telemetry(_) => {
            return Err(Error::NotBuilt {
                command: "telemetry",
                what: "NVML / dcgm-exporter GPU sampling and `telemetry probe`",
                help: "`nvidia-smi` shows the GPUs meanwhile",
            });
        }
    }
    out.flush().map_err(Error::Output)
}
