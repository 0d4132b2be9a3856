//! Query results leave the tool through here, in whichever format the user
//! asked for. Every format is a [`BatchSink`] that receives a query's batches
//! one at a time, so large results stream straight to stdout or a file
//! instead of being collected first (only `table` keeps rows, and only the
//! few it shows).
//!
//! Files are written atomically (see [`file_sink`]): a failed or interrupted
//! query never leaves a half-written report behind.

pub mod alert;
mod atomic;
mod destination;
mod html;
mod parquet_sink;
mod table;
mod tap;
#[cfg(test)]
mod tests;
mod text;

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::str::FromStr;

use arrow::datatypes::SchemaRef;
use arrow::json::writer::{JsonArray, LineDelimited};
use arrow::record_batch::RecordBatch;

pub use destination::{Destination, Results};

use crate::error::{Result, WaError};

/// An output format for query results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Boxed text table for people at a terminal; shows the first rows only.
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A Parquet file (zstd-compressed).
    Parquet,
    /// A self-contained HTML page with one table.
    Html,
}

impl Format {
    /// Every format, in the order shown in help and error messages.
    pub const ALL: [Format; 6] = [
        Format::Table,
        Format::Csv,
        Format::Json,
        Format::Ndjson,
        Format::Parquet,
        Format::Html,
    ];

    /// The name used on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Parquet => "parquet",
            Format::Html => "html",
        }
    }

    /// True when a partial output is still useful to a consumer reading it
    /// as it arrives (one record per line, or parquet written to a file).
    pub fn streams(&self) -> bool {
        matches!(self, Format::Csv | Format::Ndjson | Format::Parquet)
    }

    /// Guesses the format from a file name's extension (`report.parquet`),
    /// for an output path given without an explicit format.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "parquet" | "pq" => Some(Format::Parquet),
            "html" | "htm" => Some(Format::Html),
            "txt" => Some(Format::Table),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for an unknown format name; its message lists the choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFormatError(String);

impl fmt::Display for ParseFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Format::ALL.iter().map(Format::name).collect();
        write!(
            f,
            "unknown output format '{}' (choose one of: {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for ParseFormatError {}

impl From<ParseFormatError> for WaError {
    fn from(e: ParseFormatError) -> Self {
        WaError::Usage(e.to_string())
    }
}

/// Parses a format name, ignoring case.
impl FromStr for Format {
    type Err = ParseFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ParseFormatError(s.to_string()))
    }
}

/// Options that only some formats use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkOptions {
    /// `table`: how many rows to show (the rest are only counted). Use
    /// `usize::MAX` to show everything.
    pub max_rows: usize,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions { max_rows: 40 }
    }
}

/// Receives a query's batches one at a time.
///
/// Call [`finish`](BatchSink::finish) after the last batch: formats with a
/// trailer (json's `]`, parquet's footer, html's closing tags, the table
/// itself) write it there, and file sinks only then move the file into
/// place. Dropping a sink without finishing abandons the output.
pub trait BatchSink: Send {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Completes the output and returns how many rows were written.
    fn finish(self: Box<Self>) -> Result<u64>;
}

/// A sink writing to any writer (stdout, a `Vec<u8>` in tests). I/O errors
/// are reported against the name `stdout`.
///
/// Nothing is buffered here beyond what each format needs, so pass a
/// locked/buffered stdout if many tiny batches are expected.
pub fn writer_sink<W: Write + Send + 'static>(
    format: Format,
    schema: SchemaRef,
    out: W,
    opts: &SinkOptions,
) -> Result<Box<dyn BatchSink>> {
    build(format, schema, out, "stdout", opts)
}

/// A sink writing to the file at `path`.
///
/// Output goes to a temporary file in the same directory, renamed over
/// `path` only by [`finish`](BatchSink::finish). If the sink is dropped
/// unfinished (an error, Ctrl-C) the temporary file is removed and any
/// existing file at `path` is left untouched. Special files such as
/// `/dev/stdout` or a named pipe are written directly.
pub fn file_sink(
    format: Format,
    schema: SchemaRef,
    path: &Path,
    opts: &SinkOptions,
) -> Result<Box<dyn BatchSink>> {
    atomic::file_sink(format, schema, path, opts)
}

/// True when stdout is a terminal (not a pipe or a file).
/// Writes a whole file atomically (temporary file, then rename).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic::write_file(path, bytes)
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(text: &str) -> String {
    html::escape(text)
}

pub fn is_terminal_stdout() -> bool {
    std::io::stdout().is_terminal()
}

/// `table` for a person at a terminal, `csv` for a pipe or a file.
pub fn default_format() -> Format {
    if is_terminal_stdout() {
        Format::Table
    } else {
        Format::Csv
    }
}

/// Builds the sink for `format`; `label` names the destination in errors.
fn build<W: Write + Send + 'static>(
    format: Format,
    schema: SchemaRef,
    out: W,
    label: &str,
    opts: &SinkOptions,
) -> Result<Box<dyn BatchSink>> {
    if format == Format::Csv {
        // Checked before the header is written: CSV has no lists or structs.
        if let Some(nested) = schema.fields().iter().find(|f| f.data_type().is_nested()) {
            return Err(WaError::Usage(format!(
                "column `{}` is a {}, which CSV cannot hold: use --format json, ndjson or \
                 parquet, or unnest it in SQL",
                nested.name(),
                nested.data_type()
            )));
        }
    }
    let slot = tap::ErrorSlot::new(label);
    let out = slot.wrap(out);
    Ok(match format {
        Format::Table => Box::new(table::TableSink::new(schema, out, slot, opts.max_rows)),
        Format::Csv => Box::new(text::CsvSink::new(schema, out, slot)),
        Format::Json => Box::new(text::JsonSink::<W, JsonArray>::new(out, slot, b"\n")),
        Format::Ndjson => Box::new(text::JsonSink::<W, LineDelimited>::new(out, slot, b"")),
        Format::Parquet => Box::new(parquet_sink::ParquetSink::try_new(schema, out, slot)?),
        Format::Html => Box::new(html::HtmlSink::try_new(schema, out, slot)?),
    })
}

/// "1 row", "3 rows": the count line under a table or an html page.
fn rows_phrase(n: u64) -> String {
    if n == 1 {
        "1 row".to_string()
    } else {
        format!("{n} rows")
    }
}
