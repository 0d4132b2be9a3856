//! The built-in reports, run through the binary on a generated log, checked
//! against figures this test computes itself: counts over the rows it wrote
//! and conversations from the rules core run directly.

use std::collections::{BTreeMap, HashMap};

use assert_cmd::Command;
use wausage_udfs::rules::customer_key;

use crate::common::*;

/// Customers with the country libphonenumber gives their number.
const CUSTOMERS: [(&str, &str); 8] = [
    ("+14165550101", "CA"),
    ("+12125550123", "US"),
    ("+447400123456", "GB"),
    ("+6281234567890", "ID"),
    ("14165550102", "CA"),
    ("+12125550124", "US"),
    ("+447400123457", "GB"),
    ("6281234567891", "ID"),
];
const FEB: (i64, i64) = (FEB_2024_MS, FEB_2024_MS + 29 * 24 * HOUR_MS);

/// A deterministic pseudo-random log from late January to early March.
pub fn log() -> Vec<LogRow> {
    let mut seed: u64 = 12345;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let kinds = ["in", "in*", "T:m", "T:u", "T:a", "F", "F"];
    let mut rows = vec![];
    let mut id = 0;
    for (c, (customer, _)) in CUSTOMERS.iter().enumerate() {
        let account = if c % 3 == 0 { "acct-2" } else { "acct-1" };
        for _ in 0..40 {
            id += 1;
            let hours = next(1000) as f64 - 160.0; // Jan 25 .. Mar 5
            let kind = kinds[next(kinds.len() as u64) as usize];
            let undelivered = kind != "in" && kind != "in*" && next(10) == 0;
            let spec = format!(
                "{kind}@{hours}{}#m{id:04}",
                if undelivered { " x" } else { "" }
            );
            let mut r = parse_events(&spec, FEB_2024_MS, account, customer).remove(0);
            if undelivered && next(2) == 0 {
                r.status = "failed";
            }
            rows.push(r);
        }
    }
    rows
}

pub fn in_feb(t: i64) -> bool {
    t >= FEB.0 && t < FEB.1
}

/// Conversations opened in February per (account, country, category).
pub fn core_conversations(rows: &[LogRow]) -> Vec<(String, String, String, i64)> {
    let mut pairs: BTreeMap<(String, String), Vec<&LogRow>> = BTreeMap::new();
    for r in rows {
        pairs
            .entry((
                r.account_id.clone(),
                customer_key(&r.customer_id).to_string(),
            ))
            .or_default()
            .push(r);
    }
    let country: HashMap<&str, &str> = CUSTOMERS
        .iter()
        .map(|(n, c)| (customer_key(n), *c))
        .collect();
    let mut out = vec![];
    for ((account, customer), pair) in pairs {
        let outcomes = core_outcomes(&pair);
        for m in &outcomes {
            if let Some((c, _)) = m.conversation {
                out.push((
                    account.clone(),
                    country[customer.as_str()].to_string(),
                    c.as_str().to_string(),
                    m.event_at.unwrap() / 1000,
                ));
            }
        }
    }
    out
}

fn run_csv(data: &std::path::Path, args: &[&str]) -> Vec<HashMap<String, String>> {
    let out = Command::cargo_bin("wausage")
        .unwrap()
        .args(["--data", data.to_str().unwrap(), "--format", "csv", "run"])
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

#[test]
fn reports_match_independent_figures() {
    let rows = log();
    let tmp = tempfile::tempdir().unwrap();
    write_split(tmp.path(), &rows, 3, 50);
    let convs: Vec<_> = core_conversations(&rows)
        .into_iter()
        .filter(|c| in_feb(c.3))
        .collect();
    let delivered_in_feb =
        |r: &&LogRow| r.direction == "outbound" && r.delivered_at.is_some_and(in_feb);

    // monthly-utilization: one row per account, then the total.
    let util = run_csv(
        tmp.path(),
        &[
            "monthly-utilization",
            "-p",
            "month=2024-02",
            "-p",
            "quota=1000",
        ],
    );
    assert_eq!(util.len(), 3);
    for row in &util {
        let account = (!row["account_id"].is_empty()).then(|| row["account_id"].clone());
        let mine = |a: &str| account.as_deref().is_none_or(|x| x == a);
        let delivered = rows
            .iter()
            .filter(delivered_in_feb)
            .filter(|r| mine(&r.account_id))
            .count();
        let conversations = convs.iter().filter(|c| mine(&c.0)).count();
        assert_eq!(row["delivered_messages"], delivered.to_string(), "{row:?}");
        assert_eq!(row["conversations"], conversations.to_string(), "{row:?}");
        // February 2024 is priced per conversation: every opened conversation
        // but free entry ones is a billable unit (service was still charged).
        let billable = convs
            .iter()
            .filter(|c| mine(&c.0) && c.2 != "free_entry")
            .count();
        assert_eq!(row["billable_messages"], billable.to_string(), "{row:?}");
        assert_eq!(row["quota"], "1000");
        let pct: f64 = row["quota_used_pct"].parse().unwrap();
        assert!((pct - delivered as f64 / 10.0).abs() < 1e-9, "{row:?}");
        assert_eq!(row["days_elapsed"], "29");
        assert_eq!(
            row["projected_messages"],
            delivered.to_string(),
            "a past month projects to itself"
        );
    }
    assert_eq!(util[2]["account_id"], "", "the total row comes last");

    // Per-account quotas from a contracts table.
    let contracts = tmp.path().join("contracts.csv");
    std::fs::write(
        &contracts,
        "account_id,monthly_quota\nacct-1,100\nacct-2,400\n",
    )
    .unwrap();
    let table = format!("contracts={}", contracts.display());
    let util = run_csv(
        tmp.path(),
        &[
            "monthly-utilization",
            "-p",
            "month=2024-02",
            "--table",
            &table,
        ],
    );
    let quotas: Vec<&str> = util.iter().map(|r| r["quota"].as_str()).collect();
    assert_eq!(quotas, ["100", "400", "500"]);

    // conversations-by-category
    let mut by_cat: BTreeMap<String, usize> = BTreeMap::new();
    for c in &convs {
        *by_cat.entry(c.2.clone()).or_default() += 1;
    }
    let got: BTreeMap<String, usize> = run_csv(
        tmp.path(),
        &["conversations-by-category", "-p", "month=2024-02"],
    )
    .into_iter()
    .map(|r| (r["category"].clone(), r["conversations"].parse().unwrap()))
    .collect();
    assert_eq!(got, by_cat);

    // country-allocation
    let country: HashMap<&str, &str> = CUSTOMERS.iter().copied().collect();
    for row in run_csv(tmp.path(), &["country-allocation", "-p", "month=2024-02"]) {
        let c = row["country"].as_str();
        let delivered = rows
            .iter()
            .filter(delivered_in_feb)
            .filter(|r| country[r.customer_id.as_str()] == c)
            .count();
        assert_eq!(row["delivered_messages"], delivered.to_string(), "{c}");
        assert_eq!(
            row["conversations"],
            convs.iter().filter(|x| x.1 == c).count().to_string(),
            "{c}"
        );
    }

    // overall-vs-usage
    let overall = run_csv(tmp.path(), &["overall-vs-usage", "-p", "month=2024-02"]);
    let outbound = rows.iter().filter(|r| r.direction == "outbound");
    let sent = outbound
        .clone()
        .filter(|r| in_feb(r.delivered_at.unwrap_or(r.sent_at)))
        .count();
    let failed = outbound
        .filter(|r| r.status == "failed" && in_feb(r.sent_at))
        .count();
    let delivered = rows.iter().filter(delivered_in_feb).count();
    assert_eq!(
        (
            overall[0]["sent_messages"].as_str(),
            overall[0]["delivered_messages"].as_str(),
            overall[0]["failed_messages"].as_str(),
            overall[0]["conversations"].as_str()
        ),
        (
            sent.to_string().as_str(),
            delivered.to_string().as_str(),
            failed.to_string().as_str(),
            convs.len().to_string().as_str()
        )
    );

    // daily-conversations adds up, day by day.
    let daily = run_csv(tmp.path(), &["daily-conversations", "-p", "month=2024-02"]);
    let total: usize = daily
        .iter()
        .map(|r| r["conversations"].parse::<usize>().unwrap())
        .sum();
    assert_eq!(total, convs.len());
    let first_day = convs
        .iter()
        .filter(|c| c.3 < FEB_2024_MS + 24 * HOUR_MS)
        .count();
    let got_first: usize = daily
        .iter()
        .filter(|r| r["day"] == "2024-02-01")
        .map(|r| r["conversations"].parse::<usize>().unwrap())
        .sum();
    assert_eq!(got_first, first_day);
}

#[test]
fn empty_months_give_zero_rows_or_zeros() {
    let tmp = tempfile::tempdir().unwrap();
    write_split(tmp.path(), &log(), 1, 1000);
    // A month before the log: no conversations, zero counts per account.
    assert!(run_csv(
        tmp.path(),
        &["conversations-by-category", "-p", "month=2023-06"]
    )
    .is_empty());
    let util = run_csv(
        tmp.path(),
        &[
            "monthly-utilization",
            "-p",
            "month=2023-06",
            "-p",
            "quota=10",
        ],
    );
    assert!(
        util.iter()
            .all(|r| r["delivered_messages"] == "0" && r["conversations"] == "0"),
        "{util:?}"
    );
    let overall = run_csv(tmp.path(), &["overall-vs-usage", "-p", "month=2023-06"]);
    assert_eq!(overall[0]["sent_messages"], "0");
}

#[test]
fn alert_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    write_split(tmp.path(), &log(), 1, 1000);
    let base = [
        "--data",
        tmp.path().to_str().unwrap(),
        "run",
        "monthly-utilization",
        "-p",
        "month=2024-02",
    ];
    Command::cargo_bin("wausage")
        .unwrap()
        .args(base)
        .args(["-p", "quota=100", "--alert-at", "50"])
        .assert()
        .code(3)
        .stderr(predicates::str::contains("the total"));
    Command::cargo_bin("wausage")
        .unwrap()
        .args(base)
        .args(["-p", "quota=100000000", "--alert-at", "50"])
        .assert()
        .success();
}
