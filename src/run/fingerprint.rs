//! The environment fingerprint that keys the shared cache.

use super::Runner;
use crate::plan::Plan;
use crate::store::Cache;

/// The environment fingerprint of the cache: server versions and model digests of every
/// endpoint. `None` when an endpoint does not answer (no reuse without knowing what ran).
pub(crate) async fn fingerprint(plan: &Plan, runner: &Runner) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for rp in &plan.reports {
        let spec = &rp.manifest.spec;
        for e in &spec.endpoints {
            let client = runner.client(&e.url)?;
            let version = match client.version().await {
                Ok(v) => v,
                Err(err) => {
                    tracing::warn!(
                        "endpoint `{}` ({}) did not report its version ({}); the shared cache is not used",
                        e.id,
                        e.url,
                        err.message
                    );
                    return None;
                }
            };
            parts.push(format!("{}={}", e.url, version));
            for m in &spec.models {
                let digest = client
                    .model_identity(&m.tag)
                    .await
                    .unwrap_or_else(|| "absent".into());
                parts.push(format!("{}:{}={}", e.url, m.tag, digest));
            }
        }
    }
    parts.push("gpus=unknown".into());
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    Some(Cache::fingerprint(&refs))
}
