//! The by-key form of a windowing aggregate: one DataFusion group holds the
//! rows of many (account, customer) pairs (a bucket, `wa_key_bucket`), and
//! the aggregate splits them by the grouping keys it is handed as its first
//! arguments.
//!
//! DataFusion's hash table over a million (account, customer) keys misses
//! the cache on almost every row. Grouped by (account, bucket) the table
//! stays in the cache but still hashes and compares two columns per row;
//! grouped by one `UInt32` bucket of all
//! the keys it is DataFusion's primitive table, and the rows a group
//! gathers are split by their keys where they already sit together, after
//! the aggregate's sort. The rule in [`crate::optimizer::single_phase`] builds this
//! form; SQL cannot write it. Its value per group is a list of
//! `{key0, …, value}` structs, one per pair, that the rule's `UnnestExec`
//! turns back into one row per pair.
//!
//! A row's keys travel in the buffered row as one `u64` code ([`KeyCodes`]),
//! equal exactly when the keys are.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, LargeStringBuilder, StringBuilder, StringViewArray, StringViewBuilder,
};
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{exec_err, HashMap, Result};

/// The types of an aggregate's arguments.
pub fn arg_types<'a>(
    args: &'a datafusion::logical_expr::function::AccumulatorArgs,
) -> Vec<&'a DataType> {
    args.expr_fields.iter().map(|f| f.data_type()).collect()
}

/// How many key arguments lead the by-key form: string keys, then the
/// compact form (`message_id`, a `UInt8` code, `sent_at`, `delivered_at`);
/// 0 for the other forms.
pub fn key_count(types: &[&DataType]) -> usize {
    let Some(code_at) = types.iter().position(|t| **t == DataType::UInt8) else {
        return 0;
    };
    let keys = code_at.saturating_sub(1);
    let shaped = types.len() >= code_at + 3 && types[..code_at].iter().all(|t| is_text(t));
    if shaped {
        keys
    } else {
        0
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The value type of the by-key form of an aggregate whose plain value is
/// `value`: a list of `{key0, …, value}`, one per distinct keys of the group.
pub fn list_type(keys: &[DataType], value: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(
        DataType::Struct(struct_fields(keys, value)),
        false,
    )))
}

/// The `{key0, …, value}` struct's fields.
pub fn struct_fields(keys: &[DataType], value: DataType) -> Fields {
    let mut fields: Vec<Field> = keys
        .iter()
        .enumerate()
        .map(|(i, t)| Field::new(format!("key{i}"), t.clone(), true))
        .collect();
    fields.push(Field::new("value", value, true));
    Fields::from(fields)
}

/// An aggregate's return type for `arg_types`: `value`, or its by-key list.
pub fn return_type(arg_types: &[DataType], value: DataType) -> DataType {
    let types: Vec<&DataType> = arg_types.iter().collect();
    match key_count(&types) {
        0 => value,
        n => list_type(&arg_types[..n], value),
    }
}

/// The state columns of the buffered rows: one list per buffered column
/// (a plain aggregate's whole state; the by-key form adds its keys).
pub fn row_state_fields(name: &str) -> Vec<FieldRef> {
    let list = |col: &str, item: DataType, nullable: bool| -> FieldRef {
        Arc::new(Field::new(
            format!("{name}[{col}]"),
            DataType::List(Arc::new(Field::new_list_field(item, nullable))),
            true,
        ))
    };
    vec![
        list("message_id", DataType::Utf8View, false),
        list("sent_at", DataType::Int64, false),
        list("delivered_at", DataType::Int64, true),
        list("code", DataType::UInt8, false),
    ]
}

/// The state fields for `input_fields`: the buffered columns, and each key
/// of every row in the by-key form.
pub fn state_fields(name: &str, input_fields: &[FieldRef]) -> Vec<FieldRef> {
    let mut fields = row_state_fields(name);
    let types: Vec<&DataType> = input_fields.iter().map(|f| f.data_type()).collect();
    fields.extend((0..key_count(&types)).map(|i| key_state_field(name, i)));
    fields
}

pub fn key_state_field(name: &str, i: usize) -> FieldRef {
    Arc::new(Field::new(
        format!("{name}[key{i}]"),
        DataType::List(Arc::new(Field::new_list_field(DataType::Utf8View, true))),
        true,
    ))
}

/// The top bit of a code that is an index into a side table.
pub(crate) const SIDE: u64 = 1 << 63;
const PREFIX_SHIFT: u32 = 54;
const DIGITS_SHIFT: u32 = 50;
/// E.164 numbers have at most 15 digits; 10^15 < 2^50.
const MAX_DIGITS: usize = 15;
/// Prefixes (the keys before the last) with an index below this are coded
/// inline; later ones go to the side table.
const INLINE_PREFIXES: usize = 1 << (63 - PREFIX_SHIFT);
/// How many one-key prefixes are compared by view before hashing.
const RECENT_PREFIXES: usize = 16;

/// One-key prefixes (an account) whose view is inline (equal exactly when
/// the strings are), with what is known of each: a log interleaves a few
/// accounts, and comparing a handful of views is faster than hashing
/// them. Prefixes of several keys, or of
/// long strings, are not kept here.
#[derive(Debug)]
pub(crate) struct RecentPrefixes<T>(Vec<(u128, T)>);

impl<T: Copy> RecentPrefixes<T> {
    pub(crate) fn new() -> Self {
        Self(vec![])
    }

    /// The view of row `i`'s prefix when it is one inline key.
    #[inline]
    pub(crate) fn view(prefix: &[StringViewArray], i: usize) -> Option<u128> {
        match prefix {
            [k] if k.is_valid(i) && (k.views()[i] as u32) <= 12 => Some(k.views()[i]),
            _ => None,
        }
    }

    /// The value kept for `view`. Every kept view is compared, with no
    /// early exit: a log interleaves its accounts at random, and a loop
    /// that stopped at the match mispredicted its exit about once a row
    /// (the costliest branch of the windowing, by valgrind's branch
    /// simulation); a loop of fixed length predicts.
    #[inline]
    pub(crate) fn get(&self, view: Option<u128>) -> Option<T> {
        let view = view?;
        let mut hit = usize::MAX;
        for (k, (v, _)) in self.0.iter().enumerate() {
            hit = std::hint::select_unpredictable(*v == view, k, hit);
        }
        self.0.get(hit).map(|&(_, t)| t)
    }

    /// Keeps `value` for `view`, while there is room.
    pub(crate) fn remember(&mut self, view: Option<u128>, value: T) {
        if let Some(view) = view.filter(|_| self.0.len() < RECENT_PREFIXES) {
            self.0.push((view, value));
        }
    }
}

/// Keys a code cannot hold inline, numbered as first seen: a side table.
/// Entries are found by their bytes ([`side_entry`]) without allocating.
#[derive(Debug, Default)]
pub(crate) struct SideTable {
    codes: HashMap<Box<[u8]>, u64>,
    keys: Vec<(u32, Option<Box<str>>)>,
}

impl SideTable {
    /// The code of prefix `p` and last key `key`: `SIDE | tag | index`,
    /// the entry numbered if new. `scratch` is working space.
    pub(crate) fn code(
        &mut self,
        p: u32,
        key: Option<&str>,
        tag: u64,
        scratch: &mut Vec<u8>,
    ) -> u64 {
        side_entry(p, key.map(str::as_bytes), scratch);
        if let Some(&code) = self.codes.get(scratch.as_slice()) {
            return code;
        }
        let code = SIDE | tag | self.keys.len() as u64;
        self.keys.push((p, key.map(Into::into)));
        self.codes.insert(scratch.as_slice().into(), code);
        code
    }

    /// Entry `index`: its prefix index and last key.
    pub(crate) fn entry(&self, index: usize) -> (u32, Option<&str>) {
        let (p, key) = &self.keys[index];
        (*p, key.as_deref())
    }
}

/// A side entry as bytes: the prefix index, then a null mark or the key.
fn side_entry(p: u32, key: Option<&[u8]>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&p.to_le_bytes());
    match key {
        Some(key) => {
            out.push(1);
            out.extend_from_slice(key);
        }
        None => out.push(0),
    }
}

/// A last key of at most [`MAX_DIGITS`] ASCII digits as `length << 50 |
/// value` (leading zeros count through the length); `None` otherwise.
///
/// Once per row of the windowing, where a byte-at-a-time loop (a multiply
/// and an add chained through every digit) would dominate the key coding:
/// keys of 8 bytes or more are checked and converted
/// eight digits at a time in registers (SWAR).
#[inline]
pub(crate) fn digits_code(bytes: &[u8]) -> Option<u64> {
    let n = bytes.len();
    if n > MAX_DIGITS {
        return None;
    }
    if n < 8 {
        return digits_code_bytewise(bytes);
    }
    // The digits right-aligned in 16 bytes, '0's before them: the first
    // and the last 8 bytes, which overlap when `n < 16`, agree where they do.
    let first = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let last = u64::from_le_bytes(bytes[n - 8..].try_into().expect("8 bytes"));
    let pad = 16 - n; // 1..=8 bytes of '0' (n <= 15)
    let high = if pad == 8 {
        ZEROS
    } else {
        (first << (8 * pad)) | (ZEROS >> (8 * (8 - pad)))
    };
    if !all_digits(high) || !all_digits(last) {
        return None;
    }
    let value = eight_digits(high) * 100_000_000 + eight_digits(last);
    Some(((n as u64) << DIGITS_SHIFT) | value)
}

/// Eight ASCII '0's.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// Whether each of the 8 bytes is an ASCII digit: its high nibble is 3,
/// and adding 6 leaves it 3 (a carry into a byte comes only from a byte
/// below it that is not a digit either).
#[inline]
fn all_digits(x: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    ((x & HIGH) | ((x.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4)) == 0x3333_3333_3333_3333
}

/// The value of 8 ASCII digits, the first in the lowest byte.
#[inline]
fn eight_digits(x: u64) -> u64 {
    let d = x - ZEROS;
    // Pairs, then fours, then all eight (Lemire's method).
    let pairs = d.wrapping_mul(10).wrapping_add(d >> 8);
    let mask = 0x0000_00FF_0000_00FF;
    ((pairs & mask)
        .wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add(((pairs >> 16) & mask).wrapping_mul(1 + (10_000 << 32))))
        >> 32
}

/// [`digits_code`] a byte at a time.
#[inline]
fn digits_code_bytewise(bytes: &[u8]) -> Option<u64> {
    if bytes.len() > MAX_DIGITS {
        return None;
    }
    // One pass: the value, and whether every byte was a digit.
    let mut value = 0u64;
    let mut digits = true;
    for &b in bytes {
        let d = b.wrapping_sub(b'0');
        digits &= d < 10;
        value = value.wrapping_mul(10).wrapping_add(u64::from(d));
    }
    digits.then_some(((bytes.len() as u64) << DIGITS_SHIFT) | value)
}

/// The code of a digits key ([`digits_code`]) under prefix `p`, when `p`
/// is low enough to be coded inline.
#[inline]
pub(crate) fn inline_code(p: u32, digits: u64) -> Option<u64> {
    ((p as usize) < INLINE_PREFIXES).then_some((u64::from(p) << PREFIX_SHIFT) | digits)
}

/// Row `i` of the prefix columns as one byte string, equal exactly when
/// the tuples are: each key as a null mark, or its length and bytes.
pub(crate) fn prefix_bytes(prefix: &[StringViewArray], i: usize, out: &mut Vec<u8>) {
    out.clear();
    for k in prefix {
        if k.is_valid(i) {
            let v = k.value(i).as_bytes();
            out.push(1);
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        } else {
            out.push(0);
        }
    }
}

/// A row's keys as one `u64` code, one table per aggregate (per partition),
/// or per operator run ([`crate::keys::key_coder`]), equal exactly when the keys
/// are:
/// - the keys before the last (the account) are numbered as they are first
///   seen: the prefix index;
/// - a last key of up to 15 digits (a phone number) is coded with the
///   prefix index as `prefix << 54 | length << 50 | value`;
/// - anything else (longer keys, other text, nulls, a 513th prefix) is an
///   index into a side table, with the top bit set.
#[derive(Debug)]
pub struct KeyCodes {
    /// The types the keys are output as (the key arguments').
    pub data_types: Vec<DataType>,
    prefixes: HashMap<Box<[u8]>, u32>,
    prefix_keys: Vec<Vec<Option<Box<str>>>>,
    side: SideTable,
    /// Recent prefixes' indices.
    recent: RecentPrefixes<u32>,
    scratch: Vec<u8>,
}

impl KeyCodes {
    pub fn new(data_types: Vec<DataType>) -> Self {
        Self {
            data_types,
            prefixes: HashMap::new(),
            prefix_keys: vec![],
            side: SideTable::default(),
            recent: RecentPrefixes::new(),
            scratch: vec![],
        }
    }

    /// The code of row `i` of the key columns (all the key arguments, as
    /// views).
    pub fn encode(&mut self, keys: &[StringViewArray], i: usize) -> u64 {
        let (last, prefix) = keys.split_last().expect("at least one key");
        let p = self.prefix_index(prefix, i);
        let value = last.is_valid(i).then(|| last.value(i));
        self.code(p, value)
    }

    /// The code of a row whose prefix has index `p` and whose last key is
    /// `key`.
    fn code(&mut self, p: u32, key: Option<&str>) -> u64 {
        if let Some(digits) = key.and_then(|k| digits_code(k.as_bytes())) {
            if let Some(code) = inline_code(p, digits) {
                return code;
            }
        }
        self.side.code(p, key, 0, &mut self.scratch)
    }

    /// The index of row `i`'s prefix (the keys before the last).
    pub(crate) fn prefix_index(&mut self, prefix: &[StringViewArray], i: usize) -> u32 {
        if prefix.is_empty() {
            if self.prefix_keys.is_empty() {
                self.prefix_keys.push(vec![]);
            }
            return 0;
        }
        let view = RecentPrefixes::<u32>::view(prefix, i);
        if let Some(p) = self.recent.get(view) {
            return p;
        }
        prefix_bytes(prefix, i, &mut self.scratch);
        let p = match self.prefixes.get(self.scratch.as_slice()) {
            Some(&p) => p,
            None => {
                let p = self.prefix_keys.len() as u32;
                self.prefixes.insert(self.scratch.as_slice().into(), p);
                self.prefix_keys.push(
                    prefix
                        .iter()
                        .map(|k| k.is_valid(i).then(|| k.value(i).into()))
                        .collect(),
                );
                p
            }
        };
        self.recent.remember(view, p);
        p
    }

    /// The prefix index and last key of a side code, from this table.
    fn own_side(&self, code: u64) -> (u32, Option<&str>) {
        self.side.entry((code & !SIDE) as usize)
    }

    /// The prefix index of `code` and its last key, written into `out`
    /// (cleared first); false for a null last key. `side` resolves side
    /// codes.
    fn decode_into<'s>(
        &self,
        code: u64,
        out: &mut String,
        side: &impl Fn(u64) -> (u32, Option<&'s str>),
    ) -> (u32, bool) {
        out.clear();
        if code & SIDE != 0 {
            let (p, key) = side(code);
            if let Some(key) = key {
                out.push_str(key);
            }
            return (p, key.is_some());
        }
        let p = (code >> PREFIX_SHIFT) as u32;
        let len = ((code >> DIGITS_SHIFT) & 0xf) as usize;
        let value = code & ((1 << DIGITS_SHIFT) - 1);
        if len > 0 {
            use std::fmt::Write;
            write!(out, "{value:0len$}").expect("writing to a String");
        }
        (p, true)
    }

    /// The keys of `codes`, one array per key, of the types `types`.
    pub fn decode(&self, codes: &[u64], types: &[DataType]) -> Result<Vec<ArrayRef>> {
        self.decode_with(codes, types, &|code| self.own_side(code))
    }

    /// [`Self::decode`], with side codes resolved by `side` (the side
    /// tables of [`crate::keys::key_coder`]) rather than this table's own.
    pub(crate) fn decode_with<'s>(
        &self,
        codes: &[u64],
        types: &[DataType],
        side: &impl Fn(u64) -> (u32, Option<&'s str>),
    ) -> Result<Vec<ArrayRef>> {
        let last = types.len() - 1;
        let mut text = String::new();
        let mut columns = Vec::with_capacity(types.len());
        for (j, data_type) in types.iter().enumerate() {
            macro_rules! build {
                ($builder:expr) => {{
                    let mut b = $builder;
                    for &code in codes {
                        if j == last {
                            let (_, valid) = self.decode_into(code, &mut text, side);
                            b.append_option(valid.then_some(text.as_str()));
                        } else {
                            let p = match code & SIDE {
                                0 => (code >> PREFIX_SHIFT) as u32,
                                _ => side(code).0,
                            };
                            b.append_option(self.prefix_keys[p as usize][j].as_deref());
                        }
                    }
                    Arc::new(b.finish()) as ArrayRef
                }};
            }
            let n = codes.len();
            columns.push(match data_type {
                DataType::Utf8View => build!(StringViewBuilder::with_capacity(n)),
                DataType::Utf8 => build!(StringBuilder::with_capacity(n, n * 12)),
                DataType::LargeUtf8 => build!(LargeStringBuilder::with_capacity(n, n * 12)),
                other => return exec_err!("a by-key windowing key must be a string, got {other}"),
            });
        }
        Ok(columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;

    #[test]
    fn digits_are_coded_alike_eight_at_a_time_and_byte_by_byte() {
        // Every length, every digit in every place, and each byte that
        // borders the digits ('/' and ':') or wraps ('\xff' + 6) in every
        // place.
        let mut keys: Vec<Vec<u8>> = vec![];
        for n in 0..=17 {
            let base: Vec<u8> = (0..n).map(|i| b"9081726354"[i % 10]).collect();
            keys.push(base.clone());
            for at in 0..n {
                for b in [b'0', b'9', b'/', b':', b'+', b' ', 0xfa, 0xff, 0] {
                    let mut k = base.clone();
                    k[at] = b;
                    keys.push(k);
                }
            }
        }
        for k in &keys {
            assert_eq!(digits_code(k), digits_code_bytewise(k), "{k:?}");
        }
        assert_eq!(
            digits_code(b"447700900123"),
            Some((12 << DIGITS_SHIFT) | 447_700_900_123)
        );
        assert_eq!(
            digits_code(b"999999999999999").map(|c| c & ((1 << DIGITS_SHIFT) - 1)),
            Some(999_999_999_999_999)
        );
    }

    proptest::proptest! {
        #[test]
        fn digits_code_agrees_with_the_bytewise_loop(key in proptest::collection::vec(
            proptest::prop_oneof![b'0'..=b'9', proptest::num::u8::ANY], 0..20)) {
            proptest::prop_assert_eq!(digits_code(&key), digits_code_bytewise(&key));
        }
    }

    #[test]
    fn codes_are_equal_exactly_when_keys_are_and_decode_back() {
        let customers = [
            Some("447700900123"),
            Some("0447700900123"), // a leading zero is a different key
            Some("00447700900123"),
            Some("123456789012345"),  // 15 digits: coded by value
            Some("1234567890123456"), // 16: the side table
            Some(""),
            Some("0"),
            Some("00"),
            Some("+447700900123"),
            Some("customer-7"),
            None,
        ];
        let accounts = [Some("acct-1"), Some("an-account-of-many-bytes"), None];
        let mut rows: Vec<(Option<&str>, Option<&str>)> = vec![];
        for a in accounts {
            for c in customers {
                rows.push((a, c));
            }
        }
        // Rows of one account follow each other, then come back.
        rows.extend(rows.clone().iter().rev());
        let keys = [
            StringViewArray::from_iter(rows.iter().map(|r| r.0)),
            StringViewArray::from_iter(rows.iter().map(|r| r.1)),
        ];
        let mut codes = KeyCodes::new(vec![DataType::Utf8View; 2]);
        let coded: Vec<u64> = (0..rows.len()).map(|i| codes.encode(&keys, i)).collect();
        let distinct: std::collections::HashSet<u64> = coded.iter().copied().collect();
        assert_eq!(distinct.len(), rows.len() / 2, "{coded:?}");
        for i in 0..rows.len() {
            for j in 0..rows.len() {
                assert_eq!(coded[i] == coded[j], rows[i] == rows[j], "{i} {j}");
            }
        }
        for data_type in [DataType::Utf8View, DataType::Utf8, DataType::LargeUtf8] {
            let decoded = codes
                .decode(&coded, &[data_type.clone(), data_type.clone()])
                .unwrap();
            let text = |a: &ArrayRef| -> Vec<Option<String>> {
                assert_eq!(a.data_type(), &data_type);
                let a = arrow::compute::cast(a, &DataType::Utf8).unwrap();
                a.as_string::<i32>()
                    .iter()
                    .map(|v| v.map(str::to_string))
                    .collect()
            };
            let owned = |v: Option<&str>| v.map(str::to_string);
            let accounts: Vec<Option<String>> = rows.iter().map(|r| owned(r.0)).collect();
            let customers: Vec<Option<String>> = rows.iter().map(|r| owned(r.1)).collect();
            assert_eq!(text(&decoded[0]), accounts);
            assert_eq!(text(&decoded[1]), customers);
        }
    }

    #[test]
    fn one_key_alone_codes_too() {
        let keys = [StringViewArray::from_iter_values(["1", "22", "1", "x"])];
        let mut codes = KeyCodes::new(vec![DataType::Utf8]);
        let coded: Vec<u64> = (0..4).map(|i| codes.encode(&keys, i)).collect();
        assert_eq!(coded[0], coded[2]);
        assert_ne!(coded[0], coded[1]);
        let decoded = codes.decode(&coded, &[DataType::Utf8]).unwrap();
        let decoded: Vec<&str> = decoded[0].as_string::<i32>().iter().flatten().collect();
        assert_eq!(decoded, ["1", "22", "1", "x"]);
    }

    #[test]
    fn the_by_key_form_is_told_by_its_types() {
        let (s, v, u, t) = (
            DataType::Utf8,
            DataType::Utf8View,
            DataType::UInt8,
            DataType::Int64,
        );
        assert_eq!(key_count(&[&s, &v, &u, &t, &t]), 1);
        assert_eq!(key_count(&[&s, &s, &v, &u, &t, &t, &s]), 2);
        assert_eq!(key_count(&[&v, &u, &t, &t]), 0); // the compact form
        assert_eq!(key_count(&[&v, &v, &v, &v, &v, &t, &t, &v]), 0); // the log columns
        assert_eq!(key_count(&[&t, &v, &u, &t, &t]), 0); // a key that is not text
    }
}
