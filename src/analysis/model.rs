//! The analysis stage's output: what `chimera analyze` writes and `chimera report` renders.
//!
//! Every number here is computed from a campaign's tables; nothing is typed in. The types are
//! plain data (serde), so the report stage and the JSON summary share one shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::manifest::Level;

/// Where a campaign's numbers come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// Measured by chimera against real servers (`server_kinds`: ollama, openai).
    Measured {
        /// Server kinds seen in the provenance table.
        server_kinds: Vec<String>,
    },
    /// Measured against `chimera emulate`: a test instrument, never an LLM.
    Emulator,
    /// Imported from another harness's raw results (`chimera import`), not measured by chimera.
    Imported {
        /// Importer format (`chimeraforge`).
        format: String,
        /// Directory the raw files were read from.
        source: String,
        /// Layout recognised.
        layout: String,
        /// Raw files read.
        files: u64,
        /// Runs imported.
        runs: u64,
        /// Raw files that could not be read and were skipped (paths below the source).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped: Vec<String>,
    },
}

impl Origin {
    /// True for imported data.
    pub fn is_imported(&self) -> bool {
        matches!(self, Origin::Imported { .. })
    }
}

/// The analysis of one campaign.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Analysis {
    /// Campaign name.
    pub campaign: String,
    /// chimera version that analysed it.
    pub chimera_version: String,
    /// Where the numbers come from.
    pub origin: Origin,
    /// One entry per report in the campaign, in plan order.
    pub reports: Vec<ReportAnalysis>,
}

/// One endpoint's provenance (from `provenance.parquet`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointProvenance {
    /// Endpoint id.
    pub endpoint: String,
    /// URL.
    pub url: String,
    /// Server kind (`ollama`, `openai`, `emulator`).
    pub server_kind: String,
    /// Server version.
    pub server_version: Option<String>,
    /// Model tag.
    pub model_tag: Option<String>,
    /// Model digest.
    pub model_digest: Option<String>,
    /// GPU name.
    pub gpu_name: Option<String>,
    /// GPU driver.
    pub driver: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// OS.
    pub os: Option<String>,
    /// chimera version that measured.
    pub chimera_version: String,
}

/// How the experiment ran (from the manifest and the plan).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Method {
    /// Harness name(s) of the workloads (e.g. `H6v2`).
    pub harnesses: Vec<String>,
    /// Scenarios: id, kind and agents (`A→ollama_11434`).
    pub scenarios: Vec<ScenarioInfo>,
    /// Model tags.
    pub models: Vec<String>,
    /// Configurations planned.
    pub configurations: usize,
    /// Repetitions per configuration (most common value).
    pub repetitions: u32,
    /// Measured cells planned (single + concurrent).
    pub planned_runs: usize,
    /// Isolated baseline cells planned.
    pub planned_isolated: usize,
    /// Warm-up policy in words.
    pub warmup: String,
    /// Order policy in words.
    pub order: String,
    /// Configurations the manifest declares missing from the original data.
    pub missing: Vec<String>,
    /// Where the report's cells come from: measured by this campaign or adopted from the
    /// shared cache (None for imported data, which no campaign measured).
    #[serde(default)]
    pub cells: Option<CellSources>,
}

/// How many of a report's cells this campaign measured and how many it adopted from the shared
/// cache, which a campaign run consults before measuring a cell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CellSources {
    /// Cells in the data (every kind: runs, isolated baselines, warm-ups) measured by this
    /// campaign.
    pub measured: usize,
    /// Cells adopted from the shared cache: measured earlier, by the campaign(s) below.
    pub adopted: usize,
    /// The adopted cells by the campaign that measured them, in order of campaign name.
    pub adopted_from: Vec<AdoptedFrom>,
}

/// The adopted cells that one campaign measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdoptedFrom {
    /// The campaign that measured them (its name as it wrote their rows; an earlier campaign
    /// of this same name, since deleted, keeps its name).
    pub campaign: String,
    /// Cells adopted from it.
    pub cells: usize,
    /// When the first of them started, ms since the Unix epoch (UTC).
    pub first_started_unix_ms: i64,
    /// When the last of them started, ms since the Unix epoch (UTC).
    pub last_started_unix_ms: i64,
}

/// One scenario of a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Scenario id.
    pub id: String,
    /// Scenario kind (`baseline_vs_chimera`, `single`...).
    pub kind: String,
    /// Agents as `id (role) → endpoint`.
    pub agents: Vec<String>,
}

/// What was found in the data.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Measured runs (single + concurrent cells) with status ok.
    pub runs_ok: usize,
    /// Measured runs that failed.
    pub runs_failed: usize,
    /// Isolated baseline cells with status ok.
    pub isolated_ok: usize,
    /// Agent runs (rows of `agents`, not isolated).
    pub agent_runs: usize,
    /// Requests (not warm-up) and failed requests among them.
    pub requests: usize,
    /// Failed requests.
    pub requests_failed: usize,
    /// Telemetry samples.
    pub telemetry_samples: usize,
    /// Planned runs with no committed cell.
    pub runs_missing: usize,
    /// Measured runs that are suspect (a self-check failed); not in `runs_ok` unless the
    /// suspect cells are included.
    #[serde(default)]
    pub runs_suspect: usize,
}

/// Descriptive statistics of one metric over one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Report id.
    pub report: String,
    /// Grouping: `report`, `config`, `scenario`, `runtime`, `model`, `language`.
    pub grouping: String,
    /// The group's value (e.g. `test011`); the report id for `report`.
    pub group: String,
    /// Level the values are taken at: `run`, `agent`, `request`.
    pub level: Level,
    /// Metric name (as in the manifest's `metric`).
    pub metric: String,
    /// The statistics of the values (n, mean, SD, CV, median, p95, min, max, Student-t 95 %
    /// CI of the mean).
    #[serde(flatten)]
    pub stats: crate::stats::Describe,
}

/// The verdict on one published number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// The recomputed number agrees (within the CI, the stated tolerance, or the published
    /// rounding).
    Reproduced,
    /// The recomputed number disagrees.
    NotReproduced,
    /// The campaign holds no data for it.
    NotMeasured,
    /// The recomputed mean agrees within its 95 % CI, but the runs are too few to detect a
    /// 2 % difference at the observed variance (or one value gives no variance): the data
    /// cannot tell a reproduction from a difference.
    Inconclusive,
}

impl VerdictKind {
    /// Words for tables.
    pub fn label(self) -> &'static str {
        match self {
            VerdictKind::Reproduced => "reproduced",
            VerdictKind::NotReproduced => "not reproduced",
            VerdictKind::NotMeasured => "not measured",
            VerdictKind::Inconclusive => "too few runs to tell",
        }
    }
}

/// One reference value checked against the data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// Reference id.
    pub id: String,
    /// The claim in the report's words.
    pub claim: String,
    /// Metric.
    pub metric: String,
    /// Statistic (`mean`, `max`, `percentile 95`...).
    pub statistic: String,
    /// Level.
    pub over: String,
    /// The grouping as `key=value` pairs (empty: the whole report).
    pub filter: String,
    /// The published value.
    pub published: f64,
    /// Unit.
    pub unit: String,
    /// Where it was published.
    pub source: String,
    /// Recomputed from this campaign's data.
    pub recomputed: Option<f64>,
    /// Student-t 95 % CI of the recomputed mean (only for `mean`, n ≥ 2).
    pub ci95: Option<(f64, f64)>,
    /// Values the statistic was taken over.
    pub n: u64,
    /// recomputed − published.
    pub difference: Option<f64>,
    /// 95 % CI of the difference: the one-sample Student t-interval of the recomputed mean
    /// less the published value (only for `mean`, n ≥ 2).
    #[serde(default)]
    pub diff_ci95: Option<(f64, f64)>,
    /// The difference the power line is for: 2 % of the published value (absolute, in its
    /// unit); only for `mean`.
    #[serde(default)]
    pub detect: Option<f64>,
    /// Repetitions (values) needed to detect `detect` at the observed SD, α = 0.05 two-sided,
    /// power 0.8 (one-sample t iteration); only for `mean`, n ≥ 2.
    #[serde(default)]
    pub n_needed: Option<u64>,
    /// The absolute tolerance applied.
    pub tolerance: Option<f64>,
    /// What the tolerance is: `manifest`, `ci95`, `rounding`.
    pub tolerance_basis: Option<String>,
    /// The verdict.
    pub verdict: VerdictKind,
    /// The value recomputed from the original raw data, where the manifest records one.
    pub data_value: Option<f64>,
    /// The published number is contradicted by the report's own raw data: these are the
    /// original data (an import), the number is not reproduced, and the recomputed value is
    /// the manifest's `data_value`.
    #[serde(default)]
    pub contradicted_by_own_data: bool,
    /// The manifest's note on the number.
    pub note: Option<String>,
    /// One sentence on how the verdict was reached.
    pub explanation: String,
}

/// A two-sample comparison (Welch's t-test).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// Report the comparison belongs to.
    pub report: String,
    /// What is compared (e.g. `language`, `model`, `report`).
    pub by: String,
    /// Metric.
    pub metric: String,
    /// Level.
    pub level: Level,
    /// Group A label.
    pub a: String,
    /// Group B label.
    pub b: String,
    /// n of A.
    pub n_a: u64,
    /// Mean of A.
    pub mean_a: Option<f64>,
    /// SD of A.
    pub sd_a: Option<f64>,
    /// n of B.
    pub n_b: u64,
    /// Mean of B.
    pub mean_b: Option<f64>,
    /// SD of B.
    pub sd_b: Option<f64>,
    /// mean B − mean A.
    pub difference: Option<f64>,
    /// Welch's t statistic.
    pub t: Option<f64>,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: Option<f64>,
    /// Two-sided p-value.
    pub p_value: Option<f64>,
    /// 95 % CI of the difference (Welch).
    pub diff_ci95: Option<(f64, f64)>,
    /// Hedges' g (bias-corrected Cohen's d with the pooled SD).
    pub hedges_g: Option<f64>,
    /// The difference the power line is for: 2 % of |mean A|.
    #[serde(default)]
    pub detect: Option<f64>,
    /// Repetitions needed per group to detect `detect` at the observed SDs, α = 0.05
    /// two-sided, power 0.8 (two-sample t iteration).
    #[serde(default)]
    pub n_needed: Option<u64>,
    /// What the CI and the power line say: different, no difference found, too few runs.
    #[serde(default)]
    pub reading: Option<crate::stats::effect::Reading>,
}

/// A difference with its 95 % CI and its power line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// How the CI was computed.
    pub method: crate::stats::effect::CiMethod,
    /// The difference.
    pub difference: f64,
    /// Its 95 % CI.
    pub ci95: (f64, f64),
    /// Values (pairs, for a paired difference) it was computed from.
    pub n: u64,
    /// The difference the power line is for (2 % of the reference value).
    pub detect: Option<f64>,
    /// Repetitions needed to detect `detect` (α = 0.05 two-sided, power 0.8).
    pub n_needed: Option<u64>,
    /// What the CI and the power line say.
    pub reading: crate::stats::effect::Reading,
}

/// One configuration's row in the per-configuration table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigRow {
    /// Configuration id.
    pub config: String,
    /// Scenario id.
    pub scenario: String,
    /// Block name.
    pub block: Option<String>,
    /// Model tag.
    pub model: String,
    /// Runtime (multi-agent Rust reports).
    pub runtime: Option<String>,
    /// Language.
    pub language: Option<String>,
    /// Each agent's options in words, e.g. `A: defaults; B: num_gpu=60 num_ctx=512 temperature=0.8`.
    pub options: String,
    /// Runs with status ok.
    pub runs: u64,
    /// Failed runs.
    pub failed: u64,
    /// Published efficiency, % (multi-agent).
    pub published_efficiency: Option<Stat>,
    /// True efficiency, % (multi-agent, when isolated cells were measured).
    pub true_efficiency: Option<Stat>,
    /// Equal-work efficiency, % (multi-agent, when isolated cells were measured).
    #[serde(default)]
    pub equal_work_efficiency: Option<Stat>,
    /// Aggregate throughput together / Σ throughputs alone, % (as `equal_work_efficiency`).
    #[serde(default)]
    pub throughput_efficiency: Option<Stat>,
    /// Published speedup.
    pub published_speedup: Option<Stat>,
    /// Runs flagged by the published contention rule.
    pub contention_runs: Option<u64>,
    /// Per agent: agent id → throughput (request level, tok/s).
    pub throughput: BTreeMap<String, Stat>,
    /// Per agent: agent id → TTFT (request level, ms).
    pub ttft: BTreeMap<String, Stat>,
    /// Output tokens per joule over the runs (with telemetry).
    pub tokens_per_j: Option<Stat>,
}

/// Mean, SD, n and the t-CI of a small sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Number of values.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Sample SD (0 for n < 2).
    pub sd: f64,
    /// Student-t 95 % CI (None for n < 2).
    pub ci95: Option<(f64, f64)>,
}

/// Published vs honest efficiency for one configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EfficiencyRow {
    /// Configuration id.
    pub config: String,
    /// Scenario id.
    pub scenario: String,
    /// Published efficiency mean, %.
    pub published_pct: Option<f64>,
    /// True efficiency mean, % (None when no isolated cells were measured).
    pub true_pct: Option<f64>,
    /// Equal-work efficiency mean, %: the true efficiency on the work the concurrent runs
    /// did (None when no isolated cells were measured).
    #[serde(default)]
    pub equal_work_pct: Option<f64>,
    /// Aggregate output throughput together / Σ throughputs alone, mean, %.
    #[serde(default)]
    pub throughput_pct: Option<f64>,
    /// Decode time per output token alone, mean over runs, ms.
    #[serde(default)]
    pub alone_per_token_ms: Option<f64>,
    /// Decode time per output token together, mean over runs, ms.
    #[serde(default)]
    pub together_per_token_ms: Option<f64>,
    /// Σ agent durations during the concurrent run / Σ isolated durations: how much slower
    /// the agents ran together than alone (mean over runs), when measured.
    pub slowdown: Option<f64>,
    /// One line explaining a disagreement (None when they agree within 5 pp or one is missing).
    pub explanation: Option<String>,
    /// True − published efficiency, pp, over the runs with both: a paired t difference with
    /// its power line (2 % of the published efficiency).
    #[serde(default)]
    pub true_minus_published: Option<Effect>,
}

/// Values for one distribution chart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Distribution {
    /// Group label (scenario id, or `agent` within a scenario).
    pub group: String,
    /// Metric (`throughput_tok_s`, `ttft_ms`).
    pub metric: String,
    /// The values (request level, warm-ups excluded); for a group of more than
    /// [`Distribution::MAX_VALUES`] values, their [`Distribution::QUANTILES`]-quantiles instead
    /// (the type-7 percentiles at 0, 0.1, …, 100 %: exact quartiles, median and extremes),
    /// so that `analysis.json` stays bounded whatever the campaign's size.
    pub values: Vec<f64>,
    /// How many values `values` summarises when it holds quantiles (absent when it holds the
    /// values themselves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantiles_of: Option<u64>,
    /// The agents' call these values are of (`analysis`, `report`, …) when the group's
    /// requests are of several kinds, each then a distribution of its own (absent when the
    /// group has one kind of request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

impl Distribution {
    /// Quantiles kept for a large group: `values` then has `QUANTILES + 1` entries.
    pub const QUANTILES: usize = 1000;
    /// Groups of up to this many values keep every value.
    pub const MAX_VALUES: usize = Self::QUANTILES + 1;

    /// The distribution of `values` (every value, or their quantiles for a large group).
    pub fn new(group: String, metric: String, values: Vec<f64>) -> Distribution {
        if values.len() <= Self::MAX_VALUES {
            return Distribution {
                group,
                metric,
                values,
                quantiles_of: None,
                stage: None,
            };
        }
        let finite: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        Distribution {
            group,
            metric,
            values: crate::stats::quantiles(&finite, Self::QUANTILES).unwrap_or_default(),
            quantiles_of: Some(finite.len() as u64),
            stage: None,
        }
    }

    /// The same distribution, of the requests of one `stage`.
    pub fn of_stage(self, stage: Option<&str>) -> Distribution {
        Distribution {
            stage: stage.map(str::to_owned),
            ..self
        }
    }

    /// The number of values the distribution describes.
    pub fn n(&self) -> u64 {
        self.quantiles_of.unwrap_or(self.values.len() as u64)
    }
}

/// A GPU time series (one campaign's telemetry, concatenated in cell order).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TelemetrySeries {
    /// GPU index.
    pub gpu: u32,
    /// Seconds since the first sample of the report.
    pub t_s: Vec<f64>,
    /// Utilisation, % (NaN where not sampled).
    pub util_pct: Vec<f64>,
    /// Power, W (NaN where not sampled).
    pub power_w: Vec<f64>,
}

/// The analysis of one report within a campaign.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportAnalysis {
    /// Report id (`TR114_v2`).
    pub report: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// The environment the original report states.
    pub published_environment: BTreeMap<String, String>,
    /// Endpoints as measured (empty for imported data).
    pub provenance: Vec<EndpointProvenance>,
    /// Where the numbers come from.
    pub origin: Origin,
    /// How the experiment ran.
    pub method: Method,
    /// What the data hold.
    pub counts: Counts,
    /// True when the report has multi-agent (concurrent) cells.
    pub multi_agent: bool,
    /// Per-configuration table, in plan order.
    pub configs: Vec<ConfigRow>,
    /// Grouped descriptive statistics.
    pub summaries: Vec<SummaryRow>,
    /// One verdict per reference value, in manifest order.
    pub verdicts: Vec<Verdict>,
    /// Welch comparisons (languages, models, runtimes, compared reports).
    pub comparisons: Vec<Comparison>,
    /// Published vs honest efficiency per configuration (multi-agent reports).
    pub efficiency: Vec<EfficiencyRow>,
    /// Request-level distributions per scenario.
    pub distributions: Vec<Distribution>,
    /// GPU utilisation and power over time (empty without telemetry).
    pub telemetry: Vec<TelemetrySeries>,
    /// Findings in sentences, each built from the numbers above.
    pub findings: Vec<String>,
    /// The report's suspect cells (a self-check failed), left out of the statistics unless
    /// `suspect_included`.
    #[serde(default)]
    pub suspect: Vec<super::suspect::SuspectCell>,
    /// The statistics include the suspect cells (`--include-suspect`).
    #[serde(default)]
    pub suspect_included: bool,
    /// The warning the report opens with when self-checks failed often.
    #[serde(default)]
    pub suspect_warning: Option<String>,
    /// What the servers' Prometheus `/metrics` said, per configuration and endpoint (empty
    /// without a `server_metrics` table).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_metrics: Vec<super::server_metrics::ServerMetricsGroup>,
    /// The serving loads of the report's `load` workloads: series, levels, SLO frontier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<super::serving::Serving>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A summary row's statistics stay flat in `analysis.json`, in column order, and read back.
    #[test]
    fn summary_rows_keep_their_flat_json_shape() {
        let row = SummaryRow {
            report: "TR110".into(),
            grouping: "report".into(),
            group: "TR110".into(),
            level: Level::Run,
            metric: "published_efficiency_pct".into(),
            stats: crate::stats::describe(&[90.0, 95.0, 97.0]),
        };
        let json = serde_json::to_string(&row).expect("serialize");
        let keys = [
            "report",
            "grouping",
            "group",
            "level",
            "metric",
            "n",
            "mean",
            "sd",
            "cv_pct",
            "median",
            "p95",
            "min",
            "max",
            "ci95_low",
            "ci95_high",
        ];
        let at: Vec<usize> = keys
            .iter()
            .map(|k| json.find(&format!("\"{k}\":")).expect(k))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");
        assert!(
            !json.contains("\"stats\"") && !json.contains("\"ci95\""),
            "{json}"
        );
        let back: SummaryRow = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, row);
    }
}
