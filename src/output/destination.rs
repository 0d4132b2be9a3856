//! Where a result goes: a file, through the one atomic writer, or stdout,
//! in a format. Every command asks its `Destination` for the sink of each
//! result it writes.

use std::io::BufWriter;
use std::path::Path;

use arrow::datatypes::SchemaRef;

use super::{atomic, writer_sink, BatchSink, Format, SinkOptions};
use crate::error::Result;

/// How many results a run may write: `One` when they go to one file
/// (`--output`, `\\o FILE`), where a second would replace the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Results {
    Any,
    One,
}

/// A format and, unless stdout, a file.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    pub format: Format,
    pub file: Option<&'a Path>,
    /// Rows the table format shows.
    pub max_rows: usize,
}

impl Destination<'_> {
    /// The sink for one result of `schema`.
    pub fn sink(&self, schema: SchemaRef) -> Result<Box<dyn BatchSink>> {
        let opts = SinkOptions {
            max_rows: self.max_rows,
        };
        match self.file {
            Some(path) => atomic::file_sink(self.format, schema, path, &opts),
            None => writer_sink(
                self.format,
                schema,
                BufWriter::new(std::io::stdout()),
                &opts,
            ),
        }
    }

    /// How many results a run may write here.
    pub fn results(&self) -> Results {
        match self.file {
            Some(_) => Results::One,
            None => Results::Any,
        }
    }
}
