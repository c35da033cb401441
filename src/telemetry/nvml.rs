//! Local GPUs through NVML (`nvml-wrapper`, which loads `libnvidia-ml.so.1` at run time).

use std::time::{Duration, Instant};

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, PcieUtilCounter, TemperatureSensor};

use super::source::{GpuInfo, GpuSample, GpuSource};
use crate::util::clock::now_unix_ms;

const MIB: f64 = 1024.0 * 1024.0;
/// How often a periodic sample reads the (slow) energy counter.
const ENERGY_EVERY: Duration = Duration::from_secs(1);

/// Local GPUs through NVML. Each reading degrades on its own (`None` when unsupported).
pub struct NvmlSource {
    nvml: Nvml,
    pcie: bool,
    devices: Vec<GpuInfo>,
    /// When each GPU's energy counter was last read.
    energy_read: Vec<Option<Instant>>,
}

impl std::fmt::Debug for NvmlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlSource")
            .field("pcie", &self.pcie)
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

impl NvmlSource {
    /// Initialises NVML and lists the GPUs. Fails without `libnvidia-ml.so.1`, without a
    /// driver, or with no GPU. `pcie` adds PCIe throughput to every sample (~20 ms per call).
    pub fn new(pcie: bool) -> Result<NvmlSource, String> {
        let nvml = Nvml::init().map_err(|e| format!("NVML did not initialise: {e}"))?;
        let count = nvml
            .device_count()
            .map_err(|e| format!("NVML cannot count GPUs: {e}"))?;
        if count == 0 {
            return Err("NVML initialised but found no GPU".to_owned());
        }
        let driver_version = nvml.sys_driver_version().ok();
        let cuda_driver_version = nvml.sys_cuda_driver_version().ok().map(|v| {
            format!(
                "{}.{}",
                nvml_wrapper::cuda_driver_version_major(v),
                nvml_wrapper::cuda_driver_version_minor(v)
            )
        });
        let devices = (0..count)
            .map(|index| {
                let dev = nvml.device_by_index(index).ok();
                GpuInfo {
                    index,
                    name: dev.as_ref().and_then(|d| d.name().ok()),
                    uuid: dev.as_ref().and_then(|d| d.uuid().ok()),
                    driver_version: driver_version.clone(),
                    cuda_driver_version: cuda_driver_version.clone(),
                    memory_total_mib: dev
                        .as_ref()
                        .and_then(|d| d.memory_info().ok())
                        .map(|m| m.total as f64 / MIB),
                }
            })
            .collect();
        Ok(NvmlSource {
            nvml,
            pcie,
            devices,
            energy_read: vec![None; count as usize],
        })
    }
}

impl GpuSource for NvmlSource {
    fn kind(&self) -> &'static str {
        "nvml"
    }

    fn devices(&self) -> Vec<GpuInfo> {
        self.devices.clone()
    }

    fn sample(&mut self, gpu: u32) -> GpuSample {
        self.read(gpu, true)
    }

    fn sample_periodic(&mut self, gpu: u32) -> GpuSample {
        let due = self
            .energy_read
            .get(gpu as usize)
            .is_none_or(|t| t.is_none_or(|t| t.elapsed() >= ENERGY_EVERY));
        self.read(gpu, due)
    }
}

impl NvmlSource {
    /// One sample; the energy counter only when `energy`.
    fn read(&mut self, gpu: u32, energy: bool) -> GpuSample {
        let t_unix_ms = now_unix_ms();
        let Ok(dev) = self.nvml.device_by_index(gpu) else {
            return GpuSample {
                gpu,
                t_unix_ms,
                ..GpuSample::default()
            };
        };
        let util = dev.utilization_rates().ok();
        let (pcie_tx_kib_s, pcie_rx_kib_s) = if self.pcie {
            (
                dev.pcie_throughput(PcieUtilCounter::Send)
                    .ok()
                    .map(f64::from),
                dev.pcie_throughput(PcieUtilCounter::Receive)
                    .ok()
                    .map(f64::from),
            )
        } else {
            (None, None)
        };
        GpuSample {
            gpu,
            t_unix_ms,
            util_pct: util.as_ref().map(|u| f64::from(u.gpu)),
            mem_util_pct: util.as_ref().map(|u| f64::from(u.memory)),
            mem_used_mib: dev.memory_info().ok().map(|m| m.used as f64 / MIB),
            power_w: dev.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
            energy_mj: if energy {
                if let Some(t) = self.energy_read.get_mut(gpu as usize) {
                    *t = Some(Instant::now());
                }
                dev.total_energy_consumption().ok()
            } else {
                None
            },
            temp_c: dev.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
            sm_clock_mhz: dev.clock_info(Clock::SM).ok(),
            mem_clock_mhz: dev.clock_info(Clock::Memory).ok(),
            throttle_reasons: dev.current_throttle_reasons().ok().map(|r| r.bits()),
            processes: dev.running_compute_processes_count().ok(),
            pcie_tx_kib_s,
            pcie_rx_kib_s,
        }
    }
}
