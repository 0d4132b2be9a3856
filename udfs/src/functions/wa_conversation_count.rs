//! `wa_conversation_count(...)`: how many 24-hour conversations a group's
//! messages opened, optionally of one category: the quick total, without
//! building the list that `wa_conversations` returns.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, GroupsAccumulator, Signature,
    Volatility,
};

use crate::accumulator::buffer::{LogRows, PairOutput, SingleGroup, WindowingGroups};
use crate::functions::literal::constant_string;
use crate::functions::wa_messages::trailing_arg;
use crate::log::columns::coerce_log_args;
use crate::rules::{ConversationCategory, MessageOutcome, RuleChoice};

/// The aggregate function `wa_conversation_count`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WaConversationCount {
    signature: Signature,
}

impl Default for WaConversationCount {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

pub fn wa_conversation_count_udaf() -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::from(WaConversationCount::default()))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    crate::functions::docs::with_log_args(
        "How many 24-hour WhatsApp conversations (rule set cbp) a group's messages opened; \
         with a ninth argument, only those of that category ('marketing', 'utility', \
         'authentication', 'service' or 'free_entry').",
        "wa_conversation_count(message_id, direction, message_type, category, status, sent_at, delivered_at, entry_point [, only_category])",
    )
    .with_argument("only_category", "optional: count only conversations of this category")
    .with_sql_example(
        "```sql\nSELECT sum(n) FROM (SELECT wa_conversation_count(message_id, direction, \
         message_type, category, status, sent_at, delivered_at, entry_point) AS n\n\
         FROM messages_raw GROUP BY account_id, ltrim(customer_id, '+'));\n```",
    )
    .build()
});

impl AggregateUDFImpl for WaConversationCount {
    fn name(&self) -> &str {
        "wa_conversation_count"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_log_args(self.name(), arg_types, 1)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(crate::keys::by_key::return_type(arg_types, DataType::Int64))
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(crate::keys::by_key::state_fields(
            args.name,
            args.input_fields,
        ))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SingleGroup(groups(&args)?)))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(keyed_groups(&args)?))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// The accumulator, in the by-key form when `args` are it.
pub(crate) fn keyed_groups(args: &AccumulatorArgs) -> Result<WindowingGroups<CountOutput>> {
    Ok(groups(args)?.with_arg_types(&crate::keys::by_key::arg_types(args)))
}

fn groups(args: &AccumulatorArgs) -> Result<WindowingGroups<CountOutput>> {
    let only = match args.exprs.get(trailing_arg(args)) {
        None => None,
        Some(e) => {
            let name = constant_string(e, "only_category")?;
            match ConversationCategory::ALL
                .iter()
                .find(|c| c.as_str() == name)
            {
                Some(c) => Some(*c),
                None => {
                    return plan_err!(
                        "wa_conversation_count: unknown category {name:?}; \
                         expected marketing, utility, authentication, service or free_entry"
                    )
                }
            }
        }
    };
    Ok(WindowingGroups::new(
        RuleChoice::Auto,
        CountOutput {
            only,
            counts: vec![],
        },
    ))
}

#[derive(Debug)]
pub struct CountOutput {
    only: Option<ConversationCategory>,
    counts: Vec<i64>,
}

impl PairOutput for CountOutput {
    fn begin(&mut self, groups: usize) {
        self.counts.clear();
        self.counts.reserve(groups);
    }

    fn push_group(
        &mut self,
        _log: &LogRows,
        _first_row: u32,
        outcomes: &[MessageOutcome],
    ) -> Result<()> {
        let n = outcomes
            .iter()
            .filter(|m| match (m.conversation, self.only) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some((c, _)), Some(only)) => c == only,
            })
            .count();
        self.counts.push(n as i64);
        Ok(())
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        Ok(Arc::new(Int64Array::from(std::mem::take(&mut self.counts))))
    }
}
