//! `wausage bench`: the windowing's cost against a plain GROUP BY.
//! Generates the benchmark log when missing, then times the windowing query
//! against a plain per-customer GROUP BY and the scan floor on the same
//! files, interleaved, each run in a fresh session (nothing cached), prints
//! medians and ratios, and checks the windowing's category counts against
//! the rules core run directly on the Parquet rows.

use std::collections::{BTreeMap, HashMap};

use std::time::Instant;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use wausage_udfs::log::columns::{row, LogBatch, LOG_ARGS};
use wausage_udfs::rules::{customer_key, Row, RuleChoice, Windowing};

use crate::cli::BenchArgs;
use crate::commands::generate::{generate, GenerateOptions};
use crate::config::Config;
use crate::engine::session::build_session;
use crate::error::{Result, WaError};

pub const PLAIN: &str =
    "SELECT count(*) FROM (SELECT account_id, customer_id, count(*) FROM messages_raw GROUP BY 1, 2)";
pub const WINDOWING: &str = "SELECT category, count(*) FROM conversations GROUP BY category";

/// The scan floor: the plain GROUP BY with a filter that reads every
/// column the windowing reads, so the scan decodes all of them (the long
/// message ids above all). The windowing's time beyond it is the
/// operator's own work. The filter keeps every row that has a message id,
/// and once the first test holds for a whole batch the others are not
/// evaluated: what remains is the decoding. Counting each column per
/// customer would add a third for the counts' updates.
pub fn scan_floor() -> String {
    let tests: Vec<String> = LOG_ARGS
        .iter()
        .map(|c| format!("{c} IS NOT NULL"))
        .collect();
    format!(
        "SELECT count(*) FROM (SELECT account_id, customer_id FROM messages_raw WHERE {} \
         GROUP BY 1, 2)",
        tests.join(" OR ")
    )
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    v[v.len() / 2]
}

/// Runs `statements` in order in a fresh session (nothing cached between
/// runs) and times them together, session start included; returns the last
/// statement's result.
async fn time_query(config: &Config, statements: &[&str]) -> Result<(f64, Vec<RecordBatch>)> {
    let start = Instant::now();
    let ctx = build_session(config).await?;
    let mut batches = vec![];
    for sql in statements {
        batches = ctx.sql(sql).await?.collect().await?;
    }
    Ok((start.elapsed().as_secs_f64(), batches))
}

/// One query of an interleaved benchmark: its name, where it runs and its
/// statements.
type Timed<'a> = (&'a str, &'a Config, &'a [&'a str]);

/// Queries timed alternately.
struct Interleaved {
    /// Each query's median time, in the order given.
    medians: Vec<f64>,
    /// For each query after the first, the median of each run's ratio to
    /// the first. This machine's speed drifts from minute to minute; a
    /// run's queries share its moment, so their ratio drifts less than
    /// either time does.
    ratio_medians: Vec<f64>,
    /// Each query's result in the last run.
    last: Vec<Vec<RecordBatch>>,
}

/// Times `queries` one after another, `runs` times over, each run of each
/// in a fresh session.
async fn interleaved(runs: usize, queries: &[Timed<'_>]) -> Result<Interleaved> {
    let mut times = vec![vec![]; queries.len()];
    let mut ratios = vec![vec![]; queries.len()];
    let mut last = vec![vec![]; queries.len()];
    for run in 0..runs.max(1) {
        let mut line = format!("run {}:", run + 1);
        for (q, (name, config, statements)) in queries.iter().enumerate() {
            let (t, batches) = time_query(config, statements).await?;
            line += &format!("{} {name} {t:.3} s", if q == 0 { "" } else { "," });
            if q > 0 {
                ratios[q].push(t / times[0][run]);
                line += &format!(", ratio {:.2}x", t / times[0][run]);
            }
            times[q].push(t);
            last[q] = batches;
        }
        eprintln!("{line}");
    }
    Ok(Interleaved {
        medians: times.iter_mut().map(|t| median(t)).collect(),
        ratio_medians: ratios.iter_mut().skip(1).map(|r| median(r)).collect(),
        last,
    })
}

/// Category counts from a `category, count` result.
fn counts(batches: &[RecordBatch]) -> Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for b in batches {
        let cats = cast(b.column(0), &DataType::Utf8)?;
        let n = cast(b.column(1), &DataType::Int64)?;
        for i in 0..b.num_rows() {
            out.insert(
                cats.as_string::<i32>().value(i).to_string(),
                n.as_primitive::<Int64Type>().value(i),
            );
        }
    }
    Ok(out)
}

/// Runs the rules core directly over every row of the log's files.
pub fn core_counts(files: &[std::path::PathBuf]) -> Result<BTreeMap<String, i64>> {
    let mut pairs: HashMap<(String, String), (Vec<Row>, Vec<String>)> = HashMap::new();
    for file in files {
        let f =
            std::fs::File::open(file).map_err(|e| WaError::io(file.display().to_string(), e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)?.build()?;
        for batch in reader {
            let batch = batch?;
            let col = |name: &str, t: &DataType| -> Result<arrow::array::ArrayRef> {
                Ok(cast(
                    batch.column_by_name(name).ok_or_else(|| {
                        WaError::Input(format!("{}: no column {name}", file.display()))
                    })?,
                    t,
                )?)
            };
            let ts = crate::engine::logs::timestamp_type();
            let values: Vec<_> = LOG_ARGS
                .iter()
                .map(|n| {
                    col(
                        n,
                        if n.ends_with("_at") {
                            &ts
                        } else {
                            &DataType::Utf8View
                        },
                    )
                })
                .collect::<Result<_>>()?;
            let log = LogBatch::try_new(&values)?;
            let accounts = col("account_id", &DataType::Utf8)?;
            let customers = col("customer_id", &DataType::Utf8)?;
            for i in 0..batch.num_rows() {
                let key = (
                    accounts.as_string::<i32>().value(i).to_string(),
                    customer_key(customers.as_string::<i32>().value(i)).to_string(),
                );
                let entry = pairs.entry(key).or_default();
                entry.0.push(row(
                    log.code(i)?,
                    log.sent_at.value(i),
                    log.delivered_at(i),
                    log.id(i),
                ));
                entry
                    .1
                    .push(String::from_utf8_lossy(log.id(i)).into_owned());
            }
        }
    }
    let mut windowing = Windowing::new(RuleChoice::Auto);
    let mut outcomes = vec![];
    let mut out = BTreeMap::new();
    for (rows, ids) in pairs.values() {
        windowing
            .run_pair(rows, |i| ids[i as usize].as_bytes(), &mut outcomes)
            .map_err(|e| WaError::Input(e.to_string()))?;
        for m in &outcomes {
            if let Some((c, _)) = m.conversation {
                *out.entry(c.as_str().to_string()).or_insert(0) += 1;
            }
        }
    }
    Ok(out)
}

/// Writes the benchmark log when its folder does not exist yet.
pub fn ensure_log(args: &BenchArgs) -> Result<()> {
    if !args.dir.exists() {
        eprintln!(
            "generating {} messages into {} ...",
            args.messages,
            args.dir.display()
        );
        let t = Instant::now();
        generate(&GenerateOptions {
            out: args.dir.clone(),
            messages: args.messages,
            customers: Some(args.customers),
            days: 59,
            ..GenerateOptions::default()
        })?;
        eprintln!("generated in {:.1} s", t.elapsed().as_secs_f64());
    }
    Ok(())
}

pub async fn run(config: &Config, args: &BenchArgs) -> Result<()> {
    ensure_log(args)?;
    if args.ingest {
        return crate::commands::bench_ingest::run(config, args).await;
    }
    if args.local_cluster {
        return local_vs_cluster(config, args).await;
    }
    let mut config = config.clone();
    config.data = args.dir.to_string_lossy().into_owned();
    let scan = scan_floor();
    let t = interleaved(
        args.runs,
        &[
            ("plain", &config, &[PLAIN]),
            ("scan floor", &config, &[&scan]),
            ("windowing", &config, &[WINDOWING]),
        ],
    )
    .await?;
    if !same_rows(&t.last[0], &t.last[1])? {
        return Err(WaError::Input(
            "the scan floor counted other customers than the plain GROUP BY".into(),
        ));
    }
    println!("plain GROUP BY     median {:.3} s", t.medians[0]);
    println!("scan floor         median {:.3} s", t.medians[1]);
    println!("windowing          median {:.3} s", t.medians[2]);
    println!(
        "ratio windowing/plain {:.2}x (target <= 2x); median of the runs' ratios {:.2}x",
        t.medians[2] / t.medians[0],
        t.ratio_medians[1]
    );
    println!(
        "ratio scan floor/plain {:.2}x; windowing/scan floor {:.2}x",
        t.medians[1] / t.medians[0],
        t.medians[2] / t.medians[1]
    );
    check_against_core(&config, &t.last[2]).await
}

/// What the rules core's check holds per log row: the row, and its keys
/// and long message id as strings.
const CORE_CHECK_ROW_BYTES: usize = 200;

/// The most log rows the rules core's check holds: half the memory
/// available to the process (the windowing's runs are over by then), or
/// 8 GiB's worth where that cannot be read.
fn core_check_rows() -> i64 {
    let available = match crate::memory::MemoryLimit::default_for_this_process() {
        crate::memory::MemoryLimit::Default { available, .. } => available,
        _ => 16 << 30,
    };
    (available / 2 / CORE_CHECK_ROW_BYTES) as i64
}

/// Checks a windowing result's category counts against the rules core run
/// directly over the log's files, up to [`core_check_rows`] rows.
async fn check_against_core(config: &Config, batches: &[RecordBatch]) -> Result<()> {
    let got = counts(batches)?;
    let files = crate::engine::logs::register_log(
        &datafusion::prelude::SessionContext::new(),
        "t",
        &config.data,
        crate::engine::logs::LogReads::Cast,
    )
    .await?
    .files;
    let mut rows = 0;
    for file in &files {
        let f =
            std::fs::File::open(file).map_err(|e| WaError::io(file.display().to_string(), e))?;
        rows += ParquetRecordBatchReaderBuilder::try_new(f)?
            .metadata()
            .file_metadata()
            .num_rows();
    }
    let most = core_check_rows();
    if rows > most {
        println!(
            "answer not checked against the rules core: its check holds the log in memory, \
             and {rows} rows is past the {most} that half this machine's memory holds"
        );
        return Ok(());
    }
    let expected = core_counts(&files)?;
    if got != expected {
        return Err(WaError::Input(format!(
            "windowing answer {got:?} differs from the rules core {expected:?}"
        )));
    }
    println!("answer checked against the rules core: {got:?}");
    Ok(())
}

#[cfg(not(feature = "cluster"))]
async fn local_vs_cluster(_config: &Config, _args: &BenchArgs) -> Result<()> {
    Err(WaError::Usage(
        "--local-cluster: this wausage was built without the `cluster` feature".into(),
    ))
}

/// The cluster's floor for the windowing: every row the windowing ships
/// (the keys, the message id, the row's code, both timestamps and the
/// bucket) crosses the same shuffle by bucket, and the stage after it only
/// keeps each bucket's maxima, far less work than the rules. Partial
/// aggregation is turned off (it would shrink the rows to one per bucket
/// before the shuffle). No windowing plan on this cluster can take less
/// than this plus its own evaluation.
pub const SHUFFLE_FLOOR: &[&str] = &[
    "SET datafusion.execution.skip_partial_aggregation_probe_ratio_threshold = 0.0",
    "SET datafusion.execution.skip_partial_aggregation_probe_rows_threshold = 0",
    "SELECT count(*) AS buckets, max(a), max(c), max(id), max(code), max(s), max(d) FROM (
       SELECT wa_key_bucket(account_id, wa_customer_key(customer_id)) AS b,
              max(account_id) AS a, max(wa_customer_key(customer_id)) AS c, max(message_id) AS id,
              max(wa_row_code(message_id, direction, message_type, category, status, sent_at,
                              delivered_at, entry_point)) AS code,
              max(sent_at) AS s, max(delivered_at) AS d
       FROM messages_raw GROUP BY 1)",
];

/// The windowing query locally and on a scheduler + 2 executors started on
/// this machine (one task slot each, so both sides use the 2 cores), and
/// the cluster's shuffle floor, interleaved, each run in a fresh session.
#[cfg(feature = "cluster")]
async fn local_vs_cluster(config: &Config, args: &BenchArgs) -> Result<()> {
    let cluster = crate::cluster::LocalCluster::start(2, args.executor_memory).await?;
    let mut local = config.clone();
    local.data = args.dir.to_string_lossy().into_owned();
    local.cluster = None;
    let mut remote = local.clone();
    remote.cluster = Some(cluster.url.clone());
    let t = interleaved(
        args.runs,
        &[
            ("local", &local, &[WINDOWING]),
            ("cluster", &remote, &[WINDOWING]),
            ("cluster shuffle floor", &remote, SHUFFLE_FLOOR),
        ],
    )
    .await?;
    println!("windowing local    median {:.3} s", t.medians[0]);
    let pools = match args.executor_memory {
        Some(bytes) => format!(" of {} each", crate::memory::size(bytes)),
        None => String::new(),
    };
    println!(
        "windowing cluster  median {:.3} s (scheduler + 2 executors{pools})",
        t.medians[1]
    );
    println!(
        "ratio cluster/local {:.2}x; median of the runs' ratios {:.2}x",
        t.medians[1] / t.medians[0],
        t.ratio_medians[0]
    );
    println!(
        "shuffle floor      median {:.3} s: {:.2}x local (median of the runs' ratios {:.2}x), \
         the cluster's cost before any windowing",
        t.medians[2],
        t.medians[2] / t.medians[0],
        t.ratio_medians[1]
    );
    let peaks: Vec<String> = cluster
        .executors_peak_rss()
        .into_iter()
        .map(|peak| peak.map_or("unknown".into(), crate::memory::size))
        .collect();
    println!("executors' peak RSS {}", peaks.join(", "));
    let (local_answer, cluster_answer) = (&t.last[0], &t.last[1]);
    if counts(local_answer)? != counts(cluster_answer)? {
        return Err(WaError::Input(format!(
            "cluster answer {:?} differs from local {:?}",
            counts(cluster_answer)?,
            counts(local_answer)?
        )));
    }
    let (_, floor_local) = time_query(&local, SHUFFLE_FLOOR).await?;
    if !same_rows(&floor_local, &t.last[2])? {
        return Err(WaError::Input(
            "the shuffle floor's answer on the cluster differs from the local one".into(),
        ));
    }
    check_against_core(&local, local_answer).await
}

/// Whether two results hold the same rows, compared as CSV text.
fn same_rows(a: &[RecordBatch], b: &[RecordBatch]) -> Result<bool> {
    let text = |batches: &[RecordBatch]| -> Result<Vec<u8>> {
        let mut out = vec![];
        let mut w = arrow::csv::Writer::new(&mut out);
        for batch in batches {
            w.write(batch)?;
        }
        drop(w);
        Ok(out)
    };
    Ok(text(a)? == text(b)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// The optimizer drops from the scan every column the query does not
    /// need: the scan floor must still read every column the windowing
    /// reads, and no other.
    #[tokio::test]
    async fn the_scan_floor_reads_every_column_the_windowing_reads() {
        let fields: Vec<Field> = ["account_id", "customer_id"]
            .iter()
            .chain(LOG_ARGS.iter())
            .chain(["country"].iter())
            .map(|name| Field::new(*name, DataType::Utf8, true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let ctx = SessionContext::new();
        let table = MemTable::try_new(schema.clone(), vec![vec![RecordBatch::new_empty(schema)]]);
        ctx.register_table("messages_raw", Arc::new(table.unwrap()))
            .unwrap();
        let plan = ctx
            .sql(&scan_floor())
            .await
            .unwrap()
            .into_optimized_plan()
            .unwrap();
        let text = plan.display_indent().to_string();
        let scan = text
            .lines()
            .find(|l| l.contains("TableScan: messages_raw"))
            .unwrap_or_else(|| panic!("{text}"));
        for column in LOG_ARGS {
            assert!(scan.contains(column), "{scan}");
        }
        assert!(!scan.contains("country"), "{scan}");
    }
}
