//! Content-addressed identity of configurations and cells.
//!
//! **Key fields** (hashed into ids) versus **provenance-only fields** are declared here and
//! nowhere else:
//!
//! | in the key (changes the measurement)                          | provenance only (labels, scheduling) |
//! |---------------------------------------------------------------|---------------------------------------|
//! | [`CELL_FORMAT`] salt                                           | report id, title, configuration id    |
//! | workload content: api, stream, keep_alive, task (prompts, templates, corpus), command, force_output_tokens | workload id, harness label |
//! | model tag and digest                                           | model id                              |
//! | scenario kind and execution mode                               | scenario id, agent ids                |
//! | runtime, language                                              | block name, notes, `missing`          |
//! | per agent, in order: role, endpoint kind + URL, effective options | endpoint id, resource, managed settings |
//! | warm-up policy, between-runs policy                            | request timeout, retry, telemetry, order, references |
//! | node kind, agent index (isolated), repetition index            | published environment                 |
//! | a `load` workload's level and lengths; the `server` axis's settings | a managed server's command, env and defaults, SLOs |
//! | replicate: occurrence of identical content within a report     |                                       |
//!
//! Ids are computed over the parsed, default-filled structures (never over YAML text), so
//! reordering keys, adding comments or renaming labels never changes an id, and a changed
//! key field always does. The id is a Merkle-style SHA-256: the workload's canonical JSON is
//! hashed once, the configuration key (holding that digest) once per configuration, and each
//! cell hashes its configuration digest with its kind and repetition.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::manifest::{
    Api, AxisPoint, BetweenRuns, CommandAgent, EndpointKind, Execution, Language, Options, Role,
    Runtime, ScenarioKind, Task, WarmupMode, Workload,
};

/// Format-version salt of every id. Bump it when the key's meaning changes.
pub const CELL_FORMAT: &str = "chimera-cell-v1";

/// A 128-bit content address, printed as 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 16]);

impl NodeId {
    /// Hex form.
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(32);
        for b in self.0 {
            s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
        }
        s
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

/// SHA-256 of `parts`, each length-prefixed so that concatenations cannot collide.
pub fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

fn to_id(d: [u8; 32]) -> NodeId {
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    NodeId(b)
}

/// Hex of a full digest.
pub fn hex32(d: &[u8; 32]) -> String {
    NodeId(d[..16].try_into().unwrap_or([0; 16])).hex()
        + &NodeId(d[16..].try_into().unwrap_or([0; 16])).hex()
}

/// The key content of a workload (its id and harness label are provenance only).
#[derive(Debug, Serialize)]
pub struct WorkloadKey<'a> {
    /// API.
    pub api: Api,
    /// Streaming.
    pub stream: bool,
    /// keep_alive.
    pub keep_alive: &'a Option<String>,
    /// The task, in full.
    pub task: &'a Task,
    /// The agent program of a `command` workload (absent for in-process agents, so their
    /// ids are what they were before command workloads existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<&'a CommandAgent>,
    /// The forced output length (absent when unset, so that workloads without it keep the
    /// ids they had before the key existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_output_tokens: Option<u32>,
}

impl<'a> WorkloadKey<'a> {
    /// The key view of a workload.
    pub fn of(w: &'a Workload) -> Self {
        Self {
            api: w.api,
            stream: w.stream,
            keep_alive: &w.keep_alive,
            task: &w.task,
            command: w.command.as_ref(),
            force_output_tokens: w.force_output_tokens,
        }
    }

    /// Digest of the canonical JSON.
    pub fn digest(&self) -> [u8; 32] {
        let json = serde_json::to_vec(self).unwrap_or_default();
        digest(&[CELL_FORMAT.as_bytes(), b"workload", &json])
    }
}

/// Endpoint fields in the key.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointKey<'a> {
    /// Protocol.
    pub kind: EndpointKind,
    /// Base URL.
    pub url: &'a str,
}

/// One agent in the key.
#[derive(Debug, Clone, Serialize)]
pub struct AgentKey<'a> {
    /// Role (selects prompts).
    pub role: Role,
    /// Endpoint.
    pub endpoint: EndpointKey<'a>,
    /// Effective options (base ← block ← configuration); empty = nothing sent.
    pub options: &'a Options,
}

/// The full key of a configuration (without repetition).
#[derive(Debug, Clone, Serialize)]
pub struct ConfigKey<'a> {
    /// Format salt.
    pub format: &'static str,
    /// Digest of [`WorkloadKey`].
    pub workload: String,
    /// Model tag.
    pub model_tag: &'a str,
    /// Model digest pin.
    pub model_digest: Option<&'a str>,
    /// Scenario kind.
    pub scenario_kind: ScenarioKind,
    /// Execution mode.
    pub execution: Execution,
    /// Runtime.
    pub runtime: Option<Runtime>,
    /// Language.
    pub language: Option<Language>,
    /// Agents in scenario order.
    pub agents: Vec<AgentKey<'a>>,
    /// Warm-up mode.
    pub warmup: WarmupMode,
    /// Warm-up requests.
    pub warmup_requests: u32,
    /// Between-runs policy.
    pub between_runs: &'a BetweenRuns,
    /// Occurrence of this exact content within its report, from 0: a report that lists the
    /// same settings twice (TR113's duplicate cell, TR114's test015/test200) measures them
    /// twice, as the original did.
    pub replicate: u32,
    /// The level and lengths of a `load` workload (absent for other workloads, so that
    /// their ids are what they were before load workloads existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadLevel>,
    /// The `server` axis's managed-server settings (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<&'a crate::manifest::ServerFlags>,
}

impl ConfigKey<'_> {
    /// Digest of the canonical JSON.
    pub fn digest(&self) -> [u8; 32] {
        let json = serde_json::to_vec(self).unwrap_or_default();
        digest(&[CELL_FORMAT.as_bytes(), b"config", &json])
    }
}

/// What a cell node measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellRole {
    /// Single-agent run(s).
    Single,
    /// Agent `n` of a multi-agent configuration, alone.
    Isolated(u8),
    /// All agents at once.
    Concurrent,
}

/// Id of a cell: configuration digest × role × repetition.
pub fn cell_id(config: &[u8; 32], role: CellRole, repetition: u32) -> NodeId {
    let (tag, agent): (&[u8], u8) = match role {
        CellRole::Single => (b"single", 0),
        CellRole::Isolated(a) => (b"isolated", a),
        CellRole::Concurrent => (b"concurrent", 0),
    };
    to_id(digest(&[
        CELL_FORMAT.as_bytes(),
        tag,
        config,
        &[agent],
        &repetition.to_le_bytes(),
    ]))
}

/// The key of a warm-up: endpoint × model × load-affecting options.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WarmupKey {
    /// Endpoint kind.
    pub kind: EndpointKind,
    /// Endpoint URL.
    pub url: String,
    /// Model tag.
    pub model_tag: String,
    /// Model digest pin.
    pub model_digest: Option<String>,
    /// `num_gpu` (None = server default).
    pub num_gpu: Option<u32>,
    /// `num_ctx` (None = server default).
    pub num_ctx: Option<u32>,
    /// Requests.
    pub requests: u32,
    /// Prompt.
    pub prompt: String,
}

impl WarmupKey {
    /// Id of the warm-up node.
    pub fn id(&self) -> NodeId {
        let json = serde_json::to_vec(self).unwrap_or_default();
        to_id(digest(&[CELL_FORMAT.as_bytes(), b"warmup", &json]))
    }
}

/// Id of a per-report node (`analysis` or `report`).
pub fn report_node_id(kind: &str, report: &str) -> NodeId {
    to_id(digest(&[
        CELL_FORMAT.as_bytes(),
        kind.as_bytes(),
        report.as_bytes(),
    ]))
}

/// The level and lengths of a configuration of a `load` workload: its axes, else the
/// task's lengths.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LoadLevel {
    /// Closed-loop users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Open-loop requests per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Prompt length, tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u32>,
    /// Output length, tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u32>,
}

impl LoadLevel {
    /// The level of point `p` of a block whose workload has `task`.
    pub fn of(task: &Task, p: &AxisPoint) -> Self {
        let (input, output) = match task {
            Task::Load(t) => (t.input_tokens, t.output_tokens),
            _ => (None, None),
        };
        LoadLevel {
            concurrency: p.concurrency,
            rate: p.rate,
            input_tokens: p.input_tokens.or(input),
            output_tokens: p.output_tokens.or(output),
        }
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == LoadLevel::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parts_are_length_prefixed() {
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
        assert_eq!(digest(&[b"ab", b"c"]), digest(&[b"ab", b"c"]));
    }

    #[test]
    fn cell_ids_separate_role_agent_and_repetition() {
        let c = [7u8; 32];
        let ids = [
            cell_id(&c, CellRole::Single, 1),
            cell_id(&c, CellRole::Concurrent, 1),
            cell_id(&c, CellRole::Isolated(0), 1),
            cell_id(&c, CellRole::Isolated(1), 1),
            cell_id(&c, CellRole::Concurrent, 2),
        ];
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(ids[0].hex().len(), 32);
        assert!(ids[0].hex().bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn ids_are_stable_across_versions_of_chimera() {
        // Known value, computed independently (Python hashlib over the same length-prefixed
        // parts). A change here orphans every stored cell: bump CELL_FORMAT deliberately instead.
        assert_eq!(
            cell_id(&[0u8; 32], CellRole::Concurrent, 1).hex(),
            "f50522f722e4209844f46a30da94ee17"
        );
        assert_eq!(
            report_node_id("analysis", "TR114_v2"),
            report_node_id("analysis", "TR114_v2")
        );
        assert_ne!(
            report_node_id("analysis", "TR114_v2"),
            report_node_id("report", "TR114_v2")
        );
    }

    #[test]
    fn a_forced_output_length_is_in_the_workload_key_only_when_set() {
        let plain: Workload =
            serde_saphyr::from_str("id: w\ntask: {kind: single_inference, prompts: [hi]}\n")
                .expect("workload");
        let json = serde_json::to_string(&WorkloadKey::of(&plain)).expect("json");
        assert!(!json.contains("force_output_tokens"), "{json}");
        let forced = Workload {
            force_output_tokens: Some(64),
            ..plain.clone()
        };
        let other = Workload {
            force_output_tokens: Some(32),
            ..plain.clone()
        };
        let d = |w: &Workload| WorkloadKey::of(w).digest();
        assert_ne!(d(&plain), d(&forced));
        assert_ne!(d(&forced), d(&other));
        assert_eq!(d(&forced), d(&forced.clone()));
    }
}
