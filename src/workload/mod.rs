//! Workloads: what an agent does in one run (being built).
