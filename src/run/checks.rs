//! The self-checks a run applies to each measured cell ([`crate::record::checks`]): those the
//! runner can tell (start skew, reload, model digest, request count) when the cell's record
//! is made, the GPU throttling one when its telemetry is attached.

use std::path::Path;

use super::Runner;
use crate::plan::{NodeKind, Plan, PlanNode};
use crate::record::{CellRecord, checks};
use crate::table::{self, ProvenanceRow, Row};

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
            rec.mark_suspect(checks::check_request_count(
                rec,
                plan.requests_per_agent_run(c),
            ));
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

    /// Records `digest` as the campaign's digest of `model` on `url` unless one is known.
    pub(super) fn learn_digest(&self, url: &str, model: &str, digest: &str) {
        self.campaign_digests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((url.to_owned(), model.to_owned()))
            .or_insert_with(|| digest.to_owned());
    }

    /// Learns the campaign's model digests from the `provenance.parquet` an earlier run of
    /// the campaign in `dir` wrote (before this run rewrites it); nothing when there is none.
    pub(crate) fn learn_earlier_digests(&self, dir: &Path) {
        for r in earlier_provenance(dir) {
            if let (Some(model), Some(digest)) = (&r.model_tag, &r.model_digest) {
                self.learn_digest(&r.url, model, digest);
            }
        }
    }
}

/// The rows of `dir/provenance.parquet`; none when it is missing or unreadable (logged).
fn earlier_provenance(dir: &Path) -> Vec<ProvenanceRow> {
    let path = dir.join("provenance.parquet");
    if !path.exists() {
        return Vec::new();
    }
    let rows = table::read_parquet(&path)
        .map_err(|e| e.to_string())
        .and_then(|batches| {
            let mut out = Vec::new();
            for b in &batches {
                out.extend(
                    ProvenanceRow::from_batch(b)
                        .map_err(|e| format!("column `{}` {}", e.column, e.problem))?,
                );
            }
            Ok(out)
        });
    rows.unwrap_or_else(|e| {
        tracing::warn!(
            "{}: {e}: the model digests of earlier runs are not checked",
            path.display()
        );
        Vec::new()
    })
}

/// The GPU throttling check of a cell whose telemetry samples are attached.
pub(crate) fn check_gpu(rec: &mut CellRecord) {
    let reason = checks::check_throttle(&rec.gpu_samples);
    rec.mark_suspect(reason);
}
