//! Writing to a file without ever leaving a broken one. Output goes to a
//! hidden temporary file next to the target and is renamed over it only
//! when the sink finishes, so a query that fails halfway (or is cancelled)
//! leaves any previous report intact and no partial file behind.

use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use tempfile::NamedTempFile;

use super::{build, BatchSink, Format, SinkOptions};
use crate::error::{Result, WaError};

pub(super) fn file_sink(
    format: Format,
    schema: SchemaRef,
    path: &Path,
    opts: &SinkOptions,
) -> Result<Box<dyn BatchSink>> {
    let label = path.display().to_string();
    let io_err = |e: io::Error| WaError::io(label.as_str(), e);
    let (target, existing) = match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(io_err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )))
        }
        Ok(meta) if !meta.is_file() => {
            // A terminal, pipe or /dev/null: nothing to replace, write to it.
            let file = OpenOptions::new().write(true).open(path).map_err(io_err)?;
            return build(format, schema, BufWriter::new(file), &label, opts);
        }
        Ok(meta) => {
            if meta.permissions().readonly() {
                return Err(io_err(io::ErrorKind::PermissionDenied.into()));
            }
            // Replace what a symlink points to, not the link itself.
            let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            (target, Some(meta.permissions()))
        }
        Err(_) => (path.to_path_buf(), None),
    };
    let tmp = create_temp(&target, existing).map_err(io_err)?;
    let file = tmp.as_file().try_clone().map_err(io_err)?;
    let inner = build(format, schema, BufWriter::new(file), &label, opts)?;
    Ok(Box::new(FileSink {
        inner,
        tmp,
        target,
        label,
    }))
}

/// Writes `bytes` to `path` the same way: a temporary file renamed into
/// place once complete (for pages and other whole-file outputs).
pub(super) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let label = path.display().to_string();
    let io_err = |e: io::Error| WaError::io(label.as_str(), e);
    let existing = fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.permissions());
    let mut tmp = create_temp(path, existing).map_err(io_err)?;
    tmp.write_all(bytes).map_err(io_err)?;
    tmp.as_file().sync_all().map_err(io_err)?;
    tmp.persist(path).map_err(|e| io_err(e.error))?;
    Ok(())
}

/// A hidden temporary file in `target`'s directory (a rename is only atomic
/// within one file system), with the permissions the target has or, for a
/// new file, the usual ones (0666 less the umask) instead of the
/// owner-only 0600 of temporary files.
fn create_temp(target: &Path, existing: Option<fs::Permissions>) -> io::Result<NamedTempFile> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    if existing.is_none() {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let tmp = builder.tempfile_in(dir)?;
    if let Some(perms) = existing {
        tmp.as_file().set_permissions(perms)?;
    }
    Ok(tmp)
}

/// Wraps the format's sink, which writes through a second handle to `tmp`.
struct FileSink {
    // Declared first so it is dropped (closing its handle) before `tmp`
    // deletes the file.
    inner: Box<dyn BatchSink>,
    tmp: NamedTempFile,
    target: PathBuf,
    label: String,
}

impl BatchSink for FileSink {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        self.inner.write_batch(batch)
    }

    fn finish(self: Box<Self>) -> Result<u64> {
        let FileSink {
            inner,
            tmp,
            target,
            label,
        } = *self;
        // Writes the trailer and flushes the buffer into the file.
        let rows = inner.finish()?;
        let io_err = |e: io::Error| WaError::io(label.as_str(), e);
        // On disk before it replaces the old file.
        tmp.as_file().sync_all().map_err(io_err)?;
        tmp.persist(&target).map_err(|e| io_err(e.error))?;
        Ok(rows)
    }
}
