//! Keeps the real I/O error behind a failed write. Arrow's CSV writer turns
//! I/O errors into plain strings and parquet wraps them; by recording the
//! first error the destination itself returned, a sink can report it as
//! `WaError::Io` with the output's name, so a full disk reads
//! "out.csv: No space left on device" and a closed pipe (`| head`) is
//! recognised by `WaError::is_broken_pipe` and ends the tool quietly.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use crate::error::WaError;

/// Shared between a sink and the [`Tap`] around its writer.
#[derive(Clone, Debug)]
pub(super) struct ErrorSlot {
    label: Arc<str>,
    first: Arc<Mutex<Option<io::Error>>>,
}

impl ErrorSlot {
    pub(super) fn new(label: &str) -> Self {
        ErrorSlot {
            label: label.into(),
            first: Arc::default(),
        }
    }

    pub(super) fn wrap<W: Write>(&self, inner: W) -> Tap<W> {
        Tap {
            inner,
            slot: self.clone(),
        }
    }

    fn record(&self, e: &io::Error) {
        if e.kind() == io::ErrorKind::Interrupted {
            return; // retried by write_all, not a failure
        }
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(io::Error::new(e.kind(), e.to_string()));
        }
    }

    fn take(&self) -> Option<io::Error> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Converts an error raised while writing: the destination's own I/O
    /// error if there was one, else `e` as it is.
    pub(super) fn err(&self, e: impl Into<WaError>) -> WaError {
        match self.take() {
            Some(io) => WaError::io(&*self.label, io),
            None => e.into(),
        }
    }

    /// Like [`err`](Self::err) for an error that already is an I/O error.
    pub(super) fn io_err(&self, e: io::Error) -> WaError {
        WaError::io(&*self.label, self.take().unwrap_or(e))
    }
}

/// A writer that records its first error in an [`ErrorSlot`].
#[derive(Debug)]
pub(super) struct Tap<W> {
    inner: W,
    slot: ErrorSlot,
}

impl<W: Write> Write for Tap<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|e| self.slot.record(e))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner
            .write_all(buf)
            .inspect_err(|e| self.slot.record(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|e| self.slot.record(e))
    }
}
