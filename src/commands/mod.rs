//! One module per command: `app` dispatches to them, and none imports it.

pub mod bench;
pub mod bench_ingest;
pub mod generate;
pub mod ingest;
pub mod queries;
pub mod query;
pub mod repl;
pub mod report;
pub mod run;
