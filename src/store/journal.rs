//! `journal.jsonl`: one JSON event per line, appended and fsync'd per event.
//!
//! The journal is a record of what happened, not the source of truth (the committed cell
//! directories are). Reading tolerates a torn last line (a crash mid-append) and skips, with a
//! warning, any other line it cannot read, so a damaged journal never blocks a resume.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{StoreError, io_at};

/// One journal line. Serialized internally tagged: `{"event":"cell_started","cell":…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JournalEvent {
    /// A `chimera run` began.
    Started {
        /// Unique id of this run (the scheduler picks it).
        run_id: String,
        /// Cells in the plan.
        cells_total: u64,
        /// Of those, already committed (resumed).
        committed: u64,
        /// Of those, to run now.
        to_run: u64,
        /// When.
        at_unix_ms: f64,
    },
    /// An attempt of a cell began.
    CellStarted {
        /// Cell id.
        cell: String,
        /// Attempt number (1 = first).
        attempt: u32,
        /// When.
        at_unix_ms: f64,
    },
    /// A cell was committed (run, or adopted from the shared cache).
    CellCommitted {
        /// Cell id.
        cell: String,
        /// Attempt number.
        attempt: u32,
        /// True when adopted from the cache instead of run.
        cached: bool,
        /// When.
        at_unix_ms: f64,
    },
    /// A cell was measured but another commit of it was already there (a requeued or
    /// resubmitted shard ran it again, or two shards shared it): the first commit is kept and
    /// this measurement discarded.
    CellDuplicate {
        /// Cell id.
        cell: String,
        /// Attempt number of the discarded measurement.
        attempt: u32,
        /// When.
        at_unix_ms: f64,
    },
    /// An attempt of a cell failed.
    CellFailed {
        /// Cell id.
        cell: String,
        /// Attempt number.
        attempt: u32,
        /// Failure class (the scheduler's vocabulary).
        kind: String,
        /// Human-readable error.
        message: String,
        /// Whether this failure class is retried.
        retryable: bool,
        /// True when no further attempt follows.
        final_attempt: bool,
        /// When.
        at_unix_ms: f64,
    },
    /// The run was interrupted (Ctrl-C / SIGTERM).
    Interrupted {
        /// Run id.
        run_id: String,
        /// When.
        at_unix_ms: f64,
    },
    /// A managed server (the manifest's `managed` endpoint setting) was started and answers.
    ServerStarted {
        /// Endpoint id.
        endpoint: String,
        /// Its URL.
        url: String,
        /// Process id (and process group id) of the server.
        pid: u32,
        /// The host it runs on (absent in journals written before shards existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        /// The configuration `server` settings it was started with (`parallel=4`); absent
        /// without any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        settings: Option<String>,
        /// When.
        at_unix_ms: f64,
    },
    /// A managed server was started again before a cell: it had exited, or (with
    /// `settings`) the cell's `server` settings render its command or env differently.
    ServerRestarted {
        /// Endpoint id.
        endpoint: String,
        /// How the server had ended (`exit code 1`, `signal 9 (SIGKILL)`, `stopped for new
        /// settings (signal 15 (SIGTERM))`).
        exit: String,
        /// Process id (and process group id) of the new server (0 in journals written before
        /// it was recorded).
        #[serde(default)]
        pid: u32,
        /// The host it runs on (absent in journals written before shards existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        /// Present when the restart was for new settings: the cell's configuration `server`
        /// settings it runs with now (`parallel=4`; `defaults` for none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        settings: Option<String>,
        /// When.
        at_unix_ms: f64,
    },
    /// A managed server was stopped at the end of the run (or had already exited).
    ServerStopped {
        /// Endpoint id.
        endpoint: String,
        /// How it ended.
        exit: String,
        /// When.
        at_unix_ms: f64,
    },
    /// The run stopped on an error (a dead server, a full disk, …) after it had started.
    Aborted {
        /// Run id.
        run_id: String,
        /// The error, as printed.
        message: String,
        /// When.
        at_unix_ms: f64,
    },
    /// The run finished.
    Finished {
        /// Run id.
        run_id: String,
        /// Cells committed by the end of the run (all, including resumed ones).
        committed: u64,
        /// Cells that failed their final attempt.
        failed: u64,
        /// When.
        at_unix_ms: f64,
    },
}

impl JournalEvent {
    /// The event's timestamp.
    pub fn at_unix_ms(&self) -> f64 {
        match self {
            JournalEvent::Started { at_unix_ms, .. }
            | JournalEvent::CellStarted { at_unix_ms, .. }
            | JournalEvent::CellCommitted { at_unix_ms, .. }
            | JournalEvent::CellDuplicate { at_unix_ms, .. }
            | JournalEvent::CellFailed { at_unix_ms, .. }
            | JournalEvent::Interrupted { at_unix_ms, .. }
            | JournalEvent::ServerStarted { at_unix_ms, .. }
            | JournalEvent::ServerRestarted { at_unix_ms, .. }
            | JournalEvent::ServerStopped { at_unix_ms, .. }
            | JournalEvent::Aborted { at_unix_ms, .. }
            | JournalEvent::Finished { at_unix_ms, .. } => *at_unix_ms,
        }
    }
}

/// The open journal of a locked campaign.
#[derive(Debug)]
pub(crate) struct JournalWriter {
    file: File,
    /// The file does not end in `\n` (a torn line): the next append starts a new line first,
    /// so the torn fragment cannot swallow a good event.
    torn: bool,
}

impl JournalWriter {
    pub(crate) fn open(path: &Path) -> Result<JournalWriter, StoreError> {
        let mut file = File::options()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_at(path, "open the journal"))?;
        let len = file
            .metadata()
            .map_err(io_at(path, "read the journal"))?
            .len();
        let torn = if len == 0 {
            false
        } else {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(io_at(path, "read the journal"))?;
            last[0] != b'\n'
        };
        if torn {
            tracing::warn!(
                "{}: the last line is incomplete (an earlier run stopped mid-write); it is skipped",
                path.display()
            );
        }
        Ok(JournalWriter { file, torn })
    }

    pub(crate) fn append(&mut self, path: &Path, ev: &JournalEvent) -> Result<(), StoreError> {
        let mut line = Vec::with_capacity(160);
        if self.torn {
            line.push(b'\n');
        }
        serde_json::to_writer(&mut line, ev)
            .map_err(|e| StoreError::io(path, "encode a journal event", io::Error::other(e)))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(io_at(path, "append to the journal"))?;
        self.torn = false;
        Ok(())
    }
}

/// Reads every readable event of `path` (a missing journal has none).
pub(crate) fn read(path: &Path) -> Result<Vec<JournalEvent>, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(path, "read the journal", e)),
    };
    let complete_end = bytes.last() == Some(&b'\n');
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let n = lines.len();
    let mut events = Vec::with_capacity(n);
    for (i, line) in lines.into_iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<JournalEvent>(line) {
            Ok(ev) => events.push(ev),
            Err(_) if i + 1 == n && !complete_end => {
                tracing::debug!("{}: skipping the torn last line", path.display());
            }
            Err(e) => {
                tracing::warn!(
                    "{}:{}: skipping an unreadable line ({e})",
                    path.display(),
                    i + 1
                );
            }
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_events_round_trip_and_old_journals_still_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.jsonl");
        // A journal written before managed servers existed.
        let old = concat!(
            r#"{"event":"started","run_id":"1","cells_total":2,"committed":0,"to_run":2,"at_unix_ms":1.0}"#,
            "\n",
            r#"{"event":"cell_started","cell":"c","attempt":1,"at_unix_ms":2.0}"#,
            "\n",
        );
        std::fs::write(&path, old).expect("write");
        assert_eq!(read(&path).expect("read").len(), 2);
        let mut w = JournalWriter::open(&path).expect("open");
        let new = [
            JournalEvent::ServerStarted {
                endpoint: "a".into(),
                url: "http://127.0.0.1:1".into(),
                pid: 42,
                host: Some("node1".into()),
                settings: None,
                at_unix_ms: 3.0,
            },
            JournalEvent::ServerRestarted {
                endpoint: "a".into(),
                exit: "signal 9 (SIGKILL)".into(),
                pid: 7,
                host: None,
                settings: Some("parallel=4".into()),
                at_unix_ms: 4.0,
            },
            JournalEvent::ServerStopped {
                endpoint: "a".into(),
                exit: "exit code 0".into(),
                at_unix_ms: 5.0,
            },
        ];
        for ev in &new {
            w.append(&path, ev).expect("append");
        }
        let events = read(&path).expect("read");
        assert_eq!(events.len(), 5);
        assert_eq!(&events[2..], &new);
        assert_eq!(events[3].at_unix_ms(), 4.0);
        let text = std::fs::read_to_string(&path).expect("text");
        assert!(text.contains(r#""event":"server_restarted""#), "{text}");
    }
}
