//! The `parquet` format: results written back as Parquet so they can be
//! queried again or loaded by other tools without losing types. Rows stream
//! into row groups as batches arrive; the footer written by `finish` makes
//! a valid file even for zero rows.

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::tap::{ErrorSlot, Tap};
use super::BatchSink;
use crate::error::Result;

pub(super) struct ParquetSink<W: Write + Send> {
    writer: ArrowWriter<Tap<W>>,
    slot: ErrorSlot,
    rows: u64,
}

impl<W: Write + Send> ParquetSink<W> {
    pub(super) fn try_new(schema: SchemaRef, out: Tap<W>, slot: ErrorSlot) -> Result<Self> {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_created_by(format!("wausage {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = ArrowWriter::try_new(out, schema, Some(props)).map_err(|e| slot.err(e))?;
        Ok(ParquetSink {
            writer,
            slot,
            rows: 0,
        })
    }
}

impl<W: Write + Send> BatchSink for ParquetSink<W> {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).map_err(|e| self.slot.err(e))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<u64> {
        let ParquetSink { writer, slot, rows } = *self;
        // Flushes the last row group and writes the footer.
        let mut out = writer.into_inner().map_err(|e| slot.err(e))?;
        out.flush().map_err(|e| slot.io_err(e))?;
        Ok(rows)
    }
}
