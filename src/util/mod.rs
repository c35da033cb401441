//! The bottom layer: one wall clock with its date formats, one seeded random number generator.

pub(crate) mod clock;
pub(crate) mod procfs;
pub(crate) mod rng;
