//! The self-checks a run applies to each measured cell ([`crate::record::checks`]): those the
//! runner can tell (start skew, reload, model digest, request count) when the cell's record
//! is made, the GPU throttling one when its telemetry is attached. The campaign's model
//! digests (the first each endpoint reported for each model) are kept in its
//! `model-digests.json`.

use std::path::Path;

use super::Runner;
use crate::plan::{NodeKind, Plan, PlanNode};
use crate::record::{CellRecord, checks};
use crate::table::{self, ProvenanceRow};

impl Runner {
    /// Marks `rec` (the record of `node`) suspect for each self-check it fails. Warm-ups are
    /// not checked.
    pub(super) async fn self_check(&self, plan: &Plan, node: &PlanNode, rec: &mut CellRecord) {
        if node.kind == NodeKind::Warmup {
            return;
        }
        rec.mark_suspect(checks::check_start_skew(rec));
        rec.mark_suspect(checks::check_reload(rec));
        if let Some(c) = plan.config_of(node) {
            if let Some(planned) = plan.planned_requests_per_agent_run(c) {
                rec.mark_suspect(checks::check_request_count(rec, planned));
            }
            let spec = &plan.reports[node.report as usize].manifest.spec;
            let model = rec.key.model.clone().unwrap_or_default();
            let digests = self
                .campaign_digests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let reason = checks::check_digest(rec, |a| {
                let url = &spec.endpoints.iter().find(|e| *e.id == *a.endpoint)?.url;
                digests
                    .get(&(url.clone(), model.clone()))
                    .map(String::as_str)
            });
            rec.mark_suspect(reason);
        }
    }

    /// Records `digest` as the campaign's digest of `model` on `url` unless one is known; a
    /// new one is written to the campaign's `model-digests.json` (once known, never changed).
    pub(super) fn learn_digest(&self, url: &str, model: &str, digest: &str) {
        let mut map = self
            .campaign_digests
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let key = (url.to_owned(), model.to_owned());
        if map.contains_key(&key) {
            return;
        }
        map.insert(key, digest.to_owned());
        if let Some(path) = self.digests_file.get() {
            write_digests(path, &map);
        }
    }

    /// Learns the campaign's model digests, the first each endpoint reported for each model
    /// in the campaign's life: from `dir/model-digests.json`, or for a campaign measured
    /// before that file existed from the `provenance.parquet` an earlier run wrote. `fresh`
    /// (`--force all`: every cell is measured again) starts over from this run's.
    pub(crate) fn learn_earlier_digests(&self, dir: &Path, fresh: bool) {
        let path = dir.join(DIGESTS_FILE);
        let _ = self.digests_file.set(path.clone());
        if fresh {
            return;
        }
        let known: Vec<DigestEntry> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(
                    "{}: {e}: the campaign's model digests are learned again",
                    path.display()
                );
                Vec::new()
            }),
            Err(_) => earlier_provenance(dir)
                .into_iter()
                .filter_map(|r| {
                    Some(DigestEntry {
                        url: r.url,
                        model: r.model_tag?,
                        digest: r.model_digest?,
                    })
                })
                .collect(),
        };
        for e in known {
            self.learn_digest(&e.url, &e.model, &e.digest);
        }
    }
}

/// The file of a campaign's model digests.
pub(crate) const DIGESTS_FILE: &str = "model-digests.json";

/// One line of `model-digests.json`.
#[derive(serde::Serialize, serde::Deserialize)]
struct DigestEntry {
    url: String,
    model: String,
    digest: String,
}

/// Writes the digests to `path` (a temporary name, then renamed); a failure is logged.
fn write_digests(path: &Path, map: &std::collections::HashMap<(String, String), String>) {
    let mut entries: Vec<DigestEntry> = map
        .iter()
        .map(|((url, model), digest)| DigestEntry {
            url: url.clone(),
            model: model.clone(),
            digest: digest.clone(),
        })
        .collect();
    entries.sort_by(|a, b| (&a.url, &a.model).cmp(&(&b.url, &b.model)));
    let tmp = path.with_extension(format!("json.{}.tmp", crate::util::unique_suffix()));
    let res = serde_json::to_vec_pretty(&entries)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&tmp, b))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = res {
        tracing::warn!("cannot write {}: {e}", path.display());
    }
}

/// The rows of `dir/provenance.parquet` and of its shards' (`shards/*/provenance.parquet`);
/// an unreadable file is logged and skipped.
fn earlier_provenance(dir: &Path) -> Vec<ProvenanceRow> {
    let mut rows = Vec::new();
    for path in table::provenance_files(dir) {
        match table::read_rows::<ProvenanceRow>(&path) {
            Ok(r) => rows.extend(r),
            Err(e) => tracing::warn!(
                "{}: {e}: the model digests of earlier runs are not checked",
                path.display()
            ),
        }
    }
    rows
}

/// The GPU throttling check of a cell whose telemetry samples are attached.
pub(crate) fn check_gpu(rec: &mut CellRecord) {
    let reason = checks::check_throttle(&rec.gpu_samples);
    rec.mark_suspect(reason);
}
