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
