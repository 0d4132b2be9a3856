//! `wa_conflict(message_id, column, a, b)`: the input error for a message
//! whose rows disagree on a column that must be one value (its account,
//! its customer). The `messages` view calls it in the branch of a `CASE`
//! that only rows of such messages reach, so that a log where one id
//! appears under two accounts or customers fails naming the id, instead of
//! keeping whichever row came first (which depends on how the log is split).

use std::sync::{Arc, LazyLock};

use arrow::array::{new_null_array, Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// The scalar function `wa_conflict`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WaConflict {
    signature: Signature,
}

impl Default for WaConflict {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

pub fn wa_conflict_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(WaConflict::default()))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::functions::docs::SECTION,
        "Fails with an input error naming the message id, the column and two of its values: \
         for rows of one message that disagree on a column that must be one value. Returns NULL \
         for no rows; the messages view calls it only for such messages.",
        "wa_conflict(message_id, column, a, b)",
    )
    .with_argument("message_id", "the message's id")
    .with_argument("column", "the column's name")
    .with_argument("a", "one value (a string)")
    .with_argument("b", "another value (a string)")
    .with_sql_example(
        "```sql\nSELECT message_id,\n       CASE WHEN min(account_id) = max(account_id) THEN min(account_id)\n            ELSE wa_conflict(message_id, 'account_id', min(account_id), max(account_id)) END\nFROM messages_raw GROUP BY message_id;\n```",
    )
    .build()
});

impl ScalarUDFImpl for WaConflict {
    fn name(&self) -> &str {
        "wa_conflict"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [_, _, _, _] => Ok(vec![DataType::Utf8; 4]),
            _ => plan_err!("wa_conflict takes message_id, column, a, b"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let values = ColumnarValue::values_to_arrays(&args.args)?;
        let text: Vec<_> = values
            .iter()
            .map(|v| cast(v, &DataType::Utf8))
            .collect::<std::result::Result<_, _>>()?;
        let text: Vec<_> = text.iter().map(|a| a.as_string::<i32>()).collect();
        let value = |column: usize, row: usize| {
            let a = text[column];
            (!a.is_null(row)).then(|| a.value(row).to_string())
        };
        if rows > 0 {
            return exec_err!(
                "message_id {:?}: its rows disagree on {} ({:?} and {:?}); \
                 one message has one account and one customer",
                value(0, 0).unwrap_or_default(),
                value(1, 0).unwrap_or_default(),
                value(2, 0).unwrap_or_default(),
                value(3, 0).unwrap_or_default()
            );
        }
        Ok(ColumnarValue::Array(new_null_array(&DataType::Utf8, 0)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
