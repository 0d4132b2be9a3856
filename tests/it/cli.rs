//! Whole-binary runs: registration of every kind of path, every output
//! format and export, exit codes and error messages, the REPL on piped
//! input, and `generate`.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

use crate::common::*;

fn small_log(dir: &Path) {
    let mut rows = parse_events(
        "in@0, F@1, T:m@2, T:u@3 x",
        FEB_2024_MS,
        "acct-1",
        "+6281200000001",
    );
    rows.extend(parse_events(
        "T:m@0#z1, T:m@30#z2",
        FEB_2024_MS,
        "acct-2",
        "+14165550123",
    ));
    write_parquet(&dir.join("log.parquet"), &rows, 3);
}

fn stdout(c: &mut Command) -> String {
    let out = c.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn first_command_on_the_shipped_sample() {
    let out = stdout(wausage().args(["query", "SELECT count(*) AS n FROM conversations"]));
    let n: i64 = out.lines().nth(1).unwrap().parse().unwrap();
    assert!(n > 1000, "{out}");
}

#[test]
fn registers_file_directory_glob_and_hive_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    small_log(tmp.path());
    let file = tmp.path().join("log.parquet");
    let glob = format!("{}/*.parquet", tmp.path().display());
    for data in [
        file.to_str().unwrap(),
        tmp.path().to_str().unwrap(),
        glob.as_str(),
    ] {
        let out =
            stdout(wausage().args(["--data", data, "query", "SELECT count(*) FROM messages_raw"]));
        assert_eq!(out, "count(*)\n6\n", "{data}");
    }
    let hive = tempfile::tempdir().unwrap();
    write_parquet(
        &hive.path().join("month=2024-02/a.parquet"),
        &parse_events("T:m@0", FEB_2024_MS, "a", "+6281200000001"),
        10,
    );
    write_parquet(
        &hive.path().join("month=2024-03/b.parquet"),
        &parse_events("T:m@700#q", FEB_2024_MS, "a", "+6281200000001"),
        10,
    );
    let out = stdout(wausage().args([
        "--data",
        hive.path().to_str().unwrap(),
        "query",
        "SELECT month, count(*) AS n FROM messages_raw GROUP BY month ORDER BY month",
    ]));
    assert_eq!(out, "month,n\n2024-02,1\n2024-03,1\n");
}

#[test]
fn every_format_and_atomic_export() {
    let tmp = tempfile::tempdir().unwrap();
    small_log(tmp.path());
    let data = tmp.path().to_str().unwrap();
    let sql = "SELECT category, count(*) AS n FROM conversations GROUP BY 1 ORDER BY 1";
    let csv = stdout(wausage().args(["--data", data, "--format", "csv", "query", sql]));
    assert_eq!(csv, "category,n\nmarketing,3\nservice,1\n");
    let json = stdout(wausage().args(["--data", data, "--format", "json", "query", sql]));
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed[0]["category"], "marketing");
    assert_eq!(parsed[0]["n"], 3);
    let ndjson = stdout(wausage().args(["--data", data, "--format", "ndjson", "query", sql]));
    assert_eq!(ndjson.lines().count(), 2);
    let table = stdout(wausage().args(["--data", data, "--format", "table", "query", sql]));
    assert!(
        table.contains("| marketing") && table.contains("2 rows"),
        "{table}"
    );
    let html = stdout(wausage().args(["--data", data, "--format", "html", "query", sql]));
    assert!(html.contains("<table") && html.contains("marketing"));

    // Outside the log's tree: every file under it is part of the log.
    let exports = tempfile::tempdir().unwrap();
    let out = exports.path().join("export/out.parquet");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    wausage()
        .args([
            "--data",
            data,
            "--output",
            out.to_str().unwrap(),
            "query",
            sql,
        ])
        .assert()
        .success();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&out).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    assert_eq!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>(), 2);

    // A failing query leaves neither the file nor a temporary one.
    let failed = tmp.path().join("export/failed.csv");
    wausage()
        .args([
            "--data",
            data,
            "--output",
            failed.to_str().unwrap(),
            "query",
            "SELECT 1/0 AS x FROM messages_raw WHERE CAST('x' AS INT) = 1",
        ])
        .assert()
        .code(1);
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("out.parquet")]);
    // COPY works too.
    let copied = exports.path().join("copied.parquet");
    wausage()
        .args([
            "--data",
            data,
            "query",
            &format!(
                "COPY (SELECT * FROM conversations) TO '{}'",
                copied.display()
            ),
        ])
        .assert()
        .success();
    assert!(copied.exists());
}

#[test]
fn exit_codes_and_error_messages() {
    let tmp = tempfile::tempdir().unwrap();
    small_log(tmp.path());
    let data = tmp.path().to_str().unwrap();
    wausage()
        .args(["--data", data, "--format", "xml", "query", "SELECT 1"])
        .assert()
        .code(2);
    wausage()
        .args(["--data", data, "--rules", "weekly", "query", "SELECT 1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("auto, cbp, pmp, pmp26"));
    wausage()
        .args(["--data", data, "query", "SELEC 1"])
        .assert()
        .code(1);
    // The first error stops the run: the third statement never prints.
    wausage()
        .args([
            "--data",
            data,
            "query",
            "SELECT 'one' AS a; SELECT * FROM nope; SELECT 'three' AS c",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("one").and(predicate::str::contains("three").not()));
    wausage()
        .args(["--data", "/no/such/dir", "query", "SELECT 1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/no/such/dir"));
    // A memory pool too small for any query: a usage error, before
    // DataFusion's internal errors.
    for tiny in ["1k", "4m"] {
        wausage()
            .args([
                "--memory-limit",
                tiny,
                "query",
                "SELECT category, count(*) FROM conversations GROUP BY category",
            ])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("at least 32m"));
    }
}

#[test]
fn missing_or_mistyped_column_names_file_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = parse_events("T:m@0", FEB_2024_MS, "a", "+6281200000001");
    let b = batch(&rows);
    let idx = b.schema().index_of("status").unwrap();
    let mut b = b;
    b.remove_column(idx);
    let path = tmp.path().join("bad.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        b.schema(),
        None,
    )
    .unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    wausage()
        .args(["--data", tmp.path().to_str().unwrap(), "query", "SELECT 1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("bad.parquet").and(predicate::str::contains("`status`")));
}

#[test]
fn bad_values_are_reported_with_the_message_id() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = parse_events(
        "T:m@0#ok, T:m@1#bad-dir, T:u@2#no-cat",
        FEB_2024_MS,
        "a",
        "+6281200000001",
    );
    rows[1].direction = "sideways";
    write_parquet(&tmp.path().join("a.parquet"), &rows[..2], 10);
    wausage()
        .args([
            "--data",
            tmp.path().to_str().unwrap(),
            "query",
            "SELECT count(*) FROM conversations",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("bad-dir").and(predicate::str::contains("sideways")));
    let tmp2 = tempfile::tempdir().unwrap();
    let mut rows2 = rows.clone();
    rows2[2].category = None;
    write_parquet(
        &tmp2.path().join("a.parquet"),
        &[rows2[0].clone(), rows2[2].clone()],
        10,
    );
    wausage()
        .args([
            "--data",
            tmp2.path().to_str().unwrap(),
            "query",
            "SELECT count(*) FROM conversations",
        ])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("no-cat")
                .and(predicate::str::contains("template without category")),
        );
}

#[test]
fn repl_reads_piped_statements_and_meta_commands() {
    let tmp = tempfile::tempdir().unwrap();
    small_log(tmp.path());
    let out = stdout(
        wausage()
            .args(["--data", tmp.path().to_str().unwrap(), "repl"])
            .write_stdin(
                "SELECT 1 AS x;\nSELECT\n  2 AS y\n;\n\\d conversations\n\\h phone_country\n\\rules\n\\rules pmp\n\\rules\n\
                 SELECT DISTINCT rule_set FROM message_pricing;\n\\q\nSELECT 3;\n",
            ),
    );
    assert!(out.starts_with("x\n1\ny\n2\n"), "{out}");
    assert!(out.contains("opening_message_id"), "{out}");
    assert!(out.contains("libphonenumber"), "{out}");
    assert!(
        out.contains("rule_set\npmp\n"),
        "\\rules switches the pricing views: {out}"
    );
    assert!(!out.contains("\n3\n"), "\\q stops: {out}");
    let auto = out
        .find("auto: each message by the rule set in force")
        .expect("\\rules shows auto");
    let forced = out
        .find("pmp: per-message pricing of July 2025")
        .expect("then pmp");
    assert!(auto < forced, "{out}");
    // A failing statement prints, the session goes on, the exit code tells.
    wausage()
        .args(["--data", tmp.path().to_str().unwrap()])
        .write_stdin("SELECT * FROM nope;\nSELECT 5 AS five;\n")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("five"));
}

#[test]
fn generate_is_deterministic_and_follows_the_schema() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [a.path(), b.path()] {
        wausage()
            .args([
                "generate",
                "--out",
                dir.to_str().unwrap(),
                "--messages",
                "3000",
                "--seed",
                "5",
                "--partition-by-month",
                "--start",
                "2024-01-20",
                "--days",
                "20",
            ])
            .assert()
            .success();
    }
    let files = |d: &Path| {
        let mut v: Vec<_> = walk(d);
        v.sort();
        v
    };
    let (fa, fb) = (files(a.path()), files(b.path()));
    assert!(fa.len() >= 2, "{fa:?}");
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap());
    }
    let out = stdout(wausage().args([
        "--data",
        a.path().to_str().unwrap(),
        "query",
        "SELECT count(DISTINCT message_id) AS n, count(DISTINCT month) AS months FROM messages_raw",
    ]));
    assert_eq!(out, "n,months\n3000,2\n");
}

#[test]
fn generate_spans_both_switches_with_the_optional_columns_filled() {
    let dir = tempfile::tempdir().unwrap();
    wausage()
        .args([
            "generate",
            "--out",
            dir.path().to_str().unwrap(),
            "--messages",
            "20000",
            "--start",
            "2026-09-01",
            "--days",
            "60",
        ])
        .assert()
        .success();
    let data = dir.path().to_str().unwrap();
    let out = stdout(wausage().args([
        "--data",
        data,
        "query",
        "SELECT rule_set, min(date_trunc('month', event_at)) = max(date_trunc('month', event_at)) AS one_month, \
         count(*) FILTER (WHERE pricing_category = 'service' AND billable) > 0 AS billable_service \
         FROM message_pricing GROUP BY 1 ORDER BY 1",
    ]));
    assert_eq!(
        out,
        "rule_set,one_month,billable_service\npmp,true,false\npmp26,true,true\n"
    );
    let out = stdout(wausage().args([
        "--data",
        data,
        "query",
        "SELECT count(*) FILTER (WHERE phone_number_id IS NULL) AS no_phone, \
         count(DISTINCT phone_number_id) >= 2 AS phones, \
         count(*) FILTER (WHERE message_type = 'template' AND template_name IS NULL) AS unnamed, \
         count(*) FILTER (WHERE message_type = 'free_form' AND template_name IS NOT NULL) AS named_free_form \
         FROM messages_raw",
    ]));
    assert_eq!(out, "no_phone,phones,unnamed,named_free_form\n0,true,0,0\n");
}

#[test]
fn bench_generates_its_log_times_the_queries_interleaved_and_checks_the_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let out = wausage()
        .args(["bench", "--dir", dir.to_str().unwrap()])
        .args(["--messages", "20000", "--customers", "400", "--runs", "3"])
        .assert()
        .success()
        .get_output()
        .clone();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(!walk(&dir).is_empty(), "the log was generated");
    for run in 1..=3 {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("run {run}: plain ")))
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(
            line.contains(", scan floor ") && line.contains(", windowing ") && line.ends_with('x'),
            "{line}"
        );
    }
    assert!(stdout.contains("plain GROUP BY     median "), "{stdout}");
    assert!(stdout.contains("ratio scan floor/plain "), "{stdout}");
    assert!(stdout.contains("median of the runs' ratios "), "{stdout}");
    // The windowing's category counts equal the rules core's.
    assert!(
        stdout.contains("answer checked against the rules core: {"),
        "{stdout}"
    );
}

fn walk(d: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn saved_query_parameters_are_checked() {
    for bad in [["-p", "month=2024-13"], ["-p", "quota=lots"]] {
        wausage()
            .args(["run", "monthly-utilization", "-p", "month=2024-02"])
            .args(bad)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--param month="));
    }
    wausage().args(["run", "no-such-report"]).assert().code(2);
    let out = stdout(wausage().args(["queries"]));
    for name in [
        "monthly-utilization",
        "conversations-by-category",
        "country-allocation",
        "overall-vs-usage",
        "daily-conversations",
    ] {
        assert!(out.contains(name), "{out}");
    }
}

#[test]
fn the_memory_pool_defaults_to_a_share_of_the_memory_available() {
    let show = |args: &[&str]| {
        let a = wausage()
            .args(args)
            .args(["query", "SHOW wausage.memory_limit"])
            .assert()
            .success();
        String::from_utf8_lossy(&a.get_output().stdout).into_owned()
    };
    let default = show(&[]);
    assert!(
        default.contains("(80% of ") && default.contains("GiB of "),
        "{default}"
    );
    assert!(show(&["--memory-limit", "none"]).contains("wausage.memory_limit,none"));
    assert!(show(&["--memory-limit", "1g"]).contains("1.0 GiB (--memory-limit)"));
    wausage()
        .args(["--memory-limit", "lots", "query", "SELECT 1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`none` for no limit"));
    // A spill dir that cannot be written is named before any query runs.
    let file = tempfile::NamedTempFile::new().unwrap();
    for dir in [Path::new("/no/such/dir"), file.path()] {
        wausage()
            .arg("--spill-dir")
            .arg(dir)
            .args(["query", "SELECT 1"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "--spill-dir {}: cannot write spill files there",
                dir.display()
            )));
    }
    // What cannot fit even by spilling fails naming the operator and the
    // pool, with exit 1.
    wausage()
        .args([
            "--memory-limit",
            "32m",
            "query",
            "SELECT cardinality(array_agg(repeat('x', 1000))) FROM generate_series(1, 100000)",
        ])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("AggregateStream")
                .and(predicate::str::contains("pool_size: 32.0 MB"))
                .and(predicate::str::contains("hint:")),
        );
}

#[test]
fn bench_scale_generates_two_logs_and_compares_the_limited_answer_with_the_unlimited() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let out = wausage()
        .args(["bench", "--scale", "--dir", dir.to_str().unwrap()])
        .args(["--scale-messages", "100000,1000000", "--scale-limit", "32m"])
        .args(["--runs", "1"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8(out.stdout).unwrap();
    for n in ["100000", "1000000"] {
        assert!(
            !walk(&tmp.path().join(format!("log-scale-{n}"))).is_empty(),
            "the {n}-message log was generated"
        );
    }
    let run = stdout
        .lines()
        .find(|l| l.starts_with("run 1: 100000 unlimited "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        run.contains("1000000 under 32m ") && run.ends_with("same answer"),
        "{run}"
    );
    assert!(stdout.contains("time per message: "), "{stdout}");
    assert!(stdout.contains("(target <= 1.25x)"), "{stdout}");
    assert!(
        stdout.contains("1000000 under --memory-limit 32m: median "),
        "{stdout}"
    );
    // Sizes come in pairs.
    wausage()
        .args(["bench", "--scale", "--scale-messages", "100000"])
        .assert()
        .code(2);
}
