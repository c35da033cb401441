//! The agent-program protocol of `command` workloads: the job file chimera writes for each
//! agent run ([`AgentJob`]) and the record line the program writes per LLM request
//! ([`AgentRecord`]). `chimera schema --agent-record` prints the JSON Schema of a record line
//! (committed as `schemas/agent-record.schema.json`); `docs/agent-protocol.md` explains both.
//!
//! Pure data: the runner (`run::command`) starts the program, reads the records back and turns
//! each into a request row.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::manifest::Options;

/// Version of the protocol, written into every job file (`protocol`).
pub const PROTOCOL_VERSION: u32 = 1;

/// Everything chimera decided for one agent run, written as JSON to the file the `{job}`
/// placeholder (and `CHIMERA_JOB`) names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentJob {
    /// [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The cell this run belongs to.
    pub cell_id: String,
    /// Agent id within the scenario (`A`, `B`…).
    pub agent: String,
    /// The agent's role (selects the persona prompt; already resolved into `task`).
    pub role: String,
    /// Base URL of the agent's server, without a trailing slash.
    pub url: String,
    /// Protocol spoken at `url`: `ollama` (`/api/generate`, `/api/chat`) or `openai`
    /// (`/v1/completions`, `/v1/chat/completions`).
    pub protocol_kind: ProtocolKind,
    /// Model name to send.
    pub model: String,
    /// `generate` or `chat`.
    pub api: String,
    /// Stream the responses.
    pub stream: bool,
    /// Ollama `keep_alive` to send with every request (`None`: not sent).
    pub keep_alive: Option<String>,
    /// Model options to send (absent fields: not sent). For `openai`, `temperature`,
    /// `top_p`, `top_k`, `repeat_penalty`, `num_predict` (`max_tokens`) and `seed` apply;
    /// `num_gpu` and `num_ctx` are server start-up settings.
    pub options: Options,
    /// Generate exactly this many tokens per request (the workload's `force_output_tokens`):
    /// an `openai` program sends `max_tokens` = this (instead of `num_predict`), `ignore_eos:
    /// true` and `min_tokens` = this. Absent: not forced (chimera refuses it for `ollama`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_output_tokens: Option<u32>,
    /// Per-request timeout, seconds.
    pub timeout_s: f64,
    /// What to send.
    pub task: JobTask,
    /// The corpus directory an agent workflow ingests (`None` for other tasks).
    pub corpus_dir: Option<String>,
    /// Where to write the records: one [`AgentRecord`] JSON object per line.
    pub records: String,
    /// A seed for anything the program randomises (the options' `seed` when set, else
    /// derived from the cell id).
    pub seed: u64,
    /// The configuration's runtime axis (`tokio-default`, `smol`…), when it has one.
    pub runtime: Option<String>,
    /// The configuration's language axis (`rust`, `python`), when it has one.
    pub language: Option<String>,
}

/// The protocol an agent program speaks to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ProtocolKind {
    /// Ollama's native API.
    Ollama,
    /// An OpenAI-compatible API (llama-server, vLLM).
    Openai,
}

/// The task of one agent run, resolved for its role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobTask {
    /// Send each prompt in order, one request each (stage `single`).
    SingleInference {
        /// The prompts.
        prompts: Vec<String>,
    },
    /// Ingest `corpus_dir`, send the analysis prompt (stage `analysis`), then the report
    /// prompt built from the analysis response (stage `report`).
    AgentWorkflow {
        /// Analysis template: `{data_summary}` and the option placeholders `{num_gpu}`,
        /// `{num_ctx}`, `{temperature}`, `{top_p}`, `{top_k}`, `{repeat_penalty}`.
        analysis_template: String,
        /// Report template: `{summary}`, `{key_findings}`, `{performance_metrics}`,
        /// `{recommendations}` and the option placeholders.
        report_template: String,
        /// Files the ingest must find (`None`: not checked).
        expected_files: Option<u32>,
    },
    /// One request with the role's persona prompt (stage `persona`).
    Persona {
        /// The prompt.
        prompt: String,
    },
}

/// One LLM request as an agent program measured it: one JSON object per line of the records
/// file. `stage`, `sent_at_unix_ms` and `e2e_ms` are required; every other field may be
/// absent when the program does not know it (and `null`, except `chunks` and `itl_ms`). Unknown fields are refused (a typo
/// must not silently drop a measurement).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentRecord {
    /// Which request of the run this is: `analysis`, `report`, `single` or `persona`.
    pub stage: RecordStage,
    /// Index of the request within the run (default: its line number among the records,
    /// from 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// When the request was sent, ms since the Unix epoch (UTC).
    pub sent_at_unix_ms: f64,
    /// Client time to the first chunk that carried text, ms (`null` when not streamed or
    /// failed before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Client time from send to the end of the response, ms.
    pub e2e_ms: f64,
    /// Chunks received (a non-streamed reply is one chunk; 0 when nothing arrived).
    #[serde(default)]
    pub chunks: u32,
    /// Gaps between consecutive chunks that carried text, ms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub itl_ms: Vec<f64>,
    /// Prompt tokens (server `prompt_eval_count` or `usage.prompt_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// Output tokens (server `eval_count` or `usage.completion_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Server `load_duration`, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_ms: Option<f64>,
    /// Server `prompt_eval_duration` (llama-server `timings.prompt_ms`), ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_ms: Option<f64>,
    /// Server `eval_duration` (llama-server `timings.predicted_ms`), ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_ms: Option<f64>,
    /// Server `total_duration`, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
    /// Server `done_reason` / `finish_reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    /// Length of the generated text, in Unicode scalar values (the `requests` column
    /// `response_chars`; 0 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_chars: Option<u64>,
    /// Files the agent workflow's ingest found (on its analysis record; the `agents`
    /// column `files_ingested`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_ingested: Option<u32>,
    /// The failure, when the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RecordError>,
}

/// The stage of a recorded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordStage {
    /// The analysis call of an agent workflow.
    Analysis,
    /// The report call of an agent workflow.
    Report,
    /// One prompt of a single-inference task.
    Single,
    /// The persona call.
    Persona,
}

impl From<RecordStage> for super::Stage {
    fn from(s: RecordStage) -> Self {
        match s {
            RecordStage::Analysis => super::Stage::Analysis,
            RecordStage::Report => super::Stage::Report,
            RecordStage::Single => super::Stage::Single,
            RecordStage::Persona => super::Stage::Persona,
        }
    }
}

/// A failed request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordError {
    /// One of chimera's error kinds (`connection_refused`, `model_not_found`,
    /// `bad_request`, `server_error`, `queue_full`, `http_status`, `stream_error`,
    /// `truncated`, `malformed_response`, `timeout`, `too_large`); anything else is stored
    /// as `agent_program`.
    pub kind: String,
    /// What went wrong.
    pub message: String,
    /// HTTP status, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// Why a records line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("records line {line}: {message}")]
pub struct RecordLineError {
    /// Line number, from 1.
    pub line: usize,
    /// What is wrong, with the field when serde names it.
    pub message: String,
}

/// Parses one records line (`line` numbered from 1). Blank lines are not records (`None`).
pub fn parse_record(line: usize, text: &str) -> Result<Option<AgentRecord>, RecordLineError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let mut de = serde_json::Deserializer::from_str(t);
    let rec: AgentRecord = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        RecordLineError {
            line,
            message: if path == "." || path.is_empty() {
                inner.to_string()
            } else {
                format!("`{path}`: {inner}")
            },
        }
    })?;
    let bad = |what: &str| RecordLineError {
        line,
        message: format!("`{what}` must be a finite number >= 0"),
    };
    let nonneg = |v: f64| v.is_finite() && v >= 0.0;
    if !nonneg(rec.sent_at_unix_ms) {
        return Err(bad("sent_at_unix_ms"));
    }
    if !nonneg(rec.e2e_ms) {
        return Err(bad("e2e_ms"));
    }
    for (name, v) in [
        ("ttft_ms", rec.ttft_ms),
        ("load_ms", rec.load_ms),
        ("prompt_eval_ms", rec.prompt_eval_ms),
        ("eval_ms", rec.eval_ms),
        ("total_ms", rec.total_ms),
    ] {
        if v.is_some_and(|v| !nonneg(v)) {
            return Err(bad(name));
        }
    }
    if rec.itl_ms.iter().any(|v| !nonneg(*v)) {
        return Err(bad("itl_ms"));
    }
    Ok(Some(rec))
}

/// The JSON Schema of one records line.
pub fn record_schema() -> schemars::Schema {
    schemars::schema_for!(AgentRecord)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_and_full_lines() {
        let r = parse_record(
            1,
            r#"{"stage":"analysis","sent_at_unix_ms":1.5,"e2e_ms":20}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("a record"));
        assert_eq!(r.stage, RecordStage::Analysis);
        assert_eq!(r.ttft_ms, None);
        assert_eq!(r.chunks, 0);
        let full = r#"{"stage":"report","index":1,"sent_at_unix_ms":1,"ttft_ms":3,"e2e_ms":20,"chunks":4,"itl_ms":[1,2],"prompt_tokens":5,"output_tokens":6,"load_ms":0,"prompt_eval_ms":1,"eval_ms":2,"total_ms":3,"done_reason":"stop","error":null}"#;
        let r = parse_record(2, full)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("a record"));
        assert_eq!(r.output_tokens, Some(6));
        assert_eq!(parse_record(3, "   ").ok(), Some(None));
    }

    #[test]
    fn refusals_name_the_line_and_field() {
        let missing = parse_record(7, r#"{"stage":"analysis","sent_at_unix_ms":1}"#);
        let e = missing.err().unwrap_or_else(|| panic!("refused"));
        assert_eq!(e.line, 7);
        assert!(e.message.contains("e2e_ms"), "{e}");
        let typo = parse_record(
            2,
            r#"{"stage":"single","sent_at_unix_ms":1,"e2e_ms":2,"ttft":3}"#,
        )
        .err()
        .unwrap_or_else(|| panic!("refused"));
        assert!(typo.message.contains("ttft"), "{typo}");
        let garbage = parse_record(1, "hello world").err();
        assert!(garbage.is_some());
        let negative = parse_record(1, r#"{"stage":"single","sent_at_unix_ms":1,"e2e_ms":-2}"#)
            .err()
            .unwrap_or_else(|| panic!("refused"));
        assert!(negative.message.contains("e2e_ms"), "{negative}");
        let stage = parse_record(1, r#"{"stage":"warmup","sent_at_unix_ms":1,"e2e_ms":2}"#)
            .err()
            .unwrap_or_else(|| panic!("refused"));
        assert!(stage.message.contains("stage"), "{stage}");
    }

    #[test]
    fn job_round_trips() {
        let job = AgentJob {
            protocol: PROTOCOL_VERSION,
            cell_id: "c".into(),
            agent: "A".into(),
            role: "collector".into(),
            url: "http://127.0.0.1:1".into(),
            protocol_kind: ProtocolKind::Openai,
            model: "m".into(),
            api: "generate".into(),
            stream: true,
            keep_alive: None,
            options: Options::default(),
            force_output_tokens: None,
            timeout_s: 5.0,
            task: JobTask::Persona { prompt: "p".into() },
            corpus_dir: None,
            records: "/tmp/r".into(),
            seed: 1,
            runtime: None,
            language: Some("rust".into()),
        };
        let s = serde_json::to_string(&job).unwrap_or_default();
        assert!(s.contains(r#""protocol_kind":"openai""#), "{s}");
        assert!(s.contains(r#""kind":"persona""#), "{s}");
        assert!(!s.contains("force_output_tokens"), "absent when unset: {s}");
        let back: AgentJob = serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, job);
        let forced = AgentJob {
            force_output_tokens: Some(48),
            ..job
        };
        let s = serde_json::to_string(&forced).unwrap_or_default();
        assert!(s.contains(r#""force_output_tokens":48"#), "{s}");
        let back: AgentJob = serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, forced);
    }
}
