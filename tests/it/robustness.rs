//! Hostile inputs: every file under a tree is read or the run says why
//! not; outputs are never written over what must not be; one customer key
//! and one answer whatever the split; bad times, signals, deep SQL, FIFOs
//! and malformed flags end in clear errors with the documented exit codes.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = wausage().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn count(data: &Path) -> (i32, String, String) {
    run(&[
        "--data",
        data.to_str().unwrap(),
        "query",
        "SELECT count(*) AS n FROM messages_raw",
    ])
}

fn pair(customer: &str, ids: &str) -> Vec<LogRow> {
    parse_events(
        &format!("T:m@0#{ids}1, T:m@30#{ids}2"),
        FEB_2024_MS,
        "acct-1",
        customer,
    )
}

#[test]
fn every_file_under_a_tree_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    write_parquet(&tree.join("top.parquet"), &pair("+6281200000001", "a"), 10);
    write_parquet(
        &tree.join("a/b/part-0.parquet"),
        &pair("+6281200000002", "b"),
        10,
    );
    assert_eq!(count(&tree).1, "n\n4\n");
    // A directory holding only subdirectories, and a recursive glob.
    assert_eq!(count(&tree.join("a")).1, "n\n2\n");
    let glob = format!("{}/**/*.parquet", tree.display());
    assert_eq!(count(Path::new(&glob)).1, "n\n4\n");
    // Files below a hive partition keep its key.
    let hive = tmp.path().join("hive");
    write_parquet(
        &hive.join("month=2024-02/x.parquet"),
        &pair("+6281200000001", "a"),
        10,
    );
    write_parquet(
        &hive.join("month=2024-02/extra/y.parquet"),
        &pair("+6281200000002", "b"),
        10,
    );
    let (code, out, err) = run(&[
        "--data",
        hive.to_str().unwrap(),
        "query",
        "SELECT month, count(*) AS n FROM messages_raw GROUP BY month",
    ]);
    assert_eq!((code, out.as_str()), (0, "month,n\n2024-02,4\n"), "{err}");
}

#[test]
fn files_a_listing_would_skip_fail_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let mixed = tmp.path().join("mixed");
    write_parquet(
        &mixed.join("month=2024-02/x.parquet"),
        &pair("+6281200000001", "a"),
        10,
    );
    write_parquet(
        &mixed.join("loose.parquet"),
        &pair("+6281200000002", "b"),
        10,
    );
    let (code, _, err) = count(&mixed);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("loose.parquet") && err.contains("x.parquet") && err.contains("partitioned"),
        "{err}"
    );
    // A `key=value` directory below a plain one is not a hive key.
    let deeper = tmp.path().join("deeper");
    write_parquet(
        &deeper.join("month=2024-02/a.parquet"),
        &pair("+6281200000001", "a"),
        10,
    );
    write_parquet(
        &deeper.join("old/month=2024-01/b.parquet"),
        &pair("+6281200000002", "b"),
        10,
    );
    let (code, _, err) = count(&deeper);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("b.parquet"), "{err}");
    // A file's own column named like the hive key in its path.
    let clash = tmp.path().join("clash");
    write_parquet(
        &clash.join("status=x/a.parquet"),
        &pair("+6281200000001", "a"),
        10,
    );
    let (code, _, err) = count(&clash);
    assert_eq!(code, 1);
    assert!(
        err.contains("a.parquet") && err.contains("`status`"),
        "{err}"
    );
}

#[test]
fn anything_but_a_regular_file_is_an_input_error() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("x.parquet");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    let (code, _, err) = count(&fifo);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("x.parquet") && err.contains("FIFO"), "{err}");
    // In a tree, too.
    let (code, _, err) = count(tmp.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("FIFO"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(30), "no hang");
}

#[test]
fn every_command_writes_outputs_through_one_checked_writer() {
    let tmp = tempfile::tempdir().unwrap();
    write_parquet(
        &tmp.path().join("log/a.parquet"),
        &pair("+6281200000001", "a"),
        10,
    );
    let data = tmp.path().join("log");
    let data = data.to_str().unwrap();
    let report = |output: &Path| {
        run(&[
            "--data",
            data,
            "--output",
            output.to_str().unwrap(),
            "report",
            "--month",
            "2024-02",
            "--quota",
            "100",
        ])
    };
    // A symlink: its target is replaced, the link stays a link.
    let target = tmp.path().join("target.html");
    std::fs::write(&target, "old").unwrap();
    let link = tmp.path().join("link.html");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (code, _, err) = report(&link);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&target).unwrap().contains("<html"));
    // A read-only file is refused and left as it was.
    let ro = tmp.path().join("ro.html");
    std::fs::write(&ro, "keep").unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&ro, perms).unwrap();
    let (code, _, err) = report(&ro);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("ro.html") && err.contains("read-only"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&ro).unwrap(), "keep");
    // A device is written to, never replaced by a regular file.
    let (code, _, err) = report(Path::new("/dev/null"));
    assert_eq!(code, 0, "{err}");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn one_output_file_holds_one_result() {
    let tmp = tempfile::tempdir().unwrap();
    write_parquet(
        &tmp.path().join("log/a.parquet"),
        &pair("+6281200000001", "a"),
        10,
    );
    let data = tmp.path().join("log");
    let data = data.to_str().unwrap();
    let out = tmp.path().join("out.csv");
    std::fs::write(&out, "previous").unwrap();
    let o = out.to_str().unwrap();
    let (code, _, err) = run(&[
        "--data",
        data,
        "--output",
        o,
        "query",
        "SELECT 1 AS a; SELECT 2 AS b",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("statements 1, 2"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous");
    // A failing later statement leaves the previous file as it was.
    let (code, _, _) = run(&[
        "--data",
        data,
        "--output",
        o,
        "query",
        "SET wausage.rules = 'pmp'; SELECT * FROM nope",
    ]);
    assert_eq!(code, 1);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous");
    // Settings and one result are fine.
    let (code, _, err) = run(&[
        "--data",
        data,
        "--output",
        o,
        "query",
        "SET wausage.rules = 'pmp'; SELECT 7 AS seven",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "seven\n7\n");
    // The shell: `\o FILE` takes the next result; a second one needs `\o` again.
    let shell = wausage()
        .args(["--data", data, "--format", "csv", "repl"])
        .write_stdin(format!(
            "\\o {o}\nSELECT 1 AS first;\nSELECT 2 AS second;\n\\o {o}\nSELECT 3 AS third;\n"
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&shell.stderr);
    assert!(err.contains("already holds the previous result"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "third\n3\n");
}

#[test]
fn one_customer_key_and_country_whatever_the_blanks() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = vec![];
    for (n, form) in [
        " +6281234567890 ",
        "+6281234567890\n",
        "6281234567890",
        "++6281234567890",
        "\t+6281234567890",
    ]
    .iter()
    .enumerate()
    {
        rows.extend(parse_events(
            &format!("T:m@{n}#m{n}"),
            FEB_2024_MS,
            "acct-1",
            form,
        ));
    }
    write_split(tmp.path(), &rows, 3, 2);
    let data = tmp.path().to_str().unwrap();
    for limit in [None, Some("256m")] {
        let mut args = vec!["--data", data];
        if let Some(l) = limit {
            args.extend(["--memory-limit", l]);
        }
        args.extend([
            "query",
            "SELECT customer_id, country, category, count(*) AS n FROM conversations GROUP BY 1, 2, 3",
        ]);
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out, "customer_id,country,category,n\n+6281234567890,ID,marketing,1\n",
            "{limit:?}"
        );
    }
    let (_, out, _) = run(&[
        "--data",
        data,
        "query",
        "SELECT DISTINCT customer_id, country FROM messages",
    ]);
    assert_eq!(out, "customer_id,country\n+6281234567890,ID\n");
    let (_, out, _) = run(&[
        "--data",
        data,
        "query",
        "SELECT count(DISTINCT wa_customer_key(customer_id)) AS keys, \
         count(DISTINCT phone_country(customer_id)) AS countries FROM messages_raw",
    ]);
    assert_eq!(out, "keys,countries\n1,1\n");
}

#[test]
fn an_id_under_two_customers_is_an_error_on_every_split() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = pair("+6281200000001", "a");
    let mut twin = rows[0].clone();
    twin.customer_id = "+6281200000002".into();
    rows.push(twin);
    write_split(tmp.path(), &rows, 3, 1);
    for partitions in ["1", "3", "7"] {
        let (code, _, err) = run(&[
            "--data",
            tmp.path().to_str().unwrap(),
            "--partitions",
            partitions,
            "query",
            "SELECT message_id, account_id, customer_id, country FROM messages",
        ]);
        assert_eq!(code, 1, "{partitions}: {err}");
        assert!(err.contains("a1") && err.contains("customer_id"), "{err}");
    }
}

#[test]
fn deliveries_out_of_range_or_before_their_send() {
    let tmp = tempfile::tempdir().unwrap();
    // Delivered in 1700.
    let mut rows = pair("+6281200000001", "a");
    rows[0].delivered_at = Some(-8_520_336_000_000);
    write_parquet(&tmp.path().join("old/a.parquet"), &rows, 10);
    let (code, _, err) = run(&[
        "--data",
        tmp.path().join("old").to_str().unwrap(),
        "query",
        "SELECT count(*) FROM conversations",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("a1") && err.contains("delivered_at"), "{err}");
    // Delivered a day before it was sent, on 1 March: it counts at its
    // send (March), not in February, and a warning names it.
    let rows = vec![{
        let mut r = parse_events(
            "T:m@0#skew1",
            FEB_2024_MS + 29 * 24 * HOUR_MS,
            "acct-1",
            "+6281200000001",
        )
        .remove(0);
        r.delivered_at = Some(r.sent_at - 24 * HOUR_MS);
        r
    }];
    write_parquet(&tmp.path().join("skew/a.parquet"), &rows, 10);
    let (code, out, err) = run(&[
        "--data",
        tmp.path().join("skew").to_str().unwrap(),
        "query",
        "SELECT CAST(opened_at AS VARCHAR) AS opened FROM conversations",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "opened\n2024-03-01T00:00:00Z\n");
    assert!(
        err.contains("warning: 1 message") && err.contains("skew1"),
        "{err}"
    );
}

#[test]
fn null_accounts_or_customers_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    write_parquet(
        &tmp.path().join("src/a.parquet"),
        &pair("+6281200000001", "a"),
        10,
    );
    for column in ["account_id", "customer_id"] {
        let bad = tmp.path().join(format!("bad-{column}"));
        std::fs::create_dir_all(&bad).unwrap();
        let file = bad.join("nulls.parquet");
        let (code, _, err) = run(&[
            "--data",
            tmp.path().join("src").to_str().unwrap(),
            "query",
            &format!(
                "COPY (SELECT * REPLACE (CAST(NULL AS VARCHAR) AS {column}) FROM messages_raw) TO '{}'",
                file.display()
            ),
        ]);
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = count(&bad);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("nulls.parquet") && err.contains(column),
            "{err}"
        );
    }
}

#[test]
fn signals_stop_an_export_and_leave_no_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    write_parquet(
        &tmp.path().join("log/a.parquet"),
        &pair("+6281200000001", "a"),
        10,
    );
    let out_dir = tempfile::tempdir().unwrap();
    // A stale temporary file of a killed run, two days old.
    let stale = out_dir.path().join(".out.csv.dead.tmp");
    std::fs::write(&stale, "x").unwrap();
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(two_days_ago)
        .unwrap();
    for (signal, code) in [("TERM", 143), ("HUP", 129), ("INT", 130)] {
        let out = out_dir.path().join("out.csv");
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("wausage"))
            .args([
                "--data",
                tmp.path().join("log").to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
                "query",
                "SELECT value FROM generate_series(1, 100000000000)",
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Until the export has started writing its temporary file.
        let started = Instant::now();
        while !std::fs::read_dir(out_dir.path()).unwrap().any(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.starts_with(".out.csv.") && !name.contains("dead")
        }) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the export started"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "SIG{signal}");
        let left: Vec<String> = std::fs::read_dir(out_dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "SIG{signal} left {left:?}");
    }
}

#[test]
fn deep_or_long_sql_is_a_clean_error() {
    let long = format!("SELECT {}", vec!["1"; 20_000].join("+"));
    let start = Instant::now();
    let (code, _, err) = run(&["query", &long]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nests more than"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(20));
    // Inside EXPLAIN and COPY, and a long chain of UNIONs, too.
    let unions = vec!["SELECT 1"; 2_000].join(" UNION ALL ");
    for sql in [
        format!("EXPLAIN {long}"),
        format!("COPY ({long}) TO '/dev/null'"),
        unions,
    ] {
        let (code, _, err) = run(&["query", &sql]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("nests more than"), "{err}");
    }
    // Ordinary expressions are untouched.
    let (code, out, _) = run(&[
        "query",
        &format!("SELECT {} AS n", vec!["1"; 100].join("+")),
    ]);
    assert_eq!((code, out.as_str()), (0, "n\n100\n"));
}

#[test]
fn unclear_inputs_get_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    // A saved query file with a byte order mark.
    let q = tmp.path().join("bom.sql");
    std::fs::write(
        &q,
        "\u{feff}-- name: bom\n-- description: d\nSELECT 1 AS one",
    )
    .unwrap();
    let (code, out, err) = run(&["run", q.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (0, "one\n1\n"), "{err}");
    // A nested column in CSV fails before the header.
    let (code, out, err) = run(&["--format", "csv", "query", "SELECT [1, 2] AS list"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty() && err.contains("`list`"), "{out}{err}");
    for args in [
        vec!["--partitions", "0", "query", "SELECT 1"],
        vec!["--partitions", "100000000", "query", "SELECT 1"],
        vec![
            "run",
            "monthly-utilization",
            "-p",
            "month=2024-02",
            "-p",
            "quota=0",
        ],
        vec![
            "run",
            "monthly-utilization",
            "-p",
            "month=2024-02",
            "-p",
            "month=2024-03",
        ],
        vec![
            "run",
            "monthly-utilization",
            "-p",
            "month=2024-02",
            "--alert-at",
            "nan",
        ],
        vec![
            "run",
            "monthly-utilization",
            "-p",
            "month=2024-02",
            "--alert-at",
            "80",
        ],
        vec![
            "run",
            "daily-conversations",
            "-p",
            "month=2024-02",
            "--alert-at",
            "80",
        ],
        vec![
            "report",
            "--month",
            "2024-02",
            "--quota",
            "-5",
            "--output",
            "/dev/null",
        ],
        vec!["--queries", "/no/such/folder", "queries"],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

#[test]
fn one_malformed_user_query_is_a_warning_not_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("broken.sql"),
        "-- param: x nonsense\nSELECT 1",
    )
    .unwrap();
    std::fs::write(tmp.path().join("plain.sql"), "SELECT 2 AS two").unwrap();
    let queries = tmp.path().to_str().unwrap();
    let (code, out, err) = run(&["--queries", queries, "run", "plain"]);
    assert_eq!((code, out.as_str()), (0, "two\n2\n"), "{err}");
    assert!(err.contains("broken.sql"), "{err}");
    let (code, out, _) = run(&["--queries", queries, "queries"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("plain") && out.contains("monthly-utilization"),
        "{out}"
    );
}

#[test]
fn a_string_that_is_not_utf8_names_file_column_and_row() {
    let tmp = tempfile::tempdir().unwrap();
    write_parquet(
        &tmp.path().join("src/a.parquet"),
        &pair("+6281200000001", "a"),
        10,
    );
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let file = bad.join("b.parquet");
    // Plain, uncompressed pages without statistics, so that the id's bytes
    // can be replaced in the file.
    let (code, _, err) = run(&[
        "--data",
        tmp.path().join("src").to_str().unwrap(),
        "query",
        &format!(
            "COPY (SELECT * REPLACE (CASE WHEN message_id = 'a2' THEN 'wZZZZ' ELSE message_id END \
             AS message_id) FROM messages_raw ORDER BY sent_at) TO '{}' STORED AS PARQUET OPTIONS \
             ('format.compression' 'uncompressed', 'format.dictionary_enabled' 'false', \
             'format.statistics_enabled' 'none')",
            file.display()
        ),
    ]);
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&file).unwrap();
    let at = bytes
        .windows(5)
        .position(|w| w == b"wZZZZ")
        .expect("the id in the file");
    let mut patched = bytes.clone();
    patched[at + 1..at + 5].copy_from_slice(&[0xff, 0xfe, 0xfd, 0xfc]);
    std::fs::write(&file, patched).unwrap();
    let (code, _, err) = run(&[
        "--data",
        bad.to_str().unwrap(),
        "query",
        "SELECT count(*) FROM conversations",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("b.parquet") && err.contains("`message_id`") && err.contains("row 2"),
        "{err}"
    );
}

#[test]
fn a_relative_tree_keeps_its_hive_keys_and_dev_stdout_is_appended_to() {
    let tmp = tempfile::tempdir().unwrap();
    write_parquet(
        &tmp.path().join("logs/month=2024-02/a.parquet"),
        &pair("+6281200000001", "a"),
        10,
    );
    std::fs::create_dir_all(tmp.path().join("work")).unwrap();
    let out = wausage()
        .current_dir(tmp.path().join("work"))
        .args([
            "--data",
            "../logs",
            "query",
            "SELECT DISTINCT month FROM messages_raw",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "month\n2024-02\n",
        "{out:?}"
    );
    // `--output /dev/stdout` with stdout on a regular file: appended, not replaced.
    let log = tmp.path().join("log.csv");
    std::fs::write(&log, "earlier\n").unwrap();
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("wausage"))
        .args([
            "--format",
            "csv",
            "--output",
            "/dev/stdout",
            "query",
            "SELECT 1 AS one",
        ])
        .stdout(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "earlier\none\n1\n");
}

/// A log whose windowing rows do not fit in a 32 MiB pool: the operator
/// spills them by range and reads them back, and every view and report
/// gives the unlimited answer.
#[test]
fn past_the_memory_limit_the_windowing_spills_and_every_answer_is_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    wausage()
        .args([
            "generate",
            "--messages",
            "1200000",
            "--customers",
            "30000",
            "--start",
            "2026-09-20",
            "--days",
            "25",
        ])
        .arg("--out")
        .arg(&log)
        .assert()
        .success();
    let data = log.to_str().unwrap();
    let spill = tmp.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let out = |limit: &str, args: &[&str]| {
        let a = wausage()
            .args(["--data", data, "--memory-limit", limit, "--format", "csv"])
            .arg("--spill-dir")
            .arg(&spill)
            .args(args)
            .assert()
            .success();
        String::from_utf8_lossy(&a.get_output().stdout).into_owned()
    };
    let spilled = out(
        "32m",
        &[
            "query",
            "EXPLAIN ANALYZE SELECT category, count(*) FROM conversations GROUP BY category",
        ],
    );
    let line = spilled
        .lines()
        .find(|l| l.contains("BucketedWindowingExec"))
        .unwrap_or_else(|| panic!("{spilled}"));
    assert!(
        line.contains("spilled_rows=") && !line.contains("spilled_rows=0,"),
        "{line}"
    );
    let queries: [&[&str]; 6] = [
        &[
            "query",
            "SELECT category, country, count(*), min(opened_at), max(expires_at), \
                    sum(length(opening_message_id)) \
             FROM conversations GROUP BY 1, 2 ORDER BY 1, 2",
        ],
        &[
            "query",
            "SELECT rule_set, pricing_category, billable, count(*) FROM message_pricing \
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        ],
        &[
            "query",
            "SELECT opened_category, outside_window, count(*), max(opened_expires_at) \
             FROM message_conversations GROUP BY 1, 2 ORDER BY 1, 2",
        ],
        &["run", "conversations-by-category", "-p", "month=2026-10"],
        &[
            "run",
            "monthly-utilization",
            "-p",
            "month=2026-10",
            "-p",
            "quota=100000",
        ],
        &["run", "country-allocation", "-p", "month=2026-09"],
    ];
    for q in queries {
        assert_eq!(out("32m", q), out("none", q), "{q:?}");
    }
    assert_eq!(
        std::fs::read_dir(&spill).unwrap().count(),
        0,
        "every spill file removed"
    );
}

/// A spill dir that fills up: the query fails naming the dir, exit 1, and
/// no spill file is left. The full disk is a real one: a 64 KiB tmpfs
/// mounted in a mount namespace of its own (`unshare -m`, as root).
#[test]
fn a_full_spill_dir_is_an_error_naming_it_with_every_spill_file_removed() {
    if !std::process::Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: `unshare -m` needs root to mount a small file system");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    wausage()
        .args(["generate", "--messages", "600000", "--customers", "12000"])
        .arg("--out")
        .arg(&log)
        .assert()
        .success();
    let spill = tmp.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let left = tmp.path().join("left");
    // Mount, query, then list what is left before the namespace (and the
    // tmpfs) goes away.
    let script = r#"mount -t tmpfs -o size=64k none "$1" || exit 99
"$2" --data "$3" --memory-limit 32m --spill-dir "$1" query \
  "SELECT category, count(*) FROM conversations GROUP BY category"
rc=$?
find "$1" -type f > "$4"
exit $rc"#;
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(&spill)
        .arg(env!("CARGO_BIN_EXE_wausage"))
        .arg(&log)
        .arg(&left)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing half-written to stdout");
    assert!(stderr.contains(spill.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&left).unwrap(),
        "",
        "every spill file removed"
    );
}
