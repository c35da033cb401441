//! `provenance.parquet`: what ran where (server versions, model digests, GPUs).

use std::collections::{HashMap, HashSet};

use super::Runner;
use crate::plan::Plan;
use crate::store::Campaign;
use crate::table;

/// Writes `provenance.parquet` in the campaign directory: one row per endpoint × model with
/// the server version, model digest and the GPU behind the endpoint's resource. Written to
/// a temporary name, then renamed; a failure is logged, never fatal.
pub(crate) async fn write_provenance(
    plan: &Plan,
    runner: &Runner,
    sampler: &crate::telemetry::Sampler,
    gpu_ids: &HashMap<String, u32>,
    campaign: &Campaign,
    name: &str,
) {
    let devices = sampler.devices();
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for rp in &plan.reports {
        let spec = &rp.manifest.spec;
        for e in &spec.endpoints {
            let Some(client) = runner.client(&e.url) else {
                continue;
            };
            let version = client.version().await.ok();
            let emulated = client.is_chimera_emulator().await;
            let gpu = gpu_ids
                .get(e.resource.as_str())
                .and_then(|i| devices.iter().find(|d| d.index == *i));
            for m in &spec.models {
                if !seen.insert((e.url.clone(), m.tag.clone())) {
                    continue;
                }
                rows.push(table::ProvenanceRow {
                    campaign: name.to_owned(),
                    endpoint: e.id.clone(),
                    url: e.url.clone(),
                    host: e
                        .url
                        .split("//")
                        .nth(1)
                        .and_then(|h| h.rsplit_once(':'))
                        .map(|(h, _)| provenance_host(h, e.managed.is_some())),
                    os: Some(std::env::consts::OS.to_owned()),
                    gpu_name: gpu.and_then(|g| g.name.clone()),
                    gpu_uuid: gpu.and_then(|g| g.uuid.clone()),
                    driver: gpu.and_then(|g| g.driver_version.clone()),
                    cuda_driver_version: gpu.and_then(|g| g.cuda_driver_version.clone()),
                    server_kind: if emulated {
                        "emulator".to_owned()
                    } else {
                        e.kind.to_string()
                    },
                    server_version: version.clone(),
                    model_tag: Some(m.tag.clone()),
                    model_digest: client.model_digest(&m.tag).await.ok().flatten(),
                    chimera_version: env!("CARGO_PKG_VERSION").to_owned(),
                    git_sha: None,
                });
            }
        }
    }
    let bytes = match table::provenance_part(&rows) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("cannot encode provenance: {e}");
            return;
        }
    };
    // A shard writes its own (its hosts and GPUs); `compact` gathers them all.
    let dir = campaign.own_dir();
    let tmp = dir.join(".tmp-provenance.parquet");
    let dst = dir.join("provenance.parquet");
    let res = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &dst));
    if let Err(e) = res {
        tracing::warn!("cannot write {}: {e}", dst.display());
    }
}

/// The `host` provenance value of an endpoint: the URL's host, marked when chimera managed
/// the server.
pub(crate) fn provenance_host(host: &str, managed: bool) -> String {
    if managed {
        format!("{host} (server managed by chimera)")
    } else {
        host.to_owned()
    }
}
