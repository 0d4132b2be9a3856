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

fn core(rows: &[LogRow]) -> Conversations {
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
    let mut out = BTreeSet::new();
    for (account, customer) in keys {
        let pair: Vec<&LogRow> = rows
            .iter()
            .filter(|r| r.account_id == account && customer_key(&r.customer_id) == customer)
            .collect();
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
    let mut out = BTreeSet::new();
    for (account, customer) in keys {
        let pair: Vec<&LogRow> = rows
            .iter()
            .filter(|r| r.account_id == account && customer_key(&r.customer_id) == customer)
            .collect();
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
                let ctx = wausage::session::build_session(&config(dir.path(), partitions, choice)).await.unwrap();
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
            let ctx = wausage::session::build_session(&config(dir.path(), 2, RuleChoice::Cbp)).await.unwrap();
            let priced = crate::common::rows(&ctx,
                "SELECT message_id FROM message_pricing WHERE pricing_category IS NOT NULL ORDER BY 1").await;
            let opened = crate::common::rows(&ctx,
                "SELECT opening_message_id FROM conversations ORDER BY 1").await;
            assert_eq!(priced, opened);
        });
    }
}
