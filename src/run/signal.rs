//! Waiting for Ctrl-C / SIGTERM.

/// Resolves when the process receives Ctrl-C (SIGINT) or SIGTERM (Ctrl-C only where there
/// is no SIGTERM, or its handler cannot be installed).
pub async fn wait_for_stop() {
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
