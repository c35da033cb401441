//! The load driver: closed loop (N users, each sending its next request when its last one
//! ends) or open loop (requests at the times of an arrival schedule, whether or not earlier
//! ones have ended), until a request count or a duration, the first requests or seconds
//! marked as warm-up.
//!
//! Open-loop timing: a dedicated thread sleeps until each scheduled time and hands the
//! request to the async runtime; the request notes its actual send time when it first runs,
//! so the lateness it records (actual − scheduled) includes every delay on chimera's side.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::arrivals::{ArrivalError, Arrivals, Stop};
use super::serving::Sample;
use crate::backend::{Client, LlmRequest, RequestRecord};

/// How the load is offered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `users` concurrent users, each sending its next request when its last one ends.
    Closed {
        /// Concurrent users.
        users: u32,
    },
    /// Requests at the times of an arrival process.
    Open {
        /// The arrival process.
        arrivals: Arrivals,
    },
}

/// A load: its mode, where it stops, and its warm-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// Closed or open loop.
    pub mode: Mode,
    /// Where it stops (warm-up included).
    pub stop: Stop,
    /// The first requests (count) or the first ms that are warm-up, left out of the metrics.
    pub warmup: Option<Stop>,
}

/// What each request sends: the request and the output length to force (None: the
/// server's choice), by sequence number.
pub type MakeRequest = Arc<dyn Fn(u64) -> (LlmRequest, Option<u32>) + Send + Sync>;

/// Why a load could not run.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The arrival process is not valid.
    #[error(transparent)]
    Arrivals(#[from] ArrivalError),
    /// No users.
    #[error("a closed-loop load needs at least one user")]
    NoUsers,
    /// The scheduling thread could not start.
    #[error("cannot start the open-loop scheduler thread: {0}")]
    Thread(std::io::Error),
    /// Requests whose outcome was lost (a task panicked or was cancelled, or the scheduling
    /// thread stopped): the load's figures would be missing them.
    #[error(
        "{0} request(s) of the load were lost (their task panicked or was cancelled); the load is not reported"
    )]
    Lost(usize),
}

/// Milliseconds from `start` to now.
fn since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// Whether a request sent as number `index` at `sent_ms` is warm-up.
fn is_warmup(warmup: Option<Stop>, index: u64, sent_ms: f64) -> bool {
    match warmup {
        None => false,
        Some(Stop::Requests(n)) => index < n,
        Some(Stop::DurationMs(d)) => sent_ms < d,
    }
}

/// One request's sample from its record.
fn sample(
    index: u64,
    user: Option<u32>,
    scheduled: Option<f64>,
    sent: f64,
    done: f64,
    r: &RequestRecord,
    warmup: bool,
) -> Sample {
    Sample {
        index,
        user,
        scheduled_ms: scheduled,
        sent_ms: sent,
        done_ms: done,
        warmup,
        ok: r.ok(),
        ttft_ms: r.ttft_ms,
        e2e_ms: r.e2e_ms,
        itl_ms: r.itl_ms.clone(),
        output_tokens: r.output_tokens,
        input_tokens: r.prompt_tokens,
        input_tokens_requested: None,
        output_tokens_requested: None,
    }
}

/// Runs `load` against `client`; the samples in order of sending.
pub async fn drive(
    load: &Load,
    client: Arc<Client>,
    make: MakeRequest,
) -> Result<Vec<Sample>, DriveError> {
    let out = run(load, client, make, false).await?;
    Ok(out.into_iter().map(|(s, _)| s).collect())
}

/// Runs `load` against `client`; the samples in order of sending, each with the record of
/// its request (server timings and counts, the error of a failed one) for storing.
pub async fn drive_keeping(
    load: &Load,
    client: Arc<Client>,
    make: MakeRequest,
) -> Result<Vec<(Sample, RequestRecord)>, DriveError> {
    let out = run(load, client, make, true).await?;
    Ok(out
        .into_iter()
        .map(|(s, r)| (s, r.unwrap_or_default()))
        .collect())
}

/// A request's sample, and its record when the caller keeps them.
type Driven = (Sample, Option<RequestRecord>);

async fn run(
    load: &Load,
    client: Arc<Client>,
    make: MakeRequest,
    keep: bool,
) -> Result<Vec<Driven>, DriveError> {
    let mut out = match &load.mode {
        Mode::Closed { users } => closed(load, *users, client, make, keep).await?,
        Mode::Open { arrivals } => open(load, arrivals, client, make, keep).await?,
    };
    out.sort_by_key(|(s, _)| s.index);
    Ok(out)
}

/// The closed loop: `users` tasks take the next sequence number until the load stops.
async fn closed(
    load: &Load,
    users: u32,
    client: Arc<Client>,
    make: MakeRequest,
    keep: bool,
) -> Result<Vec<Driven>, DriveError> {
    if users == 0 {
        return Err(DriveError::NoUsers);
    }
    if matches!(load.stop, Stop::Requests(0)) {
        return Err(ArrivalError::Unbounded.into());
    }
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Aborting::new(None);
    for user in 0..users {
        let (client, make, next) = (client.clone(), make.clone(), next.clone());
        let (stop, warmup) = (load.stop, load.warmup);
        tasks.handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let over = match stop {
                    Stop::Requests(n) => index >= n,
                    // A timed load keeps every record: at most MAX_REQUESTS of them.
                    Stop::DurationMs(d) => {
                        since(start) >= d || index >= super::arrivals::MAX_REQUESTS as u64
                    }
                };
                if over {
                    break;
                }
                let (req, force) = make(index);
                let sent = since(start);
                let r = client.send_forced(&req, force).await;
                let done = since(start);
                let s = sample(
                    index,
                    Some(user),
                    None,
                    sent,
                    done,
                    &r,
                    is_warmup(warmup, index, sent),
                );
                mine.push((s, keep.then_some(r)));
            }
            mine
        }));
    }
    Ok(tasks.join().await?.into_iter().flatten().collect())
}

/// The open loop: a thread sleeps until each scheduled time and spawns the request; the
/// requests' handles come back over a channel as they are spawned, so none is lost if the
/// thread stops early.
async fn open(
    load: &Load,
    arrivals: &Arrivals,
    client: Arc<Client>,
    make: MakeRequest,
    keep: bool,
) -> Result<Vec<Driven>, DriveError> {
    let schedule = arrivals.schedule(load.stop)?;
    let planned = schedule.len();
    let handle = tokio::runtime::Handle::current();
    let warmup = load.warmup;
    let (tx, rx) = std::sync::mpsc::channel::<tokio::task::JoinHandle<Driven>>();
    let mut guard = Aborting::new(Some(rx));
    let stop = guard.stop.clone();
    let start = Instant::now();
    let thread = std::thread::Builder::new()
        .name("chimera-load-schedule".into())
        .spawn(move || {
            for (index, at) in schedule.into_iter().enumerate() {
                let index = index as u64;
                let due = start + Duration::from_secs_f64(at.max(0.0) / 1000.0);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let (client, make) = (client.clone(), make.clone());
                let task = handle.spawn(async move {
                    let (req, force) = make(index);
                    let sent = since(start);
                    let r = client.send_forced(&req, force).await;
                    let done = since(start);
                    let s = sample(
                        index,
                        None,
                        Some(at),
                        sent,
                        done,
                        &r,
                        is_warmup(warmup, index, at),
                    );
                    (s, keep.then_some(r))
                });
                if tx.send(task).is_err() {
                    return;
                }
            }
        })
        .map_err(DriveError::Thread)?;
    let joined = tokio::task::spawn_blocking(move || thread.join().is_ok()).await;
    guard.drain();
    let spawned = guard.handles.len();
    if !matches!(joined, Ok(true)) || spawned != planned {
        // Dropping the guard aborts what was spawned.
        return Err(DriveError::Lost(planned - spawned.min(planned)));
    }
    guard.join().await
}

/// The tasks of a load, aborted when the load's future is dropped before they end (a cell
/// timeout, a stop): the closed loop's users, the open loop's requests (those still in the
/// channel from the scheduling thread too), and the scheduling thread told to stop. Aborting
/// a task that has ended does nothing, so a load that ran to its end loses nothing.
struct Aborting<T> {
    handles: Vec<tokio::task::JoinHandle<T>>,
    rx: Option<std::sync::mpsc::Receiver<tokio::task::JoinHandle<T>>>,
    stop: Arc<AtomicBool>,
}

impl<T> Aborting<T> {
    fn new(rx: Option<std::sync::mpsc::Receiver<tokio::task::JoinHandle<T>>>) -> Self {
        Aborting {
            handles: Vec::new(),
            rx,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Waits for every task: their outputs in order, or how many were lost (panicked or
    /// cancelled).
    async fn join(&mut self) -> Result<Vec<T>, DriveError> {
        let mut out = Vec::with_capacity(self.handles.len());
        let mut lost = 0;
        for t in self.handles.iter_mut() {
            match t.await {
                Ok(x) => out.push(x),
                Err(_) => lost += 1,
            }
        }
        if lost > 0 {
            return Err(DriveError::Lost(lost));
        }
        Ok(out)
    }

    /// Moves the handles the scheduling thread sent into `handles`.
    fn drain(&mut self) {
        if let Some(rx) = &self.rx {
            self.handles.extend(rx.try_iter());
        }
    }
}

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.drain();
        for h in &self.handles {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_by_count_or_time() {
        assert!(is_warmup(Some(Stop::Requests(3)), 2, 1e9));
        assert!(!is_warmup(Some(Stop::Requests(3)), 3, 0.0));
        assert!(is_warmup(Some(Stop::DurationMs(500.0)), 99, 499.0));
        assert!(!is_warmup(None, 0, 0.0));
    }
}
