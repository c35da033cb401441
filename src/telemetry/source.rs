//! What every GPU telemetry source gives: its GPUs and their samples.

use serde::Serialize;

use crate::util::clock::now_unix_ms;

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
/// from the [`Sampler`](crate::telemetry::Sampler)'s OS thread, never from an async task.
pub trait GpuSource: Send {
    /// `nvml`, `dcgm`, `fake` or `none`.
    fn kind(&self) -> &'static str;
    /// The GPUs this source can sample.
    fn devices(&self) -> Vec<GpuInfo>;
    /// One full sample of `gpu`; unsupported readings are `None`. The [`Sampler`](crate::telemetry::Sampler) takes one
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
