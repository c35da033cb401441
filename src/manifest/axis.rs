//! The axes of a block, as an enum: every per-axis decision is an exhaustive `match`.

use super::spec::{Axes, AxisPoint};

/// Expands to an exhaustive `match` on an [`Axis`] whose arm for each axis is
/// `$arm!(field, args…)`, `field` being that axis's field in [`Axes`] and [`AxisPoint`]: each
/// per-field decision is written once, and the field list here once.
macro_rules! by_axis {
    ($axis:expr, $arm:ident $(, $arg:expr)*) => {
        match $axis {
            Axis::Model => $arm!(model $(, $arg)*),
            Axis::Scenario => $arm!(scenario $(, $arg)*),
            Axis::Runtime => $arm!(runtime $(, $arg)*),
            Axis::Language => $arm!(language $(, $arg)*),
            Axis::NumGpu => $arm!(num_gpu $(, $arg)*),
            Axis::NumCtx => $arm!(num_ctx $(, $arg)*),
            Axis::Temperature => $arm!(temperature $(, $arg)*),
            Axis::TopP => $arm!(top_p $(, $arg)*),
            Axis::TopK => $arm!(top_k $(, $arg)*),
            Axis::RepeatPenalty => $arm!(repeat_penalty $(, $arg)*),
            Axis::Concurrency => $arm!(concurrency $(, $arg)*),
            Axis::Rate => $arm!(rate $(, $arg)*),
            Axis::InputTokens => $arm!(input_tokens $(, $arg)*),
            Axis::OutputTokens => $arm!(output_tokens $(, $arg)*),
            Axis::Server => $arm!(server $(, $arg)*),
        }
    };
}

/// One axis of a block's full factorial (a field of [`Axes`] and of [`AxisPoint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Axis {
    /// Model id.
    Model,
    /// Scenario id.
    Scenario,
    /// Runtime.
    Runtime,
    /// Language.
    Language,
    /// `num_gpu`.
    NumGpu,
    /// `num_ctx`.
    NumCtx,
    /// `temperature`.
    Temperature,
    /// `top_p`.
    TopP,
    /// `top_k`.
    TopK,
    /// `repeat_penalty`.
    RepeatPenalty,
    /// Closed-loop users (`load` workloads).
    Concurrency,
    /// Open-loop requests per second (`load` workloads).
    Rate,
    /// Prompt length in tokens (`load` workloads).
    InputTokens,
    /// Output length in tokens (`load` workloads).
    OutputTokens,
    /// Managed-server settings.
    Server,
}

impl Axis {
    /// Every axis, in canonical order (the order of the fields, and of default labels).
    pub const ALL: [Axis; 15] = [
        Axis::Model,
        Axis::Scenario,
        Axis::Runtime,
        Axis::Language,
        Axis::NumGpu,
        Axis::NumCtx,
        Axis::Temperature,
        Axis::TopP,
        Axis::TopK,
        Axis::RepeatPenalty,
        Axis::Concurrency,
        Axis::Rate,
        Axis::InputTokens,
        Axis::OutputTokens,
        Axis::Server,
    ];

    /// The manifest key.
    pub fn name(self) -> &'static str {
        macro_rules! key {
            ($f:ident) => {
                stringify!($f)
            };
        }
        by_axis!(self, key)
    }

    /// The axis a manifest key names.
    pub fn from_name(name: &str) -> Option<Axis> {
        Axis::ALL.into_iter().find(|a| a.name() == name)
    }

    /// True for an axis of a `load` workload's level or lengths.
    pub fn is_load(self) -> bool {
        matches!(
            self,
            Axis::Concurrency | Axis::Rate | Axis::InputTokens | Axis::OutputTokens
        )
    }

    /// True for an axis that varies a model option (and so needs `apply_to`).
    pub fn is_option(self) -> bool {
        match self {
            Axis::Model
            | Axis::Scenario
            | Axis::Runtime
            | Axis::Language
            | Axis::Concurrency
            | Axis::Rate
            | Axis::InputTokens
            | Axis::OutputTokens
            | Axis::Server => false,
            Axis::NumGpu
            | Axis::NumCtx
            | Axis::Temperature
            | Axis::TopP
            | Axis::TopK
            | Axis::RepeatPenalty => true,
        }
    }
}

impl std::fmt::Display for Axis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Axes {
    /// How many values `axis` lists; `None` when the block does not declare it.
    pub fn count(&self, axis: Axis) -> Option<usize> {
        macro_rules! count {
            ($f:ident, $axes:expr) => {
                $axes.$f.as_ref().map(Vec::len)
            };
        }
        by_axis!(axis, count, self)
    }

    /// The axes the block declares, in canonical order.
    pub fn declared(&self) -> Vec<Axis> {
        Axis::ALL
            .into_iter()
            .filter(|a| self.count(*a).is_some())
            .collect()
    }
}

impl AxisPoint {
    /// True when the point sets `axis`.
    pub fn is_set(&self, axis: Axis) -> bool {
        macro_rules! is_set {
            ($f:ident, $point:expr) => {
                $point.$f.is_some()
            };
        }
        by_axis!(axis, is_set, self)
    }

    /// The axes the point sets, in canonical order.
    pub fn keys(&self) -> Vec<Axis> {
        Axis::ALL.into_iter().filter(|a| self.is_set(*a)).collect()
    }

    /// Sets `axis` to the `i`-th value `axes` lists for it.
    pub fn take(&mut self, axes: &Axes, axis: Axis, i: usize) {
        macro_rules! take {
            ($f:ident, $point:expr, $axes:expr, $i:expr) => {
                $point.$f = $axes.$f.as_ref().and_then(|v| v.get($i).cloned())
            };
        }
        by_axis!(axis, take, self, axes, i)
    }

    /// The value of `axis`, formatted for configuration ids (`0.8`, `smol-1kb`).
    pub fn label(&self, axis: Axis) -> Option<String> {
        macro_rules! label {
            ($f:ident, $point:expr) => {
                $point.$f.as_ref().map(ToString::to_string)
            };
        }
        by_axis!(axis, label, self)
    }

    /// True when every key set in `self` (a pattern) has the same value in `p`.
    pub fn matches(&self, p: &AxisPoint) -> bool {
        macro_rules! same {
            ($f:ident, $pat:expr, $p:expr) => {
                $pat.$f.as_ref().is_none_or(|x| $p.$f.as_ref() == Some(x))
            };
        }
        Axis::ALL
            .into_iter()
            .all(|axis| by_axis!(axis, same, self, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_points_follow_axes() {
        for a in Axis::ALL {
            assert_eq!(Axis::from_name(a.name()), Some(a));
        }
        let axes = Axes {
            num_gpu: Some(vec![60, 80]),
            temperature: Some(vec![0.6]),
            ..Axes::default()
        };
        assert_eq!(axes.declared(), [Axis::NumGpu, Axis::Temperature]);
        let mut p = AxisPoint::default();
        p.take(&axes, Axis::NumGpu, 1);
        p.take(&axes, Axis::Temperature, 0);
        assert_eq!(p.keys(), [Axis::NumGpu, Axis::Temperature]);
        assert_eq!(p.label(Axis::Temperature).as_deref(), Some("0.6"));
        assert_eq!(p.label(Axis::NumGpu).as_deref(), Some("80"));
        assert_eq!(p.label(Axis::TopK), None);
    }
}
