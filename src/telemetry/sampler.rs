//! One dedicated OS thread per campaign that samples the GPUs of running cells.

use std::collections::{BTreeSet, HashMap};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::source::{GpuInfo, GpuSample, GpuSource};
use crate::util::clock::now_unix_ms;

/// The name of the sampler's OS thread (as in `/proc/self/task/*/comm`).
pub const THREAD_NAME: &str = "gpu-telemetry";

/// Every sample taken for one cell, in time order per GPU.
#[derive(Debug, Clone, Default)]
pub struct CellSamples {
    /// The samples (all GPUs of the cell, interleaved in time order).
    pub samples: Vec<GpuSample>,
}

#[derive(Debug)]
struct Cell {
    gpus: Vec<u32>,
    /// When `begin` was called (Unix ms): earlier samples are not the cell's.
    since_ms: f64,
    samples: Vec<GpuSample>,
    /// `begin` asked for an immediate sample that is not taken yet.
    wants_first: bool,
    /// `end` waits for a final sample and the samples.
    ending: Option<SyncSender<CellSamples>>,
}

#[derive(Debug, Default)]
struct State {
    cells: HashMap<String, Cell>,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Samples the GPUs of running cells every `period` on one OS thread (NVML calls block, so
/// never on an async worker). Only GPUs of cells between [`Sampler::begin`] and
/// [`Sampler::end`] are sampled; when no cell runs, the thread sleeps. Dropping the sampler
/// stops it like [`Sampler::stop`].
#[derive(Debug)]
pub struct Sampler {
    shared: Arc<Shared>,
    devices: Vec<GpuInfo>,
    kind: &'static str,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts the sampler thread. `period` is clamped to at least 1 ms.
    pub fn start(source: Box<dyn GpuSource>, period: Duration) -> Sampler {
        let devices = source.devices();
        let kind = source.kind();
        let shared = Arc::new(Shared::default());
        let period = period.max(Duration::from_millis(1));
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(THREAD_NAME.to_owned())
                .spawn(move || sampler_loop(&shared, source, period))
        };
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!("cannot start the GPU telemetry thread: {e}: telemetry is off");
                None
            }
        };
        Sampler {
            shared,
            devices,
            kind,
            thread,
        }
    }

    /// The source's GPUs (listed once at start).
    pub fn devices(&self) -> Vec<GpuInfo> {
        self.devices.clone()
    }

    /// The source's kind (`nvml`, `dcgm`, `fake`, `none`).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Starts attributing samples of `gpus` to `cell_id`, with one sample right away. Does
    /// not block. A second `begin` of the same cell restarts it (earlier samples dropped).
    pub fn begin(&self, cell_id: &str, gpus: &[u32]) {
        let mut g: Vec<u32> = gpus.to_vec();
        g.sort_unstable();
        g.dedup();
        self.shared.lock().cells.insert(
            cell_id.to_owned(),
            Cell {
                gpus: g,
                since_ms: now_unix_ms(),
                samples: Vec::new(),
                wants_first: true,
                ending: None,
            },
        );
        self.shared.wake.notify_all();
    }

    /// Takes one final sample of the cell's GPUs and returns every sample taken for the cell
    /// since [`Sampler::begin`]. Blocks for that one sample (microseconds with NVML, ~40 ms
    /// per GPU with PCIe sampling, one HTTP GET with dcgm): call it from a blocking context
    /// (`tokio::task::spawn_blocking`) in async code. An unknown cell gives no samples.
    pub fn end(&self, cell_id: &str) -> CellSamples {
        if self.thread.is_none() {
            return CellSamples::default();
        }
        let (tx, rx) = sync_channel(1);
        {
            let mut state = self.shared.lock();
            match state.cells.get_mut(cell_id) {
                Some(cell) if cell.ending.is_none() => cell.ending = Some(tx),
                _ => return CellSamples::default(),
            }
        }
        self.shared.wake.notify_all();
        rx.recv().unwrap_or_default()
    }

    /// Stops the thread (cells still running lose their samples) and waits for it.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the thread does next.
enum Work {
    /// First samples for cells that just began, final ones for cells that end.
    Edges {
        first: Vec<String>,
        ending: Vec<String>,
    },
    /// The periodic sample of these GPUs.
    Tick(BTreeSet<u32>),
    Stop,
}

fn sampler_loop(shared: &Shared, mut source: Box<dyn GpuSource>, period: Duration) {
    let mut next_tick: Option<Instant> = None;
    loop {
        let work = {
            let mut state = shared.lock();
            loop {
                if state.stop {
                    break Work::Stop;
                }
                let first: Vec<String> = state
                    .cells
                    .iter()
                    .filter(|(_, c)| c.wants_first)
                    .map(|(id, _)| id.clone())
                    .collect();
                let ending: Vec<String> = state
                    .cells
                    .iter()
                    .filter(|(_, c)| c.ending.is_some())
                    .map(|(id, _)| id.clone())
                    .collect();
                if !first.is_empty() || !ending.is_empty() {
                    break Work::Edges { first, ending };
                }
                if state.cells.is_empty() {
                    next_tick = None;
                    state = shared
                        .wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                    continue;
                }
                let now = Instant::now();
                let due = *next_tick.get_or_insert(now + period);
                if now >= due {
                    // Keep the schedule; skip ticks missed by a slow source.
                    let mut n = due + period;
                    while n <= now {
                        n += period;
                    }
                    next_tick = Some(n);
                    let gpus = state
                        .cells
                        .values()
                        .flat_map(|c| c.gpus.iter().copied())
                        .collect();
                    break Work::Tick(gpus);
                }
                state = shared
                    .wake
                    .wait_timeout(state, due - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        };
        match work {
            Work::Stop => return,
            Work::Tick(gpus) => {
                let samples: Vec<GpuSample> =
                    gpus.iter().map(|&g| source.sample_periodic(g)).collect();
                let mut state = shared.lock();
                for cell in state.cells.values_mut() {
                    push_own(cell, &samples);
                }
            }
            Work::Edges { first, ending } => {
                // First samples, then final ones: a cell that began and ends in the same
                // round still gets two.
                if !first.is_empty() {
                    let samples = sample_cells(shared, source.as_mut(), &first);
                    let mut state = shared.lock();
                    for id in &first {
                        if let Some(cell) = state.cells.get_mut(id) {
                            push_own(cell, &samples);
                            cell.wants_first = false;
                        }
                    }
                }
                if !ending.is_empty() {
                    let samples = sample_cells(shared, source.as_mut(), &ending);
                    let mut state = shared.lock();
                    for id in &ending {
                        if let Some(mut cell) = state.cells.remove(id) {
                            push_own(&mut cell, &samples);
                            if let Some(tx) = cell.ending.take() {
                                let _ = tx.send(CellSamples {
                                    samples: cell.samples,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One sample of every GPU of these cells (each GPU once), taken outside the lock.
fn sample_cells(shared: &Shared, source: &mut dyn GpuSource, ids: &[String]) -> Vec<GpuSample> {
    let gpus: BTreeSet<u32> = {
        let state = shared.lock();
        ids.iter()
            .filter_map(|id| state.cells.get(id))
            .flat_map(|c| c.gpus.iter().copied())
            .collect()
    };
    gpus.iter().map(|&g| source.sample(g)).collect()
}

/// Appends the samples of the cell's GPUs.
fn push_own(cell: &mut Cell, samples: &[GpuSample]) {
    cell.samples.extend(
        samples
            .iter()
            .filter(|s| cell.gpus.contains(&s.gpu) && s.t_unix_ms >= cell.since_ms)
            .cloned(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{FakeSource, NullSource, aggregate};
    use std::sync::atomic::Ordering;

    #[test]
    fn attributes_samples_to_cells_and_only_their_gpus() {
        let sampler = Sampler::start(Box::new(FakeSource::new(4, 1)), Duration::from_millis(10));
        assert_eq!(sampler.devices().len(), 4);
        assert_eq!(sampler.kind(), "fake");
        sampler.begin("a", &[1]);
        sampler.begin("b", &[2, 3]);
        std::thread::sleep(Duration::from_millis(80));
        let a = sampler.end("a");
        std::thread::sleep(Duration::from_millis(30));
        let b = sampler.end("b");
        assert!(a.samples.len() >= 4, "{}", a.samples.len());
        assert!(a.samples.iter().all(|s| s.gpu == 1));
        assert!(b.samples.iter().all(|s| s.gpu == 2 || s.gpu == 3));
        assert!(b.samples.iter().any(|s| s.gpu == 2) && b.samples.iter().any(|s| s.gpu == 3));
        assert!(b.samples.len() > a.samples.len());
        // Time-ordered per GPU.
        for g in [2, 3] {
            let t: Vec<f64> = b
                .samples
                .iter()
                .filter(|s| s.gpu == g)
                .map(|s| s.t_unix_ms)
                .collect();
            assert!(t.windows(2).all(|w| w[0] <= w[1]));
        }
        // Ended cells are gone; ending again yields nothing.
        assert!(sampler.end("a").samples.is_empty());
        assert!(sampler.end("never").samples.is_empty());
        sampler.stop();
    }

    #[test]
    fn a_short_cell_gets_a_start_and_an_end_sample() {
        // A period far longer than the cell.
        let sampler = Sampler::start(Box::new(FakeSource::new(1, 2)), Duration::from_secs(3600));
        sampler.begin("short", &[0]);
        let got = sampler.end("short");
        assert_eq!(got.samples.len(), 2, "{:?}", got.samples);
        assert!(got.samples[0].t_unix_ms <= got.samples[1].t_unix_ms);
        // Energy delta is defined (counter present on both ends).
        assert!(aggregate(&got.samples).energy_j.is_some());

        // Also with a pause between begin and end.
        sampler.begin("short2", &[0]);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(sampler.end("short2").samples.len(), 2);
    }

    #[test]
    fn utilisation_power_and_energy_rise_under_fake_load() {
        let fake = FakeSource::new(1, 3);
        let load = fake.load_handle();
        let sampler = Sampler::start(Box::new(fake), Duration::from_millis(10));
        sampler.begin("idle", &[0]);
        std::thread::sleep(Duration::from_millis(150));
        let idle = aggregate(&sampler.end("idle").samples);
        load.store(true, Ordering::Relaxed);
        sampler.begin("busy", &[0]);
        std::thread::sleep(Duration::from_millis(150));
        let busy_samples = sampler.end("busy").samples;
        let busy = aggregate(&busy_samples);
        let (iu, bu) = (
            idle.gpu_util_mean_pct.unwrap_or(f64::NAN),
            busy.gpu_util_mean_pct.unwrap_or(f64::NAN),
        );
        assert!(bu > 80.0 && iu < 5.0, "util idle {iu} busy {bu}");
        let (ip, bp) = (
            idle.power_mean_w.unwrap_or(f64::NAN),
            busy.power_mean_w.unwrap_or(f64::NAN),
        );
        assert!(bp > 4.0 * ip, "power idle {ip} busy {bp}");
        let (ie, be) = (
            idle.energy_j.unwrap_or(f64::NAN),
            busy.energy_j.unwrap_or(f64::NAN),
        );
        assert!(be > 2.0 * ie && be > 0.0, "energy idle {ie} busy {be}");
        assert!(busy_samples.iter().all(|s| s.sm_clock_mhz > Some(1000)));
        assert_eq!(idle.throttled, Some(false));
        assert_eq!(busy.throttled, Some(false));
        sampler.stop();
    }

    #[test]
    fn sleeps_when_nothing_runs_and_null_source_gives_null_aggregates() {
        let sampler = Sampler::start(Box::new(NullSource), Duration::from_millis(5));
        assert!(sampler.devices().is_empty());
        std::thread::sleep(Duration::from_millis(20));
        sampler.begin("c", &[0]);
        std::thread::sleep(Duration::from_millis(20));
        let s = sampler.end("c");
        assert!(s.samples.len() >= 2);
        assert_eq!(
            aggregate(&s.samples),
            crate::telemetry::TelemetryAggregate::default()
        );
        // Drop without stop() joins the thread too.
        drop(sampler);
    }

    #[test]
    fn many_cells_from_many_threads() {
        let sampler = Arc::new(Sampler::start(
            Box::new(FakeSource::new(8, 4)),
            Duration::from_millis(2),
        ));
        let handles: Vec<_> = (0..8u32)
            .map(|g| {
                let s = sampler.clone();
                std::thread::spawn(move || {
                    let mut n = 0;
                    for i in 0..20 {
                        let id = format!("cell-{g}-{i}");
                        s.begin(&id, &[g]);
                        std::thread::sleep(Duration::from_millis(1));
                        let got = s.end(&id);
                        assert!(got.samples.iter().all(|x| x.gpu == g));
                        assert!(got.samples.len() >= 2);
                        n += got.samples.len();
                    }
                    n
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().expect("thread") >= 40);
        }
    }
}
