//! The cluster's processes: `wausage scheduler` and `wausage executor`
//! start Ballista's scheduler and executor in this process, as library
//! calls, so that both resolve every wausage function by name when they
//! decode a plan (plans name functions; they do not carry code); and
//! [`LocalCluster`] starts both as child processes for the benchmark.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;

use super::codec::WausageCodec;
use crate::engine::remote::{host_port, readyz, ADAPTIVE_PLANNER};
use crate::engine::settings::WaOptions;
use crate::error::{Result, WaError};
use crate::storage::{AwsOptions, AzureOptions, GcpOptions, StoreRegistry};

/// Seconds between an executor's heartbeats, and how long the scheduler
/// waits without one before it declares the executor lost and reruns its
/// tasks elsewhere (Ballista's defaults, 60 s and 180 s, would stall a
/// query for minutes after an executor dies).
const HEARTBEAT_SECONDS: u64 = 2;
const EXECUTOR_TIMEOUT_SECONDS: u64 = 10;

/// The settings every scheduler and executor session starts from: Ballista's
/// defaults plus the `wausage.*` namespace, so that the client's settings
/// travel with each query instead of being dropped as unknown keys.
pub(super) fn cluster_config() -> SessionConfig {
    // The client's `aws.*`, `gcp.*` and `azure.*` keys are known here too,
    // though a cluster's stores are built from each process's environment.
    let mut config = SessionConfig::new_with_ballista()
        .with_option_extension(WaOptions::default())
        .with_option_extension(AwsOptions::default())
        .with_option_extension(GcpOptions::default())
        .with_option_extension(AzureOptions::default());
    config
        .options_mut()
        .set(ADAPTIVE_PLANNER, "false")
        .expect("Ballista's config has the adaptive planner setting");
    config
}

/// A scheduler or executor session: DataFusion's and Ballista's functions
/// plus every wausage function.
pub(super) fn cluster_state(config: SessionConfig) -> datafusion::common::Result<SessionState> {
    let mut state = SessionStateBuilder::new_from_existing(default_session_builder(config)?)
        .with_runtime_env(stores_runtime(None)?)
        .with_physical_optimizer_rule(wausage_udfs::single_phase_windowing_rule_for_cluster())
        .with_physical_optimizer_rule(Arc::new(crate::engine::log_table::FooterReadSchemas))
        .build();
    wausage_udfs::register_all_in(&mut state)?;
    Ok(state)
}

/// A runtime whose object stores (`s3://` and the others) are built from
/// this process's environment: scheduler and executors read a bucket with
/// their own credentials, no shared filesystem needed.
fn stores_runtime(
    temp: Option<PathBuf>,
) -> datafusion::common::Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
    let stores = StoreRegistry::from_env();
    let mut runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(stores));
    if let Some(dir) = temp {
        runtime = runtime.with_temp_file_path(dir);
    }
    Ok(Arc::new(runtime.build()?))
}

/// `HOST:PORT` as a socket address; the error names the flag.
fn socket_addr(flag: &str, value: &str) -> Result<SocketAddr> {
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| WaError::Usage(format!("{flag}: expected HOST:PORT, got {value:?}")))
}

fn cluster_error(what: &str, e: impl std::fmt::Display) -> WaError {
    WaError::Input(format!("{what}: {e}"))
}

/// `wausage scheduler --bind HOST:PORT`: runs until killed.
pub async fn run_scheduler(bind: &str) -> Result<()> {
    let addr = socket_addr("--bind", bind)?;
    let config = SchedulerConfig {
        bind_host: addr.ip().to_string(),
        bind_port: addr.port(),
        external_host: addr.ip().to_string(),
        override_session_builder: Some(Arc::new(cluster_state)),
        override_config_producer: Some(Arc::new(cluster_config)),
        override_physical_codec: Some(Arc::new(WausageCodec::default())),
        executor_timeout_seconds: EXECUTOR_TIMEOUT_SECONDS,
        expire_dead_executor_interval_seconds: 2,
        // A job whose last executor is gone fails after this, never hangs.
        no_executors_grace_period_seconds: 30,
        ..Default::default()
    };
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| cluster_error("scheduler", e))?;
    eprintln!("wausage scheduler listening on {addr}");
    start_server(cluster, addr, Arc::new(config))
        .await
        .map_err(|e| cluster_error(&format!("scheduler on {addr}"), e))
}

/// What `wausage executor` takes.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler: String,
    pub bind: String,
    pub grpc_bind: String,
    pub work_dir: Option<PathBuf>,
    pub concurrency: Option<usize>,
    pub memory_limit: Option<usize>,
}

/// `wausage executor`: registers with the scheduler and runs tasks until
/// killed (Ctrl-C or SIGTERM stop it cleanly).
pub async fn run_executor(opts: &ExecutorOptions) -> Result<()> {
    let (scheduler_host, scheduler_port) = host_port("--scheduler", &opts.scheduler)?;
    let flight = socket_addr("--bind", &opts.bind)?;
    let grpc = socket_addr("--grpc-bind", &opts.grpc_bind)?;
    if flight.ip() != grpc.ip() {
        return Err(WaError::Usage(format!(
            "--bind and --grpc-bind must use the same host (Ballista binds both on one), \
             got {} and {}",
            flight.ip(),
            grpc.ip()
        )));
    }
    if let Some(dir) = &opts.work_dir {
        std::fs::create_dir_all(dir).map_err(|e| WaError::io(dir.display().to_string(), e))?;
    }
    let state = cluster_state(cluster_config())?;
    // Ballista's own runtime spills into the work dir, else the temp dir.
    let temp = opts.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let config = ExecutorProcessConfig {
        bind_host: flight.ip().to_string(),
        // Bound to every interface: the scheduler takes the address it
        // sees the executor connect from.
        external_host: (!flight.ip().is_unspecified()).then(|| flight.ip().to_string()),
        port: flight.port(),
        grpc_port: grpc.port(),
        scheduler_host,
        scheduler_port,
        scheduler_connect_timeout_seconds: 30,
        vcores: opts.concurrency.unwrap_or(0),
        work_dir: opts
            .work_dir
            .as_ref()
            .map(|d| d.to_string_lossy().into_owned()),
        executor_heartbeat_interval_seconds: HEARTBEAT_SECONDS,
        memory_pool_size: opts.memory_limit.map(|m| m as u64),
        override_runtime_producer: Some(Arc::new(move |_| stores_runtime(Some(temp.clone())))),
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&state))),
        override_config_producer: Some(Arc::new(cluster_config)),
        override_physical_codec: Some(Arc::new(WausageCodec::default())),
        ..Default::default()
    };
    eprintln!(
        "wausage executor on {flight} (grpc {grpc}), scheduler {}",
        opts.scheduler
    );
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| cluster_error("executor", e))
}

/// A scheduler and executors on this machine, child processes of this
/// binary, for `wausage bench --local-cluster`; killed when dropped.
/// Each executor has one task slot and, when given, a memory pool of
/// `memory_limit` bytes.
pub struct LocalCluster {
    pub url: String,
    children: Vec<std::process::Child>,
    _work: tempfile::TempDir,
}

impl LocalCluster {
    pub async fn start(executors: usize, memory_limit: Option<usize>) -> Result<LocalCluster> {
        let exe = std::env::current_exe().map_err(|e| WaError::io("current executable", e))?;
        let work = tempfile::tempdir().map_err(|e| WaError::io("temporary folder", e))?;
        let free_port = || -> Result<u16> {
            let l = std::net::TcpListener::bind("127.0.0.1:0")
                .map_err(|e| WaError::io("127.0.0.1", e))?;
            Ok(l.local_addr()
                .map_err(|e| WaError::io("127.0.0.1", e))?
                .port())
        };
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let mut cluster = LocalCluster {
            url: format!("df://{addr}"),
            children: vec![],
            _work: work,
        };
        let spawn = |args: Vec<String>| {
            std::process::Command::new(&exe)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .spawn()
                .map_err(|e| WaError::io(exe.display().to_string(), e))
        };
        cluster.children.push(spawn(vec![
            "scheduler".into(),
            "--bind".into(),
            addr.clone(),
        ])?);
        for n in 0..executors {
            let dir = cluster._work.path().join(format!("executor-{n}"));
            let limit = memory_limit.map(|bytes| ["--memory-limit".to_string(), bytes.to_string()]);
            cluster.children.push(spawn(
                [
                    "executor".into(),
                    "--scheduler".into(),
                    addr.clone(),
                    "--bind".into(),
                    format!("127.0.0.1:{}", free_port()?),
                    "--grpc-bind".into(),
                    format!("127.0.0.1:{}", free_port()?),
                    "--work-dir".into(),
                    dir.to_string_lossy().into_owned(),
                    "--concurrency".into(),
                    "1".into(),
                ]
                .into_iter()
                .chain(limit.into_iter().flatten())
                .collect(),
            )?);
        }
        let want = format!("ready: {executors} executors registered");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((_, body)) = readyz(&addr).await {
                if body == want {
                    return Ok(cluster);
                }
            }
            if std::time::Instant::now() > deadline {
                return Err(WaError::Input(format!(
                    "the local cluster at {addr} did not get {executors} executors in 60 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Each executor's peak resident memory so far, in bytes (the kernel's
    /// `VmHWM`), or none where /proc does not tell it.
    pub fn executors_peak_rss(&self) -> Vec<Option<usize>> {
        self.children[1..]
            .iter()
            .map(|child| {
                let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
                status
                    .ok()
                    .and_then(|s| crate::memory::proc_kb(&s, "VmHWM"))
            })
            .collect()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
