//! Settings resolved once: defaults, then environment variables, then
//! flags (clap applies the last two), into one `Config` that builds the
//! session.

use std::path::PathBuf;

use wausage_udfs::rules::RuleChoice;

use crate::cli::GlobalArgs;
use crate::error::{Result, WaError};
use crate::output::{self, Format};

#[derive(Debug, Clone)]
pub struct Config {
    /// The message log; the shipped sample when none is given.
    pub data: String,
    pub tables: Vec<String>,
    pub memory_limit: Option<usize>,
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

/// The shipped sample log: beside the binary's sources (a clone), or in
/// the working directory.
pub fn sample_data_dir() -> PathBuf {
    let local = PathBuf::from("sample_data");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample_data")
}

/// The user's wausage config directory (history, saved queries).
pub fn config_dir() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("wausage")
}

/// Parses `512m`, `2g`, `1.5GB`, `1048576`.
pub fn parse_size(s: &str) -> Result<usize> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| WaError::Usage(format!("bad size {s:?}: use e.g. 512m or 2g")))?;
    if n.is_nan() || n <= 0.0 {
        return Err(WaError::Usage(format!("bad size {s:?}: must be positive")));
    }
    Ok((n * mult as f64) as usize)
}

/// The smallest `--memory-limit` a query runs in: below it even a plain
/// scan cannot hold its batches, and DataFusion fails with an internal error.
pub const MIN_MEMORY_LIMIT: usize = 32 << 20;

/// `--memory-limit`: a size of at least [`MIN_MEMORY_LIMIT`].
pub fn parse_memory_limit(s: &str) -> Result<usize> {
    let size = parse_size(s)?;
    if size < MIN_MEMORY_LIMIT {
        return Err(WaError::Usage(format!(
            "--memory-limit {s}: a query needs at least 32m"
        )));
    }
    Ok(size)
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
    pub fn from_args(args: &GlobalArgs) -> Result<Self> {
        let format = match &args.format {
            Some(f) => f
                .parse::<Format>()
                .map_err(|e| WaError::Usage(e.to_string()))?,
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
        Ok(Config {
            data: args
                .data
                .clone()
                .unwrap_or_else(|| sample_data_dir().to_string_lossy().into_owned()),
            tables: args.tables.clone(),
            memory_limit: args
                .memory_limit
                .as_deref()
                .map(parse_memory_limit)
                .transpose()?,
            partitions: args.partitions.unwrap_or_else(|| {
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
                default_partitions(cores, args.memory_limit.is_some())
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

/// The fewest partitions a query runs in when none are asked for.
pub const MIN_PARTITIONS: usize = 16;

/// Partitions when none are asked for: at least [`MIN_PARTITIONS`], however
/// few the cores, unless memory is limited.
///
/// DataFusion's hash aggregation keeps one table per partition, and a table
/// of a million groups misses the cache on almost every row: on 2 cores
/// the plain per-customer GROUP BY over 50M messages took 0.70x the time
/// with 16 partitions that it took with 2 (the tokio runtime still runs
/// one thread per core). Under a memory limit every partition's spilling
/// operators share the pool, and fewer, larger shares spill less: the
/// windowing took 40 s with 2 partitions and 62 s with 16 under 1g.
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
    fn sizes() {
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2GB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
    }

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
