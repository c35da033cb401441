//! Waiting that Ctrl-C / SIGTERM (a `watch` flag set to `true`) cuts short.

use std::time::Duration;

use tokio::sync::watch;

use super::error::ManagedError;

/// Sleeps `d`; `Err(Interrupted)` when Ctrl-C / SIGTERM arrives first.
pub(crate) async fn pause(
    d: Duration,
    cancel: &mut watch::Receiver<bool>,
) -> Result<(), ManagedError> {
    if *cancel.borrow() {
        return Err(ManagedError::Interrupted);
    }
    tokio::select! {
        () = tokio::time::sleep(d) => Ok(()),
        r = cancel.changed() => match r {
            Ok(()) if *cancel.borrow() => Err(ManagedError::Interrupted),
            Ok(()) => Ok(()),
            Err(_) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
        },
    }
}

/// Resolves when Ctrl-C / SIGTERM was signalled (never when the sender is gone).
pub(crate) async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    loop {
        if *cancel.borrow() {
            return;
        }
        if cancel.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
