//! `wausage ingest`: webhook files into a log, folded as
//! docs/webhook-ingest.md says; and the reconcile queries over its labels.

use std::io::Write;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::json;

use crate::common::{rows, session, wausage};

/// 2026-11-03T00:00:00Z, in seconds.
const NOV_3: i64 = 1_793_664_000;

fn body(value: serde_json::Value) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{
        "id": "waba-1",
        "changes": [{"field": "messages", "value": value}],
    }]})
    .to_string()
}

/// A status event line; `category` labels it with a pricing object.
fn status(id: &str, status: &str, at: i64, category: Option<&str>) -> String {
    let mut s = json!({
        "id": id, "status": status, "timestamp": at.to_string(),
        "recipient_id": "6281234567890",
    });
    if let Some(c) = category {
        s["pricing"] = json!({"billable": c != "service", "pricing_model": "PMP",
                              "type": "regular", "category": c});
    }
    body(json!({"messaging_product": "whatsapp",
                "metadata": {"phone_number_id": "pn-1"}, "statuses": [s]}))
}

fn inbound(id: &str, at: i64, referral: Option<&str>) -> String {
    let mut m =
        json!({"from": "6281234567890", "id": id, "timestamp": at.to_string(), "type": "text"});
    if let Some(r) = referral {
        m["referral"] = json!({"source_type": r});
    }
    body(json!({"messaging_product": "whatsapp",
                "metadata": {"phone_number_id": "pn-1"}, "messages": [m]}))
}

fn write_lines(path: &Path, lines: &[String]) -> PathBuf {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    path.to_path_buf()
}

fn ingest(files: &[&Path], out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    let mut c = wausage();
    c.arg("ingest").arg("--out").arg(out);
    for f in files {
        c.arg(f);
    }
    c.args(extra).assert()
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// The log's rows as text, in message id order.
fn log_rows(out: &Path) -> Vec<Vec<String>> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = session(out, 2).await;
        rows(
            &ctx,
            "SELECT message_id, direction, message_type, category, status, \
                    CAST(sent_at AS VARCHAR), CAST(delivered_at AS VARCHAR), entry_point, \
                    meta_pricing_category, CAST(meta_billable AS VARCHAR), template_name, \
                    phone_number_id, customer_id, month \
             FROM messages_raw ORDER BY message_id",
        )
        .await
    })
}

fn row<'a>(rows: &'a [Vec<String>], id: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r[0] == id)
        .unwrap_or_else(|| panic!("no row {id}"))
}

#[test]
fn the_spec_folding_rules_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let t = NOV_3;
    let file = write_lines(
        &dir.path().join("day.ndjson"),
        &[
            // Read without a delivered event: delivered at the read.
            status("m.read", "sent", t, Some("marketing")),
            status("m.read", "read", t + 60, Some("marketing")),
            // Failed, then delivered: a delivery beats failed.
            status("m.fail", "failed", t + 10, Some("utility")),
            status("m.fail", "delivered", t + 20, Some("utility")),
            // Duplicated events.
            status("m.dup", "sent", t + 30, Some("service")),
            status("m.dup", "sent", t + 30, Some("service")),
            status("m.dup", "delivered", t + 40, Some("service")),
            status("m.dup", "delivered", t + 40, Some("service")),
            // A status before its `sent`.
            status("m.early", "delivered", t + 50, Some("authentication")),
            status("m.early", "sent", t + 55, Some("authentication")),
            inbound("m.in", t + 70, Some("ad")),
            String::new(),
        ],
    );
    let out = dir.path().join("log");
    ingest(&[&file], &out, &[]).success();
    let rows = log_rows(&out);
    assert_eq!(rows.len(), 5, "{rows:?}");
    let r = row(&rows, "m.read");
    assert_eq!(
        (r[4].as_str(), r[6].as_str()),
        ("read", "2026-11-03T00:01:00Z")
    );
    assert_eq!((r[2].as_str(), r[3].as_str()), ("template", "marketing"));
    let r = row(&rows, "m.fail");
    assert_eq!(
        (r[4].as_str(), r[6].as_str()),
        ("delivered", "2026-11-03T00:00:20Z")
    );
    let r = row(&rows, "m.dup");
    assert_eq!((r[2].as_str(), r[4].as_str()), ("free_form", "delivered"));
    let r = row(&rows, "m.early");
    assert_eq!(r[5], "2026-11-03T00:00:55Z", "sent_at is the sent event's");
    assert_eq!(r[6], "2026-11-03T00:00:50Z");
    let r = row(&rows, "m.in");
    assert_eq!(
        (r[1].as_str(), r[4].as_str(), r[7].as_str()),
        ("inbound", "received", "ctwa_ad")
    );
    assert_eq!(r[12], "+6281234567890");
    assert_eq!(r[13], "2026-11");
    // The platform's labels are kept.
    assert_eq!(row(&rows, "m.read")[8], "marketing");
    assert_eq!(row(&rows, "m.dup")[9], "false");
}

#[test]
fn a_late_status_in_next_months_file_updates_last_months_partition() {
    let dir = tempfile::tempdir().unwrap();
    let nov_30 = NOV_3 + 27 * 86_400 + 86_000; // 2026-11-30T23:53:20Z
    let nov = write_lines(
        &dir.path().join("2026-11-30.ndjson"),
        &[status("m.late", "sent", nov_30, Some("utility"))],
    );
    let dec = write_lines(
        &dir.path().join("2026-12-01.ndjson"),
        &[status("m.late", "read", nov_30 + 900, Some("utility"))],
    );
    let out = dir.path().join("log");
    ingest(&[&nov], &out, &[]).success();
    assert_eq!(row(&log_rows(&out), "m.late")[4], "sent");
    ingest(&[&dec], &out, &[]).success();
    let rows = log_rows(&out);
    assert_eq!(rows.len(), 1, "one row, not one per run: {rows:?}");
    assert_eq!(row(&rows, "m.late")[4], "read");
    assert_eq!(row(&rows, "m.late")[13], "2026-11");
    assert!(!out.join("month=2026-12").exists());
    // Both runs at once give the same rows.
    let once = dir.path().join("once");
    ingest(&[&dec, &nov], &once, &[]).success();
    assert_eq!(log_rows(&once), rows);
}

#[test]
fn gzip_is_told_by_its_bytes_not_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        status("m.1", "sent", NOV_3, Some("marketing")),
        status("m.1", "delivered", NOV_3 + 5, Some("marketing")),
    ];
    let plain = write_lines(&dir.path().join("plain.ndjson"), &lines);
    let gz = dir.path().join("events.log"); // no .gz
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
    enc.finish().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ingest(&[&plain], &a, &[]).success();
    ingest(&[&gz], &b, &[]).success();
    let rows = log_rows(&a);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows, log_rows(&b));
}

#[test]
fn the_sends_file_in_csv_ndjson_and_parquet_decides_the_type() {
    let dir = tempfile::tempdir().unwrap();
    // The platform calls it service; the business's code sent a template.
    let events = write_lines(
        &dir.path().join("day.ndjson"),
        &[
            status("m.1", "delivered", NOV_3 + 5, Some("service")),
            status("m.2", "delivered", NOV_3 + 6, None),
        ],
    );
    let csv = dir.path().join("sends.csv");
    std::fs::write(
        &csv,
        "message_id,message_type,category,template_name,sent_at\n\
         m.1,template,utility,order_update,2026-11-03T00:00:01.250000Z\n\
         m.2,free_form,,,\n",
    )
    .unwrap();
    let ndjson = dir.path().join("sends.ndjson");
    std::fs::write(
        &ndjson,
        "{\"message_id\":\"m.1\",\"message_type\":\"template\",\"category\":\"utility\",\
          \"template_name\":\"order_update\",\"sent_at\":\"2026-11-03T00:00:01.25Z\"}\n\
         {\"message_id\":\"m.2\",\"message_type\":\"free_form\",\"category\":null}\n",
    )
    .unwrap();
    let parquet = dir.path().join("sends.parquet");
    write_sends_parquet(&parquet);
    let mut seen = vec![];
    for sends in [&csv, &ndjson, &parquet] {
        let out = dir.path().join(format!("log-{}", seen.len()));
        ingest(&[&events], &out, &["--sends", sends.to_str().unwrap()]).success();
        let rows = log_rows(&out);
        let r = row(&rows, "m.1");
        assert_eq!(
            (r[2].as_str(), r[3].as_str(), r[10].as_str()),
            ("template", "utility", "order_update"),
            "{sends:?}"
        );
        assert_eq!(r[5], "2026-11-03T00:00:01.250Z", "{sends:?}");
        assert_eq!(row(&rows, "m.2")[2], "free_form");
        seen.push(rows);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
}

/// The sends of the CSV above as Parquet, `sent_at` a millisecond timestamp.
fn write_sends_parquet(path: &Path) {
    use arrow::array::{ArrayRef, StringArray, TimestampMillisecondArray};
    use std::sync::Arc;
    let text = |v: [Option<&str>; 2]| Arc::new(StringArray::from(v.to_vec())) as ArrayRef;
    let sent =
        TimestampMillisecondArray::from(vec![Some(1_793_664_001_250), None]).with_timezone("UTC");
    let batch = arrow::array::RecordBatch::try_from_iter([
        ("message_id", text([Some("m.1"), Some("m.2")])),
        ("message_type", text([Some("template"), Some("free_form")])),
        ("category", text([Some("utility"), None])),
        ("template_name", text([Some("order_update"), None])),
        ("sent_at", Arc::new(sent) as ArrayRef),
    ])
    .unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn a_bad_sends_file_names_file_column_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_lines(
        &dir.path().join("day.ndjson"),
        &[status("m.1", "delivered", NOV_3, Some("utility"))],
    );
    let sends = dir.path().join("sends.csv");
    std::fs::write(
        &sends,
        "message_id,message_type,category\nm.1,tmpl,utility\n",
    )
    .unwrap();
    let out = dir.path().join("log");
    let a = ingest(&[&events], &out, &["--sends", sends.to_str().unwrap()]).code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("sends.csv: column `message_type`, row 2"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn rejects_name_file_and_line_and_strict_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_lines(
        &dir.path().join("day.ndjson"),
        &[
            status("m.ok", "delivered", NOV_3, Some("utility")),
            "{not json".to_string(),
            r#"{"object":"page","entry":[]}"#.to_string(),
            status("m.nolabel", "delivered", NOV_3, None),
            status("m.notime", "sent", NOV_3, Some("utility")).replace("\"timestamp\"", "\"ts\""),
        ],
    );
    let out = dir.path().join("log");
    let a = ingest(&[&file], &out, &[]).success();
    let summary = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(summary.contains("4 reject(s)"), "{summary}");
    assert!(
        summary.contains("missing_field 1")
            && summary.contains("not_json 1")
            && summary.contains("not_webhook 1")
            && summary.contains("type_unknown 1"),
        "{summary}"
    );
    assert_eq!(log_rows(&out).len(), 1);
    let rejects: Vec<PathBuf> = std::fs::read_dir(out.join("_rejects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(rejects.len(), 1);
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&rejects[0])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_reason = |r: &str| {
        records
            .iter()
            .find(|v| v["reason"] == r)
            .unwrap_or_else(|| panic!("no {r} in {records:?}"))
    };
    let not_json = by_reason("not_json");
    assert_eq!(not_json["line"], 2);
    assert_eq!(not_json["text"], "{not json");
    assert!(not_json["file"].as_str().unwrap().ends_with("day.ndjson"));
    assert_eq!(by_reason("missing_field")["line"], 5);
    let unknown = by_reason("type_unknown");
    assert_eq!(unknown["message_id"], "m.nolabel");
    assert_eq!(unknown["events"][0]["line"], 4);

    let strict = dir.path().join("strict");
    let a = ingest(&[&file], &strict, &["--strict"]).code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("4 reject(s) under --strict; nothing written"),
        "{err}"
    );
    assert!(!strict.join("month=2026-11").exists());
}

#[test]
fn a_folder_holding_another_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_lines(
        &dir.path().join("day.ndjson"),
        &[status("m.1", "delivered", NOV_3, Some("utility"))],
    );
    let out = dir.path().join("log");
    std::fs::create_dir_all(out.join("month=2026-11")).unwrap();
    std::fs::write(out.join("month=2026-11/part-0.parquet"), b"x").unwrap();
    let a = ingest(&[&file], &out, &[]).code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("did not write"), "{err}");
}

/// One message's events: statuses at offsets from its send, with labels.
fn events_of(i: usize, kinds: &[u8]) -> Vec<String> {
    let id = format!("m.{i}");
    let t = NOV_3 + (i as i64) * 977;
    let category = ["marketing", "utility", "service", "authentication"][i % 4];
    let mut out = vec![];
    if i % 7 == 3 {
        out.push(inbound(&id, t, i.is_multiple_of(2).then_some("ad")));
        return out;
    }
    for (k, kind) in kinds.iter().enumerate() {
        let (name, dt) = match kind % 4 {
            0 => ("sent", 0),
            1 => ("delivered", 3 + k as i64),
            2 => ("read", 60 + k as i64),
            _ => ("failed", 2),
        };
        out.push(status(&id, name, t + dt, Some(category)));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Any shuffling, duplication and split over files (and over runs) of
    /// one event set folds to the same rows.
    #[test]
    fn any_order_duplication_and_split_fold_to_the_same_rows(
        kinds in proptest::collection::vec(proptest::collection::vec(0u8..4, 1..4), 1..25),
        order in any::<u64>(),
        files in 1usize..4,
        dups in 0usize..6,
        budget in prop_oneof![Just(None), (0usize..3000).prop_map(Some)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let events: Vec<String> = kinds.iter().enumerate().flat_map(|(i, k)| events_of(i, k)).collect();
        let once = write_lines(&dir.path().join("once.ndjson"), &events);
        let expected_dir = dir.path().join("expected");
        ingest(&[&once], &expected_dir, &[]).success();
        let expected = log_rows(&expected_dir);

        // Shuffled with a seeded LCG, some lines duplicated, split into files.
        let mut shuffled = events.clone();
        for d in 0..dups {
            shuffled.push(events[(order as usize + d * 31) % events.len()].clone());
        }
        let mut state = order | 1;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        let chunk = shuffled.len().div_ceil(files);
        let paths: Vec<PathBuf> = shuffled
            .chunks(chunk)
            .enumerate()
            .map(|(f, lines)| write_lines(&dir.path().join(format!("part-{f}.ndjson")), lines))
            .collect();
        // Under a budget of some bytes, folds spill to disk and settle from
        // there.
        let budget = budget.map(|b| b.to_string());
        let spill: Vec<&str> = budget.iter().flat_map(|b| ["--fold-budget", b.as_str()]).collect();
        let split_dir = dir.path().join("split");
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        ingest(&refs, &split_dir, &spill).success();
        prop_assert_eq!(&log_rows(&split_dir), &expected);

        // The same files, one run each.
        let runs_dir = dir.path().join("runs");
        for p in &refs {
            ingest(&[p], &runs_dir, &spill).success();
        }
        prop_assert_eq!(&log_rows(&runs_dir), &expected);
    }
}

/// A generated log, its webhooks and sends file, and the log `ingest`
/// makes of them.
struct RoundTrip {
    _dir: tempfile::TempDir,
    log: PathBuf,
    hooks: PathBuf,
    ingested: PathBuf,
}

fn round_trip(start: &str, days: &str) -> RoundTrip {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let hooks = dir.path().join("hooks");
    wausage()
        .args([
            "generate",
            "--messages",
            "3000",
            "--start",
            start,
            "--days",
            days,
        ])
        .arg("--out")
        .arg(&log)
        .arg("--webhooks")
        .arg(&hooks)
        .assert()
        .success();
    let ingested = dir.path().join("ingested");
    let files: Vec<PathBuf> = std::fs::read_dir(&hooks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".ndjson.gz"))
        .collect();
    assert!(files.len() >= days.parse().unwrap(), "{files:?}");
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let sends = hooks.join("sends.csv");
    let args = ["--sends", sends.to_str().unwrap(), "--strict"];
    let a = ingest(&refs, &ingested, &args).success();
    assert!(!stderr(&a).contains("spilled"), "{}", stderr(&a));

    // Every fold spilled to disk, settled and merged from there: the same
    // files, byte for byte.
    let spilled = dir.path().join("spilled");
    let a = ingest(
        &refs,
        &spilled,
        &[&args[..], &["--fold-budget", "0"]].concat(),
    )
    .success();
    assert!(stderr(&a).contains("spilled"), "{}", stderr(&a));
    let mut months = 0;
    for entry in std::fs::read_dir(&ingested).unwrap() {
        let name = entry.unwrap().file_name();
        if name.to_string_lossy().starts_with("month=") {
            months += 1;
            let part = Path::new(&name).join("part-0.parquet");
            assert!(
                std::fs::read(ingested.join(&part)).unwrap()
                    == std::fs::read(spilled.join(&part)).unwrap(),
                "{part:?} differs when spilled"
            );
        }
    }
    assert!(months >= 1);
    for entry in std::fs::read_dir(ingested.join("_ingest")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "state") {
            let other = spilled.join("_ingest").join(path.file_name().unwrap());
            assert!(
                std::fs::read(&path).unwrap() == std::fs::read(&other).unwrap(),
                "{path:?} differs when spilled"
            );
        }
    }
    RoundTrip {
        _dir: dir,
        log,
        hooks,
        ingested,
    }
}

/// What must survive the round trip: each message and its pricing (the
/// log `generate --webhooks` writes has whole-second times, as webhooks).
async fn compared(data: &Path) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let ctx = session(data, 2).await;
    let messages = rows(
        &ctx,
        "SELECT message_id, account_id, customer_id, direction, message_type, category, status, \
                CAST(sent_at AS VARCHAR), CAST(delivered_at AS VARCHAR), entry_point, \
                phone_number_id, template_name \
         FROM messages ORDER BY message_id",
    )
    .await;
    let pricing = rows(
        &ctx,
        "SELECT message_id, rule_set, pricing_category, billable FROM message_pricing \
         ORDER BY message_id",
    )
    .await;
    (messages, pricing)
}

#[test]
fn a_generated_log_round_trips_through_webhooks_and_reconciles() {
    let rt_dirs = round_trip("2026-09-25", "14");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (messages, pricing) = rt.block_on(compared(&rt_dirs.log));
    let (messages2, pricing2) = rt.block_on(compared(&rt_dirs.ingested));
    assert!(messages.len() > 2500, "{}", messages.len());
    assert_eq!(messages.len(), messages2.len());
    for (a, b) in messages.iter().zip(&messages2) {
        assert_eq!(a, b);
    }
    assert_eq!(pricing, pricing2);

    // Our labels against themselves: nothing differs.
    let run = |name: &str, extra: &[&str]| {
        let mut c = wausage();
        c.arg("--data")
            .arg(&rt_dirs.ingested)
            .args(["--format", "csv", "run", name, "-p", "month=2026-10"])
            .args(extra);
        c.assert()
    };
    let a = run("reconcile", &["--alert-at", "0"]).success();
    let out = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    let total = out.lines().last().unwrap();
    assert!(total.starts_with(",,,"), "{out}");
    assert!(
        total.ends_with(",0,0.0") || total.ends_with(",0,0"),
        "{total}"
    );
    let a = run("reconcile-messages", &[]).success();
    assert_eq!(
        String::from_utf8_lossy(&a.get_output().stdout)
            .lines()
            .count(),
        1
    );

    // Change the platform's labels of some delivered messages: reconcile
    // finds exactly those.
    let changed: Vec<String> = pricing
        .iter()
        .filter(|p| p[1] == "pmp26" && p[2] == "marketing")
        .step_by(7)
        .take(5)
        .map(|p| p[0].clone())
        .collect();
    assert_eq!(changed.len(), 5);
    let edited = rt_dirs.hooks.join("edited");
    std::fs::create_dir_all(&edited).unwrap();
    let mut files = vec![];
    for entry in std::fs::read_dir(&rt_dirs.hooks).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".ndjson.gz") {
            continue;
        }
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap()),
            &mut text,
        )
        .unwrap();
        let lines: Vec<String> = text
            .lines()
            .map(|l| {
                if changed
                    .iter()
                    .any(|id| l.contains(&format!("\"id\":\"{id}\"")))
                {
                    l.replace("\"category\":\"marketing\"", "\"category\":\"utility\"")
                } else {
                    l.to_string()
                }
            })
            .collect();
        files.push(write_lines(&edited.join(path.file_name().unwrap()), &lines));
    }
    let relabelled = rt_dirs.hooks.join("relabelled");
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let sends = rt_dirs.hooks.join("sends.csv");
    ingest(&refs, &relabelled, &["--sends", sends.to_str().unwrap()]).success();
    let a = wausage()
        .arg("--data")
        .arg(&relabelled)
        .args([
            "--format",
            "csv",
            "run",
            "reconcile-messages",
            "-p",
            "month=2026-10",
        ])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    let mut found: Vec<String> = out
        .lines()
        .skip(1)
        .map(|l| {
            assert!(l.contains(",category,"), "{l}");
            l.split(',').next().unwrap().to_string()
        })
        .collect();
    found.sort();
    let mut want = changed.clone();
    want.sort();
    assert_eq!(found, want);
    wausage()
        .arg("--data")
        .arg(&relabelled)
        .args(["run", "reconcile", "-p", "month=2026-10", "--alert-at", "0"])
        .assert()
        .code(3);
    // An ingested log is a log for every other command.
    wausage()
        .arg("--data")
        .arg(&rt_dirs.ingested)
        .args([
            "report", "--month", "2026-10", "--quota", "5000", "--output",
        ])
        .arg(rt_dirs.hooks.join("usage.html"))
        .assert()
        .success();
    wausage()
        .arg("--data")
        .arg(&rt_dirs.ingested)
        .args([
            "run",
            "monthly-utilization",
            "-p",
            "month=2026-10",
            "-p",
            "quota=5000",
        ])
        .assert()
        .success();
}

#[test]
fn a_cbp_month_reconciles_conversations() {
    let rt_dirs = round_trip("2024-02-01", "10");
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(
        rt.block_on(compared(&rt_dirs.log)),
        rt.block_on(compared(&rt_dirs.ingested))
    );
    let a = wausage()
        .arg("--data")
        .arg(&rt_dirs.ingested)
        .args([
            "--format",
            "csv",
            "run",
            "reconcile",
            "-p",
            "month=2024-02",
            "--alert-at",
            "0",
        ])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    let total: Vec<&str> = out.lines().last().unwrap().split(',').collect();
    assert_eq!(
        total[3], total[5],
        "our conversations and the platform's: {out}"
    );
    assert_eq!(total[6], "0", "{out}");
    // Without the sends file the free entry point conversations
    // (`referral_conversion`) are not guessed.
    let files: Vec<PathBuf> = std::fs::read_dir(&rt_dirs.hooks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".ndjson.gz"))
        .collect();
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let bare = rt_dirs.hooks.join("bare");
    let a = ingest(&refs, &bare, &[]).success();
    let summary = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(summary.contains("type_unknown"), "{summary}");
}

#[test]
fn reconcile_daily_compares_the_platforms_pricing_analytics() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_lines(
        &dir.path().join("day.ndjson"),
        &[
            status("m.1", "delivered", NOV_3 + 10, Some("marketing")),
            status("m.2", "delivered", NOV_3 + 20, Some("marketing")),
        ],
    );
    let out = dir.path().join("log");
    ingest(&[&events], &out, &[]).success();
    let analytics = dir.path().join("analytics.json");
    std::fs::write(
        &analytics,
        json!({"pricing_analytics": {"data": [{"data_points": [
            {"start": NOV_3, "end": NOV_3 + 86_400, "country": "ID", "pricing_type": "REGULAR",
             "pricing_category": "MARKETING", "volume": 3, "cost": 0.12},
            {"start": NOV_3, "end": NOV_3 + 86_400, "country": "ID",
             "pricing_type": "FREE_CUSTOMER_SERVICE", "pricing_category": "SERVICE", "volume": 9, "cost": 0}
        ]}]}, "id": "waba-1"})
        .to_string(),
    )
    .unwrap();
    let a = wausage()
        .arg("--data")
        .arg(&out)
        .arg("--table")
        .arg(format!("meta_analytics={}", analytics.display()))
        .args([
            "--format",
            "csv",
            "run",
            "reconcile-daily",
            "-p",
            "month=2026-11",
        ])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    assert_eq!(
        text.lines().nth(1),
        Some("2026-11-03,ID,marketing,2,3,-1,33.33"),
        "{text}"
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"data": [{"points": []}]}"#).unwrap();
    let a = wausage()
        .arg("--data")
        .arg(&out)
        .arg("--table")
        .arg(format!("meta_analytics={}", bad.display()))
        .args(["run", "reconcile-daily", "-p", "month=2026-11"])
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("expected a pricing_analytics response"),
        "{err}"
    );
}

#[test]
fn a_broken_gzip_file_fails_the_run_naming_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_lines(
        &dir.path().join("good.ndjson"),
        &[status("m.1", "delivered", NOV_3, Some("utility"))],
    );
    let broken = dir.path().join("broken.ndjson.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..2000 {
        enc.write_all(status(&format!("m.{i}"), "sent", NOV_3, Some("utility")).as_bytes())
            .unwrap();
        enc.write_all(b"\n").unwrap();
    }
    let bytes = enc.finish().unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.path().join("log");
    ingest(&[&good], &out, &[]).success();
    let before = log_rows(&out);
    let a = ingest(&[&good, &broken], &out, &[]).code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("broken.ndjson.gz"), "{err}");
    assert_eq!(log_rows(&out), before, "the log is as it was");
    let missing = dir.path().join("missing.ndjson");
    let a = ingest(&[&missing], &out, &[]).code(1);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("missing.ndjson"));
}

#[test]
fn ingest_into_a_bucket_writes_what_a_folder_gets() {
    let moto = crate::object_store::Moto::start(false);
    moto.create_bucket("logs");
    let env = moto.env();
    let dir = tempfile::tempdir().unwrap();
    let nov_30 = NOV_3 + 27 * 86_400 + 86_000;
    let nov = write_lines(
        &dir.path().join("2026-11-30.ndjson"),
        &[
            status("m.late", "sent", nov_30, Some("utility")),
            inbound("m.in", nov_30 - 60, Some("ctwa_ad")),
            "{not json".to_string(),
        ],
    );
    let dec = write_lines(
        &dir.path().join("2026-12-01.ndjson"),
        &[status("m.late", "read", nov_30 + 900, Some("utility"))],
    );
    let run = |files: &[&Path], out: &str| {
        let mut c = wausage();
        c.envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["ingest", "--out", out]);
        for f in files {
            c.arg(f);
        }
        c.assert().success();
    };
    // Two runs into the bucket, the second re-folding November's state.
    run(&[&nov], "s3://logs/wa/");
    run(&[&dec], "s3://logs/wa/");
    let local = dir.path().join("local");
    run(&[&nov], local.to_str().unwrap());
    run(&[&dec], local.to_str().unwrap());
    let rows = |data: &str| {
        let out = wausage()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["--data", data, "--format", "csv", "query"])
            .arg("SELECT message_id, status, month FROM messages_raw ORDER BY message_id")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let in_bucket = rows("s3://logs/wa/");
    assert_eq!(in_bucket, rows(local.to_str().unwrap()));
    assert!(in_bucket.contains("m.late,read,2026-11"), "{in_bucket}");
    // A log `ingest` did not write is refused, and nothing is put there.
    moto.upload_tree(
        "logs",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data"),
        "other",
    );
    let mut c = wausage();
    c.envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["ingest", "--out", "s3://logs/other/"])
        .arg(&dec);
    let refused = c.assert().failure();
    assert!(
        stderr(&refused).contains("s3://logs/other/: holds a log"),
        "{}",
        stderr(&refused)
    );
}
