//! `wa_label(...) OVER (PARTITION BY account_id, customer_id ...)`: labels
//! every row with what its message did under the 24-hour conversation rules:
//! the category it opened (or null) and whether it was a free-form message
//! outside the customer service window.
//!
//! The window path re-sorts and buffers whole partitions, so for reports
//! over large logs prefer the `message_conversations` view (built on the
//! `wa_messages` aggregate); this function is for ad-hoc row labelling.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, BooleanBuilder, StringBuilder, StructArray};
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{exec_datafusion_err, Result};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    Documentation, PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};

use crate::log::columns::{coerce_log_args, field, nullable, row, LogBatch};
use crate::rules::{MessageOutcome, RuleChoice, Windowing};

/// The window function `wa_label`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WaLabel {
    signature: Signature,
}

impl Default for WaLabel {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

pub fn wa_label_udwf() -> Arc<WindowUDF> {
    Arc::new(WindowUDF::from(WaLabel::default()))
}

pub fn label_fields() -> Fields {
    Fields::from(vec![
        nullable("opened_category", DataType::Utf8),
        field("outside_window", DataType::Boolean),
    ])
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    crate::functions::docs::with_log_args(
        "Labels each row of a window partitioned by account and customer with what its \
         message did: {opened_category (the 24-hour conversation it opened, or NULL), \
         outside_window (a free-form message outside the customer service window)}. \
         The partition must hold the customer's whole history.",
        "wa_label(message_id, direction, message_type, category, status, sent_at, delivered_at, entry_point) OVER (PARTITION BY account_id, customer_id)",
    )
    .with_sql_example(
        "```sql\nSELECT message_id, wa_label(message_id, direction, message_type, category, status, \
         sent_at, delivered_at, entry_point)\n  OVER (PARTITION BY account_id, ltrim(customer_id, '+')) AS label\n\
         FROM messages_raw;\n```",
    )
    .build()
});

impl WindowUDFImpl for WaLabel {
    fn name(&self) -> &str {
        "wa_label"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_log_args(self.name(), arg_types, 0)
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(LabelEvaluator::default()))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Struct(label_fields()),
            false,
        )))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[derive(Debug, Default)]
struct LabelEvaluator {
    windowing: Windowing,
    outcomes: Vec<MessageOutcome>,
}

impl PartitionEvaluator for LabelEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let batch = LogBatch::try_new(values)?;
        let mut rows = Vec::with_capacity(num_rows);
        for i in 0..num_rows {
            rows.push(row(
                batch.code(i)?,
                batch.sent_at.value(i),
                batch.delivered_at(i),
                batch.id(i),
            ));
        }
        self.windowing = Windowing::new(RuleChoice::Auto);
        self.windowing
            .run_pair(&rows, |i| batch.id(i as usize), &mut self.outcomes)
            .map_err(|e| exec_datafusion_err!("{e}"))?;
        for m in self.outcomes.iter().filter(|m| m.delivered_before_sent) {
            let id = String::from_utf8_lossy(batch.id(m.row as usize));
            crate::warnings::note_delivered_before_sent(&id, rows[m.row as usize].id_hash);
        }
        let mut opened = StringBuilder::new();
        let mut outside = BooleanBuilder::new();
        for r in 0..num_rows {
            let m = &self.outcomes[self.windowing.outcome_of_row(r)];
            opened.append_option(m.conversation.map(|(c, _)| c.as_str()));
            outside.append_value(m.conversation_outside_window);
        }
        let columns: Vec<ArrayRef> = vec![Arc::new(opened.finish()), Arc::new(outside.finish())];
        Ok(Arc::new(StructArray::try_new(
            label_fields(),
            columns,
            None,
        )?))
    }
}
