//! The metadata committed with a cell: enough to resume (and to find the agents-alone results
//! of isolated cells) without reading its Parquet parts. Stored as JSON in the cell's
//! manifest; the keys are this struct's field names.

use serde::{Deserialize, Serialize};

use super::cell::{Baseline, CellRecord};
use super::kind::{CellKind, Status};
use crate::metrics::AgentWork;

/// One agent of a committed cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentMeta {
    /// Agent id.
    pub agent: String,
    /// What it did: duration, output tokens and (since table schema 5) prompt tokens,
    /// requests, prefill and decode times, which the equal-work comparison scales.
    #[serde(flatten)]
    pub work: AgentWork,
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
    /// Why the cell is suspect (its failed self-checks); absent when none failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspect_reasons: Vec<String>,
    /// The raw file an imported cell was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
}

/// The part of a cell's metadata resuming needs: its agents and whether it is suspect.
#[derive(Deserialize)]
struct Agents {
    agents: Vec<AgentMeta>,
    #[serde(default)]
    suspect_reasons: Vec<String>,
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
                    work: a.work(),
                })
                .collect(),
            suspect_reasons: rec.suspect_reasons.clone(),
            imported_from: None,
        }
    }

    /// As the JSON value the store commits.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The agents-alone result of a committed isolated cell's metadata: its first agent's
    /// work and whether the cell is suspect; `None` when the value holds no agents.
    pub fn isolated_of(meta: &serde_json::Value) -> Option<Baseline> {
        let m = Agents::deserialize(meta).ok()?;
        let suspect = !m.suspect_reasons.is_empty();
        let a = m.agents.into_iter().next()?;
        Some(Baseline {
            work: a.work,
            suspect,
        })
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
                work: AgentWork {
                    duration_ms: 12.5,
                    output_tokens: 40,
                    ..AgentWork::default()
                },
            }],
            suspect_reasons: Vec::new(),
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
        let old = CellMeta::isolated_of(&v).expect("isolated");
        assert!(!old.suspect);
        let old = old.work;
        assert_eq!(
            (old.duration_ms, old.output_tokens, old.requests),
            (12.5, 40, None)
        );
        assert_eq!(CellMeta::isolated_of(&serde_json::json!({})), None);
        // Since schema 5 the split the equal-work comparison scales is kept too.
        let mut m = meta.clone();
        m.agents[0].work.requests = Some(3);
        m.agents[0].work.prefill_ms = Some(2.5);
        m.suspect_reasons = vec!["start skew".into()];
        let back = CellMeta::isolated_of(&m.to_value()).expect("isolated");
        assert!(back.suspect);
        assert_eq!(
            (back.work.requests, back.work.prefill_ms),
            (Some(3), Some(2.5))
        );
    }
}
