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
use crate::storage;

/// Where the bytes for an output path go, checked the same way for every
/// command: a regular file (or a link to one) is replaced atomically
/// through a temporary file beside it; a terminal, pipe or device
/// (`/dev/null`, `/dev/stdout`) is written to as it is, never replaced; a
/// directory or a read-only file is refused.
enum Target {
    Stream(fs::File),
    Replace {
        tmp: NamedTempFile,
        target: PathBuf,
    },
    /// An object (`s3://bucket/key`): written to a local temporary file,
    /// then uploaded whole ([`crate::storage::upload_file`]).
    Upload {
        tmp: NamedTempFile,
        location: String,
    },
}

impl Target {
    fn open(path: &Path) -> io::Result<Self> {
        let location = path.to_string_lossy();
        if storage::is_remote(&location) {
            storage::split_url(&location)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
            let tmp = tempfile::Builder::new()
                .prefix(".wausage-upload.")
                .suffix(".tmp")
                .tempfile()?;
            return Ok(Target::Upload {
                tmp,
                location: location.into_owned(),
            });
        }
        // `/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N` name a descriptor the
        // process inherited: written through, never replaced, even when the
        // shell pointed it at a regular file (`>> log.csv`).
        if path.starts_with("/dev") || path.starts_with("/proc") {
            return Ok(Target::Stream(OpenOptions::new().append(true).open(path)?));
        }
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )),
            Ok(meta) if !meta.is_file() => {
                Ok(Target::Stream(OpenOptions::new().write(true).open(path)?))
            }
            Ok(meta) => {
                if meta.permissions().readonly() {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "is read-only; not replaced",
                    ));
                }
                // Replace what a symlink points to, not the link itself.
                let target = fs::canonicalize(path)?;
                let tmp = create_temp(&target, Some(meta.permissions()))?;
                Ok(Target::Replace { tmp, target })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if fs::symlink_metadata(path).is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "is a symbolic link to nothing; not replaced",
                    ));
                }
                let tmp = create_temp(path, None)?;
                Ok(Target::Replace {
                    tmp,
                    target: path.to_path_buf(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// A second handle to write through.
    fn writer(&self) -> io::Result<fs::File> {
        match self {
            Target::Stream(file) => file.try_clone(),
            Target::Replace { tmp, .. } | Target::Upload { tmp, .. } => tmp.as_file().try_clone(),
        }
    }

    /// Puts the written bytes in place: on disk, then renamed over the old
    /// file. Dropping a `Target` instead removes the temporary file.
    fn commit(self) -> io::Result<()> {
        match self {
            Target::Stream(_) => Ok(()),
            Target::Replace { tmp, target } => {
                tmp.as_file().sync_all()?;
                tmp.persist(&target).map_err(|e| e.error)?;
                Ok(())
            }
            // The store is built from the environment: an output is not a
            // session's table, and `SET aws.*` applies to what SQL reads.
            Target::Upload { tmp, location } => {
                let stores = storage::StoreRegistry::from_env();
                storage::upload_file(&location, tmp.path(), &|url| {
                    datafusion::execution::object_store::ObjectStoreRegistry::get_store(
                        &stores, url,
                    )
                })
                // The caller names the location; the reason alone here.
                .map_err(|e| {
                    let text = match e {
                        WaError::Input(m) => m,
                        other => other.to_string(),
                    };
                    let prefix = format!("{location}: ");
                    io::Error::other(text.strip_prefix(&prefix).unwrap_or(&text).to_string())
                })
            }
        }
    }
}

pub(super) fn file_sink(
    format: Format,
    schema: SchemaRef,
    path: &Path,
    opts: &SinkOptions,
) -> Result<Box<dyn BatchSink>> {
    let label = path.display().to_string();
    let io_err = |e: io::Error| WaError::io(label.as_str(), e);
    let target = Target::open(path).map_err(io_err)?;
    let writer = target.writer().map_err(io_err)?;
    let inner = build(format, schema, BufWriter::new(writer), &label, opts)?;
    Ok(Box::new(FileSink {
        inner,
        target,
        label,
    }))
}

/// Writes `bytes` to `path` through the same checks and the same atomic
/// replacement (for pages and other whole-file outputs).
pub(super) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let label = path.display().to_string();
    let io_err = |e: io::Error| WaError::io(label.as_str(), e);
    let target = Target::open(path).map_err(io_err)?;
    let mut writer = target.writer().map_err(io_err)?;
    writer.write_all(bytes).map_err(io_err)?;
    target.commit().map_err(io_err)
}

/// Temporary files of a killed run (SIGKILL, a power cut) older than this
/// are removed beside the next output to the same file.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes `dir`'s temporary files for outputs named `name` (`.NAME.*.tmp`)
/// that are older than [`STALE_AFTER`]: another run's live file is younger.
fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(prefix) && name.ends_with(".tmp")) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
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
    remove_stale_temps(dir, &prefix);
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

/// Wraps the format's sink, which writes through a second handle to the
/// target.
struct FileSink {
    // Declared first so it is dropped (closing its handle) before `target`
    // deletes the temporary file.
    inner: Box<dyn BatchSink>,
    target: Target,
    label: String,
}

impl BatchSink for FileSink {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        self.inner.write_batch(batch)
    }

    fn finish(self: Box<Self>) -> Result<u64> {
        let FileSink {
            inner,
            target,
            label,
        } = *self;
        // Writes the trailer and flushes the buffer into the file.
        let rows = inner.finish()?;
        target
            .commit()
            .map_err(|e| WaError::io(label.as_str(), e))?;
        Ok(rows)
    }
}
