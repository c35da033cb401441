//! Per-cell aggregates of GPU samples: the telemetry columns of the `cells` table.

use std::collections::BTreeMap;

use serde::Serialize;

use super::source::GpuSample;

/// NVML throttle reason: nothing is running on the GPU.
pub const THROTTLE_GPU_IDLE: u64 = 0x1;
/// NVML throttle reason: clocks limited by the applications clocks setting.
pub const THROTTLE_APPLICATIONS_CLOCKS_SETTING: u64 = 0x2;

/// The telemetry columns of a cell (`cells` table). `None` where no sample had the reading.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TelemetryAggregate {
    /// Mean GPU utilisation over all samples (all GPUs of the cell), %.
    pub gpu_util_mean_pct: Option<f64>,
    /// Highest GPU utilisation of any sample, %.
    pub gpu_util_max_pct: Option<f64>,
    /// Mean power draw over all samples (per GPU, not summed), W.
    pub power_mean_w: Option<f64>,
    /// Highest power draw of any sample, W.
    pub power_max_w: Option<f64>,
    /// Energy of the cell: per GPU the energy counter's last − first reading (in time
    /// order), summed over the GPUs that have the counter, J. Never integrated from power.
    pub energy_j: Option<f64>,
    /// Highest framebuffer memory used on any GPU of the cell, MiB.
    pub mem_peak_mib: Option<f64>,
    /// Whether any sample had a throttle reason other than GPU idle (`0x1`) or the
    /// applications clocks setting (`0x2`).
    pub throttled: Option<bool>,
}

fn mean_max(values: impl Iterator<Item = f64>) -> (Option<f64>, Option<f64>) {
    let (mut n, mut sum, mut max) = (0usize, 0.0, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        n += 1;
        sum += v;
        max = max.max(v);
    }
    if n == 0 {
        (None, None)
    } else {
        (Some(sum / n as f64), Some(max))
    }
}

/// Aggregates the samples of one cell (any order, any number of GPUs). Pure.
pub fn aggregate(samples: &[GpuSample]) -> TelemetryAggregate {
    let util = mean_max(samples.iter().filter_map(|s| s.util_pct));
    let power = mean_max(samples.iter().filter_map(|s| s.power_w));
    TelemetryAggregate {
        gpu_util_mean_pct: util.0,
        gpu_util_max_pct: util.1,
        power_mean_w: power.0,
        power_max_w: power.1,
        energy_j: energy_j(samples),
        mem_peak_mib: mean_max(samples.iter().filter_map(|s| s.mem_used_mib)).1,
        throttled: throttled(samples),
    }
}

/// Energy, J: the first and last counter reading per GPU, by sample time, summed over GPUs.
fn energy_j(samples: &[GpuSample]) -> Option<f64> {
    // gpu -> ((t, counter) of the first reading, (t, counter) of the last)
    type Reading = (f64, u64);
    let mut span: BTreeMap<u32, (Reading, Reading)> = BTreeMap::new();
    for s in samples {
        let Some(e) = s.energy_mj else { continue };
        let r = (s.t_unix_ms, e);
        span.entry(s.gpu)
            .and_modify(|(first, last)| {
                if r.0 < first.0 {
                    *first = r;
                }
                if r.0 >= last.0 {
                    *last = r;
                }
            })
            .or_insert((r, r));
    }
    if span.is_empty() {
        return None;
    }
    // A counter that went backwards (driver reload) contributes nothing.
    let mj: u64 = span
        .values()
        .map(|(first, last)| last.1.saturating_sub(first.1))
        .sum();
    Some(mj as f64 / 1000.0)
}

/// Whether a sample had a throttle reason other than the benign ones; `None` without readings.
fn throttled(samples: &[GpuSample]) -> Option<bool> {
    let benign = THROTTLE_GPU_IDLE | THROTTLE_APPLICATIONS_CLOCKS_SETTING;
    let mut reasons = samples.iter().filter_map(|s| s.throttle_reasons).peekable();
    reasons.peek()?;
    Some(reasons.any(|r| r & !benign != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(gpu: u32, t: f64) -> GpuSample {
        GpuSample {
            gpu,
            t_unix_ms: t,
            ..GpuSample::default()
        }
    }

    #[test]
    fn empty_is_all_null() {
        assert_eq!(aggregate(&[]), TelemetryAggregate::default());
        // Samples without readings (NullSource) are all null too.
        assert_eq!(
            aggregate(&[s(0, 1.0), s(0, 2.0)]),
            TelemetryAggregate::default()
        );
    }

    #[test]
    fn known_values_single_gpu() {
        let mk = |t, util, power, energy, mem, thr| GpuSample {
            util_pct: Some(util),
            power_w: Some(power),
            energy_mj: Some(energy),
            mem_used_mib: Some(mem),
            throttle_reasons: Some(thr),
            ..s(0, t)
        };
        let samples = [
            mk(1000.0, 10.0, 100.0, 5_000_000, 1000.0, 0x1),
            mk(1100.0, 90.0, 300.0, 5_020_000, 3000.0, 0x0),
            mk(1200.0, 50.0, 200.0, 5_045_500, 2000.0, 0x2),
        ];
        assert_eq!(
            aggregate(&samples),
            TelemetryAggregate {
                gpu_util_mean_pct: Some(50.0),
                gpu_util_max_pct: Some(90.0),
                power_mean_w: Some(200.0),
                power_max_w: Some(300.0),
                energy_j: Some(45.5),
                mem_peak_mib: Some(3000.0),
                throttled: Some(false),
            }
        );
    }

    #[test]
    fn energy_is_the_counter_delta_summed_over_gpus_in_time_order() {
        let e = |gpu, t, mj| GpuSample {
            energy_mj: Some(mj),
            // Power that would integrate to something else: must be ignored for energy.
            power_w: Some(1.0),
            ..s(gpu, t)
        };
        // Shuffled order: first/last are by time, not by position.
        let samples = [
            e(1, 2000.0, 9_000_000),
            e(0, 1000.0, 1_000_000),
            e(1, 1000.0, 8_000_000),
            e(0, 2000.0, 1_250_000),
            e(0, 1500.0, 1_100_000),
        ];
        let a = aggregate(&samples);
        // GPU 0: 250 J, GPU 1: 1000 J.
        assert_eq!(a.energy_j, Some(1250.0));
    }

    #[test]
    fn a_missing_counter_is_null_and_a_partial_one_counts_where_present() {
        let p = |gpu, t, w| GpuSample {
            power_w: Some(w),
            ..s(gpu, t)
        };
        let no_counter = [p(0, 0.0, 100.0), p(0, 1000.0, 100.0)];
        let a = aggregate(&no_counter);
        assert_eq!(a.energy_j, None);
        assert_eq!(a.power_mean_w, Some(100.0));

        // GPU 1 has no counter; GPU 0 does (one sample missing it in the middle).
        let mixed = [
            GpuSample {
                energy_mj: Some(2_000),
                ..s(0, 0.0)
            },
            s(0, 500.0),
            GpuSample {
                energy_mj: Some(3_500),
                ..s(0, 1000.0)
            },
            p(1, 0.0, 50.0),
            p(1, 1000.0, 50.0),
        ];
        assert_eq!(aggregate(&mixed).energy_j, Some(1.5));

        // A counter that went backwards (driver reload) contributes 0, not a wrap.
        let reset = [
            GpuSample {
                energy_mj: Some(9_000),
                ..s(0, 0.0)
            },
            GpuSample {
                energy_mj: Some(1_000),
                ..s(0, 1.0)
            },
        ];
        assert_eq!(aggregate(&reset).energy_j, Some(0.0));
    }

    #[test]
    fn throttled_ignores_idle_and_application_clocks() {
        let t = |r| GpuSample {
            throttle_reasons: Some(r),
            ..s(0, 0.0)
        };
        assert_eq!(aggregate(&[t(0x1), t(0x2), t(0x3)]).throttled, Some(false));
        // SW power cap (0x4) counts, also combined with idle.
        assert_eq!(aggregate(&[t(0x1), t(0x5)]).throttled, Some(true));
        // HW thermal slowdown.
        assert_eq!(aggregate(&[t(0x40)]).throttled, Some(true));
        assert_eq!(aggregate(&[s(0, 0.0)]).throttled, None);
    }

    #[test]
    fn means_and_maxima_skip_missing_readings() {
        let u = |v: Option<f64>| GpuSample {
            util_pct: v,
            ..s(0, 0.0)
        };
        let a = aggregate(&[u(Some(20.0)), u(None), u(Some(40.0))]);
        assert_eq!(a.gpu_util_mean_pct, Some(30.0));
        assert_eq!(a.gpu_util_max_pct, Some(40.0));
        assert_eq!(a.power_mean_w, None);
    }
}
