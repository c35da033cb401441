//! `chimera validate`, `chimera plan` and `chimera schema`: the commands that read manifests
//! and run nothing.

use crate::cli::{PlanArgs, PlanFormat, ValidateArgs};
use crate::error::Error;
use crate::{manifest, plan};

use super::with_stdout;

/// `chimera validate`: one `ok` line per report of the plan.
pub(super) fn validate(args: &ValidateArgs) -> Result<(), Error> {
    let plan = plan::build(&args.files.manifests)?;
    with_stdout(|out| {
        for (ri, rp) in plan.reports.iter().enumerate() {
            let nodes = plan
                .graph
                .node_weights()
                .filter(|n| n.report as usize == ri)
                .count();
            writeln!(
                out,
                "ok  {}  {}: {} configuration(s){}, {} node(s){}",
                rp.manifest.path.display(),
                rp.report,
                rp.configs.len(),
                if rp.missing.is_empty() {
                    String::new()
                } else {
                    format!(" (+{} declared missing)", rp.missing.len())
                },
                nodes,
                if rp.pulled_in { " [dependency]" } else { "" }
            )
            .map_err(Error::Output)?;
        }
        Ok(())
    })
}

/// `chimera plan`: the plan as a summary, JSON or dot, or one node's full key (`--explain`).
pub(super) fn plan(args: &PlanArgs) -> Result<(), Error> {
    let plan = plan::build(&args.files.manifests)?;
    tracing::info!(nodes = plan.graph.node_count(), "plan built");
    if let Some(prefix) = &args.explain {
        let ni = plan.find(prefix)?;
        return with_stdout(|out| {
            out.write_all(plan::render::explain(&plan, ni).as_bytes())
                .map_err(Error::Output)
        });
    }
    with_stdout(|mut out| {
        match args.format {
            PlanFormat::Text => out.write_all(plan::render::summary(&plan).as_bytes()),
            PlanFormat::Json => plan::render::json(&plan, &mut out),
            PlanFormat::Dot => plan::render::dot(&plan, &mut out),
        }
        .map_err(Error::Output)
    })
}

/// `chimera schema`: the manifest JSON Schema, or the agent record line's.
pub(super) fn schema(agent_record: bool) -> Result<(), Error> {
    let json = match agent_record {
        false => manifest::schema_json(),
        true => {
            let schema = crate::workload::protocol::record_schema();
            serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
        }
    };
    with_stdout(|out| out.write_all(json.as_bytes()).map_err(Error::Output))
}
