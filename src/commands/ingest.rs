//! `wausage ingest`: webhook files into a message log, with a summary on
//! stderr.

use crate::cli::IngestArgs;
use crate::error::Result;
use crate::ingest::{ingest, IngestOptions};

pub fn run(args: &IngestArgs) -> Result<()> {
    let opts = IngestOptions {
        files: args.files.clone(),
        out: args.out.clone(),
        sends: args.sends.clone(),
        strict: args.strict,
    };
    let t = std::time::Instant::now();
    let summary = ingest(&opts)?;
    eprintln!(
        "{} ({:.1} s)",
        summary.describe(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
