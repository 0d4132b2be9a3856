//! `wa_customer_key(customer_id)`: the customer key of
//! [`crate::rules::customer_key`] (blanks trimmed, leading `+` removed), the
//! key every view groups customers by (`+447700900123`, `447700900123` and
//! ` +447700900123 ` are one customer).
//!
//! It reads a `Utf8View` column's views and keeps the column's buffers: a
//! number that is its own key keeps its view, and any other gets a view of
//! the key's bytes inside the same bytes (or, once 12 bytes or fewer, the
//! bytes inline), where building every view anew would cost a copy per row.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    make_view, Array, ArrayRef, AsArray, ByteView, LargeStringArray, StringArray, StringViewArray,
};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, Result};

use crate::rules::{customer_key, customer_key_bytes};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// The scalar function `wa_customer_key`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WaCustomerKey {
    signature: Signature,
}

impl Default for WaCustomerKey {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

pub fn wa_customer_key_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(WaCustomerKey::default()))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::functions::docs::SECTION,
        "The customer's number with surrounding blanks trimmed and its leading '+' removed: \
         the key the views group customers by, so '+447700900123', '447700900123' and \
         ' +447700900123 ' are one customer. NULL stays NULL.",
        "wa_customer_key(customer_id)",
    )
    .with_argument(
        "customer_id",
        "a string: an E.164 number, with or without '+'",
    )
    .with_sql_example(
        "```sql\nSELECT wa_customer_key(customer_id) AS customer, count(*) AS messages\n\
         FROM messages_raw GROUP BY 1 ORDER BY 2 DESC LIMIT 5;\n```",
    )
    .build()
});

impl ScalarUDFImpl for WaCustomerKey {
    fn name(&self) -> &str {
        "wa_customer_key"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View] => Ok(arg_types.to_vec()),
            [DataType::Null | DataType::Dictionary(_, _)] => Ok(vec![DataType::Utf8View]),
            _ => plan_err!("wa_customer_key takes one string, got {arg_types:?}"),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] => Ok(t.clone()),
            _ => plan_err!("wa_customer_key takes one argument"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = ColumnarValue::values_to_arrays(&args.args)?;
        let [numbers] = values.as_slice() else {
            return exec_err!("wa_customer_key takes one argument");
        };
        let keys: ArrayRef = match numbers.data_type() {
            DataType::Utf8View => Arc::new(strip_views(numbers.as_string_view())),
            DataType::Utf8 => Arc::new(
                numbers
                    .as_string::<i32>()
                    .iter()
                    .map(|n| n.map(strip))
                    .collect::<StringArray>(),
            ),
            DataType::LargeUtf8 => Arc::new(
                numbers
                    .as_string::<i64>()
                    .iter()
                    .map(|n| n.map(strip))
                    .collect::<LargeStringArray>(),
            ),
            other => return exec_err!("wa_customer_key takes a string, got {other}"),
        };
        Ok(ColumnarValue::Array(keys))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

fn strip(number: &str) -> &str {
    customer_key(number)
}

/// Every view as its customer key, over the same buffers.
fn strip_views(numbers: &StringViewArray) -> StringViewArray {
    let buffers = numbers.data_buffers();
    let views: ScalarBuffer<u128> = numbers
        .views()
        .iter()
        .map(|&view| {
            let len = view as u32 as usize;
            if len == 0 {
                return view;
            }
            if len <= 12 {
                let bytes = view.to_le_bytes();
                return make_stripped(&bytes[4..4 + len], 0, 0);
            }
            let at = ByteView::from(view);
            let start = at.offset as usize;
            let bytes = &buffers[at.buffer_index as usize][start..start + len];
            // Bytes 4..8 of a view are the string's first bytes (its prefix).
            let first = (view >> 32) as u8;
            if first.is_ascii_digit() && bytes[len - 1].is_ascii_digit() {
                return view;
            }
            make_stripped(bytes, at.buffer_index, at.offset)
        })
        .collect();
    // SAFETY: every view is unchanged or describes a part of its string,
    // inline when 12 bytes or fewer, else at its offset in the same buffer:
    // valid UTF-8, since only ASCII bytes are dropped from its ends.
    unsafe { StringViewArray::new_unchecked(views, buffers.to_vec(), numbers.nulls().cloned()) }
}

/// The view of `bytes`' customer key; `bytes` sit at `offset` of buffer
/// `buffer` when over 12 bytes (ignored when inline).
fn make_stripped(bytes: &[u8], buffer: u32, offset: u32) -> u128 {
    let key = customer_key_bytes(bytes);
    let skip = key.as_ptr() as usize - bytes.as_ptr() as usize;
    make_view(key, buffer, offset + skip as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringViewBuilder;

    #[test]
    fn views_lose_their_leading_plus_like_ltrim() {
        let numbers = [
            Some("+447700900123"),
            Some("447700900123"),
            None,
            Some(""),
            Some("+"),
            Some("++12"),
            Some("+1234567890123456"),
            Some("1234567890123456"),
            Some("12+3"),
            Some("+123456789012"),
            Some(" +6281234567890 "),
            Some("+6281234567890\n"),
            Some("\t6281234567890123"),
            Some("++6281234567890"),
            Some("   "),
        ];
        let mut builder = StringViewBuilder::new();
        for n in numbers {
            builder.append_option(n);
        }
        let stripped = strip_views(&builder.finish());
        let got: Vec<Option<&str>> = stripped.iter().collect();
        let want: Vec<Option<&str>> = numbers.iter().map(|n| n.map(strip)).collect();
        assert_eq!(got, want);
        assert_eq!(got[0], Some("447700900123"));
        assert_eq!(got[6], Some("1234567890123456"));
        for key in &got[10..14] {
            assert!(key.unwrap().starts_with("6281234567890"), "{key:?}");
        }
        assert_eq!(got[14], Some(""));
        // Equal strings have equal views once short: what grouping compares.
        assert_eq!(stripped.views()[0], stripped.views()[1]);
        stripped.to_data().validate_full().expect("valid views");
    }
}
