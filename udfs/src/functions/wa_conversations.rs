//! `wa_conversations(...)`: the 24-hour conversations (rule set `cbp`) of
//! each group's messages, as a list of structs. Group by account and
//! customer, then `unnest` the list: see the `conversations` view.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, ListArray, StringArray, StringBuilder, StructArray, TimestampMicrosecondArray,
};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, GroupsAccumulator, Signature,
    Volatility,
};

use crate::accumulator::buffer::{LogRows, PairOutput, SingleGroup, WindowingGroups};
use crate::log::columns::{coerce_log_args, field, timestamp_type};
use crate::rules::{MessageOutcome, RuleChoice};

/// The aggregate function `wa_conversations`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WaConversations {
    signature: Signature,
}

impl Default for WaConversations {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

pub fn wa_conversations_udaf() -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::from(WaConversations::default()))
}

/// The struct of one conversation.
pub fn conversation_fields() -> Fields {
    Fields::from(vec![
        field("category", DataType::Utf8),
        field("opened_at", timestamp_type()),
        field("expires_at", timestamp_type()),
        field("opening_message_id", DataType::Utf8),
    ])
}

fn return_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(
        DataType::Struct(conversation_fields()),
        true,
    )))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    crate::functions::docs::with_log_args(
        "The 24-hour WhatsApp conversations (rule set cbp) opened by a group's messages, \
         as a list of structs {category, opened_at, expires_at, opening_message_id}. \
         Group by account_id and the customer; the rules read each pair's whole history.",
        "wa_conversations(message_id, direction, message_type, category, status, sent_at, delivered_at, entry_point)",
    )
    .with_sql_example(
        "```sql\nSELECT account_id, customer_id, unnest(wa_conversations(message_id, direction, \
         message_type, category, status, sent_at, delivered_at, entry_point)) AS c\n\
         FROM messages_raw GROUP BY account_id, customer_id;\n```",
    )
    .build()
});

impl AggregateUDFImpl for WaConversations {
    fn name(&self) -> &str {
        "wa_conversations"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_log_args(self.name(), arg_types, 0)
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

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SingleGroup(groups())))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(keyed_groups(&args)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// The accumulator, in the by-key form when `args` are it.
pub(crate) fn keyed_groups(args: &AccumulatorArgs) -> WindowingGroups<ConversationsOutput> {
    groups().with_arg_types(&crate::keys::by_key::arg_types(args))
}

fn groups() -> WindowingGroups<ConversationsOutput> {
    WindowingGroups::new(RuleChoice::Auto, ConversationsOutput::default())
}

/// Builds the list of conversation structs, one list per group.
#[derive(Debug, Default)]
pub struct ConversationsOutput {
    offsets: Vec<i32>,
    /// Conversations pushed since the last `finish`.
    rows: usize,
    category: StringBuilder,
    opened_at: Vec<i64>,
    expires_at: Vec<i64>,
    opening_message_id: StringBuilder,
    /// Fields (in `conversation_fields` order) nothing reads: built as
    /// empty strings and zero times ([`PairOutput::build_only`]).
    unread: [bool; 4],
}

impl PairOutput for ConversationsOutput {
    fn begin(&mut self, groups: usize) {
        self.offsets.clear();
        self.offsets.reserve(groups + 1);
        self.offsets.push(0);
    }

    fn push_group(
        &mut self,
        log: &LogRows,
        first_row: u32,
        outcomes: &[MessageOutcome],
    ) -> Result<()> {
        let [no_category, no_opened, no_expires, no_id] = self.unread;
        if !no_id {
            for m in outcomes {
                if m.conversation.is_some() {
                    log.prefetch_id(first_row + m.row);
                }
            }
        }
        for m in outcomes {
            if let (Some((category, expires)), Some(opened)) = (m.conversation, m.event_at) {
                self.rows += 1;
                if !no_category {
                    self.category.append_value(category.as_str());
                }
                if !no_opened {
                    self.opened_at.push(opened);
                }
                if !no_expires {
                    self.expires_at.push(expires);
                }
                if !no_id {
                    let id = log.id_str(first_row + m.row);
                    self.opening_message_id.append_value(id);
                }
            }
        }
        self.offsets.push(self.rows as i32);
        Ok(())
    }

    fn build_only(&mut self, fields: &[String]) {
        for (unread, field) in self.unread.iter_mut().zip(conversation_fields().iter()) {
            *unread = !fields.iter().any(|f| f == field.name());
        }
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        let rows = std::mem::take(&mut self.rows);
        let [no_category, no_opened, no_expires, no_id] = self.unread;
        let ts = |v: &mut Vec<i64>, unread: bool| -> ArrayRef {
            let v = if unread {
                vec![0; rows]
            } else {
                std::mem::take(v)
            };
            Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
        };
        let text = |b: &mut StringBuilder, unread: bool| -> ArrayRef {
            if unread {
                Arc::new(StringArray::new(
                    OffsetBuffer::new_zeroed(rows),
                    Buffer::from_vec(Vec::<u8>::new()),
                    None,
                ))
            } else {
                Arc::new(b.finish())
            }
        };
        let columns: Vec<ArrayRef> = vec![
            text(&mut self.category, no_category),
            ts(&mut self.opened_at, no_opened),
            ts(&mut self.expires_at, no_expires),
            text(&mut self.opening_message_id, no_id),
        ];
        let structs = StructArray::try_new(conversation_fields(), columns, None)?;
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
