//! Server-side metrics of a cell: while it runs, every endpoint of the cell that asks for it
//! (`server_metrics` in the manifest) has its Prometheus `/metrics` scraped once at the
//! cell's start, every `interval_ms`, and once at its end, so that counters give their
//! increases over the cell. A scrape that fails is a gap (one row with its error), logged
//! once per endpoint and never a failure of the cell. The scrapes at the start and at the end
//! are what the cell waits for, so they get [`BOUNDARY_TIMEOUT`], and the end aborts a poll
//! still in flight rather than wait for it: a slow or dead endpoint adds at most twice
//! [`BOUNDARY_TIMEOUT`] to a cell. A body over [`MAX_BODY`] bytes is a gap, not read on.
//!
//! ```text
//! ServerScraper::new()  (one per campaign, one reqwest client)
//!   per cell:  scraper.begin(targets).await ─► CellScrape … scrape.end().await ─► Vec<ServerSample>
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::prometheus::{MetricReading, parse_metrics};
use crate::util::clock::now_unix_ms;

/// The longest one scrape while the cell runs may take.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest the scrape at a cell's start or end may take (the cell waits for them).
pub const BOUNDARY_TIMEOUT: Duration = Duration::from_millis(500);

/// The largest `/metrics` body read (llama-server's is about 2 KiB, vLLM's some 100 KiB).
pub const MAX_BODY: usize = 8 << 20;

/// One endpoint to scrape during a cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeTarget {
    /// Endpoint id (manifest).
    pub endpoint: String,
    /// The metrics URL.
    pub url: String,
    /// Time between two scrapes.
    pub interval: Duration,
}

/// One reading of one endpoint's series, or a gap (a scrape that failed).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSample {
    /// Endpoint id.
    pub endpoint: String,
    /// When the scrape started, Unix epoch milliseconds.
    pub t_unix_ms: f64,
    /// The reading; `None` for a gap.
    pub reading: Option<MetricReading>,
    /// Why the scrape failed (gaps only).
    pub error: Option<String>,
}

/// Scrapes servers' `/metrics` for the cells of one campaign (one HTTP client, and the
/// endpoints already warned about).
#[derive(Debug)]
pub struct ServerScraper {
    client: Option<reqwest::Client>,
    warned: Mutex<HashSet<String>>,
}

impl Default for ServerScraper {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerScraper {
    /// A scraper with its own HTTP client ([`SCRAPE_TIMEOUT`] per scrape).
    pub fn new() -> ServerScraper {
        // No proxy: a proxy from the environment would get the scrapes of 127.0.0.1, as it
        // would the requests (the backend clients do the same).
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(SCRAPE_TIMEOUT)
            .timeout(SCRAPE_TIMEOUT)
            .user_agent(concat!("chimera/", env!("CARGO_PKG_VERSION")))
            .build();
        let client = match client {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("cannot build an HTTP client for server metrics: {e}: they are off");
                None
            }
        };
        ServerScraper {
            client,
            warned: Mutex::new(HashSet::new()),
        }
    }

    /// The body of one scrape of `url` (at most [`MAX_BODY`] bytes, read in chunks), within
    /// `timeout`.
    async fn fetch(&self, url: &str, timeout: Duration) -> Result<String, String> {
        let client = self.client.as_ref().ok_or("no HTTP client")?;
        let err = |e: reqwest::Error| {
            if e.is_timeout() {
                format!("no answer within {} ms", timeout.as_millis())
            } else {
                e.to_string()
            }
        };
        let mut resp = client.get(url).timeout(timeout).send().await.map_err(err)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let too_big = || format!("the response is over the {} MiB limit", MAX_BODY >> 20);
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(too_big());
        }
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(err)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// One scrape of `t` within `timeout`: its readings, or one gap. The first failure of an
    /// endpoint is logged (once per campaign).
    pub async fn scrape(&self, t: &ScrapeTarget, timeout: Duration) -> Vec<ServerSample> {
        let at = now_unix_ms();
        let result = self.fetch(&t.url, timeout).await.and_then(|body| {
            let r = parse_metrics(&body);
            if r.is_empty() {
                Err("no Prometheus metrics in the response".to_owned())
            } else {
                Ok(r)
            }
        });
        match result {
            Ok(readings) => readings
                .into_iter()
                .map(|r| ServerSample {
                    endpoint: t.endpoint.clone(),
                    t_unix_ms: at,
                    reading: Some(r),
                    error: None,
                })
                .collect(),
            Err(e) => {
                let first = self
                    .warned
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(t.endpoint.clone());
                if first {
                    tracing::warn!(
                        "endpoint `{}`: server metrics {}: {e}; recorded as a gap in `server_metrics` \
                         (further failures of this endpoint are not logged)",
                        t.endpoint,
                        t.url
                    );
                }
                vec![ServerSample {
                    endpoint: t.endpoint.clone(),
                    t_unix_ms: at,
                    reading: None,
                    error: Some(e),
                }]
            }
        }
    }

    /// Starts sampling `targets` for one cell: the first scrape of each is taken before this
    /// returns (so that it precedes the cell's first request; within [`BOUNDARY_TIMEOUT`]),
    /// then each is polled at its interval until [`CellScrape::end`]. Nothing to scrape:
    /// nothing is started.
    pub async fn begin(self: &Arc<Self>, targets: Vec<ScrapeTarget>) -> CellScrape {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let first = scrape_all(self, &targets, BOUNDARY_TIMEOUT).await;
        samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(first);
        for t in &targets {
            let (me, t, out, mut stopped) =
                (self.clone(), t.clone(), samples.clone(), stopped.clone());
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(t.interval) => {}
                        _ = stopped.changed() => break,
                    }
                    let got = me.scrape(&t, SCRAPE_TIMEOUT).await;
                    out.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend(got);
                }
            });
        }
        CellScrape {
            scraper: self.clone(),
            targets,
            samples,
            stop,
            tasks,
        }
    }
}

/// One scrape of every target within `timeout`, concurrently, in target order.
async fn scrape_all(
    scraper: &Arc<ServerScraper>,
    targets: &[ScrapeTarget],
    timeout: Duration,
) -> Vec<ServerSample> {
    let mut set = JoinSet::new();
    for (i, t) in targets.iter().enumerate() {
        let (me, t) = (scraper.clone(), t.clone());
        set.spawn(async move { (i, me.scrape(&t, timeout).await) });
    }
    let mut got: Vec<(usize, Vec<ServerSample>)> = Vec::with_capacity(targets.len());
    while let Some(r) = set.join_next().await {
        if let Ok(r) = r {
            got.push(r);
        }
    }
    got.sort_by_key(|(i, _)| *i);
    got.into_iter().flat_map(|(_, s)| s).collect()
}

/// The sampling of one running cell.
#[derive(Debug)]
pub struct CellScrape {
    scraper: Arc<ServerScraper>,
    targets: Vec<ScrapeTarget>,
    samples: Arc<Mutex<Vec<ServerSample>>>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl CellScrape {
    /// Stops the polling (a poll still in flight is aborted: it leaves no sample), takes the
    /// final scrape of every target (within [`BOUNDARY_TIMEOUT`]) and returns every sample of
    /// the cell in time order (per endpoint, then name and labels within a scrape).
    pub async fn end(mut self) -> Vec<ServerSample> {
        if self.targets.is_empty() {
            return Vec::new();
        }
        let _ = self.stop.send(true);
        self.tasks.shutdown().await;
        let last = scrape_all(&self.scraper, &self.targets, BOUNDARY_TIMEOUT).await;
        let mut all =
            std::mem::take(&mut *self.samples.lock().unwrap_or_else(PoisonError::into_inner));
        all.extend(last);
        all.sort_by(|a, b| {
            a.t_unix_ms
                .total_cmp(&b.t_unix_ms)
                .then_with(|| a.endpoint.cmp(&b.endpoint))
        });
        all
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A `/metrics` on 127.0.0.1 that answers every connection with `reply` (then closes
    /// it), or holds it open without a word when `reply` is `None`.
    async fn serve(reply: Option<Vec<u8>>) -> ScrapeTarget {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut s, _)) = l.accept().await {
                let Some(r) = reply.clone() else {
                    held.push(s);
                    continue;
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(&r).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        ScrapeTarget {
            endpoint: "e".into(),
            url: format!("http://{addr}/metrics"),
            interval: Duration::from_millis(50),
        }
    }

    /// An HTTP/1.1 200 reply with `body`, its length not announced (read to the close).
    fn reply(body: &[u8]) -> Vec<u8> {
        let mut r =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n".to_vec();
        r.extend_from_slice(body);
        r
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_over_the_limit_is_a_gap_and_one_under_it_is_read() {
        let scraper = Arc::new(ServerScraper::new());
        let ok = serve(Some(reply(b"# TYPE m gauge\nm 3\n"))).await;
        let got = scraper.scrape(&ok, SCRAPE_TIMEOUT).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].reading.as_ref().map(|r| r.value), Some(3.0));
        let mut big = b"m 1\n".repeat(MAX_BODY / 4);
        big.extend_from_slice(b"m 2\n");
        let huge = serve(Some(reply(&big))).await;
        let got = scraper.scrape(&huge, SCRAPE_TIMEOUT).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].reading.is_none());
        let e = got[0].error.as_deref().unwrap_or_default();
        assert!(e.contains("over the 8 MiB limit"), "{e}");
    }

    /// A server that accepts and never answers: the start and the end of a cell each wait
    /// at most [`BOUNDARY_TIMEOUT`] (not the 2 s of a poll, nor a poll in flight).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_endpoint_holds_a_cell_up_by_the_boundary_timeout_at_most() {
        let scraper = Arc::new(ServerScraper::new());
        let t = serve(None).await;
        let slack = BOUNDARY_TIMEOUT + Duration::from_millis(400);
        let t0 = Instant::now();
        let scrape = scraper.begin(vec![t]).await;
        assert!(t0.elapsed() < slack, "begin took {:?}", t0.elapsed());
        // Polls are in flight (each would wait 2 s).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t1 = Instant::now();
        let samples = scrape.end().await;
        assert!(t1.elapsed() < slack, "end took {:?}", t1.elapsed());
        assert_eq!(samples.len(), 2, "the start and the end: {samples:?}");
        for s in &samples {
            assert_eq!(s.error.as_deref(), Some("no answer within 500 ms"), "{s:?}");
        }
    }
}
