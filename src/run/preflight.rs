//! Checks before the first cell: every endpoint answers, and has every model the plan uses
//! on it. A failure stops the run before anything is measured, with what to do.

use std::collections::HashSet;

use super::Runner;
use super::error::CampaignError;
use crate::backend::ModelPresence;
use crate::plan::Plan;

/// `host:port` of an `http://` URL, for advice such as `OLLAMA_HOST=… ollama serve`.
fn host_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// Health check: a dead server fails fast, before any cell, with what to do.
pub(crate) async fn check_endpoints(plan: &Plan, runner: &Runner) -> Result<(), CampaignError> {
    let mut checked: HashSet<String> = HashSet::new();
    for rp in &plan.reports {
        for e in &rp.manifest.spec.endpoints {
            if !checked.insert(e.url.clone()) {
                continue;
            }
            if let Some(client) = runner.client(&e.url)
                && let Err(err) = client.version().await
            {
                return Err(CampaignError::Unreachable {
                    endpoint: e.id.clone(),
                    url: e.url.clone(),
                    host: host_of(&e.url),
                    message: format!("{}: {}", err.kind.name(), err.message),
                });
            }
        }
    }
    Ok(())
}

/// Every agent program a planned configuration runs exists and is executable: a missing
/// reference agent stops the run before the first cell instead of failing every cell.
pub(crate) fn check_programs(plan: &Plan) -> Result<(), CampaignError> {
    let mut checked: HashSet<(usize, usize, Option<crate::manifest::Language>)> = HashSet::new();
    for c in &plan.configs {
        let rp = &plan.reports[c.report];
        let w = &rp.manifest.spec.workloads[c.workload];
        let Some(cmd) = &w.command else { continue };
        if !checked.insert((c.report, c.workload, c.language)) {
            continue;
        }
        let Some(first) = cmd.argv_for(c.language).first() else {
            continue;
        };
        let dir = rp
            .manifest
            .path
            .parent()
            .unwrap_or(std::path::Path::new("."));
        let dir = super::command::absolute(dir);
        // Only `{manifest_dir}` can be known before a cell: a program named by another
        // placeholder is checked when it starts.
        let Ok(program) = crate::manifest::template::fill_braces(first, |n| {
            (n == "manifest_dir").then(|| dir.display().to_string())
        }) else {
            continue;
        };
        let problem = match find_program(&program) {
            Ok(()) => continue,
            Err(p) => p,
        };
        let reference =
            program.contains("target/release/chimera-agent") || program.contains("agents/python");
        return Err(CampaignError::AgentProgramMissing {
            workload: w.id.clone(),
            manifest: rp.manifest.path.display().to_string(),
            program,
            problem,
            help: if reference {
                "build the reference agents with `make agents` (the Rust agent and the Python agent's virtual environment)".into()
            } else {
                "install it, or fix the workload's `command.argv` (a program beside the manifest: `{manifest_dir}/...`)".into()
            },
        });
    }
    Ok(())
}

/// `Ok` when `program` (a path with a `/`, or a name looked up in `PATH`) is an executable
/// file; else what is wrong.
fn find_program(program: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = std::path::Path::new(program);
        return match p.metadata() {
            Err(_) => Err("does not exist".into()),
            Ok(_) if !executable(p) => Err("is not an executable file".into()),
            Ok(_) => Ok(()),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|d| executable(&d.join(program))) {
        Ok(())
    } else {
        Err("is not in PATH".into())
    }
}

/// Every model a configuration uses must be on the endpoints its agents talk to.
pub(crate) async fn check_models(plan: &Plan, runner: &Runner) -> Result<(), CampaignError> {
    let mut needed: Vec<(String, String, String)> = Vec::new();
    for c in &plan.configs {
        let spec = &plan.reports[c.report].manifest.spec;
        let Some(tag) = spec
            .models
            .iter()
            .find(|m| *m.id == *c.model)
            .map(|m| m.tag.clone())
        else {
            continue;
        };
        for a in &c.agents {
            if let Some(e) = spec.endpoints.get(a.endpoint) {
                let k = (e.id.clone(), e.url.clone(), tag.clone());
                if !needed.contains(&k) {
                    needed.push(k);
                }
            }
        }
    }
    for (endpoint, url, model) in needed {
        let Some(client) = runner.client(&url) else {
            continue;
        };
        match client.model_presence(&model).await {
            Ok(ModelPresence::Missing) => {
                return Err(CampaignError::ModelMissing {
                    endpoint,
                    host: host_of(&url),
                    url,
                    model,
                });
            }
            // llama-server answers any `model` with the one it was started with: say so once.
            Ok(ModelPresence::NotListed { served }) => tracing::warn!(
                "endpoint `{endpoint}` ({url}) lists {} but not `{model}`; an OpenAI-compatible server serves the model it was started with, whatever a request names: check that it is the one you mean",
                served.join(", ")
            ),
            _ => {}
        }
    }
    Ok(())
}
