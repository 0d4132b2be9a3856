//! The grouped accumulator every windowing aggregate buffers its rows in.

pub mod buffer;
