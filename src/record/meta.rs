//! The metadata committed with a cell: enough to resume (and to find the agents-alone results
//! of isolated cells) without reading its Parquet parts. Stored as JSON in the cell's
//! manifest; the keys are this struct's field names.

use serde::{Deserialize, Serialize};

use super::cell::CellRecord;
use super::kind::{CellKind, Status};

/// One agent of a committed cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentMeta {
    /// Agent id.
    pub agent: String,
    /// Duration, ms.
    pub duration_ms: f64,
    /// Σ output tokens.
    pub output_tokens: u64,
}

/// The metadata of a committed cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellMeta {
    /// Cell kind.
    pub kind: CellKind,
    /// Report id.
    pub report: String,
    /// Configuration id.
    pub config: Option<String>,
    /// Repetition.
    pub repetition: u32,
    /// Status.
    pub status: Status,
    /// The agents, in run order.
    pub agents: Vec<AgentMeta>,
    /// The raw file an imported cell was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
}

/// The part of a cell's metadata resuming needs: its agents.
#[derive(Deserialize)]
struct Agents {
    agents: Vec<AgentMeta>,
}

impl CellMeta {
    /// The metadata of `rec`.
    pub fn of(rec: &CellRecord) -> Self {
        CellMeta {
            kind: rec.key.kind,
            report: rec.key.report.clone(),
            config: rec.key.config.clone(),
            repetition: rec.key.repetition,
            status: rec.status,
            agents: rec
                .agents
                .iter()
                .map(|a| AgentMeta {
                    agent: a.agent.clone(),
                    duration_ms: a.duration_ms,
                    output_tokens: a.aggregate.output_tokens,
                })
                .collect(),
            imported_from: None,
        }
    }

    /// As the JSON value the store commits.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The agents-alone result (duration, output tokens) of a committed isolated cell's
    /// metadata: its first agent's; `None` when the value holds no agents.
    pub fn isolated_of(meta: &serde_json::Value) -> Option<(f64, u64)> {
        let a = Agents::deserialize(meta).ok()?.agents.into_iter().next()?;
        Some((a.duration_ms, a.output_tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_json_keeps_its_keys_and_gives_back_the_isolated_result() {
        let meta = CellMeta {
            kind: CellKind::Isolated,
            report: "tr110".into(),
            config: Some("c1".into()),
            repetition: 2,
            status: Status::Ok,
            agents: vec![AgentMeta {
                agent: "A".into(),
                duration_ms: 12.5,
                output_tokens: 40,
            }],
            imported_from: None,
        };
        let v = meta.to_value();
        assert_eq!(
            v,
            serde_json::json!({
                "kind": "isolated", "report": "tr110", "config": "c1", "repetition": 2,
                "status": "ok",
                "agents": [{"agent": "A", "duration_ms": 12.5, "output_tokens": 40}],
            })
        );
        assert_eq!(CellMeta::isolated_of(&v), Some((12.5, 40)));
        assert_eq!(CellMeta::isolated_of(&serde_json::json!({})), None);
    }
}
