//! Stage 5: analysis. Reads a campaign's Parquet tables (rayon across files), groups the rows
//! the way each report's reference values declare, computes descriptive statistics, Welch
//! comparisons and a reproduction verdict per published number (see [`model`]).

pub mod model;
pub mod stats;
