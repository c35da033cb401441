//! The instruments: `chimera emulate` and `chimera telemetry`.

use std::io::Write;

use crate::cli::{EmulateArgs, TelemetryArgs, TelemetryCommand};
use crate::error::Error;
use crate::{emulator, run, telemetry};

use super::{runtime_with, with_stdout};

/// Opens the `--truth` file for appending.
fn open_truth(path: &std::path::Path) -> Result<std::fs::File, Error> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::Emulator(format!("cannot open {}: {e}", path.display())))
}

/// `chimera emulate`: serve until Ctrl-C / SIGTERM, then exit with [`Error::Interrupted`].
pub(super) fn emulate(args: &EmulateArgs) -> Result<(), Error> {
    let profile = match &args.profile {
        Some(path) => emulator::Profile::load(path).map_err(Error::Emulator)?,
        None => emulator::Profile::default(),
    };
    let listen = if args.listen.is_empty() {
        vec![std::net::SocketAddr::from(([127, 0, 0, 1], 11434))]
    } else {
        args.listen.clone()
    };
    let truth_file = args.truth.as_deref().map(open_truth).transpose()?;
    let rt = runtime_with(Some(args.worker_threads.max(1)))
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

/// `chimera telemetry probe`: the GPUs, which readings work, and the cost of one sample.
pub(super) fn telemetry(args: TelemetryArgs) -> Result<(), Error> {
    let TelemetryCommand::Probe { pcie, dcgm } = args.command;
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
    let text = telemetry::probe(source.as_mut());
    with_stdout(|out| out.write_all(text.as_bytes()).map_err(Error::Output))
}
