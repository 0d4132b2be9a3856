//! `wausage report`: the usage page's figures against values computed
//! here, nothing loaded from the network, and a real render in headless
//! Chromium (installed by `.ci/run`) with no console errors and a
//! screenshot that is not blank.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

use crate::common::*;
use crate::reports::{core_conversations, in_feb, log};

fn fmt_int(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn report(data: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("wausage")
        .unwrap()
        .args(["--data", data.to_str().unwrap(), "report"])
        .args(args)
        .assert()
}

#[test]
fn usage_page_figures_and_no_network() {
    let rows = log();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("log");
    write_split(&data, &rows, 2, 100);
    let page = tmp.path().join("usage.html");
    report(
        &data,
        &[
            "--month",
            "2024-02",
            "--quota",
            "1000",
            "--output",
            page.to_str().unwrap(),
        ],
    )
    .success();
    let html = std::fs::read_to_string(&page).unwrap();

    let delivered = rows
        .iter()
        .filter(|r| r.direction == "outbound" && r.delivered_at.is_some_and(in_feb))
        .count();
    let conversations = core_conversations(&rows)
        .into_iter()
        .filter(|c| in_feb(c.3))
        .count();
    assert!(
        html.contains(&format!(
            "{} <span>of 1,000 delivered messages",
            fmt_int(delivered)
        )),
        "delivered {delivered}"
    );
    assert!(html.contains(&format!(
        "24-hour unique conversations: {}",
        fmt_int(conversations)
    )));
    for query in [
        "monthly-utilization",
        "conversations-by-category",
        "daily-conversations",
        "country-allocation",
        "overall-vs-usage",
        "billable-messages",
    ] {
        assert!(
            html.contains(&format!("wausage run {query}")),
            "{query} named"
        );
    }
    assert!(
        html.contains("priced by cbp, the rules in force"),
        "the page says which rule set priced the month"
    );
    assert!(html.matches("<svg").count() >= 5, "charts are inline SVG");
    // Nothing is loaded from anywhere: no scripts, links, images or imports.
    let lower = html.to_ascii_lowercase();
    for needle in [
        "<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "href=",
    ] {
        assert!(!lower.contains(needle), "{needle} found");
    }
    // Every chart label is readable at 100% zoom: charts keep their drawn
    // size (their boxes scroll on a phone) and their text is 11 px or more.
    for size in html.split("font-size=\"").skip(1) {
        let px: f64 = size
            .split('"')
            .next()
            .unwrap()
            .trim_end_matches("px")
            .parse()
            .unwrap();
        assert!(px >= 11.0, "an SVG label of {px} px");
    }
    assert!(
        !html.contains("max-width:100%;height:auto"),
        "no chart is scaled down"
    );
    assert!(
        html.contains("class=\"legend\""),
        "the daily legend is beside the chart, not over it"
    );
    for width in [1280, 390] {
        render_in_chromium(&page, width);
    }
}

fn render_in_chromium(page: &Path, width: u32) {
    let Some(browser) = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| which(b))
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have chromium (.ci/run installs it)"
        );
        eprintln!("chromium not installed: browser check skipped (CI runs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shot.png");
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size={width},1600"))
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bytes = &buf[..info.buffer_size()];
    let channels = info.color_type.samples();
    let pixels = bytes.len() / channels;
    let non_white = bytes
        .chunks(channels)
        .filter(|p| p.iter().take(3).any(|&c| c < 200))
        .count();
    assert!(
        non_white * 100 > pixels,
        "screenshot is blank: {non_white} of {pixels} pixels drawn"
    );
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
}

#[test]
fn bad_report_requests_are_clear_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("log");
    write_split(&data, &log(), 1, 1000);
    let page = tmp.path().join("usage.html");
    let out = page.to_str().unwrap();
    report(
        &data,
        &["--month", "2024-13", "--quota", "10", "--output", out],
    )
    .code(2);
    report(&data, &["--month", "2024-02", "--output", out])
        .code(2)
        .stderr(predicate::str::contains("quota"));
    report(
        &data,
        &["--month", "2023-01", "--quota", "10", "--output", out],
    )
    .code(1)
    .stderr(predicate::str::contains("no messages in 2023-01"));
    assert!(!page.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}
