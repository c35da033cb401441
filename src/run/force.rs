//! `--force` selectors: which committed cells to run again, parsed once at the command line.

use std::fmt;
use std::str::FromStr;

use petgraph::graph::NodeIndex;

use crate::plan::{NodeKind, Plan};

/// What `--force` selects: every cell, the cells whose id starts with a prefix, or those of
/// one configuration, report or node kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForceSelector {
    /// `all`.
    All,
    /// A cell-id prefix (at least 4 hex digits, any case), as written.
    CellPrefix(String),
    /// `config=<id>`.
    Config(String),
    /// `report=<id>`.
    Report(String),
    /// `kind=<kind>`.
    Kind(NodeKind),
}

/// Why a `--force` value is not a selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a cell selector: use `all`, a cell-id prefix (at least 4 hex digits), `config=<id>`, `report=<id>` or `kind=<kind>`"
)]
pub struct BadSelector(String);

impl FromStr for ForceSelector {
    type Err = BadSelector;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadSelector(s.to_owned());
        match s.split_once('=') {
            Some(("config", v)) => Ok(ForceSelector::Config(v.to_owned())),
            Some(("report", v)) => Ok(ForceSelector::Report(v.to_owned())),
            Some(("kind", v)) => NodeKind::ALL
                .into_iter()
                .find(|k| k.name() == v)
                .map(ForceSelector::Kind)
                .ok_or_else(bad),
            Some(_) => Err(bad()),
            None if s == "all" => Ok(ForceSelector::All),
            None if s.len() >= 4 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(ForceSelector::CellPrefix(s.to_owned()))
            }
            None => Err(bad()),
        }
    }
}

impl fmt::Display for ForceSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForceSelector::All => f.write_str("all"),
            ForceSelector::CellPrefix(p) => f.write_str(p),
            ForceSelector::Config(v) => write!(f, "config={v}"),
            ForceSelector::Report(v) => write!(f, "report={v}"),
            ForceSelector::Kind(k) => write!(f, "kind={}", k.name()),
        }
    }
}

impl ForceSelector {
    /// Whether the selector matches node `ni` of `plan`.
    pub fn selects(&self, plan: &Plan, ni: NodeIndex) -> bool {
        let n = &plan.graph[ni];
        match self {
            ForceSelector::All => true,
            ForceSelector::CellPrefix(p) => n.id.hex().starts_with(&p.to_ascii_lowercase()),
            ForceSelector::Config(v) => n.config.is_some() && *plan.cell_config(n).id == **v,
            ForceSelector::Report(v) => plan.reports[n.report as usize].report == *v,
            ForceSelector::Kind(k) => n.kind == *k,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_print_as_written() {
        for s in ["all", "ABCD12", "config=c1", "report=r", "kind=isolated"] {
            assert_eq!(s.parse::<ForceSelector>().expect(s).to_string(), s);
        }
        assert_eq!(
            "kind=single".parse(),
            Ok(ForceSelector::Kind(NodeKind::Single))
        );
        for s in ["abc", "xyz12", "kind=nope", "model=m", ""] {
            assert!(s.parse::<ForceSelector>().is_err(), "{s}");
        }
    }
}
