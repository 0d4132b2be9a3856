//! Billing: `billable-messages` and `cost-estimate` on logs priced per
//! message (from July 2025) and per conversation (the 1,000 free service
//! conversations before November 2024), and rate-card errors.

use assert_cmd::Command;
use predicates::prelude::*;

use crate::common::*;

fn wausage(data: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("wausage").unwrap();
    c.args(["--data", data.to_str().unwrap(), "--format", "csv"]);
    c
}

pub(crate) fn august_log(dir: &std::path::Path) {
    // ID: marketing x2 (billable), utility inside the CSW (free), utility after it (billable).
    let mut rows = parse_events(
        "T:m@0, T:m@1, in@2, T:u@3, T:u@30",
        AUG_2025_MS,
        "acct-1",
        "+6281234567890",
    );
    rows.extend(parse_events(
        "T:a@0#br1",
        AUG_2025_MS,
        "acct-1",
        "+5511987654321",
    ));
    write_split(dir, &rows, 2, 2);
}

pub(crate) const RATES: &str = "country,pricing_category,price,currency\n\
                     ID,marketing,0.0411,USD\nID,utility,0.02,USD\nBR,authentication,0.0315,USD\n";

#[test]
fn billable_messages_per_message_pricing() {
    let tmp = tempfile::tempdir().unwrap();
    august_log(tmp.path());
    let out = wausage(tmp.path())
        .args(["run", "billable-messages", "-p", "month=2025-08"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(
        text,
        "account_id,country,pricing_category,messages,billable_messages\n\
         acct-1,BR,authentication,1,1\nacct-1,ID,marketing,2,2\nacct-1,ID,utility,2,1\n"
    );
    // What-if: the same month under conversation-based pricing.
    let out = wausage(tmp.path())
        .args([
            "--rules",
            "cbp",
            "run",
            "billable-messages",
            "-p",
            "month=2025-08",
        ])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(
        text,
        "account_id,country,pricing_category,messages,billable_messages\n\
         acct-1,BR,authentication,1,1\nacct-1,ID,marketing,1,1\nacct-1,ID,utility,2,2\n"
    );
}

#[test]
fn cost_estimate_prices_units_and_totals_per_currency() {
    let tmp = tempfile::tempdir().unwrap();
    august_log(tmp.path());
    let rates = tmp.path().join("rates.csv");
    std::fs::write(&rates, RATES).unwrap();
    let table = format!("rates={}", rates.display());
    let out = wausage(tmp.path())
        .args([
            "--table",
            &table,
            "run",
            "cost-estimate",
            "-p",
            "month=2025-08",
        ])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(
        text,
        "account_id,country,pricing_category,billable_messages,price,currency,cost\n\
         acct-1,BR,authentication,1,0.0315000000,USD,0.0315000000\n\
         acct-1,ID,marketing,2,0.0411000000,USD,0.0822000000\n\
         acct-1,ID,utility,1,0.0200000000,USD,0.0200000000\n\
         ,,,4,,USD,0.1337000000\n"
    );
}

#[test]
fn a_unit_without_a_rate_fails_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    august_log(tmp.path());
    let rates = tmp.path().join("rates.csv");
    std::fs::write(&rates, RATES.replace("BR,authentication,0.0315,USD\n", "")).unwrap();
    let table = format!("rates={}", rates.display());
    wausage(tmp.path())
        .args([
            "--table",
            &table,
            "run",
            "cost-estimate",
            "-p",
            "month=2025-08",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("acct-1,BR,authentication,1,,,"))
        .stderr(
            predicate::str::contains("country=BR")
                .and(predicate::str::contains("pricing_category=authentication")),
        );
    wausage(tmp.path())
        .args([
            "--table",
            &table,
            "run",
            "cost-estimate",
            "-p",
            "month=2025-08",
            "-p",
            "allow_missing_rates=true",
        ])
        .assert()
        .success();
    wausage(tmp.path())
        .args(["run", "cost-estimate", "-p", "month=2025-08"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--table rates=FILE"));
}

#[test]
fn bad_rate_cards_name_file_column_and_row() {
    let tmp = tempfile::tempdir().unwrap();
    august_log(tmp.path());
    for (card, expect) in [
        (
            "country,price,currency\nID,1,USD\n",
            "no column `pricing_category`",
        ),
        (
            "country,pricing_category,price,currency\nID,marketing,0.1,USD\nID,utility,cheap,USD\n",
            "column `price`, row 2",
        ),
        (
            "country,pricing_category,price,currency\nID,marketing,0.1,USD\nID,marketing,0.2,USD\n",
            "rows 1 and 2",
        ),
    ] {
        let rates = tmp.path().join("card.csv");
        std::fs::write(&rates, card).unwrap();
        wausage(tmp.path())
            .args([
                "--table",
                &format!("rates={}", rates.display()),
                "run",
                "cost-estimate",
                "-p",
                "month=2025-08",
            ])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("card.csv").and(predicate::str::contains(expect)));
    }
}

#[test]
fn first_thousand_service_conversations_are_free_before_november_2024() {
    let tmp = tempfile::tempdir().unwrap();
    const OCT_2024_MS: i64 = 1_727_740_800_000;
    let mut rows = vec![];
    for c in 0..1002 {
        rows.extend(parse_events(
            &format!(
                "in@{0}#i{c}, F@{1}#f{c}",
                c as f64 * 0.5,
                c as f64 * 0.5 + 0.25
            ),
            OCT_2024_MS,
            "acct-1",
            &format!("+62812{:08}", 34560000 + c),
        ));
    }
    write_split(tmp.path(), &rows, 2, 500);
    let rates = tmp.path().join("rates.csv");
    std::fs::write(
        &rates,
        "country,pricing_category,price,currency\nID,service,0.01,USD\n",
    )
    .unwrap();
    let out = wausage(tmp.path())
        .args([
            "--table",
            &format!("rates={}", rates.display()),
            "run",
            "cost-estimate",
            "-p",
            "month=2024-10",
        ])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(
        text,
        "account_id,country,pricing_category,billable_messages,price,currency,cost\n\
         acct-1,ID,service,2,0.0100000000,USD,0.0200000000\n,,,2,,USD,0.0200000000\n"
    );
}
