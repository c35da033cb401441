//! `make bench-telemetry`: the CPU cost of GPU telemetry at 10 Hz.
//!
//! For each source (NullSource, FakeSource and, where `libnvidia-ml.so.1` and a GPU are
//! present, NVML), a [`Sampler`] runs with one cell on GPU 0 for `CHIMERA_BENCH_SECONDS`
//! (default 5) at a 100 ms period while the main thread sleeps. Printed: samples taken, the
//! sampler thread's CPU time per second of sampling (from `/proc/self/task/<tid>/schedstat`,
//! ns resolution, for the task named `gpu-telemetry`; else `/proc/self/stat` of the whole
//! process, 10 ms ticks), and the cost of one sample measured directly (mean over 200 calls
//! on this thread; "periodic" is what the sampler takes between a cell's begin and end: NVML
//! reads the slow energy counter there at most once a second). With `CHIMERA_BENCH_PCIE=1`, NVML also reads PCIe throughput.

use std::time::{Duration, Instant};

use chimera::telemetry::{
    FakeSource, GpuSource, NullSource, NvmlSource, Sampler, TelemetryAggregate, aggregate,
};

const PERIOD: Duration = Duration::from_millis(100);
const THREAD_NAME: &str = "gpu-telemetry";

/// CPU time of the sampler thread (ns), or of the whole process as a fallback, and which.
fn cpu_ns() -> (f64, &'static str) {
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            let dir = t.path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim() != THREAD_NAME {
                continue;
            }
            if let Some(ns) = std::fs::read_to_string(dir.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
            {
                return (ns, "sampler thread (schedstat)");
            }
            if let Some(ns) = stat_ticks(&dir.join("stat")) {
                return (ns, "sampler thread (stat)");
            }
        }
    }
    (
        stat_ticks(std::path::Path::new("/proc/self/stat")).unwrap_or(f64::NAN),
        "whole process (stat)",
    )
}

/// utime + stime of a `stat` file, in ns (assuming the usual 100 ticks/s).
fn stat_ticks(path: &std::path::Path) -> Option<f64> {
    let s = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name; utime/stime are fields 14/15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 1e7)
}

struct Row {
    source: String,
    samples: usize,
    cpu_ms_per_s: f64,
    cpu_pct: f64,
    per_sample_us: f64,
    per_periodic_us: f64,
    how: &'static str,
    agg: TelemetryAggregate,
    span_s: f64,
}

fn measure(name: &str, make: &dyn Fn() -> Box<dyn GpuSource>, seconds: f64) -> Row {
    // The cost of one sample, on this thread.
    let mut src = make();
    let n = 200;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(src.sample(0));
    }
    let per_sample_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(src.sample_periodic(0));
    }
    let per_periodic_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    drop(src);

    let sampler = Sampler::start(make(), PERIOD);
    sampler.begin("bench", &[0]);
    std::thread::sleep(Duration::from_millis(50));
    let (c0, how) = cpu_ns();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let (c1, _) = cpu_ns();
    let wall = t0.elapsed().as_secs_f64();
    let got = sampler.end("bench").samples;
    sampler.stop();
    let samples = got.len();
    let span_s = match (got.first(), got.last()) {
        (Some(a), Some(b)) => (b.t_unix_ms - a.t_unix_ms) / 1000.0,
        _ => 0.0,
    };
    let agg = aggregate(&got);
    let cpu_ms_per_s = (c1 - c0) / 1e6 / wall;
    Row {
        source: name.to_owned(),
        samples,
        cpu_ms_per_s,
        cpu_pct: cpu_ms_per_s / 10.0,
        per_sample_us,
        per_periodic_us,
        how,
        agg,
        span_s,
    }
}

fn main() {
    let seconds: f64 = std::env::var("CHIMERA_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let pcie = std::env::var("CHIMERA_BENCH_PCIE").is_ok_and(|v| v == "1");
    println!(
        "GPU telemetry sampler at {} Hz, one cell on GPU 0, {seconds} s per source",
        1000 / PERIOD.as_millis()
    );
    let mut rows = vec![
        measure("none (NullSource)", &|| Box::new(NullSource), seconds),
        measure(
            "fake (FakeSource)",
            &|| Box::new(FakeSource::new(1, 1)),
            seconds,
        ),
    ];
    match NvmlSource::new(pcie) {
        Ok(s) => {
            let name = s
                .devices()
                .first()
                .and_then(|d| d.name.clone())
                .unwrap_or_else(|| "GPU 0".to_owned());
            drop(s);
            let label = format!("nvml{} ({name})", if pcie { " +pcie" } else { "" });
            rows.push(measure(
                &label,
                &|| match NvmlSource::new(pcie) {
                    Ok(s) => Box::new(s) as Box<dyn GpuSource>,
                    Err(_) => Box::new(NullSource),
                },
                seconds,
            ));
        }
        Err(e) => println!("nvml: skipped ({e})"),
    }
    nvml_breakdown(pcie);
    println!();
    println!(
        "{:<34} {:>8} {:>12} {:>8} {:>14} {:>16}  cpu time of",
        "source", "samples", "cpu ms / s", "cpu %", "µs full sample", "µs periodic"
    );
    for r in &rows {
        println!(
            "{:<34} {:>8} {:>12.3} {:>8.3} {:>14.1} {:>16.1}  {}",
            r.source,
            r.samples,
            r.cpu_ms_per_s,
            r.cpu_pct,
            r.per_sample_us,
            r.per_periodic_us,
            r.how
        );
    }
    println!();
    println!("cell aggregate (sanity check: energy from the counter vs mean power × span)");
    let f = |v: Option<f64>| v.map_or_else(|| "null".to_owned(), |v| format!("{v:.1}"));
    for r in &rows {
        let a = &r.agg;
        println!(
            "{:<34} util mean {} max {} %, power mean {} max {} W, energy {} J \
             (power × {:.2} s = {} J), mem peak {} MiB, throttled {}",
            r.source,
            f(a.gpu_util_mean_pct),
            f(a.gpu_util_max_pct),
            f(a.power_mean_w),
            f(a.power_max_w),
            f(a.energy_j),
            r.span_s,
            f(a.power_mean_w.map(|p| p * r.span_s)),
            f(a.mem_peak_mib),
            a.throttled
                .map_or_else(|| "null".to_owned(), |t| t.to_string()),
        );
    }
}

/// With NVML: the cost of each reading of GPU 0 (mean µs over 50 calls), to see which one
/// dominates a sample.
fn nvml_breakdown(pcie: bool) {
    use nvml_wrapper::Nvml;
    use nvml_wrapper::enum_wrappers::device::{Clock, PcieUtilCounter, TemperatureSensor};
    let Ok(nvml) = Nvml::init() else { return };
    let Ok(dev) = nvml.device_by_index(0) else {
        return;
    };
    let time = |name: &str, f: &dyn Fn() -> bool| {
        let n = 50;
        let t = Instant::now();
        let mut ok = true;
        for _ in 0..n {
            ok &= f();
        }
        println!(
            "  {name:<34} {:>10.1} µs{}",
            t.elapsed().as_secs_f64() * 1e6 / f64::from(n),
            if ok { "" } else { "  (error)" }
        );
    };
    println!();
    println!("NVML cost per reading, GPU 0 (mean of 50 calls)");
    time("device_by_index", &|| nvml.device_by_index(0).is_ok());
    time("utilization_rates", &|| dev.utilization_rates().is_ok());
    time("memory_info", &|| dev.memory_info().is_ok());
    time("power_usage", &|| dev.power_usage().is_ok());
    time("total_energy_consumption", &|| {
        dev.total_energy_consumption().is_ok()
    });
    time("temperature", &|| {
        dev.temperature(TemperatureSensor::Gpu).is_ok()
    });
    time("clock_info(SM)", &|| dev.clock_info(Clock::SM).is_ok());
    time("clock_info(Memory)", &|| {
        dev.clock_info(Clock::Memory).is_ok()
    });
    time("current_throttle_reasons", &|| {
        dev.current_throttle_reasons().is_ok()
    });
    time("running_compute_processes_count", &|| {
        dev.running_compute_processes_count().is_ok()
    });
    if pcie {
        time("pcie_throughput(Send)", &|| {
            dev.pcie_throughput(PcieUtilCounter::Send).is_ok()
        });
    }
}
