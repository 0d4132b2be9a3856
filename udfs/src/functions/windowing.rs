//! The windowing aggregates: the functions whose accumulator buffers each
//! group's rows and runs the rules over them at the end. The optimizer runs
//! exactly these in one phase ([`crate::optimizer::single_phase`]) and hands
//! each one's [`RowsAccumulatorFactory`] to the operator that feeds them
//! rows by index ([`crate::physical_plan::bucketed`]), which therefore
//! knows no function by type.

use datafusion::common::Result;
use datafusion::logical_expr::function::AccumulatorArgs;

use crate::accumulator::buffer::{RowsAccumulator, RowsAccumulatorFactory};
use crate::functions::{wa_conversation_count, wa_conversations, wa_messages};

/// A windowing aggregate, by the name it is registered under.
#[derive(Debug)]
pub struct WindowingAggregate {
    pub name: &'static str,
    pub rows_accumulator: RowsAccumulatorFactory,
}

/// Every windowing aggregate.
pub static WINDOWING_AGGREGATES: [WindowingAggregate; 3] = [
    WindowingAggregate {
        name: "wa_conversations",
        rows_accumulator: conversations,
    },
    WindowingAggregate {
        name: "wa_conversation_count",
        rows_accumulator: conversation_count,
    },
    WindowingAggregate {
        name: "wa_messages",
        rows_accumulator: messages,
    },
];

/// The windowing aggregate registered as `name`, if it is one.
pub fn windowing_aggregate(name: &str) -> Option<&'static WindowingAggregate> {
    WINDOWING_AGGREGATES.iter().find(|w| w.name == name)
}

fn conversations(args: &AccumulatorArgs) -> Result<Box<dyn RowsAccumulator>> {
    Ok(Box::new(wa_conversations::keyed_groups(args)))
}

fn conversation_count(args: &AccumulatorArgs) -> Result<Box<dyn RowsAccumulator>> {
    Ok(Box::new(wa_conversation_count::keyed_groups(args)?))
}

fn messages(args: &AccumulatorArgs) -> Result<Box<dyn RowsAccumulator>> {
    Ok(Box::new(wa_messages::keyed_groups(args)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_windowing_aggregate_is_a_registered_aggregate() {
        let aggregates: Vec<String> = crate::all_functions()
            .iter()
            .filter(|f| matches!(f, crate::Function::Aggregate(_)))
            .map(|f| f.name().to_string())
            .collect();
        for w in &WINDOWING_AGGREGATES {
            assert!(aggregates.iter().any(|a| a == w.name), "{}", w.name);
            assert_eq!(windowing_aggregate(w.name).map(|f| f.name), Some(w.name));
        }
        assert!(windowing_aggregate("count").is_none());
    }
}
