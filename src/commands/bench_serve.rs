//! `wausage bench --serve`: Flight SQL against files. A server of this
//! binary is started on loopback over the benchmark log; then, run by run
//! and interleaved, `--serve-rows` rows of the log are streamed to a
//! Flight SQL client here and exported by `wausage query --format
//! parquet` (a process, as a BI tool's export would be), and the ratio of
//! their throughputs printed (goal ≥ 0.8). Last, 8 clients at once ask
//! for the category report (`conversations_by_category`) repeatedly:
//! the median and 95th percentile of its latency.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use arrow::util::display::array_value_to_string;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use tonic::transport::{Channel, Endpoint};

use crate::cli::BenchArgs;
use crate::commands::bench::ensure_log;
use crate::commands::measured::run_measured;
use crate::config::Config;
use crate::error::{Result, WaError};

/// Clients asking for the category report at once.
const CLIENTS: usize = 8;

/// A `wausage serve` child, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn exe() -> Result<std::path::PathBuf> {
    std::env::current_exe().map_err(|e| WaError::io("the wausage binary", e))
}

fn start_server(args: &BenchArgs) -> Result<Server> {
    let mut child = Command::new(exe()?)
        .arg("--data")
        .arg(&args.dir)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| WaError::io("wausage serve", e))?;
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.map_err(|e| WaError::io("wausage serve's log", e))?;
        if let Some(rest) = line.split("listening on grpc://").nth(1) {
            port = rest
                .split_whitespace()
                .next()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok());
            break;
        }
    }
    // The per-query lines go on being written: drain them.
    std::thread::spawn(move || for _ in lines {});
    let server = Server {
        child,
        port: port.ok_or_else(|| WaError::Input("wausage serve did not start".into()))?,
    };
    Ok(server)
}

async fn client(port: u16) -> Result<FlightSqlServiceClient<Channel>> {
    let channel = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .map_err(|e| WaError::Input(e.to_string()))?
        .connect()
        .await
        .map_err(|e| WaError::Input(format!("connecting to wausage serve: {e}")))?;
    Ok(FlightSqlServiceClient::new(channel))
}

/// Runs `sql`, reading every batch: (rows, seconds, the batches when `keep`).
async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
    keep: bool,
) -> Result<(u64, f64, Vec<arrow::record_batch::RecordBatch>)> {
    let flight = |e: arrow_flight::error::FlightError| WaError::Input(format!("{sql}: {e}"));
    let started = Instant::now();
    let info = client
        .execute(sql.to_string(), None)
        .await
        .map_err(flight)?;
    let mut rows = 0;
    let mut kept = vec![];
    for endpoint in info.endpoint {
        let ticket = endpoint
            .ticket
            .ok_or_else(|| WaError::Input("an endpoint without a ticket".into()))?;
        let mut stream = client.do_get(ticket).await.map_err(flight)?;
        while let Some(batch) = stream.try_next().await.map_err(flight)? {
            rows += batch.num_rows() as u64;
            if keep {
                kept.push(batch);
            }
        }
    }
    Ok((rows, started.elapsed().as_secs_f64(), kept))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

pub async fn run(_config: &Config, args: &BenchArgs) -> Result<()> {
    ensure_log(args)?;
    let server = start_server(args)?;
    let sql = format!("SELECT * FROM messages_raw LIMIT {}", args.serve_rows);
    let out = tempfile::tempdir().map_err(|e| WaError::io("temporary folder", e))?;
    let export = out.path().join("export.parquet");
    let mut c = client(server.port).await?;
    let (mut flight, mut files) = (vec![], vec![]);
    let mut rows = 0;
    for _ in 0..args.runs.max(1) {
        let (n, secs, _) = fetch(&mut c, &sql, false).await?;
        rows = n;
        flight.push(secs);
        let mut command = Command::new(exe()?);
        command
            .arg("--data")
            .arg(&args.dir)
            .args(["--format", "parquet", "--output"])
            .arg(&export)
            .arg("query")
            .arg(&sql);
        files.push(run_measured(command, "wausage query --format parquet")?.seconds);
    }
    let (flight, files) = (median(&mut flight), median(&mut files));
    println!(
        "flight sql stream  median {flight:.3} s ({rows} rows, {:.1} M rows/s)",
        rows as f64 / flight / 1e6
    );
    println!(
        "query --format parquet median {files:.3} s ({:.1} M rows/s)",
        rows as f64 / files / 1e6
    );
    println!(
        "throughput ratio flight/parquet {:.2} (goal >= 0.8)",
        files / flight
    );

    // The category report of the log's first month, 8 clients at once.
    let (_, _, first) = fetch(
        &mut c,
        "SELECT to_char(min(sent_at), '%Y-%m') AS month FROM messages_raw",
        true,
    )
    .await?;
    let month = first
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| array_value_to_string(b.column(0), 0))
        .transpose()?
        .ok_or_else(|| WaError::Input("the log is empty".into()))?;
    let report = format!("SELECT * FROM conversations_by_category('{month}')");
    let each = args.runs.max(5);
    let mut tasks = vec![];
    for _ in 0..CLIENTS {
        let mut c = client(server.port).await?;
        let report = report.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = vec![];
            for _ in 0..each {
                times.push(fetch(&mut c, &report, false).await?.1);
            }
            Ok::<_, WaError>(times)
        }));
    }
    let mut latencies = vec![];
    for t in tasks {
        latencies.extend(
            t.await
                .map_err(|e| WaError::Input(format!("a client failed: {e}")))??,
        );
    }
    let n = latencies.len();
    println!(
        "category report, {CLIENTS} clients: median {:.3} s, p95 {:.3} s ({n} requests)",
        median(&mut latencies),
        percentile(&mut latencies, 95.0)
    );
    drop(server);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 95.0), 19.0);
        assert_eq!(percentile(&mut v, 50.0), 10.0);
        assert_eq!(percentile(&mut [3.0], 95.0), 3.0);
    }
}
