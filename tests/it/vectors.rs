//! The spec's test vectors end to end: written to Parquet, registered as a
//! log, and counted through the `conversations`, `message_conversations`
//! and `message_pricing` views.

use std::collections::BTreeMap;

use crate::common::*;

const CUSTOMER: &str = "+6281200000001";

/// (vector, events, expected conversations, outside_window count)
pub(crate) const CBP: &[(&str, &str, &str, usize)] = &[
    ("V1", "T:m@0", "marketing 1", 0),
    ("V2", "T:m@0, T:m@23.99", "marketing 1", 0),
    ("V3", "T:m@0, T:m@24", "marketing 2", 0),
    ("V4", "T:m@0, T:u@1", "marketing 1, utility 1", 0),
    ("V5", "T:a@0, T:m@2", "authentication 1, marketing 1", 0),
    ("V6", "in@0, F@1", "service 1", 0),
    ("V7", "in@0, F@1, F@20", "service 1", 0),
    ("V8", "in@0, F@1, T:m@2", "marketing 1, service 1", 0),
    ("V9", "T:u@0, in@1, F@2", "utility 1", 0),
    ("V10", "in@0, F@25", "", 1),
    ("V11", "in@0, F@1, in@30, F@31", "service 2", 0),
    ("V12", "in@0, F@1, F@24.5", "service 1", 0),
    ("V13", "in@0, F@1, in@20, F@26", "service 2", 0),
    ("V14", "T:m@0 x, T:m@1", "marketing 1", 0),
    ("V16", "in*@0, F@1", "free_entry 1", 0),
    ("V17", "in*@0, F@1, T:m@50, F@70", "free_entry 1", 0),
    ("V18", "in*@0, F@1, T:m@73", "free_entry 1, marketing 1", 0),
    ("V19", "in*@0, F@25", "", 1),
    ("V20", "in*@0, T:u@2", "free_entry 1", 0),
    ("V22", "F@0, in@0", "service 1", 0),
    ("V23", "in@-1, F@0, T:m@0", "marketing 1", 0),
    ("V27", "in@0, in@5", "", 0),
    ("V28", "T:a@0, T:a@10, T:a@30", "authentication 2", 0),
    ("V29", "in@0, T:m@1, F@2, F@30", "marketing 1", 1),
    ("V30", "in@0, F@1 x, F@2", "service 1", 0),
    (
        "V31",
        "T:m@0, in*@1, F@2, T:u@3",
        "free_entry 1, marketing 1",
        0,
    ),
    ("V32", "T:m@0, in*@1, T:m@2", "free_entry 1, marketing 1", 0),
    ("V33", "in*@0, T:m@1#b, T:u@1#a", "free_entry 1", 0),
    ("V34", "in*@0, in@10, F@11", "free_entry 1", 0),
    ("V35", "in*@0, F@1, in*@60, F@61, F@74", "free_entry 2", 0),
    ("V36", "in*@0, F@24", "", 1),
    ("V37", "in*@0, T:m@24", "marketing 1", 0),
    ("V38", "in*@0, in*@10, F@30", "free_entry 1", 0),
    (
        "V39",
        "T:m@-90, T:m@-70, T:m@-50, T:m@-30, T:m@-10, T:m@5",
        "marketing 3",
        0,
    ),
];

pub(crate) fn expected(s: &str) -> BTreeMap<String, i64> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (c, n) = p.split_once(' ').unwrap();
            (c.to_string(), n.parse().unwrap())
        })
        .collect()
}

async fn counts(dir: &std::path::Path) -> (BTreeMap<String, i64>, i64) {
    let ctx = session(dir, 2).await;
    let by_category = rows(
        &ctx,
        "SELECT category, count(*) FROM conversations GROUP BY 1",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect();
    let outside = rows(
        &ctx,
        "SELECT count(*) FROM message_conversations WHERE outside_window",
    )
    .await;
    (by_category, outside[0][0].parse().unwrap())
}

#[tokio::test]
async fn cbp_vectors_through_sql() {
    for (name, events, want, outside) in CBP {
        let tmp = tempfile::tempdir().unwrap();
        let rows = parse_events(events, FEB_2024_MS, "acct", CUSTOMER);
        write_split(tmp.path(), &rows, 2, 2);
        let (got, got_outside) = counts(tmp.path()).await;
        assert_eq!(got, expected(want), "{name}: {events}");
        assert_eq!(got_outside, *outside as i64, "{name}: outside_window");
    }
}

#[tokio::test]
async fn opened_at_and_opening_message() {
    // V15: the window runs from delivery; V33: message_id breaks the tie.
    let tmp = tempfile::tempdir().unwrap();
    let mut log = parse_events("T:m@0, T:m@24.1", FEB_2024_MS, "acct", CUSTOMER);
    log[0].delivered_at = Some(FEB_2024_MS + HOUR_MS / 2);
    log[1].delivered_at = Some(FEB_2024_MS + 242 * HOUR_MS / 10);
    log.extend(parse_events(
        "in*@0, T:m@1#b, T:u@1#a",
        FEB_2024_MS,
        "acct",
        "+447400123456",
    ));
    write_split(tmp.path(), &log, 1, 100);
    let ctx = session(tmp.path(), 2).await;
    let got = rows(
        &ctx,
        "SELECT customer_id, country, category, CAST(opened_at AS VARCHAR), CAST(expires_at AS VARCHAR), \
         opening_message_id FROM conversations ORDER BY customer_id",
    )
    .await;
    assert_eq!(
        got,
        [
            [
                "+447400123456",
                "GB",
                "free_entry",
                "2024-02-01T01:00:00Z",
                "2024-02-04T01:00:00Z",
                "a"
            ],
            [
                "+6281200000001",
                "ID",
                "marketing",
                "2024-02-01T00:30:00Z",
                "2024-02-02T00:30:00Z",
                "m001"
            ],
        ]
    );
}

#[tokio::test]
async fn v21_v41_duplicate_rows_are_one_message() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = parse_events("T:m@0#A, T:m@30#B, T:m@30#B", FEB_2024_MS, "acct", CUSTOMER);
    // V41: A logged first as sent (not delivered), later as delivered.
    let mut sent_row = log[0].clone();
    sent_row.status = "sent";
    sent_row.delivered_at = None;
    log.insert(0, sent_row);
    write_split(tmp.path(), &log, 2, 1);
    let ctx = session(tmp.path(), 2).await;
    assert_eq!(
        rows(&ctx, "SELECT count(*) FROM conversations").await,
        [["2"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "SELECT message_id, status, log_rows FROM messages ORDER BY 1"
        )
        .await,
        [["A", "delivered", "2"], ["B", "delivered", "2"]]
    );
    assert_eq!(
        rows(&ctx, "SELECT count(*) FROM message_conversations").await,
        [["2"]]
    );
}

#[tokio::test]
async fn v24_v25_v40_pairs_and_customer_forms() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = parse_events("T:m@0", FEB_2024_MS, "X", "+6281200000001");
    log.extend(parse_events("T:m@1#y1", FEB_2024_MS, "Y", "+6281200000001")); // V25
    log.extend(parse_events("T:m@1#b1", FEB_2024_MS, "X", "+6281200000002")); // V24
    log.extend(parse_events("T:m@1#v40", FEB_2024_MS, "X", "6281200000001")); // V40
    write_split(tmp.path(), &log, 3, 1);
    let ctx = session(tmp.path(), 4).await;
    assert_eq!(
        rows(&ctx, "SELECT account_id, customer_id, count(*) FROM conversations GROUP BY 1, 2 ORDER BY 1, 2").await,
        [["X", "+6281200000001", "1"], ["X", "+6281200000002", "1"], ["Y", "+6281200000001", "1"]]
    );
}

#[tokio::test]
async fn v26_v39_month_selection_keeps_carried_over_conversations_out() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = parse_events("T:m@-1, T:m@10", FEB_2024_MS, "acct", CUSTOMER);
    log.extend(parse_events(
        "T:m@-90#c1, T:m@-70#c2, T:m@-50#c3, T:m@-30#c4, T:m@-10#c5, T:m@5#c6",
        FEB_2024_MS,
        "acct",
        "+12125550123",
    ));
    write_split(tmp.path(), &log, 2, 2);
    let ctx = session(tmp.path(), 2).await;
    let feb = "opened_at >= TIMESTAMP '2024-02-01T00:00:00Z' AND opened_at < TIMESTAMP '2024-03-01T00:00:00Z'";
    assert_eq!(
        rows(
            &ctx,
            &format!("SELECT count(*) FROM conversations WHERE {feb}")
        )
        .await,
        [["0"]]
    );
    assert_eq!(
        rows(&ctx, "SELECT count(*) FROM conversations").await,
        [["4"]]
    );
}

/// (vector, events, expected "category count" list, billable, outside_window)
pub(crate) const PMP: &[(&str, &str, &str, i64, i64)] = &[
    ("P1", "T:m@0, T:m@1", "marketing 2", 2, 0),
    ("P2", "in@0, T:u@1", "utility 1", 0, 0),
    ("P3", "T:u@0", "utility 1", 1, 0),
    ("P4", "in@0, T:u@25", "utility 1", 1, 0),
    ("P5", "in@0, F@1, F@2", "service 2", 0, 0),
    ("P6", "in@0, F@25", "service 1", 0, 1),
    (
        "P7",
        "in*@0, F@1, T:m@50, T:u@70, T:m@73",
        "marketing 1, referral_conversion 3",
        1,
        0,
    ),
    ("P8", "in*@0, T:m@25", "marketing 1", 1, 0),
    ("P9", "in@0, T:a@1", "authentication 1", 1, 0),
    ("P10", "in@0, T:m@1", "marketing 1", 1, 0),
    ("P11", "T:m@0 x", "", 0, 0),
    ("P12", "in*@0, in*@10, F@11", "referral_conversion 1", 0, 0),
    ("P13", "in@0, in@20, T:u@30", "utility 1", 0, 0),
    ("P14", "in*@0, F@1 x, F@2", "referral_conversion 1", 0, 0),
    ("P15", "in*@0, F@1, F@30", "referral_conversion 2", 0, 1),
];

#[tokio::test]
async fn pmp_vectors_through_sql() {
    for (name, events, want, billable, outside) in PMP {
        let tmp = tempfile::tempdir().unwrap();
        write_split(
            tmp.path(),
            &parse_events(events, AUG_2025_MS, "acct", CUSTOMER),
            2,
            2,
        );
        let ctx = session(tmp.path(), 2).await;
        let got: BTreeMap<String, i64> = rows(
            &ctx,
            "SELECT pricing_category, count(*) FROM message_pricing WHERE rule_set = 'pmp' GROUP BY 1",
        )
        .await
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap()))
        .collect();
        assert_eq!(got, expected(want), "{name}: {events}");
        let totals = rows(
            &ctx,
            "SELECT count(*) FILTER (WHERE billable), count(*) FILTER (WHERE outside_window) FROM message_pricing",
        )
        .await;
        assert_eq!(
            totals,
            [[billable.to_string(), outside.to_string()]],
            "{name}"
        );
    }
}

#[tokio::test]
async fn switch_vectors_and_forced_rule_sets() {
    let tmp = tempfile::tempdir().unwrap();
    // B2: the free entry conversation opened in June carries over.
    write_split(
        tmp.path(),
        &parse_events("in*@-2, F@-1, T:m@10", JUL_2025_MS, "acct", CUSTOMER),
        1,
        10,
    );
    let sql = "SELECT rule_set, pricing_category, billable FROM message_pricing ORDER BY event_at";
    let auto = session(tmp.path(), 2).await;
    assert_eq!(
        rows(&auto, sql).await,
        [
            ["cbp", "referral_conversion", "false"],
            ["pmp", "referral_conversion", "false"]
        ]
    );
    // What-if: SET switches the pricing views in place (through the runner).
    wausage::engine::exec::run_sql(
        &auto,
        "SET wausage.rules = 'pmp';",
        None,
        wausage::output::Results::Any,
        &mut |_| Err(wausage::error::WaError::Usage("no output expected".into())),
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&auto, sql).await,
        [
            ["pmp", "referral_conversion", "false"],
            ["pmp", "referral_conversion", "false"]
        ]
    );
    let forced = wausage::engine::session::build_session(&config(
        tmp.path(),
        2,
        wausage_udfs::rules::RuleChoice::Cbp,
    ))
    .await
    .unwrap();
    assert_eq!(
        rows(&forced, sql).await,
        [
            ["cbp", "referral_conversion", "false"],
            ["cbp", "NULL", "false"]
        ]
    );
}
