//! `--alert-at PCT`: watches a report's rows as they stream to the output
//! and remembers every row whose `quota_used_pct` or `projected_pct`
//! reaches the threshold, so a cron job gets exit code 3.

use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};

use crate::error::Result;
use crate::output::BatchSink;

/// The breaches seen, shared between the sink and the caller.
#[derive(Clone, Default)]
pub struct Breaches(Arc<Mutex<Vec<String>>>);

impl Breaches {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().expect("not poisoned"))
    }
}

pub struct AlertSink {
    inner: Box<dyn BatchSink>,
    threshold: f64,
    breaches: Breaches,
}

impl AlertSink {
    pub fn new(inner: Box<dyn BatchSink>, threshold: f64, breaches: Breaches) -> Self {
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
        for column in ["quota_used_pct", "projected_pct"] {
            let Some(values) = batch.column_by_name(column) else {
                continue;
            };
            let values = cast(values, &DataType::Float64)?;
            let values = values.as_primitive::<Float64Type>();
            for i in 0..values.len() {
                if values.is_valid(i) && values.value(i) >= self.threshold {
                    let who = match &account {
                        Some(a) if a.is_valid(i) => {
                            format!("account {}", a.as_string::<i32>().value(i))
                        }
                        _ => "the total".to_string(),
                    };
                    self.breaches.0.lock().expect("not poisoned").push(format!(
                        "{who}: {column} {:.2} reached {}",
                        values.value(i),
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
