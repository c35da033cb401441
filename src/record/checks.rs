//! Self-checks that invalidate a cell. A measured cell whose conditions were not the ones its
//! numbers claim is marked *suspect* with the reasons; the analysis leaves suspect cells out
//! by default and the report lists them (`docs/data.md`, "Self-checks").
//!
//! | check | suspect when |
//! |---|---|
//! | start skew | the agents of a concurrent cell sent their first measured request (or their programs started) more than [`start_skew_bound_ms`] apart |
//! | reload | a measured request waited more than [`RELOAD_MS`] for the model to load (Ollama's `load_duration`), unless another agent of the cell uses the same endpoint with other `num_gpu`/`num_ctx` (reloads by design) |
//! | model digest | an agent's server reported another digest for the model than the campaign's |
//! | throttling | at least 10 % of the cell's GPU samples had a slowing throttle reason (power cap, thermal or hardware slowdown, power brake) |
//! | request count | an agent made another number of measured requests than the plan says |
//! | baseline | an isolated baseline a concurrent cell is compared with is suspect |
//!
//! Every function is pure and gives the reason as a sentence, or `None` when the check passes
//! or does not apply.

pub use super::cell::first_request_skew_ms;
use super::cell::{AgentRun, CellRecord};
use super::kind::CellKind;
use crate::telemetry::GpuSample;

/// Smallest start-skew bound, ms.
pub const SKEW_FLOOR_MS: f64 = 100.0;
/// Start-skew bound as a fraction of the cell's wall.
pub const SKEW_WALL_FRACTION: f64 = 0.02;
/// A measured request that waited longer than this for its model (ms) saw a reload.
pub const RELOAD_MS: f64 = 250.0;

/// NVML throttle (clock event) reasons that do not slow a running workload: GPU idle, the
/// applications clocks setting, sync boost and the display clock setting.
const BENIGN_THROTTLE: u64 = 0x1 | 0x2 | 0x10 | 0x100;

/// The share of a cell's GPU samples that must show a slowing throttle reason for the cell
/// to be suspect (one short blip is not throttling of the cell).
pub const THROTTLE_SHARE: f64 = 0.10;

/// NVML throttle reason bits and their names.
const THROTTLE_NAMES: [(u64, &str); 9] = [
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
];

/// The start-skew bound of a cell that ran `wall_ms`: 100 ms, or 2 % of the wall when that
/// is more. A skew below it moves the cell's efficiency by at most about 2 points.
pub fn start_skew_bound_ms(wall_ms: f64) -> f64 {
    SKEW_FLOOR_MS.max(SKEW_WALL_FRACTION * wall_ms)
}

/// Start skew: a concurrent cell whose agents did not start together.
pub fn check_start_skew(rec: &CellRecord) -> Option<String> {
    if rec.key.kind != CellKind::Concurrent {
        return None;
    }
    let bound = start_skew_bound_ms(rec.wall_ms);
    let request = rec.first_request_skew_ms.unwrap_or(0.0);
    let program = rec.start_skew_ms.unwrap_or(0.0);
    let (skew, what) = if program > request {
        (program, "agent programs started")
    } else {
        (request, "agents sent their first requests")
    };
    (skew > bound)
        .then(|| format!("start skew: the {what} {skew:.0} ms apart (bound {bound:.0} ms)"))
}

/// Whether another agent of the cell uses `a`'s endpoint with another `num_gpu` or
/// `num_ctx`: the server reloads the model between their requests by design (a TR109- or
/// TR113-shaped cell with a baseline and a tuned agent on one Ollama), not by accident.
fn reloads_by_design(agents: &[AgentRun], a: &AgentRun) -> bool {
    agents.iter().any(|b| {
        b.endpoint == a.endpoint
            && (b.options.num_gpu != a.options.num_gpu || b.options.num_ctx != a.options.num_ctx)
    })
}

/// Reload: a measured request whose model had to be loaded first (agents that share their
/// endpoint with another agent's option set are not checked: their reloads are the design).
pub fn check_reload(rec: &CellRecord) -> Option<String> {
    let (agent, index, ms) = rec
        .agents
        .iter()
        .filter(|a| !reloads_by_design(&rec.agents, a))
        .flat_map(|a| {
            a.requests
                .iter()
                .filter(|r| !r.warmup)
                .filter_map(move |r| r.record.load_ms.map(|l| (a.agent.as_str(), r.index, l)))
        })
        .filter(|x| x.2 > RELOAD_MS)
        .max_by(|a, b| a.2.total_cmp(&b.2))?;
    Some(format!(
        "model reload: agent {agent}'s request {index} waited {ms:.0} ms for the model to load \
         (bound {RELOAD_MS:.0} ms)"
    ))
}

/// Model digest: an agent whose server reported another digest than `campaign_digest` says
/// the campaign's is (for that agent's endpoint and model).
pub fn check_digest<'a>(
    rec: &'a CellRecord,
    campaign_digest: impl Fn(&'a AgentRun) -> Option<&'a str>,
) -> Option<String> {
    rec.agents.iter().find_map(|a| {
        let now = a.model_digest.as_deref()?;
        let was = campaign_digest(a)?;
        (now != was).then(|| {
            format!(
                "model digest: agent {}'s server ({}) now serves {} as {}, the campaign measured {}",
                a.agent,
                a.endpoint,
                rec.key.model.as_deref().unwrap_or("the model"),
                short(now),
                short(was)
            )
        })
    })
}

/// Throttling: at least [`THROTTLE_SHARE`] of the cell's GPU samples with a throttle reason
/// that slows a workload (power cap, thermal or hardware slowdown, power brake).
pub fn check_throttle(samples: &[GpuSample]) -> Option<String> {
    let mut gpus: Vec<u32> = Vec::new();
    let mut bits = 0u64;
    for s in samples {
        if let Some(r) = s.throttle_reasons
            && r & !BENIGN_THROTTLE != 0
        {
            bits |= r & !BENIGN_THROTTLE;
            if !gpus.contains(&s.gpu) {
                gpus.push(s.gpu);
            }
        }
    }
    let n = samples.len();
    let hit = samples
        .iter()
        .filter(|s| {
            s.throttle_reasons
                .is_some_and(|r| r & !BENIGN_THROTTLE != 0)
        })
        .count();
    if bits == 0 || (hit as f64) < THROTTLE_SHARE * n as f64 {
        return None;
    }
    let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    Some(format!(
        "GPU throttled: {} on GPU {} in {hit} of {n} samples",
        throttle_names(bits),
        list(&gpus)
    ))
}

/// The names of the NVML throttle reason bits in `bits` (unknown bits in hex).
pub fn throttle_names(bits: u64) -> String {
    let mut names: Vec<String> = THROTTLE_NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| (*n).to_owned())
        .collect();
    let known = THROTTLE_NAMES.iter().fold(0, |acc, (b, _)| acc | b);
    if bits & !known != 0 {
        names.push(format!("{:#x}", bits & !known));
    }
    names.join(" + ")
}

/// Request count: an agent that made another number of measured requests than `planned`.
pub fn check_request_count(rec: &CellRecord, planned: u64) -> Option<String> {
    rec.agents.iter().find_map(|a| {
        let made = a.requests.iter().filter(|r| !r.warmup).count() as u64;
        (made != planned).then(|| {
            format!(
                "request count: agent {} made {made} measured requests, the plan says {planned}",
                a.agent
            )
        })
    })
}

/// The first 12 hex digits of a digest (after any `sha256:` prefix).
fn short(d: &str) -> &str {
    let d = d.strip_prefix("sha256:").unwrap_or(d);
    d.get(..12).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::RequestRecord;
    use crate::record::{CellKey, RequestRow};
    use crate::workload::Stage;

    fn request(index: u32, sent: f64, load: Option<f64>) -> RequestRow {
        RequestRow {
            stage: Stage::Single,
            index,
            warmup: false,
            throughput_tok_s: None,
            client_tok_s: None,
            itl_p50_ms: None,
            itl_p99_ms: None,
            published_ttft_ms: None,
            response_chars: None,
            load: None,
            record: RequestRecord {
                sent_at_unix_ms: sent,
                e2e_ms: 10.0,
                load_ms: load,
                output_tokens: Some(4),
                ..RequestRecord::default()
            },
        }
    }

    fn agent(id: &str, requests: Vec<RequestRow>) -> AgentRun {
        AgentRun {
            agent: id.into(),
            role: crate::manifest::Role::Client,
            endpoint: "gpu0".into(),
            isolated: false,
            options: crate::manifest::Options::default(),
            duration_ms: 10.0,
            files_ingested: None,
            server_version: None,
            model_digest: Some("sha256:aaaaaaaaaaaaaaaaaaaa".into()),
            aggregate: Default::default(),
            requests,
            process: None,
        }
    }

    fn cell(kind: CellKind, agents: Vec<AgentRun>, wall: f64) -> CellRecord {
        let key = CellKey {
            cell_id: "c".into(),
            kind,
            report: "r".into(),
            config: Some("x".into()),
            scenario: None,
            repetition: 1,
            model: Some("m:1b".into()),
            axes: Default::default(),
            server_flags: None,
        };
        let mut rec = CellRecord::new(key, agents, wall, 0.0);
        rec.first_request_skew_ms = first_request_skew_ms(&rec.agents);
        rec
    }

    /// A failed request of a serving load is data: the cell stays ok; a load whose every
    /// measured request failed, or that could not run (a row without a placement), fails it.
    #[test]
    fn a_load_cell_fails_only_when_its_load_did() {
        let load_row = |i: u32, ok: bool| {
            let mut r = request(i, 1000.0 + f64::from(i), None);
            r.stage = Stage::Load;
            r.load = Some(crate::record::LoadRequest::default());
            if !ok {
                r.record.error = Some(crate::backend::RequestError {
                    kind: crate::backend::ErrorKind::Timeout,
                    status: None,
                    message: "timed out".into(),
                });
            }
            r
        };
        let some = agent("A", vec![load_row(0, true), load_row(1, false)]);
        assert!(cell(CellKind::Single, vec![some], 10.0).ok());
        let all = agent("A", vec![load_row(0, false), load_row(1, false)]);
        let rec = cell(CellKind::Single, vec![all], 10.0);
        assert!(!rec.ok());
        assert_eq!(rec.error.as_deref(), Some("timeout: timed out"));
        let mut could_not = request(0, 1000.0, None);
        could_not.stage = Stage::Load;
        could_not.record.error = Some(crate::backend::RequestError {
            kind: crate::backend::ErrorKind::BadRequest,
            status: None,
            message: "cannot calibrate".into(),
        });
        assert!(!cell(CellKind::Single, vec![agent("A", vec![could_not])], 10.0).ok());
    }

    #[test]
    fn start_skew_is_bounded_by_100_ms_or_2_percent_of_the_wall() {
        assert_eq!(start_skew_bound_ms(1000.0), 100.0);
        assert_eq!(start_skew_bound_ms(20_000.0), 400.0);
        let a = agent(
            "A",
            vec![request(0, 1000.0, None), request(1, 1500.0, None)],
        );
        let b = agent("B", vec![request(0, 1150.0, None)]);
        let rec = cell(CellKind::Concurrent, vec![a.clone(), b.clone()], 2000.0);
        assert_eq!(rec.first_request_skew_ms, Some(150.0));
        let why = check_start_skew(&rec).expect("suspect");
        assert!(why.contains("150 ms apart (bound 100 ms)"), "{why}");
        // The same skew in a 10 s cell is within 2 %.
        assert_eq!(
            check_start_skew(&cell(
                CellKind::Concurrent,
                vec![a.clone(), b.clone()],
                10_000.0
            )),
            None
        );
        // Only concurrent cells start together.
        assert_eq!(
            check_start_skew(&cell(CellKind::Single, vec![a.clone(), b], 2000.0)),
            None
        );
        // Programs that started apart count too.
        let mut rec = cell(CellKind::Concurrent, vec![a], 2000.0);
        rec.start_skew_ms = Some(300.0);
        assert!(
            check_start_skew(&rec)
                .expect("suspect")
                .contains("programs started 300 ms")
        );
    }

    #[test]
    fn a_measured_request_that_loaded_the_model_is_a_reload() {
        let ok = cell(
            CellKind::Single,
            vec![agent("A", vec![request(0, 0.0, Some(12.0))])],
            100.0,
        );
        assert_eq!(check_reload(&ok), None);
        let mut warm = request(0, 0.0, Some(4000.0));
        warm.warmup = true;
        let rec = cell(
            CellKind::Single,
            vec![agent(
                "A",
                vec![warm, request(1, 0.0, Some(700.0)), request(2, 0.0, None)],
            )],
            100.0,
        );
        let why = check_reload(&rec).expect("suspect");
        assert!(why.contains("request 1 waited 700 ms"), "{why}");
        // A baseline and a tuned agent on one endpoint reload by design.
        let mut tuned = agent("B", vec![request(0, 0.0, Some(900.0))]);
        tuned.options.num_ctx = Some(4096);
        let shared = cell(
            CellKind::Single,
            vec![agent("A", vec![]), tuned.clone()],
            100.0,
        );
        assert_eq!(check_reload(&shared), None);
        tuned.endpoint = "gpu1".into();
        let apart = cell(CellKind::Single, vec![agent("A", vec![]), tuned], 100.0);
        assert!(check_reload(&apart).is_some());
    }

    #[test]
    fn another_digest_than_the_campaigns_is_suspect() {
        let rec = cell(CellKind::Single, vec![agent("A", vec![])], 1.0);
        assert_eq!(
            check_digest(&rec, |_| Some("sha256:aaaaaaaaaaaaaaaaaaaa")),
            None
        );
        assert_eq!(check_digest(&rec, |_| None), None);
        let why = check_digest(&rec, |_| Some("sha256:bbbbbbbbbbbbbbbbbbbb")).expect("suspect");
        assert!(
            why.contains("now serves m:1b as aaaaaaaaaaaa, the campaign measured bbbbbbbbbbbb"),
            "{why}"
        );
    }

    #[test]
    fn power_cap_and_slowdowns_are_throttling_idle_is_not() {
        let s = |gpu, r| GpuSample {
            throttle_reasons: r,
            ..GpuSample::empty(gpu)
        };
        assert_eq!(
            check_throttle(&[s(0, Some(0x1)), s(0, Some(0x3)), s(1, None)]),
            None
        );
        let why =
            check_throttle(&[s(0, Some(0x1)), s(1, Some(0x5)), s(1, Some(0x40))]).expect("suspect");
        assert_eq!(
            why,
            "GPU throttled: sw_power_cap + hw_thermal_slowdown on GPU 1 in 2 of 3 samples"
        );
        assert_eq!(throttle_names(0x1000 | 0x8), "hw_slowdown + 0x1000");
        // Sync boost and display clocks slow nothing; one capped sample in 20 is a blip.
        assert_eq!(check_throttle(&[s(0, Some(0x10 | 0x100))]), None);
        let mut blip = vec![s(0, Some(0x1)); 19];
        blip.push(s(0, Some(0x4)));
        assert_eq!(check_throttle(&blip), None);
        blip[0] = s(0, Some(0x4));
        assert!(check_throttle(&blip).is_some(), "2 of 20 is 10 %");
    }

    #[test]
    fn another_request_count_than_planned_is_suspect() {
        let rec = cell(
            CellKind::Single,
            vec![agent(
                "A",
                vec![request(0, 0.0, None), request(1, 0.0, None)],
            )],
            1.0,
        );
        assert_eq!(check_request_count(&rec, 2), None);
        let why = check_request_count(&rec, 3).expect("suspect");
        assert_eq!(
            why,
            "request count: agent A made 2 measured requests, the plan says 3"
        );
    }
}
