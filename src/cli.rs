//! The command line, as clap definitions only. Global options may stand
//! before or after the command; each has an environment variable where a
//! cron job or a shell profile would rather set it once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use wausage_udfs::rules::RuleChoice;

use crate::error::WaError;
use crate::output::Format;

/// More partitions than this only add scheduling overhead on any machine.
pub const MAX_PARTITIONS: u64 = 4096;

/// `--alert-at PCT`: a finite number of 0 or more (not `nan`, not `inf`).
fn percentage(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        _ => Err(format!("{s:?} is not a percentage (a number, 0 or more)")),
    }
}

/// `--quota N`: a positive whole number of messages.
fn quota(s: &str) -> Result<i64, String> {
    match s.trim().replace('_', "").parse::<i64>() {
        Ok(q) if q > 0 => Ok(q),
        _ => Err(format!("{s:?} is not a quota (a whole number, 1 or more)")),
    }
}

/// Parses `512m`, `2g`, `1.5GB`, `1048576`.
pub fn parse_size(s: &str) -> Result<usize, WaError> {
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
    // At least one byte, and a number of bytes this machine can count
    // (`0.5`, `1e400` and `nan` are not sizes).
    let bytes = n * mult as f64;
    if !(bytes >= 1.0 && bytes < usize::MAX as f64) {
        return Err(WaError::Usage(format!(
            "bad size {s:?}: must be between 1 byte and {}",
            usize::MAX
        )));
    }
    Ok(bytes as usize)
}

/// The smallest `--memory-limit` a query runs in: below it even a plain
/// scan cannot hold its batches, and DataFusion fails with an internal error.
pub const MIN_MEMORY_LIMIT: usize = 32 << 20;

/// `--memory-limit` as given: a size, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryLimitArg {
    Size(usize),
    None,
}

/// `--memory-limit`: a size of at least [`MIN_MEMORY_LIMIT`], or `none`.
pub fn parse_memory_limit(s: &str) -> Result<MemoryLimitArg, WaError> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(MemoryLimitArg::None);
    }
    let size = parse_size(s).map_err(|e| match e {
        WaError::Usage(m) => WaError::Usage(format!("{m}; or `none` for no limit")),
        other => other,
    })?;
    if size < MIN_MEMORY_LIMIT {
        return Err(WaError::Usage(format!(
            "--memory-limit {s}: a query needs at least 32m"
        )));
    }
    Ok(MemoryLimitArg::Size(size))
}

/// `--format`: one of the formats' names, listed in `--help` and errors.
fn format_parser() -> impl TypedValueParser<Value = Format> {
    PossibleValuesParser::new(Format::ALL.map(|f| f.name()))
        .map(|name| name.parse().expect("a possible value names a format"))
}

/// `--rules`: one of the rule choices' names, listed in `--help` and in
/// the error for any other value.
fn rule_choice_parser() -> impl TypedValueParser<Value = RuleChoice> {
    PossibleValuesParser::new(RuleChoice::ALL.map(RuleChoice::as_str))
        .map(|name| RuleChoice::parse(&name).expect("a possible value names a rule choice"))
}

#[derive(Debug, Parser)]
#[command(
    name = "wausage",
    version,
    about = "SQL analytics over WhatsApp Business message logs (Parquet)",
    after_help = "With no command, starts the interactive SQL shell (repl).\n\
                  Exit codes: 0 success, 1 query or input error, 2 usage error, 3 alert."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Message log: a Parquet file, a directory tree, a glob or hive partitions
    /// [default: the sample log built into wausage: 30,000 messages of 800
    /// customers, 2024-01-15 to 2024-02-28]
    #[arg(long, global = true, env = "WAUSAGE_DATA", value_name = "PATH")]
    pub data: Option<String>,
    /// Register another Parquet or CSV file as a table (repeatable)
    #[arg(long = "table", global = true, value_name = "NAME=PATH")]
    pub tables: Vec<String>,
    /// Bound the query memory pool, e.g. 512m or 2g: sorts, aggregations and the
    /// windowing spill to disk within it; `none` for no bound [default: 80% of
    /// the memory available (the cgroup's memory.max, else physical memory):
    /// a query that does not fit fails]
    #[arg(long, global = true, env = "WAUSAGE_MEMORY_LIMIT", value_name = "SIZE",
          value_parser = parse_memory_limit)]
    pub memory_limit: Option<MemoryLimitArg>,
    /// Folder for the files that sorts, aggregations and the windowing spill
    /// to past the memory pool [default: the temp dir]
    #[arg(long, global = true, env = "WAUSAGE_SPILL_DIR", value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
    /// Number of partitions queries run in [default: 16 or the number of cores if
    /// more; the number of cores with --memory-limit]
    #[arg(long, global = true, env = "WAUSAGE_PARTITIONS", value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_PARTITIONS))]
    pub partitions: Option<usize>,
    /// Rule set that prices messages: auto (the one in force at each message:
    /// cbp, pmp from 2025-07-01, pmp26 from 2026-10-01), or one forced for the whole log
    #[arg(long, global = true, env = "WAUSAGE_RULES", value_name = "RULES",
          value_parser = rule_choice_parser(), ignore_case = true)]
    pub rules: Option<RuleChoice>,
    /// Output format: table, csv, json, ndjson, parquet, html
    /// [default: table on a terminal, else csv]
    #[arg(long, global = true, value_name = "FORMAT", value_parser = format_parser(),
          ignore_case = true)]
    pub format: Option<Format>,
    /// Write results to FILE (atomically: a temporary file renamed on success)
    #[arg(long, short = 'o', global = true, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Rows shown by the table format
    #[arg(long, global = true, value_name = "N")]
    pub max_rows: Option<usize>,
    /// Folder of your own saved queries [default: the config directory's queries/]
    #[arg(long, global = true, env = "WAUSAGE_QUERIES", value_name = "DIR")]
    pub queries: Option<PathBuf>,
    /// Run queries on a Ballista cluster: its scheduler, df://HOST:PORT
    /// (data paths must be readable by every executor)
    #[arg(long, global = true, env = "WAUSAGE_CLUSTER", value_name = "URL")]
    pub cluster: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Interactive SQL shell (also reads statements from piped stdin)
    Repl,
    /// Run SQL statements once, for scripts
    Query {
        /// Read the statements from a .sql file
        #[arg(
            short = 'f',
            long = "file",
            value_name = "FILE",
            conflicts_with = "sql"
        )]
        file: Option<PathBuf>,
        /// The SQL statements, separated by `;`
        sql: Option<String>,
    },
    /// Run a saved query by name or .sql file, with typed parameters
    Run {
        /// A built-in or user query name, or a path to a .sql file
        name: String,
        /// A parameter, as key=value (repeatable)
        #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Exit with code 3 when a row's quota_used_pct or projected_pct reaches PCT,
        /// or its differing_pct (the reconcile queries) exceeds it
        #[arg(long, value_name = "PCT", value_parser = percentage)]
        alert_at: Option<f64>,
    },
    /// List the saved queries with their descriptions and parameters
    Queries,
    /// Write the month's usage page: one self-contained HTML file (needs --output)
    Report {
        /// The month: YYYY-MM, current or previous
        #[arg(long, value_name = "MONTH")]
        month: String,
        /// The contract's monthly quota (or --table contracts=FILE)
        #[arg(long, value_name = "N", value_parser = quota)]
        quota: Option<i64>,
        /// Only this account
        #[arg(long, value_name = "ID")]
        account: Option<String>,
    },
    /// Write a synthetic message log as Parquet
    Generate(GenerateArgs),
    /// Fold webhook files (NDJSON, plain or gzip) into a message log
    Ingest(IngestArgs),
    /// Time the windowing against a plain GROUP BY on a generated log
    Bench(BenchArgs),
    /// Serve the session over Arrow Flight SQL, read-only: the views, the
    /// saved queries (as table functions) and every function, for BI tools,
    /// notebooks and ADBC/JDBC clients
    Serve(ServeArgs),
    /// Start a cluster scheduler (Apache Ballista) that knows every wausage function
    Scheduler {
        /// Address to listen on (gRPC and /healthz, /readyz)
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
        bind: String,
    },
    /// Start a cluster executor that registers with a scheduler and runs its tasks
    Executor(ExecutorArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; without --token-file only a loopback address
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:32010",
          value_parser = parse_socket_addr)]
    pub bind: SocketAddr,
    /// File holding the token clients send, as `Authorization: Bearer TOKEN`
    /// or as the password of Basic auth (a file, so it is not in `ps`)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key, clients connect with grpc+tls://
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Queries that run at once; the rest wait their turn [default: number of cores]
    #[arg(long, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    pub max_concurrent_queries: Option<usize>,
    /// Cancel a query that runs longer, e.g. 30s, 5m, 1h [default: none]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub query_timeout: Option<Duration>,
}

/// `--bind HOST:PORT`: an address, or a name that resolves to one
/// (`localhost:32010`).
fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("{s:?} is not HOST:PORT ({e})"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// `--query-timeout`: `500ms`, `30s`, `5m`, `1h`, or seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t.as_str(), "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{s:?} is not a duration: use e.g. 30s, 5m or 1h")),
    };
    match num.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 && n * scale < 1e9 => {
            Ok(Duration::from_secs_f64(n * scale))
        }
        _ => Err(format!("{s:?} is not a duration: use e.g. 30s, 5m or 1h")),
    }
}

#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler's address
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
    pub scheduler: String,
    /// Arrow Flight address, where results and shuffle data are fetched
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50051")]
    pub bind: String,
    /// gRPC address, where the scheduler sends tasks (same host as --bind)
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50052")]
    pub grpc_bind: String,
    /// Folder for shuffle files [default: a temporary folder]
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Tasks run at once [default: number of cores]
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output directory
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Number of distinct messages
    #[arg(long, value_name = "N")]
    pub messages: u64,
    /// Number of customers [default: messages / 50]
    #[arg(long, value_name = "N")]
    pub customers: Option<u64>,
    /// Number of business accounts
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub accounts: u32,
    /// Random seed: the same seed gives the same files
    #[arg(long, value_name = "S", default_value_t = 42)]
    pub seed: u64,
    /// First day, YYYY-MM-DD
    #[arg(long, value_name = "DATE", default_value = "2024-02-01")]
    pub start: String,
    /// Number of days
    #[arg(long, value_name = "N", default_value_t = 28)]
    pub days: u32,
    /// Write hive partitions month=YYYY-MM/
    #[arg(long)]
    pub partition_by_month: bool,
    /// Rows per Parquet file
    #[arg(long, value_name = "N")]
    pub rows_per_file: Option<u64>,
    /// Also write the log's traffic as webhook files (gzip NDJSON, a file a
    /// day) and its sends file, labelled as our rules price it: input to
    /// try `ingest` and the reconcile queries on. The log's times are then
    /// whole seconds, as webhooks carry them
    #[arg(long, value_name = "DIR")]
    pub webhooks: Option<PathBuf>,
    /// Message ids of 16 bytes (`wamid.` and ten base-36 digits) instead of
    /// the platform's 56–64 characters
    #[arg(long)]
    pub short_ids: bool,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Webhook files: one Cloud API POST body a line, plain or gzip
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The log's directory: month=YYYY-MM/ partitions, re-folded on later runs
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The business's sends file (CSV, NDJSON or Parquet): message_id,
    /// message_type, category[, template_name, sent_at]
    #[arg(long, value_name = "FILE")]
    pub sends: Option<PathBuf>,
    /// Any reject fails the run (exit 1) and nothing is written
    #[arg(long)]
    pub strict: bool,
    /// The bytes of folds held in memory before they spill to disk, exactly
    /// (for tests; --memory-limit sets it to half the limit)
    #[arg(long, hide = true, value_name = "BYTES")]
    pub fold_budget: Option<usize>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Where the benchmark log lives (generated when missing)
    #[arg(long, value_name = "DIR", default_value = "bench_data")]
    pub dir: PathBuf,
    /// Messages in the generated log
    #[arg(long, value_name = "N", default_value_t = 50_000_000)]
    pub messages: u64,
    /// Customers in the generated log
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub customers: u64,
    /// Timed runs of each query
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub runs: usize,
    /// Time the windowing locally against a cluster started on this machine
    /// (a scheduler and 2 executors, child processes of this binary)
    #[arg(long)]
    pub local_cluster: bool,
    /// Each --local-cluster executor's memory pool (its --memory-limit);
    /// default Ballista's, 70% of the machine's memory
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "local_cluster")]
    pub executor_memory: Option<usize>,
    /// Time `ingest` on the log's webhooks (written beside it when missing):
    /// MB/s of NDJSON and peak memory
    #[arg(long, conflicts_with = "local_cluster")]
    pub ingest: bool,
    /// Time the windowing past memory: two logs (generated beside DIR when
    /// missing), cost per message small against large, and the large one
    /// under --scale-limit against unlimited, as processes of this binary
    #[arg(long, conflicts_with_all = ["local_cluster", "ingest"])]
    pub scale: bool,
    /// The two logs' sizes for --scale, SMALL,LARGE
    #[arg(
        long,
        value_name = "SMALL,LARGE",
        value_delimiter = ',',
        default_value = "20000000,200000000"
    )]
    pub scale_messages: Vec<u64>,
    /// Time `wausage serve`: --serve-rows rows streamed over Flight SQL
    /// against `query --format parquet` of the same rows, and the category
    /// report's latency with 8 clients at once
    #[arg(long, conflicts_with_all = ["local_cluster", "ingest", "scale"])]
    pub serve: bool,
    /// The rows --serve streams
    #[arg(long, value_name = "N", default_value_t = 10_000_000)]
    pub serve_rows: u64,
    /// The memory limit of --scale's limited runs
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "2g")]
    pub scale_limit: usize,
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
        for not_a_size in ["0.5", ".6", "1e400", "nan", "inf", "-2g"] {
            assert!(parse_size(not_a_size).is_err(), "{not_a_size}");
        }
        assert!(parse_memory_limit("1k").is_err());
        assert_eq!(
            parse_memory_limit("32m").unwrap(),
            MemoryLimitArg::Size(MIN_MEMORY_LIMIT)
        );
        assert_eq!(parse_memory_limit("None").unwrap(), MemoryLimitArg::None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        for bad in ["", "0s", "-1s", "soon", "5 days", "nan", "1e30h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_parse_into_their_types() {
        let cli = Cli::try_parse_from([
            "wausage",
            "--format",
            "NDJSON",
            "--rules",
            "pmp26",
            "--memory-limit",
            "2g",
            "queries",
        ])
        .unwrap();
        assert_eq!(cli.global.format, Some(Format::Ndjson));
        assert_eq!(cli.global.rules, Some(RuleChoice::Pmp26));
        assert_eq!(cli.global.memory_limit, Some(MemoryLimitArg::Size(2 << 30)));
        for bad in [
            ["--format", "xml"],
            ["--rules", "weekly"],
            ["--memory-limit", "lots"],
            ["--partitions", "0"],
        ] {
            let err = Cli::try_parse_from(["wausage", bad[0], bad[1], "queries"]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
