//! The axes of a block, as an enum: every per-axis decision is an exhaustive `match`.

use super::spec::{Axes, AxisPoint};

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
}

impl Axis {
    /// Every axis, in canonical order (the order of the fields, and of default labels).
    pub const ALL: [Axis; 10] = [
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
    ];

    /// The manifest key.
    pub fn name(self) -> &'static str {
        match self {
            Axis::Model => "model",
            Axis::Scenario => "scenario",
            Axis::Runtime => "runtime",
            Axis::Language => "language",
            Axis::NumGpu => "num_gpu",
            Axis::NumCtx => "num_ctx",
            Axis::Temperature => "temperature",
            Axis::TopP => "top_p",
            Axis::TopK => "top_k",
            Axis::RepeatPenalty => "repeat_penalty",
        }
    }

    /// The axis a manifest key names.
    pub fn from_name(name: &str) -> Option<Axis> {
        Axis::ALL.into_iter().find(|a| a.name() == name)
    }

    /// True for an axis that varies a model option (and so needs `apply_to`).
    pub fn is_option(self) -> bool {
        match self {
            Axis::Model | Axis::Scenario | Axis::Runtime | Axis::Language => false,
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

fn len<T>(v: &Option<Vec<T>>) -> Option<usize> {
    v.as_ref().map(Vec::len)
}

fn pick<T: Clone>(v: &Option<Vec<T>>, i: usize) -> Option<T> {
    v.as_ref().and_then(|v| v.get(i).cloned())
}

impl Axes {
    /// How many values `axis` lists; `None` when the block does not declare it.
    pub fn count(&self, axis: Axis) -> Option<usize> {
        match axis {
            Axis::Model => len(&self.model),
            Axis::Scenario => len(&self.scenario),
            Axis::Runtime => len(&self.runtime),
            Axis::Language => len(&self.language),
            Axis::NumGpu => len(&self.num_gpu),
            Axis::NumCtx => len(&self.num_ctx),
            Axis::Temperature => len(&self.temperature),
            Axis::TopP => len(&self.top_p),
            Axis::TopK => len(&self.top_k),
            Axis::RepeatPenalty => len(&self.repeat_penalty),
        }
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
        match axis {
            Axis::Model => self.model.is_some(),
            Axis::Scenario => self.scenario.is_some(),
            Axis::Runtime => self.runtime.is_some(),
            Axis::Language => self.language.is_some(),
            Axis::NumGpu => self.num_gpu.is_some(),
            Axis::NumCtx => self.num_ctx.is_some(),
            Axis::Temperature => self.temperature.is_some(),
            Axis::TopP => self.top_p.is_some(),
            Axis::TopK => self.top_k.is_some(),
            Axis::RepeatPenalty => self.repeat_penalty.is_some(),
        }
    }

    /// The axes the point sets, in canonical order.
    pub fn keys(&self) -> Vec<Axis> {
        Axis::ALL.into_iter().filter(|a| self.is_set(*a)).collect()
    }

    /// Sets `axis` to the `i`-th value `axes` lists for it.
    pub fn take(&mut self, axes: &Axes, axis: Axis, i: usize) {
        match axis {
            Axis::Model => self.model = pick(&axes.model, i),
            Axis::Scenario => self.scenario = pick(&axes.scenario, i),
            Axis::Runtime => self.runtime = pick(&axes.runtime, i),
            Axis::Language => self.language = pick(&axes.language, i),
            Axis::NumGpu => self.num_gpu = pick(&axes.num_gpu, i),
            Axis::NumCtx => self.num_ctx = pick(&axes.num_ctx, i),
            Axis::Temperature => self.temperature = pick(&axes.temperature, i),
            Axis::TopP => self.top_p = pick(&axes.top_p, i),
            Axis::TopK => self.top_k = pick(&axes.top_k, i),
            Axis::RepeatPenalty => self.repeat_penalty = pick(&axes.repeat_penalty, i),
        }
    }

    /// The value of `axis`, formatted for configuration ids (`0.8`, `smol-1kb`).
    pub fn label(&self, axis: Axis) -> Option<String> {
        fn show<T: ToString>(v: &Option<T>) -> Option<String> {
            v.as_ref().map(T::to_string)
        }
        match axis {
            Axis::Model => self.model.clone(),
            Axis::Scenario => self.scenario.clone(),
            Axis::Runtime => self.runtime.as_ref().map(ToString::to_string),
            Axis::Language => self.language.as_ref().map(ToString::to_string),
            Axis::NumGpu => show(&self.num_gpu),
            Axis::NumCtx => show(&self.num_ctx),
            Axis::Temperature => show(&self.temperature),
            Axis::TopP => show(&self.top_p),
            Axis::TopK => show(&self.top_k),
            Axis::RepeatPenalty => show(&self.repeat_penalty),
        }
    }

    /// True when every key set in `self` (a pattern) has the same value in `p`.
    pub fn matches(&self, p: &AxisPoint) -> bool {
        fn eq<T: PartialEq>(pat: &Option<T>, v: &Option<T>) -> bool {
            pat.as_ref().is_none_or(|x| v.as_ref() == Some(x))
        }
        eq(&self.model, &p.model)
            && eq(&self.scenario, &p.scenario)
            && eq(&self.runtime, &p.runtime)
            && eq(&self.language, &p.language)
            && eq(&self.num_gpu, &p.num_gpu)
            && eq(&self.num_ctx, &p.num_ctx)
            && eq(&self.temperature, &p.temperature)
            && eq(&self.top_p, &p.top_p)
            && eq(&self.top_k, &p.top_k)
            && eq(&self.repeat_penalty, &p.repeat_penalty)
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
