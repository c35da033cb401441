//! The `runtime` axis: which executor runs the workflow, chosen at start.

use std::io;

use crate::exec::{AsyncStd, Smol, Tokio};
use crate::workflow::Work;

/// An executor configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runtime {
    /// tokio's multi-thread runtime; the workflow is spawned onto its workers (as chimera's
    /// in-process agents are).
    TokioDefault,
    /// tokio's current-thread runtime, the workflow on the main thread.
    TokioCurrentThread,
    /// tokio's current-thread runtime with a `LocalSet`, the workflow spawned with
    /// `spawn_local`.
    TokioLocalSet,
    /// `smol::block_on` with smol's sockets and timer.
    Smol,
    /// `async_std::task::block_on` with async-std's sockets and timer.
    AsyncStd,
    /// smol with `--rechunk 1024` (TR115's `smol-1kb`).
    Smol1kb,
}

impl Runtime {
    /// Every runtime, by name.
    pub(crate) const ALL: [Runtime; 6] = [
        Runtime::TokioDefault,
        Runtime::TokioCurrentThread,
        Runtime::TokioLocalSet,
        Runtime::Smol,
        Runtime::AsyncStd,
        Runtime::Smol1kb,
    ];

    /// The runtime of a name; the empty name is `tokio-default`.
    pub(crate) fn parse(name: &str) -> Option<Runtime> {
        if name.is_empty() {
            return Some(Runtime::TokioDefault);
        }
        Runtime::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Its name on the command line and in the job.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Runtime::TokioDefault => "tokio-default",
            Runtime::TokioCurrentThread => "tokio-current-thread",
            Runtime::TokioLocalSet => "tokio-localset",
            Runtime::Smol => "smol",
            Runtime::AsyncStd => "async-std",
            Runtime::Smol1kb => "smol-1kb",
        }
    }

    /// The names, for messages.
    pub(crate) fn names() -> String {
        Runtime::ALL.map(Runtime::name).join(", ")
    }

    /// The `--rechunk` this runtime implies when none is given.
    pub(crate) fn default_rechunk(self) -> usize {
        match self {
            Runtime::Smol1kb => 1024,
            _ => 0,
        }
    }

    /// Runs `work` to its end on this executor. An error is the records file's (or the
    /// runtime could not be built).
    pub(crate) fn run(self, work: Work) -> io::Result<()> {
        match self {
            Runtime::TokioDefault => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .enable_io()
                    .enable_time()
                    .build()?;
                rt.block_on(async move {
                    tokio::spawn(work.run::<Tokio>())
                        .await
                        .map_err(io::Error::other)?
                })
            }
            Runtime::TokioCurrentThread => tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()?
                .block_on(work.run::<Tokio>()),
            Runtime::TokioLocalSet => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()?;
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async move {
                    tokio::task::spawn_local(work.run::<Tokio>())
                        .await
                        .map_err(io::Error::other)?
                })
            }
            Runtime::Smol | Runtime::Smol1kb => smol::block_on(work.run::<Smol>()),
            Runtime::AsyncStd => async_std::task::block_on(work.run::<AsyncStd>()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Runtime::ALL {
            assert_eq!(Runtime::parse(r.name()), Some(r));
        }
        assert_eq!(Runtime::parse(""), Some(Runtime::TokioDefault));
        assert_eq!(Runtime::parse("tokio"), None);
        assert_eq!(Runtime::Smol1kb.default_rechunk(), 1024);
        assert_eq!(Runtime::Smol.default_rechunk(), 0);
        assert!(Runtime::names().starts_with("tokio-default, tokio-current-thread"));
    }
}
