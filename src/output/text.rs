//! The text interchange formats, `csv`, `json` and `ndjson`: thin wrappers
//! over arrow's writers that stream each batch as it arrives, always emit
//! something parseable for an empty result (a header line, `[]`), and write
//! nulls explicitly so BI tools see every column in every JSON object.

use std::io::Write;

use arrow::csv::{Writer as CsvWriter, WriterBuilder as CsvWriterBuilder};
use arrow::datatypes::SchemaRef;
use arrow::json::writer::{JsonFormat, Writer as JsonWriter};
use arrow::json::WriterBuilder as JsonWriterBuilder;
use arrow::record_batch::RecordBatch;

use super::tap::{ErrorSlot, Tap};
use super::BatchSink;
use crate::error::Result;

/// `csv`: a header line, then one line per row. Timestamps are RFC 3339.
pub(super) struct CsvSink<W: Write> {
    writer: CsvWriter<Tap<W>>,
    slot: ErrorSlot,
    schema: SchemaRef,
    started: bool,
    rows: u64,
}

impl<W: Write> CsvSink<W> {
    pub(super) fn new(schema: SchemaRef, out: Tap<W>, slot: ErrorSlot) -> Self {
        CsvSink {
            writer: CsvWriterBuilder::new().with_header(true).build(out),
            slot,
            schema,
            started: false,
            rows: 0,
        }
    }
}

impl<W: Write + Send> BatchSink for CsvSink<W> {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).map_err(|e| self.slot.err(e))?;
        self.started = true;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<u64> {
        if !self.started && !self.schema.fields().is_empty() {
            // No batch arrived: still print the header line.
            let empty = RecordBatch::new_empty(self.schema.clone());
            self.writer.write(&empty).map_err(|e| self.slot.err(e))?;
        }
        let CsvSink {
            writer, slot, rows, ..
        } = *self;
        // The writer flushes after every batch; flush the destination too.
        writer.into_inner().flush().map_err(|e| slot.io_err(e))?;
        Ok(rows)
    }
}

/// `json` (`F` = `JsonArray`) and `ndjson` (`F` = `LineDelimited`).
pub(super) struct JsonSink<W: Write, F: JsonFormat> {
    writer: JsonWriter<Tap<W>, F>,
    slot: ErrorSlot,
    /// Written after the closing `]` so the shell prompt starts on a new
    /// line (ndjson already ends every row with one).
    tail: &'static [u8],
    rows: u64,
}

impl<W: Write, F: JsonFormat> JsonSink<W, F> {
    pub(super) fn new(out: Tap<W>, slot: ErrorSlot, tail: &'static [u8]) -> Self {
        JsonSink {
            writer: JsonWriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, F>(out),
            slot,
            tail,
            rows: 0,
        }
    }
}

impl<W: Write + Send, F: JsonFormat + Send> BatchSink for JsonSink<W, F> {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).map_err(|e| self.slot.err(e))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<u64> {
        // Writes `[` and `]` for an array, even around zero rows.
        self.writer.finish().map_err(|e| self.slot.err(e))?;
        let JsonSink {
            writer,
            slot,
            tail,
            rows,
        } = *self;
        let mut out = writer.into_inner();
        out.write_all(tail)
            .and_then(|()| out.flush())
            .map_err(|e| slot.io_err(e))?;
        Ok(rows)
    }
}
