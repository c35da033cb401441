//! The fuzz targets' shared input decoding (see `inputs`).
pub mod inputs;
