//! Property tests: the planner's counts, id stability and sensitivity, schedule order, and a
//! parser that never panics on arbitrary or mutated input.

use std::collections::BTreeSet;
use std::path::Path;

use chimera::plan::{NodeKind, Plan, SplitMix64};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::root;

/// Emits a JSON value as block YAML; `seed` shuffles mapping keys, `comments` sprinkles comments.
fn emit(v: &Value, seed: u64, comments: bool) -> String {
    let mut rng = SplitMix64(seed);
    let mut out = String::from("# generated manifest\n");
    emit_into(v, 0, &mut rng, comments, &mut out);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

fn emit_into(v: &Value, indent: usize, rng: &mut SplitMix64, comments: bool, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            if rng.0 != 0 {
                rng.shuffle(&mut keys);
            }
            for k in keys {
                if comments && rng.next_u64().is_multiple_of(3) {
                    out.push_str(&format!("{pad}# about {k}\n"));
                }
                let val = &map[k];
                match val {
                    Value::Object(m) if m.is_empty() => out.push_str(&format!("{pad}{k}: {{}}\n")),
                    Value::Array(a) if a.is_empty() => out.push_str(&format!("{pad}{k}: []\n")),
                    Value::Object(_) | Value::Array(_) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        emit_into(val, indent + 2, rng, comments, out);
                    }
                    s => {
                        let c = if comments && rng.next_u64().is_multiple_of(4) {
                            "  # trailing"
                        } else {
                            ""
                        };
                        out.push_str(&format!("{pad}{k}: {}{c}\n", scalar(s)));
                    }
                }
            }
        }
        Value::Array(items) => {
            for it in items {
                match it {
                    Value::Object(_) | Value::Array(_) => {
                        out.push_str(&format!("{pad}-\n"));
                        emit_into(it, indent + 2, rng, comments, out);
                    }
                    s => out.push_str(&format!("{pad}- {}\n", scalar(s))),
                }
            }
        }
        s => out.push_str(&format!("{pad}{}\n", scalar(s))),
    }
}

#[derive(Debug, Clone)]
struct Shape {
    gpus: Vec<u32>,
    ctxs: Vec<u32>,
    temps: Vec<f64>,
    multi: bool,
    reps: u32,
    exclude: Option<(u32, u32)>,
    include: bool,
    shuffle: Option<u64>,
    blocked: bool,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        proptest::sample::subsequence(vec![40u32, 60, 80, 100, 120, 999], 1..=4),
        proptest::sample::subsequence(vec![256u32, 512, 1024, 2048], 1..=3),
        proptest::sample::subsequence(vec![0.2f64, 0.6, 0.8, 1.0], 1..=3),
        any::<bool>(),
        1u32..=3,
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(any::<u64>()),
        any::<bool>(),
    )
        .prop_map(
            |(gpus, ctxs, temps, multi, reps, ex, include, shuffle, blocked)| Shape {
                exclude: (ex && (gpus.len() > 1 || ctxs.len() > 1)).then(|| (gpus[0], ctxs[0])),
                gpus,
                ctxs,
                temps,
                multi,
                reps,
                include,
                shuffle,
                blocked,
            },
        )
}

fn manifest(s: &Shape) -> Value {
    let agents = if s.multi {
        json!([
            {"id": "A", "role": "collector", "endpoint": "e1", "base_options": {"top_p": 0.9}},
            {"id": "B", "role": "insight", "endpoint": "e2", "base_options": {"top_p": 0.9}}
        ])
    } else {
        json!([{"id": "client", "role": "client", "endpoint": "e1"}])
    };
    let mut block = json!({
        "workload": "w",
        "scenario": "s",
        "model": "m",
        "apply_to": if s.multi { json!(["A", "B"]) } else { json!(["client"]) },
        "axes": {"num_gpu": s.gpus, "num_ctx": s.ctxs, "temperature": s.temps},
        "id_template": "g{num_gpu}_c{num_ctx}_t{temperature:p}",
    });
    if let Some((g, c)) = s.exclude {
        block["exclude"] = json!([{"num_gpu": g, "num_ctx": c}]);
    }
    if s.include {
        block["include"] = json!([{"num_gpu": 7, "num_ctx": 7, "temperature": 0.5}]);
    }
    json!({
        "format": 1,
        "report": "TR950",
        "title": "property test",
        "endpoints": [
            {"id": "e1", "kind": "emulator", "url": "http://127.0.0.1:11434", "resource": "local:gpu0"},
            {"id": "e2", "kind": "emulator", "url": "http://127.0.0.1:11435", "resource": "local:gpu0"}
        ],
        "models": [{"id": "m", "tag": "gemma3:270m"}],
        "workloads": [{"id": "w", "task": {"kind": "agent_workflow", "corpus": {"kind": "generated", "seed": 3},
            "analysis_template": "Analyze:\n{data_summary}", "report_template": "Report {summary}"}}],
        "scenarios": [{"id": "s", "kind": if s.multi { "chimera_homo" } else { "single" }, "agents": agents}],
        "repetitions": s.reps,
        "order": {"mode": if s.blocked { "blocked" } else { "interleaved" }, "shuffle_seed": s.shuffle},
        "request_timeout_s": 120.0,
        "matrix": [block],
    })
}

fn plan_of(text: &str) -> Plan {
    let m = chimera::manifest::from_bytes(Path::new("generated.yaml"), text.as_bytes())
        .unwrap_or_else(|e| panic!("generated manifest invalid:\n{e}\n---\n{text}"));
    chimera::plan::build_loaded(vec![m]).unwrap_or_else(|e| panic!("plan failed: {e}\n---\n{text}"))
}

fn cell_ids(p: &Plan) -> BTreeSet<String> {
    p.graph
        .node_weights()
        .filter(|n| {
            matches!(
                n.kind,
                NodeKind::Single | NodeKind::Isolated | NodeKind::Concurrent | NodeKind::Warmup
            )
        })
        .map(|n| n.id.hex())
        .collect()
}

fn cells(p: &Plan) -> usize {
    [NodeKind::Single, NodeKind::Isolated, NodeKind::Concurrent]
        .iter()
        .map(|&k| p.count(k))
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn cell_count_is_the_product_of_axes_with_include_and_exclude(s in shape()) {
        let p = plan_of(&emit(&manifest(&s), 0, false));
        let mut points = 0usize;
        for g in &s.gpus {
            for c in &s.ctxs {
                for _t in &s.temps {
                    if s.exclude != Some((*g, *c)) {
                        points += 1;
                    }
                }
            }
        }
        if s.include {
            points += 1;
        }
        let per_point = if s.multi { 3 } else { 1 };
        prop_assert_eq!(p.configs.len(), points);
        prop_assert_eq!(cells(&p), points * s.reps as usize * per_point);
        prop_assert_eq!(p.count(NodeKind::Analysis), 1);
    }

    #[test]
    fn ids_ignore_key_order_and_comments(s in shape(), seed in 1u64.., comments in any::<bool>()) {
        let v = manifest(&s);
        let a = plan_of(&emit(&v, 0, false));
        let b = plan_of(&emit(&v, seed, comments));
        prop_assert_eq!(cell_ids(&a), cell_ids(&b));
    }

    #[test]
    fn every_key_field_changes_every_cell_id(s in shape(), which in 0usize..7) {
        let v = manifest(&s);
        let mut w = v.clone();
        match which {
            0 => w["models"][0]["tag"] = json!("gemma3:1b"),
            1 => w["workloads"][0]["task"]["analysis_template"] = json!("Analyse:\n{data_summary}"),
            2 => w["endpoints"][0]["url"] = json!("http://127.0.0.1:21434"),
            3 => w["workloads"][0]["stream"] = json!(false),
            4 => w["between_runs"] = json!({"sleep_ms": 2000}),
            5 => w["workloads"][0]["task"]["corpus"]["seed"] = json!(4),
            _ => w["matrix"][0]["options"] = json!({"top_k": 40}),
        }
        let a = cell_ids(&plan_of(&emit(&v, 0, false)));
        let b = cell_ids(&plan_of(&emit(&w, 0, false)));
        let cells_a: BTreeSet<_> = a.iter().collect();
        // Warm-ups depend only on endpoint, model and load options; cells on everything.
        let pa = plan_of(&emit(&v, 0, false));
        let pb = plan_of(&emit(&w, 0, false));
        let ca: BTreeSet<String> = pa.graph.node_weights().filter(|n| n.config.is_some()).map(|n| n.id.hex()).collect();
        let cb: BTreeSet<String> = pb.graph.node_weights().filter(|n| n.config.is_some()).map(|n| n.id.hex()).collect();
        prop_assert!(ca.is_disjoint(&cb), "mutation {} left some cell ids unchanged", which);
        prop_assert!(!cells_a.is_empty() && a != b);
    }

    #[test]
    fn provenance_fields_change_no_id(s in shape(), which in 0usize..5) {
        let v = manifest(&s);
        let mut w = v.clone();
        match which {
            0 => w["title"] = json!("another title"),
            1 => w["request_timeout_s"] = json!(30.0),
            2 => w["endpoints"][0]["resource"] = json!("host-b:gpu3"),
            3 => w["retry"] = json!({"retries": 9}),
            _ => w["telemetry"] = json!({"source": "none"}),
        }
        prop_assert_eq!(cell_ids(&plan_of(&emit(&v, 0, false))), cell_ids(&plan_of(&emit(&w, 0, false))));
    }

    /// With a `server` axis on managed endpoints, the schedule changes each endpoint's
    /// settings once per distinct setting, not once per cell.
    #[test]
    fn server_settings_change_once_per_distinct_setting(s in shape(), k in 1usize..4) {
        let mut v = manifest(&s);
        for e in v["endpoints"].as_array_mut().expect("endpoints") {
            e["managed"] = json!({"command": ["emu", "--np", "{server.np}"], "defaults": {"np": 0}});
        }
        let block = &mut v["matrix"][0];
        block["axes"]["server"] = json!((1..=k).map(|i| json!({"np": i})).collect::<Vec<_>>());
        block.as_object_mut().expect("block").remove("id_template");
        let p = plan_of(&emit(&v, 0, false));
        prop_assert!(chimera::plan::is_topological(&p));
        for url in ["http://127.0.0.1:11434", "http://127.0.0.1:11435"] {
            let mut seq: Vec<String> = Vec::new();
            for &ni in &p.order {
                let n = &p.graph[ni];
                let Some(c) = p.config_of(n) else { continue };
                let spec = &p.reports[n.report as usize].manifest.spec;
                let agents: Vec<&chimera::plan::ResolvedAgent> = match n.kind {
                    NodeKind::Isolated => c.agents.iter().skip(n.agent as usize).take(1).collect(),
                    _ => c.agents.iter().collect(),
                };
                if agents.iter().any(|a| spec.endpoints[a.endpoint].url == url) {
                    seq.push(c.server.to_string());
                }
            }
            let distinct: BTreeSet<&String> = seq.iter().collect();
            let changes = seq.windows(2).filter(|w| w[0] != w[1]).count() + usize::from(!seq.is_empty());
            prop_assert_eq!(changes, distinct.len(), "{}: {:?}", url, seq);
        }
    }

    #[test]
    fn every_dependency_precedes_its_dependents(s in shape()) {
        let p = plan_of(&emit(&manifest(&s), 0, false));
        prop_assert!(chimera::plan::is_topological(&p));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(m) = chimera::manifest::from_bytes(Path::new("fuzz.yaml"), &bytes) {
            let _ = chimera::plan::build_loaded(vec![m]);
        }
    }

    #[test]
    fn mutated_real_manifests_never_panic(
        file in 0usize..9,
        edits in proptest::collection::vec((any::<u16>(), any::<u16>(), 0u8..5, any::<u8>()), 1..6),
    ) {
        let names = ["tr108", "tr109", "tr110", "tr111", "tr112", "tr113", "tr114", "tr115", "tr116"];
        let path = root().join("experiments").join(format!("{}.yaml", names[file]));
        let mut bytes = std::fs::read(&path).expect("read manifest");
        for (a, b, op, byte) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = a as usize % bytes.len();
            let j = (i + (b as usize % 64)).min(bytes.len());
            match op {
                0 => { bytes.drain(i..j); }
                1 => bytes.insert(i, byte),
                2 => bytes[i] = byte,
                3 => { let chunk: Vec<u8> = bytes[i..j].to_vec(); bytes.splice(i..i, chunk); }
                _ => { let k = b as usize % bytes.len(); bytes.swap(i, k); }
            }
        }
        if let Ok(m) = chimera::manifest::from_bytes(&path, &bytes) {
            let _ = chimera::plan::build_loaded(vec![m]);
        }
    }
}

/// Standard normal draws from a seeded SplitMix64 (Box–Muller).
fn normals(rng: &mut SplitMix64, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    let mut unit = || ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    (0..n)
        .map(|_| {
            let (u, v) = (unit(), unit());
            mean + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect()
}

// The effect statistics: CIs that cover at about their nominal rate, and power lines that
// behave. A fixed proptest seed and seeded samples make every run the same; the coverage
// tolerance (±0.035 around 0.95 over 1,000 samples, about 5 binomial SDs) is wide.
proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        rng_seed: proptest::test_runner::RngSeed::Fixed(16),
        ..ProptestConfig::default()
    })]

    #[test]
    fn effect_cis_cover_the_true_difference_at_about_95_percent(
        n in 3usize..12,
        m in 3usize..12,
        mean in -1e3..1e3f64,
        sd in 0.01..100.0f64,
        ratio in 0.25..4.0f64,
        shift in -50.0..50.0f64,
        seed in any::<u64>(),
    ) {
        use chimera::stats::effect::one_sample_t;
        let mut rng = SplitMix64(seed);
        let (mut one, mut two) = (0u32, 0u32);
        let draws = 1000;
        for _ in 0..draws {
            let a = normals(&mut rng, n, mean, sd);
            let b = normals(&mut rng, m, mean + shift, sd * ratio);
            let (lo, hi) = one_sample_t(&a, mean).expect("a one-sample t").diff_ci95;
            one += u32::from(lo <= 0.0 && 0.0 <= hi);
            let (lo, hi) = chimera::stats::welch(&a, &b).expect("a Welch t").diff_ci95;
            two += u32::from(lo <= shift && shift <= hi);
        }
        let (one, two) = (f64::from(one) / draws as f64, f64::from(two) / draws as f64);
        prop_assert!((0.915..=0.985).contains(&one), "one-sample coverage {}", one);
        prop_assert!((0.915..=0.985).contains(&two), "Welch coverage {}", two);
    }

    #[test]
    fn runs_needed_shrink_with_the_variance_and_grow_with_precision(
        sd in 1e-6..1e4f64,
        shrink in 0.0..1.0f64,
        other in 0.0..1e4f64,
        delta in 1e-3..1e3f64,
    ) {
        use chimera::stats::effect::{
            ALPHA, POWER, n_one_sample, n_one_sample_normal, n_two_sample, n_two_sample_normal,
        };
        let n = n_one_sample(sd, delta, ALPHA, POWER).expect("n");
        let smaller = n_one_sample(sd * shrink, delta, ALPHA, POWER).expect("n");
        prop_assert!(smaller <= n, "sd {} needs {}, sd {} needs {}", sd, n, sd * shrink, smaller);
        // A smaller difference to detect needs at least as many runs.
        let finer = n_one_sample(sd, delta * shrink.max(1e-3), ALPHA, POWER).expect("n");
        prop_assert!(finer >= n);
        // The t answer is never below the normal approximation, and at least 2.
        let z = n_one_sample_normal(sd, delta, ALPHA, POWER).expect("z");
        prop_assert!(n as f64 >= z && n >= 2);
        // Two groups: never below their normal approximation; fewer runs for less spread.
        let two = n_two_sample(sd, other, delta, ALPHA, POWER).expect("n");
        let z2 = n_two_sample_normal(sd, other, delta, ALPHA, POWER).expect("z");
        prop_assert!(two as f64 >= z2, "{} < {}", two, z2);
        let two_less = n_two_sample(sd * shrink, other * shrink, delta, ALPHA, POWER).expect("n");
        prop_assert!(two_less <= two);
        // A huge effect (20 SDs and more) needs the minimum of 2 (or 3 per group).
        prop_assert_eq!(n_one_sample(sd, 20.0 * sd + delta, ALPHA, POWER), Some(2));
        prop_assert!(n_two_sample(sd, sd, 20.0 * sd + delta, ALPHA, POWER).expect("n") <= 3);
    }
}
