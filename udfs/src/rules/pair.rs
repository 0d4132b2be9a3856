//! One (account, customer) pair's pass: merge the rows of each message,
//! order the messages by event time (with the spec's tie order) and run the
//! state machines over them.
//!
//! Built for the hot loop of the aggregate: the caller hands in classified
//! rows (no strings but the message id, reached through a closure) and a
//! precomputed hash of each id, so ids are compared only when hashes or
//! event times tie. Scratch buffers live in [`Windowing`] and are reused
//! from pair to pair.

use super::machine::{cbp_pricing, CbpState, PmpState};
use super::types::{ConversationCategory, Kind, Pricing, RuleChoice, RuleSet, Status};
use super::SUPPORTED_TIMES;

/// One log row, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    pub kind: Kind,
    pub status: Status,
    pub sent_at: i64,
    pub delivered_at: Option<i64>,
    /// [`id_hash`] of the row's `message_id`.
    pub id_hash: u64,
}

/// One message of the pair, its rows merged, and what the rules made of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageOutcome {
    /// Index (in the caller's rows) of one of the message's rows.
    pub row: u32,
    pub kind: Kind,
    /// The furthest status of its rows.
    pub status: Status,
    pub sent_at: i64,
    /// The earliest delivery of its rows.
    pub delivered_at: Option<i64>,
    /// Inbound: `sent_at`; outbound: `delivered_at` (none if never delivered).
    pub event_at: Option<i64>,
    /// The 24-hour conversation (rule set `cbp`) it opened, with its expiry;
    /// it opened at `event_at`.
    pub conversation: Option<(ConversationCategory, i64)>,
    /// `cbp` rule 4's last case, for the conversation metric.
    pub conversation_outside_window: bool,
    /// How the chosen rule set prices it; delivered outbound messages only.
    pub pricing: Option<Pricing>,
    /// Its delivery is logged before its send (a skewed clock): its event
    /// is at the send instead.
    pub delivered_before_sent: bool,
}

/// Rows of one message that contradict each other, or an unusable row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub message_id: String,
    pub reason: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "message_id {:?}: {}", self.message_id, self.reason)
    }
}

impl std::error::Error for RuleError {}

/// A fast, fixed (seedless, so deterministic) 64-bit hash of a message id.
pub fn id_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = (bytes.len() as u64) ^ 0x9e37_79b9_7f4a_7c15;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// An event's sort key: its time (offset so that every `i64` orders as an
/// unsigned number), its same-instant tie rank, and its index in `merged`
/// in the low 32 bits. Keys equal above bit 32 tie on time and rank.
fn event_key(time: i64, tie_rank: u8, index: u32) -> u128 {
    let time = (time as u64 ^ (1 << 63)) as u128;
    (time << 40) | (u128::from(tie_rank) << 32) | u128::from(index)
}

/// Bits of a tie rank (0 to 2) in an event key.
const RANK_BITS: u32 = 2;

/// The narrow form of [`event_key`], when a pair's events fit in 64 bits:
/// the time as an offset from the pair's earliest event (`span_bits`
/// wide), the tie rank, and the index in its low `index_bits`. Sorting
/// 64-bit keys is cheaper than 128-bit ones, and a pair's events span
/// weeks, not centuries.
#[derive(Debug, Clone, Copy)]
struct NarrowKeys {
    earliest: i64,
    index_bits: u32,
}

impl NarrowKeys {
    /// The narrow form for events at `earliest..=latest` with indices
    /// below `count`, when they fit.
    fn fitting(earliest: i64, latest: i64, count: usize) -> Option<Self> {
        let span = latest.checked_sub(earliest)? as u64;
        let index_bits = usize::BITS - count.saturating_sub(1).leading_zeros();
        let span_bits = u64::BITS - span.leading_zeros();
        (span_bits + RANK_BITS + index_bits <= u64::BITS).then_some(Self {
            earliest,
            index_bits,
        })
    }

    #[inline]
    fn key(self, time: i64, tie_rank: u8, index: u32) -> u64 {
        debug_assert!(
            tie_rank < 1 << RANK_BITS,
            "a tie rank fits in {RANK_BITS} bits"
        );
        let offset = (time - self.earliest) as u64;
        (offset << (RANK_BITS + self.index_bits))
            | (u64::from(tie_rank) << self.index_bits)
            | u64::from(index)
    }
}

/// Sorts `keyed`, writes their indices (`index` of a key) to `events` in
/// that order, and orders each run of keys that tie on time and rank (the
/// same `tie` of a key) by `by_id`.
fn sort_events<K: Ord + Copy>(
    keyed: &mut [K],
    events: &mut Vec<u32>,
    index: impl Fn(K) -> u32,
    tie: impl Fn(K) -> K,
    by_id: impl Fn(&u32, &u32) -> std::cmp::Ordering,
) {
    keyed.sort_unstable();
    events.clear();
    events.extend(keyed.iter().map(|&k| index(k)));
    let mut start = 0;
    for run in keyed.chunk_by(|&a, &b| tie(a) == tie(b)) {
        let events = &mut events[start..start + run.len()];
        if events.len() > 1 {
            events.sort_unstable_by(&by_id);
        }
        start += run.len();
    }
}

/// Runs the rules pair after pair, reusing its buffers.
#[derive(Debug, Default)]
pub struct Windowing {
    choice: RuleChoice,
    /// `merge`'s table: slot → index into `merged`.
    table: Vec<u32>,
    merged: Vec<MessageOutcome>,
    events: Vec<u32>,
    /// `order_events`' sort keys ([`event_key`], or [`NarrowKeys`]).
    keyed: Vec<u128>,
    narrow: Vec<u64>,
    /// Merged messages without an event (undelivered outbound), by id.
    silent: Vec<u32>,
    row_outcome: Vec<u32>,
    position: Vec<u32>,
}

impl Windowing {
    pub fn new(choice: RuleChoice) -> Self {
        Self {
            choice,
            ..Self::default()
        }
    }

    pub fn choice(&self) -> RuleChoice {
        self.choice
    }

    /// Index into `out` (as filled by the last `run_pair`) of the message
    /// that row `row` belongs to.
    pub fn outcome_of_row(&self, row: usize) -> usize {
        self.row_outcome[row] as usize
    }

    /// Runs the rules over all rows of one pair, appending one outcome per
    /// distinct message to `out` (cleared first): messages with an event in
    /// event order, then undelivered outbound messages by message id. `id(i)` is the
    /// message id of row `i`.
    pub fn run_pair<'a>(
        &mut self,
        rows: &[Row],
        id: impl Fn(u32) -> &'a [u8],
        out: &mut Vec<MessageOutcome>,
    ) -> Result<(), RuleError> {
        out.clear();
        self.merge(rows, &id)?;
        self.order_events(&id);
        self.run(out);
        Ok(())
    }

    /// Fills `merged` with one entry per distinct message id, in the order
    /// of each message's first row. Rows are looked up in a small open
    /// addressing table keyed by their id hash (a pair has tens of rows, so
    /// the table sits in the L1 cache): one probe per row, where sorting the
    /// rows by id cost a comparison sort per pair.
    fn merge<'a>(&mut self, rows: &[Row], id: &impl Fn(u32) -> &'a [u8]) -> Result<(), RuleError> {
        const EMPTY: u32 = u32::MAX;
        let slots = (rows.len() * 2).next_power_of_two().max(16);
        let mask = slots - 1;
        self.table.clear();
        self.table.resize(slots, EMPTY);
        self.merged.clear();
        self.row_outcome.clear();
        self.row_outcome.resize(rows.len(), 0);
        for (index, r) in rows.iter().enumerate() {
            let index = index as u32;
            let mut slot = r.id_hash as usize & mask;
            let found = loop {
                let at = self.table[slot];
                if at == EMPTY {
                    break None;
                }
                let m = &self.merged[at as usize];
                if rows[m.row as usize].id_hash == r.id_hash && id(m.row) == id(index) {
                    break Some(at);
                }
                slot = (slot + 1) & mask;
            };
            let Some(at) = found else {
                self.table[slot] = self.merged.len() as u32;
                self.row_outcome[index as usize] = self.merged.len() as u32;
                self.merged.push(MessageOutcome {
                    row: index,
                    kind: r.kind,
                    status: r.status,
                    sent_at: r.sent_at,
                    delivered_at: r.delivered_at,
                    event_at: None,
                    conversation: None,
                    conversation_outside_window: false,
                    delivered_before_sent: false,
                    pricing: None,
                });
                continue;
            };
            let m = &mut self.merged[at as usize];
            let disagree = |what: &str| RuleError {
                message_id: String::from_utf8_lossy(id(index)).into_owned(),
                reason: format!("its rows disagree on {what}"),
            };
            if r.kind.shape() != m.kind.shape() {
                return Err(disagree("direction, message_type or category"));
            }
            if r.sent_at != m.sent_at {
                return Err(disagree("sent_at"));
            }
            if let (Kind::Inbound { entry_point: a }, Kind::Inbound { entry_point: b }) =
                (m.kind, r.kind)
            {
                m.kind = Kind::Inbound {
                    entry_point: a || b,
                };
            }
            m.status = m.status.max(r.status);
            m.delivered_at = match (m.delivered_at, r.delivered_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.row_outcome[index as usize] = at;
        }
        for m in &mut self.merged {
            let Some(delivered) = m.delivered_at.filter(|_| m.kind.is_outbound()) else {
                m.event_at = (!m.kind.is_outbound()).then_some(m.sent_at);
                continue;
            };
            if !SUPPORTED_TIMES.contains(&delivered) {
                return Err(RuleError {
                    message_id: String::from_utf8_lossy(id(m.row)).into_owned(),
                    reason: format!(
                        "delivered_at {delivered} µs since 1970 is outside the years 1827 to 2112"
                    ),
                });
            }
            // A delivery logged before its send is a skewed clock: the
            // message counts at its send, so that the skew cannot move it
            // into another month; callers warn about it.
            m.delivered_before_sent = delivered < m.sent_at;
            m.event_at = Some(delivered.max(m.sent_at));
        }
        Ok(())
    }

    /// Fills `events` with the merged messages that have an event, in event
    /// order: time, then inbound < template < free-form, then message id.
    ///
    /// Each event is sorted as one integer, `(time, tie rank, index)`, so the
    /// sort compares registers rather than following indices into `merged`;
    /// only runs that tie on time and rank (rare) are then ordered by id.
    fn order_events<'a>(&mut self, id: &impl Fn(u32) -> &'a [u8]) {
        let merged = &self.merged;
        let by_id = |&a: &u32, &b: &u32| id(merged[a as usize].row).cmp(id(merged[b as usize].row));
        let times = merged.iter().filter_map(|m| m.event_at);
        let (earliest, latest) =
            times.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        let events = merged
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.event_at.map(|t| (t, m.kind.tie_rank(), i as u32)));
        match NarrowKeys::fitting(earliest, latest, merged.len()) {
            Some(narrow) => {
                self.narrow.clear();
                self.narrow
                    .extend(events.map(|(t, rank, i)| narrow.key(t, rank, i)));
                let mask = (1u64 << narrow.index_bits) - 1;
                sort_events(
                    &mut self.narrow,
                    &mut self.events,
                    |k| (k & mask) as u32,
                    |k| k >> narrow.index_bits,
                    by_id,
                );
            }
            None => {
                self.keyed.clear();
                self.keyed
                    .extend(events.map(|(t, rank, i)| event_key(t, rank, i)));
                sort_events(
                    &mut self.keyed,
                    &mut self.events,
                    |k| k as u32, // the low bits: the index
                    |k| k >> 32,
                    by_id,
                );
            }
        }
        self.silent.clear();
        self.silent
            .extend((0..merged.len() as u32).filter(|&i| merged[i as usize].event_at.is_none()));
        self.silent
            .sort_unstable_by(|&a, &b| id(merged[a as usize].row).cmp(id(merged[b as usize].row)));
    }

    fn run(&mut self, out: &mut Vec<MessageOutcome>) {
        let mut conversations = CbpState::default();
        // Per-message pricing's state, from the first message priced by
        // `pmp` or `pmp26`: under `auto` it starts from the `cbp` state at
        // the first switch and carries over the second as it is.
        let mut per_message: Option<PmpState> = None;
        // Position in `out` of each merged message, to remap rows at the end.
        let position = &mut self.position;
        position.clear();
        position.resize(self.merged.len(), u32::MAX);
        for &e in &self.events {
            let mut m = self.merged[e as usize];
            let t = m.event_at.expect("events have an event time");
            let rule_set = self.choice.rule_set_at(t);
            if rule_set != RuleSet::Cbp && per_message.is_none() {
                per_message = Some(match self.choice {
                    RuleChoice::Auto => conversations.to_pmp(),
                    _ => PmpState::default(),
                });
            }
            let step = conversations.step(m.kind, t);
            m.conversation = step.opened;
            m.conversation_outside_window = step.outside_window;
            m.pricing = match (&mut per_message, rule_set) {
                (Some(state), RuleSet::Pmp | RuleSet::Pmp26) => state.step(m.kind, t, rule_set),
                _ if m.kind.is_outbound() => Some(cbp_pricing(step, t)),
                _ => None,
            };
            position[e as usize] = out.len() as u32;
            out.push(m);
        }
        for &i in &self.silent {
            position[i as usize] = out.len() as u32;
            out.push(self.merged[i as usize]);
        }
        for slot in &mut self.row_outcome {
            *slot = position[*slot as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::event_key;

    #[test]
    fn narrow_keys_order_as_wide_ones_and_fit_only_when_they_can() {
        use super::NarrowKeys;
        let events = [
            (1_706_745_600_000_000i64, 2u8, 0u32),
            (1_706_745_600_000_000, 0, 1),
            (1_706_745_600_000_001, 1, 2),
            (1_711_929_600_000_000, 0, 3),
            (1_706_745_600_000_000, 0, 4),
        ];
        let narrow = NarrowKeys::fitting(1_706_745_600_000_000, 1_711_929_600_000_000, 5)
            .expect("two months fit");
        let mut by_narrow = events;
        by_narrow.sort_by_key(|&(t, r, i)| narrow.key(t, r, i));
        let mut by_wide = events;
        by_wide.sort_by_key(|&(t, r, i)| event_key(t, r, i));
        assert_eq!(by_narrow, by_wide);
        assert_eq!(narrow.key(1_706_745_600_000_000, 0, 4) & 7, 4);
        // A span of centuries, or a reversed one, takes the wide keys.
        assert!(NarrowKeys::fitting(i64::MIN, i64::MAX, 5).is_none());
        assert!(NarrowKeys::fitting(-(1 << 61), 1 << 61, 2).is_none());
        assert!(NarrowKeys::fitting(5, 4, 2).is_none());
        assert!(NarrowKeys::fitting(0, (1 << 61) - 1, 2).is_some());
        assert!(NarrowKeys::fitting(0, (1 << 61) - 1, 3).is_none());
    }

    #[test]
    fn event_keys_order_by_time_then_rank_then_index_across_the_epoch() {
        let ordered = [
            event_key(i64::MIN, 2, 9),
            event_key(-1, 0, 5),
            event_key(-1, 1, 0),
            event_key(0, 0, 3),
            event_key(0, 0, 4),
            event_key(1, 0, 0),
            event_key(i64::MAX, 0, u32::MAX),
        ];
        assert!(ordered.windows(2).all(|w| w[0] < w[1]));
        // Time and rank tie exactly when the keys agree above bit 32.
        assert_eq!(event_key(7, 1, 1) >> 32, event_key(7, 1, 2) >> 32);
        assert_ne!(event_key(7, 1, 1) >> 32, event_key(7, 2, 1) >> 32);
        assert_eq!(event_key(7, 1, 1234) as u32, 1234);
    }
}
