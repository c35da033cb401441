//! An endpoint's `server_metrics` settings: sample the server's Prometheus `/metrics`
//! endpoint during each measured cell (llama-server started with `--metrics`, vLLM).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Sample the endpoint's Prometheus `/metrics` endpoint during each measured cell (one scrape
/// at the cell's start, one every `interval_ms`, one at its end) into the `server_metrics`
/// table. `server_metrics: {}` takes the defaults. Ollama has no such endpoint. Sampling
/// settings, not part of cell ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerMetricsSettings {
    /// Path of the metrics endpoint on the endpoint's URL. Default: `/metrics`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Absolute metrics URL (e.g. `http://host:8001/metrics`) when the server publishes them
    /// elsewhere than on its own URL; overrides `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Milliseconds between two scrapes while a cell runs. Default: 500.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
}

/// The shortest `interval_ms` a manifest may ask for.
pub const MIN_SERVER_METRICS_INTERVAL_MS: u64 = 50;

fn default_path() -> String {
    "/metrics".to_owned()
}

fn default_interval_ms() -> u64 {
    500
}

impl Default for ServerMetricsSettings {
    fn default() -> Self {
        Self {
            path: default_path(),
            url: None,
            interval_ms: default_interval_ms(),
        }
    }
}

impl ServerMetricsSettings {
    /// The URL to scrape for an endpoint whose server listens at `base` (`http://host:port`).
    pub fn scrape_url(&self, base: &str) -> String {
        match &self.url {
            Some(u) => u.clone(),
            None => {
                let base = base.trim_end_matches('/');
                if self.path.starts_with('/') {
                    format!("{base}{}", self.path)
                } else {
                    format!("{base}/{}", self.path)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_url_joins_the_path_or_takes_the_override() {
        let s = ServerMetricsSettings::default();
        assert_eq!(s.scrape_url("http://h:1/"), "http://h:1/metrics");
        let s = ServerMetricsSettings {
            path: "stats".into(),
            ..ServerMetricsSettings::default()
        };
        assert_eq!(s.scrape_url("http://h:1"), "http://h:1/stats");
        let s = ServerMetricsSettings {
            url: Some("http://other:9/m".into()),
            ..ServerMetricsSettings::default()
        };
        assert_eq!(s.scrape_url("http://h:1"), "http://other:9/m");
    }
}
