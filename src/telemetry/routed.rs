//! Several sources behind one sampler: the local GPUs (NVML) and the GPUs of remote hosts
//! (one dcgm-exporter per host), under one id space. Local GPU `i` keeps id `i`; GPU `i` of
//! the `k`-th remote source (from 0) gets id `REMOTE_BASE × (k + 1) + i`.

use super::source::{GpuInfo, GpuSample, GpuSource};

/// Id offset between sources.
pub const REMOTE_BASE: u32 = 1000;

/// A local source plus remote ones, routed by GPU id.
pub struct RoutedSource {
    local: Box<dyn GpuSource>,
    remotes: Vec<Box<dyn GpuSource>>,
}

impl RoutedSource {
    /// Routes ids below [`REMOTE_BASE`] to `local`, the rest to `remotes`.
    pub fn new(local: Box<dyn GpuSource>, remotes: Vec<Box<dyn GpuSource>>) -> Self {
        Self { local, remotes }
    }

    /// The id of GPU `gpu` of remote source `k`.
    pub fn remote_id(k: usize, gpu: u32) -> u32 {
        REMOTE_BASE * (k as u32 + 1) + gpu
    }

    fn route(&mut self, id: u32) -> (&mut dyn GpuSource, u32) {
        let k = (id / REMOTE_BASE) as usize;
        match k.checked_sub(1).and_then(|k| self.remotes.get_mut(k)) {
            Some(r) => (r.as_mut(), id % REMOTE_BASE),
            None => (self.local.as_mut(), id),
        }
    }

    fn renumber(mut s: GpuSample, id: u32) -> GpuSample {
        s.gpu = id;
        s
    }
}

impl GpuSource for RoutedSource {
    fn kind(&self) -> &'static str {
        if self.remotes.is_empty() {
            self.local.kind()
        } else {
            "routed"
        }
    }

    fn devices(&self) -> Vec<GpuInfo> {
        let mut v = self.local.devices();
        for (k, r) in self.remotes.iter().enumerate() {
            for mut d in r.devices() {
                d.index = Self::remote_id(k, d.index);
                v.push(d);
            }
        }
        v
    }

    fn sample(&mut self, gpu: u32) -> GpuSample {
        let (src, local) = self.route(gpu);
        Self::renumber(src.sample(local), gpu)
    }

    fn sample_periodic(&mut self, gpu: u32) -> GpuSample {
        let (src, local) = self.route(gpu);
        Self::renumber(src.sample_periodic(local), gpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::FakeSource;

    #[test]
    fn ids_route_to_their_source_and_keep_their_number() {
        let mut r = RoutedSource::new(
            Box::new(FakeSource::new(2, 1)),
            vec![Box::new(FakeSource::new(1, 2))],
        );
        let ids: Vec<u32> = r.devices().iter().map(|d| d.index).collect();
        assert_eq!(ids, vec![0, 1, 1000]);
        assert_eq!(r.sample(1000).gpu, 1000);
        assert!(r.sample(1000).power_w.is_some());
        assert_eq!(r.sample(1).gpu, 1);
        assert_eq!(RoutedSource::remote_id(1, 3), 2003);
    }
}
