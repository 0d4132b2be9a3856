//! The in-process windowing operator.

pub mod bucketed;
pub mod spill_ranges;
