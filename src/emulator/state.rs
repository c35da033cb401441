//! The state every part of the emulator shares: the profile, the ground truth, the streams
//! on the GPU, and each listener's loaded model and slots.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::SystemTime;

use tokio::sync::Semaphore;

use super::profile::{Fault, Profile};
use super::truth::TruthLog;
use crate::util::rng::{SplitMix64, fnv1a};

/// State shared by every listener of one emulator.
#[derive(Debug)]
pub struct Shared {
    /// The profile.
    pub profile: Profile,
    /// Ground truth.
    pub truth: TruthLog,
    /// Streams currently using the (shared) GPU.
    pub active: AtomicUsize,
    /// Per model (profile order): generate/chat requests counted so far (load-only ones
    /// included, over all listeners): the request numbers of `fault_first`, `fault_rate`,
    /// `output_tokens_range` and `redigest_after`.
    pub requests: Vec<AtomicU32>,
    /// Each listener's Prometheus counters (`GET /metrics`).
    pub metrics: super::metrics::Metrics,
}

impl Shared {
    /// Counts one generate/chat request of `model` and returns its number (0-based, over all
    /// listeners).
    pub(super) fn count_request(&self, model: usize) -> u32 {
        self.requests.get(model).map_or(u32::MAX, |c| {
            c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(v.saturating_add(1))
            })
            .unwrap_or(u32::MAX)
        })
    }

    /// The digest model `model` reports now (see `redigest_after`).
    pub(super) fn digest(&self, model: usize) -> String {
        let counted = self
            .requests
            .get(model)
            .map_or(0, |c| c.load(Ordering::SeqCst));
        self.profile.models[model].digest_after(counted)
    }

    /// The fault to inject into request number `nth` of `model`: the profile's, unless
    /// `fault_first` is set and `nth` is not below it, or `fault_rate` is set and this
    /// request's seeded draw (from the seed, the model and `nth`) is not below it.
    pub(super) fn fault_for(&self, model: usize, nth: u32) -> Option<Fault> {
        let m = &self.profile.models[model];
        let fault = m.fault.clone()?;
        match (m.fault_first, m.fault_rate) {
            (Some(n), _) => (nth < n).then_some(fault),
            (None, Some(rate)) => {
                (fault_draw(self.profile.seed, &m.name, nth) < rate).then_some(fault)
            }
            (None, None) => Some(fault),
        }
    }

    /// How many streams share the decode budget right now (1 when `shared_gpu` is off).
    pub(super) fn share(&self) -> f64 {
        if self.profile.shared_gpu {
            self.active.load(Ordering::SeqCst).max(1) as f64
        } else {
            1.0
        }
    }
}

/// The `fault_rate` draw of the `nth` request of model `name`: uniform in [0, 1), a pure
/// function of the profile's seed, the model's name and `nth`.
pub(super) fn fault_draw(seed: u64, name: &str, nth: u32) -> f64 {
    let mut rng =
        SplitMix64::new(seed ^ fnv1a(name) ^ u64::from(nth).wrapping_mul(0xA076_1D64_78BD_642F));
    rng.unit()
}

/// The model loaded on one listener and the Runner options it was loaded with.
#[derive(Debug, Clone)]
pub(super) struct Loaded {
    pub(super) model: usize,
    pub(super) num_gpu: Option<i64>,
    pub(super) num_ctx: Option<i64>,
    pub(super) last_used: SystemTime,
}

/// One listener: its address, its loaded model, its slots.
#[derive(Debug)]
pub struct ListenerState {
    /// Bound address.
    pub addr: SocketAddr,
    pub(super) loaded: Mutex<Option<Loaded>>,
    pub(super) load_lock: tokio::sync::Mutex<()>,
    pub(super) slots: Option<Semaphore>,
    /// Models (profile indices) fetched by `/api/pull` on this listener (see `absent`).
    pub(super) pulled: Mutex<std::collections::HashSet<usize>>,
}

impl ListenerState {
    /// A listener with nothing loaded.
    pub fn new(addr: SocketAddr, num_parallel: u32) -> ListenerState {
        ListenerState {
            addr,
            loaded: Mutex::new(None),
            load_lock: tokio::sync::Mutex::new(()),
            slots: (num_parallel > 0).then(|| Semaphore::new(num_parallel as usize)),
            pulled: Mutex::new(std::collections::HashSet::new()),
        }
    }

    pub(super) fn loaded(&self) -> std::sync::MutexGuard<'_, Option<Loaded>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}
