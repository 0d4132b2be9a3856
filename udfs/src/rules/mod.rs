//! The WhatsApp billing rules of `docs/rules.md`, as a
//! pure-Rust state machine with no Arrow or DataFusion types, so that it can
//! be read against the spec line by line and tested directly on its vectors.
//!
//! The entry point is [`Windowing::run_pair`]: it takes every log row of one
//! (account, customer) pair, merges the rows of each message, orders the
//! messages by event time and runs one pass that yields, per message, the
//! 24-hour conversation it opened (rule set `cbp`, always computed: it is the
//! usage metric) and its pricing under the chosen rule set (`cbp`, `pmp`,
//! `pmp26` or `auto`, which switches at 2025-07-01T00:00Z and at
//! 2026-10-01T00:00Z).

mod machine;
mod pair;
mod types;

#[cfg(test)]
mod tests;

pub use machine::{CbpState, PmpState};
pub use pair::{id_hash, MessageOutcome, Row, RuleError, Windowing};
pub use types::{
    customer_key, customer_key_bytes, ConversationCategory, Kind, Pricing, PricingCategory,
    RuleChoice, RuleSet, Status, TemplateCategory,
};

/// Timestamps are microseconds since the Unix epoch, UTC.
pub const MICROS_PER_HOUR: i64 = 3_600_000_000;
/// Length of a conversation, of the customer service window and of a pending entry point.
pub const DAY: i64 = 24 * MICROS_PER_HOUR;
/// Length of a free entry point conversation (or, under `pmp`, window).
pub const FREE_ENTRY_LENGTH: i64 = 72 * MICROS_PER_HOUR;
/// 2025-07-01T00:00Z: per-message pricing (`pmp`) replaces conversations.
pub const PMP_START: i64 = 1_751_328_000 * 1_000_000;
/// 2026-10-01T00:00Z: revised per-message pricing (`pmp26`): service
/// messages and utility templates inside the CSW are charged.
pub const PMP26_START: i64 = 1_790_812_800 * 1_000_000;
/// The times the rules take (microseconds): mid-1827 to mid-2112, what the
/// windowing's row buffer packs `sent_at` into. A `delivered_at` outside is
/// an input error naming the message.
pub const SUPPORTED_TIMES: std::ops::Range<i64> = -(1 << 52)..(1 << 52);
/// 2024-11-01T00:00Z: service conversations opened from then on are free.
pub const FREE_SERVICE_START: i64 = 1_730_419_200 * 1_000_000;
