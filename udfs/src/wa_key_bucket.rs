//! `wa_key_bucket(key)`: which of [`KEY_BUCKETS`] buckets a grouping key
//! (a customer number) falls in.
//!
//! Analysts have no need to call it: the optimizer rule in
//! [`crate::single_phase`] groups the windowing's rows by (account, bucket)
//! in DataFusion's hash table and lets the windowing aggregate split each
//! bucket into its customers by sorting, because a hash table of a million
//! customers misses the cache on almost every row (it was a quarter of the
//! windowing query) where one of tens of thousands of buckets stays in it.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, AsArray, UInt32Array};
use arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::rules::id_hash;

/// Buckets per value of the other grouping keys: enough to keep a bucket to
/// a handful of customers at a million customers, few enough that the hash
/// table of buckets stays in the cache.
pub const KEY_BUCKETS: u32 = 1 << 12;

/// The bucket of one key's bytes; null keys fall in bucket 0.
pub fn key_bucket(key: Option<&[u8]>) -> u32 {
    key.map_or(0, |k| (id_hash(k) as u32) & (KEY_BUCKETS - 1))
}

/// The bucket of a key of at most 12 bytes from its view (length and
/// bytes, zero-padded): a function of the key alone, as for longer keys.
fn view_bucket(view: u128) -> u32 {
    let mixed =
        ((view as u64) ^ ((view >> 64) as u64).rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((mixed >> 40) as u32) & (KEY_BUCKETS - 1)
}

/// The scalar function `wa_key_bucket`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WaKeyBucket {
    signature: Signature,
}

impl Default for WaKeyBucket {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

pub fn wa_key_bucket_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(WaKeyBucket::default()))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::docs::SECTION,
        "The bucket (0 to 4095) a string key falls in, by a fixed hash of its bytes; 0 for \
         NULL. The optimizer groups the windowing's rows by (account, bucket) and the windowing \
         aggregate splits each bucket into its customers.",
        "wa_key_bucket(key)",
    )
    .with_argument("key", "a string: the normalised customer number")
    .with_sql_example(
        "```sql\nSELECT wa_key_bucket(ltrim(customer_id, '+')) AS bucket, count(*)\n\
         FROM messages_raw GROUP BY 1 ORDER BY 2 DESC LIMIT 5;\n```",
    )
    .build()
});

impl ScalarUDFImpl for WaKeyBucket {
    fn name(&self) -> &str {
        "wa_key_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View] => Ok(arg_types.to_vec()),
            [DataType::Null | DataType::Dictionary(_, _)] => Ok(vec![DataType::Utf8View]),
            _ => plan_err!("wa_key_bucket takes one string, got {arg_types:?}"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = ColumnarValue::values_to_arrays(&args.args)?;
        let [key] = values.as_slice() else {
            return exec_err!("wa_key_bucket takes one argument");
        };
        let buckets: UInt32Array = match key.data_type() {
            DataType::Utf8View => {
                // A short key is all in its view: hash the view itself.
                let keys = key.as_string_view();
                let buckets: Vec<u32> = keys
                    .views()
                    .iter()
                    .enumerate()
                    .map(|(i, &view)| {
                        if keys.is_null(i) {
                            0
                        } else if (view as u32) <= 12 {
                            view_bucket(view)
                        } else {
                            key_bucket(Some(keys.value(i).as_bytes()))
                        }
                    })
                    .collect();
                UInt32Array::from(buckets)
            }
            DataType::Utf8 => key
                .as_string::<i32>()
                .iter()
                .map(|k| Some(key_bucket(k.map(str::as_bytes))))
                .collect(),
            DataType::LargeUtf8 => key
                .as_string::<i64>()
                .iter()
                .map(|k| Some(key_bucket(k.map(str::as_bytes))))
                .collect(),
            other => return exec_err!("wa_key_bucket takes a string, got {other}"),
        };
        debug_assert_eq!(buckets.null_count(), 0);
        Ok(ColumnarValue::Array(Arc::new(buckets)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_fixed_and_in_range() {
        assert_eq!(key_bucket(None), 0);
        assert_eq!(
            key_bucket(Some(b"447700900123")),
            key_bucket(Some(b"447700900123"))
        );
        let distinct: std::collections::HashSet<u32> = (0..10_000)
            .map(|i| key_bucket(Some(format!("4477009{i:05}").as_bytes())))
            .collect();
        assert!(distinct.iter().all(|&b| b < KEY_BUCKETS));
        // Phone numbers differing in their last digits spread out.
        assert!(distinct.len() > 3_000, "{}", distinct.len());
    }
}
