//! `chimera telemetry probe`: what a telemetry source can read here, and what it costs.

use std::fmt::Write;
use std::time::Instant;

use super::source::{GpuSample, GpuSource};

/// Samples per device for the cost measurement.
const COST_SAMPLES: u32 = 20;

/// The fields of a sample, with a formatter of a present reading.
#[allow(clippy::type_complexity)]
const FIELDS: &[(&str, fn(&GpuSample) -> Option<String>)] = &[
    ("util_pct", |s| s.util_pct.map(|v| format!("{v} %"))),
    ("mem_util_pct", |s| s.mem_util_pct.map(|v| format!("{v} %"))),
    ("mem_used_mib", |s| {
        s.mem_used_mib.map(|v| format!("{v:.0} MiB"))
    }),
    ("power_w", |s| s.power_w.map(|v| format!("{v:.1} W"))),
    ("energy_mj", |s| s.energy_mj.map(|v| format!("{v} mJ"))),
    ("temp_c", |s| s.temp_c.map(|v| format!("{v} °C"))),
    ("sm_clock_mhz", |s| {
        s.sm_clock_mhz.map(|v| format!("{v} MHz"))
    }),
    ("mem_clock_mhz", |s| {
        s.mem_clock_mhz.map(|v| format!("{v} MHz"))
    }),
    ("throttle_reasons", |s| {
        s.throttle_reasons.map(|v| format!("{v:#x}"))
    }),
    ("processes", |s| s.processes.map(|v| v.to_string())),
    ("pcie_tx_kib_s", |s| {
        s.pcie_tx_kib_s.map(|v| format!("{v:.0} KiB/s"))
    }),
    ("pcie_rx_kib_s", |s| {
        s.pcie_rx_kib_s.map(|v| format!("{v:.0} KiB/s"))
    }),
];

/// The report of `chimera telemetry probe`: the source, its devices, which reading works on
/// each device, and the mean cost of one full sample per device. Without GPUs, one line that
/// says so and what it means.
pub fn probe(source: &mut dyn GpuSource) -> String {
    let mut out = String::new();
    let devices = source.devices();
    let kind = source.kind();
    if devices.is_empty() {
        let why = match kind {
            "none" | "nvml" => "no NVIDIA GPU or libnvidia-ml.so.1 on this machine".to_owned(),
            other => format!("the `{other}` telemetry source lists no GPU"),
        };
        let _ = writeln!(
            out,
            "no GPU telemetry: {why}. The GPU telemetry columns of the cells table \
             (gpu_util_*, power_*, energy_j, mem_peak_mib, throttled) will be null; \
             everything else runs unchanged."
        );
        return out;
    }
    let _ = writeln!(out, "telemetry source: {kind}, {} GPU(s)", devices.len());
    let na = |v: &Option<String>| v.clone().unwrap_or_else(|| "n/a".to_owned());
    for d in &devices {
        let _ = writeln!(out, "\nGPU {}: {}", d.index, na(&d.name));
        let _ = writeln!(out, "  uuid          {}", na(&d.uuid));
        let _ = writeln!(out, "  driver        {}", na(&d.driver_version));
        let _ = writeln!(out, "  CUDA driver   {}", na(&d.cuda_driver_version));
        let _ = writeln!(
            out,
            "  memory        {}",
            d.memory_total_mib
                .map_or_else(|| "n/a".to_owned(), |m| format!("{m:.0} MiB"))
        );
        let first = source.sample(d.index);
        let _ = writeln!(out, "  readings:");
        for (name, read) in FIELDS {
            let status = match read(&first) {
                Some(v) => format!("ok    {v}"),
                None if name.starts_with("pcie") => {
                    "none  (off unless --pcie / `pcie: true`: ~20 ms per call; or unsupported)"
                        .to_owned()
                }
                None => "none  (unsupported on this device or source)".to_owned(),
            };
            let _ = writeln!(out, "    {name:<17} {status}");
        }
        let start = Instant::now();
        for _ in 0..COST_SAMPLES {
            let _ = source.sample(d.index);
        }
        let mean_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(COST_SAMPLES);
        let start = Instant::now();
        for _ in 0..COST_SAMPLES {
            let _ = source.sample_periodic(d.index);
        }
        let periodic_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(COST_SAMPLES);
        let _ = writeln!(
            out,
            "  one full sample: {mean_us:.0} µs, one periodic sample: {periodic_us:.0} µs \
             (means of {COST_SAMPLES})"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{FakeSource, NullSource};

    #[test]
    fn no_gpu_is_one_clear_line() {
        let text = probe(&mut NullSource);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("no NVIDIA GPU or libnvidia-ml.so.1"));
        assert!(text.contains("will be null"));
    }

    #[test]
    fn lists_devices_fields_and_cost() {
        let text = probe(&mut FakeSource::new(2, 9));
        assert!(text.contains("telemetry source: fake, 2 GPU(s)"), "{text}");
        assert!(text.contains("GPU 1: Fake H100"), "{text}");
        assert!(text.contains("CUDA driver   12.4"), "{text}");
        assert!(text.contains("util_pct          ok"), "{text}");
        assert!(
            text.contains("pcie_tx_kib_s     none  (off unless --pcie"),
            "{text}"
        );
        assert_eq!(text.matches("one full sample:").count(), 2, "{text}");
    }
}
