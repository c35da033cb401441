//! Shards: a deterministic split of a plan's cells into `N` parts that run on different
//! machines (`chimera run --shard I/N`, one Slurm array task or Kubernetes pod each).
//!
//! **What stays together.** A *unit* is every cell whose comparison must share hardware: a
//! concurrent cell and the isolated baselines it is compared with (the DAG links them), or a
//! single cell on its own. With [`ShardBy::Configuration`] a unit is a whole configuration:
//! all its repetitions too. The warm-ups a unit's cells depend on run in every shard that
//! holds such a cell (a warm-up warms the shard's own servers; it is committed once, by the
//! first shard that finishes it).
//!
//! **Balance.** Units are weighed by their expected work (the estimated LLM requests of their
//! cells) and placed by longest-processing-time first: heaviest unit first (ties: the unit
//! with the smallest cell id), each onto the lightest shard so far (ties: the lower shard).
//! The split depends only on the cells (whose ids are content addresses), not on the order of
//! the manifests or the schedule, so every machine computes the same one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;

use petgraph::graph::NodeIndex;
use sha2::Digest as _;

use super::{NodeKind, Plan};

/// Which shard this process runs: `index` from 0 to `count − 1` (Slurm's array task id,
/// Kubernetes' completion index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardSpec {
    /// This shard, from 0.
    pub index: u32,
    /// Shards in all.
    pub count: u32,
}

impl ShardSpec {
    /// The directory name of the shard inside a campaign: `<I>-of-<N>`.
    pub fn dir_name(&self) -> String {
        format!("{}-of-{}", self.index, self.count)
    }

    /// Parses a directory name written by [`ShardSpec::dir_name`].
    pub fn from_dir_name(s: &str) -> Option<ShardSpec> {
        let (i, n) = s.split_once("-of-")?;
        let spec = ShardSpec {
            index: i.parse().ok()?,
            count: n.parse().ok()?,
        };
        (spec.index < spec.count).then_some(spec)
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The most shards a plan is split into.
pub const MAX_SHARDS: u32 = 10_000;

impl FromStr for ShardSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<ShardSpec, String> {
        let bad = || {
            format!(
                "`{s}` is not a shard: write I/N, I from 0 to N-1 (e.g. `--shard 0/4`; Slurm: \
                 `--shard $SLURM_ARRAY_TASK_ID/N`)"
            )
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "`{s}`: the shard count must be from 1 to {MAX_SHARDS}"
            ));
        }
        if index >= count {
            return Err(format!(
                "`{s}`: shard {index} does not exist; shards of {count} are numbered 0 to {}",
                count - 1
            ));
        }
        Ok(ShardSpec { index, count })
    }
}

/// What a unit of the split is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ShardBy {
    /// A concurrent cell with its isolated baselines (one repetition of a configuration), or
    /// one single cell: repetitions spread over the shards.
    #[default]
    Comparison,
    /// A whole configuration: every repetition on the same machine.
    Configuration,
}

impl ShardBy {
    /// Lower-case name, as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            ShardBy::Comparison => "comparison",
            ShardBy::Configuration => "configuration",
        }
    }
}

/// A plan split into shards.
#[derive(Debug, Clone)]
pub struct Split {
    /// Shards in all.
    pub count: u32,
    /// Per node index: the shard of each measured cell; `NONE` for warm-ups, analyses and
    /// reports (warm-ups go wherever a dependent goes).
    shard_of: Vec<u32>,
    /// Expected work (estimated LLM requests) per shard.
    pub work: Vec<u64>,
    fingerprint: String,
}

const NONE: u32 = u32::MAX;

fn measured(kind: NodeKind) -> bool {
    matches!(
        kind,
        NodeKind::Single | NodeKind::Isolated | NodeKind::Concurrent
    )
}

/// Union-find with path halving over node indices.
struct Units(Vec<u32>);

impl Units {
    fn find(&mut self, mut x: u32) -> u32 {
        while self.0[x as usize] != x {
            let up = self.0[self.0[x as usize] as usize];
            self.0[x as usize] = up;
            x = up;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The lower index becomes the root: the unit is named by its first node.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.0[hi as usize] = lo;
        }
    }
}

/// Splits `plan` into `count` shards (see the module docs).
pub fn split(plan: &Plan, count: u32, by: ShardBy) -> Split {
    let n = plan.graph.node_count();
    let count = count.max(1);
    let mut units = Units((0..n as u32).collect());
    let mut first_of_config: Vec<u32> = vec![NONE; plan.configs.len()];
    for ni in plan.graph.node_indices() {
        let node = &plan.graph[ni];
        if !measured(node.kind) {
            continue;
        }
        for d in plan.deps(ni) {
            if measured(plan.graph[d].kind) {
                units.union(ni.index() as u32, d.index() as u32);
            }
        }
        if by == ShardBy::Configuration
            && let Some(c) = node.config
        {
            let first = &mut first_of_config[c as usize];
            if *first == NONE {
                *first = ni.index() as u32;
            } else {
                units.union(ni.index() as u32, *first);
            }
        }
    }
    // Units with their expected work and their smallest cell id.
    let mut unit_slot: Vec<u32> = vec![NONE; n];
    let mut unit_work: Vec<u64> = Vec::new();
    let mut unit_min: Vec<super::NodeId> = Vec::new();
    let mut root_of: Vec<u32> = vec![NONE; n];
    for ni in plan.graph.node_indices() {
        let node = &plan.graph[ni];
        if !measured(node.kind) {
            continue;
        }
        let root = units.find(ni.index() as u32) as usize;
        root_of[ni.index()] = root as u32;
        if unit_slot[root] == NONE {
            unit_slot[root] = unit_work.len() as u32;
            unit_work.push(0);
            unit_min.push(node.id);
        }
        let slot = unit_slot[root] as usize;
        // Every cell counts at least one unit of work, so empty cells still spread.
        unit_work[slot] += plan.requests(node).max(1);
        unit_min[slot] = unit_min[slot].min(node.id);
    }
    // Longest processing time first; ties by the smallest cell id, so that only the cells'
    // content decides (not the order the manifests were given in).
    let mut by_weight: Vec<(Reverse<u64>, super::NodeId, u32)> = (0..unit_work.len())
        .map(|u| (Reverse(unit_work[u]), unit_min[u], u as u32))
        .collect();
    by_weight.sort_unstable();
    let mut shard_of_unit = vec![0u32; unit_work.len()];
    let mut work = vec![0u64; count as usize];
    let mut heap: BinaryHeap<Reverse<(u64, u32)>> = (0..count).map(|s| Reverse((0, s))).collect();
    // The fingerprint: every unit (its smallest cell, its work) and its shard, in this order.
    let mut h = sha2::Sha256::new();
    h.update(count.to_le_bytes());
    for (Reverse(w), min, u) in by_weight {
        let Some(Reverse((load, s))) = heap.pop() else {
            break;
        };
        shard_of_unit[u as usize] = s;
        work[s as usize] = load + w;
        heap.push(Reverse((load + w, s)));
        h.update(min.0);
        h.update(w.to_le_bytes());
        h.update(s.to_le_bytes());
    }
    let fingerprint = h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let shard_of = root_of
        .iter()
        .map(|&r| {
            if r == NONE {
                NONE
            } else {
                shard_of_unit[unit_slot[r as usize] as usize]
            }
        })
        .collect();
    Split {
        count,
        shard_of,
        work,
        fingerprint,
    }
}

impl Split {
    /// The shard of a measured cell; `None` for warm-ups, analyses and reports.
    pub fn shard_of(&self, ni: NodeIndex) -> Option<u32> {
        self.shard_of
            .get(ni.index())
            .copied()
            .filter(|&s| s != NONE)
    }

    /// The nodes shard `index` runs, in schedule order: its measured cells and the warm-ups
    /// they depend on.
    pub fn nodes(&self, plan: &Plan, index: u32) -> Vec<NodeIndex> {
        let mut warm = vec![false; plan.graph.node_count()];
        for ni in plan.graph.node_indices() {
            if self.shard_of(ni) == Some(index) {
                for d in plan.deps(ni) {
                    if plan.graph[d].kind == NodeKind::Warmup {
                        warm[d.index()] = true;
                    }
                }
            }
        }
        plan.order
            .iter()
            .copied()
            .filter(|&ni| warm[ni.index()] || self.shard_of(ni) == Some(index))
            .collect()
    }

    /// A fingerprint of the assignment (16 hex digits): shards of one campaign must agree on
    /// it, or some cells would run twice and others never.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Largest shard's expected work over the mean (1.0 = perfectly even).
    pub fn balance(&self) -> f64 {
        let total: u64 = self.work.iter().sum();
        if total == 0 {
            return 1.0;
        }
        let mean = total as f64 / self.work.len() as f64;
        self.work.iter().copied().max().unwrap_or(0) as f64 / mean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(path: &str) -> Plan {
        crate::plan::build(&[std::path::PathBuf::from(path)]).expect("plans")
    }

    #[test]
    fn shard_specs_parse_and_refuse_with_the_fix() {
        assert_eq!(
            "3/8".parse::<ShardSpec>(),
            Ok(ShardSpec { index: 3, count: 8 })
        );
        assert!(
            "8/8"
                .parse::<ShardSpec>()
                .expect_err("refused")
                .contains("numbered 0 to 7")
        );
        assert!(
            "0/0"
                .parse::<ShardSpec>()
                .expect_err("refused")
                .contains("from 1")
        );
        assert!(
            "x".parse::<ShardSpec>()
                .expect_err("refused")
                .contains("I/N")
        );
        let s = ShardSpec { index: 2, count: 5 };
        assert_eq!(ShardSpec::from_dir_name(&s.dir_name()), Some(s));
        assert_eq!(ShardSpec::from_dir_name("5-of-5"), None);
    }

    #[test]
    fn every_cell_goes_to_one_shard_with_its_baselines_and_warmups() {
        let plan = plan_of("experiments/tr114.yaml");
        for by in [ShardBy::Comparison, ShardBy::Configuration] {
            for count in [1, 3, 4, 8, 500] {
                let s = split(&plan, count, by);
                let mut seen = vec![0u32; plan.graph.node_count()];
                for i in 0..count {
                    let nodes = s.nodes(&plan, i);
                    for &ni in &nodes {
                        if measured(plan.graph[ni].kind) {
                            seen[ni.index()] += 1;
                        }
                        // Every dependency that is a cell or warm-up is in the same shard.
                        for d in plan.deps(ni) {
                            assert!(nodes.contains(&d), "{by:?} {count}: a dependency left out");
                        }
                    }
                }
                for ni in plan.graph.node_indices() {
                    let want = u32::from(measured(plan.graph[ni].kind));
                    assert_eq!(seen[ni.index()], want);
                }
                if by == ShardBy::Configuration {
                    for ni in plan.graph.node_indices() {
                        for nj in plan.graph.node_indices() {
                            let (a, b) = (&plan.graph[ni], &plan.graph[nj]);
                            if a.config.is_some() && a.config == b.config {
                                assert_eq!(s.shard_of(ni), s.shard_of(nj));
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_split_does_not_depend_on_the_order_of_the_manifests() {
        let a = crate::plan::build(&[
            std::path::PathBuf::from("experiments/tr114.yaml"),
            std::path::PathBuf::from("experiments/tr108.yaml"),
        ])
        .expect("plans");
        let b = crate::plan::build(&[
            std::path::PathBuf::from("experiments/tr108.yaml"),
            std::path::PathBuf::from("experiments/tr114.yaml"),
        ])
        .expect("plans");
        for by in [ShardBy::Comparison, ShardBy::Configuration] {
            let (sa, sb) = (split(&a, 5, by), split(&b, 5, by));
            assert_eq!(sa.fingerprint(), sb.fingerprint());
            let cells = |p: &Plan, s: &Split, i: u32| {
                let mut v: Vec<_> = s.nodes(p, i).iter().map(|&n| p.graph[n].id).collect();
                v.sort();
                v
            };
            for i in 0..5 {
                assert_eq!(cells(&a, &sa, i), cells(&b, &sb, i));
            }
            assert_ne!(sa.fingerprint(), split(&a, 4, by).fingerprint());
        }
    }

    #[test]
    fn the_split_is_balanced_and_deterministic() {
        for path in ["experiments/tr114.yaml", "experiments/tr116.yaml"] {
            let plan = plan_of(path);
            for count in [4, 8] {
                let a = split(&plan, count, ShardBy::Comparison);
                let b = split(&plan_of(path), count, ShardBy::Comparison);
                assert_eq!(a.shard_of, b.shard_of);
                assert!(a.balance() <= 1.10, "{path} {count}: {}", a.balance());
            }
        }
    }
}
