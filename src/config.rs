//! Settings resolved once: defaults, then environment variables, then
//! flags (clap applies the last two), into one `Config` that builds the
//! session.

use std::path::{Path, PathBuf};

use wausage_udfs::rules::RuleChoice;

use crate::cli::{GlobalArgs, MemoryLimitArg};
use crate::error::{Result, WaError};
use crate::memory::MemoryLimit;
use crate::output::{self, Format};

#[derive(Debug, Clone)]
pub struct Config {
    /// The message log; the shipped sample when none is given.
    pub data: String,
    pub tables: Vec<String>,
    /// The query memory pool.
    pub memory: MemoryLimit,
    /// Where spill files go (`--spill-dir`), checked writable; the temp
    /// dir when none.
    pub spill_dir: Option<PathBuf>,
    pub partitions: usize,
    pub rules: RuleChoice,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub max_rows: usize,
    /// The user's saved queries.
    pub queries_dir: PathBuf,
    /// The cluster scheduler queries run on (`df://HOST:PORT`), or none.
    pub cluster: Option<String>,
}

/// The sample log (`sample_data/`, about 1 MB), built into the binary so
/// that an installed wausage reads it wherever it runs and whatever lies
/// in the working directory: (path under the sample's folder, bytes).
const SAMPLE: [(&str, &[u8]); 2] = [
    (
        "month=2024-01/part-00000.parquet",
        include_bytes!("../sample_data/month=2024-01/part-00000.parquet"),
    ),
    (
        "month=2024-02/part-00000.parquet",
        include_bytes!("../sample_data/month=2024-02/part-00000.parquet"),
    ),
];

/// The built-in sample log as files: written once into the user's cache
/// directory (a folder per wausage version, each file written aside and
/// renamed into place), since DataFusion reads a log from paths.
pub fn sample_data_dir() -> Result<PathBuf> {
    let folder = format!("sample-{}", env!("CARGO_PKG_VERSION"));
    let cache = dirs::cache_dir().map(|d| d.join("wausage").join(&folder));
    // A home without a writable cache (a service account) takes the temp dir.
    let temp = std::env::temp_dir().join(format!("wausage-{folder}"));
    let mut last = None;
    for dir in cache.into_iter().chain([temp]) {
        match write_sample(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => last = Some(WaError::io(dir.display().to_string(), e)),
        }
    }
    Err(last.expect("at least one folder was tried"))
}

fn write_sample(dir: &Path) -> std::io::Result<()> {
    for (name, bytes) in SAMPLE {
        let path = dir.join(name);
        // Compared whole: a cached sample of another build is rewritten.
        if std::fs::read(&path).is_ok_and(|cached| cached == bytes) {
            continue;
        }
        let parent = path.parent().expect("a file in a folder");
        std::fs::create_dir_all(parent)?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
        std::io::Write::write_all(&mut tmp, bytes)?;
        tmp.persist(&path).map_err(|e| e.error)?;
    }
    Ok(())
}

/// The user's wausage config directory (history, saved queries).
pub fn config_dir() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("wausage")
}

pub fn parse_rules(s: &str) -> Result<RuleChoice> {
    RuleChoice::parse(s).ok_or_else(|| {
        WaError::Usage(format!(
            "unknown rule set {s:?}; expected one of {}",
            RuleChoice::NAMES
        ))
    })
}

impl Config {
    /// Where this config's results go.
    pub fn destination(&self) -> output::Destination<'_> {
        output::Destination {
            format: self.format,
            file: self.output.as_deref(),
            max_rows: self.max_rows,
        }
    }

    pub fn from_args(args: &GlobalArgs) -> Result<Self> {
        let format = match args.format {
            Some(f) => f,
            None => match &args.output {
                Some(path) => format_for_path(path),
                None => output::default_format(),
            },
        };
        if let Some(dir) = &args.queries {
            if !dir.is_dir() {
                return Err(WaError::Usage(format!(
                    "--queries {}: no such folder",
                    dir.display()
                )));
            }
        }
        if format == Format::Parquet && args.output.is_none() {
            return Err(WaError::Usage(
                "--format parquet needs --output FILE".into(),
            ));
        }
        let memory = match args.memory_limit {
            Some(MemoryLimitArg::Size(bytes)) => MemoryLimit::Given(bytes),
            Some(MemoryLimitArg::None) => MemoryLimit::None,
            None => MemoryLimit::default_for_this_process(),
        };
        let spill_dir = match &args.spill_dir {
            Some(dir) => Some(writable_spill_dir(dir)?),
            None => None,
        };
        Ok(Config {
            spill_dir,
            data: match &args.data {
                Some(data) => data.clone(),
                None => sample_data_dir()?.to_string_lossy().into_owned(),
            },
            tables: args.tables.clone(),
            memory,
            partitions: args.partitions.unwrap_or_else(|| {
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
                default_partitions(cores, memory.given().is_some())
            }),
            rules: args.rules.unwrap_or_default(),
            format,
            output: args.output.clone(),
            max_rows: args.max_rows.unwrap_or(40),
            queries_dir: args
                .queries
                .clone()
                .unwrap_or_else(|| config_dir().join("queries")),
            cluster: args.cluster.clone(),
        })
    }
}

/// `--spill-dir`, checked before any query: a folder a file can be made in.
fn writable_spill_dir(dir: &Path) -> Result<PathBuf> {
    tempfile::tempfile_in(dir).map_err(|e| {
        WaError::Usage(format!(
            "--spill-dir {}: cannot write spill files there: {e}",
            dir.display()
        ))
    })?;
    Ok(dir.to_path_buf())
}

/// The fewest partitions a query runs in when none are asked for.
pub const MIN_PARTITIONS: usize = 16;

/// Partitions when none are asked for: at least [`MIN_PARTITIONS`], however
/// few the cores, unless memory is limited.
///
/// DataFusion's hash aggregation keeps one table per partition, and a table
/// of a million groups misses the cache on almost every row: more, smaller
/// partitions keep each table nearer the cache, even with fewer cores (the
/// tokio runtime still runs one thread per core). Under a memory limit
/// every partition's spilling operators share the pool, and fewer, larger
/// shares spill less, so the partitions are the cores.
pub fn default_partitions(cores: usize, memory_limited: bool) -> usize {
    if memory_limited {
        cores
    } else {
        cores.max(MIN_PARTITIONS)
    }
}

/// The format a file name implies (`out.parquet` → parquet), csv otherwise.
fn format_for_path(path: &std::path::Path) -> Format {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("parquet") => Format::Parquet,
        Some("json") => Format::Json,
        Some("ndjson" | "jsonl") => Format::Ndjson,
        Some("html" | "htm") => Format::Html,
        Some("txt") => Format::Table,
        _ => Format::Csv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_default_to_at_least_sixteen_unless_memory_is_limited() {
        assert_eq!(default_partitions(2, false), 16);
        assert_eq!(default_partitions(64, false), 64);
        assert_eq!(default_partitions(2, true), 2);
        assert_eq!(default_partitions(64, true), 64);
    }

    #[test]
    fn rules() {
        assert_eq!(parse_rules("PMP").unwrap(), RuleChoice::Pmp);
        let err = parse_rules("x").unwrap_err().to_string();
        assert!(err.contains("auto, cbp, pmp, pmp26"), "{err}");
    }
}
