//! The emulator's ground truth: what it did for every generate/chat request.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// Ground truth of one generate/chat request, as the emulator did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthRecord {
    /// The listener that served it.
    pub listener: SocketAddr,
    /// `model` as requested.
    pub model: String,
    /// The prompt (chat: message contents joined by `\n`).
    pub prompt: String,
    /// `options` as received (`null` when absent).
    pub options: serde_json::Value,
    /// Streamed.
    pub stream: bool,
    /// HTTP status sent; 0 when none was (refused, or the client went away first).
    pub status: u16,
    /// The injected fault's kind, or `client_disconnected` when a write failed.
    pub fault: Option<String>,
    /// Wall-clock time the request had fully arrived, ms since the Unix epoch: the kernel's
    /// receive time of its last bytes where the kernel gives one (Linux), else the time it
    /// was read. Every `*_offset_us` counts from here.
    pub received_unix_ms: f64,
    /// Request arrived → first chunk with non-empty text written (µs).
    pub first_chunk_offset_us: Option<u64>,
    /// Write time of every text chunk, µs after the request arrived. Non-streamed replies
    /// (and non-streamed faults) have one entry: the time the whole body was written.
    pub chunk_offsets_us: Vec<u64>,
    /// Tokens generated (= text chunks when streamed).
    pub output_tokens: u32,
    /// Prompt tokens (see [`prompt_tokens`]).
    pub prompt_tokens: u32,
    /// Request arrived → model ready, ms (reported as `load_duration`).
    pub load_ms: f64,
    /// The model was (re)loaded for this request.
    pub reloaded: bool,
}

/// The records of one emulator, shared and cheap to clone.
#[derive(Clone, Default)]
pub struct TruthLog {
    inner: Arc<Mutex<TruthInner>>,
}

#[derive(Default)]
struct TruthInner {
    records: Vec<TruthRecord>,
    sink: Option<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for TruthLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TruthLog")
            .field("records", &self.lock().records.len())
            .finish()
    }
}

impl TruthLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, TruthInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The records kept so far, in completion order.
    pub fn records(&self) -> Vec<TruthRecord> {
        self.lock().records.clone()
    }

    /// From now on write each record as one JSON line to `sink` (flushed per line) instead of
    /// keeping it in memory (a long-running emulator must not grow without bound).
    pub fn stream_to(&self, sink: Box<dyn Write + Send>) {
        self.lock().sink = Some(sink);
    }

    pub(super) fn push(&self, rec: TruthRecord) {
        let mut inner = self.lock();
        if let Some(sink) = inner.sink.as_mut() {
            let line = serde_json::to_string(&rec).unwrap_or_default();
            if let Err(e) = writeln!(sink, "{line}").and_then(|()| sink.flush()) {
                tracing::warn!("cannot write truth record: {e}");
            }
        } else {
            inner.records.push(rec);
        }
    }
}
