//! Logs in an S3-compatible store: moto's standalone server on loopback
//! (`moto_server`, from PyPI's `moto[server]`, installed by `.ci/run`),
//! read, exported and read back through the binary, against the same
//! answers from the local files.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use wausage::engine::views::VIEWS;

use crate::common::wausage;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data")
}

/// A moto server on a free loopback port, killed when dropped.
pub struct Moto {
    pub endpoint: String,
    child: Child,
}

impl Moto {
    /// `auth`: whether it checks credentials (then every key is refused:
    /// moto knows none).
    pub fn start(auth: bool) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new("moto_server");
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if auth {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        let child = command
            .spawn()
            .expect("moto_server (pip install 'moto[server]'; .ci/run installs it)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    /// The environment a client of this server runs with.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ]
    }

    /// Sends one bare HTTP request (moto checks no signature); the response.
    fn http(&self, method: &str, path: &str) -> String {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    pub fn create_bucket(&self, bucket: &str) {
        let response = self.http("PUT", &format!("/{bucket}"));
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }

    /// Multipart uploads begun and neither completed nor aborted.
    fn open_uploads(&self, bucket: &str) -> usize {
        self.http("GET", &format!("/{bucket}?uploads"))
            .matches("<UploadId>")
            .count()
    }

    fn store(&self, bucket: &str) -> impl ObjectStore {
        AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .unwrap()
    }

    /// Copies the local tree `dir` under `prefix` in `bucket`.
    pub fn upload_tree(&self, bucket: &str, dir: &Path, prefix: &str) {
        let store = self.store(bucket);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for file in files_under(dir) {
            let rel = file
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let key = object_store::path::Path::from(format!("{prefix}/{rel}"));
            let bytes = std::fs::read(&file).unwrap();
            rt.block_on(store.put(&key, PutPayload::from(bytes)))
                .unwrap();
        }
    }

    fn exists(&self, bucket: &str, key: &str) -> bool {
        let store = self.store(bucket);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(store.head(&key.into())).is_ok()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out
}

/// `wausage --data DATA [--format csv] ARGS` with `env`: (exit code, stdout, stderr).
fn run(data: &str, env: &[(&str, String)], args: &[&str]) -> (i32, String, String) {
    let mut command = wausage();
    command
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["--data", data]);
    if !args.contains(&"--format") {
        command.args(["--format", "csv"]);
    }
    let out = command.args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sorted(csv: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = csv.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn a_hive_partitioned_log_in_a_bucket_answers_as_local() {
    let moto = Moto::start(false);
    moto.create_bucket("logs");
    moto.upload_tree("logs", &sample(), "wa/2024");
    let env = moto.env();
    let local = sample().to_string_lossy().into_owned();
    for (view, _) in VIEWS {
        let q = format!("SELECT * FROM {view}");
        let (code, remote_rows, err) = run("s3://logs/wa/2024/", &env, &["query", &q]);
        assert_eq!(code, 0, "{view}: {err}");
        let (_, local_rows, _) = run(&local, &[], &["query", &q]);
        assert!(local_rows.lines().count() > 1, "{view}");
        assert_eq!(sorted(&remote_rows), sorted(&local_rows), "{view}");
    }
    // The hive key is a column, globs and a saved report work the same.
    let q = "SELECT month, count(*) FROM messages GROUP BY month ORDER BY month";
    let (code, by_month, err) = run("s3://logs/wa/2024", &env, &["query", q]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(by_month, run(&local, &[], &["query", q]).1);
    let (code, glob, err) = run(
        "s3://logs/wa/2024/**/*.parquet",
        &env,
        &["query", "SELECT count(*) FROM messages_raw"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        glob,
        run(&local, &[], &["query", "SELECT count(*) FROM messages_raw"]).1
    );
    let report = ["run", "conversations-by-category", "-p", "month=2024-01"];
    assert_eq!(
        run("s3://logs/wa/2024/", &env, &report).1,
        run(&local, &[], &report).1
    );
    // `SET aws.*` reaches the stores built after it: a wrong endpoint
    // set in the session is where a table is then looked for.
    let sql = "SET aws.endpoint = 'http://127.0.0.1:9'; \
               CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://logs/wa/2024/month=2024-01/'; \
               SELECT count(*) FROM t";
    let (code, _, err) = run(&local, &env, &["query", sql]);
    assert_eq!(code, 1);
    assert!(err.contains("127.0.0.1:9"), "{err}");
    let sql =
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://logs/wa/2024/month=2024-01/'; \
               SELECT count(*) > 0 AS some FROM t";
    let (code, out, err) = run(&local, &env, &["query", sql]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("true"), "{out}");
}

#[test]
fn an_export_is_uploaded_whole_or_not_at_all() {
    let moto = Moto::start(false);
    moto.create_bucket("out");
    let env = moto.env();
    let local = sample().to_string_lossy().into_owned();
    let q = "SELECT * FROM conversations";
    let (code, _, err) = run(
        &local,
        &env,
        &[
            "--format",
            "parquet",
            "--output",
            "s3://out/reports/conversations.parquet",
            "query",
            q,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(moto.exists("out", "reports/conversations.parquet"));
    // Read back as a table: the same rows.
    let back = run(
        &local,
        &env,
        &[
            "--table",
            "back=s3://out/reports/conversations.parquet",
            "query",
            "SELECT * FROM back",
        ],
    );
    assert_eq!(back.0, 0, "{}", back.2);
    assert_eq!(sorted(&back.1), sorted(&run(&local, &[], &["query", q]).1));
    // A query failing as it runs (a cast error in the rows) leaves no object.
    let failing = "SELECT CAST(customer_id || 'x' AS BIGINT) FROM messages_raw";
    let (code, _, err) = run(
        &local,
        &env,
        &["--output", "s3://out/reports/failed.csv", "query", failing],
    );
    assert_eq!(code, 1, "{err}");
    assert!(!moto.exists("out", "reports/failed.csv"));
    assert_eq!(moto.open_uploads("out"), 0);
}

#[test]
fn a_missing_bucket_and_wrong_credentials_name_the_url() {
    let moto = Moto::start(false);
    let env = moto.env();
    let (code, _, err) = run("s3://no-such-bucket/logs/", &env, &["query", "SELECT 1"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("s3://no-such-bucket/logs/: NoSuchBucket"),
        "{err}"
    );
    let strict = Moto::start(true);
    let (code, _, err) = run("s3://logs/wa/", &strict.env(), &["query", "SELECT 1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("s3://logs/wa/"), "{err}");
    // The export's bucket is missing: an error naming it, exit 1.
    let local = sample().to_string_lossy().into_owned();
    let (code, _, err) = run(
        &local,
        &env,
        &["--output", "s3://nowhere/x.csv", "query", "SELECT 1"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("s3://nowhere/x.csv: NoSuchBucket"), "{err}");
    assert_eq!(err.matches("s3://nowhere/x.csv").count(), 1, "{err}");
}

#[cfg(feature = "cluster")]
#[test]
fn a_cluster_reads_the_bucket_with_its_own_environment() {
    let moto = Moto::start(false);
    moto.create_bucket("logs");
    moto.upload_tree("logs", &sample(), "wa");
    let env = moto.env();
    let cluster = crate::cluster::Cluster::start_with_env(2, &env);
    let q = "SELECT * FROM conversations";
    let (code, on_cluster, err) = run(
        "s3://logs/wa/",
        &env,
        &["--cluster", &cluster.url, "query", q],
    );
    assert_eq!(code, 0, "{err}");
    let local = sample().to_string_lossy().into_owned();
    assert_eq!(
        sorted(&on_cluster),
        sorted(&run(&local, &[], &["query", q]).1)
    );
}
