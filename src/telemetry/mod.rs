//! GPU telemetry: NVML (local GPUs), dcgm-exporter (remote GPUs), a fake source for tests and
//! a null source for machines without GPUs; a [`Sampler`] on one dedicated OS thread that
//! attributes samples to running cells; [`aggregate`] for the `cells` table columns; and
//! [`probe`] for `chimera telemetry probe`.
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
mod routed;
mod sampler;

use serde::Serialize;

pub use aggregate::{TelemetryAggregate, aggregate};
pub use dcgm::{DcgmSource, parse_exposition};
pub use fake::{FakeSource, NullSource};
pub use nvml::NvmlSource;
pub use probe::probe;
pub use routed::RoutedSource;
pub use sampler::{CellSamples, Sampler};

use crate::manifest::{TelemetrySettings, TelemetrySource};
use crate::util::clock::now_unix_ms;

/// The log line when no local GPU telemetry is available.
pub const NO_GPU_MESSAGE: &str =
    "no NVIDIA GPU or libnvidia-ml.so.1: GPU telemetry columns will be null";

/// One GPU as a source sees it. Every descriptive field is optional.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuInfo {
    /// Index of the GPU (NVML index, or dcgm-exporter's `gpu` label).
    pub index: u32,
    /// Product name, e.g. `NVIDIA H200`.
    pub name: Option<String>,
    /// `GPU-…` UUID.
    pub uuid: Option<String>,
    /// Driver version, e.g. `550.54.15`.
    pub driver_version: Option<String>,
    /// CUDA driver API version, e.g. `12.4`.
    pub cuda_driver_version: Option<String>,
    /// Total framebuffer memory, MiB.
    pub memory_total_mib: Option<f64>,
}

/// One sample of one GPU. A field a device does not support is `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GpuSample {
    /// GPU index.
    pub gpu: u32,
    /// When the sample was taken (start of the readings), Unix epoch milliseconds.
    pub t_unix_ms: f64,
    /// Percent of time a kernel ran over the driver's last sample period.
    pub util_pct: Option<f64>,
    /// Percent of time device memory was read or written.
    pub mem_util_pct: Option<f64>,
    /// Used framebuffer memory, MiB.
    pub mem_used_mib: Option<f64>,
    /// Power draw, W.
    pub power_w: Option<f64>,
    /// Energy counter since the driver loaded, mJ (monotonic; use deltas).
    pub energy_mj: Option<u64>,
    /// GPU die temperature, °C.
    pub temp_c: Option<f64>,
    /// SM clock, MHz.
    pub sm_clock_mhz: Option<u32>,
    /// Memory clock, MHz.
    pub mem_clock_mhz: Option<u32>,
    /// Clock throttle (clock event) reasons, NVML bitmask (`0x1` = GPU idle).
    pub throttle_reasons: Option<u64>,
    /// Number of compute processes on the GPU.
    pub processes: Option<u32>,
    /// PCIe transmit throughput, KiB/s (only when PCIe sampling is enabled).
    pub pcie_tx_kib_s: Option<f64>,
    /// PCIe receive throughput, KiB/s (only when PCIe sampling is enabled).
    pub pcie_rx_kib_s: Option<f64>,
}

impl GpuSample {
    /// True when at least one field was read (a source without a GPU yields empty samples).
    pub fn has_reading(&self) -> bool {
        self.util_pct.is_some()
            || self.mem_util_pct.is_some()
            || self.mem_used_mib.is_some()
            || self.power_w.is_some()
            || self.energy_mj.is_some()
            || self.temp_c.is_some()
            || self.sm_clock_mhz.is_some()
            || self.mem_clock_mhz.is_some()
            || self.throttle_reasons.is_some()
            || self.processes.is_some()
    }
}

impl GpuSample {
    /// An empty sample of `gpu` taken now.
    pub fn empty(gpu: u32) -> Self {
        Self {
            gpu,
            t_unix_ms: now_unix_ms(),
            ..Self::default()
        }
    }
}

/// Where GPU samples come from. Implementations block (NVML calls, HTTP scrapes): call them
/// from the [`Sampler`]'s OS thread, never from an async task.
pub trait GpuSource: Send {
    /// `nvml`, `dcgm`, `fake` or `none`.
    fn kind(&self) -> &'static str;
    /// The GPUs this source can sample.
    fn devices(&self) -> Vec<GpuInfo>;
    /// One full sample of `gpu`; unsupported readings are `None`. The [`Sampler`] takes one
    /// at a cell's begin and one at its end.
    fn sample(&mut self, gpu: u32) -> GpuSample;
    /// A periodic sample between a cell's begin and end. A source may leave out readings that
    /// are expensive and not needed at every tick: NVML reads the energy counter here at most
    /// once a second (`total_energy_consumption` takes ~4 ms per call on an H200 with driver
    /// 580, the rest of a sample ~0.2 ms). Default: [`GpuSource::sample`].
    fn sample_periodic(&mut self, gpu: u32) -> GpuSample {
        self.sample(gpu)
    }
}

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
