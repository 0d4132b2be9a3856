//! `ingest --out s3://bucket/prefix/`: the run works on a local mirror of
//! the log's kept state, as a local run works on its folder, and then puts
//! what it wrote in the bucket. Every object is put whole or not at all
//! (one multipart upload each, completed last); a month's rows go before
//! its state, so a run stopped between them leaves a state that a second
//! run of the same files folds again to the same rows. Object stores have
//! no renames, so a month is replaced object by object, never half an
//! object.

use std::path::Path;

use super::partitions::{rows_path, state_path, STATE_DIR};
use super::{ingest_into, IngestOptions, IngestSummary};
use crate::error::{Result, WaError};
use crate::storage::Bucket;

/// Runs `opts` with its output at `location`.
pub fn ingest_to_bucket(opts: &IngestOptions, location: &str) -> Result<IngestSummary> {
    let bucket = Bucket::open(location)?;
    let keys = bucket.list()?;
    let state_prefix = format!("{STATE_DIR}/");
    let has_state = keys.iter().any(|k| k.starts_with(&state_prefix));
    if !has_state && keys.iter().any(|k| k.ends_with(".parquet")) {
        return Err(WaError::Input(format!(
            "{location}: holds a log that `ingest` did not write (no {STATE_DIR}/ beside its \
             partitions); give an empty prefix"
        )));
    }
    let mirror = tempfile::Builder::new()
        .prefix("wausage-ingest-")
        .tempdir()
        .map_err(|e| WaError::io("a temporary folder", e))?;
    let local = mirror.path();
    std::fs::create_dir_all(local.join(STATE_DIR))
        .map_err(|e| WaError::io(local.display().to_string(), e))?;
    // Only the kept state is read back; rows are rebuilt from it.
    for key in keys
        .iter()
        .filter(|k| k.starts_with(&state_prefix) && k.ends_with(".state"))
    {
        bucket.fetch(key, &local.join(key))?;
    }
    let mut summary = ingest_into(&IngestOptions {
        out: local.to_path_buf(),
        ..opts.clone()
    })?;
    let rel = |p: &Path| {
        p.strip_prefix(local)
            .expect("inside the mirror")
            .to_string_lossy()
            .into_owned()
    };
    for month in &summary.months_written {
        let rows = rows_path(local, month);
        let rows_key = rel(&rows);
        if rows.exists() {
            bucket.put(&rows_key, &rows)?;
        } else if keys.contains(&rows_key) {
            bucket.delete(&rows_key)?;
        }
        let state = state_path(local, month);
        bucket.put(&rel(&state), &state)?;
    }
    if let Some(file) = summary.rejects_file.take() {
        let key = rel(&file);
        bucket.put(&key, &file)?;
        summary.rejects_file = Some(bucket.url(&key).into());
    }
    Ok(summary)
}
