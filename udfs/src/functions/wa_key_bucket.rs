//! `wa_key_bucket(key, ...)`: which of [`crate::keys::hash::KEY_BUCKETS`] buckets a tuple of
//! grouping keys (an account and a customer number) falls in.
//!
//! Analysts have no need to call it: the optimizer rule in
//! [`crate::optimizer::single_phase`] groups the windowing's rows by this one bucket
//! in DataFusion's hash table (its primitive table: one `UInt32`) and lets
//! the windowing aggregate split each bucket into its (account, customer)
//! pairs by sorting, because a hash table of a million customers misses the
//! cache on almost every row where one of thousands of buckets stays in it. That is a cluster's
//! plan; in one process the windowing operator computes a bucket of its
//! own as it codes the keys (`key_coder.rs`).

use std::sync::{Arc, LazyLock};

use arrow::datatypes::DataType;
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::keys::hash::key_buckets;

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
        crate::functions::docs::SECTION,
        "The bucket (0 to 16383) a tuple of string keys falls in, by a fixed hash of their \
         bytes (NULL hashes as a value of its own). On a cluster the optimizer repartitions \
         the windowing's rows by the bucket of (account, customer) and the windowing \
         aggregate splits each bucket into its pairs.",
        "wa_key_bucket(key, ...)",
    )
    .with_argument(
        "key",
        "strings: the account and the normalised customer number",
    )
    .with_sql_example(
        "```sql\nSELECT wa_key_bucket(account_id, wa_customer_key(customer_id)) AS bucket, \
         count(*)\nFROM messages_raw GROUP BY 1 ORDER BY 2 DESC LIMIT 5;\n```",
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
        if arg_types.is_empty() {
            return plan_err!("wa_key_bucket takes one or more strings");
        }
        arg_types
            .iter()
            .map(|t| match t {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(t.clone()),
                DataType::Null | DataType::Dictionary(_, _) => Ok(DataType::Utf8View),
                other => plan_err!("wa_key_bucket takes strings, got {other}"),
            })
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let keys = ColumnarValue::values_to_arrays(&args.args)?;
        let buckets = key_buckets(&keys)?;
        Ok(ColumnarValue::Array(Arc::new(buckets)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::hash::KEY_BUCKETS;
    use arrow::array::{ArrayRef, LargeStringArray, StringArray, StringViewArray};

    fn buckets(keys: Vec<ArrayRef>) -> Vec<u32> {
        key_buckets(&keys).unwrap().values().to_vec()
    }

    #[test]
    fn buckets_are_a_function_of_the_keys_alone_and_spread() {
        let accounts = ["acct-1", "a-much-longer-account-id"];
        let numbers: Vec<String> = (0..10_000).map(|i| format!("4477009{i:05}")).collect();
        let rows: Vec<(&str, &str)> = accounts
            .iter()
            .flat_map(|a| numbers.iter().map(move |n| (*a, n.as_str())))
            .collect();
        let column = |i: usize, t: &DataType| -> ArrayRef {
            let values = rows.iter().map(|r| if i == 0 { r.0 } else { r.1 });
            match t {
                DataType::Utf8View => Arc::new(StringViewArray::from_iter_values(values)),
                DataType::Utf8 => Arc::new(StringArray::from_iter_values(values)),
                _ => Arc::new(LargeStringArray::from_iter_values(values)),
            }
        };
        let views = buckets(vec![
            column(0, &DataType::Utf8View),
            column(1, &DataType::Utf8View),
        ]);
        for t in [DataType::Utf8, DataType::LargeUtf8] {
            assert_eq!(buckets(vec![column(0, &t), column(1, &t)]), views, "{t}");
        }
        assert!(views.iter().all(|&b| b < KEY_BUCKETS));
        let distinct: std::collections::HashSet<u32> = views.iter().copied().collect();
        assert!(distinct.len() > 9_000, "{}", distinct.len());
        // The account counts: the same number in two accounts mostly differs.
        let differ = (0..numbers.len())
            .filter(|&i| views[i] != views[numbers.len() + i])
            .count();
        assert!(differ > 9_900, "{differ}");
        // Nulls hash as a value of their own.
        let nulls: ArrayRef = Arc::new(StringViewArray::from(vec![None, Some(""), None]));
        let b = buckets(vec![nulls]);
        assert_eq!(b[0], b[2]);
    }
}
