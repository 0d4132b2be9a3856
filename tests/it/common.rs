//! Fixtures: message logs written in the spec's notation to real Parquet
//! files, sessions over them, and small result helpers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::SessionContext;
use parquet::arrow::ArrowWriter;
use wausage::config::Config;
use wausage::output::Format;
use wausage_udfs::rules::RuleChoice;

pub const HOUR_MS: i64 = 3_600_000;
/// 2024-02-01T00:00Z in milliseconds: the origin of the cbp vectors.
pub const FEB_2024_MS: i64 = 1_706_745_600_000;
/// 2025-08-01T00:00Z: the origin of the pmp vectors.
pub const AUG_2025_MS: i64 = 1_754_006_400_000;
/// 2025-07-01T00:00Z: the switch.
pub const JUL_2025_MS: i64 = 1_751_328_000_000;
/// 2026-10-01T00:00Z: the second switch (pmp26).
pub const OCT_2026_MS: i64 = 1_790_812_800_000;
/// 2026-11-02T00:00Z: the origin of the pmp26 vectors.
pub const NOV_2026_MS: i64 = 1_793_577_600_000;

/// One log row.
#[derive(Clone, Debug)]
pub struct LogRow {
    pub message_id: String,
    pub account_id: String,
    pub customer_id: String,
    pub direction: &'static str,
    pub message_type: &'static str,
    pub category: Option<&'static str>,
    pub status: &'static str,
    pub sent_at: i64,
    pub delivered_at: Option<i64>,
    pub entry_point: Option<&'static str>,
    /// The optional column: written when any row of a file has it.
    pub phone_number_id: Option<String>,
}

/// Parses the spec's notation (`in@0, in*@1, T:m@2, T:u@3 x, F@4`) into rows
/// of one pair; times are hours after `origin_ms`. Ids are `m001`, `m002`...
/// in order unless a token ends with `#id`.
pub fn parse_events(spec: &str, origin_ms: i64, account: &str, customer: &str) -> Vec<LogRow> {
    let mut rows = vec![];
    for (n, token) in spec
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .enumerate()
    {
        let (token, id) = match token.split_once('#') {
            Some((t, id)) => (t.trim(), id.trim().to_string()),
            None => (token, format!("m{:03}", n + 1)),
        };
        let undelivered = token.ends_with(" x");
        let token = token.trim_end_matches(" x");
        let (what, at) = token.split_once('@').expect("event@hours");
        let t = origin_ms + (at.parse::<f64>().expect("hours") * HOUR_MS as f64).round() as i64;
        let mut row = LogRow {
            message_id: id,
            account_id: account.into(),
            customer_id: customer.into(),
            direction: "outbound",
            message_type: "template",
            category: None,
            status: if undelivered { "sent" } else { "delivered" },
            sent_at: t,
            delivered_at: (!undelivered).then_some(t),
            entry_point: None,
            phone_number_id: None,
        };
        match what {
            "in" | "in*" => {
                row.direction = "inbound";
                row.message_type = "free_form";
                row.status = "received";
                row.delivered_at = None;
                row.entry_point = (what == "in*").then_some("ctwa_ad");
            }
            "F" => row.message_type = "free_form",
            "T:m" => row.category = Some("marketing"),
            "T:u" => row.category = Some("utility"),
            "T:a" => row.category = Some("authentication"),
            other => panic!("unknown event {other}"),
        }
        rows.push(row);
    }
    rows
}

pub fn batch(rows: &[LogRow]) -> RecordBatch {
    let s = |f: &dyn Fn(&LogRow) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    // Milliseconds without a zone: the contract accepts any unit.
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    let mut fields = vec![
        Field::new("message_id", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("direction", DataType::Utf8, false),
        Field::new("message_type", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("sent_at", ts.clone(), false),
        Field::new("delivered_at", ts, true),
        Field::new("entry_point", DataType::Utf8, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        s(&|r| Some(r.message_id.clone())),
        s(&|r| Some(r.account_id.clone())),
        s(&|r| Some(r.customer_id.clone())),
        s(&|r| Some(r.direction.into())),
        s(&|r| Some(r.message_type.into())),
        s(&|r| r.category.map(Into::into)),
        s(&|r| Some(r.status.into())),
        Arc::new(TimestampMillisecondArray::from(
            rows.iter().map(|r| r.sent_at).collect::<Vec<_>>(),
        )),
        Arc::new(TimestampMillisecondArray::from(
            rows.iter().map(|r| r.delivered_at).collect::<Vec<_>>(),
        )),
        s(&|r| r.entry_point.map(Into::into)),
    ];
    if rows.iter().any(|r| r.phone_number_id.is_some()) {
        fields.push(Field::new("phone_number_id", DataType::Utf8, true));
        columns.push(s(&|r| r.phone_number_id.clone()));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// Writes rows to one Parquet file, in row groups of `row_group` rows.
pub fn write_parquet(path: &Path, rows: &[LogRow], row_group: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let b = batch(rows);
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group.max(1)))
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        b.schema(),
        Some(props),
    )
    .unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
}

/// Writes rows split round-robin-in-chunks over `files` files in `dir`.
pub fn write_split(dir: &Path, rows: &[LogRow], files: usize, row_group: usize) -> PathBuf {
    let files = files.max(1);
    let chunk = rows.len().div_ceil(files).max(1);
    for (i, part) in rows.chunks(chunk).enumerate() {
        write_parquet(&dir.join(format!("part-{i}.parquet")), part, row_group);
    }
    if rows.is_empty() {
        write_parquet(&dir.join("part-0.parquet"), rows, row_group);
    }
    dir.to_path_buf()
}

/// The binary, with the environment a user's shell might set removed and a
/// config directory of the tests' own.
pub fn wausage() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("wausage").unwrap();
    c.env_remove("WAUSAGE_DATA")
        .env_remove("WAUSAGE_RULES")
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("wausage-test-config"),
        );
    c
}

pub fn config(data: &Path, partitions: usize, rules: RuleChoice) -> Config {
    Config {
        data: data.to_string_lossy().into_owned(),
        tables: vec![],
        memory: wausage::memory::MemoryLimit::None,
        spill_dir: None,
        partitions,
        rules,
        format: Format::Csv,
        output: None,
        max_rows: 40,
        queries_dir: data.join("no-user-queries"),
        cluster: None,
    }
}

pub async fn session(data: &Path, partitions: usize) -> SessionContext {
    wausage::engine::session::build_session(&config(data, partitions, RuleChoice::Auto))
        .await
        .unwrap()
}

/// Runs SQL and returns every row as strings (NULL as "NULL").
pub async fn rows(ctx: &SessionContext, sql: &str) -> Vec<Vec<String>> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = vec![];
    for b in batches {
        let cols: Vec<ArrayRef> = b
            .columns()
            .iter()
            .map(|c| cast(c, &DataType::Utf8).unwrap())
            .collect();
        for i in 0..b.num_rows() {
            out.push(
                cols.iter()
                    .map(|c| {
                        let s = c.as_any().downcast_ref::<StringArray>().unwrap();
                        if s.is_null(i) {
                            "NULL".to_string()
                        } else {
                            s.value(i).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

/// Runs the rules core directly on one pair's rows (test oracle, no SQL):
/// one outcome per distinct message; `outcome.row` indexes `pair`.
pub fn core_outcomes(pair: &[&LogRow]) -> Vec<wausage_udfs::rules::MessageOutcome> {
    core_outcomes_by(pair, RuleChoice::Auto)
}

/// [`core_outcomes`] under a chosen rule set.
pub fn core_outcomes_by(
    pair: &[&LogRow],
    choice: RuleChoice,
) -> Vec<wausage_udfs::rules::MessageOutcome> {
    use wausage_udfs::rules::{id_hash, Kind, Row, Status, Windowing};
    let core_rows: Vec<Row> = pair
        .iter()
        .map(|r| Row {
            kind: Kind::classify(r.direction, r.message_type, r.category, r.entry_point).unwrap(),
            status: Status::parse(r.status).unwrap(),
            sent_at: r.sent_at * 1000,
            delivered_at: r.delivered_at.map(|d| d * 1000),
            id_hash: id_hash(r.message_id.as_bytes()),
        })
        .collect();
    let mut outcomes = vec![];
    Windowing::new(choice)
        .run_pair(
            &core_rows,
            |i| pair[i as usize].message_id.as_bytes(),
            &mut outcomes,
        )
        .unwrap();
    outcomes
}
