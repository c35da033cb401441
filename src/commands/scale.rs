//! `chimera slurm` and `chimera k8s`: a campaign's shards on a cluster.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{K8sAction, K8sArgs, SlurmAction, SlurmArgs, SlurmSubmitArgs};
use crate::error::Error;
use crate::scale::{k8s, slurm};

use super::with_stdout;

/// `chimera slurm submit|resubmit`.
pub(super) fn slurm(args: SlurmArgs) -> Result<(), Error> {
    match args.action {
        SlurmAction::Submit(a) => submit(&a),
        SlurmAction::Resubmit(a) => {
            let name = super::data::only_campaign(&a.select.data, a.select.campaign.as_deref())?;
            let o = slurm::recorded(&a.select.data, &name)?;
            let (shards, notes) = slurm::unfinished(&o, &a.shards)?;
            for n in notes {
                let _ = writeln!(std::io::stderr(), "note: {n}");
            }
            with_stdout(|out| {
                if shards.is_empty() {
                    writeln!(
                        out,
                        "campaign `{name}`: every shard is done or running; nothing to resubmit"
                    )
                    .map_err(Error::Output)?;
                    return Ok(());
                }
                let list = shards
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                if a.dry_run {
                    writeln!(
                        out,
                        "would submit shards {list} of {n}: sbatch --array={list} {}",
                        o.dir().join("shards.sbatch").display(),
                        n = o.shards
                    )
                    .map_err(Error::Output)?;
                    return Ok(());
                }
                let sub = slurm::resubmit(&o, &shards)?;
                let what = format!("shard(s) {list} of {}", o.shards);
                write!(out, "{}", slurm::describe(&o, &sub, &what)).map_err(Error::Output)
            })
        }
    }
}

fn absolute(p: &Path) -> Result<PathBuf, Error> {
    std::fs::canonicalize(p).map_err(|e| Error::Usage(format!("{}: {e}", p.display())))
}

/// `chimera slurm submit`: checks the manifests plan and the shards' ports can move, then
/// writes and submits (or prints) the scripts.
fn submit(a: &SlurmSubmitArgs) -> Result<(), Error> {
    let manifests = &a.files.manifests;
    let mut plan = crate::plan::build(manifests)?;
    if a.sharding.shards == 0 {
        return Err(Error::Usage("--shards must be at least 1".to_owned()));
    }
    let widest = u32::from(a.port_offset_step).saturating_mul(a.sharding.shards - 1);
    let widest = u16::try_from(widest).map_err(|_| {
        Error::Usage(format!(
            "--shards {} × --port-offset-step {} moves ports past 65535; use a smaller step (0 \
             when every shard has a node of its own)",
            a.sharding.shards, a.port_offset_step
        ))
    })?;
    crate::server::offset_ports(&mut plan, widest).map_err(|e| {
        Error::Usage(format!(
            "{e}\n  = help: or pass --port-offset-step 0 when every shard has a node of its own"
        ))
    })?;
    let split = crate::plan::shard::split(&plan, a.sharding.shards, a.sharding.shard_by);
    let empty = split.work.iter().filter(|w| **w == 0).count();
    if empty > 0 {
        let _ = writeln!(
            std::io::stderr(),
            "warning: {empty} of the {} shards get no cells (the plan has fewer units than \
             shards); they finish at once",
            a.sharding.shards
        );
    }
    // Several array tasks may land on one node: on GPUs they would share them unless each
    // task asks for its own.
    let gpus = plan.reports.iter().any(|r| {
        r.manifest
            .spec
            .endpoints
            .iter()
            .any(|e| e.resource.to_string().contains(":gpu"))
    });
    let exclusive = a.sbatch_args.iter().any(|s| s.starts_with("--exclusive"));
    if gpus && a.gres.is_none() && !exclusive {
        let _ = writeln!(
            std::io::stderr(),
            "warning: the manifests run on GPUs, but no --gres is asked for: Slurm may start \
             several shards on one node, where they share its GPUs and disturb each other's \
             measurements; pass --gres gpu:K (or --sbatch-arg=--exclusive)"
        );
    }
    let campaign = a
        .sharding
        .campaign
        .clone()
        .unwrap_or_else(|| super::run::campaign_name(manifests));
    let data = &a.store.data;
    if !a.dry_run {
        std::fs::create_dir_all(data)
            .map_err(|e| Error::Usage(format!("{}: {e}", data.display())))?;
    }
    let o = slurm::SlurmOptions {
        manifests: manifests
            .iter()
            .map(|m| absolute(m))
            .collect::<Result<_, _>>()?,
        data: if a.dry_run && !data.exists() {
            std::env::current_dir().map_err(Error::Output)?.join(data)
        } else {
            absolute(data)?
        },
        campaign,
        shards: a.sharding.shards,
        shard_by: a.sharding.shard_by,
        partition: a.partition.clone(),
        gres: a.gres.clone(),
        time: a.time.clone(),
        port_offset_step: a.port_offset_step,
        chimera: std::env::current_exe().map_err(Error::Output)?,
        sbatch_args: a.sbatch_args.clone(),
    };
    let _ = writeln!(
        std::io::stderr(),
        "{} shards (by {}); expected work per shard {} requests (balance {:.2})",
        a.sharding.shards,
        a.sharding.shard_by.name(),
        split
            .work
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" / "),
        split.balance()
    );
    with_stdout(|out| {
        if a.dry_run {
            write!(
                out,
                "# ---- {} ----\n{}\n# ---- {} (submitted with --dependency=afterok:<shards job>) ----\n{}",
                o.dir().join("shards.sbatch").display(),
                o.shards_script(),
                o.dir().join("report.sbatch").display(),
                o.report_script()
            )
            .map_err(Error::Output)?;
            return Ok(());
        }
        let sub = slurm::submit(&o)?;
        let what = format!("{} shards", o.shards);
        write!(out, "{}", slurm::describe(&o, &sub, &what)).map_err(Error::Output)
    })
}

/// `chimera k8s manifest`.
pub(super) fn k8s(args: &K8sArgs) -> Result<(), Error> {
    let K8sAction::Manifest(a) = &args.action;
    // The manifests must plan (a broken one would fail in every pod); the ConfigMap carries
    // every manifest of the plan, those pulled in by `depends_on` too, side by side.
    let plan = crate::plan::build(&a.files.manifests)?;
    let manifests = plan
        .reports
        .iter()
        .map(|r| {
            let name = r
                .manifest
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("manifest.yaml")
                .to_owned();
            (name, r.manifest.source.clone())
        })
        .collect();
    let o = k8s::K8sOptions {
        manifests,
        campaign: a
            .sharding
            .campaign
            .clone()
            .unwrap_or_else(|| super::run::campaign_name(&a.files.manifests)),
        shards: a.sharding.shards,
        shard_by: a.sharding.shard_by,
        image: a.image.clone(),
        claim: a.claim.clone(),
        data_mount: a.data_mount.clone(),
        gpus: a.gpus,
        namespace: a.namespace.clone(),
    };
    let yaml = if a.report {
        k8s::report_job(&o)?
    } else {
        k8s::shard_job(&o)?
    };
    with_stdout(|out| out.write_all(yaml.as_bytes()).map_err(Error::Output))
}
