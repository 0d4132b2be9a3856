//! Prepared statements: a handle per `CreatePreparedStatement`, holding
//! the SQL and the parameter values a client last bound with `DoPut`.
//! Values stay typed Arrow values from the client, bound as DataFusion
//! placeholders (`$1`, `$2`, …, by column order), never pasted into SQL.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use arrow::record_batch::RecordBatch;
use datafusion::common::{ParamValues, ScalarValue};

#[derive(Debug, Clone)]
pub struct Prepared {
    pub sql: String,
    pub params: Option<ParamValues>,
}

/// The open prepared statements of every client.
#[derive(Default)]
pub struct PreparedStatements {
    next: AtomicU64,
    open: Mutex<HashMap<Vec<u8>, Prepared>>,
}

impl PreparedStatements {
    /// Opens a statement; its handle. Handles are unguessable (a
    /// counter keyed by the process's random SipHash keys, 128 bits), so
    /// one client cannot bind values to another's statement; a handle
    /// from an earlier run of the server is unknown.
    pub fn open(&self, sql: String) -> Vec<u8> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let keys = handle_keys();
        let handle =
            format!("{:016x}{:016x}", keys[0].hash_one(n), keys[1].hash_one(n)).into_bytes();
        self.lock()
            .insert(handle.clone(), Prepared { sql, params: None });
        handle
    }

    pub fn get(&self, handle: &[u8]) -> Option<Prepared> {
        self.lock().get(handle).cloned()
    }

    /// Binds values to a statement; false when the handle is unknown.
    pub fn bind(&self, handle: &[u8], params: ParamValues) -> bool {
        match self.lock().get_mut(handle) {
            Some(p) => {
                p.params = Some(params);
                true
            }
            None => false,
        }
    }

    pub fn close(&self, handle: &[u8]) -> bool {
        self.lock().remove(handle).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Prepared>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Two hashers with keys drawn from the OS's randomness once a process.
fn handle_keys() -> &'static [std::hash::RandomState; 2] {
    static KEYS: std::sync::OnceLock<[std::hash::RandomState; 2]> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| [std::hash::RandomState::new(), std::hash::RandomState::new()])
}

/// The values of one row of bound parameters, by column: `$1` is the
/// first column.
pub fn row_values(batches: &[RecordBatch]) -> Result<ParamValues, String> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(ParamValues::List(vec![]));
    };
    if rows > 1 {
        return Err(format!(
            "{rows} rows of parameters were bound; a query takes one row (run it once per row)"
        ));
    }
    let values = batch
        .columns()
        .iter()
        .map(|c| ScalarValue::try_from_array(c, 0).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ParamValues::from(values))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn handles_open_bind_and_close() {
        let store = PreparedStatements::default();
        let a = store.open("SELECT $1".into());
        let b = store.open("SELECT 2".into());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32, "128 bits in hex");
        assert!(store.bind(&a, ParamValues::from(vec![ScalarValue::from(1i64)])));
        assert!(store.get(&a).unwrap().params.is_some());
        assert!(store.get(&b).unwrap().params.is_none());
        assert!(store.close(&a));
        assert!(store.get(&a).is_none());
        assert!(!store.bind(&a, ParamValues::List(vec![])));
    }

    #[test]
    fn one_row_of_values_by_column() {
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(StringArray::from(vec!["o'brien"])) as _),
            ("b", Arc::new(Int64Array::from(vec![7])) as _),
        ])
        .unwrap();
        let ParamValues::List(v) = row_values(std::slice::from_ref(&batch)).unwrap() else {
            panic!("positional")
        };
        assert_eq!(v[0].value, ScalarValue::from("o'brien"));
        assert_eq!(v[1].value, ScalarValue::from(7i64));
        let two = RecordBatch::try_from_iter([("a", Arc::new(Int64Array::from(vec![1, 2])) as _)])
            .unwrap();
        assert!(row_values(&[two]).unwrap_err().contains("2 rows"));
    }
}
