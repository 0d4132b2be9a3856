//! What `ingest` keeps in its output directory, read and written:
//!
//! ```text
//! DIR/month=YYYY-MM/part-0.parquet   the month's rows of the log, by (sent_at, message_id)
//! DIR/_ingest/YYYY-MM.state          the fold state of the month's messages (Parquet)
//! DIR/_rejects/RUN.ndjson            what a run could not fold, and why
//! ```
//!
//! The state is what lets a later run re-fold the messages it touches with
//! the events already seen: each message's [`Folded`], as JSON in a Parquet
//! column. Its files are not `.parquet`, so a listing of `DIR` as a log
//! reads the rows alone.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BooleanBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::fold::{Folded, Row};
use crate::error::{Result, WaError};

/// The folder of the fold state, beside the month partitions.
pub const STATE_DIR: &str = "_ingest";
/// The folder of the rejects.
pub const REJECTS_DIR: &str = "_rejects";
const STATE_EXTENSION: &str = "state";

/// A month, `YYYY-MM`, of a time in microseconds (UTC).
pub fn month_of(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m").to_string())
        .unwrap_or_else(|| "1970-01".to_string())
}

/// The months before and after `month`.
pub fn neighbours(month: &str) -> [String; 2] {
    let (y, m) = month.split_once('-').expect("YYYY-MM");
    let (y, m): (i32, i32) = (y.parse().expect("year"), m.parse().expect("month"));
    let index = y * 12 + (m - 1);
    let name = |i: i32| format!("{:04}-{:02}", i.div_euclid(12), i.rem_euclid(12) + 1);
    [name(index - 1), name(index + 1)]
}

pub fn rows_path(out: &Path, month: &str) -> PathBuf {
    out.join(format!("month={month}")).join("part-0.parquet")
}

pub fn state_path(out: &Path, month: &str) -> PathBuf {
    out.join(STATE_DIR)
        .join(format!("{month}.{STATE_EXTENSION}"))
}

/// The months `out` holds state for.
pub fn state_months(out: &Path) -> Result<Vec<String>> {
    let dir = out.join(STATE_DIR);
    if !dir.is_dir() {
        return Ok(vec![]);
    }
    let mut months = vec![];
    for entry in fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
        let path = entry.map_err(|e| io(&dir, e))?.path();
        if path.extension().is_some_and(|e| e == STATE_EXTENSION) {
            if let Some(stem) = path.file_stem() {
                months.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    months.sort();
    Ok(months)
}

/// Whether `out` holds month partitions that `ingest` did not write (no
/// state beside them): a run would replace rows it cannot re-fold.
pub fn holds_foreign_log(out: &Path) -> Result<bool> {
    if !out.is_dir() || out.join(STATE_DIR).is_dir() {
        return Ok(false);
    }
    for entry in fs::read_dir(out).map_err(|e| io(out, e))? {
        let entry = entry.map_err(|e| io(out, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("month=") || name.ends_with(".parquet") {
            return Ok(true);
        }
    }
    Ok(false)
}

fn io(path: &Path, e: std::io::Error) -> WaError {
    WaError::io(path.display().to_string(), e)
}

fn parquet_err(path: &Path, e: impl std::fmt::Display) -> WaError {
    WaError::Input(format!("{}: {e}", path.display()))
}

fn state_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("message_id", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
    ]))
}

/// The states kept in `path`.
pub fn read_state(path: &Path) -> Result<Vec<(String, Folded)>> {
    let file = File::open(path).map_err(|e| io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| parquet_err(path, e))?
        .build()
        .map_err(|e| parquet_err(path, e))?;
    let mut out = vec![];
    for batch in reader {
        let batch = batch.map_err(|e| parquet_err(path, e))?;
        let ids = batch.column(0).as_string::<i32>();
        let states = batch.column(1).as_string::<i32>();
        for (id, state) in ids.iter().zip(states.iter()) {
            let (Some(id), Some(state)) = (id, state) else {
                return Err(parquet_err(path, "a state without its message id"));
            };
            let folded: Folded = serde_json::from_str(state)
                .map_err(|e| parquet_err(path, format!("message {id}: {e}")))?;
            out.push((id.to_string(), folded));
        }
    }
    Ok(out)
}

/// Snappy, as `generate` writes: encoding keeps pace with the fold.
fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build()
}

fn write_batches(
    path: &Path,
    schema: SchemaRef,
    batches: impl Iterator<Item = RecordBatch>,
) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let file = File::create(path).map_err(|e| io(path, e))?;
    let mut writer =
        ArrowWriter::try_new(file, schema, Some(properties())).map_err(|e| parquet_err(path, e))?;
    for b in batches {
        writer.write(&b).map_err(|e| parquet_err(path, e))?;
    }
    writer.close().map_err(|e| parquet_err(path, e))?;
    Ok(())
}

/// A message of a month being written: its time, id and fold, in order.
pub type Entry<'a> = (i64, &'a str, &'a Folded);

/// Rows of a batch: the writers build and encode a batch at a time, so that
/// a month's rows are never all built at once.
const BATCH_ROWS: usize = 64 * 1024;

/// Writes the fold states of `entries` to `path`.
pub fn write_state(path: &Path, entries: &[Entry]) -> Result<()> {
    let batches = entries.chunks(BATCH_ROWS).map(|chunk| {
        let mut ids = StringBuilder::new();
        let mut json = StringBuilder::new();
        for (_, id, f) in chunk {
            ids.append_value(id);
            json.append_value(serde_json::to_string(f).expect("a fold state serialises"));
        }
        let columns: Vec<ArrayRef> = vec![Arc::new(ids.finish()), Arc::new(json.finish())];
        RecordBatch::try_new(state_schema(), columns).expect("state columns")
    });
    write_batches(path, state_schema(), batches)
}

/// The log's columns of `message-log.md`, then the optional ones `ingest`
/// fills.
pub fn rows_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    crate::engine::logs::written_log_schema(vec![
        text("meta_pricing_category"),
        Field::new("meta_billable", DataType::Boolean, true),
        text("meta_pricing_type"),
        text("meta_pricing_model"),
        text("meta_conversation_id"),
        text("meta_conversation_origin"),
    ])
}

/// Writes the rows of `entries` (already in order; those without a row
/// are skipped) to `path`; returns how many.
pub fn write_rows(path: &Path, entries: &[Entry]) -> Result<usize> {
    let schema = rows_schema();
    let mut written = 0;
    let batches = entries.chunks(BATCH_ROWS).map(|chunk| {
        let rows: Vec<(&str, Row)> = chunk
            .iter()
            .filter_map(|(_, id, f)| f.row().ok().map(|r| (*id, r)))
            .collect();
        written += rows.len();
        rows_batch(&schema, &rows)
    });
    write_batches(path, Arc::clone(&schema), batches)?;
    Ok(written)
}

fn rows_batch(schema: &SchemaRef, rows: &[(&str, Row)]) -> RecordBatch {
    let mut texts: Vec<StringBuilder> = (0..15).map(|_| StringBuilder::new()).collect();
    let mut sent = TimestampMicrosecondBuilder::new();
    let mut delivered = TimestampMicrosecondBuilder::new();
    let mut billable = BooleanBuilder::new();
    let mut customer = String::new();
    for (id, r) in rows {
        let pricing = r.pricing;
        let conversation = r.conversation;
        customer.clear();
        customer.push('+');
        customer.push_str(r.customer);
        let values: [Option<&str>; 15] = [
            Some(id),
            Some(r.account_id),
            Some(&customer),
            Some(if r.inbound { "inbound" } else { "outbound" }),
            Some(if r.template.is_some() {
                "template"
            } else {
                "free_form"
            }),
            r.template.map(|t| t.as_str()),
            Some(r.status),
            r.entry_point.map(|e| e.as_str()),
            r.phone_number_id,
            r.template_name,
            pricing.and_then(|p| p.category.as_deref()),
            pricing.and_then(|p| p.pricing_type.as_deref()),
            pricing.and_then(|p| p.pricing_model.as_deref()),
            conversation.and_then(|c| c.id.as_deref()),
            conversation.and_then(|c| c.origin.as_deref()),
        ];
        for (b, v) in texts.iter_mut().zip(values) {
            b.append_option(v);
        }
        sent.append_value(r.sent_at);
        delivered.append_option(r.delivered_at);
        billable.append_option(pricing.and_then(|p| p.billable));
    }
    let mut texts = texts
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut next = || texts.next().expect("a text column");
    let utc = |b: TimestampMicrosecondBuilder| {
        let mut b = b;
        Arc::new(b.finish().with_timezone("UTC")) as ArrayRef
    };
    let columns: Vec<ArrayRef> = vec![
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        utc(sent),
        utc(delivered),
        next(),
        next(),
        next(),
        next(),
        Arc::new(billable.finish()),
        next(),
        next(),
        next(),
        next(),
    ];
    RecordBatch::try_new(Arc::clone(schema), columns).expect("rows match their schema")
}
