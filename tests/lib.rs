//! The integration-test binary: the CLI end to end, the invalid-manifest suite with
//! snapshots, the shipped manifests, property tests of the planner and the parser, and the
//! notebook examples (`examples/load_tables.py`) against a compacted campaign.

mod analysis;
mod backend;
mod browser;
mod chaos;
mod charts;
mod checks;
mod cli;
mod command;
mod compare;
mod emulator;
mod experiments;
mod flood;
mod forced_length;
mod fuzz_regressions;
mod import;
mod import_detect;
mod import_git;
mod import_tr113;
mod import_tr115_tr116;
mod invalid;
mod lifecycle;
mod load;
#[cfg(unix)]
mod managed;
mod notebooks;
mod openai;
mod props;
mod report;
mod run_e2e;
#[cfg(unix)]
mod server_axis;
mod server_metrics;
mod serving;
mod shards;
#[cfg(unix)]
mod slurm;
mod store;
mod support;
mod table;
mod telemetry;
mod tokenize;
mod tr112;
mod validity;
mod workload;
