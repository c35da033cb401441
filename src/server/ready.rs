//! Readiness: a started server is probed (through [`crate::backend::manage`]) until it
//! answers, exits, or its startup timeout passes.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::cancel::pause;
use super::error::ManagedError;
use super::process::log_tail;
use super::spec::ServerSpec;
use crate::backend::manage::ReadinessProbe;

/// Lines of a server's log shown when it fails to start.
const LOG_TAIL_LINES: usize = 15;
/// Pause between readiness probes.
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// Waits until the server of `spec` answers, it exits (`exited` says how, once it has), or
/// its startup timeout passes. `log_from` is where this start's part of its log begins.
pub(crate) async fn wait_ready(
    spec: &ServerSpec,
    log_from: u64,
    mut exited: impl FnMut() -> Option<String>,
    cancel: &mut watch::Receiver<bool>,
) -> Result<(), ManagedError> {
    let not_ready = |why: String, help: String| ManagedError::NotReady {
        endpoint: spec.endpoint.clone(),
        url: spec.url.clone(),
        command: spec.command_line(),
        why,
        tail: spec.mask(&log_tail(&spec.log, log_from, LOG_TAIL_LINES)),
        help,
    };
    let Some(prober) = ReadinessProbe::new(spec.kind, &spec.url) else {
        return Err(not_ready(
            "cannot be probed (the HTTP client could not be built)".to_owned(),
            "report this as a bug".to_owned(),
        ));
    };
    let t0 = Instant::now();
    loop {
        if let Some(exit) = exited() {
            return Err(not_ready(
                format!("exited with {exit} before it answered"),
                format!(
                    "read the log above ({}); fix the command or its environment in the manifest's `managed` settings",
                    spec.log.display()
                ),
            ));
        }
        let last = match prober.probe().await {
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
