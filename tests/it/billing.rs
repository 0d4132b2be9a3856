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
         acct-1,ID,service,1002,0.0100000000,USD,10.0200000000\n\
         acct-1,ID,service,-1000,0.0100000000,USD,-10.0000000000\n\
         ,,,2,,USD,0.0200000000\n"
    );
}

/// November 2026 (pmp26): customer A writes on phone number P1 and gets
/// three replies; customer B writes on P2 and gets one. All four replies
/// are billable service messages.
fn november_2026_log(dir: &std::path::Path, with_phone_numbers: bool) {
    let mut rows = parse_events(
        "in@0#a0, F@1#a1, F@2#a2, F@3#a3",
        NOV_2026_MS,
        "acct-1",
        "+6281234567890",
    );
    let mut b = parse_events("in@0#b0, F@1.5#b1", NOV_2026_MS, "acct-1", "+6281234567891");
    if with_phone_numbers {
        rows.iter_mut()
            .for_each(|r| r.phone_number_id = Some("P1".into()));
        b.iter_mut()
            .for_each(|r| r.phone_number_id = Some("P2".into()));
    }
    rows.extend(b);
    write_split(dir, &rows, 2, 2);
}

fn cost_csv(dir: &std::path::Path, card: &str, extra: &[&str]) -> (i32, String, String) {
    let rates = dir.join("card.csv");
    std::fs::write(&rates, card).unwrap();
    let mut cmd = wausage(dir);
    cmd.args([
        "--table",
        &format!("rates={}", rates.display()),
        "run",
        "cost-estimate",
        "-p",
        "month=2026-11",
    ]);
    for e in extra {
        cmd.args(["-p", e]);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const HEADER: &str = "account_id,country,pricing_category,billable_messages,price,currency,cost\n";

#[test]
fn service_allowance_is_per_phone_number_and_shows_as_its_own_rows() {
    let tmp = tempfile::tempdir().unwrap();
    november_2026_log(tmp.path(), true);
    // No service row: service takes the utility rate.
    let card = "country,pricing_category,price,currency\nID,utility,0.02,USD\n";
    let (code, out, err) = cost_csv(tmp.path(), card, &["service_allowance=2"]);
    assert_eq!(code, 0, "{err}");
    // P1: a1 and a2 free, a3 charged; P2: b1 free.
    assert_eq!(
        out,
        format!(
            "{HEADER}acct-1,ID,service,4,0.0200000000,USD,0.0800000000\n\
             acct-1,ID,service,-3,0.0200000000,USD,-0.0600000000\n\
             ,,,1,,USD,0.0200000000\n"
        )
    );
    // The default allowance, 1,000, covers them all.
    let (code, out, _) = cost_csv(tmp.path(), card, &[]);
    assert_eq!(code, 0);
    assert!(
        out.ends_with(",,,0,,USD,0E-10\n") || out.ends_with(",,,0,,USD,0.0000000000\n"),
        "{out}"
    );
    // A service row of its own wins over the utility rate.
    let card =
        "country,pricing_category,price,currency\nID,utility,0.02,USD\nID,service,0.005,USD\n";
    let (_, out, _) = cost_csv(tmp.path(), card, &["service_allowance=0"]);
    assert_eq!(
        out,
        format!(
            "{HEADER}acct-1,ID,service,4,0.0050000000,USD,0.0200000000\n,,,4,,USD,0.0200000000\n"
        )
    );
}

#[test]
fn service_allowance_falls_back_to_the_account_without_phone_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    november_2026_log(tmp.path(), false);
    let card = "country,pricing_category,price,currency\nID,utility,0.02,USD\n";
    let (code, out, err) = cost_csv(tmp.path(), card, &["service_allowance=2"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "{HEADER}acct-1,ID,service,4,0.0200000000,USD,0.0800000000\n\
             acct-1,ID,service,-2,0.0200000000,USD,-0.0400000000\n\
             ,,,2,,USD,0.0400000000\n"
        )
    );
}

#[test]
fn service_allowance_is_a_setting_and_bad_values_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    november_2026_log(tmp.path(), true);
    let card = "country,pricing_category,price,currency\nID,utility,0.02,USD\n";
    for bad in ["service_allowance=-5", "service_allowance=many"] {
        let (code, _, err) = cost_csv(tmp.path(), card, &[bad]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("service_allowance"), "{err}");
    }
    wausage(tmp.path())
        .args(["query", "SET wausage.service_allowance = 'lots'"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("wausage.service_allowance"));
    // SET changes what the views read, as --param does for a saved query.
    wausage(tmp.path())
        .args([
            "query",
            "SET wausage.service_allowance = 7; SELECT service_allowance FROM wa_settings",
        ])
        .assert()
        .success()
        .stdout("service_allowance\n7\n");
}

#[test]
fn dated_rate_cards_price_each_message_by_the_row_in_force() {
    let tmp = tempfile::tempdir().unwrap();
    // Marketing on 2 and 4 November; the price changes on 3 November.
    let rows = parse_events("T:m@0, T:m@48", NOV_2026_MS, "acct-1", "+6281234567890");
    write_split(tmp.path(), &rows, 1, 10);
    let card = "country,pricing_category,price,currency,effective_from\n\
                ID,marketing,0.04,USD,2026-10-01\nID,marketing,0.05,USD,2026-11-03\n\
                ID,marketing,0.01,USD,2025-07-01\n";
    let (code, out, err) = cost_csv(tmp.path(), card, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "{HEADER}acct-1,ID,marketing,1,0.0400000000,USD,0.0400000000\n\
             acct-1,ID,marketing,1,0.0500000000,USD,0.0500000000\n\
             ,,,2,,USD,0.0900000000\n"
        )
    );
    // No row in force on 2 November: not priced as zero.
    let card = "country,pricing_category,price,currency,effective_from\nID,marketing,0.05,USD,2026-11-03\n";
    let (code, out, err) = cost_csv(tmp.path(), card, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("country=ID") && err.contains("marketing"),
        "{err}"
    );
    assert!(out.contains("acct-1,ID,marketing,1,,,"), "{out}");
}

#[test]
fn bad_dated_rate_cards_name_file_column_and_rows() {
    let tmp = tempfile::tempdir().unwrap();
    november_2026_log(tmp.path(), false);
    for (card, expect) in [
        (
            "country,pricing_category,price,currency,effective_from\nID,utility,0.02,USD,2026-10-01\nID,utility,0.03,USD,soon\n",
            "column `effective_from`, row 2",
        ),
        (
            "country,pricing_category,price,currency,effective_from\nID,utility,0.02,USD,2026-10-01\nID,utility,0.03,USD,2026-10-01\n",
            "rows 1 and 2",
        ),
    ] {
        let (code, _, err) = cost_csv(tmp.path(), card, &[]);
        assert_eq!(code, 1, "{card}: {err}");
        assert!(err.contains("card.csv") && err.contains(expect), "{err}");
    }
    // Other currencies or other dates are other rows.
    let card = "country,pricing_category,price,currency,effective_from\n\
                ID,utility,0.02,USD,2026-10-01\nID,utility,0.30,BRL,2026-10-01\nID,utility,0.03,USD,2026-12-01\n";
    let (code, out, err) = cost_csv(tmp.path(), card, &["service_allowance=0"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(",,,4,,BRL,1.2000000000\n") && out.contains(",,,4,,USD,0.0800000000\n"),
        "{out}"
    );
}

#[test]
fn an_unknown_rule_set_is_a_usage_error_listing_the_four() {
    let tmp = tempfile::tempdir().unwrap();
    november_2026_log(tmp.path(), false);
    wausage(tmp.path())
        .args(["--rules", "pmp2026", "query", "SELECT 1"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("auto")
                .and(predicate::str::contains("cbp"))
                .and(predicate::str::contains("pmp26")),
        );
}

#[test]
fn billable_messages_across_the_second_switch() {
    // B5 through the saved query: September by pmp, October by pmp26.
    let tmp = tempfile::tempdir().unwrap();
    let rows = parse_events(
        "in@-2, T:u@-1, T:u@1, F@2",
        OCT_2026_MS,
        "acct-1",
        "+6281234567890",
    );
    write_split(tmp.path(), &rows, 2, 1);
    let month = |m: &str| {
        let out = wausage(tmp.path())
            .args(["run", "billable-messages", "-p", &format!("month={m}")])
            .assert()
            .success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let header = "account_id,country,pricing_category,messages,billable_messages\n";
    assert_eq!(month("2026-09"), format!("{header}acct-1,ID,utility,1,0\n"));
    assert_eq!(
        month("2026-10"),
        format!("{header}acct-1,ID,service,1,1\nacct-1,ID,utility,1,1\n")
    );
    let out = wausage(tmp.path())
        .args([
            "query",
            "SELECT DISTINCT rule_set FROM message_pricing ORDER BY 1",
        ])
        .assert()
        .success();
    assert_eq!(
        String::from_utf8(out.get_output().stdout.clone()).unwrap(),
        "rule_set\npmp\npmp26\n"
    );
}

#[test]
fn service_falls_back_to_utility_per_currency_and_date() {
    let tmp = tempfile::tempdir().unwrap();
    november_2026_log(tmp.path(), false);
    // A service row in BRL only: USD service takes the USD utility rate.
    let card = "country,pricing_category,price,currency\n\
                ID,utility,0.02,USD\nID,utility,0.30,BRL\nID,service,0.05,BRL\n";
    let (code, out, err) = cost_csv(tmp.path(), card, &["service_allowance=0"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("acct-1,ID,service,4,0.0200000000,USD,0.0800000000\n"),
        "{out}"
    );
    assert!(
        out.contains("acct-1,ID,service,4,0.0500000000,BRL,0.2000000000\n"),
        "{out}"
    );
    // A service row not yet in force: the utility rate, not a missing one.
    let card = "country,pricing_category,price,currency,effective_from\n\
                ID,utility,0.02,USD,\nID,service,0.005,USD,2027-01-01\n";
    let (code, out, err) = cost_csv(tmp.path(), card, &["service_allowance=0"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("acct-1,ID,service,4,0.0200000000,USD,0.0800000000\n"),
        "{out}"
    );
}
