//! The closed vocabularies of the manifest: endpoint kinds, roles, scenario kinds, runtimes,
//! languages, and the metrics, statistics and levels a reference names. Each name is written
//! once, for serde and for `Display`/`FromStr` alike.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Declares one vocabulary enum with the derives every vocabulary shares (serde, schemars
/// and strum, whose names agree through one case rule), plus the extra derives it lists.
macro_rules! vocabulary {
    (
        $(#[doc = $doc:tt])*
        $(#[derive($($extra:ident),* $(,)?)])?
        #[case = $case:tt]
        pub enum $name:ident { $($body:tt)* }
    ) => {
        $(#[doc = $doc])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            $($($extra,)*)?
            Serialize,
            Deserialize,
            JsonSchema,
            strum::Display,
            strum::EnumString,
            strum::IntoStaticStr,
        )]
        #[strum(serialize_all = $case)]
        #[serde(rename_all = $case)]
        pub enum $name { $($body)* }
    };
}

vocabulary! {
    /// Server protocol.
    #[derive(PartialOrd, Ord, Hash)]
    #[case = "snake_case"]
    pub enum EndpointKind {
        /// Ollama's native API (`/api/generate`, `/api/chat`).
        Ollama,
        /// OpenAI-compatible API (llama.cpp `llama-server`, vLLM).
        Openai,
        /// `chimera emulate`: a deterministic Ollama-protocol test instrument, never an LLM.
        Emulator,
    }
}

vocabulary! {
    /// Agent role: which prompts an agent uses.
    #[derive(PartialOrd, Ord, Hash)]
    #[case = "snake_case"]
    pub enum Role {
        /// DataCollector persona (agent A of the multi-agent harnesses).
        Collector,
        /// InsightAgent persona (agent B of the multi-agent harnesses).
        Insight,
        /// The baseline agent of the single-agent harnesses.
        Baseline,
        /// The "Chimera" agent of the single-agent harnesses.
        Chimera,
        /// A plain single-inference client (TR108).
        Client,
    }
}

vocabulary! {
    /// Scenario kinds of the reports.
    #[derive(PartialOrd, Ord)]
    #[case = "snake_case"]
    pub enum ScenarioKind {
        /// Single-agent runs (agents, if several, run one after the other).
        Single,
        /// Agent A on server defaults, agent B with the configuration's options.
        BaselineVsChimera,
        /// Both agents with options, different per agent.
        ChimeraHetero,
        /// Both agents with the same options.
        ChimeraHomo,
    }
}

vocabulary! {
    /// Async runtime variant of the Rust multi-agent harness (TR115).
    #[derive(PartialOrd, Ord, Hash)]
    #[case = "kebab-case"]
    pub enum Runtime {
        /// `#[tokio::main]` multi-thread with `try_join!`.
        TokioDefault,
        /// `tokio` current-thread runtime (`new_current_thread`).
        TokioCurrentThread,
        /// Both agents polled in one task under a `LocalSet`.
        TokioLocalset,
        /// async-std; the original serialised the agents with a mutex.
        AsyncStd,
        /// smol with a Tokio bridge for HTTP.
        Smol,
        /// smol with the stream re-chunked to 1 KiB (later TTFT).
        #[serde(rename = "smol-1kb")]
        #[strum(serialize = "smol-1kb")]
        Smol1kb,
    }
}

vocabulary! {
    /// Language of the original harness a configuration reproduces.
    #[derive(PartialOrd, Ord, Hash)]
    #[case = "snake_case"]
    pub enum Language {
        /// The Rust harnesses (H5, H6).
        Rust,
        /// The Python harnesses (H1–H4).
        Python,
    }
}

vocabulary! {
    /// How a harness defined time to first token (tr-spec §1.3). chimera always measures the
    /// client TTFT; this names the definition the report published, computed beside it.
    #[derive(Default)]
    #[case = "snake_case"]
    pub enum TtftDefinition {
        /// Client time from send to the first streamed chunk with text (the Rust harnesses
        /// H5, H6; chimera's own `ttft_ms`).
        #[default]
        ClientFirstChunk,
        /// Server `load_duration + prompt_eval_duration` of a non-streamed reply (TR108's
        /// `ttft_s`, and the Python harnesses H2, H3 of TR109 and TR110).
        LoadPlusPromptEval,
        /// Server `prompt_eval_duration` only (the TR116 Python harness H4).
        PromptEval,
    }
}

impl TtftDefinition {
    /// The definition of an original harness named in a workload (`H1`…`H6v2`); the client
    /// TTFT for any other name.
    pub fn of_harness(harness: &str) -> TtftDefinition {
        match harness.trim().to_ascii_uppercase().as_str() {
            "H1" | "H2" | "H3" => TtftDefinition::LoadPlusPromptEval,
            "H4" => TtftDefinition::PromptEval,
            _ => TtftDefinition::ClientFirstChunk,
        }
    }
}

vocabulary! {
    /// Metrics a reference can name (definitions in the design document, §7).
    #[case = "snake_case"]
    pub enum Metric {
        /// Σ agent durations during the concurrent run / wall × 100 / N.
        PublishedEfficiencyPct,
        /// Σ agent durations during the concurrent run / wall.
        PublishedSpeedup,
        /// Σ isolated agent durations / concurrent wall × 100 / N.
        TrueEfficiencyPct,
        /// Σ isolated agent durations / concurrent wall.
        TrueSpeedup,
        /// The same as true efficiency, on the work the concurrent run did: Σ over agents of
        /// the time each would take alone for its tokens in the run / concurrent wall × 100 / N.
        EqualWorkEfficiencyPct,
        /// Σ over agents of the time each would take alone for its tokens in the run /
        /// concurrent wall.
        EqualWorkSpeedup,
        /// Aggregate output throughput of the concurrent run / Σ of the agents' throughputs
        /// alone × 100.
        ThroughputEfficiencyPct,
        /// Published contention flag: published speedup < 1.5 (count or share).
        Contention,
        /// eval_count / eval_duration, tokens per second.
        ThroughputTokS,
        /// Client time to the first non-empty chunk, ms (chimera's measurement).
        TtftMs,
        /// TTFT as the configuration's harness defined it (`published_ttft` of the workload;
        /// tr-spec §1.3), ms: the value to compare with a report's published TTFT.
        PublishedTtftMs,
        /// Server load duration, ms.
        LoadMs,
        /// Output tokens.
        OutputTokens,
        /// Agent B − agent A throughput, tok/s.
        ThroughputDeltaTokS,
        /// Agent A − agent B TTFT, ms (Rust sign convention).
        TtftDeltaMs,
        /// Concurrent wall time, s.
        WallS,
        /// (chimera − baseline) / baseline × 100 for throughput.
        ThroughputImprovementPct,
        /// (baseline − chimera) / baseline × 100 for TTFT.
        TtftReductionPct,
        /// Share of configurations where the chimera agent beats the baseline agent, %.
        SuccessRatePct,
        /// Files the ingest step found.
        FilesIngested,
        /// One agent's execution time within a run (ingest + calls), s.
        AgentDurationS,
        /// The automated report-quality score of TR109 (weights 0.30/0.25/0.25/0.20).
        ReportQualityScore,
        /// User + system CPU time of an agent program's process, ms (`command` workloads).
        ProcessCpuMs,
        /// Peak resident set size of an agent program's process, MiB (`command` workloads).
        ProcessPeakRssMib,
    }
}

vocabulary! {
    /// Statistics a reference can name.
    #[case = "snake_case"]
    pub enum Statistic {
        /// Arithmetic mean.
        Mean,
        /// Median (linear interpolation).
        Median,
        /// Sample standard deviation (n − 1).
        Sd,
        /// SD / mean × 100.
        CvPct,
        /// Minimum.
        Min,
        /// Maximum.
        Max,
        /// Number of rows (for `contention`: rows flagged).
        Count,
        /// Share of rows, % (for `contention`: rows flagged).
        SharePct,
        /// Sum over rows.
        Sum,
        /// The `percentile` given beside it.
        Percentile,
    }
}

vocabulary! {
    /// The level a statistic is taken over.
    #[derive(Default)]
    #[case = "snake_case"]
    pub enum Level {
        /// Every run (cell) counts once.
        #[default]
        Run,
        /// First the mean per configuration, then the statistic over those means.
        Config,
        /// Every agent run counts once.
        Agent,
        /// Every LLM request counts once.
        Request,
    }
}

#[cfg(test)]
mod names {
    use super::*;

    /// The names `Display` writes and `FromStr` reads are the manifest's (serde's) names.
    #[test]
    fn enum_names_match_the_manifest() {
        fn same<T>(all: &[T])
        where
            T: serde::Serialize
                + std::fmt::Display
                + std::str::FromStr
                + PartialEq
                + std::fmt::Debug,
        {
            for v in all {
                let serde_name = serde_json::to_value(v).ok();
                assert_eq!(
                    serde_name.as_ref().and_then(|n| n.as_str()),
                    Some(v.to_string().as_str())
                );
                assert_eq!(v.to_string().parse::<T>().ok().as_ref(), Some(v));
            }
        }
        same(&[
            EndpointKind::Ollama,
            EndpointKind::Openai,
            EndpointKind::Emulator,
        ]);
        same(&[
            Role::Collector,
            Role::Insight,
            Role::Baseline,
            Role::Chimera,
            Role::Client,
        ]);
        same(&[
            ScenarioKind::Single,
            ScenarioKind::BaselineVsChimera,
            ScenarioKind::ChimeraHetero,
            ScenarioKind::ChimeraHomo,
        ]);
        same(&[
            Runtime::TokioDefault,
            Runtime::TokioLocalset,
            Runtime::AsyncStd,
            Runtime::Smol,
            Runtime::Smol1kb,
        ]);
        same(&[Language::Rust, Language::Python]);
        same(&[Level::Run, Level::Config, Level::Agent, Level::Request]);
        same(&[
            Statistic::Mean,
            Statistic::Median,
            Statistic::Sd,
            Statistic::CvPct,
            Statistic::Min,
            Statistic::Max,
            Statistic::Count,
            Statistic::SharePct,
            Statistic::Sum,
            Statistic::Percentile,
        ]);
        same(&[
            Metric::PublishedEfficiencyPct,
            Metric::PublishedSpeedup,
            Metric::TrueEfficiencyPct,
            Metric::TrueSpeedup,
            Metric::EqualWorkEfficiencyPct,
            Metric::EqualWorkSpeedup,
            Metric::ThroughputEfficiencyPct,
            Metric::Contention,
            Metric::ThroughputTokS,
            Metric::TtftMs,
            Metric::LoadMs,
            Metric::OutputTokens,
            Metric::ThroughputDeltaTokS,
            Metric::TtftDeltaMs,
            Metric::WallS,
            Metric::ThroughputImprovementPct,
            Metric::TtftReductionPct,
            Metric::SuccessRatePct,
            Metric::FilesIngested,
            Metric::AgentDurationS,
            Metric::ReportQualityScore,
            Metric::ProcessCpuMs,
            Metric::ProcessPeakRssMib,
        ]);
    }
}
