//! `wa_messages(..., rules)`: every distinct message of a group, its rows
//! merged, with what the rules made of it: the conversation it opened and,
//! for delivered outbound messages, its pricing under the rule set chosen
//! (`'auto'`, `'cbp'`, `'pmp'` or `'pmp26'`). The `message_conversations` and
//! `message_pricing` views unnest it.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, ListArray, StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, GroupsAccumulator, Signature,
    Volatility,
};

use crate::accumulator::buffer::{LogRows, PairOutput, SingleGroup, WindowingGroups};
use crate::functions::literal::constant_string;
use crate::log::columns::{coerce_log_args, field, nullable, timestamp_type};
use crate::rules::{Kind, MessageOutcome, RuleChoice, TemplateCategory};

/// The aggregate function `wa_messages`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WaMessages {
    signature: Signature,
}

impl Default for WaMessages {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

pub fn wa_messages_udaf() -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::from(WaMessages::default()))
}

/// The struct of one message.
pub fn message_fields() -> Fields {
    Fields::from(vec![
        field("message_id", DataType::Utf8),
        field("direction", DataType::Utf8),
        field("message_type", DataType::Utf8),
        nullable("category", DataType::Utf8),
        field("status", DataType::Utf8),
        field("sent_at", timestamp_type()),
        nullable("delivered_at", timestamp_type()),
        nullable("event_at", timestamp_type()),
        nullable("opened_category", DataType::Utf8),
        nullable("opened_expires_at", timestamp_type()),
        field("conversation_outside_window", DataType::Boolean),
        nullable("rule_set", DataType::Utf8),
        nullable("pricing_category", DataType::Utf8),
        nullable("billable", DataType::Boolean),
        nullable("outside_window", DataType::Boolean),
    ])
}

fn return_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(
        DataType::Struct(message_fields()),
        true,
    )))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    crate::functions::docs::with_log_args(
        "Every distinct message of a group (rows with one message_id merged) with event_at, \
         the conversation it opened (opened_category, opened_expires_at, \
         conversation_outside_window) and, for delivered outbound messages, its pricing under \
         the rule set given: rule_set, pricing_category, billable, outside_window.",
        "wa_messages(message_id, direction, message_type, category, status, sent_at, delivered_at, entry_point, rules)",
    )
    .with_argument("rules", "'auto' (the rule set in force at each message), 'cbp', 'pmp' or 'pmp26'")
    .with_sql_example(
        "```sql\nSELECT unnest(m) FROM (SELECT unnest(wa_messages(message_id, direction, \
         message_type, category, status, sent_at, delivered_at, entry_point, 'auto')) AS m\n\
         FROM messages_raw GROUP BY account_id, ltrim(customer_id, '+'));\n```",
    )
    .build()
});

impl AggregateUDFImpl for WaMessages {
    fn name(&self) -> &str {
        "wa_messages"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_log_args(self.name(), arg_types, 1)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(crate::keys::by_key::return_type(arg_types, return_type()))
    }

    fn is_nullable(&self) -> bool {
        false
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

/// The rule choice from a constant argument (`auto` when absent).
pub fn rule_choice(args: &AccumulatorArgs, index: usize) -> Result<RuleChoice> {
    match args.exprs.get(index) {
        None => Ok(RuleChoice::Auto),
        Some(e) => {
            let name = constant_string(e, "rules")?;
            match RuleChoice::parse(&name) {
                Some(c) => Ok(c),
                None => plan_err!(
                    "unknown rule set {name:?}; expected one of {}",
                    RuleChoice::NAMES
                ),
            }
        }
    }
}

/// Index of the constant after the log columns, in the form the plan uses.
pub fn trailing_arg(args: &AccumulatorArgs) -> usize {
    crate::log::columns::trailing_arg_index(&crate::keys::by_key::arg_types(args))
}

/// The accumulator, in the by-key form when `args` are it.
pub(crate) fn keyed_groups(args: &AccumulatorArgs) -> Result<WindowingGroups<MessagesOutput>> {
    Ok(groups(args)?.with_arg_types(&crate::keys::by_key::arg_types(args)))
}

fn groups(args: &AccumulatorArgs) -> Result<WindowingGroups<MessagesOutput>> {
    Ok(WindowingGroups::new(
        rule_choice(args, trailing_arg(args))?,
        MessagesOutput::default(),
    ))
}

#[derive(Debug, Default)]
pub struct MessagesOutput {
    offsets: Vec<i32>,
    message_id: StringBuilder,
    direction: StringBuilder,
    message_type: StringBuilder,
    category: StringBuilder,
    status: StringBuilder,
    sent_at: TimestampMicrosecondBuilder,
    delivered_at: TimestampMicrosecondBuilder,
    event_at: TimestampMicrosecondBuilder,
    opened_category: StringBuilder,
    opened_expires_at: TimestampMicrosecondBuilder,
    conversation_outside_window: BooleanBuilder,
    rule_set: StringBuilder,
    pricing_category: StringBuilder,
    billable: BooleanBuilder,
    outside_window: BooleanBuilder,
    len: i32,
}

impl PairOutput for MessagesOutput {
    fn begin(&mut self, groups: usize) {
        self.offsets.clear();
        self.offsets.reserve(groups + 1);
        self.offsets.push(0);
        self.len = 0;
    }

    fn push_group(
        &mut self,
        log: &LogRows,
        first_row: u32,
        outcomes: &[MessageOutcome],
    ) -> Result<()> {
        for m in outcomes {
            log.prefetch_id(first_row + m.row);
        }
        for m in outcomes {
            let id = log.id_str(first_row + m.row);
            self.message_id.append_value(id);
            let (direction, message_type, category) = match m.kind {
                Kind::Inbound { .. } => ("inbound", "free_form", None),
                Kind::FreeForm => ("outbound", "free_form", None),
                Kind::Template(c) => (
                    "outbound",
                    "template",
                    Some(match c {
                        TemplateCategory::Marketing => "marketing",
                        TemplateCategory::Utility => "utility",
                        TemplateCategory::Authentication => "authentication",
                    }),
                ),
            };
            self.direction.append_value(direction);
            self.message_type.append_value(message_type);
            self.category.append_option(category);
            self.status.append_value(m.status.as_str());
            self.sent_at.append_value(m.sent_at);
            self.delivered_at.append_option(m.delivered_at);
            self.event_at.append_option(m.event_at);
            self.opened_category
                .append_option(m.conversation.map(|(c, _)| c.as_str()));
            self.opened_expires_at
                .append_option(m.conversation.map(|(_, e)| e));
            self.conversation_outside_window
                .append_value(m.conversation_outside_window);
            self.rule_set
                .append_option(m.pricing.map(|p| p.rule_set.as_str()));
            self.pricing_category
                .append_option(m.pricing.and_then(|p| p.category.map(|c| c.as_str())));
            self.billable.append_option(m.pricing.map(|p| p.billable));
            self.outside_window
                .append_option(m.pricing.map(|p| p.outside_window));
            self.len += 1;
        }
        self.offsets.push(self.len);
        Ok(())
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        let ts = |b: &mut TimestampMicrosecondBuilder| -> ArrayRef {
            Arc::new(b.finish().with_timezone("UTC"))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.message_id.finish()),
            Arc::new(self.direction.finish()),
            Arc::new(self.message_type.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.status.finish()),
            ts(&mut self.sent_at),
            ts(&mut self.delivered_at),
            ts(&mut self.event_at),
            Arc::new(self.opened_category.finish()),
            ts(&mut self.opened_expires_at),
            Arc::new(self.conversation_outside_window.finish()),
            Arc::new(self.rule_set.finish()),
            Arc::new(self.pricing_category.finish()),
            Arc::new(self.billable.finish()),
            Arc::new(self.outside_window.finish()),
        ];
        let structs = StructArray::try_new(message_fields(), columns, None)?;
        let DataType::List(item) = return_type() else {
            unreachable!()
        };
        let offsets = OffsetBuffer::new(std::mem::take(&mut self.offsets).into());
        Ok(Arc::new(ListArray::try_new(
            item,
            offsets,
            Arc::new(structs),
            None,
        )?))
    }
}
