//! Integration tests, in one binary so DataFusion links once: SQL behaviour
//! on real Parquet (in-process sessions) and whole-binary runs of the CLI.

mod billing;
mod cli;
#[cfg(feature = "cluster")]
mod cluster;
mod common;
mod ingest;
mod object_store;
mod properties;
mod report_page;
mod reports;
mod robustness;
mod serve;
mod vectors;
