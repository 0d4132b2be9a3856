//! The message-log columns the windowing aggregates take, in their argument forms, and their
//! classification into the compact codes the rules run on.

pub mod columns;
