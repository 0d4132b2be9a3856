//! Saved queries: `.sql` files whose header declares a name, a description
//! and typed parameters. Values are bound as DataFusion placeholders
//! (`$quota`), never pasted into the SQL text. Built-in queries are
//! compiled into the binary from `queries/`; users' own live in the
//! queries folder (`--queries`, default the config directory).
//!
//! Header lines:
//! ```sql
//! -- name: monthly-utilization
//! -- description: Delivered messages against the quota
//! -- param: month month required The month, YYYY-MM, current or previous
//! -- param: quota int optional The contract's monthly quota
//! ```
//! A `month` parameter also binds `$month_start` and `$month_end`
//! (timestamps, UTC), `$days_in_month` and `$days_elapsed`.

use std::collections::HashMap;
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use datafusion::common::{ParamValues, ScalarValue};

use crate::config::Config;
use crate::error::{Result, WaError};

/// The built-in queries, in listing order.
pub const BUILT_IN: [(&str, &str); 10] = [
    (
        "monthly-utilization",
        include_str!("../../queries/monthly-utilization.sql"),
    ),
    (
        "conversations-by-category",
        include_str!("../../queries/conversations-by-category.sql"),
    ),
    (
        "country-allocation",
        include_str!("../../queries/country-allocation.sql"),
    ),
    (
        "overall-vs-usage",
        include_str!("../../queries/overall-vs-usage.sql"),
    ),
    (
        "daily-conversations",
        include_str!("../../queries/daily-conversations.sql"),
    ),
    (
        "billable-messages",
        include_str!("../../queries/billable-messages.sql"),
    ),
    (
        "cost-estimate",
        include_str!("../../queries/cost-estimate.sql"),
    ),
    ("reconcile", include_str!("../../queries/reconcile.sql")),
    (
        "reconcile-messages",
        include_str!("../../queries/reconcile-messages.sql"),
    ),
    (
        "reconcile-daily",
        include_str!("../../queries/reconcile-daily.sql"),
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Month,
    Int,
    /// A whole number of 1 or more (a quota).
    PositiveInt,
    Float,
    Text,
    Bool,
}

impl ParamKind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "month" => Self::Month,
            "int" => Self::Int,
            "int>0" => Self::PositiveInt,
            "float" => Self::Float,
            "text" | "string" => Self::Text,
            "bool" => Self::Bool,
            _ => return None,
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Month => "YYYY-MM, current or previous",
            Self::Int => "integer",
            Self::PositiveInt => "whole number, 1 or more",
            Self::Float => "number",
            Self::Text => "text",
            Self::Bool => "true or false",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub required: bool,
    pub default: Option<String>,
    pub help: String,
}

#[derive(Debug, Clone)]
pub struct SavedQuery {
    pub name: String,
    pub description: String,
    pub params: Vec<Param>,
    pub sql: String,
    pub origin: String,
    /// Tables the query needs the user to register (`-- table: rates`).
    pub tables: Vec<String>,
    /// `-- require-non-null: price unless allow_missing_rates`: a NULL in
    /// that column fails the run unless the bool parameter is true.
    /// Only rows where the `where` column is not NULL are checked.
    pub require_non_null: Option<(String, Option<String>)>,
    pub require_where: Option<String>,
    /// `-- setting: service_allowance`: a `wausage.*` setting the query
    /// reads, which `--param service_allowance=N` sets for the run (else
    /// the session's value).
    pub settings: Vec<String>,
}

impl SavedQuery {
    /// Parses a saved query's header; `fallback_name` when it has no `name:`.
    pub fn parse(text: &str, fallback_name: &str, origin: &str) -> Result<Self> {
        let mut q = SavedQuery {
            name: fallback_name.to_string(),
            description: String::new(),
            params: vec![],
            sql: text.to_string(),
            origin: origin.to_string(),
            tables: vec![],
            require_non_null: None,
            require_where: None,
            settings: vec![],
        };
        for line in text.lines() {
            let Some(comment) = line.trim().strip_prefix("--") else {
                continue;
            };
            let comment = comment.trim();
            if let Some(v) = comment.strip_prefix("name:") {
                q.name = v.trim().to_string();
            } else if let Some(v) = comment.strip_prefix("description:") {
                q.description = v.trim().to_string();
            } else if let Some(v) = comment.strip_prefix("setting:") {
                q.settings.push(v.trim().to_string());
            } else if let Some(v) = comment.strip_prefix("table:") {
                q.tables.push(v.trim().to_string());
            } else if let Some(v) = comment.strip_prefix("require-non-null:") {
                let words: Vec<&str> = v.split_whitespace().collect();
                let after = |key: &str| {
                    words
                        .iter()
                        .position(|w| *w == key)
                        .and_then(|i| words.get(i + 1))
                        .map(|w| w.to_string())
                };
                let column = words.first().copied().unwrap_or_default().to_string();
                q.require_non_null = Some((column, after("unless")));
                q.require_where = after("where");
            } else if let Some(v) = comment.strip_prefix("param:") {
                q.params.push(parse_param(v, origin)?);
            }
        }
        Ok(q)
    }

    pub fn usage(&self) -> String {
        let mut s = format!("{}: {}\n", self.name, self.description);
        for p in &self.params {
            let need = if p.required {
                "required".to_string()
            } else if let Some(d) = &p.default {
                format!("default {d}")
            } else {
                "optional".to_string()
            };
            s.push_str(&format!(
                "  --param {}=<{}>  ({need}) {}\n",
                p.name,
                p.kind.describe(),
                p.help
            ));
        }
        for name in &self.settings {
            s.push_str(&format!(
                "  --param {name}=<value>  (default: the setting wausage.{name}) sets wausage.{name} for this run\n"
            ));
        }
        s
    }

    /// The `--param` values given for the settings the query reads, as
    /// (setting name, value).
    pub fn given_settings<'a>(&self, given: &'a [String]) -> Vec<(&'a str, &'a str)> {
        given
            .iter()
            .filter_map(|g| g.split_once('='))
            .filter(|(k, _)| self.settings.iter().any(|s| s == k))
            .collect()
    }
}

fn parse_param(spec: &str, origin: &str) -> Result<Param> {
    let mut words = spec.split_whitespace();
    let bad = || WaError::Input(format!("{origin}: bad param line {spec:?}"));
    let name = words.next().ok_or_else(bad)?.to_string();
    let kind = ParamKind::parse(words.next().ok_or_else(bad)?).ok_or_else(bad)?;
    let need = words.next().ok_or_else(bad)?;
    let (required, default) = match need {
        "required" => (true, None),
        "optional" => (false, None),
        d => match d.strip_prefix("default=") {
            Some(v) => (false, Some(v.to_string())),
            None => return Err(bad()),
        },
    };
    Ok(Param {
        name,
        kind,
        required,
        default,
        help: words.collect::<Vec<_>>().join(" "),
    })
}

/// Every saved query: built-in, then the user's (a user query of the same
/// name replaces the built-in one).
pub fn all(config: &Config) -> Result<Vec<SavedQuery>> {
    let mut out: Vec<SavedQuery> = BUILT_IN
        .iter()
        .map(|(name, text)| SavedQuery::parse(text, name, &format!("built-in {name}")))
        .collect::<Result<_>>()?;
    if let Ok(entries) = std::fs::read_dir(&config.queries_dir) {
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        paths.sort();
        for path in paths {
            // One broken file of the user's is theirs to fix; it does not
            // stop the others, or the built-ins, from running.
            match load_file(&path) {
                Ok(q) => {
                    out.retain(|b| b.name != q.name);
                    out.push(q);
                }
                Err(e) => eprintln!("warning: skipping saved query {e}"),
            }
        }
    }
    Ok(out)
}

fn load_file(path: &Path) -> Result<SavedQuery> {
    let text =
        std::fs::read_to_string(path).map_err(|e| WaError::io(path.display().to_string(), e))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    SavedQuery::parse(&text, &stem, &path.display().to_string())
}

/// Finds a query by name or `.sql` path.
pub fn find(config: &Config, name: &str) -> Result<SavedQuery> {
    if name.ends_with(".sql") || Path::new(name).is_file() {
        return load_file(Path::new(name));
    }
    all(config)?
        .into_iter()
        .find(|q| q.name == name)
        .ok_or_else(|| {
            WaError::Usage(format!(
                "no saved query named {name:?}; `wausage queries` lists them"
            ))
        })
}

/// First and last day info of a month parameter.
pub struct Month {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

pub fn parse_month(value: &str, today: NaiveDate) -> Option<Month> {
    let first_of_this = today.with_day(1)?;
    let start = match value {
        "current" => first_of_this,
        "previous" => first_of_this.pred_opt()?.with_day(1)?,
        v => {
            let (y, m) = v.split_once('-')?;
            if y.len() != 4 || m.len() != 2 {
                return None;
            }
            NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)?
        }
    };
    let end = if start.month() == 12 {
        NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)?
    };
    Some(Month { start, end })
}

/// Midnight starting day `d` in `tz` (UTC when none), in UTC microseconds.
fn micros(d: NaiveDate, tz: Option<chrono_tz::Tz>) -> i64 {
    use chrono::TimeZone;
    let midnight = d.and_hms_opt(0, 0, 0).expect("midnight");
    match tz {
        None => midnight.and_utc().timestamp_micros(),
        Some(tz) => tz
            .from_local_datetime(&midnight)
            .earliest()
            // A day that starts in a gap (DST at midnight) starts an hour later.
            .or_else(|| {
                tz.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                    .earliest()
            })
            .map_or_else(
                || midnight.and_utc().timestamp_micros(),
                |t| t.timestamp_micros(),
            ),
    }
}

fn timestamp(d: NaiveDate, tz: Option<chrono_tz::Tz>) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(micros(d, tz)), Some("UTC".into()))
}

/// Checks and types the given `key=value` parameters against the query.
pub fn bind(query: &SavedQuery, given: &[String], today: NaiveDate) -> Result<ParamValues> {
    let usage = |msg: String| WaError::Usage(format!("{msg}\n{}", query.usage()));
    let mut values: HashMap<String, String> = HashMap::new();
    let has_month = query.params.iter().any(|p| p.kind == ParamKind::Month);
    let mut tz: Option<chrono_tz::Tz> = None;
    for g in given {
        let (k, v) = g
            .split_once('=')
            .ok_or_else(|| usage(format!("--param takes KEY=VALUE, got {g:?}")))?;
        if given
            .iter()
            .filter(|o| o.split_once('=').is_some_and(|(ok, _)| ok == k))
            .count()
            > 1
        {
            return Err(usage(format!("--param {k} is given more than once")));
        }
        // Every query with a month accepts `tz`: months start at local midnight.
        if k == "tz" && has_month && !query.params.iter().any(|p| p.name == "tz") {
            let zone: chrono_tz::Tz = v.trim().parse().map_err(|_| {
                usage(format!(
                    "tz={v:?} is not a time zone name such as Europe/Paris"
                ))
            })?;
            tz = Some(zone);
            continue;
        }
        if query.settings.iter().any(|s| s == k) {
            continue; // applied to the session by `run`
        }
        if !query.params.iter().any(|p| p.name == k) {
            return Err(usage(format!("{} has no parameter {k:?}", query.name)));
        }
        values.insert(k.to_string(), v.to_string());
    }
    let mut bound: HashMap<String, ScalarValue> = HashMap::new();
    for p in &query.params {
        let raw = values.get(&p.name).cloned().or_else(|| p.default.clone());
        let Some(raw) = raw else {
            if p.required {
                return Err(usage(format!("missing parameter {}", p.name)));
            }
            let null = match p.kind {
                ParamKind::Int | ParamKind::PositiveInt => ScalarValue::Int64(None),
                ParamKind::Float => ScalarValue::Float64(None),
                ParamKind::Bool => ScalarValue::Boolean(None),
                ParamKind::Text | ParamKind::Month => ScalarValue::Utf8(None),
            };
            bound.insert(p.name.clone(), null);
            continue;
        };
        let bad = || {
            usage(format!(
                "{}={raw:?} is not a valid {}",
                p.name,
                p.kind.describe()
            ))
        };
        let value = match p.kind {
            ParamKind::Int => ScalarValue::Int64(Some(
                raw.trim().replace('_', "").parse().map_err(|_| bad())?,
            )),
            ParamKind::PositiveInt => ScalarValue::Int64(Some(
                raw.trim()
                    .replace('_', "")
                    .parse()
                    .ok()
                    .filter(|&n: &i64| n > 0)
                    .ok_or_else(bad)?,
            )),
            ParamKind::Float => ScalarValue::Float64(Some(
                raw.trim()
                    .parse()
                    .ok()
                    .filter(|f: &f64| f.is_finite())
                    .ok_or_else(bad)?,
            )),
            ParamKind::Bool => ScalarValue::Boolean(Some(match raw.trim() {
                "true" | "yes" | "1" => true,
                "false" | "no" | "0" => false,
                _ => return Err(bad()),
            })),
            ParamKind::Text => ScalarValue::Utf8(Some(raw.clone())),
            ParamKind::Month => {
                let m = parse_month(raw.trim(), today).ok_or_else(bad)?;
                let days_in_month = (m.end - m.start).num_days();
                let days_elapsed = if today >= m.end {
                    days_in_month
                } else if today < m.start {
                    0
                } else {
                    (today - m.start).num_days() + 1
                };
                let n = &p.name;
                bound.insert(format!("{n}_start"), timestamp(m.start, tz));
                bound.insert(format!("{n}_end"), timestamp(m.end, tz));
                bound.insert(
                    format!("days_in_{n}"),
                    ScalarValue::Int64(Some(days_in_month)),
                );
                bound.insert(
                    "days_elapsed".into(),
                    ScalarValue::Int64(Some(days_elapsed)),
                );
                ScalarValue::Utf8(Some(m.start.format("%Y-%m").to_string()))
            }
        };
        bound.insert(p.name.clone(), value);
    }
    Ok(ParamValues::from(bound))
}

/// Values of the right type for every required parameter (the current
/// month, 1, ...), to plan a query for its columns before its values are
/// known.
pub fn bind_for_columns(query: &SavedQuery, today: NaiveDate) -> Result<ParamValues> {
    let given: Vec<String> = query
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| {
            let example = match p.kind {
                ParamKind::Month => "current",
                ParamKind::Int | ParamKind::PositiveInt | ParamKind::Float => "1",
                ParamKind::Text => "",
                ParamKind::Bool => "false",
            };
            format!("{}={example}", p.name)
        })
        .collect();
    bind(query, &given, today)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn months() {
        let t = day("2026-01-15");
        assert_eq!(parse_month("current", t).unwrap().start, day("2026-01-01"));
        assert_eq!(parse_month("previous", t).unwrap().start, day("2025-12-01"));
        let m = parse_month("2024-02", t).unwrap();
        assert_eq!((m.start, m.end), (day("2024-02-01"), day("2024-03-01")));
        assert!(parse_month("2024-13", t).is_none());
        assert!(parse_month("2024-2", t).is_none());
    }

    #[test]
    fn builtins_parse_and_bad_params_are_usage_errors() {
        for (name, text) in BUILT_IN {
            let q = SavedQuery::parse(text, name, name).unwrap();
            assert_eq!(q.name, name);
            assert!(!q.description.is_empty());
        }
        let (name, text) = BUILT_IN[0];
        let q = SavedQuery::parse(text, name, name).unwrap();
        let t = day("2026-01-15");
        for bad in [
            vec!["month=2024-13".to_string(), "quota=5".into()],
            vec!["month=2024-02".into(), "quota=lots".into()],
            vec!["month=2024-02".into(), "nope=1".into()],
            vec![],
        ] {
            let err = bind(&q, &bad, t).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
        assert!(bind(&q, &["month=2024-02".into(), "quota=5870000".into()], t).is_ok());
        assert_eq!(
            bind(&q, &["month=2024-02".into(), "tz=Mars/Olympus".into()], t)
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn months_in_a_time_zone_start_at_local_midnight() {
        let q = SavedQuery::parse(BUILT_IN[1].1, BUILT_IN[1].0, "t").unwrap();
        let v = bind(
            &q,
            &["month=2024-02".into(), "tz=Asia/Jakarta".into()],
            day("2026-01-15"),
        )
        .unwrap();
        let ParamValues::Map(m) = v else {
            panic!("named")
        };
        // 2024-02-01T00:00+07:00 is 2024-01-31T17:00Z.
        assert_eq!(
            m["month_start"].value,
            ScalarValue::TimestampMicrosecond(Some(1_706_720_400_000_000), Some("UTC".into()))
        );
    }
}
