//! `chimera run`: plan, then run the plan into the campaign store (resuming it).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::RunArgs;
use crate::error::Error;
use crate::run::{self as runner, campaign};
use crate::{plan, store};

use super::runtime;

/// The default campaign name: the manifests' file stems joined with `+`.
pub(super) fn campaign_name(manifests: &[PathBuf]) -> String {
    let stems: Vec<String> = manifests
        .iter()
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .collect();
    if stems.is_empty() {
        "campaign".to_owned()
    } else {
        stems.join("+")
    }
}

/// The store entries of the plan's manifests, by absolute path, so that `status`, `analyze`
/// and a resume from another directory find the manifests beside them (`depends_on`).
fn manifest_entries(plan: &plan::Plan) -> Vec<store::ManifestEntry> {
    plan.reports
        .iter()
        .map(|r| {
            store::ManifestEntry::new(
                &std::fs::canonicalize(&r.manifest.path)
                    .unwrap_or_else(|_| r.manifest.path.clone())
                    .display()
                    .to_string(),
                &r.report,
                &r.manifest.source,
            )
        })
        .collect()
}

/// `chimera run`: exit 0 when every cell is committed, [`Error::FailedCells`] otherwise.
pub(super) fn run(args: &RunArgs) -> Result<(), Error> {
    let manifests = &args.files.manifests;
    let data = &args.store.data;
    let mut plan = plan::build(manifests)?;
    if args.unmanaged {
        crate::server::use_running_servers(&mut plan);
    }
    let moved = crate::server::offset_ports(&mut plan, args.port_offset).map_err(Error::Usage)?;
    if !moved.is_empty() {
        let _ = writeln!(
            std::io::stderr(),
            "--port-offset {}: managed servers listen on {}",
            args.port_offset,
            moved.join(", ")
        );
    }
    let plan = Arc::new(plan);
    let entries = manifest_entries(&plan);
    let work_dir = args.work_dir.clone().unwrap_or_else(|| data.join(".work"));
    let run_opts = runner::RunOptions::new(work_dir);
    let opts = campaign::CampaignOptions {
        data: data.clone(),
        name: args
            .campaign
            .clone()
            .unwrap_or_else(|| campaign_name(manifests)),
        force: args.force.clone(),
        fail_fast: args.fail_fast,
        use_cache: !args.no_cache,
        verify: args.verify,
        cell_timeout: args.cell_timeout.map(std::time::Duration::from_secs_f64),
        progress: true,
        fake_gpus: None,
        fake_gpu_throttle: 0,
        shard: args.shard.map(|s| (s, args.shard_by)),
    };
    let rt = runtime().map_err(Error::Output)?;
    let outcome = rt.block_on(async {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            runner::wait_for_stop().await;
            let _ = tx.send(true);
        });
        campaign::run_campaign(plan.clone(), entries, &opts, &run_opts, rx).await
    });
    let summary = match outcome {
        Ok(s) => s,
        Err(campaign::CampaignError::Interrupted) => return Err(Error::Interrupted),
        Err(e) => return Err(Error::Campaign(e)),
    };
    let _ = writeln!(
        std::io::stderr(),
        "{} cells: {} committed before, {} measured, {} from the shared cache, {} failed, {} blocked by a failed dependency{}",
        summary.total,
        summary.committed_before,
        summary.ran,
        summary.cached,
        summary.failed.len(),
        summary.blocked,
        match summary.server_restarts {
            0 => String::new(),
            1 => ", 1 managed-server restart".to_owned(),
            n => format!(", {n} managed-server restarts"),
        } + &match summary.server_setting_restarts {
            0 => String::new(),
            1 => ", 1 managed-server restart for new settings".to_owned(),
            n => format!(", {n} managed-server restarts for new settings"),
        }
    );
    if summary.failed.is_empty() && summary.blocked == 0 {
        Ok(())
    } else {
        Err(Error::FailedCells {
            failed: summary.failed.len() + summary.blocked,
            total: summary.total,
        })
    }
}
