//! The same SQL on a Ballista cluster: a scheduler and two executors run
//! as child processes of the built binary on 127.0.0.1, and every view and
//! saved report answers exactly as a local run. Processes are stopped by
//! `Drop`, so also when an assertion fails.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_wausage");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /readyz` on the scheduler: (status, body), or None when nothing answers.
fn readyz(port: u16) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).trim();
    Some((status, body.to_string()))
}

/// A scheduler and its executors, killed and reaped on drop.
pub struct Cluster {
    pub url: String,
    port: u16,
    /// Options every executor of this cluster starts with.
    executor_options: Vec<String>,
    /// Environment every process of this cluster starts with.
    env: Vec<(String, String)>,
    scheduler: Child,
    executors: Vec<Child>,
    logs: tempfile::TempDir,
}

impl Cluster {
    pub fn start(executors: usize) -> Cluster {
        Cluster::start_with(executors, &[])
    }

    /// A cluster whose executors start with `executor_options` too.
    pub fn start_with(executors: usize, executor_options: &[&str]) -> Cluster {
        Cluster::start_full(executors, executor_options, &[])
    }

    /// A cluster whose processes run with `env` set (an object store's
    /// endpoint and credentials).
    pub fn start_with_env(executors: usize, env: &[(&str, String)]) -> Cluster {
        Cluster::start_full(executors, &[], env)
    }

    fn start_full(executors: usize, executor_options: &[&str], env: &[(&str, String)]) -> Cluster {
        let logs = tempfile::tempdir().unwrap();
        let port = free_port();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let scheduler = spawn(
            &["scheduler", "--bind", &format!("127.0.0.1:{port}")],
            &logs.path().join("scheduler.log"),
            &env,
        );
        let mut cluster = Cluster {
            url: format!("df://127.0.0.1:{port}"),
            port,
            env,
            executor_options: executor_options.iter().map(|o| o.to_string()).collect(),
            scheduler,
            executors: vec![],
            logs,
        };
        cluster.wait_for(|r| r.is_some(), "the scheduler to listen");
        for _ in 0..executors {
            cluster.add_executor();
        }
        let want = if executors == 0 {
            "not ready: 0/1 executors registered".to_string()
        } else {
            format!("ready: {executors} executors registered")
        };
        cluster.wait_for(|r| r.as_ref().is_some_and(|(_, body)| *body == want), &want);
        cluster
    }

    fn add_executor(&mut self) {
        let n = self.executors.len();
        let work = self.logs.path().join(format!("executor-{n}"));
        let (scheduler, bind, grpc) = (
            format!("127.0.0.1:{}", self.port),
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        );
        let mut args = vec![
            "executor",
            "--scheduler",
            &scheduler,
            "--bind",
            &bind,
            "--grpc-bind",
            &grpc,
            "--work-dir",
            work.to_str().unwrap(),
            "--concurrency",
            "1",
        ];
        args.extend(self.executor_options.iter().map(String::as_str));
        let child = spawn(
            &args,
            &self.logs.path().join(format!("executor-{n}.log")),
            &self.env,
        );
        self.executors.push(child);
    }

    fn wait_for(&mut self, ok: impl Fn(&Option<(u16, String)>) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let r = readyz(self.port);
            if ok(&r) {
                return;
            }
            if let Ok(Some(status)) = self.scheduler.try_wait() {
                panic!("scheduler exited ({status}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} (last /readyz: {r:?}):\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills executor `n` at once (SIGKILL), as a machine that dies would.
    pub fn kill_executor(&mut self, n: usize) {
        let _ = self.executors[n].kill();
        let _ = self.executors[n].wait();
    }

    /// Everything the processes wrote, for failure messages.
    pub fn log_text(&self) -> String {
        let mut text = String::new();
        let mut entries: Vec<_> = std::fs::read_dir(self.logs.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        entries.sort();
        for p in entries {
            let body = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = body.lines().rev().take(30).collect();
            text.push_str(&format!("--- {}\n", p.display()));
            for l in tail.into_iter().rev() {
                text.push_str(l);
                text.push('\n');
            }
        }
        text
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.executors.iter_mut().chain([&mut self.scheduler]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(args: &[&str], log: &Path, env: &[(String, String)]) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(BIN)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The binary's command, local or on the cluster with `url`, reading
/// `data` as CSV output, with no user environment or config.
fn wausage(data: &Path, url: Option<&str>) -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("WAUSAGE_DATA")
        .env_remove("WAUSAGE_RULES")
        .env_remove("WAUSAGE_CLUSTER")
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("wausage-test-config"),
        )
        .args(["--data", data.to_str().unwrap(), "--format", "csv"]);
    if let Some(url) = url {
        c.args(["--cluster", url]);
    }
    c
}

/// Runs the binary (locally, or on the cluster with `url`) and returns
/// its output; `args` follow the global options.
fn run(data: &Path, url: Option<&str>, args: &[&str]) -> Output {
    wausage(data, url)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The REPL (locally, or on the cluster with `url`) reading `input` piped.
fn run_repl(data: &Path, url: Option<&str>, input: &str) -> Output {
    let mut child = wausage(data, url)
        .arg("repl")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok_stdout(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Every view, ordered so that the text compares exactly.
const VIEW_QUERIES: [&str; 5] = [
    "SELECT * FROM messages ORDER BY message_id",
    // A UNION: Ballista 55.0.0 alone returned wrong rows for this one.
    "SELECT account_id, count(*) FROM messages GROUP BY 1 \
     UNION ALL SELECT NULL, count(*) FROM messages ORDER BY 1 NULLS LAST",
    "SELECT * FROM conversations ORDER BY account_id, customer_id, opened_at, category",
    "SELECT * FROM message_conversations ORDER BY message_id",
    "SELECT * FROM message_pricing ORDER BY message_id",
];

/// Every built-in saved report, with the parameters it needs.
fn reports(month: &str, rates: &Path) -> Vec<Vec<String>> {
    let rates = format!("rates={}", rates.display());
    let m = format!("month={month}");
    let plain = [
        "billable-messages",
        "conversations-by-category",
        "country-allocation",
        "daily-conversations",
        "overall-vs-usage",
    ];
    let mut all: Vec<Vec<String>> = plain
        .iter()
        .map(|r| vec!["run".into(), r.to_string(), "-p".into(), m.clone()])
        .collect();
    all.push(
        ["run", "monthly-utilization", "-p", &m, "-p", "quota=40"]
            .map(String::from)
            .to_vec(),
    );
    all.push(
        [
            "--table",
            &rates,
            "run",
            "cost-estimate",
            "-p",
            &m,
            "-p",
            "allow_missing_rates=true",
        ]
        .map(String::from)
        .to_vec(),
    );
    all
}

/// Asserts that the cluster and a local run print the same text.
fn same_answer(cluster: &Cluster, data: &Path, args: &[&str]) -> String {
    let local = ok_stdout(&run(data, None, args), &format!("local {args:?}"));
    let remote = run(data, Some(&cluster.url), args);
    let remote = if remote.status.success() {
        String::from_utf8(remote.stdout).unwrap()
    } else {
        panic!(
            "cluster {args:?}: exit {:?}\n{}\n{}",
            remote.status.code(),
            String::from_utf8_lossy(&remote.stderr),
            cluster.log_text()
        )
    };
    assert_eq!(remote, local, "cluster and local differ for {args:?}");
    assert!(local.lines().count() > 1, "{args:?} returned no rows");
    local
}

/// The spec's vectors in one log, one customer per vector: the cbp ones in
/// February 2024, the pmp ones in August 2025.
fn vectors_log(dir: &Path) -> Vec<(String, &'static str, &'static str)> {
    let mut rows = vec![];
    let mut customers = vec![];
    for (i, (name, events, want, _)) in crate::vectors::CBP.iter().enumerate() {
        let customer = format!("+62812000{:05}", i);
        rows.extend(parse_events(events, FEB_2024_MS, "acct-v", &customer));
        customers.push((customer, *name, *want));
    }
    for (i, (_, events, _, _, _)) in crate::vectors::PMP.iter().enumerate() {
        let customer = format!("+62813000{:05}", i);
        rows.extend(parse_events(events, AUG_2025_MS, "acct-p", &customer));
    }
    // Ids repeat across vectors (`m001`...): make them unique per customer.
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for r in &mut rows {
        let n = seen.entry(r.customer_id.clone()).or_default();
        *n += 1;
        r.message_id = format!("{}-{}", &r.customer_id[1..], r.message_id);
    }
    write_split(dir, &rows, 4, 7);
    customers
}

#[test]
fn cluster_answers_exactly_as_local() {
    let cluster = Cluster::start(2);
    let tmp = tempfile::tempdir().unwrap();
    let rates = tmp.path().join("rates.csv");
    std::fs::write(&rates, crate::billing::RATES).unwrap();

    // The vectors: every view as local, and each vector's conversations as the spec says.
    let vectors = tmp.path().join("vectors");
    let customers = vectors_log(&vectors);
    for q in VIEW_QUERIES {
        same_answer(&cluster, &vectors, &["query", q]);
    }
    let per_customer = same_answer(
        &cluster,
        &vectors,
        &[
            "query",
            "SELECT customer_id, category, count(*) FROM conversations \
             GROUP BY 1, 2 ORDER BY 1, 2",
        ],
    );
    for (customer, name, want) in customers {
        let got: std::collections::BTreeMap<String, i64> = per_customer
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{customer},")))
            .map(|l| {
                let (c, n) = l.split_once(',').unwrap();
                (c.to_string(), n.parse().unwrap())
            })
            .collect();
        assert_eq!(got, crate::vectors::expected(want), "{name} on the cluster");
    }
    for month in ["2024-02", "2025-08"] {
        for args in reports(month, &rates) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if month == "2025-08" && args.contains(&"daily-conversations") {
                continue; // no cbp conversations open in a pmp month
            }
            same_answer(&cluster, &vectors, &args);
        }
    }

    // A generated log over many files and hive months.
    let generated = tmp.path().join("generated");
    generate_log(
        &generated,
        &[
            "--messages",
            "6000",
            "--customers",
            "300",
            "--seed",
            "7",
            "--start",
            "2024-01-20",
            "--days",
            "20",
            "--partition-by-month",
            "--rows-per-file",
            "1000",
        ],
    );
    for q in VIEW_QUERIES {
        same_answer(&cluster, &generated, &["query", q]);
    }
    for args in reports("2024-02", &rates) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        same_answer(&cluster, &generated, &args);
    }
    // An export through the cluster: written by the client, atomically.
    let export = tmp.path().join("conversations.parquet");
    let out = run(
        &generated,
        Some(&cluster.url),
        &[
            "--output",
            export.to_str().unwrap(),
            "query",
            "SELECT * FROM conversations",
        ],
    );
    ok_stdout(&out, "export");
    assert!(std::fs::metadata(&export).unwrap().len() > 0);

    // The usage page through the cluster: the same page as locally.
    let page = |url: Option<&str>, name: &str| -> String {
        let path = tmp.path().join(name);
        let args = ["report", "--month", "2024-02", "--quota", "40"];
        let out = run(
            &generated,
            url,
            &[&args[..], &["--output", path.to_str().unwrap()]].concat(),
        );
        ok_stdout(&out, name);
        std::fs::read_to_string(&path).unwrap()
    };
    // The REPL through the cluster: statements, a saved query and a
    // switch of rule set, the same lines as locally.
    let input = "SELECT category, count(*) FROM conversations GROUP BY 1 ORDER BY 1;\n\
                 \\rules pmp\n\
                 SELECT rule_set, count(*) FROM message_pricing GROUP BY 1 ORDER BY 1;\n\
                 SELECT count(*) AS customers FROM (SELECT DISTINCT customer_id FROM messages);\n";
    let repl = |url: Option<&str>| ok_stdout(&run_repl(&generated, url, input), "repl");
    let local_repl = repl(None);
    assert!(local_repl.contains("rule_set"), "{local_repl}");
    assert_eq!(repl(Some(&cluster.url)), local_repl);

    let remote = page(Some(&cluster.url), "cluster.html");
    assert!(remote.contains("<svg"), "{remote}");
    assert_eq!(remote, page(None, "local.html"));
}

#[test]
fn cluster_without_scheduler_or_executors_fails_clearly() {
    let data = sample_dir();
    let port = free_port();
    let out = run(
        &data,
        Some(&format!("df://127.0.0.1:{port}")),
        &["query", "SELECT 1"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(out.stdout.is_empty(), "never falls back to a local run");

    let cluster = Cluster::start(0);
    let out = run(&data, Some(&cluster.url), &["query", "SELECT 1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no executor"), "{err}");
    assert!(out.stdout.is_empty());

    let out = run(&data, Some("127.0.0.1:50050"), &["query", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `wausage generate --out DIR ARGS…`, which must succeed.
fn generate_log(dir: &Path, args: &[&str]) {
    let out = Command::new(BIN)
        .args(["generate", "--out", dir.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sample_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample_data")
}

#[test]
fn a_killed_executor_never_gives_a_wrong_answer() {
    let mut cluster = Cluster::start(2);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("log");
    generate_log(
        &data,
        &[
            "--messages",
            "400000",
            "--customers",
            "20000",
            "--seed",
            "3",
            "--rows-per-file",
            "40000",
        ],
    );
    let sql =
        "SELECT account_id, category, count(*) FROM conversations GROUP BY 1, 2 ORDER BY 1, 2";
    let local = ok_stdout(&run(&data, None, &["query", sql]), "local");

    let mut query = Command::new(BIN);
    query
        .args(["--data", data.to_str().unwrap(), "--format", "csv"])
        .args(["--cluster", &cluster.url, "query", sql])
        .env_remove("WAUSAGE_CLUSTER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = query.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the query ended before an executor was killed: the test needs a larger log"
    );
    cluster.kill_executor(0);
    // Ballista may rerun the lost tasks or leave the job hanging; the
    // client must end either way (its watchdog gives up 30 s after the
    // scheduler notices the loss), and this test must never hang CI.
    let deadline = Instant::now() + Duration::from_secs(150);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the query neither finished nor failed within 150 s of losing an executor");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let answered = out.status.success();
    if answered {
        assert_eq!(stdout, local, "the answer after a lost executor");
    } else {
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stdout.is_empty(), "a partial answer: {stdout}");
        assert!(
            stderr.contains("executor") || stderr.contains("lost"),
            "the error should name what was lost: {stderr}\n{}",
            cluster.log_text()
        );
    }
    eprintln!(
        "after the kill: exit {:?}, {}",
        out.status.code(),
        stderr.trim()
    );
    // The cluster still answers with the executor that is left, after a
    // recovered job. (A job Ballista 55 leaves hanging keeps the last
    // executor's task slot: see the README on lost executors.)
    if answered {
        same_answer(&cluster, &data, &["query", sql]);
    }
}

/// Executors of 32 MiB each, and a log of which each of the two tasks after
/// the windowing's shuffle buffers half: 500,000 rows of about 100 bytes
/// (their 60-byte ids among them), about 50 MB, past the executor's whole
/// pool. The windowing operator after the shuffle spills them by range of
/// buckets and evaluates range by range: every view and two saved reports
/// give the local answer. (DataFusion's aggregate grouped by bucket failed
/// here: it cannot spill groups that large.)
#[test]
fn executors_smaller_than_the_windowing_spill_and_answer_as_local() {
    let cluster = Cluster::start_with(2, &["--memory-limit", "32m"]);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("log");
    generate_log(
        &data,
        &[
            "--messages",
            "1000000",
            "--seed",
            "5",
            "--rows-per-file",
            "250000",
        ],
    );
    fn two<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [&["--partitions", "2"][..], args].concat()
    }
    // Each view summed up (its million rows as text would dwarf the test;
    // and a distinct count of a million ids is more than DataFusion's own
    // aggregates fit in 32 MiB).
    for q in [
        "SELECT account_id, direction, status, count(*), count(DISTINCT customer_id), \
         min(sent_at), max(delivered_at), sum(log_rows) FROM messages GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "SELECT account_id, category, country, count(*), count(DISTINCT customer_id), \
         min(opening_message_id), min(opened_at), max(expires_at) \
         FROM conversations GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "SELECT category, opened_category, outside_window, count(*), max(message_id), \
         min(event_at), max(opened_expires_at) FROM message_conversations \
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "SELECT rule_set, template_category, pricing_category, billable, count(*), \
         min(message_id), max(event_at) FROM message_pricing \
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    ] {
        same_answer(&cluster, &data, &two(&["query", q]));
    }
    same_answer(
        &cluster,
        &data,
        &two(&["run", "conversations-by-category", "-p", "month=2024-02"]),
    );
    same_answer(
        &cluster,
        &data,
        &two(&["run", "billable-messages", "-p", "month=2024-02"]),
    );
}

/// `wausage bench --local-cluster` starts its own scheduler and executors,
/// times the windowing locally and on them and the cluster's shuffle floor,
/// checks the cluster's answers against the local ones and the rules
/// core's, and stops its processes.
#[test]
fn bench_local_cluster_times_the_windowing_and_the_shuffle_floor() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let out = Command::new(BIN)
        .env_remove("WAUSAGE_CLUSTER")
        .args(["bench", "--local-cluster", "--dir", dir.to_str().unwrap()])
        .args(["--messages", "20000", "--customers", "400", "--runs", "2"])
        .args(["--executor-memory", "64m"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for run in 1..=2 {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("run {run}: local ")))
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(
            line.contains(", cluster ") && line.contains(", cluster shuffle floor "),
            "{line}"
        );
    }
    assert!(stdout.contains("ratio cluster/local "), "{stdout}");
    assert!(stdout.contains("2 executors of 64 MiB each)"), "{stdout}");
    assert!(stdout.contains("shuffle floor      median "), "{stdout}");
    // Both executors' peaks, read from /proc while they run.
    let peaks = stdout
        .lines()
        .find_map(|l| l.strip_prefix("executors' peak RSS "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(peaks.split(", ").count(), 2, "{peaks}");
    assert!(
        peaks
            .split(", ")
            .all(|p| p.ends_with("MiB") || p.ends_with("GiB")),
        "{peaks}"
    );
    assert!(
        stdout.contains("answer checked against the rules core: {"),
        "{stdout}"
    );
}
