//! Warnings the windowing raises while it runs, for the statement runner to
//! print once a statement ends. DataFusion has no channel from a function
//! back to the caller short of an error, so they are collected per process
//! (a cluster's executors print their own).

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

/// How many ids a warning names.
const NAMED: usize = 5;

/// Messages whose delivery is logged before their send (a skewed clock),
/// counted once each however many views ran the rules over them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveredBeforeSent {
    pub messages: u64,
    /// The smallest few ids, so that the warning reads the same however
    /// the log is split.
    pub first_ids: Vec<String>,
}

#[derive(Default)]
struct Collected {
    seen: HashSet<u64>,
    first_ids: Vec<String>,
}

static DELIVERED_BEFORE_SENT: LazyLock<Mutex<Collected>> = LazyLock::new(Default::default);

/// Notes one message whose delivery precedes its send (`id_hash` as the
/// rules core hashes its id).
pub fn note_delivered_before_sent(id: &str, id_hash: u64) {
    let mut c = DELIVERED_BEFORE_SENT
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if !c.seen.insert(id_hash) {
        return;
    }
    if c.first_ids.len() < NAMED || c.first_ids.last().is_some_and(|last| id < last.as_str()) {
        let at = c.first_ids.partition_point(|k| k.as_str() < id);
        c.first_ids.insert(at, id.to_string());
        c.first_ids.truncate(NAMED);
    }
}

/// What was noted since the last call, if anything.
pub fn take_delivered_before_sent() -> Option<DeliveredBeforeSent> {
    let mut c = DELIVERED_BEFORE_SENT
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let taken = std::mem::take(&mut *c);
    (!taken.seen.is_empty()).then_some(DeliveredBeforeSent {
        messages: taken.seen.len() as u64,
        first_ids: taken.first_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_message_once_and_names_the_smallest_ids() {
        take_delivered_before_sent();
        for id in ["m9", "m3", "m7", "m3", "m1", "m8", "m2", "m5"] {
            note_delivered_before_sent(id, crate::rules::id_hash(id.as_bytes()));
        }
        let w = take_delivered_before_sent().expect("noted");
        assert_eq!(w.messages, 7);
        assert_eq!(w.first_ids, ["m1", "m2", "m3", "m5", "m7"]);
        assert_eq!(take_delivered_before_sent(), None);
    }
}
