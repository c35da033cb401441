//! chimera's reference Rust agent (work in progress).
fn main() {}
