//! The enums a record stores as text: the kind of a cell and its status. Their names are
//! written here once ([`CellKind::name`], [`Status::name`]); tables and metadata go through
//! `Display`/`FromStr`/serde, never through string literals elsewhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::plan::NodeKind;

/// The kind of a cell: the plan node kinds that run requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    /// Excluded warm-up requests.
    Warmup,
    /// A single-agent cell.
    Single,
    /// One agent of a multi-agent configuration, alone.
    Isolated,
    /// All agents of a multi-agent configuration at once.
    Concurrent,
}

impl CellKind {
    /// Every kind.
    pub const ALL: [CellKind; 4] = [
        CellKind::Warmup,
        CellKind::Single,
        CellKind::Isolated,
        CellKind::Concurrent,
    ];

    /// The name stored in tables (`warmup`, `single`, `isolated`, `concurrent`).
    pub fn name(self) -> &'static str {
        self.node_kind().name()
    }

    /// The plan node kind of this cell kind.
    pub fn node_kind(self) -> NodeKind {
        match self {
            CellKind::Warmup => NodeKind::Warmup,
            CellKind::Single => NodeKind::Single,
            CellKind::Isolated => NodeKind::Isolated,
            CellKind::Concurrent => NodeKind::Concurrent,
        }
    }

    /// The cell kind of a plan node kind (`None` for analysis and report nodes).
    pub fn of(kind: NodeKind) -> Option<CellKind> {
        Self::ALL.into_iter().find(|k| k.node_kind() == kind)
    }

    /// A measured run: a single or concurrent cell (not a warm-up or an isolated baseline).
    pub fn is_run(self) -> bool {
        matches!(self, CellKind::Single | CellKind::Concurrent)
    }
}

/// Whether a cell (or a request) succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every request succeeded.
    #[default]
    Ok,
    /// At least one request failed.
    Failed,
}

impl Status {
    /// `Ok` when `ok`, else `Failed`.
    pub fn of(ok: bool) -> Status {
        if ok { Status::Ok } else { Status::Failed }
    }

    /// The name stored in tables (`ok`, `failed`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
        }
    }
}

/// A name that is not one of an enum's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{found}`")]
pub struct UnknownName {
    /// What was parsed (`cell kind`, `status`).
    pub what: &'static str,
    /// The text found.
    pub found: String,
}

macro_rules! named {
    ($t:ty, $what:literal, $all:expr) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $t {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                $all.into_iter()
                    .find(|k| k.name() == s)
                    .ok_or_else(|| UnknownName {
                        what: $what,
                        found: s.to_owned(),
                    })
            }
        }
    };
}

named!(CellKind, "cell kind", CellKind::ALL);
named!(Status, "status", [Status::Ok, Status::Failed]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_from_str_and_serde() {
        for k in CellKind::ALL {
            assert_eq!(k.to_string().parse::<CellKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).ok(), Some(k.name().into()));
            assert_eq!(CellKind::of(k.node_kind()), Some(k));
        }
        for s in [Status::Ok, Status::Failed] {
            assert_eq!(s.to_string().parse::<Status>(), Ok(s));
            assert_eq!(serde_json::to_value(s).ok(), Some(s.name().into()));
        }
        assert!("analysis".parse::<CellKind>().is_err());
        assert_eq!(CellKind::of(NodeKind::Report), None);
    }
}
