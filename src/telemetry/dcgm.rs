//! Remote GPUs from NVIDIA dcgm-exporter's Prometheus text endpoint, scraped with reqwest on
//! a small current-thread runtime of the source's own (the sampler runs on an OS thread).
//!
//! dcgm-exporter refreshes its values every collection interval (`-c`, 30 s by default):
//! sampling faster than that repeats values; run it with e.g. `-c 100` for 10 Hz telemetry.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::source::{GpuInfo, GpuSample, GpuSource};
use crate::util::clock::now_unix_ms;

/// Connect, read and write timeout of one scrape.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The largest response accepted.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// A scrape older than this is never reused.
const MAX_AGE: Duration = Duration::from_secs(1);

/// One sample line of the Prometheus text exposition format.
#[derive(Debug, Clone, PartialEq)]
pub struct PromLine {
    /// Metric name.
    pub name: String,
    /// Labels, by name.
    pub labels: BTreeMap<String, String>,
    /// The value (`NaN`, `+Inf` allowed).
    pub value: f64,
}

/// Parses Prometheus text exposition (version 0.0.4): `# HELP` / `# TYPE` and other comments
/// are skipped, as are malformed lines; timestamps are ignored.
pub fn parse_exposition(text: &str) -> Vec<PromLine> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<PromLine> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices();
        let mut key = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => break i + 1,
                ',' | ' ' => {}
                '=' => {
                    let (_, q) = chars.next()?;
                    if q != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        let (_, c) = chars.next()?;
                        match c {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.insert(std::mem::take(&mut key).trim().to_owned(), value);
                }
                other => key.push(other),
            }
        };
        rest = &r[end..];
    }
    let value_text = rest.split_whitespace().next()?;
    let value = match value_text {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(PromLine {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Maps a dcgm-exporter scrape onto GPUs and samples, sorted by GPU index. Lines without a
/// `gpu` label are ignored; for MIG exporters, the whole-GPU line (no `GPU_I_ID`) wins.
pub fn parse_dcgm(text: &str, t_unix_ms: f64) -> Vec<(GpuInfo, GpuSample)> {
    // gpu -> metric -> (value, from a MIG instance line)
    let mut values: BTreeMap<u32, BTreeMap<String, (f64, bool)>> = BTreeMap::new();
    let mut infos: BTreeMap<u32, GpuInfo> = BTreeMap::new();
    for line in parse_exposition(text) {
        let Some(gpu) = line
            .labels
            .get("gpu")
            .and_then(|g| g.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let label = |k: &str| line.labels.get(k).filter(|v| !v.is_empty()).cloned();
        let info = infos.entry(gpu).or_insert_with(|| GpuInfo {
            index: gpu,
            name: None,
            uuid: None,
            driver_version: None,
            cuda_driver_version: None,
            memory_total_mib: None,
        });
        info.name = info.name.take().or_else(|| label("modelName"));
        info.uuid = info.uuid.take().or_else(|| label("UUID"));
        info.driver_version = info
            .driver_version
            .take()
            .or_else(|| label("DCGM_FI_DRIVER_VERSION"));
        let mig = label("GPU_I_ID").is_some();
        let slot = values.entry(gpu).or_default();
        match slot.get(&line.name) {
            Some((_, false)) => {}
            Some((_, true)) if mig => {}
            _ => {
                slot.insert(line.name.clone(), (line.value, mig));
            }
        }
    }
    infos
        .into_values()
        .map(|mut info| {
            let m = values.remove(&info.index).unwrap_or_default();
            let get = |k: &str| m.get(k).map(|v| v.0).filter(|v| v.is_finite());
            let first = |ks: &[&str]| ks.iter().find_map(|k| get(k));
            let as_u32 = |v: f64| (v >= 0.0 && v <= f64::from(u32::MAX)).then(|| v.round() as u32);
            let as_u64 = |v: f64| (v >= 0.0 && v < u64::MAX as f64).then(|| v.round() as u64);
            info.memory_total_mib = get("DCGM_FI_DEV_FB_TOTAL").or_else(|| {
                let (used, free) = (get("DCGM_FI_DEV_FB_USED")?, get("DCGM_FI_DEV_FB_FREE")?);
                Some(used + free + get("DCGM_FI_DEV_FB_RESERVED").unwrap_or(0.0))
            });
            let sample = GpuSample {
                gpu: info.index,
                t_unix_ms,
                util_pct: get("DCGM_FI_DEV_GPU_UTIL"),
                mem_util_pct: get("DCGM_FI_DEV_MEM_COPY_UTIL"),
                mem_used_mib: get("DCGM_FI_DEV_FB_USED"),
                power_w: get("DCGM_FI_DEV_POWER_USAGE"),
                energy_mj: get("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION").and_then(as_u64),
                temp_c: get("DCGM_FI_DEV_GPU_TEMP"),
                sm_clock_mhz: get("DCGM_FI_DEV_SM_CLOCK").and_then(as_u32),
                mem_clock_mhz: get("DCGM_FI_DEV_MEM_CLOCK").and_then(as_u32),
                throttle_reasons: first(&[
                    "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
                    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
                ])
                .and_then(as_u64),
                processes: None,
                pcie_tx_kib_s: get("DCGM_FI_DEV_PCIE_TX_THROUGHPUT"),
                pcie_rx_kib_s: get("DCGM_FI_DEV_PCIE_RX_THROUGHPUT"),
            };
            (info, sample)
        })
        .collect()
}

/// Parses an `http://` URL of a dcgm-exporter; the path defaults to `/metrics`.
fn parse_url(url: &str) -> Result<reqwest::Url, String> {
    let text = url.trim();
    if !text.starts_with("http://") {
        return Err(if text.starts_with("https://") {
            format!("`{url}`: https is not supported for dcgm-exporter; use http://")
        } else {
            format!("`{url}` is not an http:// URL (e.g. http://gpu-host:9400/metrics)")
        });
    }
    let mut parsed = reqwest::Url::parse(text).map_err(|e| format!("`{url}`: {e}"))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    if parsed.path() == "/" {
        parsed.set_path("/metrics");
    }
    Ok(parsed)
}

/// `host:port` of a URL, for log lines.
fn authority(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// A blocking HTTP GET through reqwest on a private current-thread runtime.
#[derive(Debug)]
struct Scraper {
    url: reqwest::Url,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Scraper {
    fn new(url: reqwest::Url) -> Result<Scraper, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .user_agent(concat!("chimera/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start an HTTP runtime: {e}"))?;
        Ok(Scraper {
            url,
            client,
            runtime,
        })
    }

    /// The body of a 200 response. The sampler calls this from its own OS thread; called
    /// from inside an async runtime (the campaign lists its sources there), the GET runs on
    /// a scoped thread, since a runtime cannot block inside another.
    fn get(&self) -> Result<String, String> {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| self.runtime.block_on(self.fetch()))
                    .join()
                    .unwrap_or_else(|_| Err("the scrape thread panicked".to_owned()))
            })
        } else {
            self.runtime.block_on(self.fetch())
        }
    }

    async fn fetch(&self) -> Result<String, String> {
        let err = |e: reqwest::Error| format!("{}: {e}", authority(&self.url));
        let send = || {
            self.client
                .get(self.url.clone())
                .header(reqwest::header::ACCEPT, "text/plain")
                .send()
        };
        let mut response = match send().await {
            Ok(r) => r,
            // A kept-alive connection the exporter closed meanwhile fails the send; one fresh
            // try follows before the scrape counts as failed. A timeout is not tried again.
            Err(e) if !e.is_timeout() => send().await.map_err(err)?,
            Err(e) => return Err(err(e)),
        };
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(err)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("response larger than {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let code = response.status().as_u16();
        if code != 200 {
            let text = String::from_utf8_lossy(&body);
            return Err(format!(
                "HTTP {code}: {}",
                text.chars().take(200).collect::<String>().trim()
            ));
        }
        String::from_utf8(body).map_err(|_| "the response is not UTF-8".to_owned())
    }
}

/// GPUs read from a dcgm-exporter endpoint. One scrape serves every GPU once: sampling all
/// GPUs in a tick costs one HTTP GET; asking for a GPU again scrapes again.
#[derive(Debug)]
pub struct DcgmSource {
    scraper: Scraper,
    devices: Vec<GpuInfo>,
    /// The latest scrape: when, and the not-yet-served sample of each GPU.
    cache: Option<(Instant, BTreeMap<u32, GpuSample>)>,
    /// Whether the last scrape failed (to log a failure streak once).
    failing: bool,
}

impl DcgmSource {
    /// Scrapes `url` once (e.g. `http://gpu-host:9400/metrics`; the path defaults to
    /// `/metrics`) and lists its GPUs. Fails if it cannot be scraped or lists no GPU.
    pub fn new(url: &str) -> Result<DcgmSource, String> {
        let scraper = Scraper::new(parse_url(url)?)?;
        let mut source = DcgmSource {
            scraper,
            devices: Vec::new(),
            cache: None,
            failing: false,
        };
        source.scrape()?;
        if source.devices.is_empty() {
            return Err("the endpoint lists no DCGM_FI_* metric with a `gpu` label".to_owned());
        }
        Ok(source)
    }

    fn scrape(&mut self) -> Result<(), String> {
        let t = now_unix_ms();
        let text = self.scraper.get()?;
        let parsed = parse_dcgm(&text, t);
        if !parsed.is_empty() {
            self.devices = parsed.iter().map(|(i, _)| i.clone()).collect();
        }
        self.cache = Some((
            Instant::now(),
            parsed.into_iter().map(|(i, s)| (i.index, s)).collect(),
        ));
        Ok(())
    }
}

impl GpuSource for DcgmSource {
    fn kind(&self) -> &'static str {
        "dcgm"
    }

    fn devices(&self) -> Vec<GpuInfo> {
        self.devices.clone()
    }

    fn sample(&mut self, gpu: u32) -> GpuSample {
        let fresh = |c: &Option<(Instant, BTreeMap<u32, GpuSample>)>| {
            c.as_ref()
                .is_some_and(|(at, m)| at.elapsed() < MAX_AGE && m.contains_key(&gpu))
        };
        if !fresh(&self.cache) {
            match self.scrape() {
                Ok(()) => {
                    if self.failing {
                        tracing::info!(
                            "dcgm-exporter {}: scraping again",
                            authority(&self.scraper.url)
                        );
                    }
                    self.failing = false;
                }
                Err(e) => {
                    if !self.failing {
                        tracing::warn!(
                            "dcgm-exporter {}: {e}: samples are empty until it answers",
                            authority(&self.scraper.url)
                        );
                    }
                    self.failing = true;
                    self.cache = None;
                }
            }
        }
        self.cache
            .as_mut()
            .and_then(|(_, m)| m.remove(&gpu))
            .unwrap_or_else(|| GpuSample::empty(gpu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dcgm-exporter 3.3 scrape of a 2-GPU H100 host (default counters plus a few extra).
    const EXPORTER_TEXT: &str = include_str!("testdata/dcgm-exporter-h100.txt");

    #[test]
    fn parses_exposition_lines_labels_and_escapes() {
        let lines = parse_exposition(
            "# HELP x help\n# TYPE x gauge\nx 1\ny{a=\"b\\\"c\",d=\"e,f\",} 2.5 1712345678000\nz{k=\"v\"} NaN\nw +Inf\nbroken{a=\"b\" 3\n\n",
        );
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].name, "x");
        assert_eq!(lines[0].value, 1.0);
        assert_eq!(lines[1].labels["a"], "b\"c");
        assert_eq!(lines[1].labels["d"], "e,f");
        assert_eq!(lines[1].value, 2.5);
        assert!(lines[2].value.is_nan());
        assert_eq!(lines[3].value, f64::INFINITY);
    }

    #[test]
    fn maps_a_recorded_exporter_scrape() {
        let gpus = parse_dcgm(EXPORTER_TEXT, 1234.0);
        assert_eq!(gpus.len(), 2);
        let (info, s) = &gpus[0];
        assert_eq!(info.index, 0);
        assert_eq!(info.name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
        assert_eq!(
            info.uuid.as_deref(),
            Some("GPU-5a1b2c3d-0000-1111-2222-333344445555")
        );
        assert_eq!(info.driver_version.as_deref(), Some("550.54.15"));
        assert_eq!(info.cuda_driver_version, None);
        assert_eq!(info.memory_total_mib, Some(60553.0 + 20475.0 + 531.0));
        assert_eq!(s.gpu, 0);
        assert_eq!(s.t_unix_ms, 1234.0);
        assert_eq!(s.util_pct, Some(97.0));
        assert_eq!(s.mem_util_pct, Some(43.0));
        assert_eq!(s.mem_used_mib, Some(20475.0));
        assert_eq!(s.power_w, Some(612.347));
        assert_eq!(s.energy_mj, Some(4_830_917_262));
        assert_eq!(s.temp_c, Some(61.0));
        assert_eq!(s.sm_clock_mhz, Some(1980));
        assert_eq!(s.mem_clock_mhz, Some(2619));
        assert_eq!(s.throttle_reasons, Some(4));
        assert_eq!(s.processes, None);
        assert_eq!(s.pcie_tx_kib_s, None);
        let (info1, s1) = &gpus[1];
        assert_eq!(info1.index, 1);
        let power = (s1.power_w, s1.energy_mj);
        assert_eq!(power, (Some(71.025), Some(1_290_311_847)));
        let clocks = (s1.util_pct, s1.sm_clock_mhz, s1.throttle_reasons);
        assert_eq!(clocks, (Some(0.0), Some(345), Some(1)));
    }

    #[test]
    fn missing_metrics_are_none_and_mig_lines_lose_to_whole_gpu_lines() {
        let text = "DCGM_FI_DEV_GPU_UTIL{gpu=\"3\",GPU_I_ID=\"1\"} 10\n\
                    DCGM_FI_DEV_GPU_UTIL{gpu=\"3\"} 55\n\
                    DCGM_FI_DEV_GPU_UTIL{gpu=\"3\",GPU_I_ID=\"2\"} 20\n\
                    DCGM_FI_DEV_POWER_USAGE 99\n";
        let gpus = parse_dcgm(text, 0.0);
        assert_eq!(gpus.len(), 1);
        assert_eq!(gpus[0].1.gpu, 3);
        assert_eq!(gpus[0].1.util_pct, Some(55.0));
        assert_eq!(gpus[0].1.power_w, None);
        assert_eq!(gpus[0].1.energy_mj, None);
        assert_eq!(gpus[0].0.name, None);
        assert_eq!(gpus[0].0.memory_total_mib, None);
    }

    #[test]
    fn parses_urls() {
        let u = parse_url("http://gpu-host:9400/metrics").expect("url");
        assert_eq!(
            (u.host_str(), u.port(), u.path()),
            (Some("gpu-host"), Some(9400), "/metrics")
        );
        assert_eq!(
            parse_url("http://10.0.0.2:9400").expect("url").path(),
            "/metrics"
        );
        let u = parse_url("http://[::1]:9400/m").expect("url");
        assert_eq!((u.path(), authority(&u)), ("/m", "[::1]:9400".to_owned()));
        assert_eq!(authority(&parse_url("http://h/x").expect("url")), "h:80");
        assert!(parse_url("https://h:1/").is_err());
        assert!(parse_url("h:1").is_err());
        assert!(parse_url("http://h:port/").is_err());
    }

    #[test]
    fn an_unreachable_endpoint_is_an_error() {
        // Port 1 on localhost: refused.
        assert!(DcgmSource::new("http://127.0.0.1:1/metrics").is_err());
    }
}
