//! Watches a saved query's rows as they stream to the output.
//! `--alert-at PCT` remembers every row whose `quota_used_pct`,
//! `projected_pct` or `differing_pct` (the reconcile queries) reaches the
//! threshold, so a cron job gets exit code 3;
//! a query's `require-non-null` column (a rate) fails the run when empty.

use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};

use crate::error::Result;
use crate::output::BatchSink;

/// The breaches seen, shared between the sink and the caller.
#[derive(Clone, Default)]
pub struct Breaches(Arc<Mutex<Vec<String>>>, Arc<Mutex<Watched>>);

/// What an alert sink had to watch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Watched {
    /// No percentage column: nothing to alert on.
    #[default]
    NoColumn,
    /// The columns, but every value NULL (no quota).
    NoValue,
    /// At least one percentage.
    Values,
}

impl Breaches {
    /// What the alert sinks had to watch.
    pub fn watched(&self) -> Watched {
        *self.1.lock().expect("not poisoned")
    }

    fn saw(&self, w: Watched) {
        let mut watched = self.1.lock().expect("not poisoned");
        *watched = (*watched).max(w);
    }

    /// The alerts (not the missing values).
    pub fn take(&self) -> Vec<String> {
        let mut all = self.0.lock().expect("not poisoned");
        let (alerts, rest): (Vec<String>, Vec<String>) =
            all.drain(..).partition(|m| !m.starts_with(MISSING));
        *all = rest;
        alerts
    }
}

/// The columns `--alert-at` watches, and whether a value alerts when it
/// reaches the threshold or only when it exceeds it: a quota is used up at
/// 100%, while `--alert-at 0` on a reconcile means "any difference".
const WATCHED: [(&str, Reach); 3] = [
    ("quota_used_pct", Reach::AtLeast),
    ("projected_pct", Reach::AtLeast),
    ("differing_pct", Reach::Above),
];

#[derive(Clone, Copy)]
enum Reach {
    AtLeast,
    Above,
}

pub struct AlertSink {
    inner: Box<dyn BatchSink>,
    threshold: f64,
    breaches: Breaches,
}

impl AlertSink {
    pub fn new(
        inner: Box<dyn BatchSink>,
        schema: &arrow::datatypes::Schema,
        threshold: f64,
        breaches: Breaches,
    ) -> Self {
        if WATCHED
            .iter()
            .any(|(c, _)| schema.field_with_name(c).is_ok())
        {
            breaches.saw(Watched::NoValue);
        }
        Self {
            inner,
            threshold,
            breaches,
        }
    }

    fn check(&self, batch: &RecordBatch) -> Result<()> {
        let account = batch
            .column_by_name("account_id")
            .map(|a| cast(a, &DataType::Utf8))
            .transpose()?;
        for (column, reach) in WATCHED {
            let Some(values) = batch.column_by_name(column) else {
                continue;
            };
            let values = cast(values, &DataType::Float64)?;
            let values = values.as_primitive::<Float64Type>();
            self.breaches.saw(if values.null_count() < values.len() {
                Watched::Values
            } else {
                Watched::NoValue
            });
            for i in 0..values.len() {
                let v = values.value(i);
                let breached = match reach {
                    Reach::AtLeast => v >= self.threshold,
                    Reach::Above => v > self.threshold,
                };
                if values.is_valid(i) && breached {
                    let who = match &account {
                        Some(a) if a.is_valid(i) => {
                            format!("account {}", a.as_string::<i32>().value(i))
                        }
                        _ => "the total".to_string(),
                    };
                    self.breaches.0.lock().expect("not poisoned").push(format!(
                        "{who}: {column} {v:.2} {} {}",
                        match reach {
                            Reach::AtLeast => "reached",
                            Reach::Above => "exceeds",
                        },
                        self.threshold
                    ));
                }
            }
        }
        Ok(())
    }
}

impl BatchSink for AlertSink {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        self.check(batch)?;
        self.inner.write_batch(batch)
    }

    fn finish(self: Box<Self>) -> Result<u64> {
        self.inner.finish()
    }
}

impl Breaches {
    pub fn take_missing(&self) -> Vec<String> {
        let mut all = self.0.lock().expect("not poisoned");
        let (missing, rest): (Vec<String>, Vec<String>) =
            all.drain(..).partition(|m| m.starts_with(MISSING));
        *all = rest;
        missing
            .into_iter()
            .map(|m| m[MISSING.len()..].to_string())
            .collect()
    }
}

const MISSING: &str = "\u{0}missing:";

/// Fails a saved query whose rows have a NULL in a required column (a
/// billable unit without a rate): remembers each such row's key columns.
pub struct RequireSink {
    inner: Box<dyn BatchSink>,
    column: String,
    only_where: Option<String>,
    breaches: Breaches,
}

impl RequireSink {
    pub fn new(
        inner: Box<dyn BatchSink>,
        column: &str,
        only_where: Option<&str>,
        breaches: Breaches,
    ) -> Self {
        Self {
            inner,
            column: column.to_string(),
            only_where: only_where.map(str::to_string),
            breaches,
        }
    }
}

impl BatchSink for RequireSink {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        if let Some(values) = batch.column_by_name(&self.column) {
            let keys: Vec<(String, arrow::array::ArrayRef)> = batch
                .schema()
                .fields()
                .iter()
                .zip(batch.columns())
                .filter(|(f, _)| {
                    matches!(
                        f.data_type(),
                        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
                    )
                })
                .map(|(f, c)| Ok((f.name().clone(), cast(c, &DataType::Utf8)?)))
                .collect::<Result<_>>()?;
            let filter = self
                .only_where
                .as_deref()
                .and_then(|c| batch.column_by_name(c));
            for i in 0..values.len() {
                if values.is_null(i) && filter.is_none_or(|f| f.is_valid(i)) {
                    let described: Vec<String> = keys
                        .iter()
                        .filter(|(_, c)| c.is_valid(i))
                        .map(|(n, c)| format!("{n}={}", c.as_string::<i32>().value(i)))
                        .collect();
                    self.breaches.0.lock().expect("not poisoned").push(format!(
                        "{MISSING}no {} for {}",
                        self.column,
                        described.join(", ")
                    ));
                }
            }
        }
        self.inner.write_batch(batch)
    }

    fn finish(self: Box<Self>) -> Result<u64> {
        self.inner.finish()
    }
}
