//! GPU telemetry end to end without a GPU: a dcgm-exporter served from a local socket, and
//! `chimera telemetry probe` on a machine without NVML.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chimera::telemetry::{DcgmSource, GpuSource, Sampler, aggregate, probe};

use crate::support::{Manifest, campaign, chimera, emulate};

/// A dcgm-exporter 3.3 scrape of a 2-GPU H200 host (subset of the default counters).
fn exporter_text(energy0: u64) -> String {
    let labels = |gpu: u32, uuid: &str, bus: &str| {
        format!(
            "gpu=\"{gpu}\",UUID=\"{uuid}\",pci_bus_id=\"{bus}\",device=\"nvidia{gpu}\",modelName=\"NVIDIA H200\",Hostname=\"h200-node-1\",DCGM_FI_DRIVER_VERSION=\"560.35.03\""
        )
    };
    let g0 = labels(
        0,
        "GPU-0e1d2c3b-aaaa-bbbb-cccc-000000000000",
        "00000000:19:00.0",
    );
    let g1 = labels(
        1,
        "GPU-1f2e3d4c-aaaa-bbbb-cccc-111111111111",
        "00000000:3B:00.0",
    );
    let mut t = String::new();
    for (name, help, kind, v0, v1) in [
        (
            "DCGM_FI_DEV_SM_CLOCK",
            "SM clock frequency (in MHz).",
            "gauge",
            "1980".to_owned(),
            "345".to_owned(),
        ),
        (
            "DCGM_FI_DEV_MEM_CLOCK",
            "Memory clock frequency (in MHz).",
            "gauge",
            "2619".to_owned(),
            "2619".to_owned(),
        ),
        (
            "DCGM_FI_DEV_GPU_TEMP",
            "GPU temperature (in C).",
            "gauge",
            "58".to_owned(),
            "29".to_owned(),
        ),
        (
            "DCGM_FI_DEV_POWER_USAGE",
            "Power draw (in W).",
            "gauge",
            "431.517000".to_owned(),
            "76.204000".to_owned(),
        ),
        (
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
            "Total energy consumption since boot (in mJ).",
            "counter",
            energy0.to_string(),
            "98765432".to_owned(),
        ),
        (
            "DCGM_FI_DEV_GPU_UTIL",
            "GPU utilization (in %).",
            "gauge",
            "88".to_owned(),
            "0".to_owned(),
        ),
        (
            "DCGM_FI_DEV_MEM_COPY_UTIL",
            "Memory utilization (in %).",
            "gauge",
            "37".to_owned(),
            "0".to_owned(),
        ),
        (
            "DCGM_FI_DEV_FB_FREE",
            "Framebuffer memory free (in MiB).",
            "gauge",
            "100000".to_owned(),
            "142500".to_owned(),
        ),
        (
            "DCGM_FI_DEV_FB_USED",
            "Framebuffer memory used (in MiB).",
            "gauge",
            "43135".to_owned(),
            "635".to_owned(),
        ),
    ] {
        t.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        t.push_str(&format!("{name}{{{g0}}} {v0}\n{name}{{{g1}}} {v1}\n"));
    }
    t
}

/// Serves the exporter text on 127.0.0.1:0; every scrape advances GPU 0's energy counter by
/// 1000 mJ. Odd scrapes answer with a chunked body, even ones with content-length. Every
/// response says `Connection: close`, as the connection is closed after it: without it the
/// client may reuse the closing connection for its next scrape and see it reset.
fn serve() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            let mut request_line = String::new();
            reader.read_line(&mut request_line).expect("request line");
            loop {
                line.clear();
                if reader.read_line(&mut line).expect("header") == 0 || line == "\r\n" {
                    break;
                }
            }
            if !request_line.starts_with("GET /metrics ") {
                let _ = stream
                    .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
                continue;
            }
            let body = exporter_text(5_000_000 + 1000 * n as u64);
            let response = if n % 2 == 1 {
                let mut r = String::from(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                );
                for chunk in body.as_bytes().chunks(700) {
                    r.push_str(&format!(
                        "{:x}\r\n{}\r\n",
                        chunk.len(),
                        String::from_utf8_lossy(chunk)
                    ));
                }
                r.push_str("0\r\n\r\n");
                r
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (format!("http://{addr}/metrics"), hits)
}

#[test]
fn dcgm_source_scrapes_a_local_exporter_and_maps_the_fields() {
    let (url, hits) = serve();
    let mut src = DcgmSource::new(&url).expect("scrape");
    assert_eq!(src.kind(), "dcgm");
    let devices = src.devices();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0].name.as_deref(), Some("NVIDIA H200"));
    assert_eq!(
        devices[1].uuid.as_deref(),
        Some("GPU-1f2e3d4c-aaaa-bbbb-cccc-111111111111")
    );
    assert_eq!(devices[0].driver_version.as_deref(), Some("560.35.03"));
    assert_eq!(devices[0].memory_total_mib, Some(143_135.0));

    // The scrape from `new` serves both GPUs once each (one HTTP GET).
    let s0 = src.sample(0);
    let s1 = src.sample(1);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(s0.util_pct, Some(88.0));
    assert_eq!(s0.mem_util_pct, Some(37.0));
    assert_eq!(s0.mem_used_mib, Some(43_135.0));
    assert_eq!(s0.power_w, Some(431.517));
    assert_eq!(s0.energy_mj, Some(5_000_000));
    assert_eq!(s0.temp_c, Some(58.0));
    assert_eq!(s0.sm_clock_mhz, Some(1980));
    assert_eq!(s0.mem_clock_mhz, Some(2619));
    assert_eq!(s1.gpu, 1);
    assert_eq!(s1.power_w, Some(76.204));
    assert_eq!(s1.energy_mj, Some(98_765_432));

    // Asking for GPU 0 again scrapes again (chunked this time).
    let again = src.sample(0);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert_eq!(again.energy_mj, Some(5_001_000));
    assert_eq!(again.util_pct, Some(88.0));
    // An unknown GPU is an empty sample, not an error.
    let unknown = src.sample(7);
    assert_eq!(unknown.gpu, 7);
    assert!(unknown.util_pct.is_none());
}

#[test]
fn dcgm_source_under_the_sampler_gives_a_cell_energy_delta() {
    let (url, _hits) = serve();
    let src = DcgmSource::new(&url).expect("scrape");
    let sampler = Sampler::start(Box::new(src), Duration::from_millis(20));
    assert_eq!(sampler.kind(), "dcgm");
    sampler.begin("cell", &[0]);
    std::thread::sleep(Duration::from_millis(100));
    let got = sampler.end("cell");
    assert!(got.samples.len() >= 3, "{}", got.samples.len());
    assert!(got.samples.iter().all(|s| s.gpu == 0));
    let agg = aggregate(&got.samples);
    assert_eq!(agg.gpu_util_mean_pct, Some(88.0));
    assert_eq!(agg.mem_peak_mib, Some(43_135.0));
    // 1000 mJ per scrape; the first sample may be served from `new`'s scrape.
    let e = agg.energy_j.expect("energy");
    assert!(
        e >= 1.0 * (got.samples.len() as f64 - 2.0),
        "{e} J from {} samples",
        got.samples.len()
    );
    assert_eq!(agg.throttled, None);
    sampler.stop();
}

#[test]
fn dcgm_errors_are_clear() {
    let (url, _) = serve();
    let bad_path = url.replace("/metrics", "/nope");
    let err = DcgmSource::new(&bad_path).expect_err("404");
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(DcgmSource::new("https://example.invalid/metrics").is_err());
}

#[test]
fn probe_through_dcgm_lists_both_gpus() {
    let (url, _) = serve();
    let mut src = DcgmSource::new(&url).expect("scrape");
    let text = probe(&mut src);
    assert!(text.contains("telemetry source: dcgm, 2 GPU(s)"), "{text}");
    assert!(text.contains("GPU 1: NVIDIA H200"), "{text}");
    assert!(text.contains("energy_mj         ok"), "{text}");
    assert!(text.contains("processes         none"), "{text}");

    let run = chimera(&["telemetry", "probe", "--dcgm", &url]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("GPU 0: NVIDIA H200"), "{}", run.stdout);
}

#[test]
fn probe_without_a_gpu_says_so_and_exits_0() {
    if std::path::Path::new("/dev/nvidia0").exists() {
        // On a GPU machine the same command describes the GPU instead (the GPU tier's check,
        // docs/notes/2026-11-27-gpu-telemetry-h200.md).
        let run = chimera(&["telemetry", "probe"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains("GPU 0:"), "{}", run.stdout);
        assert!(!run.stdout.contains("no GPU telemetry"), "{}", run.stdout);
        return;
    }
    let run = chimera(&["telemetry", "probe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert!(run.stdout.contains("no GPU telemetry"), "{}", run.stdout);
    assert!(run.stdout.contains("will be null"), "{}", run.stdout);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let run = chimera(&["telemetry", "probe", "--pcie"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn probe_of_an_unreachable_dcgm_exporter_exits_2() {
    chimera(&["telemetry", "probe", "--dcgm", "http://127.0.0.1:1/metrics"])
        .assert_refused(&["127.0.0.1:1"]);
}

/// A campaign whose endpoint sits on a remote GPU host: its cells are sampled through that
/// host's dcgm-exporter (`gpu_metrics_url`), and the aggregates land in the `cells` table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_gpu_of_an_endpoint_is_sampled_through_its_exporter() {
    let (metrics_url, hits) = serve();
    let emu = emulate(
        "models:\n  - {name: m, load_ms: 1, prompt_tok_s: 100000, output_tok_s: 200, output_tokens: 20}\n",
        1,
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = Manifest::new("TR991", "remote GPU telemetry")
        .endpoint(&format!(
            "{{id: e, kind: emulator, url: \"http://{}\", resource: \"gpu-host:gpu0\", gpu_metrics_url: \"{metrics_url}\"}}",
            emu.addrs[0]
        ))
        .model("m", "m")
        .workload("{id: w, task: {kind: single_inference, prompts: [\"hello\"]}}")
        .scenario("s", "single", &[("c", "client", "e")])
        .repetitions(2)
        .setting("telemetry: {source: none, period_ms: 50}")
        .block("{workload: w, scenario: s, model: m, configurations: [{id: one}]}")
        .yaml();
    let summary = campaign(dir.path(), "remote", &text, false, None).await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    assert!(hits.load(Ordering::SeqCst) >= 4, "the exporter was scraped");
    let mut sampled = 0;
    for entry in std::fs::read_dir(dir.path().join("data/remote/cells")).expect("cells") {
        let cell = entry.expect("entry").path();
        if !cell.join("MANIFEST.json").exists() {
            continue;
        }
        let b = &chimera::table::read_parquet(&cell.join("cells.parquet")).expect("cells")[0];
        for col in ["gpu_util_mean_pct", "power_mean_w", "energy_j"] {
            assert_eq!(b.column_by_name(col).expect(col).null_count(), 0, "{col}");
        }
        sampled += 1;
    }
    assert_eq!(
        sampled, 3,
        "the warm-up and both cells sampled through the exporter"
    );
    emu.shutdown().await;
}
