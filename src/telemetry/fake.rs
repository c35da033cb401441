//! Sources without hardware: [`NullSource`] (no GPU) and [`FakeSource`] (deterministic
//! readings for tests and benchmarks, with a load switch).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::source::{GpuInfo, GpuSample, GpuSource};

/// No GPUs: no devices, and samples with every reading `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSource;

impl GpuSource for NullSource {
    fn kind(&self) -> &'static str {
        "none"
    }

    fn devices(&self) -> Vec<GpuInfo> {
        Vec::new()
    }

    fn sample(&mut self, gpu: u32) -> GpuSample {
        GpuSample::empty(gpu)
    }
}

/// Per-GPU state of a [`FakeSource`].
#[derive(Debug, Clone)]
struct FakeGpu {
    /// Samples taken so far (drives the deterministic noise).
    n: u64,
    energy_mj: f64,
    temp_c: f64,
    last: Option<Instant>,
}

/// Deterministic fake GPUs (an H100-like profile). The readings depend only on the seed, the
/// GPU, the sample count and the load switch, except the energy counter, which integrates the
/// reported power over the real time between samples (so that energy per second is
/// physically consistent). With the load on: utilisation ~90–100 %, ~550–650 W, boost
/// clocks, more memory used, no throttle reason; off: ~0–3 %, ~70–75 W, idle clocks and
/// the GPU-idle throttle reason (`0x1`).
#[derive(Debug)]
pub struct FakeSource {
    seed: u64,
    gpus: Vec<FakeGpu>,
    load: Arc<AtomicBool>,
    /// Throttle reasons added to every sample ([`FakeSource::with_throttle`]).
    throttle: u64,
}

/// Total memory of a fake GPU, MiB (an H100 80GB).
pub const FAKE_MEMORY_TOTAL_MIB: f64 = 81_559.0;

impl FakeSource {
    /// `gpus` fake GPUs, readings derived from `seed`; the load starts off.
    pub fn new(gpus: u32, seed: u64) -> FakeSource {
        FakeSource {
            seed,
            gpus: (0..gpus)
                .map(|i| FakeGpu {
                    n: 0,
                    // Counters since a fictitious driver load, different per GPU.
                    energy_mj: 1.0e9 + f64::from(i) * 1.0e7 + (seed % 1000) as f64,
                    temp_c: 32.0,
                    last: None,
                })
                .collect(),
            load: Arc::new(AtomicBool::new(false)),
            throttle: 0,
        }
    }

    /// The same GPUs reporting the NVML throttle reasons `bits` in every sample as well (a
    /// power cap is `0x4`, a thermal slowdown `0x20`/`0x40`).
    pub fn with_throttle(mut self, bits: u64) -> FakeSource {
        self.throttle = bits;
        self
    }

    /// Turns the fake load on or off (also through any [`FakeSource::load_handle`]).
    pub fn set_load(&self, on: bool) {
        self.load.store(on, Ordering::Relaxed);
    }

    /// A handle on the load switch that stays usable after the source moved into a sampler.
    pub fn load_handle(&self) -> Arc<AtomicBool> {
        self.load.clone()
    }

    /// A deterministic number in `[0, 1)` for (seed, gpu, n, salt).
    fn noise(&self, gpu: u32, n: u64, salt: u64) -> f64 {
        let z = self
            .seed
            .wrapping_add(u64::from(gpu).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_add(n.wrapping_mul(0xD1B5_4A32_D192_ED03))
            .wrapping_add(salt.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7));
        (crate::util::rng::mix(z) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl GpuSource for FakeSource {
    fn kind(&self) -> &'static str {
        "fake"
    }

    fn devices(&self) -> Vec<GpuInfo> {
        (0..self.gpus.len() as u32)
            .map(|index| GpuInfo {
                index,
                name: Some("Fake H100 80GB HBM3 (chimera)".to_owned()),
                uuid: Some(format!(
                    "GPU-fa4e0000-{:04x}-{:04x}-{:04x}-{:012x}",
                    self.seed & 0xffff,
                    (self.seed >> 16) & 0xffff,
                    index,
                    self.seed >> 32
                )),
                driver_version: Some("550.54.15".to_owned()),
                cuda_driver_version: Some("12.4".to_owned()),
                memory_total_mib: Some(FAKE_MEMORY_TOTAL_MIB),
            })
            .collect()
    }

    fn sample(&mut self, gpu: u32) -> GpuSample {
        let mut out = GpuSample::empty(gpu);
        let Some(state) = self.gpus.get(gpu as usize).cloned() else {
            return out;
        };
        let n = state.n;
        let loaded = self.load.load(Ordering::Relaxed);
        let r = |salt| self.noise(gpu, n, salt);
        let (util, mem_util, mem_used, power, sm, mem_clock, throttle, procs) = if loaded {
            (
                90.0 + (10.0 * r(1)).floor(),
                40.0 + (20.0 * r(2)).floor(),
                20_480.0 + (512.0 * r(3)).floor(),
                550.0 + 100.0 * r(4),
                1980,
                2619,
                0,
                1,
            )
        } else {
            (
                (3.0 * r(1)).floor(),
                0.0,
                512.0,
                70.0 + 5.0 * r(4),
                345,
                2619,
                0x1,
                0,
            )
        };
        let now = Instant::now();
        let mut next = state;
        if let Some(last) = next.last {
            next.energy_mj += power * now.duration_since(last).as_secs_f64() * 1000.0;
        }
        let target = if loaded { 70.0 } else { 32.0 };
        next.temp_c += (target - next.temp_c) * 0.1;
        next.last = Some(now);
        next.n = n + 1;
        out.util_pct = Some(util);
        out.mem_util_pct = Some(mem_util);
        out.mem_used_mib = Some(mem_used);
        out.power_w = Some((power * 1000.0).round() / 1000.0);
        out.energy_mj = Some(next.energy_mj as u64);
        out.temp_c = Some(next.temp_c.round());
        out.sm_clock_mhz = Some(sm);
        out.mem_clock_mhz = Some(mem_clock);
        out.throttle_reasons = Some(throttle | self.throttle);
        out.processes = Some(procs);
        if let Some(slot) = self.gpus.get_mut(gpu as usize) {
            *slot = next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_is_deterministic_and_responds_to_load() {
        let mut a = FakeSource::new(2, 7);
        let mut b = FakeSource::new(2, 7);
        for _ in 0..5 {
            let (sa, sb) = (a.sample(1), b.sample(1));
            assert_eq!(sa.util_pct, sb.util_pct);
            assert_eq!(sa.power_w, sb.power_w);
        }
        let idle = a.sample(0);
        let handle = a.load_handle();
        handle.store(true, Ordering::Relaxed);
        let busy = a.sample(0);
        assert!(busy.util_pct > idle.util_pct);
        assert!(busy.power_w > idle.power_w);
        assert!(busy.sm_clock_mhz > idle.sm_clock_mhz);
        assert_eq!(idle.throttle_reasons, Some(0x1));
        assert!(busy.energy_mj >= idle.energy_mj);
        // Out-of-range GPU: an empty sample, not a panic.
        let none = a.sample(9);
        assert_eq!(none.gpu, 9);
        assert!(none.util_pct.is_none());
        assert_eq!(a.devices().len(), 2);
    }

    #[test]
    fn null_source_has_no_devices_and_empty_samples() {
        let mut s = NullSource;
        assert!(s.devices().is_empty());
        let x = s.sample(0);
        assert!(x.util_pct.is_none() && x.energy_mj.is_none());
        assert!(x.t_unix_ms > 0.0);
    }
}
