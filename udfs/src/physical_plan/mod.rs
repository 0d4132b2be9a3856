//! The windowing operator: in one process, and per partition after a
//! cluster's shuffle.

pub mod bucketed;
pub mod spill_ranges;
