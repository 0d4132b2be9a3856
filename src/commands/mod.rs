//! One module per command: `app` dispatches to them, and none imports it.

pub mod bench;
pub mod bench_ingest;
pub mod bench_scale;
pub mod bench_serve;
pub mod generate;
pub mod ingest;
pub mod measured;
pub mod queries;
pub mod query;
pub mod repl;
pub mod report;
pub mod run;
pub mod serve;
