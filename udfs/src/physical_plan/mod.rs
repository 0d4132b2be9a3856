//! The in-process windowing operator.

pub mod bucketed;
