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
pub mod run;
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

/// `chimera emulate`: serve until Ctrl-C / SIGTERM, then exit with [`Error::Interrupted`].
fn run_emulator(args: &cli::EmulateArgs) -> Result<(), Error> {
    let profile = match &args.profile {
        Some(path) => emulator::Profile::load(path).map_err(Error::Emulator)?,
        None => emulator::Profile::default(),
    };
    let listen = if args.listen.is_empty() {
        vec![std::net::SocketAddr::from(([127, 0, 0, 1], 11434))]
    } else {
        args.listen.clone()
    };
    let truth_file = match &args.truth {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Error::Emulator(format!("cannot open {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Emulator(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let handle = emulator::spawn(profile, &listen)
            .await
            .map_err(|e| Error::Emulator(e.to_string()))?;
        if let Some(f) = truth_file {
            handle.truth.stream_to(Box::new(std::io::BufWriter::new(f)));
        }
        eprintln!("{}", emulator::BANNER);
        let mut stdout = std::io::stdout().lock();
        for addr in &handle.addrs {
            tracing::info!("emulator listening on http://{addr}");
            writeln!(stdout, "{addr}").map_err(Error::Output)?;
        }
        stdout.flush().map_err(Error::Output)?;
        drop(stdout);
        wait_for_signal().await;
        handle.shutdown().await;
        Err(Error::Interrupted)
    })
}

/// Resolves on Ctrl-C, or on SIGTERM on Unix.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `chimera run`: plan, then execute every cell in order; records go to `--out` or stdout.
fn run_command(args: cli::RunArgs) -> Result<(), Error> {
    let plan = plan::build(&args.manifests)?;
    let work_dir = args
        .work_dir
        .unwrap_or_else(|| std::env::temp_dir().join("chimera-work"));
    let opts = run::RunOptions::new(work_dir);
    let mut sink: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| {
                Error::Output(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", p.display()),
                ))
            },
        )?)),
        None => Box::new(std::io::stdout()),
    };
    let total = plan
        .order
        .iter()
        .filter(|&&n| {
            !matches!(
                plan.graph[n].kind,
                plan::NodeKind::Analysis | plan::NodeKind::Report
            )
        })
        .count();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Output)?;
    let mut done = 0usize;
    let outcome = rt.block_on(async {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let exec = run::execute(
            &plan,
            &opts,
            |cell| {
                done += 1;
                eprintln!(
                    "[{done}/{total}] {:<10} {} {} rep {}  {}  {:.0} ms{}",
                    cell.kind,
                    cell.report,
                    cell.config.as_deref().unwrap_or("-"),
                    cell.repetition,
                    cell.status,
                    cell.wall_ms,
                    cell.error
                        .as_ref()
                        .map(|e| format!("  ({e})"))
                        .unwrap_or_default()
                );
                serde_json::to_writer(&mut sink, cell)
                    .map_err(|e| run::RunError::Output(e.into()))?;
                sink.write_all(b"\n")
                    .and_then(|()| sink.flush())
                    .map_err(run::RunError::Output)
            },
            rx,
        );
        tokio::select! {
            r = exec => Some(r),
            _ = tokio::signal::ctrl_c() => {
                let _ = tx.send(true);
                None
            }
        }
    });
    match outcome {
        None => Err(Error::Interrupted),
        Some(Err(e)) => Err(Error::Run(e)),
        Some(Ok(0)) => Ok(()),
        Some(Ok(n)) => Err(Error::FailedCells { failed: n, total }),
    }
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
        Command::Run(args) => return run_command(args),
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
        Command::Emulate(args) => {
            drop(out);
            return run_emulator(&args);
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
