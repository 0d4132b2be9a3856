//! `--cluster df://HOST:PORT`: a session whose queries an Apache Ballista
//! cluster plans and runs. The client registers the same log, tables and
//! views as a local session, and formats and exports the results itself;
//! [`split_union`] is the one planning change that keeps answers exact.
//! The scheduler and executor processes are `crate::cluster`.
//!
//! How the work divides: the scan is split by file (and byte range) over
//! the executors; the windowing aggregates hash-partition their rows by
//! (account_id, customer) in a shuffle, so each customer's whole history
//! meets in one task, exactly as the two phases of a local aggregation.

mod split_union;

use std::sync::Arc;
use std::time::Duration;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Result, WaError};

/// `HOST:PORT` split, without resolving the host (the scheduler may name a
/// machine that this one resolves differently later).
pub(crate) fn host_port(flag: &str, value: &str) -> Result<(String, u16)> {
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| WaError::Usage(format!("{flag}: expected HOST:PORT, got {value:?}")))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| WaError::Usage(format!("{flag}: bad port in {value:?}")))?;
    if host.is_empty() {
        return Err(WaError::Usage(format!("{flag}: no host in {value:?}")));
    }
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

/// The scheduler's `host:port` in a `df://HOST:PORT` URL.
pub fn parse_cluster_url(url: &str) -> Result<(String, u16)> {
    let rest = url.strip_prefix("df://").ok_or_else(|| {
        WaError::Usage(format!("--cluster: expected df://HOST:PORT, got {url:?}"))
    })?;
    host_port("--cluster", rest.trim_end_matches('/'))
}

/// Asks the scheduler whether it has an executor (`GET /readyz`, served
/// on its one port beside gRPC). A query sent to a scheduler without
/// executors would wait forever, so this fails first, naming what is
/// missing; `--cluster` never falls back to running locally.
pub async fn check_ready(url: &str) -> Result<()> {
    let (host, port) = parse_cluster_url(url)?;
    let addr = format!("{host}:{port}");
    let unreachable = |e: &dyn std::fmt::Display| {
        WaError::Input(format!(
            "--cluster {url}: cannot reach the scheduler at {addr}: {e}"
        ))
    };
    let (status, body) = readyz(&addr).await.map_err(|e| unreachable(&e))?;
    match status.as_str() {
        "200" => Ok(()),
        "503" => Err(WaError::Input(format!(
            "--cluster {url}: the scheduler has no executor to run queries ({body})"
        ))),
        _ => Err(unreachable(&format!(
            "not a wausage scheduler (HTTP status {status:?})"
        ))),
    }
}

/// The scheduler a `--cluster` session sends its queries to, held by the
/// session itself (a `SessionConfig` extension), so that each session
/// knows its own cluster.
#[derive(Debug)]
pub struct Scheduler {
    pub url: String,
}

/// How long a query may go on after the scheduler has lost one of the
/// executors it started with. Ballista reruns a lost executor's tasks on
/// the others, and usually finishes; but Ballista 55 sometimes leaves such
/// a job running forever, and a scheduled report must end.
const LOST_EXECUTOR_GRACE: Duration = Duration::from_secs(30);

/// Resolves, with the error to report, once the cluster has had fewer
/// executors than at the start of the query for [`LOST_EXECUTOR_GRACE`];
/// never resolves without a `--cluster` session. The caller drops the
/// query's stream then, so nothing is written and the exit code is 1.
pub async fn lost_executor(ctx: &datafusion::prelude::SessionContext) -> WaError {
    let Some(scheduler) = ctx.state().config().get_extension::<Scheduler>() else {
        return std::future::pending().await;
    };
    let url = &scheduler.url;
    let Ok((host, port)) = parse_cluster_url(url) else {
        return std::future::pending().await;
    };
    let addr = format!("{host}:{port}");
    let executors = || async {
        let (_, body) = readyz(&addr).await.ok()?;
        // `ready: 2 executors registered`
        body.split(|c: char| !c.is_ascii_digit())
            .find(|d| !d.is_empty())?
            .parse::<usize>()
            .ok()
    };
    let at_start = executors().await;
    let mut lost_since: Option<std::time::Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        match (at_start, executors().await) {
            (Some(start), Some(now)) if now < start => {
                let since = *lost_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= LOST_EXECUTOR_GRACE {
                    return WaError::Input(format!(
                        "--cluster {url}: an executor was lost while the query ran \
                         ({now} of {start} left), and the cluster had not finished the query \
                         {} s later; nothing was written: run it again",
                        LOST_EXECUTOR_GRACE.as_secs()
                    ));
                }
            }
            _ => lost_since = None,
        }
    }
}

/// `GET /readyz` on the scheduler at `addr`: the HTTP status and the body
/// (`ready: 2 executors registered`).
pub(crate) async fn readyz(addr: &str) -> std::io::Result<(String, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 10 s")
        })??;
    let status = response.split_whitespace().nth(1).unwrap_or("").to_string();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Ballista's adaptive planner. It plans each stage with its own list of
/// physical optimizer rules, not the session's, so it would drop
/// `SinglePhaseWindowing` and send every windowing row through the shuffle
/// twice (as rows, then as one-row list states). Off.
pub(crate) const ADAPTIVE_PLANNER: &str = "ballista.planner.adaptive.enabled";

/// Ballista compresses shuffle files with lz4 by default. The windowing's
/// shuffle carries every log row (keys, message id, a code, two
/// timestamps), and compressing it costs the executors more CPU than the
/// local disk or network it saves. Set to `none` for the client's queries; `SET ballista.shuffle.compression.codec
/// = 'lz4'` (or `'zstd'`) puts it back where the network, not the CPU, is
/// the bottleneck.
pub(crate) const SHUFFLE_CODEC: &str = "ballista.shuffle.compression.codec";

/// How many bytes of rows Ballista's sort-shuffle writer buffers per task
/// before it sorts them by output partition and spills them. Each output
/// partition's rows are gathered from the buffered batches a row and a
/// column at a time; from Ballista's default 256 MiB nearly every gather
/// misses the cache, while 8 MiB of rows per task (two tasks share a
/// 32 MiB L3) stay in it ([docs/cluster.md](../../docs/cluster.md) has
/// the figures). `SET ballista.shuffle.sort_based.memory_limit_per_task_bytes = …` in a
/// query file overrides it.
pub(crate) const SHUFFLE_BUDGET: &str = "ballista.shuffle.sort_based.memory_limit_per_task_bytes";
const SHUFFLE_BUDGET_BYTES: usize = 8 << 20;

/// The client's session config for the cluster: Ballista's settings, its
/// adaptive planner off, shuffle files uncompressed and buffered in small
/// pieces, file work stealing off.
fn client_config(config: SessionConfig) -> Result<SessionConfig> {
    let mut config = config.upgrade_for_ballista();
    config.options_mut().set(ADAPTIVE_PLANNER, "false")?;
    config.options_mut().set(SHUFFLE_CODEC, "none")?;
    config
        .options_mut()
        .set(SHUFFLE_BUDGET, &SHUFFLE_BUDGET_BYTES.to_string())?;
    // Each executor runs its own partitions of a scan; with work stealing,
    // one plan instance could read files meant for another's partitions.
    config
        .options_mut()
        .execution
        .enable_file_stream_work_stealing = false;
    Ok(config)
}

/// A session whose queries run on the cluster at `url`. The caller
/// registers functions, tables and views on it as on a local session
/// (Ballista's state upgrade replaces the function lists, so they must come
/// after).
pub async fn remote_context(
    url: &str,
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
) -> Result<SessionContext> {
    check_ready(url).await?;
    let config = config.with_extension(Arc::new(Scheduler {
        url: url.to_string(),
    }));
    let state = SessionStateBuilder::new()
        .with_config(client_config(config)?)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    let remote = SessionContext::remote_with_state(url, state).await?;
    Ok(split_union::install(remote))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls() {
        assert_eq!(
            parse_cluster_url("df://127.0.0.1:50050").unwrap(),
            ("127.0.0.1".to_string(), 50050)
        );
        assert_eq!(
            parse_cluster_url("df://sched.internal:7000/").unwrap(),
            ("sched.internal".to_string(), 7000)
        );
        for bad in ["127.0.0.1:50050", "df://host", "df://:1", "df://h:port"] {
            let e = parse_cluster_url(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}: {e}");
        }
    }

    #[test]
    fn the_adaptive_planner_is_off_so_windowing_keeps_one_phase() {
        let client = client_config(SessionConfig::new()).unwrap();
        assert!(!client.ballista_config().adaptive_query_planner_enabled());
    }

    #[test]
    fn shuffle_files_are_uncompressed_unless_set() {
        let mut client = client_config(SessionConfig::new()).unwrap();
        let codec = client
            .ballista_config()
            .shuffle_compression_codec()
            .unwrap();
        assert_eq!(codec, None);
        client.options_mut().set(SHUFFLE_CODEC, "lz4").unwrap();
        assert!(client
            .ballista_config()
            .shuffle_compression_codec()
            .unwrap()
            .is_some());
    }

    #[test]
    fn the_shuffle_buffers_rows_in_cache_sized_pieces_unless_set() {
        let mut client = client_config(SessionConfig::new()).unwrap();
        let budget = |c: &SessionConfig| {
            c.ballista_config()
                .shuffle_sort_based_memory_limit_per_task_bytes()
        };
        assert_eq!(budget(&client), 8 << 20);
        client
            .options_mut()
            .set(SHUFFLE_BUDGET, "268435456")
            .unwrap();
        assert_eq!(budget(&client), 256 << 20);
    }

    #[tokio::test]
    async fn an_unreachable_scheduler_is_an_input_error_naming_it() {
        // Port 1 on loopback: nothing listens there.
        let e = check_ready("df://127.0.0.1:1").await.unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    }
}
