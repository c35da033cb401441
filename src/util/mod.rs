//! The bottom layer: one wall clock with its date formats, one seeded random number generator.

pub mod clock;
pub mod rng;
