//! GPU telemetry: NVML (local GPUs), dcgm-exporter (remote GPUs), a fake source for tests and
//! a null source for machines without GPUs; a [`Sampler`] on one dedicated OS thread that
//! attributes samples to running cells; [`aggregate`] for the `cells` table columns; and
//! [`probe`] for `chimera telemetry probe`. Server-side metrics: [`parse_metrics`] reads a
//! server's Prometheus `/metrics` text and a [`ServerScraper`] samples the endpoints of a
//! running cell that ask for it.
//!
//! ```text
//! open(&settings) ─► Box<dyn GpuSource> ─► Sampler::start(source, period)
//!     per cell:  sampler.begin(cell_id, &gpus) … sampler.end(cell_id) ─► CellSamples
//!                aggregate(&samples.samples)  ─► TelemetryAggregate (cells columns)
//! ```
//!
//! Every reading degrades on its own: an unsupported field is `None`, never an error for the
//! whole sample. Without a GPU (or without `libnvidia-ml.so.1`) [`open_local`] returns a
//! [`NullSource`] after one log line, and the telemetry columns stay null.

mod aggregate;
mod dcgm;
mod fake;
mod nvml;
mod probe;
mod prometheus;
mod routed;
mod sampler;
mod server_scrape;
mod source;

pub use aggregate::{TelemetryAggregate, aggregate};
pub use dcgm::{DcgmSource, parse_exposition};
pub use fake::{FakeSource, NullSource};
pub use nvml::NvmlSource;
pub use probe::probe;
pub use prometheus::{MetricKind, MetricReading, parse_metrics};
pub use routed::RoutedSource;
pub use sampler::{CellSamples, Sampler};
pub use server_scrape::{CellScrape, SCRAPE_TIMEOUT, ScrapeTarget, ServerSample, ServerScraper};
pub use source::{GpuInfo, GpuSample, GpuSource};

use crate::manifest::{TelemetrySettings, TelemetrySource};

/// The log line when no local GPU telemetry is available.
pub const NO_GPU_MESSAGE: &str =
    "no NVIDIA GPU or libnvidia-ml.so.1: GPU telemetry columns will be null";

/// Local GPUs through NVML if it initialises; else a [`NullSource`] after one log line.
pub fn open_local(pcie: bool) -> Box<dyn GpuSource> {
    match NvmlSource::new(pcie) {
        Ok(s) => {
            tracing::info!(gpus = s.devices().len(), "GPU telemetry through NVML");
            Box::new(s)
        }
        Err(e) => {
            tracing::warn!("{NO_GPU_MESSAGE} ({e})");
            Box::new(NullSource)
        }
    }
}

/// The source a manifest's `telemetry` settings ask for. A dcgm-exporter that cannot be
/// scraped, or `source: dcgm` without `dcgm_url`, degrades to a [`NullSource`] with a
/// warning: telemetry never stops a campaign.
pub fn open(settings: &TelemetrySettings) -> Box<dyn GpuSource> {
    match settings.source {
        TelemetrySource::None => Box::new(NullSource),
        TelemetrySource::Nvml => open_local(settings.pcie),
        TelemetrySource::Dcgm => match settings.dcgm_url.as_deref() {
            Some(url) => match DcgmSource::new(url) {
                Ok(s) => Box::new(s),
                Err(e) => {
                    tracing::warn!("dcgm-exporter {url}: {e}: GPU telemetry columns will be null");
                    Box::new(NullSource)
                }
            },
            None => {
                tracing::warn!(
                    "telemetry source `dcgm` without `dcgm_url`: GPU telemetry columns will be null"
                );
                Box::new(NullSource)
            }
        },
    }
}
