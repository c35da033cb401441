//! The integration-test binary: the CLI end to end, the invalid-manifest suite with
//! snapshots, the shipped manifests, and property tests of the planner and the parser.

mod backend;
mod chaos;
mod cli;
mod emulator;
mod experiments;
mod invalid;
mod props;
mod run_e2e;
mod store;
mod support;
mod table;
mod telemetry;
mod validity;
mod workload;
