//! `wausage serve` as a process on loopback, asked by arrow-flight's
//! Flight SQL client (and by ADBC's Python driver): every view and saved
//! reports equal to local runs, bound parameters, the catalog calls, the
//! read-only rule, tokens, TLS, limits, dropped streams and SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use arrow::util::pretty::pretty_format_batches;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables, SqlInfo};
use arrow_flight::FlightInfo;
use futures::TryStreamExt;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use wausage::engine::views::VIEWS;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data")
}

/// A server process, killed when dropped; its stderr collected.
struct Server {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        Server::start_with(&[], args)
    }

    /// A server with global options `globals` and serve's own `args`.
    fn start_with(globals: &[&str], args: &[&str]) -> Server {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("wausage"))
            .env_remove("WAUSAGE_DATA")
            .env_remove("WAUSAGE_CLUSTER")
            .arg("--data")
            .arg(sample())
            .args(globals)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap());
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in lines.lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server did not start: {}", stderr.lock().unwrap()));
        Server {
            child,
            addr,
            stderr,
        }
    }

    fn port(&self) -> &str {
        self.addr.rsplit(':').next().unwrap()
    }

    async fn client(&self) -> FlightSqlServiceClient<Channel> {
        let url = format!("http://127.0.0.1:{}", self.port());
        let channel = Endpoint::from_shared(url).unwrap().connect().await.unwrap();
        FlightSqlServiceClient::new(channel)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr holds `text`.
    fn wait_for_log(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.stderr();
            if log.contains(text) {
                return log;
            }
            assert!(Instant::now() < deadline, "no {text:?} in:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Every endpoint's batches of a FlightInfo.
async fn fetch(client: &mut FlightSqlServiceClient<Channel>, info: FlightInfo) -> Vec<RecordBatch> {
    let mut out = vec![];
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("a ticket");
        let batches: Vec<RecordBatch> = client
            .do_get(ticket)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        out.extend(batches);
    }
    out
}

async fn sql(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<RecordBatch> {
    let info = client.execute(sql.to_string(), None).await.unwrap();
    fetch(client, info).await
}

/// A result as sorted lines of text: equal whatever the batches' split
/// and the rows' order.
fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let text = pretty_format_batches(batches).unwrap().to_string();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.sort();
    lines
}

/// The answer of `wausage query` or `wausage run` over the sample log, as
/// Parquet read back.
fn local(args: &[&str]) -> Vec<RecordBatch> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("local.parquet");
    let status = Command::new(assert_cmd::cargo::cargo_bin("wausage"))
        .env_remove("WAUSAGE_DATA")
        .env_remove("WAUSAGE_CLUSTER")
        .arg("--data")
        .arg(sample())
        .args(["--format", "parquet", "--output"])
        .arg(&out)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "{args:?}");
    let file = std::fs::File::open(&out).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The saved reports served as table functions, with the `run` each
/// equals.
const REPORTS: [(&str, &[&str]); 2] = [
    (
        "SELECT * FROM monthly_utilization('2024-02', 30000)",
        &[
            "run",
            "monthly-utilization",
            "-p",
            "month=2024-02",
            "-p",
            "quota=30000",
        ],
    ),
    (
        "SELECT * FROM conversations_by_category('2024-01')",
        &["run", "conversations-by-category", "-p", "month=2024-01"],
    ),
];

#[test]
fn every_view_and_saved_reports_answer_as_local() {
    let server = Server::start(&[]);
    runtime().block_on(async {
        let mut client = server.client().await;
        for (view, _) in VIEWS {
            let q = format!("SELECT * FROM {view}");
            let served = sql(&mut client, &q).await;
            assert!(
                served.iter().map(|b| b.num_rows()).sum::<usize>() > 0,
                "{view}"
            );
            assert_eq!(lines(&served), lines(&local(&["query", &q])), "{view}");
        }
        for (q, run) in REPORTS {
            let served = sql(&mut client, q).await;
            assert!(!served.is_empty(), "{q}");
            assert_eq!(lines(&served), lines(&local(run)), "{q}");
        }
    });
    let log = server.stderr();
    assert!(
        log.contains("query client=127.0.0.1:") && log.contains("outcome=ok sql=\"SELECT * FROM"),
        "{log}"
    );
}

#[test]
fn saved_queries_are_table_functions_in_query_too() {
    let (q, run) = REPORTS[1];
    assert_eq!(lines(&local(&["query", q])), lines(&local(run)));
    // A placeholder nobody bound is an error naming it, not a made-up value.
    let out = Command::new(assert_cmd::cargo::cargo_bin("wausage"))
        .env_remove("WAUSAGE_DATA")
        .env_remove("WAUSAGE_CLUSTER")
        .arg("--data")
        .arg(sample())
        .args(["query", "SELECT * FROM monthly_utilization($1)"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("argument 1 (month) is $1, and no value is bound to it"),
        "{err}"
    );
}

#[cfg(feature = "cluster")]
#[test]
fn with_cluster_every_query_runs_on_the_cluster() {
    let cluster = crate::cluster::Cluster::start(1);
    let server = Server::start_with(&["--cluster", &cluster.url], &[]);
    let rt = runtime();
    rt.block_on(async {
        let mut client = server.client().await;
        let q = "SELECT * FROM conversations";
        assert_eq!(
            lines(&sql(&mut client, q).await),
            lines(&local(&["query", q]))
        );
        let (report, run) = REPORTS[1];
        assert_eq!(lines(&sql(&mut client, report).await), lines(&local(run)));
    });
    // Without the cluster, the server has nowhere to run a query.
    drop(cluster);
    rt.block_on(async {
        let mut client = server.client().await;
        let run = async {
            let info = client.execute(REPORTS[1].0.into(), None).await?;
            let ticket = info.endpoint[0].ticket.clone().unwrap();
            client.do_get(ticket).await?.try_collect::<Vec<_>>().await
        };
        assert!(run.await.is_err());
    });
}

#[test]
fn prepared_statements_bind_typed_parameters_never_pasted_into_sql() {
    let server = Server::start(&[]);
    runtime().block_on(async {
        let mut client = server.client().await;
        // A value holding a quote and SQL comes back as itself.
        let tricky = "o'brien'); DROP VIEW messages; --";
        let mut p = client.prepare("SELECT $1 AS s".into(), None).await.unwrap();
        p.set_parameters(one_row(&[("s", Arc::new(StringArray::from(vec![tricky])))]))
            .unwrap();
        let info = p.execute().await.unwrap();
        let got = fetch(&mut client, info).await;
        let col = got[0]
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .map(|a| a.value(0).to_string());
        let col = col.unwrap_or_else(|| {
            arrow::util::display::array_value_to_string(got[0].column(0), 0).unwrap()
        });
        assert_eq!(col, tricky);
        // The views are all still there.
        assert!(!sql(&mut client, "SELECT count(*) FROM messages")
            .await
            .is_empty());

        // A parameter compared with a column, typed by the client as Utf8.
        let customer = {
            let b = sql(&mut client, "SELECT min(customer_id) AS c FROM messages").await;
            arrow::util::display::array_value_to_string(b[0].column(0), 0).unwrap()
        };
        let q = "SELECT customer_id, count(*) AS n FROM message_conversations \
                 WHERE customer_id = $1 GROUP BY customer_id";
        let mut p = client.prepare(q.into(), None).await.unwrap();
        p.set_parameters(one_row(&[(
            "c",
            Arc::new(StringArray::from(vec![customer.as_str()])),
        )]))
        .unwrap();
        let info = p.execute().await.unwrap();
        let bound = fetch(&mut client, info).await;
        let literal = sql(&mut client, &q.replace("$1", &format!("'{customer}'"))).await;
        assert_eq!(lines(&bound), lines(&literal));
        p.close().await.unwrap();

        // A saved report with its parameters bound through the statement.
        let mut p = client
            .prepare("SELECT * FROM monthly_utilization($1, $2)".into(), None)
            .await
            .unwrap();
        // Its parameters are announced typed, as JDBC asks before binding.
        let announced: Vec<(String, DataType)> = p
            .parameter_schema()
            .unwrap()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        assert_eq!(
            announced,
            [
                ("$1".to_string(), DataType::Utf8),
                ("$2".to_string(), DataType::Int64)
            ]
        );
        p.set_parameters(one_row(&[
            ("month", Arc::new(StringArray::from(vec!["2024-02"]))),
            (
                "quota",
                Arc::new(arrow::array::Int64Array::from(vec![30000])),
            ),
        ]))
        .unwrap();
        let info = p.execute().await.unwrap();
        let bound = fetch(&mut client, info).await;
        assert_eq!(lines(&bound), lines(&local(REPORTS[0].1)));
        // A bad month is the client's error, named.
        let mut p = client
            .prepare("SELECT * FROM monthly_utilization($1)".into(), None)
            .await
            .unwrap();
        p.set_parameters(one_row(&[(
            "m",
            Arc::new(StringArray::from(vec!["2024-13"])),
        )]))
        .unwrap();
        let err = p.execute().await.unwrap_err().to_string();
        assert!(err.contains("is not a valid YYYY-MM"), "{err}");
        assert!(
            err.contains("monthly_utilization(month, quota, account)"),
            "{err}"
        );
        // Sent as a plain statement, nothing is bound to the placeholder.
        let err = client
            .execute("SELECT * FROM monthly_utilization($1)".into(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no value is bound to it"), "{err}");
    });
}

fn one_row(columns: &[(&str, arrow::array::ArrayRef)]) -> RecordBatch {
    RecordBatch::try_from_iter(columns.iter().map(|(n, a)| (*n, Arc::clone(a)))).unwrap()
}

#[test]
fn catalog_calls_list_the_views_with_their_schemas() {
    let server = Server::start(&[]);
    runtime().block_on(async {
        let mut client = server.client().await;
        let info = client.get_catalogs().await.unwrap();
        let catalogs = lines(&fetch(&mut client, info).await).join("\n");
        assert!(catalogs.contains("datafusion"), "{catalogs}");

        let info = client
            .get_db_schemas(CommandGetDbSchemas {
                catalog: Some("datafusion".into()),
                db_schema_filter_pattern: None,
            })
            .await
            .unwrap();
        let schemas = lines(&fetch(&mut client, info).await).join("\n");
        assert!(schemas.contains("public"), "{schemas}");

        let info = client
            .get_tables(CommandGetTables {
                catalog: None,
                db_schema_filter_pattern: Some("public".into()),
                table_name_filter_pattern: Some("message%".into()),
                table_types: vec![],
                include_schema: true,
            })
            .await
            .unwrap();
        let tables = fetch(&mut client, info).await;
        let names: Vec<String> = (0..tables[0].num_rows())
            .map(|i| arrow::util::display::array_value_to_string(tables[0].column(2), i).unwrap())
            .collect();
        for want in [
            "messages",
            "messages_raw",
            "message_conversations",
            "message_pricing",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        }
        assert!(names.iter().all(|n| n.starts_with("message")), "{names:?}");
        // Each row carries its table's Arrow schema.
        let schema_col = tables[0].column_by_name("table_schema").expect("schemas");
        assert!(schema_col.null_count() == 0 && schema_col.len() == names.len());

        let info = client.get_table_types().await.unwrap();
        let types = lines(&fetch(&mut client, info).await).join("\n");
        assert!(types.contains("VIEW") && types.contains("TABLE"), "{types}");

        let info = client
            .get_sql_info(vec![
                SqlInfo::FlightSqlServerName,
                SqlInfo::FlightSqlServerReadOnly,
            ])
            .await
            .unwrap();
        let sql_info = lines(&fetch(&mut client, info).await).join("\n");
        assert!(
            sql_info.contains("wausage") && sql_info.contains("true"),
            "{sql_info}"
        );

        let info = client
            .get_xdbc_type_info(arrow_flight::sql::CommandGetXdbcTypeInfo { data_type: None })
            .await
            .unwrap();
        let types = lines(&fetch(&mut client, info).await).join("\n");
        for t in ["VARCHAR", "BIGINT", "TIMESTAMP", "DOUBLE", "BOOLEAN"] {
            assert!(types.contains(t), "{t}: {types}");
        }
    });
}

#[test]
fn every_statement_but_a_query_is_refused_before_planning() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x.parquet");
    let secret = dir.path().join("secret.csv");
    std::fs::write(&secret, "a\n1\n").unwrap();
    runtime().block_on(async {
        let mut client = server.client().await;
        let refused = [
            ("CREATE TABLE t (a INT)", "CREATE TABLE"),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            (
                &format!(
                    "CREATE EXTERNAL TABLE s STORED AS CSV LOCATION '{}'",
                    secret.display()
                ),
                "CREATE EXTERNAL TABLE",
            ),
            (
                "INSERT INTO messages_raw SELECT * FROM messages_raw",
                "INSERT",
            ),
            ("DELETE FROM messages_raw", "DELETE"),
            ("UPDATE messages_raw SET status = 'x'", "UPDATE"),
            ("DROP VIEW messages", "DROP VIEW"),
            (
                &format!("COPY (SELECT 1) TO '{}'", target.display()),
                "COPY",
            ),
            ("SET wausage.rules = 'cbp'", "SET"),
            ("SELECT 1 AS a INTO t2", "read-only"),
            ("SELECT 1; SELECT 2", "2 statements"),
        ];
        for (q, kind) in refused {
            let err = client
                .execute(q.to_string(), None)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(kind), "{q}: {err}");
            // Prepared the same way.
            let err = client
                .prepare(q.to_string(), None)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(kind), "{q}: {err}");
        }
        assert!(!target.exists());
        // Nothing changed: the views and the rules are as they were.
        let rules = sql(&mut client, "SHOW wausage.rules").await;
        assert!(lines(&rules).join("\n").contains("auto"));
        assert!(!sql(&mut client, "SELECT count(*) FROM messages")
            .await
            .is_empty());
        let tables = lines(&sql(&mut client, "SHOW TABLES").await).join("\n");
        assert!(
            !tables.contains("| t ") && !tables.contains(" s "),
            "{tables}"
        );
        // Bad SQL is that client's error; the server goes on.
        let err = client
            .execute("SELEC 1".into(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("SELEC"), "{err}");
        let err = client
            .execute("SELECT nope FROM messages".into(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
        assert!(!sql(&mut client, "SELECT 1").await.is_empty());
    });
    // Statements refused when announced have their log line too.
    let log = server.stderr();
    assert!(
        log.contains("outcome=error: wausage serve is read-only")
            && log.contains("sql=\"DROP VIEW messages\""),
        "{log}"
    );
}

#[test]
fn a_token_is_required_when_given_and_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let token = "tok-3f9a1c7e5b2d";
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let server = Server::start(&["--token-file", token_file.to_str().unwrap()]);
    runtime().block_on(async {
        let mut client = server.client().await;
        let err = client
            .execute("SELECT 1".into(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs a token"), "{err}");
        client.set_token("wrong".into());
        let err = client
            .execute("SELECT 1".into(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("wrong token"), "{err}");
        assert!(client.handshake("analyst", "wrong").await.is_err());

        client.set_token(token.into());
        assert!(!sql(&mut client, "SELECT 1").await.is_empty());

        // Basic auth with the token as password (JDBC), then the bearer
        // token the handshake answers with.
        let mut basic = server.client().await;
        basic.handshake("analyst", token).await.unwrap();
        assert_eq!(basic.token().map(String::as_str), Some(token));
        assert!(!sql(&mut basic, "SELECT 2").await.is_empty());
    });
    let log = server.wait_for_log("SELECT 2");
    assert!(!log.contains(token), "{log}");
}

#[test]
fn without_a_token_only_loopback_addresses_are_served() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("wausage"))
        .args(["serve", "--bind", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--token-file"), "{err}");
    // With a token, any address.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "t0ken").unwrap();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("wausage"))
        .args(["serve", "--bind", "0.0.0.0:0", "--token-file"])
        .arg(&token_file)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.contains("listening on grpc://0.0.0.0:"), "{first}");
}

#[test]
fn tls_with_a_certificate_made_here() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let server = Server::start(&[
        "--tls-cert",
        dir.path().join("cert.pem").to_str().unwrap(),
        "--tls-key",
        dir.path().join("key.pem").to_str().unwrap(),
    ]);
    server.wait_for_log("grpc+tls://");
    runtime().block_on(async {
        let url = format!("https://localhost:{}", server.port());
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&cert_pem))
            .domain_name("localhost");
        let channel = Endpoint::from_shared(url.clone())
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = FlightSqlServiceClient::new(channel);
        assert!(!sql(&mut client, "SELECT count(*) FROM messages")
            .await
            .is_empty());
        // Plain text to a TLS port gets no answer.
        let plain = Endpoint::from_shared(format!("http://127.0.0.1:{}", server.port()))
            .unwrap()
            .connect()
            .await;
        if let Ok(channel) = plain {
            let mut client = FlightSqlServiceClient::new(channel);
            assert!(client.execute("SELECT 1".into(), None).await.is_err());
        }
    });
}

#[test]
fn eight_concurrent_clients_get_the_same_answer() {
    let server = Server::start(&["--max-concurrent-queries", "3"]);
    let q = REPORTS[1].0;
    let answers: Vec<Vec<String>> = runtime().block_on(async {
        let mut tasks = vec![];
        for _ in 0..8 {
            let mut client = server.client().await;
            tasks.push(tokio::spawn(
                async move { lines(&sql(&mut client, q).await) },
            ));
        }
        let mut out = vec![];
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let expected = lines(&local(REPORTS[1].1));
    for a in &answers {
        assert_eq!(a, &expected);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.stderr().matches("outcome=ok").count() < 8 {
        assert!(Instant::now() < deadline, "{}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A result of many batches, slow to produce.
const LONG_QUERY: &str = "SELECT m.*, g.value FROM message_conversations m \
                          CROSS JOIN generate_series(1, 2000) AS g";

#[test]
fn a_dropped_stream_cancels_its_query_and_frees_its_slot() {
    let server = Server::start(&["--max-concurrent-queries", "1"]);
    runtime().block_on(async {
        let mut client = server.client().await;
        let info = client.execute(LONG_QUERY.into(), None).await.unwrap();
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let mut stream = client.do_get(ticket).await.unwrap();
        let first = stream.try_next().await.unwrap();
        assert!(first.is_some());
        drop(stream);
        drop(client);
    });
    let log = server.wait_for_log("outcome=cancelled by the client");
    assert!(log.contains("CROSS JOIN"), "{log}");
    // The one slot is free again.
    runtime().block_on(async {
        let mut client = server.client().await;
        assert!(!sql(&mut client, "SELECT 1").await.is_empty());
    });
}

#[test]
fn a_query_past_the_timeout_is_cancelled() {
    let server = Server::start(&["--query-timeout", "300ms"]);
    runtime().block_on(async {
        let mut client = server.client().await;
        let info = client.execute(LONG_QUERY.into(), None).await.unwrap();
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let result: Result<Vec<RecordBatch>, _> =
            client.do_get(ticket).await.unwrap().try_collect().await;
        let err = result.unwrap_err().to_string();
        assert!(err.contains("--query-timeout"), "{err}");
        assert!(!sql(&mut client, "SELECT 1").await.is_empty());
    });
    server.wait_for_log("outcome=timed out");
}

#[test]
fn sigterm_lets_running_queries_finish_then_exits_0() {
    let mut server = Server::start(&[]);
    let pid = server.child.id() as i32;
    let q = "SELECT m.message_id, g.value FROM messages m CROSS JOIN generate_series(1, 100) AS g";
    let (rows, expected) = runtime().block_on(async {
        let mut client = server.client().await;
        let expected = sql(&mut client, "SELECT count(*) * 100 AS n FROM messages").await;
        let expected = arrow::util::display::array_value_to_string(expected[0].column(0), 0)
            .unwrap()
            .parse::<usize>()
            .unwrap();
        let info = client.execute(q.into(), None).await.unwrap();
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let mut stream = client.do_get(ticket).await.unwrap();
        let mut rows = stream.try_next().await.unwrap().unwrap().num_rows();
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        // The running query goes on to its end.
        while let Some(batch) = stream.try_next().await.unwrap() {
            rows += batch.num_rows();
        }
        (rows, expected)
    });
    assert_eq!(rows, expected);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    let log = server.wait_for_log("wausage serve: stopped");
    assert!(log.contains("stopping: no new calls"), "{log}");
    assert!(
        log.contains("outcome=ok sql=\"SELECT m.message_id"),
        "{log}"
    );
}

/// ADBC's Python Flight SQL driver, as notebooks and BI tools use it: the
/// views, a saved report, bound parameters and the catalog, each compared
/// with `wausage query --format parquet` output.
#[test]
fn adbc_python_driver_gets_the_local_answers() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let has_adbc = Command::new(&python)
        .args(["-c", "import adbc_driver_flightsql.dbapi, pyarrow.parquet"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_adbc,
        "this test needs ADBC's Flight SQL driver: \
         pip install adbc-driver-flightsql pyarrow (.ci/run installs them)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut cases = vec![];
    for (n, (view, _)) in VIEWS.iter().enumerate() {
        let q = format!("SELECT * FROM {view}");
        cases.push((q.clone(), vec!["query".to_string(), q], n));
    }
    let (q, run) = REPORTS[0];
    cases.push((
        q.to_string(),
        run.iter().map(|s| s.to_string()).collect(),
        cases.len(),
    ));
    let mut spec = vec![];
    for (q, args, n) in &cases {
        let expected = dir.path().join(format!("expected-{n}.parquet"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let status = Command::new(assert_cmd::cargo::cargo_bin("wausage"))
            .env_remove("WAUSAGE_DATA")
            .arg("--data")
            .arg(sample())
            .args(["--format", "parquet", "--output"])
            .arg(&expected)
            .args(&args)
            .status()
            .unwrap();
        assert!(status.success());
        spec.push(serde_json::json!({"sql": q, "expected": expected}));
    }
    let spec_file = dir.path().join("cases.json");
    std::fs::write(&spec_file, serde_json::to_string(&spec).unwrap()).unwrap();
    let server = Server::start(&[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/adbc_client.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("grpc://127.0.0.1:{}", server.port()))
        .arg(&spec_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n{}",
        server.stderr()
    );
    assert!(
        stdout.contains(&format!("{} results equal", cases.len())),
        "{stdout}"
    );
    assert!(stdout.contains("parameters ok"), "{stdout}");
    assert!(stdout.contains("catalog ok"), "{stdout}");
}

#[test]
fn bench_serve_streams_rows_and_times_the_category_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bench");
    let out = Command::new(assert_cmd::cargo::cargo_bin("wausage"))
        .env_remove("WAUSAGE_DATA")
        .args(["bench", "--serve", "--dir", data.to_str().unwrap()])
        .args(["--messages", "20000", "--customers", "400", "--runs", "1"])
        .args(["--serve-rows", "5000"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("flight sql stream  median "), "{stdout}");
    assert!(stdout.contains("(5000 rows, "), "{stdout}");
    assert!(
        stdout.contains("throughput ratio flight/parquet "),
        "{stdout}"
    );
    assert!(
        stdout.contains("category report, 8 clients: median "),
        "{stdout}"
    );
    assert!(stdout.contains("(40 requests)"), "{stdout}");
}
