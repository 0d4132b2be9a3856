//! `wausage run NAME --param k=v ...`: a saved query with typed parameters,
//! its settings applied, its rows watched for `--alert-at` and required
//! values; exit 3 on an alert.

use chrono::Utc;

use crate::config::Config;
use crate::engine::saved::{self, SavedQuery};
use crate::engine::{exec, session, settings};
use crate::error::{Result, WaError};
use crate::output::alert;

/// The raw text of parameter `name`: given, else its default.
fn raw_value(query: &SavedQuery, given: &[String], name: &str) -> Option<String> {
    given
        .iter()
        .filter_map(|g| g.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .or_else(|| {
            query
                .params
                .iter()
                .find(|p| p.name == name)
                .and_then(|p| p.default.clone())
        })
}

/// `wausage run NAME --param k=v ...`
pub async fn run(
    config: &Config,
    name: &str,
    params: &[String],
    alert_at: Option<f64>,
) -> Result<()> {
    let query = saved::find(config, name)?;
    let today = Utc::now().date_naive();
    let values = saved::bind(&query, params, today)?;
    for (setting, value) in query.given_settings(params) {
        settings::check_setting(setting, value)
            .map_err(|e| WaError::Usage(format!("--param {setting}={value:?}: {e}")))?;
    }
    let ctx = session::build_session(config).await?;
    for (setting, value) in query.given_settings(params) {
        session::apply_setting(&ctx, setting, value).await?;
    }
    for table in &query.tables {
        if !ctx.table_exist(table.as_str())? {
            return Err(WaError::Usage(format!(
                "{} needs --table {table}=FILE\n{}",
                query.name,
                query.usage()
            )));
        }
    }
    let required = query
        .require_non_null
        .as_ref()
        .and_then(|(column, unless)| {
            let waived = unless.as_ref().is_some_and(|p| {
                matches!(
                    raw_value(&query, params, p).as_deref(),
                    Some("true" | "yes" | "1")
                )
            });
            (!waived).then(|| column.clone())
        });
    let breaches = alert::Breaches::default();
    exec::run_sql(
        &ctx,
        &query.sql,
        Some(&values),
        config.destination().results(),
        &mut |schema| {
            let mut sink = config.destination().sink(schema.clone())?;
            if let Some(pct) = alert_at {
                sink = Box::new(alert::AlertSink::new(sink, &schema, pct, breaches.clone()));
            }
            if let Some(column) = &required {
                sink = Box::new(alert::RequireSink::new(
                    sink,
                    column,
                    query.require_where.as_deref(),
                    breaches.clone(),
                ));
            }
            Ok(sink)
        },
    )
    .await?;
    let missing = breaches.take_missing();
    if !missing.is_empty() {
        for m in &missing {
            eprintln!("missing: {m}");
        }
        return Err(WaError::Input(format!(
            "{} row(s) have no {}; add them to the table or pass --param {}=true",
            missing.len(),
            required.unwrap_or_default(),
            query
                .require_non_null
                .as_ref()
                .and_then(|r| r.1.clone())
                .unwrap_or_default()
        )));
    }
    if alert_at.is_some() {
        match breaches.watched() {
            alert::Watched::NoColumn => {
                return Err(WaError::Usage(format!(
                    "--alert-at: {} has no quota_used_pct, projected_pct or differing_pct column to watch",
                    query.name
                )))
            }
            alert::Watched::NoValue => {
                return Err(WaError::Usage(format!(
                    "--alert-at: {} has no percentage to watch (no quota): pass --param quota=N \
                     or --table contracts=FILE",
                    query.name
                )))
            }
            alert::Watched::Values => {}
        }
    }
    let alerts = breaches.take();
    if !alerts.is_empty() {
        for a in &alerts {
            eprintln!("alert: {a}");
        }
        return Err(WaError::Alert(format!(
            "{} row(s) at or past the threshold",
            alerts.len()
        )));
    }
    Ok(())
}
