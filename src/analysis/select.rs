//! Which rows a grouping selects, and the value of a metric on them.
//!
//! Levels: a *run* is a measured cell (single or concurrent, status ok); an *agent* is one
//! agent's row of a run; a *request* is one non-warm-up LLM call of a run. Metrics have a
//! natural level (efficiency is per run, throughput per request, duration per agent); a
//! statistic over a coarser level first averages the finer values per unit. The
//! improvement metrics (§1.6 of the specification) compare the pooled means of the chimera
//! and baseline agents of one configuration, exactly as the original harnesses did, so
//! their natural level is the configuration.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::dataset::{CellRequests, Dataset, ReqRef};
use crate::manifest::{Filter, Level, Metric, Options, Role};
use crate::record::CellAxes;
use crate::stats;
use crate::table::{AgentsRow as AgentRow, CellsRow as CellRow};

/// A configuration as the analysis sees it (from the re-planned manifests).
#[derive(Debug, Clone)]
pub struct Cfg {
    /// Report id.
    pub report: String,
    /// Configuration id.
    pub id: String,
    /// Scenario id.
    pub scenario: String,
    /// Scenario kind.
    pub scenario_kind: String,
    /// Model id.
    pub model_id: String,
    /// Model tag.
    pub model_tag: String,
    /// Runtime, language, block name and harness, from the planned configuration.
    pub axes: CellAxes,
    /// Agents in scenario order: (id, role, options in words).
    pub agents: Vec<(String, String, String)>,
    /// Multi-agent (concurrent) configuration.
    pub multi: bool,
    /// Position in the plan.
    pub order: usize,
}

/// The rows one report's analysis draws on.
pub struct Pool<'a> {
    /// Configurations by (report, id).
    pub cfgs: &'a HashMap<(String, String), Cfg>,
    /// Measured runs with status ok, in start order.
    pub runs: Vec<&'a CellRow>,
    /// Agent rows by cell id.
    pub agents: Arc<HashMap<&'a str, Vec<&'a AgentRow>>>,
    /// Non-warm-up request rows by cell id (columnar, see [`CellRequests`]).
    pub requests: Arc<HashMap<&'a str, Vec<&'a CellRequests>>>,
    /// The configuration of each run, by cell id (looked up once).
    cfg_of: Arc<HashMap<&'a str, &'a Cfg>>,
    /// `runs` by configuration id, so a configuration's runs are found without a scan.
    by_config: HashMap<&'a str, Vec<&'a CellRow>>,
}

impl<'a> Pool<'a> {
    /// The pool of `reports` (a report and those it depends on) within `ds`.
    pub fn new(
        ds: &'a Dataset,
        cfgs: &'a HashMap<(String, String), Cfg>,
        reports: &[String],
    ) -> Pool<'a> {
        let runs: Vec<&CellRow> = ds
            .cells
            .iter()
            .filter(|c| c.is_run() && c.ok() && reports.contains(&c.report))
            .collect();
        let ids: std::collections::HashSet<&str> =
            runs.iter().map(|c| c.cell_id.as_str()).collect();
        let mut agents: HashMap<&str, Vec<&AgentRow>> = HashMap::new();
        for a in &ds.agents {
            if ids.contains(a.cell_id.as_str()) {
                agents.entry(a.cell_id.as_str()).or_default().push(a);
            }
        }
        let mut requests: HashMap<&str, Vec<&CellRequests>> = HashMap::new();
        for r in &ds.requests {
            if ids.contains(r.cell_id.as_str()) {
                requests.entry(r.cell_id.as_str()).or_default().push(r);
            }
        }
        let cfg_of = runs
            .iter()
            .filter_map(|c| {
                let cfg = cfgs.get(&(c.report.clone(), c.config_id.clone().unwrap_or_default()))?;
                Some((c.cell_id.as_str(), cfg))
            })
            .collect();
        Pool {
            cfgs,
            runs: Vec::new(),
            agents: Arc::new(agents),
            requests: Arc::new(requests),
            cfg_of: Arc::new(cfg_of),
            by_config: HashMap::new(),
        }
        .subset(runs)
    }

    /// The same pool restricted to `runs` (a subset of its runs); the row indexes are shared.
    pub fn subset(&self, runs: Vec<&'a CellRow>) -> Pool<'a> {
        let mut by_config: HashMap<&str, Vec<&CellRow>> = HashMap::new();
        for c in &runs {
            if let Some(id) = c.config_id.as_deref() {
                by_config.entry(id).or_default().push(c);
            }
        }
        Pool {
            cfgs: self.cfgs,
            runs,
            agents: self.agents.clone(),
            requests: self.requests.clone(),
            cfg_of: self.cfg_of.clone(),
            by_config,
        }
    }

    /// The configuration of a cell.
    pub fn cfg(&self, c: &CellRow) -> Option<&'a Cfg> {
        self.cfg_of.get(c.cell_id.as_str()).copied()
    }

    /// Runs whose configuration matches the run-level keys of `f`.
    pub fn runs_where(&self, f: &Filter) -> Vec<&'a CellRow> {
        let candidates: &[&CellRow] = match &f.config {
            Some(id) => self.by_config.get(id.as_str()).map_or(&[], Vec::as_slice),
            None => &self.runs,
        };
        candidates
            .iter()
            .copied()
            .filter(|c| self.cfg(c).is_some_and(|cfg| cfg_matches(cfg, f)))
            .collect()
    }

    fn agents_of(&self, cell: &str, f: &Filter, cfg: &Cfg) -> Vec<&'a AgentRow> {
        self.agents
            .get(cell)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|a| agent_matches(a, f, cfg))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The non-warm-up requests of `agent` in `cell` (of `f`'s stage, if it names one), in
    /// file order.
    fn requests_of(&self, cell: &str, agent: &str, f: &Filter) -> Vec<ReqRef<'a>> {
        let mut out = Vec::new();
        for t in self.requests.get(cell).map_or(&[][..], Vec::as_slice) {
            out.extend(selected_rows(t, agent, f).map(|i| t.row(i)));
        }
        out
    }
}

/// The indexes of the rows of `t` that are `agent`'s, of a stage `f` admits (none when the
/// agent has no row in `t`).
fn selected_rows<'t>(
    t: &'t CellRequests,
    agent: &str,
    f: &Filter,
) -> impl Iterator<Item = usize> + 't {
    let code = t.agent_code(agent);
    // The stages `f` admits, as codes of this cell's stages.
    let stage_ok: Vec<bool> = t
        .stages
        .iter()
        .map(|st| f.stage.as_ref().is_none_or(|s| s == st.name()))
        .collect();
    (0..if code.is_some() { t.len() } else { 0 })
        .filter(move |&i| Some(t.agent[i]) == code && stage_ok[t.stage[i] as usize])
}

impl Pool<'_> {
    /// The values of `metric` over the requests [`Pool::requests_of`] selects, read straight
    /// from the columns, and whether any request was selected.
    fn request_values(
        &self,
        cell: &str,
        agent: &str,
        f: &Filter,
        metric: Metric,
    ) -> (bool, Vec<f64>) {
        let mut any = false;
        let mut out = Vec::new();
        for t in self.requests.get(cell).map_or(&[][..], Vec::as_slice) {
            let column = match metric {
                Metric::ThroughputTokS => &t.throughput_tok_s,
                Metric::TtftMs => &t.ttft_ms,
                Metric::PublishedTtftMs => &t.published_ttft_ms,
                Metric::LoadMs => &t.load_ms,
                Metric::OutputTokens => &t.output_tokens,
                _ => {
                    any |= selected_rows(t, agent, f).next().is_some();
                    continue;
                }
            };
            for i in selected_rows(t, agent, f) {
                any = true;
                let x = column[i];
                if !x.is_nan() {
                    out.push(x);
                }
            }
        }
        (any, out)
    }
}

fn cfg_matches(cfg: &Cfg, f: &Filter) -> bool {
    let eq = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w == have);
    let eq_opt = |want: Option<String>, have: &Option<String>| {
        want.is_none_or(|w| have.as_deref() == Some(w.as_str()))
    };
    eq(&f.config, &cfg.id)
        && eq(&f.scenario, &cfg.scenario)
        && f.model
            .as_ref()
            .is_none_or(|m| *m == cfg.model_id || *m == cfg.model_tag)
        && eq_opt(f.runtime.map(|r| r.to_string()), &cfg.axes.runtime)
        && eq_opt(f.language.map(|l| l.to_string()), &cfg.axes.language)
        && eq_opt(f.block.clone(), &cfg.axes.block)
}

fn agent_matches(a: &AgentRow, f: &Filter, _cfg: &Cfg) -> bool {
    f.agent.as_ref().is_none_or(|w| *w == a.agent) && f.role.is_none_or(|r| r == a.role)
}

/// A metric's natural level.
pub fn natural_level(m: Metric) -> Level {
    use Metric::*;
    match m {
        ThroughputTokS | TtftMs | PublishedTtftMs | LoadMs | OutputTokens => Level::Request,
        AgentDurationS | FilesIngested | ReportQualityScore | ProcessCpuMs | ProcessPeakRssMib => {
            Level::Agent
        }
        ThroughputImprovementPct | TtftReductionPct | SuccessRatePct => Level::Config,
        _ => Level::Run,
    }
}

/// True for metrics whose values are flags (count and share count the flagged ones).
pub fn is_flag(m: Metric) -> bool {
    matches!(m, Metric::Contention | Metric::SuccessRatePct)
}

/// The values of `metric` at `level` over the rows matching `f`, plus a note when they
/// had to come from a coarser level than asked (imported aggregates without per-call rows).
pub fn values(
    pool: &Pool<'_>,
    metric: Metric,
    level: Level,
    f: &Filter,
) -> (Vec<f64>, Option<String>) {
    let runs = pool.runs_where(f);
    let natural = natural_level(metric);
    if natural == Level::Config || level == Level::Config {
        return (per_config(pool, &runs, metric, f), None);
    }
    match natural {
        Level::Run => (
            runs.iter()
                .filter_map(|c| run_value(pool, c, metric, f))
                .collect(),
            None,
        ),
        Level::Agent => (agent_values(pool, &runs, metric, f), None),
        Level::Request => {
            let want = if level == Level::Run || level == Level::Agent {
                level
            } else {
                Level::Request
            };
            let mut out = Vec::new();
            let mut from_agents = 0usize;
            for c in &runs {
                let Some(cfg) = pool.cfg(c) else { continue };
                let mut per_run = Vec::new();
                for a in pool.agents_of(&c.cell_id, f, cfg) {
                    let (any, rv) = pool.request_values(&c.cell_id, &a.agent, f, metric);
                    if rv.is_empty() && !any && f.stage.is_none() {
                        // No per-request rows: the source recorded only the agent's aggregate.
                        if let Some(v) = agent_value(a, metric) {
                            from_agents += 1;
                            match want {
                                Level::Run => per_run.push(v),
                                _ => out.push(v),
                            }
                        }
                        continue;
                    }
                    match want {
                        Level::Request => out.extend(rv),
                        Level::Agent => {
                            if let Some(m) = agg(&rv, metric) {
                                out.push(m);
                            }
                        }
                        _ => per_run.extend(rv),
                    }
                }
                if want == Level::Run
                    && let Some(m) = agg(&per_run, metric)
                {
                    out.push(m);
                }
            }
            let note = (from_agents > 0).then(|| {
                format!(
                    "{from_agents} agent run(s) have no per-request rows (the source recorded only \
                     per-agent means); their means stand in for their requests"
                )
            });
            (out, note)
        }
        Level::Config => unreachable!("handled above"),
    }
}

/// How values of one unit combine: sums for token counts, means otherwise.
fn agg(xs: &[f64], metric: Metric) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    match metric {
        Metric::OutputTokens => Some(stats::sum(xs)),
        _ => stats::mean(xs),
    }
}

fn agent_value(a: &AgentRow, m: Metric) -> Option<f64> {
    let finite = |x: f64| x.is_finite().then_some(x);
    match m {
        Metric::ThroughputTokS => a.aggregate.throughput_mean_tok_s,
        Metric::TtftMs => a.aggregate.ttft_mean_ms,
        Metric::PublishedTtftMs => a.aggregate.published_ttft_mean_ms,
        Metric::LoadMs => finite(a.aggregate.load_sum_ms),
        Metric::OutputTokens => Some(a.aggregate.output_tokens as f64),
        Metric::AgentDurationS => finite(a.duration_ms / 1000.0),
        Metric::FilesIngested => a.files_ingested.map(|f| f as f64),
        Metric::ProcessCpuMs => match (a.process.process_user_cpu_ms, a.process.process_sys_cpu_ms)
        {
            (Some(u), Some(s)) => finite(u + s),
            _ => None,
        },
        Metric::ProcessPeakRssMib => a.process.process_peak_rss_mib,
        _ => None,
    }
}

fn agent_values(pool: &Pool<'_>, runs: &[&CellRow], m: Metric, f: &Filter) -> Vec<f64> {
    let mut out = Vec::new();
    for c in runs {
        let Some(cfg) = pool.cfg(c) else { continue };
        for a in pool.agents_of(&c.cell_id, f, cfg) {
            if let Some(v) = agent_value(a, m) {
                out.push(v);
            }
        }
    }
    out
}

/// The agents of a run in scenario order (A before B; baseline before chimera).
fn ordered_agents<'a>(pool: &Pool<'a>, c: &CellRow, cfg: &Cfg) -> Vec<&'a AgentRow> {
    let mut v: Vec<&AgentRow> = pool
        .agents
        .get(c.cell_id.as_str())
        .cloned()
        .unwrap_or_default();
    v.sort_by_key(|a| {
        cfg.agents
            .iter()
            .position(|(id, _, _)| *id == a.agent)
            .unwrap_or(usize::MAX)
    });
    v
}

/// Mean throughput and published TTFT (as the harness defined it: what the published deltas
/// and reductions compare) of one agent over its requests (or its aggregate).
fn agent_means(pool: &Pool<'_>, c: &CellRow, a: &AgentRow) -> (Option<f64>, Option<f64>) {
    let reqs = pool.requests_of(&c.cell_id, &a.agent, &Filter::default());
    if reqs.is_empty() {
        return (
            a.aggregate.throughput_mean_tok_s,
            a.aggregate.published_ttft_mean_ms,
        );
    }
    let t: Vec<f64> = reqs.iter().filter_map(|r| r.throughput_tok_s()).collect();
    let f: Vec<f64> = reqs.iter().filter_map(|r| r.published_ttft_ms()).collect();
    (stats::mean(&t), stats::mean(&f))
}

fn run_value(pool: &Pool<'_>, c: &CellRow, m: Metric, _f: &Filter) -> Option<f64> {
    let cfg = pool.cfg(c)?;
    let pair = || {
        let ag = ordered_agents(pool, c, cfg);
        if ag.len() < 2 {
            return None;
        }
        Some((agent_means(pool, c, ag[0]), agent_means(pool, c, ag[1])))
    };
    let by_role = || {
        let ag = pool.agents.get(c.cell_id.as_str())?;
        let b = ag.iter().find(|a| a.role == Role::Baseline)?;
        let ch = ag.iter().find(|a| a.role == Role::Chimera)?;
        Some((agent_means(pool, c, b), agent_means(pool, c, ch)))
    };
    match m {
        Metric::PublishedEfficiencyPct => c.published_efficiency_pct,
        Metric::PublishedSpeedup => c.published_speedup,
        Metric::TrueEfficiencyPct => c.true_efficiency_pct,
        Metric::TrueSpeedup => c.true_speedup,
        Metric::EqualWorkEfficiencyPct => c.equal_work_efficiency_pct,
        Metric::EqualWorkSpeedup => c.equal_work_speedup,
        Metric::ThroughputEfficiencyPct => c.throughput_efficiency_pct,
        Metric::Contention => c.contention.map(|b| if b { 1.0 } else { 0.0 }),
        Metric::WallS => c.wall_ms.is_finite().then_some(c.wall_ms / 1000.0),
        // Baseline-vs-chimera agents of one run (single-agent reports): chimera − baseline
        // throughput and baseline − chimera TTFT (tr-spec §1.6), whatever order they ran in.
        Metric::ThroughputDeltaTokS => match by_role() {
            Some(((tb, _), (tc, _))) => Some(tc? - tb?),
            None => c.throughput_delta_tok_s.or_else(|| {
                let ((ta, _), (tb, _)) = pair()?;
                Some(tb? - ta?)
            }),
        },
        Metric::TtftDeltaMs => match by_role() {
            Some(((_, fb), (_, fc))) => Some(fb? - fc?),
            None => c.ttft_delta_ms.or_else(|| {
                let ((_, fa), (_, fb)) = pair()?;
                Some(fa? - fb?)
            }),
        },
        _ => None,
    }
}

/// Per-configuration values: the metric's per-config mean, or for the improvement metrics the
/// comparison of the pooled agent means of the configuration (tr-spec §1.6).
fn per_config(pool: &Pool<'_>, runs: &[&CellRow], m: Metric, f: &Filter) -> Vec<f64> {
    let mut by_cfg: BTreeMap<usize, Vec<&CellRow>> = BTreeMap::new();
    for c in runs {
        if let Some(cfg) = pool.cfg(c) {
            by_cfg.entry(cfg.order).or_default().push(c);
        }
    }
    let mut out = Vec::new();
    for group in by_cfg.values() {
        let v = match m {
            Metric::ThroughputImprovementPct
            | Metric::TtftReductionPct
            | Metric::SuccessRatePct => improvement(pool, group, m),
            _ => {
                let natural = natural_level(m);
                let level = if natural == Level::Config {
                    Level::Run
                } else {
                    natural
                };
                let sub = pool.subset(group.clone());
                let (vals, _) = values(
                    &sub,
                    m,
                    level,
                    &Filter {
                        config: None,
                        ..f.clone()
                    },
                );
                agg(&vals, m)
            }
        };
        if let Some(v) = v {
            out.push(v);
        }
    }
    out
}

/// The baseline and chimera agents' pooled means over a configuration's runs, compared.
fn improvement(pool: &Pool<'_>, runs: &[&CellRow], m: Metric) -> Option<f64> {
    let cfg = pool.cfg(runs.first()?)?;
    let role_of = |want: &str| -> Option<String> {
        cfg.agents
            .iter()
            .find(|(id, role, _)| role == want || id == want)
            .map(|(id, _, _)| id.clone())
    };
    let base = role_of("baseline").or_else(|| cfg.agents.first().map(|a| a.0.clone()))?;
    let chim = role_of("chimera").or_else(|| cfg.agents.get(1).map(|a| a.0.clone()))?;
    let pooled = |agent: &str, tput: bool| -> Option<f64> {
        let mut vals = Vec::new();
        for c in runs {
            let reqs = pool.requests_of(&c.cell_id, agent, &Filter::default());
            if reqs.is_empty() {
                let a = pool
                    .agents
                    .get(c.cell_id.as_str())?
                    .iter()
                    .find(|a| a.agent == agent)?;
                vals.extend(if tput {
                    a.aggregate.throughput_mean_tok_s
                } else {
                    a.aggregate.published_ttft_mean_ms
                });
            } else {
                vals.extend(reqs.iter().filter_map(|r| {
                    if tput {
                        r.throughput_tok_s()
                    } else {
                        r.published_ttft_ms()
                    }
                }));
            }
        }
        stats::mean(&vals)
    };
    match m {
        Metric::ThroughputImprovementPct => {
            crate::metrics::throughput_improvement_pct(pooled(&base, true)?, pooled(&chim, true)?)
        }
        Metric::TtftReductionPct => {
            crate::metrics::ttft_reduction_pct(pooled(&base, false)?, pooled(&chim, false)?)
        }
        Metric::SuccessRatePct => {
            let imp = crate::metrics::throughput_improvement_pct(
                pooled(&base, true)?,
                pooled(&chim, true)?,
            )?;
            Some(if imp > 0.0 { 100.0 } else { 0.0 })
        }
        _ => None,
    }
}

/// Options in words: `num_gpu=60 num_ctx=512 temperature=0.8`, or `defaults`.
pub fn options_text(o: &Options) -> String {
    let mut v = Vec::new();
    let mut push = |k: &str, x: Option<String>| {
        if let Some(x) = x {
            v.push(format!("{k}={x}"));
        }
    };
    push("num_gpu", o.num_gpu.map(|x| x.to_string()));
    push("num_ctx", o.num_ctx.map(|x| x.to_string()));
    push("temperature", o.temperature.map(|x| x.to_string()));
    push("top_p", o.top_p.map(|x| x.to_string()));
    push("top_k", o.top_k.map(|x| x.to_string()));
    push("repeat_penalty", o.repeat_penalty.map(|x| x.to_string()));
    push("num_predict", o.num_predict.map(|x| x.to_string()));
    push("seed", o.seed.map(|x| x.to_string()));
    if v.is_empty() {
        "defaults".into()
    } else {
        v.join(" ")
    }
}
