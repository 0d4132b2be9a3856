//! One error type for the whole tool, so `main` can map every failure to
//! the documented exit code: 1 for query or input errors, 2 for usage
//! errors, 3 for a quota alert.

use std::fmt;

use datafusion::error::DataFusionError;

/// What went wrong, classified by who has to fix it.
#[derive(Debug)]
pub enum WaError {
    /// The command line or a parameter was wrong (exit 2).
    Usage(String),
    /// The input data (a log, a rate card, a file) is wrong (exit 1).
    Input(String),
    /// A query failed while planning or running (exit 1).
    Query(DataFusionError),
    /// Reading or writing a file failed (exit 1).
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A monitored figure crossed its threshold (exit 3).
    Alert(String),
    /// A signal stopped the run (exit 128 + the signal's number, as a
    /// shell reports a process the signal killed).
    Stopped(Signal),
}

/// The signals that stop a running statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Hangup = 1,
    Interrupt = 2,
    Terminate = 15,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hangup => "SIGHUP",
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

pub type Result<T, E = WaError> = std::result::Result<T, E>;

impl WaError {
    pub fn exit_code(&self) -> u8 {
        match self {
            WaError::Usage(_) => 2,
            // A bad `SET` (unknown setting, a value it cannot take) is the
            // user's wording, not the data's.
            WaError::Query(e) if matches!(e.find_root(), DataFusionError::Configuration(_)) => 2,
            WaError::Alert(_) => 3,
            WaError::Stopped(signal) => 128 + *signal as u8,
            WaError::Input(_) | WaError::Query(_) | WaError::Io { .. } => 1,
        }
    }

    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        WaError::Io {
            path: path.into(),
            source,
        }
    }

    /// True when the error is a closed stdout (e.g. `| head`): exit quietly.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            WaError::Io { source, .. } => source.kind() == std::io::ErrorKind::BrokenPipe,
            WaError::Query(e) => is_broken_pipe_df(e),
            _ => false,
        }
    }
}

fn is_broken_pipe_df(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::IoError(io) => io.kind() == std::io::ErrorKind::BrokenPipe,
        DataFusionError::ArrowError(a, _) => {
            matches!(a.as_ref(), arrow::error::ArrowError::IoError(_, io) if io.kind() == std::io::ErrorKind::BrokenPipe)
        }
        DataFusionError::Context(_, inner) => is_broken_pipe_df(inner),
        DataFusionError::Shared(inner) => is_broken_pipe_df(inner),
        _ => false,
    }
}

impl fmt::Display for WaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaError::Usage(m) => write!(f, "usage error: {m}"),
            WaError::Input(m) => write!(f, "input error: {m}"),
            WaError::Query(e) => {
                write!(f, "{}", strip_df_prefixes(e))?;
                if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) {
                    write!(
                        f,
                        "\nhint: the query needs more memory than the pool allows; raise \
                         --memory-limit (or WAUSAGE_MEMORY_LIMIT; by default 80% of the memory \
                         available), or give --memory-limit none"
                    )?;
                }
                Ok(())
            }
            WaError::Io { path, source } => write!(f, "{path}: {source}"),
            WaError::Alert(m) => write!(f, "alert: {m}"),
            WaError::Stopped(signal) => write!(f, "query cancelled ({})", signal.name()),
        }
    }
}

/// DataFusion wraps errors raised inside our functions ("Execution error:
/// External error: ..."); show the innermost message the user can act on.
fn strip_df_prefixes(e: &DataFusionError) -> String {
    match e {
        DataFusionError::Context(ctx, inner) => format!("{ctx}: {}", strip_df_prefixes(inner)),
        DataFusionError::Shared(inner) => strip_df_prefixes(inner),
        other => other.to_string(),
    }
}

impl std::error::Error for WaError {}

impl From<DataFusionError> for WaError {
    fn from(e: DataFusionError) -> Self {
        WaError::Query(e)
    }
}

impl From<arrow::error::ArrowError> for WaError {
    fn from(e: arrow::error::ArrowError) -> Self {
        WaError::Query(DataFusionError::ArrowError(Box::new(e), None))
    }
}

impl From<parquet::errors::ParquetError> for WaError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        WaError::Query(DataFusionError::ParquetError(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_memory_says_which_setting_to_raise() {
        let exhausted = DataFusionError::Context(
            "reading".into(),
            Box::new(DataFusionError::ResourcesExhausted("pool full".into())),
        );
        let shown = WaError::Query(exhausted).to_string();
        assert!(shown.contains("pool full"), "{shown}");
        assert!(shown.contains("--memory-limit"), "{shown}");
        let other = WaError::Query(DataFusionError::Plan("no table".into())).to_string();
        assert!(!other.contains("--memory-limit"), "{other}");
    }
}
