//! `wausage bench`: the performance targets of the scale issue, measured.
//! Generates the benchmark log when missing, then times the windowing query
//! against a plain per-customer GROUP BY on the same files, interleaved,
//! each run in a fresh session (nothing cached), prints medians and the
//! ratio, and checks the windowing's category counts against the rules
//! core run directly on the Parquet rows.

use std::collections::{BTreeMap, HashMap};

use std::time::Instant;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use wausage_udfs::columns::{row, LogBatch};
use wausage_udfs::rules::{customer_key, Row, RuleChoice, Windowing};

use crate::cli::BenchArgs;
use crate::config::Config;
use crate::error::{Result, WaError};
use crate::generate::{generate, GenerateOptions};
use crate::session::build_session;

pub const PLAIN: &str =
    "SELECT count(*) FROM (SELECT account_id, customer_id, count(*) FROM messages_raw GROUP BY 1, 2)";
pub const WINDOWING: &str = "SELECT category, count(*) FROM conversations GROUP BY category";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    v[v.len() / 2]
}

async fn time_query(config: &Config, sql: &str) -> Result<(f64, Vec<RecordBatch>)> {
    let start = Instant::now();
    let ctx = build_session(config).await?;
    let batches = ctx.sql(sql).await?.collect().await?;
    Ok((start.elapsed().as_secs_f64(), batches))
}

/// Two queries timed alternately.
struct Interleaved {
    a_median: f64,
    b_median: f64,
    /// The median of each run's `b / a`. This machine's speed drifts from
    /// minute to minute; a run's two queries share its moment, so their
    /// ratio drifts less than either time does.
    ratio_median: f64,
    /// Read by the cluster benchmark only.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    a_last: Vec<RecordBatch>,
    b_last: Vec<RecordBatch>,
}

/// Times two queries alternately `runs` times, each in a fresh session.
async fn interleaved(
    runs: usize,
    (a_name, a_config, a_sql): (&str, &Config, &str),
    (b_name, b_config, b_sql): (&str, &Config, &str),
) -> Result<Interleaved> {
    let (mut a_times, mut b_times, mut ratios) = (vec![], vec![], vec![]);
    let (mut a_last, mut b_last) = (vec![], vec![]);
    for run in 0..runs.max(1) {
        let (a, a_batches) = time_query(a_config, a_sql).await?;
        let (b, b_batches) = time_query(b_config, b_sql).await?;
        eprintln!(
            "run {}: {a_name} {a:.3} s, {b_name} {b:.3} s, ratio {:.2}x",
            run + 1,
            b / a
        );
        a_times.push(a);
        b_times.push(b);
        ratios.push(b / a);
        (a_last, b_last) = (a_batches, b_batches);
    }
    Ok(Interleaved {
        a_median: median(&mut a_times),
        b_median: median(&mut b_times),
        ratio_median: median(&mut ratios),
        a_last,
        b_last,
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
            let ts = crate::logs::timestamp_type();
            let names = wausage_udfs::columns::LOG_ARGS;
            let values: Vec<_> = names
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
    if args.local_cluster {
        return local_vs_cluster(config, args).await;
    }
    let mut config = config.clone();
    config.data = args.dir.to_string_lossy().into_owned();
    let t = interleaved(
        args.runs,
        ("plain", &config, PLAIN),
        ("windowing", &config, WINDOWING),
    )
    .await?;
    println!("plain GROUP BY     median {:.3} s", t.a_median);
    println!("windowing          median {:.3} s", t.b_median);
    println!(
        "ratio windowing/plain {:.2}x (target <= 2x); median of the runs' ratios {:.2}x",
        t.b_median / t.a_median,
        t.ratio_median
    );
    check_against_core(&config, &t.b_last).await
}

/// Checks a windowing result's category counts against the rules core run
/// directly over the log's files.
async fn check_against_core(config: &Config, batches: &[RecordBatch]) -> Result<()> {
    let got = counts(batches)?;
    let files = crate::logs::register_log(
        &datafusion::prelude::SessionContext::new(),
        "t",
        &config.data,
        crate::logs::LogReads::Cast,
    )
    .await?
    .files;
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

/// The windowing query locally and on a scheduler + 2 executors started on
/// this machine (one task slot each, so both sides use the 2 cores),
/// interleaved, each run in a fresh session.
#[cfg(feature = "cluster")]
async fn local_vs_cluster(config: &Config, args: &BenchArgs) -> Result<()> {
    let cluster = crate::cluster::LocalCluster::start(2).await?;
    let mut local = config.clone();
    local.data = args.dir.to_string_lossy().into_owned();
    local.cluster = None;
    let mut remote = local.clone();
    remote.cluster = Some(cluster.url.clone());
    let t = interleaved(
        args.runs,
        ("local", &local, WINDOWING),
        ("cluster", &remote, WINDOWING),
    )
    .await?;
    let (local_answer, cluster_answer) = (t.a_last, t.b_last);
    println!("windowing local    median {:.3} s", t.a_median);
    println!(
        "windowing cluster  median {:.3} s (scheduler + 2 executors)",
        t.b_median
    );
    println!(
        "ratio cluster/local {:.2}x (target <= 1.5x); median of the runs' ratios {:.2}x",
        t.b_median / t.a_median,
        t.ratio_median
    );
    if counts(&local_answer)? != counts(&cluster_answer)? {
        return Err(WaError::Input(format!(
            "cluster answer {:?} differs from local {:?}",
            counts(&cluster_answer)?,
            counts(&local_answer)?
        )));
    }
    check_against_core(&local, &local_answer).await
}
