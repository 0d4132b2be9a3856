//! What `ingest` keeps in its output directory, read and written:
//!
//! ```text
//! DIR/month=YYYY-MM/part-0.parquet   the month's rows of the log, by (sent_at, message_id)
//! DIR/_ingest/YYYY-MM.state          the fold state of the month's messages (Parquet)
//! DIR/_rejects/RUN.ndjson            what a run could not fold, and why
//! ```
//!
//! The state is what lets a later run re-fold the messages it touches with
//! the events already seen: each message's [`Folded`], encoded with
//! [postcard] in a binary Parquet column (a text column of JSON, as earlier
//! versions wrote, is read too). Its files are not `.parquet`, so a listing
//! of `DIR` as a log reads the rows alone.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::fold::{Folded, Row};
use super::runs::Settled;
use crate::error::{Result, WaError};

/// The folder of the fold state, beside the month partitions.
pub const STATE_DIR: &str = "_ingest";
/// The folder of the rejects.
pub const REJECTS_DIR: &str = "_rejects";
const STATE_EXTENSION: &str = "state";

/// A month, `YYYY-MM`, of a time in microseconds (UTC).
pub fn month_of(micros: i64) -> String {
    month_name(month_index(micros))
}

/// Months since year 0 of a time in microseconds (UTC): `year * 12 + month - 1`.
pub fn month_index(micros: i64) -> i32 {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.year() * 12 + t.month0() as i32)
        .unwrap_or(1970 * 12)
}

/// `YYYY-MM` of a [`month_index`].
pub fn month_name(index: i32) -> String {
    format!(
        "{:04}-{:02}",
        index.div_euclid(12),
        index.rem_euclid(12) + 1
    )
}

/// The months before and after `month`.
pub fn neighbours(month: &str) -> [String; 2] {
    let (y, m) = month.split_once('-').expect("YYYY-MM");
    let (y, m): (i32, i32) = (y.parse().expect("year"), m.parse().expect("month"));
    let index = y * 12 + (m - 1);
    [month_name(index - 1), month_name(index + 1)]
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
        Field::new("state", DataType::Binary, false),
    ]))
}

/// Streams the states kept in `path` into `each`, a batch at a time.
pub fn read_state(path: &Path, mut each: impl FnMut(String, Folded) -> Result<()>) -> Result<()> {
    let file = File::open(path).map_err(|e| io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| parquet_err(path, e))?
        .build()
        .map_err(|e| parquet_err(path, e))?;
    for batch in reader {
        let batch = batch.map_err(|e| parquet_err(path, e))?;
        let ids = batch.column(0).as_string::<i32>();
        let states = batch.column(1);
        for (row, id) in ids.iter().enumerate() {
            let Some(id) = id else {
                return Err(parquet_err(path, "a state without its message id"));
            };
            let bad = |e: &dyn std::fmt::Display| parquet_err(path, format!("message {id}: {e}"));
            let folded: Folded = match states.data_type() {
                DataType::Binary => postcard::from_bytes(states.as_binary::<i32>().value(row))
                    .map_err(|e| bad(&e))?,
                DataType::Utf8 => serde_json::from_str(states.as_string::<i32>().value(row))
                    .map_err(|e| bad(&e))?,
                other => return Err(bad(&format!("a state column of type {other}"))),
            };
            each(id.to_string(), folded)?;
        }
    }
    Ok(())
}

/// Snappy, as `generate` writes: encoding keeps pace with the fold. Row
/// groups of 128k rows bound what a writer buffers.
fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(128 * 1024))
        .build()
}

/// A Parquet file written a chunk of messages at a time.
struct Writer {
    path: PathBuf,
    schema: SchemaRef,
    writer: ArrowWriter<File>,
}

impl Writer {
    fn create(path: &Path, schema: SchemaRef) -> Result<Writer> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        let file = File::create(path).map_err(|e| io(path, e))?;
        let writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(properties()))
            .map_err(|e| parquet_err(path, e))?;
        Ok(Writer {
            path: path.to_path_buf(),
            schema,
            writer,
        })
    }

    fn write(&mut self, columns: Vec<ArrayRef>) -> Result<()> {
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(|e| parquet_err(&self.path, e))?;
        self.writer
            .write(&batch)
            .map_err(|e| parquet_err(&self.path, e))
    }

    fn finish(self) -> Result<()> {
        self.writer
            .close()
            .map(|_| ())
            .map_err(|e| parquet_err(&self.path, e))
    }
}

/// The fold states of a month, written as the merge of its runs hands them
/// over.
pub struct StateWriter(Writer);

impl StateWriter {
    pub fn create(path: &Path) -> Result<StateWriter> {
        Ok(StateWriter(Writer::create(path, state_schema())?))
    }

    pub fn write(&mut self, chunk: &[Settled]) -> Result<()> {
        let mut ids = StringBuilder::new();
        let mut states = BinaryBuilder::new();
        let mut buf = vec![];
        for m in chunk {
            ids.append_value(&m.id);
            buf.clear();
            buf = postcard::to_extend(&m.folded, buf).expect("a fold state encodes");
            states.append_value(&buf);
        }
        self.0
            .write(vec![Arc::new(ids.finish()), Arc::new(states.finish())])
    }

    pub fn finish(self) -> Result<()> {
        self.0.finish()
    }
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

/// The rows of a month, written as the merge of its runs hands them over;
/// a message without a row is skipped.
pub struct RowsWriter {
    writer: Writer,
    rows: usize,
}

impl RowsWriter {
    pub fn create(path: &Path) -> Result<RowsWriter> {
        Ok(RowsWriter {
            writer: Writer::create(path, rows_schema())?,
            rows: 0,
        })
    }

    pub fn write(&mut self, chunk: &[Settled]) -> Result<()> {
        let rows: Vec<(&str, Row)> = chunk
            .iter()
            .filter_map(|m| m.folded.row().ok().map(|r| (m.id.as_str(), r)))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        self.rows += rows.len();
        self.writer.write(rows_columns(&rows))
    }

    /// The rows written.
    pub fn finish(self) -> Result<usize> {
        self.writer.finish()?;
        Ok(self.rows)
    }
}

fn rows_columns(rows: &[(&str, Row)]) -> Vec<ArrayRef> {
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
    vec![
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
    ]
}
