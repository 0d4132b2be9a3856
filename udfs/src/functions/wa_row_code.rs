//! `wa_row_code(...)`: a log row's kind and status as the one-byte code the
//! windowing rules run on.
//!
//! Analysts have no need to call it: the optimizer rule in
//! [`crate::optimizer::single_phase`] computes it below the repartition that brings
//! each customer's rows together, so five string columns travel as one byte
//! (in memory locally, through the shuffle files on a cluster) and each row
//! is classified once. It checks every row as the aggregates do, with the
//! same errors naming the message id and the bad value.

use std::sync::{Arc, LazyLock};

use arrow::array::UInt8Array;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::log::columns::{coerce_log_args, LogBatch};

/// The scalar function `wa_row_code`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WaRowCode {
    signature: Signature,
}

impl Default for WaRowCode {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

pub fn wa_row_code_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(WaRowCode::default()))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    crate::functions::docs::with_log_args(
        "A log row's kind (inbound with or without a free entry point, template of a category, \
         free-form) and status as a one-byte code: the form the windowing aggregates read once \
         the optimizer has classified rows before bringing each customer's rows together. \
         Fails, naming the message id, on a value the message-log schema does not allow.",
        "wa_row_code(message_id, direction, message_type, category, status, sent_at, delivered_at, entry_point)",
    )
    .with_sql_example(
        "```sql\nSELECT wa_row_code(message_id, direction, message_type, category, status, \
         sent_at, delivered_at, entry_point) AS code, count(*)\nFROM messages_raw GROUP BY 1;\n```",
    )
    .build()
});

impl ScalarUDFImpl for WaRowCode {
    fn name(&self) -> &str {
        "wa_row_code"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_log_args(self.name(), arg_types, 0)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = ColumnarValue::values_to_arrays(&args.args)?;
        let batch = LogBatch::try_new(&values)?;
        let codes = batch.codes()?;
        Ok(ColumnarValue::Array(Arc::new(UInt8Array::from(codes))))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, ArrayRef, StringArray, TimestampMicrosecondArray};
    use arrow::compute::cast;
    use arrow::datatypes::Field;
    use datafusion::common::config::ConfigOptions;

    fn invoke(category: &[Option<&str>], text: &DataType) -> Result<ColumnarValue> {
        let strings = |v: &[Option<&str>]| -> ArrayRef {
            cast(&StringArray::from(v.to_vec()), text).unwrap()
        };
        let n = category.len();
        let ts: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from((0..n as i64).collect::<Vec<_>>()).with_timezone("UTC"),
        );
        let ids: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
        let ids: Vec<Option<&str>> = ids.iter().map(|s| Some(s.as_str())).collect();
        let args: Vec<ArrayRef> = vec![
            strings(&ids),
            strings(&vec![Some("outbound"); n]),
            strings(&vec![Some("template"); n]),
            strings(category),
            strings(&vec![Some("delivered"); n]),
            ts.clone(),
            ts,
            strings(&vec![None; n]),
        ];
        let arg_fields = args
            .iter()
            .map(|a| Arc::new(Field::new("a", a.data_type().clone(), true)))
            .collect();
        wa_row_code_udf().invoke_with_args(ScalarFunctionArgs {
            args: args.into_iter().map(ColumnarValue::Array).collect(),
            arg_fields,
            number_rows: n,
            return_field: Arc::new(Field::new("code", DataType::UInt8, false)),
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    #[test]
    fn codes_match_the_aggregates_classification_and_name_bad_values() {
        // Views (local scans) and plain strings (a cluster's) alike.
        for text in [DataType::Utf8View, DataType::Utf8, DataType::LargeUtf8] {
            let categories = [Some("marketing"), Some("utility"), Some("authentication")];
            let ColumnarValue::Array(codes) = invoke(&categories, &text).unwrap() else {
                panic!("an array")
            };
            let codes = codes.as_any().downcast_ref::<UInt8Array>().unwrap();
            let (kind, status) = crate::log::columns::decode(codes.value(0));
            assert_eq!(
                kind,
                crate::rules::Kind::Template(crate::rules::TemplateCategory::Marketing)
            );
            assert_eq!(status, crate::rules::Status::Delivered);
            assert_eq!(
                crate::log::columns::decode(codes.value(2)).0,
                crate::rules::Kind::Template(crate::rules::TemplateCategory::Authentication)
            );
            assert_ne!(codes.value(0), codes.value(1));

            let err = invoke(&[Some("marketing"), Some("promo")], &text)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("\"m1\"") && err.contains("\"promo\""),
                "{text}: {err}"
            );
        }
    }
}
