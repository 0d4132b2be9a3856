//! WhatsApp Business billing rules as DataFusion functions.
//!
//! A reader finds a thing from its folder's name:
//! - [`rules`]: the pure-Rust state machine (std only), the product;
//! - [`functions`]: one SQL function per file, all listed in [`all_functions`];
//! - [`log`]: the log columns the windowing takes and their classification;
//! - [`keys`]: the grouping keys' coding (the by-key form, the key coder);
//! - [`accumulator`]: the row-buffering `GroupsAccumulator` behind every
//!   windowing aggregate;
//! - [`physical_plan`]: `BucketedWindowingExec`, the windowing operator of a
//!   local plan and of a cluster's stage after its shuffle;
//! - [`optimizer`]: the physical optimizer rule and the plans it builds;
//! - [`warnings`]: what the windowing reports besides errors.

mod accumulator;
pub mod functions;
mod keys;
pub mod log;
mod optimizer;
pub mod physical_plan;
pub mod proc_text;
pub mod rules;
pub mod warnings;

use std::sync::Arc;

use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;

pub use functions::phone_country::phone_country_udf;
pub use functions::wa_conflict::wa_conflict_udf;
pub use functions::wa_conversation_count::wa_conversation_count_udaf;
pub use functions::wa_conversations::wa_conversations_udaf;
pub use functions::wa_customer_key::wa_customer_key_udf;
pub use functions::wa_key_bucket::wa_key_bucket_udf;
pub use functions::wa_label::wa_label_udwf;
pub use functions::wa_messages::wa_messages_udaf;
pub use functions::wa_row_code::wa_row_code_udf;
pub use log::columns::LOG_ARGS_SQL;
pub use optimizer::single_phase::{
    single_phase_windowing_rule, single_phase_windowing_rule_for_cluster,
};

/// Every function this crate adds: the one list that registration,
/// completion and `\\h` read.
pub enum Function {
    Scalar(Arc<ScalarUDF>),
    Aggregate(Arc<AggregateUDF>),
    Window(Arc<WindowUDF>),
}

impl Function {
    pub fn name(&self) -> &str {
        match self {
            Function::Scalar(f) => f.name(),
            Function::Aggregate(f) => f.name(),
            Function::Window(f) => f.name(),
        }
    }
}

/// The functions, in the order `\\h` lists them.
pub fn all_functions() -> Vec<Function> {
    vec![
        Function::Aggregate(wa_conversations_udaf()),
        Function::Aggregate(wa_conversation_count_udaf()),
        Function::Aggregate(wa_messages_udaf()),
        Function::Window(wa_label_udwf()),
        Function::Scalar(phone_country_udf()),
        Function::Scalar(wa_row_code_udf()),
        Function::Scalar(wa_key_bucket_udf()),
        Function::Scalar(wa_customer_key_udf()),
        Function::Scalar(wa_conflict_udf()),
    ]
}

/// The names of [`all_functions`].
pub fn function_names() -> Vec<String> {
    all_functions()
        .iter()
        .map(|f| f.name().to_string())
        .collect()
}

/// Registers every wausage function with a session.
pub fn register_all(ctx: &SessionContext) {
    for f in all_functions() {
        match f {
            Function::Scalar(f) => ctx.register_udf(f.as_ref().clone()),
            Function::Aggregate(f) => ctx.register_udaf(f.as_ref().clone()),
            Function::Window(f) => ctx.register_udwf(f.as_ref().clone()),
        }
    }
}

/// Registers every wausage function with any function registry: a
/// `SessionState` being built for a cluster's scheduler or executor, where
/// plans name the functions and each process must resolve them itself.
pub fn register_all_in(registry: &mut dyn FunctionRegistry) -> datafusion::common::Result<()> {
    for f in all_functions() {
        match f {
            Function::Scalar(f) => drop(registry.register_udf(f)?),
            Function::Aggregate(f) => drop(registry.register_udaf(f)?),
            Function::Window(f) => drop(registry.register_udwf(f)?),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_function_name_repeats() {
        let mut names = super::function_names();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "{names:?}");
    }
}
