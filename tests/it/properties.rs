//! Property tests: on random logs, the UDAF (through the views), the UDWF
//! and the rules core run directly agree, and neither the number of files,
//! row groups nor `target_partitions` changes the answer. Events fall in
//! three eras, around February 2024 (`cbp`) and around both switches of
//! `auto` (2025-07-01 and 2026-10-01), so a pair's history spans all three
//! rule sets.

use std::collections::BTreeSet;

use proptest::prelude::*;
use wausage_udfs::rules::{customer_key, RuleChoice};

use crate::common::*;

const EVENTS: [&str; 6] = ["in", "in*", "T:m", "T:u", "T:a", "F"];

/// Where an era's 200 hours start: February 2024, and 100 hours before
/// each switch.
const ERAS: [i64; 3] = [
    FEB_2024_MS,
    JUL_2025_MS - 100 * HOUR_MS,
    OCT_2026_MS - 100 * HOUR_MS,
];

/// One random event: kind, era, half-hour slot, delivered?, logged twice?
fn event() -> impl Strategy<Value = (usize, usize, i64, bool, bool)> {
    (
        0..EVENTS.len(),
        0..ERAS.len(),
        0i64..400,
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.1),
    )
}

fn log() -> impl Strategy<Value = Vec<LogRow>> {
    prop::collection::vec((0usize..4, prop::collection::vec(event(), 1..25)), 1..4).prop_map(
        |pairs| {
            let mut rows = vec![];
            let mut n = 0;
            for (pair, events) in pairs {
                let account = if pair % 2 == 0 { "A" } else { "B" };
                for (kind, era, slot, delivered, twice) in events {
                    n += 1;
                    // Half of the rows write the number without '+': one customer.
                    let customer = if n % 2 == 0 {
                        "+1416555010"
                    } else {
                        "1416555010"
                    };
                    let customer = format!("{customer}{}", pair / 2);
                    let spec = format!(
                        "{}@{}{}",
                        EVENTS[kind],
                        slot as f64 / 2.0,
                        if delivered { "" } else { " x" }
                    );
                    let mut r = parse_events(&spec, ERAS[era], account, &customer).remove(0);
                    r.message_id = format!("id{n:04}");
                    if twice {
                        let mut first = r.clone();
                        if first.direction == "outbound" {
                            first.status = "sent";
                            first.delivered_at = None;
                        }
                        rows.push(first);
                    }
                    rows.push(r);
                }
            }
            rows
        },
    )
}

/// Conversations by running the rules core on each pair directly:
/// (account, customer, category, opened_at ms, opening id).
type Conversations = BTreeSet<(String, String, String, i64, String)>;

/// The log's (account, customer key) pairs, each with its rows.
fn pairs(rows: &[LogRow]) -> Vec<(String, String, Vec<&LogRow>)> {
    let mut keys: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.account_id.clone(),
                customer_key(&r.customer_id).to_string(),
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|(account, customer)| {
            let pair = rows
                .iter()
                .filter(|r| r.account_id == account && customer_key(&r.customer_id) == customer)
                .collect();
            (account, customer, pair)
        })
        .collect()
}

fn core(rows: &[LogRow]) -> Conversations {
    let mut out = BTreeSet::new();
    for (account, customer, pair) in pairs(rows) {
        let outcomes = core_outcomes(&pair);
        for m in &outcomes {
            if let Some((c, _)) = m.conversation {
                out.insert((
                    account.clone(),
                    format!("+{customer}"),
                    c.as_str().to_string(),
                    m.event_at.unwrap() / 1000,
                    pair[m.row as usize].message_id.clone(),
                ));
            }
        }
    }
    out
}

/// Every priced message: (id, rule set, pricing category, billable, outside window).
type Priced = BTreeSet<(String, String, String, String, String)>;

fn core_pricing(rows: &[LogRow], choice: RuleChoice) -> Priced {
    let mut out = BTreeSet::new();
    for (_, _, pair) in pairs(rows) {
        for m in core_outcomes_by(&pair, choice) {
            if let Some(p) = m.pricing {
                out.insert((
                    pair[m.row as usize].message_id.clone(),
                    p.rule_set.as_str().to_string(),
                    p.category.map_or("NULL", |c| c.as_str()).to_string(),
                    p.billable.to_string(),
                    p.outside_window.to_string(),
                ));
            }
        }
    }
    out
}

async fn sql_pricing(ctx: &datafusion::prelude::SessionContext) -> Priced {
    rows(
        ctx,
        "SELECT message_id, rule_set, pricing_category, billable, outside_window FROM message_pricing",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone(), r[4].clone()))
    .collect()
}

fn sql_conversations(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    partitions: usize,
) -> (Conversations, BTreeSet<(String, String)>) {
    rt.block_on(async {
        let ctx = session(dir, partitions).await;
        let convs = rows(
            &ctx,
            "SELECT account_id, customer_id, category, CAST(CAST(opened_at AS BIGINT) / 1000 AS VARCHAR), \
             opening_message_id FROM conversations",
        )
        .await
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[3].parse().unwrap(), r[4].clone()))
        .collect();
        let labels = rows(
            &ctx,
            "SELECT DISTINCT message_id, l['opened_category'] FROM (SELECT message_id, \
             wa_label(message_id, direction, message_type, category, status, sent_at, delivered_at, entry_point) \
             OVER (PARTITION BY account_id, ltrim(customer_id, '+')) AS l FROM messages_raw) \
             WHERE l['opened_category'] IS NOT NULL",
        )
        .await
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
        (convs, labels)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn udaf_udwf_and_core_agree_under_any_split(rows in log(), files in 1usize..4, row_group in 1usize..6, partitions in 1usize..4) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let expected = core(&rows);
        let expected_labels: BTreeSet<(String, String)> =
            expected.iter().map(|c| (c.4.clone(), c.2.clone())).collect();

        let one = tempfile::tempdir().unwrap();
        write_split(one.path(), &rows, 1, 1000);
        let (convs, labels) = sql_conversations(&rt, one.path(), 1);
        prop_assert_eq!(&convs, &expected);
        prop_assert_eq!(&labels, &expected_labels);

        let split = tempfile::tempdir().unwrap();
        write_split(split.path(), &rows, files, row_group);
        let (convs, _) = sql_conversations(&rt, split.path(), partitions);
        prop_assert_eq!(&convs, &expected);
        let priced = rt.block_on(async { sql_pricing(&session(split.path(), partitions).await).await });
        prop_assert_eq!(priced, core_pricing(&rows, RuleChoice::Auto));
    }

    #[test]
    fn forced_rule_sets_price_as_the_core_under_any_split(rows in log(), files in 1usize..4, partitions in 1usize..4) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), &rows, files, 2);
        for choice in [RuleChoice::Pmp, RuleChoice::Pmp26] {
            let priced = rt.block_on(async {
                let ctx = wausage::engine::session::build_session(&config(dir.path(), partitions, choice)).await.unwrap();
                sql_pricing(&ctx).await
            });
            prop_assert_eq!(priced, core_pricing(&rows, choice));
        }
    }

    #[test]
    fn forced_cbp_prices_exactly_the_messages_that_open_conversations(rows in log()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), &rows, 2, 3);
        rt.block_on(async {
            let ctx = wausage::engine::session::build_session(&config(dir.path(), 2, RuleChoice::Cbp)).await.unwrap();
            let priced = crate::common::rows(&ctx,
                "SELECT message_id FROM message_pricing WHERE pricing_category IS NOT NULL ORDER BY 1").await;
            let opened = crate::common::rows(&ctx,
                "SELECT opening_message_id FROM conversations ORDER BY 1").await;
            assert_eq!(priced, opened);
        });
    }
}

/// A defect a log may carry, row by row.
#[derive(Clone, Copy, Debug)]
enum Defect {
    /// Blanks (or a second `+`) around the customer's number: the same customer.
    Blanks(usize),
    /// The row logged again, exactly: the same message.
    Duplicate,
    /// The row logged again under the same id, with another direction or
    /// `sent_at`: an error naming the id.
    Conflict,
    /// A delivery before the send (a skewed clock): counted at the send.
    DeliveredEarly,
    /// A delivery in 1700: an error naming the id.
    DeliveredIn1700,
}

fn defects() -> impl Strategy<Value = Vec<Option<Defect>>> {
    prop::collection::vec(
        prop_oneof![
            12 => Just(None),
            1 => (0usize..4).prop_map(|b| Some(Defect::Blanks(b))),
            1 => Just(Some(Defect::Duplicate)),
            1 => Just(Some(Defect::Conflict)),
            1 => Just(Some(Defect::DeliveredEarly)),
            1 => Just(Some(Defect::DeliveredIn1700)),
        ],
        0..120,
    )
}

/// The log with its defects, the log as it means (cleaned), and the ids
/// whose defects must fail the run.
fn with_defects(
    rows: &[LogRow],
    defects: &[Option<Defect>],
) -> (Vec<LogRow>, Vec<LogRow>, Vec<String>) {
    const BLANKS: [(&str, &str); 4] = [(" ", " "), ("", "\n"), ("\t", ""), ("+", "")];
    let (mut dirty, mut clean, mut fatal) = (vec![], vec![], vec![]);
    for (i, row) in rows.iter().enumerate() {
        let mut d = row.clone();
        let mut c = row.clone();
        match defects.get(i).copied().flatten() {
            None => {}
            Some(Defect::Blanks(b)) => {
                let (before, after) = BLANKS[b];
                d.customer_id = format!("{before}{}{after}", row.customer_id);
            }
            Some(Defect::Duplicate) => dirty.push(row.clone()),
            Some(Defect::Conflict) => {
                let mut twin = row.clone();
                twin.sent_at += HOUR_MS;
                dirty.push(twin);
                fatal.push(row.message_id.clone());
            }
            Some(Defect::DeliveredEarly) => {
                if let Some(t) = d.delivered_at {
                    d.delivered_at = Some(t - 2 * HOUR_MS);
                    c.delivered_at = Some((t - 2 * HOUR_MS).max(c.sent_at));
                }
            }
            Some(Defect::DeliveredIn1700)
                if d.direction == "outbound" && d.delivered_at.is_some() =>
            {
                d.delivered_at = Some(-8_520_336_000_000);
                fatal.push(row.message_id.clone());
            }
            Some(Defect::DeliveredIn1700) => {}
        }
        dirty.push(d);
        clean.push(c);
    }
    (dirty, clean, fatal)
}

async fn answers(
    ctx: &datafusion::prelude::SessionContext,
) -> Result<(Vec<Vec<String>>, Vec<Vec<String>>), String> {
    let mut out = vec![];
    for sql in [
        "SELECT account_id, customer_id, country, category, CAST(opened_at AS VARCHAR), opening_message_id \
         FROM conversations ORDER BY 1, 2, 5, 4",
        "SELECT message_id, rule_set, pricing_category, billable, outside_window FROM message_pricing ORDER BY 1",
    ] {
        let df = ctx.sql(sql).await.map_err(|e| e.to_string())?;
        let batches = df.collect().await.map_err(|e| e.to_string())?;
        let mut rows = vec![];
        for b in batches {
            let cols: Vec<_> = b
                .columns()
                .iter()
                .map(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).unwrap())
                .collect();
            for i in 0..b.num_rows() {
                rows.push(
                    cols.iter()
                        .map(|c| {
                            use arrow::array::{Array, AsArray};
                            let s = c.as_string::<i32>();
                            if s.is_null(i) { "NULL".to_string() } else { s.value(i).to_string() }
                        })
                        .collect(),
                );
            }
        }
        out.push(rows);
    }
    let pricing = out.pop().unwrap();
    Ok((out.pop().unwrap(), pricing))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// On a log with random defects, every run either answers exactly as on
    /// the cleaned log or fails naming a defective message: never a
    /// different answer.
    #[test]
    fn defects_give_the_clean_answer_or_an_error_naming_them(rows in log(), defects in defects(), files in 1usize..4, partitions in 1usize..4) {
        let (dirty, clean, fatal) = with_defects(&rows, &defects);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let clean_dir = tempfile::tempdir().unwrap();
        write_split(clean_dir.path(), &clean, 1, 1000);
        let dirty_dir = tempfile::tempdir().unwrap();
        write_split(dirty_dir.path(), &dirty, files, 3);
        let expected = rt.block_on(async { answers(&session(clean_dir.path(), 1).await).await }).unwrap();
        let got = rt.block_on(async {
            let ctx = wausage::engine::session::build_session(&config(dirty_dir.path(), partitions, RuleChoice::Auto)).await;
            match ctx {
                Ok(ctx) => answers(&ctx).await,
                Err(e) => Err(e.to_string()),
            }
        });
        match got {
            Ok(answer) => {
                prop_assert!(fatal.is_empty(), "defects {fatal:?} were not caught");
                prop_assert_eq!(answer, expected);
            }
            Err(e) => {
                prop_assert!(!fatal.is_empty(), "failed on a log without fatal defects: {e}");
                prop_assert!(fatal.iter().any(|id| e.contains(id.as_str())), "{e} names none of {fatal:?}");
            }
        }
    }
}
