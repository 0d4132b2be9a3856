//! `wausage report`: the month's usage page, one self-contained HTML file
//! (inline CSS and SVG, nothing loaded from the network) in the spirit of a
//! vendor's "Usage Analytics" screen. Every figure comes from a built-in
//! saved query, shown as text beside its chart with the command that
//! reproduces it.

mod charts;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use chrono::Utc;
use datafusion::prelude::SessionContext;

use wausage_udfs::rules::RuleChoice;

use crate::config::Config;
use crate::engine::{exec, saved, session};
use crate::error::{Result, WaError};
use crate::output::html_escape as esc;

pub struct ReportArgs {
    pub month: String,
    pub quota: Option<i64>,
    pub account: Option<String>,
    pub output: PathBuf,
}

/// A query result as rows of column name → text ("" for NULL).
type Rows = Vec<BTreeMap<String, String>>;

fn to_rows(batches: &[RecordBatch]) -> Result<Rows> {
    let mut out = vec![];
    for b in batches {
        let cols: Vec<(String, arrow::array::ArrayRef)> = b
            .schema()
            .fields()
            .iter()
            .zip(b.columns())
            .map(|(f, c)| Ok((f.name().clone(), cast(c, &DataType::Utf8)?)))
            .collect::<Result<_>>()?;
        for i in 0..b.num_rows() {
            out.push(
                cols.iter()
                    .map(|(n, c)| {
                        let s = c.as_string::<i32>();
                        (
                            n.clone(),
                            if s.is_null(i) {
                                String::new()
                            } else {
                                s.value(i).to_string()
                            },
                        )
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

struct Collector(std::sync::Arc<std::sync::Mutex<Vec<RecordBatch>>>);

impl crate::output::BatchSink for Collector {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        self.0.lock().expect("not poisoned").push(batch.clone());
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<u64> {
        Ok(0)
    }
}

/// Runs a built-in saved query with parameters; returns its rows.
async fn run_saved(
    ctx: &SessionContext,
    config: &Config,
    name: &str,
    params: &[String],
) -> Result<Rows> {
    let query = saved::find(config, name)?;
    let values = saved::bind(&query, params, Utc::now().date_naive())?;
    let batches = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
    let b = batches.clone();
    exec::run_sql(
        ctx,
        &query.sql,
        Some(&values),
        crate::output::Results::Any,
        &mut |_| Ok(Box::new(Collector(b.clone()))),
    )
    .await?;
    let batches = batches.lock().expect("not poisoned");
    to_rows(&batches)
}

fn num(row: &BTreeMap<String, String>, col: &str) -> f64 {
    row.get(col).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

fn fmt_int(v: f64) -> String {
    let s = format!("{:.0}", v);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// A plain table of some columns of the rows.
fn table(rows: &Rows, columns: &[&str]) -> String {
    let mut s = String::from("<table><thead><tr>");
    for c in columns {
        let _ = write!(s, "<th>{}</th>", esc(c));
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for c in columns {
            let v = r.get(*c).map(String::as_str).unwrap_or("");
            let class = if v.parse::<f64>().is_ok() {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(s, "<td{class}>{}</td>", esc(v));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// A chart drawn at both widths; the page's CSS shows the one that fits.
fn both_widths(draw: impl Fn(u32) -> String) -> String {
    format!(
        "<div class=\"wide\">{}</div><div class=\"narrow\">{}</div>",
        draw(charts::WIDE),
        draw(charts::NARROW)
    )
}

/// The series' colours and names, as HTML under a chart.
fn legend(series: &[(String, Vec<f64>)]) -> String {
    let mut s = String::from("<ul class=\"legend\">");
    for (k, (name, _)) in series.iter().enumerate() {
        let _ = write!(
            s,
            "<li><span style=\"background:{}\"></span>{}</li>",
            charts::css_color(k),
            esc(name)
        );
    }
    s.push_str("</ul>");
    s
}

fn block(title: &str, query: &str, params: &str, chart: &str, figures: &str, note: &str) -> String {
    format!(
        "<section><h2>{}</h2>{}<div class=\"grid\"><div class=\"chart\">{chart}</div><div class=\"figures\">{figures}</div></div>\
         <p class=\"source\">Source: saved query <code>{query}</code> — reproduce with <code>wausage run {query} {}</code></p></section>",
        esc(title),
        if note.is_empty() { String::new() } else { format!("<p>{}</p>", esc(note)) },
        esc(params)
    )
}

pub async fn run(config: &Config, args: &ReportArgs) -> Result<()> {
    let today = Utc::now().date_naive();
    let month = saved::parse_month(args.month.trim(), today).ok_or_else(|| {
        WaError::Usage(format!(
            "--month: expected YYYY-MM, current or previous, got {:?}",
            args.month
        ))
    })?;
    let month_text = month.start.format("%Y-%m").to_string();
    let has_contracts = config.tables.iter().any(|t| t.starts_with("contracts="));
    if args.quota.is_none() && !has_contracts {
        return Err(WaError::Usage(
            "report needs the contract quota: --quota N or --table contracts=FILE".into(),
        ));
    }
    let ctx = session::build_session(config).await?;
    let mut common = vec![format!("month={month_text}")];
    let mut util_params = common.clone();
    if let Some(q) = args.quota {
        util_params.push(format!("quota={q}"));
    }
    if let Some(a) = &args.account {
        util_params.push(format!("account={a}"));
        common.push(format!("account={a}"));
    }
    let month_only = vec![format!("month={month_text}")];
    let overall = run_saved(&ctx, config, "overall-vs-usage", &month_only).await?;
    let o = overall.first().cloned().unwrap_or_default();
    if num(&o, "sent_messages") == 0.0 && num(&o, "conversations") == 0.0 {
        return Err(WaError::Input(format!(
            "no messages in {month_text} in {}: nothing to report",
            config.data
        )));
    }
    let util = run_saved(&ctx, config, "monthly-utilization", &util_params).await?;
    let cats = run_saved(&ctx, config, "conversations-by-category", &common).await?;
    let daily = run_saved(&ctx, config, "daily-conversations", &month_only).await?;
    let countries = run_saved(&ctx, config, "country-allocation", &month_only).await?;
    let billable = run_saved(&ctx, config, "billable-messages", &common).await?;
    let has_rates = config.tables.iter().any(|t| t.starts_with("rates="));
    let cost = if has_rates {
        Some(
            run_saved(
                &ctx,
                config,
                "cost-estimate",
                &[
                    format!("month={month_text}"),
                    "allow_missing_rates=true".into(),
                ],
            )
            .await?,
        )
    } else {
        None
    };

    let mut body = String::new();
    // Quota.
    let total = util
        .iter()
        .find(|r| r.get("account_id").is_none_or(|a| a.is_empty()))
        .cloned()
        .unwrap_or_default();
    let used = num(&total, "quota_used_pct");
    let projected = num(&total, "projected_pct");
    let gauge = both_widths(|w| {
        charts::horizontal_bars(
            w,
            &[("used".into(), used), ("projected".into(), projected)],
            used.max(projected).max(100.0),
            "%",
            0,
        )
    });
    let headline = format!(
        "<p class=\"big\">{} <span>of {} delivered messages ({:.2}% of the quota)</span></p>\
         <p>{} of {} days elapsed; projected {} messages ({:.2}%).</p>",
        fmt_int(num(&total, "delivered_messages")),
        fmt_int(num(&total, "quota")),
        used,
        total.get("days_elapsed").cloned().unwrap_or_default(),
        (month.end - month.start).num_days(),
        fmt_int(num(&total, "projected_messages")),
        projected
    );
    let _ = write!(
        body,
        "{}",
        block(
            "Delivered messages against the quota",
            "monthly-utilization",
            &util_params
                .iter()
                .map(|p| format!("-p {p}"))
                .collect::<Vec<_>>()
                .join(" "),
            &gauge,
            &(headline
                + &table(
                    &util,
                    &[
                        "account_id",
                        "quota",
                        "delivered_messages",
                        "quota_used_pct",
                        "projected_pct",
                        "conversations",
                        "billable_messages"
                    ]
                )),
            "",
        )
    );
    // Conversations by category and per day.
    let cat_bars: Vec<(String, f64)> = cats
        .iter()
        .map(|r| (r["category"].clone(), num(r, "conversations")))
        .collect();
    let max = cat_bars.iter().map(|b| b.1).fold(1.0, f64::max);
    let total_convs: f64 = cat_bars.iter().map(|b| b.1).sum();
    let params = |p: &[String]| {
        p.iter()
            .map(|p| format!("-p {p}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    body.push_str(&block(
        &format!("24-hour unique conversations: {}", fmt_int(total_convs)),
        "conversations-by-category",
        &params(&common),
        &both_widths(|w| charts::horizontal_bars(w, &cat_bars, max * 1.1, "", 0)),
        &table(&cats, &["category", "conversations"]),
        "",
    ));
    let mut days: Vec<String> = daily.iter().map(|r| r["day"].clone()).collect();
    days.dedup();
    let categories = [
        "marketing",
        "utility",
        "authentication",
        "service",
        "free_entry",
    ];
    let series: Vec<(String, Vec<f64>)> = categories
        .iter()
        .map(|c| {
            let v = days
                .iter()
                .map(|d| {
                    daily
                        .iter()
                        .filter(|r| &r["day"] == d && r["category"] == *c)
                        .map(|r| num(r, "conversations"))
                        .sum()
                })
                .collect();
            (c.to_string(), v)
        })
        .collect();
    body.push_str(&block(
        "Conversations per day",
        "daily-conversations",
        &params(&month_only),
        &(both_widths(|w| charts::stacked_columns(w, &days, &series)) + &legend(&series)),
        &format!("<p>{} days with conversations.</p>", days.len()),
        "",
    ));
    // Countries: the top ones, then the rest as one grey bar set apart
    // (its sum can exceed any one country: it is not a country).
    const NAMED: usize = 10;
    let mut top: Vec<(String, f64)> = countries
        .iter()
        .take(NAMED)
        .map(|r| (r["country"].clone(), num(r, "delivered_messages")))
        .collect();
    let rest = countries.len().saturating_sub(NAMED);
    let others: f64 = countries
        .iter()
        .skip(NAMED)
        .map(|r| num(r, "delivered_messages"))
        .sum();
    if rest > 0 {
        top.push((format!("{rest} others"), others));
    }
    let max = top.iter().map(|b| b.1).fold(1.0, f64::max);
    body.push_str(&block(
        "Allocation by country",
        "country-allocation",
        &params(&month_only),
        &both_widths(|w| charts::horizontal_bars(w, &top, max * 1.1, "", usize::from(rest > 0))),
        &table(
            &countries,
            &[
                "country",
                "delivered_messages",
                "conversations",
                "delivered_share_pct",
                "conversations_share_pct",
            ],
        ),
        "",
    ));
    // Overall vs usage.
    let overall_bars: Vec<(String, f64)> = [
        "sent_messages",
        "delivered_messages",
        "failed_messages",
        "conversations",
    ]
    .iter()
    .map(|c| (c.replace('_', " "), num(&o, c)))
    .collect();
    let max = overall_bars.iter().map(|b| b.1).fold(1.0, f64::max);
    body.push_str(&block(
        "Overall vs usage",
        "overall-vs-usage",
        &params(&month_only),
        &both_widths(|w| charts::horizontal_bars(w, &overall_bars, max * 1.1, "", 0)),
        &table(&overall, &["sent_messages", "delivered_messages", "failed_messages", "conversations"]),
        "Messages and conversations differ because one 24-hour conversation holds many messages, \
         inbound and undelivered messages open none, and failed messages are sent but never delivered.",
    ));
    // Billable units (per message from July 2025, per conversation before).
    let mut by_cat: BTreeMap<String, f64> = BTreeMap::new();
    for r in &billable {
        *by_cat.entry(r["pricing_category"].clone()).or_default() += num(r, "billable_messages");
    }
    let bars: Vec<(String, f64)> = by_cat.into_iter().collect();
    let max = bars.iter().map(|b| b.1).fold(1.0, f64::max);
    body.push_str(&block(
        "Billable units by pricing category",
        "billable-messages",
        &params(&common),
        &both_widths(|w| charts::horizontal_bars(w, &bars, max * 1.1, "", 0)),
        &table(
            &billable,
            &[
                "account_id",
                "country",
                "pricing_category",
                "messages",
                "billable_messages",
            ],
        ),
        "From July 2025 WhatsApp charges per delivered message; before, per 24-hour conversation.",
    ));
    if let Some(cost) = &cost {
        body.push_str(&block(
            "Cost estimate",
            "cost-estimate",
            &format!("-p month={month_text} -p allow_missing_rates=true --table rates=FILE"),
            "",
            &table(
                cost,
                &[
                    "account_id",
                    "country",
                    "pricing_category",
                    "billable_messages",
                    "price",
                    "currency",
                    "cost",
                ],
            ),
            "Rows without a price have no rate in the rate card.",
        ));
    }
    // The switches fall on month starts, so one rule set prices a whole month.
    let month_start_micros = month
        .start
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_micros();
    let rule_set = config.rules.rule_set_at(month_start_micros);
    let priced_by = match config.rules {
        RuleChoice::Auto => format!("priced by {rule_set}, the rules in force"),
        forced => format!("priced by {forced} (forced with --rules)"),
    };
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>WhatsApp usage {month_text}</title><style>{CSS}</style></head><body>\
         <header><h1>WhatsApp usage — {month_text}</h1><p>{}{} · <span class=\"rules\">{}</span> · made by wausage {} on {}</p></header>{body}</body></html>",
        esc(&config.data),
        args.account.as_deref().map(|a| format!(" · account {}", esc(a))).unwrap_or_default(),
        esc(&priced_by),
        env!("CARGO_PKG_VERSION"),
        today
    );
    crate::output::write_file(&args.output, page.as_bytes())
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1100px;\
padding:1rem;color:#1f2937}header{border-bottom:2px solid #2563eb;margin-bottom:1rem}h1{font-size:1.6rem}\
h2{font-size:1.2rem;margin:.2rem 0 .6rem}section{border:1px solid #e5e7eb;border-radius:8px;padding:1rem;margin:1rem 0;\
break-inside:avoid}.grid{display:grid;grid-template-columns:minmax(0,1fr);gap:1rem}\
.chart,.figures{overflow-x:auto;min-width:0}table{border-collapse:collapse;font-size:.85rem;width:100%}th,td{padding:.25rem .5rem;\
border-bottom:1px solid #e5e7eb;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.big{font-size:1.8rem;font-weight:600;margin:.2rem 0}.big span{font-size:1rem;font-weight:400;color:#4b5563}\
.source{font-size:.8rem;color:#6b7280;overflow-wrap:anywhere}code{background:#f3f4f6;padding:0 .2rem;border-radius:3px}\
.legend{list-style:none;padding:0;margin:.4rem 0;display:flex;flex-wrap:wrap;gap:.3rem 1rem;font-size:.85rem}\
.legend span{display:inline-block;width:.8rem;height:.8rem;margin-right:.35rem;vertical-align:-.1rem}\
.narrow{display:none}@media (max-width:720px){.wide{display:none}.narrow{display:block}\
body{padding:.5rem}section{padding:.6rem}table{font-size:.75rem}th{overflow-wrap:anywhere}th,td{padding:.2rem .25rem}}\
@media print{section{border:none;padding:0}body{max-width:none}}";
