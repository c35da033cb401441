//! Server-side metrics of a cell: while it runs, every endpoint of the cell that asks for it
//! (`server_metrics` in the manifest) has its Prometheus `/metrics` scraped once at the
//! cell's start, every `interval_ms`, and once at its end, so that counters give exact
//! increases over the cell. A scrape that fails is a gap (one row with its error), logged
//! once per endpoint and never a failure of the cell.
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

/// The longest one scrape may take.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

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
        let client = reqwest::Client::builder()
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

    /// The body of one scrape of `url`.
    async fn fetch(&self, url: &str) -> Result<String, String> {
        let client = self.client.as_ref().ok_or("no HTTP client")?;
        let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        resp.text().await.map_err(|e| e.to_string())
    }

    /// One scrape of `t`: its readings, or one gap. The first failure of an endpoint is
    /// logged (once per campaign).
    pub async fn scrape(&self, t: &ScrapeTarget) -> Vec<ServerSample> {
        let at = now_unix_ms();
        let result = self.fetch(&t.url).await.and_then(|body| {
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
    /// returns (so that it precedes the cell's first request), then each is polled at its
    /// interval until [`CellScrape::end`]. Nothing to scrape: nothing is started.
    pub async fn begin(self: &Arc<Self>, targets: Vec<ScrapeTarget>) -> CellScrape {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let first = scrape_all(self, &targets).await;
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
                    let got = me.scrape(&t).await;
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

/// One scrape of every target, concurrently, in target order.
async fn scrape_all(scraper: &Arc<ServerScraper>, targets: &[ScrapeTarget]) -> Vec<ServerSample> {
    let mut set = JoinSet::new();
    for (i, t) in targets.iter().enumerate() {
        let (me, t) = (scraper.clone(), t.clone());
        set.spawn(async move { (i, me.scrape(&t).await) });
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
    /// Stops the polling, takes the final scrape of every target and returns every sample
    /// of the cell in time order (per endpoint, then name and labels within a scrape).
    pub async fn end(mut self) -> Vec<ServerSample> {
        if self.targets.is_empty() {
            return Vec::new();
        }
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        let last = scrape_all(&self.scraper, &self.targets).await;
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
