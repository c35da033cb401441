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

pub mod analysis;
pub mod backend;
pub mod cli;
pub mod emulator;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod import;
pub mod manifest;
pub mod metrics;
pub mod plan;
pub mod record;
pub mod report;
pub mod run;
pub mod server;
pub mod stats;
pub mod store;
pub mod table;
pub mod telemetry;
pub mod util;
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
        run::wait_for_stop().await;
        handle.shutdown().await;
        Err(Error::Interrupted)
    })
}

/// The default campaign name: the manifests' file stems joined with `+`.
fn campaign_name(manifests: &[std::path::PathBuf]) -> String {
    let stems: Vec<String> = manifests
        .iter()
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .collect();
    if stems.is_empty() {
        "campaign".to_owned()
    } else {
        stems.join("+")
    }
}

/// `chimera run`: plan, then run the plan into the campaign store (resuming it).
fn run_command(args: cli::RunArgs) -> Result<(), Error> {
    let mut plan = plan::build(&args.manifests)?;
    if args.unmanaged {
        server::use_running_servers(&mut plan);
    }
    let plan = std::sync::Arc::new(plan);
    let name = args
        .campaign
        .clone()
        .unwrap_or_else(|| campaign_name(&args.manifests));
    let entries: Vec<store::ManifestEntry> = plan
        .reports
        .iter()
        .map(|r| {
            // The absolute path, so `status`, `analyze` and a resume from another directory
            // find the manifests beside it (`depends_on`).
            store::ManifestEntry::new(
                &std::fs::canonicalize(&r.manifest.path)
                    .unwrap_or_else(|_| r.manifest.path.clone())
                    .display()
                    .to_string(),
                &r.report,
                &r.manifest.source,
            )
        })
        .collect();
    let work_dir = args
        .work_dir
        .clone()
        .unwrap_or_else(|| args.data.join(".work"));
    let run_opts = run::RunOptions::new(work_dir);
    let opts = run::campaign::CampaignOptions {
        data: args.data.clone(),
        name,
        force: args.force.clone(),
        fail_fast: args.fail_fast,
        use_cache: !args.no_cache,
        verify: args.verify,
        cell_timeout: args.cell_timeout.map(std::time::Duration::from_secs_f64),
        progress: true,
        fake_gpus: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Output)?;
    let outcome = rt.block_on(async {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            run::wait_for_stop().await;
            let _ = tx.send(true);
        });
        run::campaign::run_campaign(plan.clone(), entries, &opts, &run_opts, rx).await
    });
    let summary = match outcome {
        Ok(s) => s,
        Err(run::campaign::CampaignError::Interrupted) => return Err(Error::Interrupted),
        Err(e) => return Err(Error::Campaign(e)),
    };
    let _ = writeln!(
        std::io::stderr(),
        "{} cells: {} committed before, {} measured, {} from the shared cache, {} failed, {} blocked by a failed dependency{}",
        summary.total,
        summary.committed_before,
        summary.ran,
        summary.cached,
        summary.failed.len(),
        summary.blocked,
        match summary.server_restarts {
            0 => String::new(),
            1 => ", 1 managed-server restart".to_owned(),
            n => format!(", {n} managed-server restarts"),
        }
    );
    if summary.failed.is_empty() && summary.blocked == 0 {
        Ok(())
    } else {
        Err(Error::FailedCells {
            failed: summary.failed.len() + summary.blocked,
            total: summary.total,
        })
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
        Command::Status(args) => {
            let text = store::status(&args.data, args.campaign.as_deref(), args.verify)?;
            out.write_all(text.as_bytes()).map_err(Error::Output)?;
        }
        Command::Compact(args) => {
            let name = match args.campaign {
                Some(n) => n,
                None => match store::campaigns(&args.data).as_slice() {
                    [one] => one.clone(),
                    other => {
                        return Err(Error::Status(store::StatusError::Choose(format!(
                            "`{}` holds {} campaign(s){}\n  = help: pick one with --campaign NAME",
                            args.data.display(),
                            other.len(),
                            if other.is_empty() {
                                String::new()
                            } else {
                                format!(": {}", other.join(", "))
                            }
                        ))));
                    }
                },
            };
            let summary = table::compact(&args.data.join(&name)).map_err(Error::Table)?;
            writeln!(
                out,
                "compacted {} cell(s) of {} report(s) into {}",
                summary.cell_dirs,
                summary.reports.len(),
                args.data.join(&name).join("tables").display()
            )
            .map_err(Error::Output)?;
            for (t, n) in &summary.rows {
                writeln!(out, "  {t:<10} {n} row(s)").map_err(Error::Output)?;
            }
        }
        Command::Analyze(args) => {
            let done =
                analysis::analyze(&args.data, args.campaign.as_deref(), args.report.as_deref())?;
            for (dir, a) in &done {
                let files = analysis::write_outputs(dir, a)?;
                out.write_all(analysis::render::text(a, args.verbose).as_bytes())
                    .map_err(Error::Output)?;
                writeln!(
                    out,
                    "  tables: {}",
                    files[0].parent().unwrap_or(dir).display()
                )
                .map_err(Error::Output)?;
            }
        }
        Command::Report(args) => {
            let done =
                analysis::analyze(&args.data, args.campaign.as_deref(), args.report.as_deref())?;
            let several = done.len() > 1;
            for (dir, a) in &done {
                analysis::write_outputs(dir, a)?;
                let out_dir = match &args.out {
                    Some(o) if several => o.join(&a.campaign),
                    Some(o) => o.clone(),
                    None => dir.join("report"),
                };
                for w in report::write_reports(a, &out_dir).map_err(Error::Report)? {
                    writeln!(out, "{}", w.markdown.display()).map_err(Error::Output)?;
                }
            }
        }
        Command::Import(args) => match args.source {
            cli::ImportSource::Chimeraforge(a) => {
                let manifest = import::resolve_manifest(
                    &a.report,
                    a.manifest.as_deref(),
                    std::path::Path::new("experiments"),
                )?;
                let summary = import::import_chimeraforge(&import::ImportOptions {
                    source: a.dir,
                    manifest,
                    data: a.data,
                    campaign: a.campaign,
                })?;
                out.write_all(summary.render().as_bytes())
                    .map_err(Error::Output)?;
            }
        },
        Command::Emulate(args) => {
            drop(out);
            return run_emulator(&args);
        }
        Command::Telemetry(args) => match args.command {
            cli::TelemetryCommand::Probe { pcie, dcgm } => {
                let mut source: Box<dyn telemetry::GpuSource> = match dcgm {
                    Some(url) => match telemetry::DcgmSource::new(&url) {
                        Ok(s) => Box::new(s),
                        Err(message) => {
                            return Err(Error::Run(run::RunError::Endpoint {
                                endpoint: "dcgm-exporter".to_owned(),
                                url,
                                message,
                            }));
                        }
                    },
                    // The probe's own output explains a missing GPU: no warning on top.
                    None => match telemetry::NvmlSource::new(pcie) {
                        Ok(s) => Box::new(s),
                        Err(e) => {
                            tracing::info!("{e}");
                            Box::new(telemetry::NullSource)
                        }
                    },
                };
                out.write_all(telemetry::probe(source.as_mut()).as_bytes())
                    .map_err(Error::Output)?;
            }
        },
    }
    out.flush().map_err(Error::Output)
}
