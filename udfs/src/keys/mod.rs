//! The grouping keys (account, customer) of the windowing: the by-key form of the aggregates
//! and the key coder that codes and buckets them once per batch.

pub mod by_key;
pub mod hash;
pub mod key_coder;
