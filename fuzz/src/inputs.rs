//! The fuzz targets' inputs: how the fuzzer's bytes become the arguments of the
//! `chimera::fuzzing` entry points. Shared, through `#[path]`, by the targets in
//! `fuzz/fuzz_targets/` and by the stable regression test `tests/fuzz_regressions.rs`, so a
//! seed or a crash file replays exactly as the fuzzer ran it.
//!
//! Structured inputs derive `arbitrary::Arbitrary` and are decoded with
//! `arbitrary_take_rest` (what `libfuzzer_sys::fuzz_target!` does): fixed-size header fields
//! first (integers little-endian, booleans from the low bit of one byte), the payload bytes
//! last, so a seed is its header followed by a real file.

use arbitrary::{Arbitrary, Unstructured};
use chimera::fuzzing::{self, ImportLayout, StreamMode};
use chimera::manifest::{self, ManifestSpec};

/// A target's entry point: the fuzzer's bytes in, a panic when an invariant breaks.
pub type Entry = fn(&[u8]);

/// Every fuzz target, by name, with its entry point.
pub const TARGETS: &[(&str, Entry)] = &[
    ("manifest", manifest),
    ("manifest_spec", manifest_spec),
    ("ollama_stream", ollama_stream),
    ("openai_stream", openai_stream),
    ("emulator_http", emulator_http),
    ("import", import),
    ("journal", journal),
];

/// `manifest`: the bytes are a manifest file.
pub fn manifest(data: &[u8]) {
    let _ = fuzzing::manifest(data);
}

/// `emulator_http`: the bytes are what a client sent on one connection.
pub fn emulator_http(data: &[u8]) {
    let _ = fuzzing::http_requests(data);
}

/// `journal`: the bytes are a campaign's `journal.jsonl`.
pub fn journal(data: &[u8]) {
    let _ = fuzzing::journal(data);
}

/// A response body and how it is read: 11 header bytes, then the body.
#[derive(Arbitrary, Debug)]
pub struct StreamInput<'a> {
    /// Bit 0: chat API (else generate); bit 1: not streamed (one JSON object).
    pub flags: u8,
    /// `max_response_bytes`; 0 means 1 MiB.
    pub cap: u16,
    /// How the body is cut into pieces ([`chimera::fuzzing::chunks`]); 0 = one piece.
    pub split: u64,
    /// The response body.
    pub body: &'a [u8],
}

impl StreamInput<'_> {
    /// The parser settings the header selects.
    pub fn mode(&self) -> StreamMode {
        StreamMode {
            chat: self.flags & 1 == 1,
            stream: self.flags & 2 == 0,
            cap: if self.cap == 0 {
                1 << 20
            } else {
                usize::from(self.cap)
            },
        }
    }

    /// Decodes `data` as the fuzz target does.
    pub fn decode(data: &[u8]) -> Option<StreamInput<'_>> {
        StreamInput::arbitrary_take_rest(Unstructured::new(data)).ok()
    }
}

/// `ollama_stream`: an Ollama NDJSON reply.
pub fn ollama_stream(data: &[u8]) {
    if let Some(i) = StreamInput::decode(data) {
        let _ = fuzzing::ollama_stream(i.mode(), i.split, i.body);
    }
}

/// `openai_stream`: an OpenAI SSE (or one-object) reply.
pub fn openai_stream(data: &[u8]) {
    if let Some(i) = StreamInput::decode(data) {
        let _ = fuzzing::openai_stream(i.mode(), i.split, i.body);
    }
}

/// A raw-data tree of one or two files: 5 header bytes, then the files' bytes.
#[derive(Arbitrary, Debug)]
pub struct ImportInput<'a> {
    /// The layout, [`ImportLayout::ALL`]`[layout % 5]`.
    pub layout: u8,
    /// The first file's slot ([`ImportLayout::slots`], modulo their number).
    pub first: u8,
    /// The second file's slot; 255: no second file.
    pub second: u8,
    /// Where the payload splits into the two files (clamped to its length).
    pub split: u16,
    /// The files' bytes.
    pub payload: &'a [u8],
}

impl ImportInput<'_> {
    /// The layout the header selects.
    pub fn layout(&self) -> ImportLayout {
        ImportLayout::ALL[usize::from(self.layout) % ImportLayout::ALL.len()]
    }

    /// The files the header and payload describe: (slot, bytes).
    pub fn files(&self) -> Vec<(usize, &[u8])> {
        if self.second == 255 {
            return vec![(usize::from(self.first), self.payload)];
        }
        let at = usize::from(self.split).min(self.payload.len());
        let (a, b) = self.payload.split_at(at);
        vec![(usize::from(self.first), a), (usize::from(self.second), b)]
    }

    /// Decodes `data` as the fuzz target does.
    pub fn decode(data: &[u8]) -> Option<ImportInput<'_>> {
        ImportInput::arbitrary_take_rest(Unstructured::new(data)).ok()
    }
}

/// `import`: one or two raw-data files of one layout.
pub fn import(data: &[u8]) {
    if let Some(i) = ImportInput::decode(data) {
        let _ = fuzzing::import(i.layout(), &i.files());
    }
}

/// The manifests structured inputs start from (valid, and small enough to plan quickly).
const BASES: [&str; 3] = [
    include_str!("../../experiments/demo-tr114.yaml"),
    include_str!("../../experiments/tr109.yaml"),
    include_str!("../../experiments/tr111.yaml"),
];

fn base(i: u8) -> ManifestSpec {
    use std::sync::OnceLock;
    static SPECS: OnceLock<Vec<ManifestSpec>> = OnceLock::new();
    let specs = SPECS.get_or_init(|| {
        BASES
            .iter()
            .map(|text| {
                manifest::parse(std::path::Path::new(fuzzing::MANIFEST_PATH), text)
                    .unwrap_or_else(|d| panic!("a base manifest does not parse: {d}"))
            })
            .collect()
    });
    specs[usize::from(i) % specs.len()].clone()
}

/// A typed manifest: a shipped one with edits applied. Decoded with `arbitrary`: the base
/// index, then edits until the bytes run out.
#[derive(Arbitrary, Debug)]
pub struct SpecInput {
    /// Which of [`BASES`].
    pub base: u8,
    /// What to change, in order.
    pub edits: Vec<Edit>,
}

/// One change to a manifest. Indices pick an element modulo the list's length; ids are
/// drawn from the manifest's own (so references mostly resolve) or are a wrong one.
#[derive(Arbitrary, Debug)]
pub enum Edit {
    /// Sets the manifest's repetitions.
    Repetitions(u8),
    /// Sets (or clears) a block's repetitions.
    BlockRepetitions(u8, Option<u8>),
    /// Sets one axis of a block to these values.
    Axis {
        /// Block.
        block: u8,
        /// Axis (one of the ten, modulo).
        axis: u8,
        /// Values (numbers for numeric axes, indices for ids and enums).
        values: Vec<u16>,
    },
    /// Adds a point to a block's `exclude` (or `include`).
    Point {
        /// Block.
        block: u8,
        /// Include instead of exclude.
        include: bool,
        /// Axis.
        axis: u8,
        /// Value.
        value: u16,
    },
    /// Sets a block's `apply_to` from agent ids.
    ApplyTo(u8, Vec<u8>),
    /// Sets a block's id template.
    IdTemplate(u8, u8),
    /// Sets a block's option.
    BlockOption(u8, u8, u16),
    /// Removes an element of a list (endpoints, models, workloads, scenarios, blocks,
    /// agents of a scenario, explicit configurations).
    Remove(u8, u8),
    /// Duplicates an element of a list (same id twice).
    Duplicate(u8, u8),
    /// Points a scenario's agent at an endpoint.
    AgentEndpoint(u8, u8, u8),
    /// Sets a scenario's kind.
    ScenarioKind(u8, u8),
    /// Sets an agent's role.
    AgentRole(u8, u8, u8),
    /// Sets an endpoint's URL.
    Url(u8, u8),
    /// Sets the report id.
    Report(u8),
    /// Adds a report to `depends_on` or `compare_with`.
    Dependency(bool, u8),
    /// Sets the per-request timeout (tenths of a second).
    Timeout(u16),
    /// Sets the warm-up requests.
    Warmup(bool, u8),
    /// Sets the run order.
    Order(bool, Option<u64>),
    /// Renames an id (of the list, element) to a pool name.
    Rename(u8, u8, u8),
}

const REPORTS: [&str; 8] = [
    "TR114_demo",
    "TR109",
    "TR111_v2",
    "TR999",
    "tr114",
    "TR114_v2_x",
    "TR1",
    "TR123_v0_tag",
];
const URLS: [&str; 8] = [
    "http://127.0.0.1:11434",
    "http://localhost:1",
    "https://127.0.0.1:11434",
    "http://127.0.0.1:11434/api",
    "http://127.0.0.1:99999",
    "127.0.0.1:11434",
    "http://[::1]:8080",
    "",
];
const TEMPLATES: [&str; 8] = [
    "g{num_gpu}_c{num_ctx}_t{temperature:p}",
    "{scenario}_{model}",
    "x",
    "{unknown}",
    "{num_gpu",
    "t{temperature}_k{top_k}_p{top_p:p}_r{repeat_penalty}",
    "{runtime}-{language}",
    "",
];
const NAMES: [&str; 6] = ["a", "b", "client", "ollama", "single", "é-x"];

fn pick<T>(v: &mut [T], i: u8) -> Option<&mut T> {
    let n = v.len();
    if n == 0 {
        None
    } else {
        v.get_mut(usize::from(i) % n)
    }
}

fn remove<T: Clone>(v: &mut Vec<T>, i: u8, dup: bool) {
    if v.is_empty() {
        return;
    }
    let k = usize::from(i) % v.len();
    if dup {
        let e = v[k].clone();
        v.push(e);
    } else {
        v.remove(k);
    }
}

impl Edit {
    fn apply(&self, s: &mut ManifestSpec) {
        use manifest::{Language, Role, Runtime, ScenarioKind};
        let roles = [
            Role::Collector,
            Role::Insight,
            Role::Baseline,
            Role::Chimera,
            Role::Client,
        ];
        let kinds = [
            ScenarioKind::Single,
            ScenarioKind::BaselineVsChimera,
            ScenarioKind::ChimeraHetero,
            ScenarioKind::ChimeraHomo,
        ];
        let runtimes = [
            Runtime::TokioDefault,
            Runtime::TokioLocalset,
            Runtime::AsyncStd,
            Runtime::Smol,
            Runtime::Smol1kb,
        ];
        let model_ids: Vec<String> = s.models.iter().map(|m| m.id.clone()).collect();
        let scenario_ids: Vec<String> = s.scenarios.iter().map(|m| m.id.clone()).collect();
        let endpoint_ids: Vec<String> = s.endpoints.iter().map(|m| m.id.clone()).collect();
        let agent_ids: Vec<String> = s
            .scenarios
            .iter()
            .flat_map(|sc| sc.agents.iter().map(|a| a.id.clone()))
            .collect();
        let id_of = |ids: &[String], v: u16| -> String {
            match ids.get(usize::from(v) % (ids.len() + 1)) {
                Some(id) => id.clone(),
                None => format!("nope{v}"),
            }
        };
        match self {
            Edit::Repetitions(n) => s.repetitions = u32::from(*n),
            Edit::BlockRepetitions(b, n) => {
                if let Some(b) = pick(&mut s.matrix, *b) {
                    b.repetitions = n.map(u32::from);
                }
            }
            Edit::Axis {
                block,
                axis,
                values,
            } => {
                let Some(b) = pick(&mut s.matrix, *block) else {
                    return;
                };
                let a = &mut b.axes;
                let v = values;
                match axis % 10 {
                    0 => a.model = Some(v.iter().map(|x| id_of(&model_ids, *x)).collect()),
                    1 => a.scenario = Some(v.iter().map(|x| id_of(&scenario_ids, *x)).collect()),
                    2 => {
                        a.runtime = Some(
                            v.iter()
                                .map(|x| runtimes[usize::from(*x) % runtimes.len()])
                                .collect(),
                        );
                    }
                    3 => {
                        a.language = Some(
                            v.iter()
                                .map(|x| {
                                    if x % 2 == 0 {
                                        Language::Rust
                                    } else {
                                        Language::Python
                                    }
                                })
                                .collect(),
                        );
                    }
                    4 => a.num_gpu = Some(v.iter().map(|x| u32::from(*x)).collect()),
                    5 => a.num_ctx = Some(v.iter().map(|x| u32::from(*x)).collect()),
                    6 => a.temperature = Some(v.iter().map(|x| f64::from(*x) / 100.0).collect()),
                    7 => a.top_p = Some(v.iter().map(|x| f64::from(*x) / 1000.0).collect()),
                    8 => a.top_k = Some(v.iter().map(|x| u32::from(*x)).collect()),
                    _ => {
                        a.repeat_penalty = Some(v.iter().map(|x| f64::from(*x) / 100.0).collect());
                    }
                }
            }
            Edit::Point {
                block,
                include,
                axis,
                value,
            } => {
                let Some(b) = pick(&mut s.matrix, *block) else {
                    return;
                };
                let mut p = manifest::AxisPoint::default();
                let x = *value;
                match axis % 6 {
                    0 => p.model = Some(id_of(&model_ids, x)),
                    1 => p.scenario = Some(id_of(&scenario_ids, x)),
                    2 => p.num_gpu = Some(u32::from(x)),
                    3 => p.num_ctx = Some(u32::from(x)),
                    4 => p.temperature = Some(f64::from(x) / 100.0),
                    _ => p.runtime = Some(runtimes[usize::from(x) % runtimes.len()]),
                }
                if *include {
                    b.include.push(p);
                } else {
                    b.exclude.push(p);
                }
            }
            Edit::ApplyTo(b, agents) => {
                if let Some(b) = pick(&mut s.matrix, *b) {
                    b.apply_to = agents
                        .iter()
                        .map(|a| id_of(&agent_ids, u16::from(*a)))
                        .collect();
                }
            }
            Edit::IdTemplate(b, t) => {
                if let Some(b) = pick(&mut s.matrix, *b) {
                    b.id_template = Some(TEMPLATES[usize::from(*t) % TEMPLATES.len()].to_owned());
                }
            }
            Edit::BlockOption(b, which, v) => {
                if let Some(b) = pick(&mut s.matrix, *b) {
                    let o = &mut b.options;
                    match which % 8 {
                        0 => o.num_gpu = Some(u32::from(*v)),
                        1 => o.num_ctx = Some(u32::from(*v)),
                        2 => o.temperature = Some(f64::from(*v) / 100.0),
                        3 => o.top_p = Some(f64::from(*v) / 1000.0),
                        4 => o.top_k = Some(u32::from(*v)),
                        5 => o.repeat_penalty = Some(f64::from(*v) / 100.0),
                        6 => o.num_predict = Some(i64::from(*v) - 2),
                        _ => o.seed = Some(u64::from(*v)),
                    }
                }
            }
            Edit::Remove(list, i) | Edit::Duplicate(list, i) => {
                let dup = matches!(self, Edit::Duplicate(..));
                match list % 7 {
                    0 => remove(&mut s.endpoints, *i, dup),
                    1 => remove(&mut s.models, *i, dup),
                    2 => remove(&mut s.workloads, *i, dup),
                    3 => remove(&mut s.scenarios, *i, dup),
                    4 => remove(&mut s.matrix, *i, dup),
                    5 => {
                        if let Some(sc) = pick(&mut s.scenarios, *i) {
                            remove(&mut sc.agents, *i >> 4, dup);
                        }
                    }
                    _ => {
                        if let Some(b) = pick(&mut s.matrix, *i) {
                            remove(&mut b.configurations, *i >> 4, dup);
                        }
                    }
                }
            }
            Edit::AgentEndpoint(sc, a, e) => {
                if let Some(sc) = pick(&mut s.scenarios, *sc)
                    && let Some(a) = pick(&mut sc.agents, *a)
                {
                    a.endpoint = id_of(&endpoint_ids, u16::from(*e));
                }
            }
            Edit::ScenarioKind(sc, k) => {
                if let Some(sc) = pick(&mut s.scenarios, *sc) {
                    sc.kind = kinds[usize::from(*k) % kinds.len()];
                }
            }
            Edit::AgentRole(sc, a, r) => {
                if let Some(sc) = pick(&mut s.scenarios, *sc)
                    && let Some(a) = pick(&mut sc.agents, *a)
                {
                    a.role = roles[usize::from(*r) % roles.len()];
                }
            }
            Edit::Url(e, u) => {
                if let Some(e) = pick(&mut s.endpoints, *e) {
                    e.url = URLS[usize::from(*u) % URLS.len()].to_owned();
                }
            }
            Edit::Report(r) => s.report = REPORTS[usize::from(*r) % REPORTS.len()].to_owned(),
            Edit::Dependency(dep, r) => {
                let r = REPORTS[usize::from(*r) % REPORTS.len()].to_owned();
                if *dep {
                    s.depends_on.push(r);
                } else {
                    s.compare_with.push(r);
                }
            }
            Edit::Timeout(t) => s.request_timeout_s = f64::from(*t) / 10.0,
            Edit::Warmup(none, n) => {
                s.warmup.policy = if *none {
                    manifest::WarmupMode::None
                } else {
                    manifest::WarmupMode::PerOptionSet
                };
                s.warmup.requests = u32::from(*n);
            }
            Edit::Order(blocked, seed) => {
                s.order.mode = if *blocked {
                    manifest::OrderMode::Blocked
                } else {
                    manifest::OrderMode::Interleaved
                };
                s.order.shuffle_seed = *seed;
            }
            Edit::Rename(list, i, n) => {
                let id = match list % 5 {
                    0 => pick(&mut s.endpoints, *i).map(|e| &mut e.id),
                    1 => pick(&mut s.models, *i).map(|e| &mut e.id),
                    2 => pick(&mut s.workloads, *i).map(|e| &mut e.id),
                    3 => pick(&mut s.scenarios, *i).map(|e| &mut e.id),
                    _ => pick(&mut s.scenarios, *i)
                        .and_then(|sc| pick(&mut sc.agents, *i >> 4))
                        .map(|a| &mut a.id),
                };
                if let Some(id) = id {
                    *id = NAMES[usize::from(*n) % NAMES.len()].to_owned();
                }
            }
        }
    }
}

impl SpecInput {
    /// The manifest this input describes.
    pub fn spec(&self) -> ManifestSpec {
        let mut s = base(self.base);
        for e in &self.edits {
            e.apply(&mut s);
        }
        s
    }

    /// Decodes `data` as the fuzz target does.
    pub fn decode(data: &[u8]) -> Option<SpecInput> {
        SpecInput::arbitrary_take_rest(Unstructured::new(data)).ok()
    }
}

/// `manifest_spec`: a shipped manifest with structured edits, written out and read back.
pub fn manifest_spec(data: &[u8]) {
    if let Some(i) = SpecInput::decode(data) {
        let _ = fuzzing::manifest_spec(&i.spec());
    }
}
