//! Serving loads (`load` workloads): per series (one agent of one block, scenario, model,
//! lengths and server settings, swept over its level) and per level, the serving metrics
//! of `docs/serving-metrics.md` over each run with their means and Student-t 95 % CIs over
//! the runs (repetitions), the energy per output token where telemetry measured one, and
//! the SLO frontier against the report's `slos`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::dataset::Dataset;
use super::select::Pool;
use crate::load::sweep::{LevelResult, Mean, level_result, mean_of};
use crate::load::{Frontier, Level, Sample, Slo, SloMetric, frontier};
use crate::manifest::{SloMetricName, SloSpec, Task};
use crate::plan::{Configuration, Plan};
use crate::record::CellKind;

/// One level of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingLevel {
    /// Configuration id.
    pub config: String,
    /// The target prompt and output lengths (tokens) of the configuration (each request's
    /// own may be drawn around them).
    pub asked: (Option<u32>, Option<u32>),
    /// The result over the level's runs.
    pub result: LevelResult,
    /// GPU energy per output token, J (runs whose telemetry measured energy; `None` without
    /// a GPU).
    pub energy_j_per_token: Option<Mean>,
}

/// One agent's load swept over its level, everything else fixed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingSeries {
    /// What is fixed, in words (block, scenario, agent and endpoint, model, lengths, server
    /// settings).
    pub label: String,
    /// Endpoint id of the agent.
    pub endpoint: String,
    /// What served it (`provenance.server_kind`: `emulator`, `openai`, `ollama`).
    pub server_kind: Option<String>,
    /// `users` (closed loop) or `requests per second` (open loop).
    pub unit: String,
    /// Its levels, ascending.
    pub levels: Vec<ServingLevel>,
    /// The SLO frontier (no SLOs: every level unsure, none meeting).
    pub frontier: Frontier,
}

/// The serving section of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Serving {
    /// The report's SLOs.
    pub slos: Vec<Slo>,
    /// Every series.
    pub series: Vec<ServingSeries>,
}

/// An SLO of the manifest as the load module states it.
pub fn slo(s: &SloSpec) -> Slo {
    Slo {
        metric: match s.metric {
            SloMetricName::TtftMs => SloMetric::TtftMs,
            SloMetricName::TpotMs => SloMetric::TpotMs,
            SloMetricName::ItlMs => SloMetric::ItlMs,
            SloMetricName::E2eMs => SloMetric::E2eMs,
        },
        max_ms: s.max_ms,
        percentile: s.percentile,
    }
}

/// What identifies a series: its block, the configuration's content address with the level
/// left out (everything that is measured but the level: workload, model, scenario, agents and
/// their options, runtime, language, lengths, server settings, replicate), the agent, the loop.
type SeriesKey = (usize, [u8; 32], String, bool);

/// The content address of `c` without its level.
fn series_digest(spec: &crate::manifest::ManifestSpec, c: &Configuration) -> [u8; 32] {
    let mut flat = c.clone();
    flat.load.concurrency = None;
    flat.load.rate = None;
    let workload = crate::plan::key::hex32(
        &crate::plan::key::WorkloadKey::of(&spec.workloads[c.workload]).digest(),
    );
    crate::plan::expand::config_key(spec, &flat, workload).digest()
}

/// What else a series fixes, in words: options, runtime, language (empty when nothing).
fn fixed_text(c: &Configuration, options: &crate::manifest::Options) -> String {
    let mut v = Vec::new();
    if !options.is_empty() {
        v.push(format!("options {}", super::select::options_text(options)));
    }
    if let Some(r) = c.runtime {
        v.push(format!("runtime {r}"));
    }
    if let Some(l) = c.language {
        v.push(format!("language {l}"));
    }
    if c.replicate > 0 {
        v.push(format!("replicate {}", c.replicate));
    }
    v.iter().map(|x| format!(", {x}")).collect()
}

/// One level in the making.
struct Pending {
    level: f64,
    config: String,
    asked: (Option<u32>, Option<u32>),
    /// Each run's requests of the agent.
    runs: Vec<Vec<Sample>>,
    /// Each run's J per output token (runs with GPU energy).
    joules: Vec<f64>,
}

/// A series in the making: its label, endpoint and levels.
type Building = (String, String, Vec<Pending>);

/// The serving section of report `idx` of `plan` from its runs in `pool` (`None` when the
/// report has no load workload); `ds` gives the endpoints' provenance.
pub fn serving(plan: &Plan, ds: &Dataset, pool: &Pool<'_>, idx: usize) -> Option<Serving> {
    let rp = &plan.reports[idx];
    let spec = &rp.manifest.spec;
    let slos: Vec<Slo> = spec.slos.iter().map(slo).collect();
    let mut series: BTreeMap<SeriesKey, Building> = BTreeMap::new();
    let mut first: BTreeMap<SeriesKey, usize> = BTreeMap::new();
    for c in &plan.configs[rp.configs.clone()] {
        if !matches!(spec.workloads[c.workload].task, Task::Load(_)) {
            continue;
        }
        let (closed, level) = match (c.load.concurrency, c.load.rate) {
            (Some(u), _) => (true, f64::from(u)),
            (None, Some(r)) => (false, r),
            (None, None) => continue,
        };
        let digest = series_digest(spec, c);
        let runs: Vec<_> = pool
            .runs
            .iter()
            .filter(|r| r.config_id.as_deref() == Some(&*c.id) && r.kind != CellKind::Isolated)
            .collect();
        for a in &c.agents {
            let endpoint = spec.endpoints[a.endpoint].id.clone();
            let lengths = format!(
                "input {} tokens, output {} tokens",
                c.load
                    .input_tokens
                    .map_or("as prompted".into(), |n| n.to_string()),
                c.load
                    .output_tokens
                    .map_or("as the model stops".into(), |n| n.to_string())
            );
            let server = c.server.to_string();
            let block = plan
                .block_name(c)
                .map_or_else(|| format!("block {}", c.block + 1), str::to_owned);
            let label = format!(
                "{block} ({} loop) · {}: agent {} on `{endpoint}`, model {}, {lengths}{}{}",
                if closed { "closed" } else { "open" },
                c.scenario,
                a.id,
                c.model,
                if server.is_empty() {
                    String::new()
                } else {
                    format!(", server {server}")
                },
                fixed_text(c, &a.options)
            );
            let key = (c.block, digest, a.id.to_string(), closed);
            let n = first.len();
            first.entry(key.clone()).or_insert(n);
            let entry = series
                .entry(key)
                .or_insert_with(|| (label, endpoint, Vec::new()));
            let mut samples = Vec::new();
            let mut joules = Vec::new();
            for r in &runs {
                let mine: Vec<Sample> = pool
                    .requests
                    .get(r.cell_id.as_str())
                    .into_iter()
                    .flatten()
                    .flat_map(|t| {
                        let code = t.agent_code(&a.id);
                        t.load
                            .iter()
                            .filter(move |(x, _)| Some(*x) == code)
                            .map(|(_, s)| s.clone())
                    })
                    .collect();
                samples.push(mine);
                if let Some(per_j) = r.output_tokens_per_j.filter(|x| *x > 0.0) {
                    joules.push(1.0 / per_j);
                }
            }
            entry.2.push(Pending {
                level,
                config: c.id.to_string(),
                asked: (c.load.input_tokens, c.load.output_tokens),
                runs: samples,
                joules,
            });
        }
    }
    if series.is_empty() {
        return None;
    }
    // In the order the plan first names them (not the order of their digests).
    let mut series: Vec<(SeriesKey, Building)> = series.into_iter().collect();
    series.sort_by_key(|(k, _)| first.get(k).copied().unwrap_or(usize::MAX));
    let kind_of = |endpoint: &str| {
        ds.provenance
            .iter()
            .find(|p| p.endpoint == endpoint)
            .map(|p| p.server_kind.clone())
    };
    let series = series
        .into_iter()
        .map(|((.., closed), (label, endpoint, mut levels))| {
            levels.sort_by(|a, b| a.level.total_cmp(&b.level));
            let for_frontier: Vec<Level<'_>> = levels
                .iter()
                .map(|p| Level {
                    level: p.level,
                    runs: p.runs.iter().map(Vec::as_slice).collect(),
                })
                .collect();
            let frontier = frontier(&for_frontier, &slos);
            ServingSeries {
                server_kind: kind_of(&endpoint),
                label,
                endpoint,
                unit: if closed {
                    "users"
                } else {
                    "requests per second"
                }
                .to_owned(),
                levels: levels
                    .iter()
                    .map(|p| ServingLevel {
                        config: p.config.clone(),
                        asked: p.asked,
                        result: level_result(p.level, &p.runs, &slos),
                        energy_j_per_token: mean_of(&p.joules),
                    })
                    .collect(),
                frontier,
            }
        })
        .collect();
    Some(Serving { slos, series })
}
