//! A batch's grouping keys coded once, before its rows are split among
//! the windowing's partitions ([`crate::physical_plan::bucketed`]).
//!
//! The by-key plan ([`crate::optimizer::by_key_plan`]) otherwise reads the same keys
//! three times: `wa_customer_key` writes the customer column again without
//! its `+`, `wa_key_bucket` hashes both keys into a bucket column, and each
//! partition's aggregate parses them once more into its key code. In one
//! process the operator does all
//! three in one sequential pass over each batch, with one key table for all
//! its partitions, so that a code means the same in each of them.

use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::{Array, ArrayRef, StringViewArray};
use arrow::datatypes::DataType;
use datafusion::common::{HashMap, Result};

use crate::keys::by_key::{
    digits_code, inline_code, prefix_bytes, KeyCodes, RecentPrefixes, SideTable,
};
use crate::keys::hash::{bucket_of, bytes_hash, fold, MIX, NULL_HASH};
use crate::rules::customer_key_bytes;

/// Side tables for the keys a code cannot hold inline (keys that are not
/// digit strings of up to 15 bytes, nulls, and every key of an account
/// after the 512th), spread by the key's hash so that input tasks coding
/// such keys on every row rarely wait for each other (with one table, a
/// log of non-numeric customer ids spends its time waiting on the lock).
const SIDE_TABLES: usize = 64;
/// A side code is `SIDE | table << SIDE_TABLE_SHIFT | index in the table`.
const SIDE_TABLE_SHIFT: u32 = 56;

/// The key table of one operator's run, shared by its input tasks (which
/// code) and its partitions (which decode).
#[derive(Debug)]
pub struct SharedKeyCodes {
    /// The prefixes (accounts), numbered for every partition at once.
    table: Mutex<KeyCodes>,
    side: Vec<Mutex<SideTable>>,
    /// The last key's leading `+`s are not part of it: the input holds the
    /// customer's number as logged, and the key is `wa_customer_key` of it.
    plus_stripped: bool,
}

impl SharedKeyCodes {
    /// A table for keys of `data_types` (the keys are decoded as these).
    pub fn new(data_types: Vec<DataType>, plus_stripped: bool) -> Self {
        Self {
            table: Mutex::new(KeyCodes::new(data_types)),
            side: (0..SIDE_TABLES).map(|_| Mutex::default()).collect(),
            plus_stripped,
        }
    }

    /// The keys of `codes`, one array per key, of the types `types`.
    pub fn decode(&self, codes: &[u64], types: &[DataType]) -> Result<Vec<ArrayRef>> {
        let side: Vec<MutexGuard<'_, SideTable>> = self.side.iter().map(lock).collect();
        let resolve = |code: u64| {
            let table = (code >> SIDE_TABLE_SHIFT) as usize & (SIDE_TABLES - 1);
            side[table].entry((code & ((1 << SIDE_TABLE_SHIFT) - 1)) as usize)
        };
        self.table().decode_with(codes, types, &resolve)
    }

    fn table(&self) -> MutexGuard<'_, KeyCodes> {
        lock(&self.table)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock fails the query anyway.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A prefix a [`KeyCoder`] has seen: its index in the shared table and the
/// hash of its keys.
#[derive(Debug, Clone, Copy)]
struct Prefix {
    index: u32,
    hash: u64,
}

/// One input task's coder: each row's key code (as [`KeyCodes`] codes it)
/// and its bucket (of [`crate::keys::hash::KEY_BUCKETS`]), a function of
/// the keys alone. It locks the prefix table only for a prefix it has not
/// seen, and a side table once per batch for the rows it codes.
#[derive(Debug)]
pub struct KeyCoder {
    shared: Arc<SharedKeyCodes>,
    /// Recent prefixes, by view.
    recent: RecentPrefixes<Prefix>,
    /// Every other prefix seen, by [`prefix_bytes`].
    seen: HashMap<Box<[u8]>, Prefix>,
    scratch: Vec<u8>,
    /// Rows whose code a side table gives: the row, its prefix index and
    /// its side table.
    side: Vec<(usize, u32, usize)>,
    /// The last batch's codes and buckets, by row.
    pub codes: Vec<u64>,
    pub buckets: Vec<u32>,
}

impl KeyCoder {
    pub fn new(shared: Arc<SharedKeyCodes>) -> Self {
        Self {
            shared,
            recent: RecentPrefixes::new(),
            seen: HashMap::new(),
            scratch: vec![],
            side: vec![],
            codes: vec![],
            buckets: vec![],
        }
    }

    /// Codes every row of `keys` (the key columns, the last one the
    /// customer) into `codes` and `buckets`.
    pub fn code_batch(&mut self, keys: &[StringViewArray]) {
        let (last, prefix) = keys.split_last().expect("at least one key");
        let rows = last.len();
        self.codes.clear();
        self.buckets.clear();
        self.side.clear();
        let plus_stripped = self.shared.plus_stripped;
        for i in 0..rows {
            let p = self.prefix(prefix, i);
            let key = key_at(last, i, plus_stripped);
            let (code, hash) = match key {
                Some(bytes) => match digits_code(bytes) {
                    // Digits hash by their code: the same key always takes
                    // this path, whatever its prefix's index.
                    Some(digits) => (inline_code(p.index, digits), digits.wrapping_mul(MIX)),
                    None => (None, bytes_hash(bytes)),
                },
                None => (None, NULL_HASH),
            };
            self.codes.push(code.unwrap_or_else(|| {
                let table = (hash >> 32) as usize % SIDE_TABLES;
                self.side.push((i, p.index, table));
                0
            }));
            self.buckets.push(bucket_of(fold(p.hash, hash)));
        }
        self.side.sort_unstable_by_key(|&(_, _, table)| table);
        for rows in self.side.chunk_by(|a, b| a.2 == b.2) {
            let t = rows[0].2;
            let mut table = lock(&self.shared.side[t]);
            let tag = (t as u64) << SIDE_TABLE_SHIFT;
            for &(i, p, _) in rows {
                // SAFETY: the bytes of a `str` less ASCII bytes at its ends.
                let key = key_at(last, i, plus_stripped)
                    .map(|b| unsafe { std::str::from_utf8_unchecked(b) });
                self.codes[i] = table.code(p, key, tag, &mut self.scratch);
            }
        }
    }

    /// Row `i`'s prefix (the keys before the last).
    #[inline]
    fn prefix(&mut self, prefix: &[StringViewArray], i: usize) -> Prefix {
        let view = RecentPrefixes::<Prefix>::view(prefix, i);
        if let Some(p) = self.recent.get(view) {
            return p;
        }
        prefix_bytes(prefix, i, &mut self.scratch);
        let p = match self.seen.get(self.scratch.as_slice()) {
            Some(&p) => p,
            None => {
                let index = self.shared.table().prefix_index(prefix, i);
                let hash = prefix.iter().fold(0, |h, k| {
                    let key = if k.is_valid(i) {
                        bytes_hash(k.value(i).as_bytes())
                    } else {
                        NULL_HASH
                    };
                    fold(h, key)
                });
                let p = Prefix { index, hash };
                self.seen.insert(self.scratch.as_slice().into(), p);
                p
            }
        };
        self.recent.remember(view, p);
        p
    }
}

/// Row `i` of the last key's column: its bytes, as the customer key
/// ([`customer_key_bytes`]) when the column is the number as logged;
/// `None` for null.
#[inline]
fn key_at(last: &StringViewArray, i: usize, plus_stripped: bool) -> Option<&[u8]> {
    if last.is_null(i) {
        return None;
    }
    let bytes = last.value(i).as_bytes();
    Some(match plus_stripped {
        true => {
            // Numbers with and without a `+` alternate at random in a log
            // (one account logs E.164 with it, another without): skip one
            // `+` without a branch; anything else around the digits (more
            // `+`, blanks) takes the one definition.
            let one = usize::from(bytes.first() == Some(&b'+'));
            let rest = &bytes[one..];
            match (rest.first(), rest.last()) {
                (Some(first), Some(last)) if first.is_ascii_digit() && last.is_ascii_digit() => {
                    rest
                }
                _ => customer_key_bytes(bytes),
            }
        }
        false => bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::hash::KEY_BUCKETS;
    use arrow::array::AsArray;

    fn keys(rows: &[(Option<&str>, Option<&str>)]) -> [StringViewArray; 2] {
        [
            StringViewArray::from_iter(rows.iter().map(|r| r.0)),
            StringViewArray::from_iter(rows.iter().map(|r| r.1)),
        ]
    }

    #[test]
    fn codes_are_equal_exactly_when_the_keys_are_and_buckets_depend_on_the_keys_alone() {
        let customers = [
            Some("447700900123"),
            Some("+447700900123"),
            Some("++447700900123"),
            Some("0447700900123"),
            Some("123456789012345"),
            Some("+1234567890123456"),
            Some("+"),
            Some(""),
            Some("cust-7"),
            Some("+cust-7"),
            None,
        ];
        let accounts = [
            Some("acct-1"),
            Some("an-account-of-many-bytes"),
            None,
            Some("acct-2"),
        ];
        let mut rows = vec![];
        for a in accounts {
            for c in customers {
                rows.push((a, c));
            }
        }
        rows.extend(rows.clone().iter().rev());
        let stripped: Vec<(Option<&str>, Option<&str>)> = rows
            .iter()
            .map(|&(a, c)| (a, c.map(crate::rules::customer_key)))
            .collect();

        // Two coders (two input tasks) over one table, each given half the
        // batches, agree with each other.
        let shared = Arc::new(SharedKeyCodes::new(vec![DataType::Utf8View; 2], true));
        let mut first = KeyCoder::new(Arc::clone(&shared));
        let mut second = KeyCoder::new(Arc::clone(&shared));
        let half = rows.len() / 2;
        first.code_batch(&keys(&rows[..half]));
        second.code_batch(&keys(&rows[half..]));
        let codes: Vec<u64> = first.codes.iter().chain(&second.codes).copied().collect();
        let buckets: Vec<u32> = first
            .buckets
            .iter()
            .chain(&second.buckets)
            .copied()
            .collect();
        for i in 0..rows.len() {
            for j in 0..rows.len() {
                let same = stripped[i] == stripped[j];
                assert_eq!(codes[i] == codes[j], same, "{:?} {:?}", rows[i], rows[j]);
                if same {
                    assert_eq!(buckets[i], buckets[j]);
                }
            }
        }
        assert!(buckets.iter().all(|&b| b < KEY_BUCKETS));

        // They decode to the keys `wa_customer_key` would have given.
        let decoded = shared
            .decode(&codes, &[DataType::Utf8, DataType::Utf8])
            .unwrap();
        let text = |a: &ArrayRef| -> Vec<Option<String>> {
            a.as_string::<i32>()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect()
        };
        let owned = |v: Option<&str>| v.map(str::to_string);
        assert_eq!(
            text(&decoded[0]),
            stripped.iter().map(|r| owned(r.0)).collect::<Vec<_>>()
        );
        assert_eq!(
            text(&decoded[1]),
            stripped.iter().map(|r| owned(r.1)).collect::<Vec<_>>()
        );

        // A fresh table that sees the accounts in another order gives other
        // codes but the same buckets.
        let reversed: Vec<_> = rows.iter().rev().copied().collect();
        let other = Arc::new(SharedKeyCodes::new(vec![DataType::Utf8View; 2], true));
        let mut coder = KeyCoder::new(other);
        coder.code_batch(&keys(&reversed));
        let again: Vec<u32> = coder.buckets.iter().rev().copied().collect();
        assert_eq!(again, buckets);
    }

    #[test]
    fn accounts_past_the_inline_ones_code_through_the_table_alike_in_every_task() {
        // 600 accounts: those numbered 512 and up code every customer
        // through the side table, whichever task sees them first.
        let accounts: Vec<String> = (0..600).map(|a| format!("a{a}")).collect();
        let rows: Vec<(Option<&str>, Option<&str>)> = accounts
            .iter()
            .flat_map(|a| {
                [
                    (Some(a.as_str()), Some("+447700900123")),
                    (Some(a.as_str()), Some("x")),
                ]
            })
            .collect();
        let shared = Arc::new(SharedKeyCodes::new(vec![DataType::Utf8View; 2], true));
        let mut first = KeyCoder::new(Arc::clone(&shared));
        let mut second = KeyCoder::new(Arc::clone(&shared));
        first.code_batch(&keys(&rows));
        let reversed: Vec<_> = rows.iter().rev().copied().collect();
        second.code_batch(&keys(&reversed));
        let again: Vec<u64> = second.codes.iter().rev().copied().collect();
        assert_eq!(first.codes, again);
        let distinct: std::collections::HashSet<u64> = first.codes.iter().copied().collect();
        assert_eq!(distinct.len(), rows.len());
        let decoded = shared
            .decode(&first.codes, &[DataType::Utf8, DataType::Utf8])
            .unwrap();
        let customers: Vec<&str> = decoded[1].as_string::<i32>().iter().flatten().collect();
        assert_eq!(customers[1024], "447700900123");
        assert_eq!(customers[1025], "x");
    }

    #[test]
    fn buckets_spread_customers_and_accounts() {
        let numbers: Vec<String> = (0..10_000).map(|i| format!("+4477009{i:05}")).collect();
        let rows: Vec<(Option<&str>, Option<&str>)> = ["acct-1", "a-much-longer-account-id"]
            .iter()
            .flat_map(|&a| numbers.iter().map(move |n| (Some(a), Some(n.as_str()))))
            .collect();
        let shared = Arc::new(SharedKeyCodes::new(vec![DataType::Utf8View; 2], true));
        let mut coder = KeyCoder::new(shared);
        coder.code_batch(&keys(&rows));
        let buckets = &coder.buckets;
        // 20,000 keys thrown at random into 16,384 buckets fill about 11,500.
        let distinct: std::collections::HashSet<u32> = buckets.iter().copied().collect();
        assert!(distinct.len() > 10_500, "{}", distinct.len());
        let differ = (0..numbers.len())
            .filter(|&i| buckets[i] != buckets[numbers.len() + i])
            .count();
        assert!(differ > 9_900, "{differ}");
    }

    #[test]
    fn keys_keep_their_plus_unless_told_and_one_key_alone_codes() {
        let shared = Arc::new(SharedKeyCodes::new(vec![DataType::Utf8View], false));
        let mut coder = KeyCoder::new(Arc::clone(&shared));
        let column = StringViewArray::from_iter_values(["+12", "12", "+12", "x"]);
        coder.code_batch(&[column]);
        let codes = coder.codes.clone();
        assert_eq!(codes[0], codes[2]);
        assert_ne!(codes[0], codes[1]);
        let decoded = shared.decode(&codes, &[DataType::Utf8View]).unwrap();
        let decoded: Vec<&str> = decoded[0].as_string_view().iter().flatten().collect();
        assert_eq!(decoded, ["+12", "12", "+12", "x"]);
    }
}
