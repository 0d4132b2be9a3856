//! The `table` format: a boxed text table for reading at a terminal. Only
//! the first `max_rows` rows are kept (a result can have millions); the
//! rest are counted so the footer can say how much was left out.

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::util::display::FormatOptions;
use arrow::util::pretty::pretty_format_batches_with_options;

use super::rows_phrase;
use super::tap::{ErrorSlot, Tap};
use super::BatchSink;
use crate::error::Result;

pub(super) struct TableSink<W: Write> {
    out: Tap<W>,
    slot: ErrorSlot,
    schema: SchemaRef,
    max_rows: usize,
    kept: Vec<RecordBatch>,
    kept_rows: usize,
    total: u64,
}

impl<W: Write> TableSink<W> {
    pub(super) fn new(schema: SchemaRef, out: Tap<W>, slot: ErrorSlot, max_rows: usize) -> Self {
        TableSink {
            out,
            slot,
            schema,
            max_rows,
            kept: Vec::new(),
            kept_rows: 0,
            total: 0,
        }
    }

    fn render(&self) -> Result<String> {
        let count = if self.total > self.kept_rows as u64 {
            format!("{} of {} rows shown", self.kept_rows, self.total)
        } else {
            rows_phrase(self.total)
        };
        if self.schema.fields().is_empty() {
            // A statement without a result set (CREATE, SET ...).
            return Ok(format!("{count}\n"));
        }
        let empty;
        let batches = if self.kept.is_empty() {
            // pretty printing takes the header from the first batch
            empty = [RecordBatch::new_empty(self.schema.clone())];
            &empty[..]
        } else {
            &self.kept[..]
        };
        // NULL rather than blank, so it is not confused with an empty string.
        let options = FormatOptions::default()
            .with_display_error(true)
            .with_null("NULL");
        let table = pretty_format_batches_with_options(batches, &options)?;
        Ok(format!("{table}\n{count}\n"))
    }
}

impl<W: Write + Send> BatchSink for TableSink<W> {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        self.total += rows as u64;
        let take = rows.min(self.max_rows.saturating_sub(self.kept_rows));
        if take > 0 {
            self.kept.push(batch.slice(0, take));
            self.kept_rows += take;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<u64> {
        let text = self.render()?;
        self.out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|e| self.slot.io_err(e))?;
        Ok(self.total)
    }
}
