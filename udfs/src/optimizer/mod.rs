//! The physical optimizer rule that plans the windowing aggregates in one phase, the by-key
//! plan it builds, and the pass that tells the operator which fields a query reads.

pub mod by_key_plan;
pub mod single_phase;
pub mod used_fields;
