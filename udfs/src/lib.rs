//! WhatsApp Business billing rules as DataFusion functions.
//!
//! [`rules`] is the pure-Rust heart (no Arrow, no DataFusion); the other
//! modules wrap it as SQL functions, one function per file, and
//! [`register_all`] adds them all to a session.

mod bucketed;
mod buffer;
pub mod by_key;
mod by_key_plan;
pub mod columns;
mod docs;
mod key_coder;
mod literal;
pub mod phone_country;
pub mod rules;
pub mod single_phase;
mod used_fields;
pub mod wa_conflict;
pub mod wa_conversation_count;
pub mod wa_conversations;
pub mod wa_customer_key;
pub mod wa_key_bucket;
pub mod wa_label;
pub mod wa_messages;
pub mod wa_row_code;
pub mod warnings;

use datafusion::execution::FunctionRegistry;
use datafusion::prelude::SessionContext;

pub use columns::LOG_ARGS_SQL;
pub use phone_country::phone_country_udf;
pub use single_phase::{
    single_phase_windowing_rule, single_phase_windowing_rule_for_cluster,
    single_phase_windowing_rule_without_buckets,
};
pub use wa_conflict::wa_conflict_udf;
pub use wa_conversation_count::wa_conversation_count_udaf;
pub use wa_conversations::wa_conversations_udaf;
pub use wa_customer_key::wa_customer_key_udf;
pub use wa_key_bucket::wa_key_bucket_udf;
pub use wa_label::wa_label_udwf;
pub use wa_messages::wa_messages_udaf;
pub use wa_row_code::wa_row_code_udf;

/// Names of every function this crate adds (for completion and `\h`).
pub const FUNCTION_NAMES: [&str; 9] = [
    "wa_conversations",
    "wa_conversation_count",
    "wa_messages",
    "wa_label",
    "phone_country",
    "wa_row_code",
    "wa_key_bucket",
    "wa_customer_key",
    "wa_conflict",
];

/// Registers every wausage function with a session.
pub fn register_all(ctx: &SessionContext) {
    ctx.register_udaf(wa_conversations_udaf().as_ref().clone());
    ctx.register_udaf(wa_conversation_count_udaf().as_ref().clone());
    ctx.register_udaf(wa_messages_udaf().as_ref().clone());
    ctx.register_udwf(wa_label_udwf().as_ref().clone());
    ctx.register_udf(phone_country_udf().as_ref().clone());
    ctx.register_udf(wa_row_code_udf().as_ref().clone());
    ctx.register_udf(wa_key_bucket_udf().as_ref().clone());
    ctx.register_udf(wa_customer_key_udf().as_ref().clone());
    ctx.register_udf(wa_conflict_udf().as_ref().clone());
}

/// Registers every wausage function with any function registry: a
/// `SessionState` being built for a cluster's scheduler or executor, where
/// plans name the functions and each process must resolve them itself.
pub fn register_all_in(registry: &mut dyn FunctionRegistry) -> datafusion::common::Result<()> {
    registry.register_udaf(wa_conversations_udaf())?;
    registry.register_udaf(wa_conversation_count_udaf())?;
    registry.register_udaf(wa_messages_udaf())?;
    registry.register_udwf(wa_label_udwf())?;
    registry.register_udf(phone_country_udf())?;
    registry.register_udf(wa_row_code_udf())?;
    registry.register_udf(wa_key_bucket_udf())?;
    registry.register_udf(wa_customer_key_udf())?;
    registry.register_udf(wa_conflict_udf())?;
    Ok(())
}
