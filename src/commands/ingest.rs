//! `wausage ingest`: webhook files into a message log, with a summary on
//! stderr.

use crate::cli::IngestArgs;
use crate::config::Config;
use crate::error::Result;
use crate::ingest::to_bucket::ingest_to_bucket;
use crate::ingest::{ingest, IngestOptions};

pub fn run(config: &Config, args: &IngestArgs) -> Result<()> {
    let opts = IngestOptions {
        files: args.files.clone(),
        out: args.out.clone(),
        sends: args.sends.clone(),
        strict: args.strict,
        budget: fold_budget(config.memory.given(), args.fold_budget),
    };
    let t = std::time::Instant::now();
    let out = args.out.to_string_lossy();
    let summary = if crate::storage::is_remote(&out) {
        ingest_to_bucket(&opts, &out)?
    } else {
        ingest(&opts)?
    };
    eprintln!(
        "{} ({:.1} s)",
        summary.describe(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The folds `ingest` holds before it spills: half of `--memory-limit`
/// (the rest is the encoders', the readers' and the allocator's), else
/// [`DEFAULT_BUDGET`](crate::ingest::DEFAULT_BUDGET).
fn fold_budget(memory_limit: Option<usize>, exact: Option<usize>) -> usize {
    exact.unwrap_or_else(|| memory_limit.map_or(crate::ingest::DEFAULT_BUDGET, |m| m / 2))
}
