//! GPU telemetry wiring of a campaign: which sampler source each GPU resource is read from.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::plan::Plan;

/// The telemetry source of a campaign and the sampler id of every GPU resource: local GPUs
/// through the manifest's source, and each endpoint with a `gpu_metrics_url` through its
/// host's dcgm-exporter.
pub(crate) fn telemetry_sources(
    plan: &Plan,
    local: Box<dyn crate::telemetry::GpuSource>,
) -> (Box<dyn crate::telemetry::GpuSource>, HashMap<String, u32>) {
    let mut remotes: Vec<Box<dyn crate::telemetry::GpuSource>> = Vec::new();
    let mut urls: Vec<String> = Vec::new();
    let mut ids: HashMap<String, u32> = HashMap::new();
    for rp in &plan.reports {
        for e in &rp.manifest.spec.endpoints {
            let Some(gpu) = e.resource.gpu() else {
                continue;
            };
            match &e.gpu_metrics_url {
                Some(url) => {
                    let k = match urls.iter().position(|u| u == url) {
                        Some(k) => Some(k),
                        None => match crate::telemetry::DcgmSource::new(url) {
                            Ok(src) => {
                                urls.push(url.clone());
                                remotes.push(Box::new(src));
                                Some(urls.len() - 1)
                            }
                            Err(err) => {
                                tracing::warn!(
                                    "endpoint `{}`: dcgm-exporter {url}: {err}; its GPU telemetry will be null",
                                    e.id
                                );
                                None
                            }
                        },
                    };
                    if let Some(k) = k {
                        ids.insert(
                            e.resource.to_string(),
                            crate::telemetry::RoutedSource::remote_id(k, gpu),
                        );
                    }
                }
                None => {
                    ids.entry(e.resource.to_string()).or_insert(gpu);
                }
            }
        }
    }
    (
        Box::new(crate::telemetry::RoutedSource::new(local, remotes)),
        ids,
    )
}

/// Starts the campaign's GPU sampler (one thread, the first report's telemetry settings;
/// `fake_gpus` replaces the manifest's source with deterministic fake GPUs) and returns it
/// with the sampler id of every GPU resource.
pub(crate) fn start_sampler(
    plan: &Plan,
    fake_gpus: Option<u32>,
    fake_throttle: u64,
) -> (Arc<crate::telemetry::Sampler>, Arc<HashMap<String, u32>>) {
    let settings = plan
        .reports
        .first()
        .map(|r| r.manifest.spec.telemetry.clone())
        .unwrap_or_default();
    let source: Box<dyn crate::telemetry::GpuSource> = match fake_gpus {
        Some(n) => Box::new(crate::telemetry::FakeSource::new(n, 1).with_throttle(fake_throttle)),
        None => crate::telemetry::open(&settings),
    };
    let (source, gpu_ids) = telemetry_sources(plan, source);
    let sampler = Arc::new(crate::telemetry::Sampler::start(
        source,
        Duration::from_millis(settings.period_ms.max(10)),
    ));
    (sampler, Arc::new(gpu_ids))
}
