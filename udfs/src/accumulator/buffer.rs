//! The grouped accumulator behind every windowing aggregate.
//!
//! Rows are appended to flat columnar buffers tagged with their group
//! index, never to per-group lists: a batch costs a few `Vec::push`es per
//! row. At `evaluate` the rows are sorted by group in place (two American
//! flag passes, the second within the cache) and the rules run over each
//! group's contiguous slice. The partial
//! state is the group's rows as four list columns (message id, sent, delivered,
//! code), so two-phase, spilled and distributed aggregation merge exactly:
//! merging is appending rows, and the rules merge duplicate rows themselves.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, StringViewArray, StructArray,
    UInt8Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Int64Type, UInt8Type};
use datafusion::common::{exec_datafusion_err, Result, ScalarValue};
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};

use crate::keys::by_key::{row_state_fields, KeyCodes};
use crate::keys::key_coder::SharedKeyCodes;
use crate::log::columns::{self, Code, LogBatch};
use crate::rules::{MessageOutcome, Row, RuleChoice, Windowing};

/// All rows buffered so far. Group ids are scanned alone (the counting
/// sort); everything the rules read of a row, its id too when it is short,
/// sits in one 40-byte record, so visiting a customer's rows, scattered
/// through the buffer in arrival order, costs one cache miss per row rather
/// than one per column.
#[derive(Debug)]
pub struct LogRows {
    group: Vec<u32>,
    rows: Vec<Packed>,
    id_bytes: Vec<u8>,
    /// Ranges of nearby groups the first pass of `sort_by_group` makes.
    sort_buckets: usize,
    /// A buffer whose pages are already mapped, for `scatter_by_group` to
    /// write into ([`SpareRows`]).
    spare: Vec<Packed>,
}

/// A row buffer left over from one group sort, handed to the next
/// ([`RowsAccumulator::give_spare`]): the sort writes every row into a new
/// buffer, and fresh memory costs the kernel a page fault and a zeroed page
/// per 4 KiB, which took back everything the sort gained.
#[derive(Debug, Default)]
pub struct SpareRows(Vec<Packed>);

impl Default for LogRows {
    fn default() -> Self {
        Self {
            group: vec![],
            rows: vec![],
            id_bytes: vec![],
            sort_buckets: SORT_BUCKETS,
            spare: vec![],
        }
    }
}

/// About a megabyte of rows per range at 50M rows in two partitions.
const SORT_BUCKETS: usize = 1024;
/// Up to this many groups, `sort_by_group` scatters rows into a new buffer
/// (`LogRows::scatter_by_group`): the by-key form's buckets.
const SCATTER_GROUPS: usize = 1 << 14;

/// One buffered row: 40 bytes. Every byte of the buffer is paid for twice,
/// in the sort's memory traffic and in the kernel's zeroing of fresh pages
/// (costly on virtual machines), so the id's length and the row's code
/// ride in the low bits of `sent_at`.
#[derive(Debug, Clone, Copy)]
struct Packed {
    /// `sent_at << META_BITS | id length (LONG_ID if long) << CODE_BITS | code`.
    sent_meta: i64,
    /// `NOT_DELIVERED` where not delivered.
    delivered_at: i64,
    /// The row's key code in the by-key form ([`crate::keys::by_key`]); 0
    /// otherwise.
    key: u64,
    /// The id's bytes when it fits ([`INLINE_ID`] bytes or fewer); else its
    /// start in `id_bytes` (bytes 0..8, its length in the 4 bytes before
    /// it) and its `rules::id_hash` (8..16). Ids usually fit, so they move
    /// with their row when the buffer is clustered and cost no second cache
    /// miss when read.
    id: [u8; INLINE_ID],
}

/// Ids of at most this many bytes are kept in the row itself.
const INLINE_ID: usize = 16;
/// The length `Packed::sent_meta` records for an id kept aside.
const LONG_ID: i64 = INLINE_ID as i64 + 1;
const CODE_BITS: u32 = 6;
const META_BITS: u32 = CODE_BITS + 5;
/// `sent_at` (microseconds) must fit in the bits left: mid-1827 to mid-2112.
const SENT_LIMIT: i64 = 1 << (63 - META_BITS);
const _: () = assert!(
    crate::rules::SUPPORTED_TIMES.start == -SENT_LIMIT
        && crate::rules::SUPPORTED_TIMES.end == SENT_LIMIT
);

impl Packed {
    #[inline]
    fn sent_at(&self) -> i64 {
        self.sent_meta >> META_BITS
    }

    #[inline]
    fn code(&self) -> Code {
        (self.sent_meta & ((1 << CODE_BITS) - 1)) as Code
    }

    /// The id's length when it is in the row; `None` when kept aside.
    #[inline]
    fn inline_len(&self) -> Option<usize> {
        let len = (self.sent_meta >> CODE_BITS) & 31;
        (len != LONG_ID).then_some(len as usize)
    }
}

const NOT_DELIVERED: i64 = i64::MIN;

/// Copies `src` (at most [`INLINE_ID`] bytes) to the start of `dst` with
/// fixed-size moves that may overlap, where `copy_from_slice` of a
/// variable length calls `memcpy` (once per row).
#[inline]
fn copy_short(dst: &mut [u8; INLINE_ID], src: &[u8]) {
    let n = src.len();
    debug_assert!(n <= INLINE_ID);
    if n >= 8 {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..n].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..n].copy_from_slice(&src[n - 4..]);
    } else {
        for (d, &b) in dst.iter_mut().zip(src) {
            *d = b;
        }
    }
}

impl LogRows {
    fn push(
        &mut self,
        group: usize,
        code: Code,
        sent_at: i64,
        delivered_at: Option<i64>,
        id: &[u8],
        key: u64,
    ) -> Result<()> {
        if !(-SENT_LIMIT..SENT_LIMIT).contains(&sent_at) {
            return Err(exec_datafusion_err!(
                "message_id {:?}: sent_at {sent_at} µs since 1970 is outside the years 1827 \
                 to 2112 that the windowing buffers",
                String::from_utf8_lossy(id)
            ));
        }
        debug_assert!(code < 1 << CODE_BITS, "a row code fits in {CODE_BITS} bits");
        let mut inline = [0u8; INLINE_ID];
        let len = if id.len() <= INLINE_ID {
            copy_short(&mut inline, id);
            id.len() as i64
        } else {
            inline = self.keep_long(&[id]);
            LONG_ID
        };
        self.group.push(group as u32);
        self.rows.push(Packed {
            sent_meta: (sent_at << META_BITS) | (len << CODE_BITS) | i64::from(code),
            delivered_at: std::hint::select_unpredictable(
                delivered_at.is_some(),
                delivered_at.unwrap_or_default(),
                NOT_DELIVERED,
            ),
            key,
            id: inline,
        });
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.group.len()
    }

    /// Keeps a long id, the concatenation of `parts`, aside: its
    /// `Packed::id`, its start in `id_bytes` and its hash.
    fn keep_long(&mut self, parts: &[&[u8]]) -> [u8; INLINE_ID] {
        let start = self.keep_long_id(parts);
        let id = &self.id_bytes[start as usize..];
        let mut packed = [0u8; INLINE_ID];
        packed[..8].copy_from_slice(&start.to_le_bytes());
        packed[8..].copy_from_slice(&crate::rules::id_hash(id).to_le_bytes());
        packed
    }

    /// Appends a long id, the concatenation of `parts`, to `id_bytes`; its
    /// start, as `Packed::id` holds it.
    fn keep_long_id(&mut self, parts: &[&[u8]]) -> u64 {
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        let len = u32::try_from(len).expect("a message id under 4 GiB");
        self.id_bytes.extend_from_slice(&len.to_le_bytes());
        let start = self.id_bytes.len() as u64;
        for part in parts {
            self.id_bytes.extend_from_slice(part);
        }
        start
    }

    /// Row `row`'s message id as text.
    pub fn id_str(&self, row: u32) -> &str {
        // SAFETY: every id was copied whole from a `Utf8View` value (update)
        // or a state list of `Utf8View` (merge), both valid UTF-8, and ids
        // are stored and sliced whole, so the bytes are valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(self.id(row)) }
    }

    pub fn id(&self, row: u32) -> &[u8] {
        self.id_of(&self.rows[row as usize])
    }

    fn id_of<'a>(&'a self, p: &'a Packed) -> &'a [u8] {
        match p.inline_len() {
            Some(len) => &p.id[..len],
            None => Self::long_id(&self.id_bytes, p),
        }
    }

    /// A long id's bytes in `id_bytes`: its length sits just before it.
    fn long_id<'a>(id_bytes: &'a [u8], p: &Packed) -> &'a [u8] {
        let start = Self::word(p, 0) as usize;
        let len = u32::from_le_bytes(id_bytes[start - 4..start].try_into().expect("4 bytes"));
        &id_bytes[start..start + len as usize]
    }

    /// The `rules::id_hash` of a row's id: stored for long ids, computed
    /// from the row's own bytes for short ones.
    fn id_hash(p: &Packed) -> u64 {
        match p.inline_len() {
            Some(len) => crate::rules::id_hash(&p.id[..len]),
            None => Self::word(p, 1),
        }
    }

    /// Word `i` (0 or 1) of a long id's `Packed::id`: its start or its hash.
    fn word(p: &Packed, i: usize) -> u64 {
        u64::from_le_bytes(p.id[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
    }

    /// Starts loading row `row`'s id bytes into the cache when they are
    /// not in the row itself. Long ids sit in arrival order, far apart, so
    /// an output that copies several ids of a group prefetches them all
    /// first: their cache misses then overlap instead of following one
    /// another.
    #[inline]
    pub fn prefetch_id(&self, row: u32) {
        let p = &self.rows[row as usize];
        if p.inline_len().is_some() {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let ptr = self
                .id_bytes
                .as_ptr()
                .wrapping_add(Self::word(p, 0) as usize);
            // SAFETY: a prefetch is a hint that never faults or reads into
            // the program, whatever the address; this one is in bounds.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.cast::<i8>()) };
        }
    }

    pub fn sent_at(&self, row: u32) -> i64 {
        self.rows[row as usize].sent_at()
    }

    pub fn delivered_at(&self, row: u32) -> Option<i64> {
        let d = self.rows[row as usize].delivered_at;
        (d != NOT_DELIVERED).then_some(d)
    }

    fn code(&self, row: u32) -> Code {
        self.rows[row as usize].code()
    }

    fn key(&self, row: u32) -> u64 {
        self.rows[row as usize].key
    }

    fn row(&self, row: u32) -> Row {
        let p = &self.rows[row as usize];
        let (kind, status) = columns::decode(p.code());
        Row {
            kind,
            status,
            sent_at: p.sent_at(),
            delivered_at: std::hint::select_unpredictable(
                p.delivered_at != NOT_DELIVERED,
                Some(p.delivered_at),
                None,
            ),
            id_hash: Self::id_hash(p),
        }
    }

    /// Bytes held, from capacities: O(1), so it can run after every batch.
    fn size(&self) -> usize {
        self.group.capacity() * 4
            + self.rows.capacity() * std::mem::size_of::<Packed>()
            + self.id_bytes.capacity()
            + self.spare.capacity() * std::mem::size_of::<Packed>()
    }

    /// Sorts the rows in place by `bucket(group)` (an American flag sort
    /// over `range`, `buckets` buckets) and returns where each bucket's
    /// rows start, plus the range's end.
    fn flag_sort(
        &mut self,
        range: std::ops::Range<usize>,
        buckets: usize,
        bucket: impl Fn(u32) -> usize,
    ) -> Vec<usize> {
        let mut next = vec![0usize; buckets + 1];
        next[0] = range.start;
        for &g in &self.group[range.clone()] {
            next[bucket(g) + 1] += 1;
        }
        for b in 0..buckets {
            next[b + 1] += next[b];
        }
        let bounds = next.clone();
        for b in 0..buckets {
            while next[b] < bounds[b + 1] {
                let i = next[b];
                let (mut g, mut row) = (self.group[i], self.rows[i]);
                // Follow the cycle: place the row in hand at its bucket's
                // next slot and pick up the row that was there.
                loop {
                    let target = bucket(g);
                    if target == b {
                        self.group[i] = g;
                        self.rows[i] = row;
                        next[b] += 1;
                        break;
                    }
                    let j = next[target];
                    next[target] += 1;
                    std::mem::swap(&mut g, &mut self.group[j]);
                    std::mem::swap(&mut row, &mut self.rows[j]);
                }
            }
        }
        bounds
    }

    /// Puts the rows in group order, in place, dead rows (group < `base`)
    /// first, and returns where each live group's rows start. Rows arrive in
    /// time order, so a customer's rows are scattered through the whole
    /// buffer. A first pass sorts them into at most `max_buckets` ranges of
    /// nearby groups (one write position per range is hot, which fits the
    /// cache); a second sorts each range, about a megabyte at 50M rows, by
    /// group, in the cache. The rules then read every group's rows as one
    /// contiguous slice, and no row index is kept.
    fn sort_by_group(&mut self, base: usize, groups: usize, max_buckets: usize) -> GroupIndex {
        if base == 0 && groups <= SCATTER_GROUPS {
            return self.scatter_by_group(groups);
        }
        // At most `max_buckets` ranges of `1 << shift` groups each.
        let mut shift = 0;
        while ((groups.max(1) - 1) >> shift) + 1 > max_buckets.max(1) {
            shift += 1;
        }
        let coarse = 1 + ((groups.max(1) - 1) >> shift);
        let bounds = self.flag_sort(0..self.len(), 1 + coarse, |g| {
            let g = g as usize;
            if g < base {
                0
            } else {
                1 + ((g - base) >> shift)
            }
        });
        if shift > 0 {
            for b in 1..=coarse {
                let first = base + ((b - 1) << shift);
                self.flag_sort(bounds[b]..bounds[b + 1], 1 << shift, |g| g as usize - first);
            }
        }
        let live = bounds[1];
        let mut starts = vec![0usize; groups + 1];
        starts[0] = live;
        for &g in &self.group[live..] {
            starts[g as usize - base + 1] += 1;
        }
        for g in 0..groups {
            starts[g + 1] += starts[g];
        }
        GroupIndex { base, starts }
    }

    /// `sort_by_group` for a few thousand groups, none dead (the by-key
    /// form's buckets): one counting pass, then each row copied once into a
    /// new buffer at its group's next slot. With few groups every group's
    /// write position stays in the cache, and one sequential read and one
    /// write per row cost less than the in-place sort's cycles of swaps,
    /// though the new buffer's pages are fresh.
    fn scatter_by_group(&mut self, groups: usize) -> GroupIndex {
        let n = self.len();
        let mut starts = vec![0usize; groups + 1];
        for &g in &self.group {
            starts[g as usize + 1] += 1;
        }
        for g in 0..groups {
            starts[g + 1] += starts[g];
        }
        let mut next = starts.clone();
        let mut sorted = std::mem::take(&mut self.spare);
        sorted.clear();
        sorted.reserve(n);
        let slots = &mut sorted.spare_capacity_mut()[..n];
        for (&g, row) in self.group.iter().zip(&self.rows) {
            let at = &mut next[g as usize];
            slots[*at].write(*row);
            *at += 1;
        }
        debug_assert!((0..groups).all(|g| next[g] == starts[g + 1]));
        // SAFETY: the counts place every one of the `n` rows in its own
        // slot of `0..n` (each group's slots run from its start to the
        // next group's start), so all `n` slots were written.
        unsafe { sorted.set_len(n) };
        self.spare = std::mem::replace(&mut self.rows, sorted);
        for g in 0..groups {
            self.group[starts[g]..starts[g + 1]].fill(g as u32);
        }
        GroupIndex { base: 0, starts }
    }

    /// Reorders one group's rows (`range`) by key, in place, and lists each
    /// key's rows in `split.runs`, by key code. A group (a bucket of the
    /// by-key form) holds the rows of a handful of customers: a small hash
    /// table finds each row's key, and a counting sort moves the rows, all
    /// within the cache.
    fn split_by_key(&mut self, range: std::ops::Range<usize>, split: &mut KeySplit) {
        const EMPTY: u32 = u32::MAX;
        let n = range.len();
        let slots = (n * 2).next_power_of_two().max(16);
        let mask = slots - 1;
        split.runs.clear();
        split.keys.clear();
        split.local.clear();
        split.table.clear();
        split.table.resize(slots, EMPTY);
        for p in &self.rows[range.clone()] {
            let mut slot = (p.key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & mask;
            loop {
                let at = split.table[slot];
                if at == EMPTY {
                    split.table[slot] = split.keys.len() as u32;
                    split.local.push(split.keys.len() as u32);
                    split.keys.push(p.key);
                    break;
                }
                if split.keys[at as usize] == p.key {
                    split.local.push(at);
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
        if split.keys.len() == 1 {
            split.runs.push((split.keys[0], range));
            return;
        }
        // Keys in code order, so every aggregate of a plan lists a group's
        // customers in the same order whatever order the rows came in.
        split.order.clear();
        split.order.extend(0..split.keys.len() as u32);
        let keys = &split.keys;
        split.order.sort_unstable_by_key(|&k| keys[k as usize]);
        split.rank.clear();
        split.rank.resize(keys.len(), 0);
        for (r, &k) in split.order.iter().enumerate() {
            split.rank[k as usize] = r as u32;
        }
        split.next.clear();
        split.next.resize(keys.len() + 1, 0);
        for &l in &split.local {
            split.next[split.rank[l as usize] as usize + 1] += 1;
        }
        split.next[0] = range.start;
        for r in 0..keys.len() {
            split.next[r + 1] += split.next[r];
        }
        for (r, &k) in split.order.iter().enumerate() {
            split
                .runs
                .push((keys[k as usize], split.next[r]..split.next[r + 1]));
        }
        split.rows.clear();
        split.rows.extend_from_slice(&self.rows[range]);
        for (p, &l) in split.rows.iter().zip(&split.local) {
            let r = split.rank[l as usize] as usize;
            self.rows[split.next[r]] = *p;
            split.next[r] += 1;
        }
    }

    /// Keeps only the rows of groups `>= base`, renumbered from 0, in place
    /// and in their order (so a clustered buffer stays clustered), then
    /// gives the freed tail back. Copying the live rows into new buffers
    /// instead would touch fresh memory, which costs more than the copy
    /// itself, and would raise the peak while both copies live.
    fn compact(&mut self, base: usize) {
        let old_ids = std::mem::take(&mut self.id_bytes);
        let mut kept = 0;
        for r in 0..self.group.len() {
            let g = self.group[r] as usize;
            if g < base {
                continue;
            }
            let mut p = self.rows[r];
            if p.inline_len().is_none() {
                let id = Self::long_id(&old_ids, &p);
                p.id[..8].copy_from_slice(&self.keep_long_id(&[id]).to_le_bytes());
            }
            self.group[kept] = (g - base) as u32;
            self.rows[kept] = p;
            kept += 1;
        }
        self.group.truncate(kept);
        self.rows.truncate(kept);
        self.group.shrink_to_fit();
        self.rows.shrink_to_fit();
    }

    /// Writes every row to `write(range, bytes)` as the records
    /// [`Self::unspill`] reads (`range_of(group)`, of `ranges`), each
    /// range's rows in their order in whole records, the ranges' pieces
    /// interleaved; then empties the buffer, keeping its capacity when
    /// `keep_buffers`; the rows written. A record is the row's group (2
    /// bytes: groups are key buckets, fewer than 2^16), `sent_meta`, its
    /// delivery as a [`DeliveryDelta`] (and the full time when that does
    /// not fit), its key, and then its id: a short id's own length of
    /// bytes, a long id as a [`LongIdHead`] and its bytes after the
    /// platform's `wamid.` prefix. A long id's hash is computed again when
    /// read rather than written: a spill past the page cache is bound by
    /// the disk, so every byte left out is time saved.
    fn spill(
        &mut self,
        ranges: usize,
        range_of: &dyn Fn(u32) -> usize,
        write: &mut dyn FnMut(usize, &[u8]) -> Result<()>,
        keep_buffers: bool,
    ) -> Result<usize> {
        let n = self.len();
        // One pass in buffer order, each record appended to its range's
        // chunk and a full chunk written: visiting the rows range by range
        // would read them in random order, a cache miss per row (and per
        // long id).
        let chunk = (SPILL_CHUNKS / ranges.max(1)).clamp(4 << 10, SPILL_CHUNK);
        let mut chunks: Vec<Vec<u8>> = (0..ranges).map(|_| Vec::new()).collect();
        for (&g, p) in self.group.iter().zip(&self.rows) {
            let r = range_of(g);
            let out = &mut chunks[r];
            if out.capacity() == 0 {
                out.reserve_exact(chunk + SPILLED_ROW_MAX + 4096);
            }
            // One record built on the stack and copied whole; a long id's
            // bytes follow it.
            let group = u16::try_from(g).map_err(|_| {
                exec_datafusion_err!("a windowing spill holds groups below 2^16, not {g}")
            })?;
            let mut record = [0u8; SPILLED_ROW_MAX];
            record[..2].copy_from_slice(&group.to_le_bytes());
            record[2..10].copy_from_slice(&p.sent_meta.to_le_bytes());
            let delta = DeliveryDelta::of(p.sent_at(), p.delivered_at);
            record[10..14].copy_from_slice(&delta.to_le_bytes());
            record[14..22].copy_from_slice(&p.key.to_le_bytes());
            let mut at = SPILLED_HEAD;
            if delta == DeliveryDelta::FULL {
                record[at..at + 8].copy_from_slice(&p.delivered_at.to_le_bytes());
                at += 8;
            }
            match p.inline_len() {
                Some(len) => {
                    record[at..at + INLINE_ID].copy_from_slice(&p.id);
                    out.extend_from_slice(&record[..at + len]);
                }
                None => {
                    let id = Self::long_id(&self.id_bytes, p);
                    let (head, rest) = LongIdHead::write(id, &mut record[at..]);
                    out.extend_from_slice(&record[..at + head]);
                    out.extend_from_slice(rest);
                }
            }
            if out.len() >= chunk {
                write(r, out)?;
                out.clear();
            }
        }
        for (r, out) in chunks.iter().enumerate() {
            if !out.is_empty() {
                write(r, out)?;
            }
        }
        drop(chunks);
        if keep_buffers {
            self.clear();
        } else {
            *self = LogRows {
                sort_buckets: self.sort_buckets,
                ..LogRows::default()
            };
        }
        Ok(n)
    }

    /// Drops every row, keeping the buffers: refilling buffers already
    /// mapped costs no fresh pages, which cost the kernel as much as the
    /// rows' own work.
    fn clear(&mut self) {
        self.group.clear();
        self.rows.clear();
        self.id_bytes.clear();
    }

    /// Bytes of the rows held, not of the buffers' capacity.
    fn filled(&self) -> usize {
        self.group.len() * 4 + self.rows.len() * std::mem::size_of::<Packed>() + self.id_bytes.len()
    }

    /// Appends the records [`Self::spill`] wrote, each row's group less
    /// `base`.
    fn unspill(&mut self, mut bytes: &[u8], base: u32) -> Result<()> {
        fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
            let (head, rest) = bytes
                .split_at_checked(n)
                .ok_or_else(|| exec_datafusion_err!("a windowing spill record is cut short"))?;
            *bytes = rest;
            Ok(head)
        }
        let word = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
        while !bytes.is_empty() {
            let head = take(&mut bytes, SPILLED_HEAD)?;
            let group = u32::from(u16::from_le_bytes(head[..2].try_into().expect("2 bytes")));
            let sent_meta = word(head, 2) as i64;
            let delta = i32::from_le_bytes(head[10..14].try_into().expect("4 bytes"));
            let mut p = Packed {
                sent_meta,
                delivered_at: NOT_DELIVERED,
                key: word(head, 14),
                id: [0; INLINE_ID],
            };
            p.delivered_at = match delta {
                DeliveryDelta::FULL => word(take(&mut bytes, 8)?, 0) as i64,
                delta => DeliveryDelta::time(p.sent_at(), delta),
            };
            match p.inline_len() {
                Some(len) => {
                    if len > INLINE_ID {
                        return Err(exec_datafusion_err!(
                            "a windowing spill record's id length {len} is not a length"
                        ));
                    }
                    copy_short(&mut p.id, take(&mut bytes, len)?);
                }
                None => {
                    let (prefix, len) = LongIdHead::read(&mut bytes, take)?;
                    p.id = self.keep_long(&[prefix, take(&mut bytes, len)?]);
                }
            }
            let group = group.checked_sub(base).ok_or_else(|| {
                exec_datafusion_err!("a spilled row of group {group} below {base}")
            })?;
            self.group.push(group);
            self.rows.push(p);
        }
        Ok(())
    }
}

/// A spilled row's delivery, in 4 bytes when it can be: its distance from
/// the send in microseconds (deliveries come seconds after sends), or one
/// of two marks, not delivered or the full time following.
struct DeliveryDelta;

impl DeliveryDelta {
    const NONE: i32 = i32::MIN;
    const FULL: i32 = i32::MIN + 1;

    /// The delta of `delivered_at` (`NOT_DELIVERED` when not delivered).
    fn of(sent_at: i64, delivered_at: i64) -> i32 {
        if delivered_at == NOT_DELIVERED {
            return Self::NONE;
        }
        delivered_at
            .checked_sub(sent_at)
            .and_then(|d| i32::try_from(d).ok())
            .filter(|&d| d > Self::FULL)
            .unwrap_or(Self::FULL)
    }

    /// The delivery a delta other than `FULL` stands for.
    fn time(sent_at: i64, delta: i32) -> i64 {
        match delta {
            Self::NONE => NOT_DELIVERED,
            d => sent_at + i64::from(d),
        }
    }
}

/// The byte before a spilled long id's bytes: whether the id starts with
/// the platform's `wamid.`, left out of the bytes (the high bit), and how
/// many bytes follow (the low 7 bits), or `LEN` when a 4-byte length
/// follows first. Ids as the platform writes them spill in their length
/// less 5 bytes.
struct LongIdHead;

impl LongIdHead {
    const PREFIX: &'static [u8] = b"wamid.";
    const WAMID: u8 = 0x80;
    const LEN: u8 = 0x7F;

    /// Writes `id`'s head to the start of `out`: its length in bytes, and
    /// the bytes of `id` that follow it.
    fn write<'i>(id: &'i [u8], out: &mut [u8]) -> (usize, &'i [u8]) {
        let (tag, rest) = match id.strip_prefix(Self::PREFIX) {
            Some(rest) => (Self::WAMID, rest),
            None => (0, id),
        };
        match u8::try_from(rest.len()) {
            Ok(len) if len < Self::LEN => {
                out[0] = tag | len;
                (1, rest)
            }
            _ => {
                let len = u32::try_from(rest.len()).expect("a message id under 4 GiB");
                out[0] = tag | Self::LEN;
                out[1..5].copy_from_slice(&len.to_le_bytes());
                (5, rest)
            }
        }
    }

    /// Reads a head [`Self::write`] wrote with `take`: the prefix left out
    /// of the id's bytes, and how many bytes follow.
    fn read<'b>(
        bytes: &mut &'b [u8],
        take: fn(&mut &'b [u8], usize) -> Result<&'b [u8]>,
    ) -> Result<(&'static [u8], usize)> {
        let tag = take(bytes, 1)?[0];
        let len = match tag & Self::LEN {
            Self::LEN => u32::from_le_bytes(take(bytes, 4)?.try_into().expect("4 bytes")) as usize,
            len => usize::from(len),
        };
        let prefix: &[u8] = if tag & Self::WAMID != 0 {
            Self::PREFIX
        } else {
            b""
        };
        Ok((prefix, len))
    }
}

/// Bytes of a spilled row's record before its delivery's full time, if
/// any, and its id.
const SPILLED_HEAD: usize = 2 + 8 + 4 + 8;
/// The most bytes of a record before a long id's bytes.
const SPILLED_ROW_MAX: usize = SPILLED_HEAD + 8 + INLINE_ID;
const _: () = assert!(
    INLINE_ID >= 5,
    "a long id's head fits where a short id would"
);
/// The most records of one range gathered before a write while spilling.
const SPILL_CHUNK: usize = 256 << 10;
/// The bytes of every range's gathered records together: a chunk is
/// smaller when there are many ranges, down to 4 KiB. A range's chunks are
/// read back one at a time, with direct I/O where it can, and a read's
/// speed grows with its size (on this project's virtual disk 545 MB/s for
/// 64 KiB, 1.2 GB/s for 256 KiB), so chunks are as large as 32 MiB over
/// the ranges allow: 256 KiB up to 128 ranges.
const SPILL_CHUNKS: usize = 32 << 20;

/// Scratch space of [`LogRows::split_by_key`], reused group after group.
#[derive(Debug, Default)]
struct KeySplit {
    table: Vec<u32>,
    keys: Vec<u64>,
    /// Each row's index into `keys`.
    local: Vec<u32>,
    order: Vec<u32>,
    rank: Vec<u32>,
    next: Vec<usize>,
    rows: Vec<Packed>,
    /// Each key's code and rows.
    runs: Vec<(u64, std::ops::Range<usize>)>,
}

/// Where each group's rows start in the sorted buffer, built once and
/// reused while groups are emitted a few at a time (`EmitTo::First`), so
/// emitting every group in batches costs one sort, not one per batch.
#[derive(Debug)]
struct GroupIndex {
    /// Absolute group id of `starts[0]`.
    base: usize,
    starts: Vec<usize>,
}

impl GroupIndex {
    fn rows(&self, group: usize) -> std::ops::Range<usize> {
        let g = group - self.base;
        self.starts[g]..self.starts[g + 1]
    }

    fn size(&self) -> usize {
        self.starts.capacity() * std::mem::size_of::<usize>()
    }
}

/// What an aggregate makes of each group's outcomes.
pub trait PairOutput: Send + Sync + std::fmt::Debug + 'static {
    /// Starts an output of `groups` values.
    fn begin(&mut self, groups: usize);
    /// Adds one group's value; the group's rows are buffered rows
    /// `first_row..`, so outcome `o`'s row is `first_row + o.row`.
    fn push_group(
        &mut self,
        log: &LogRows,
        first_row: u32,
        outcomes: &[MessageOutcome],
    ) -> Result<()>;
    fn finish(&mut self) -> Result<ArrayRef>;
    /// Builds only the struct fields named in `fields`, the others as
    /// placeholders of the same type that nothing reads. By default every
    /// field is built.
    fn build_only(&mut self, _fields: &[String]) {}
}

#[derive(Debug)]
pub struct WindowingGroups<O: PairOutput> {
    /// Rows, tagged with absolute group ids: DataFusion's group `g` is `base + g`.
    log: LogRows,
    /// Groups emitted so far (rows of groups below it are dead).
    base: usize,
    /// Groups not yet emitted.
    num_groups: usize,
    index: Option<GroupIndex>,
    windowing: Windowing,
    output: O,
    pair_rows: Vec<Row>,
    outcomes: Vec<MessageOutcome>,
    /// The by-key form's key codes; `None` in the other forms.
    keys: Option<KeyCodes>,
    split: KeySplit,
    /// By-key evaluation: each customer's key code, and how many customers
    /// each group emitted has.
    pair_keys: Vec<u64>,
    pairs_per_group: Vec<usize>,
    /// Evaluate to the pairs' values without their keys
    /// ([`RowsAccumulator::values_only`]).
    values_only: bool,
    /// Empty the rows' buffers once every group is evaluated, keeping their
    /// capacity, rather than free them ([`RowsAccumulator::keep_buffers`]).
    keep_buffers: bool,
    /// The table that coded the keys when they come coded
    /// ([`RowsAccumulator::update_coded`]); decoding reads it.
    shared_keys: Option<Arc<SharedKeyCodes>>,
}

impl<O: PairOutput> WindowingGroups<O> {
    pub fn new(choice: RuleChoice, output: O) -> Self {
        Self {
            log: LogRows::default(),
            base: 0,
            num_groups: 0,
            index: None,
            windowing: Windowing::new(choice),
            output,
            pair_rows: vec![],
            outcomes: vec![],
            keys: None,
            split: KeySplit::default(),
            pair_keys: vec![],
            pairs_per_group: vec![],
            values_only: false,
            keep_buffers: false,
            shared_keys: None,
        }
    }

    /// The by-key form when the arguments (of these types) are it.
    pub fn with_arg_types(mut self, types: &[&DataType]) -> Self {
        let n = crate::keys::by_key::key_count(types);
        if n > 0 {
            self.keys = Some(KeyCodes::new(
                types[..n].iter().map(|&t| t.clone()).collect(),
            ));
        }
        self
    }

    /// The key columns (as views) and the log columns of `values`.
    fn split_key<'v>(
        &self,
        values: &'v [ArrayRef],
    ) -> Result<(Vec<StringViewArray>, &'v [ArrayRef])> {
        let Some(codes) = &self.keys else {
            return Ok((vec![], values));
        };
        let n = codes.data_types.len();
        let keys = values[..n]
            .iter()
            .map(|k| {
                columns::text_as_views(k).ok_or_else(|| {
                    exec_datafusion_err!("a by-key key must be a string, got {}", k.data_type())
                })
            })
            .collect::<Result<_>>()?;
        Ok((keys, &values[n..]))
    }

    fn key_code(&mut self, keys: &[StringViewArray], i: usize) -> u64 {
        match &mut self.keys {
            Some(codes) => codes.encode(keys, i),
            None => 0,
        }
    }

    /// The keys of `codes`, as `types`, from the table that coded them.
    fn decode_keys(&self, codes: &[u64], types: &[DataType]) -> Result<Vec<ArrayRef>> {
        match (&self.shared_keys, &self.keys) {
            (Some(shared), _) => shared.decode(codes, types),
            (None, Some(keys)) => keys.decode(codes, types),
            (None, None) => Ok(vec![]),
        }
    }

    /// The by-key value of the groups just evaluated: per group, the list
    /// of its customers' `{key, value}`.
    fn per_key_lists(&self, keys: &KeyCodes, values: ArrayRef) -> Result<ArrayRef> {
        let mut columns = self.decode_keys(&self.pair_keys, &keys.data_types)?;
        let fields =
            crate::keys::by_key::struct_fields(&keys.data_types, values.data_type().clone());
        columns.push(values);
        let structs = StructArray::try_new(fields.clone(), columns, None)?;
        let mut ends = Vec::with_capacity(self.pairs_per_group.len() + 1);
        ends.push(0i32);
        ends.extend(self.pairs_per_group.iter().map(|&e| e as i32));
        Ok(Arc::new(ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Struct(fields), false)),
            OffsetBuffer::new(ends.into()),
            Arc::new(structs),
            None,
        )?))
    }

    /// Runs the rules over the buffered rows `rows` (one pair's) and adds
    /// the pair's value to the output.
    fn run_rows(&mut self, rows: std::ops::Range<usize>) -> Result<()> {
        let first = rows.start as u32;
        self.pair_rows.clear();
        self.pair_rows.extend(rows.map(|r| self.log.row(r as u32)));
        let log = &self.log;
        self.windowing
            .run_pair(&self.pair_rows, |i| log.id(first + i), &mut self.outcomes)
            .map_err(|e| exec_datafusion_err!("{e}"))?;
        for m in self.outcomes.iter().filter(|m| m.delivered_before_sent) {
            let row = first + m.row;
            crate::warnings::note_delivered_before_sent(
                log.id_str(row),
                self.pair_rows[m.row as usize].id_hash,
            );
        }
        self.output.push_group(&self.log, first, &self.outcomes)
    }

    fn push(
        &mut self,
        group: usize,
        code: Code,
        sent_at: i64,
        delivered_at: Option<i64>,
        id: &[u8],
        key: u64,
    ) -> Result<()> {
        self.log
            .push(self.base + group, code, sent_at, delivered_at, id, key)
    }

    /// Appends rows `(row of values, group)` of one batch of arguments.
    fn append(
        &mut self,
        values: &[ArrayRef],
        rows: impl Iterator<Item = (usize, usize)>,
        total_num_groups: usize,
    ) -> Result<()> {
        let (keys, values) = self.split_key(values)?;
        self.append_log(values, rows, total_num_groups, |me, i| {
            me.key_code(&keys, i)
        })
    }

    /// Appends rows `(row of values, group)` of one batch of log columns
    /// (the compact form), row `i` with key code `key(self, i)`.
    fn append_log(
        &mut self,
        values: &[ArrayRef],
        rows: impl Iterator<Item = (usize, usize)>,
        total_num_groups: usize,
        mut key: impl FnMut(&mut Self, usize) -> u64,
    ) -> Result<()> {
        let batch = LogBatch::try_new(values)?;
        self.num_groups = self.num_groups.max(total_num_groups);
        self.index = None;
        for (i, group) in rows {
            let code = batch.code(i)?;
            let key = key(self, i);
            self.push(
                group,
                code,
                batch.sent_at.value(i),
                batch.delivered_at(i),
                batch.id(i),
                key,
            )?;
        }
        Ok(())
    }

    /// Starts emitting: how many groups, with the index ready.
    fn begin_emit(&mut self, emit_to: EmitTo) -> usize {
        let n = match emit_to {
            EmitTo::All => self.num_groups,
            EmitTo::First(n) => n.min(self.num_groups),
        };
        if self.index.is_none() {
            let buckets = self.log.sort_buckets;
            self.index = Some(self.log.sort_by_group(self.base, self.num_groups, buckets));
        }
        n
    }

    /// Marks `n` groups emitted; frees the rows once most of them are dead.
    fn end_emit(&mut self, n: usize) {
        self.base += n;
        self.num_groups -= n;
        if self.num_groups == 0 {
            if self.keep_buffers {
                self.log.clear();
            } else {
                self.log = LogRows {
                    sort_buckets: self.log.sort_buckets,
                    spare: std::mem::take(&mut self.log.spare),
                    ..LogRows::default()
                };
            }
            self.base = 0;
            self.index = None;
        } else if self
            .index
            .as_ref()
            .is_some_and(|i| i.starts[self.base - i.base] * 2 > self.log.len())
        {
            self.log.compact(self.base);
            self.base = 0;
            self.index = None;
        }
    }
}

impl<O: PairOutput> GroupsAccumulator for WindowingGroups<O> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let rows = group_indices
            .iter()
            .enumerate()
            .filter(|&(i, _)| opt_filter.is_none_or(|f| f.is_valid(i) && f.value(i)))
            .map(|(i, &group)| (i, group));
        self.append(values, rows, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let n = self.begin_emit(emit_to);
        let index = self.index.take().expect("built by begin_emit");
        self.output.begin(n);
        self.pair_keys.clear();
        self.pairs_per_group.clear();
        for g in self.base..self.base + n {
            let rows = index.rows(g);
            if self.keys.is_none() {
                self.run_rows(rows)?;
                continue;
            }
            let mut split = std::mem::take(&mut self.split);
            self.log.split_by_key(rows, &mut split);
            for (key, rows) in split.runs.drain(..) {
                self.run_rows(rows)?;
                self.pair_keys.push(key);
            }
            self.pairs_per_group.push(self.pair_keys.len());
            self.split = split;
        }
        let values = self.output.finish()?;
        self.index = Some(index);
        self.end_emit(n);
        match &self.keys {
            Some(keys) if !self.values_only => self.per_key_lists(keys, values),
            _ => Ok(values),
        }
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let keyed = self.keys.is_some();
        let n = self.begin_emit(emit_to);
        let index = self.index.as_ref().expect("built by begin_emit");
        let first = self.base - index.base;
        let (lo, hi) = (index.starts[first], index.starts[first + n]);
        let order = lo as u32..hi as u32;
        let offsets = OffsetBuffer::new(
            index.starts[first..=first + n]
                .iter()
                .map(|&s| (s - lo) as i32)
                .collect::<Vec<_>>()
                .into(),
        );
        let mut ids = arrow::array::StringViewBuilder::with_capacity(hi - lo);
        for r in order.clone() {
            ids.append_value(self.log.id_str(r));
        }
        let ids: StringViewArray = ids.finish();
        let sent: Int64Array = order.clone().map(|r| self.log.sent_at(r)).collect();
        let delivered: Int64Array = order.clone().map(|r| self.log.delivered_at(r)).collect();
        let codes: UInt8Array = order.clone().map(|r| self.log.code(r)).collect();
        let key_codes: Vec<u64> = if keyed {
            order.map(|r| self.log.key(r)).collect()
        } else {
            vec![]
        };
        let fields = row_state_fields("");
        let key_field = crate::keys::by_key::key_state_field("", 0);
        let list = |i: usize, values: ArrayRef| -> Result<ArrayRef> {
            let DataType::List(item) = fields.get(i).unwrap_or(&key_field).data_type() else {
                unreachable!("state fields are lists")
            };
            Ok(Arc::new(ListArray::try_new(
                item.clone(),
                offsets.clone(),
                values,
                None,
            )?))
        };
        let mut state = vec![
            list(0, Arc::new(ids))?,
            list(1, Arc::new(sent))?,
            list(2, Arc::new(delivered))?,
            list(3, Arc::new(codes))?,
        ];
        if let Some(keys) = &self.keys {
            let as_views = vec![DataType::Utf8View; keys.data_types.len()];
            for key in self.decode_keys(&key_codes, &as_views)? {
                state.push(list(4, key)?);
            }
        }
        self.end_emit(n);
        Ok(state)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.num_groups = self.num_groups.max(total_num_groups);
        self.index = None;
        let lists: Vec<&ListArray> = values.iter().map(|v| v.as_list::<i32>()).collect();
        let ids = lists[0].values().as_string_view();
        let sent = lists[1].values().as_primitive::<Int64Type>();
        let delivered = lists[2].values().as_primitive::<Int64Type>();
        let codes = lists[3].values().as_primitive::<UInt8Type>();
        let n = self.keys.as_ref().map_or(0, |k| k.data_types.len());
        if lists.len() != 4 + n {
            return Err(exec_datafusion_err!(
                "a windowing state of {} columns where {} were expected",
                lists.len(),
                4 + n
            ));
        }
        let keys: Vec<StringViewArray> = lists[4..]
            .iter()
            .map(|k| k.values().as_string_view().clone())
            .collect();
        let offsets = lists[0].value_offsets();
        for (j, &group) in group_indices.iter().enumerate() {
            for k in offsets[j] as usize..offsets[j + 1] as usize {
                let d = delivered.is_valid(k).then(|| delivered.value(k));
                let key = self.key_code(&keys, k);
                self.push(
                    group,
                    codes.value(k),
                    sent.value(k),
                    d,
                    ids.value(k).as_bytes(),
                    key,
                )?;
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let (keys, values) = self.split_key(values)?;
        let batch = LogBatch::try_new(values)?;
        let mut codes = Vec::with_capacity(batch.len());
        let mut ends = Vec::with_capacity(batch.len() + 1);
        ends.push(0i32);
        let mut keep = Vec::with_capacity(batch.len());
        for i in 0..batch.len() {
            let kept = opt_filter.is_none_or(|f| f.is_valid(i) && f.value(i));
            if kept {
                codes.push(batch.code(i)?);
            }
            keep.push(kept);
            ends.push(codes.len() as i32);
        }
        let offsets = OffsetBuffer::new(ends.into());
        let as_i64 = |a: &arrow::array::TimestampMicrosecondArray| -> ArrayRef {
            Arc::new(Int64Array::new(a.values().clone(), a.nulls().cloned()))
        };
        let mut children: Vec<ArrayRef> = vec![
            Arc::new(batch.message_id.clone()),
            as_i64(batch.sent_at),
            as_i64(batch.delivered_at),
        ];
        let mask = opt_filter.map(|_| BooleanArray::from(keep));
        if let Some(mask) = &mask {
            children = children
                .iter()
                .map(|c| arrow::compute::filter(c, mask))
                .collect::<std::result::Result<_, _>>()?;
        }
        children.push(Arc::new(UInt8Array::from(codes)));
        let mut fields = row_state_fields("");
        for (i, key) in keys.into_iter().enumerate() {
            let key: ArrayRef = Arc::new(key);
            children.push(match &mask {
                Some(mask) => arrow::compute::filter(&key, mask)?,
                None => key,
            });
            fields.push(crate::keys::by_key::key_state_field("", i));
        }
        fields
            .iter()
            .zip(children)
            .map(|(field, values)| {
                let DataType::List(item) = field.data_type() else {
                    unreachable!("state fields are lists")
                };
                Ok(Arc::new(ListArray::try_new(
                    item.clone(),
                    offsets.clone(),
                    values,
                    None,
                )?) as ArrayRef)
            })
            .collect()
    }

    fn size(&self) -> usize {
        self.log.size()
            + self.index.as_ref().map_or(0, GroupIndex::size)
            + self.pair_rows.capacity() * std::mem::size_of::<Row>()
            + self.outcomes.capacity() * std::mem::size_of::<MessageOutcome>()
    }
}

/// Builds a windowing aggregate's [`RowsAccumulator`] from the aggregate's
/// arguments: what an operator that feeds rows by index needs of each
/// aggregate ([`crate::functions::windowing`] lists one per function).
pub type RowsAccumulatorFactory =
    fn(&datafusion::logical_expr::function::AccumulatorArgs) -> Result<Box<dyn RowsAccumulator>>;

/// A windowing aggregate fed a batch's rows by index, without copying them
/// into a batch of their own first ([`crate::physical_plan::bucketed::BucketedWindowingExec`]).
pub trait RowsAccumulator: Send + std::fmt::Debug {
    /// The values of groups `0..total_num_groups`, as
    /// `GroupsAccumulator::evaluate(EmitTo::All)`: also of groups that
    /// received no rows.
    fn evaluate_all(&mut self, total_num_groups: usize) -> Result<ArrayRef>;

    /// Bytes held.
    fn buffered_size(&self) -> usize;

    /// A buffer for the next evaluation's group sort to write into.
    fn give_spare(&mut self, spare: SpareRows);

    /// Builds only the value's struct fields named in `fields` (the others
    /// as placeholders), where the output knows how ([`PairOutput::build_only`]).
    fn build_only(&mut self, fields: &[String]);

    /// The buffer the last evaluation's group sort left over.
    fn take_spare(&mut self) -> SpareRows;

    /// Evaluates to each pair's value alone, without the by-key form's
    /// list of `{key0, …, value}` per group: for a consumer that reads no
    /// key.
    fn values_only(&mut self);

    /// Keeps the row buffers, emptied, once every group is evaluated, for
    /// the next rows to fill (a spilled run's next range), where otherwise
    /// they are freed. Their capacity stays in [`Self::buffered_size`].
    fn keep_buffers(&mut self);

    /// Decodes keys with `keys`, which codes them for
    /// [`Self::update_coded`], instead of its own table.
    fn share_keys(&mut self, keys: Arc<SharedKeyCodes>);

    /// Appends `rows` of `values` (the aggregate's log columns, the
    /// arguments after its keys), row `rows[k]` to group `groups[k]`, of
    /// `total_num_groups`; row `i`'s keys are coded `codes[i]` by the table
    /// given to [`Self::share_keys`].
    fn update_coded(
        &mut self,
        values: &[ArrayRef],
        rows: &[u32],
        groups: &[u32],
        codes: &[u64],
        total_num_groups: usize,
    ) -> Result<()>;

    /// Writes every buffered row to `write(range, bytes)`, range by range
    /// in order (`range_of(group)`, of `ranges`), and drops them, keeping
    /// the buffers' capacity when `keep_buffers`; the rows written. Only
    /// before anything is evaluated.
    fn spill(
        &mut self,
        ranges: usize,
        range_of: &dyn Fn(u32) -> usize,
        write: &mut dyn FnMut(usize, &[u8]) -> Result<()>,
        keep_buffers: bool,
    ) -> Result<usize>;

    /// Appends rows that [`Self::spill`] wrote, their groups less `base`,
    /// of `total_num_groups`.
    fn unspill(&mut self, bytes: &[u8], base: u32, total_num_groups: usize) -> Result<()>;

    /// Bytes of the rows buffered, which [`Self::spill`] would write and
    /// empty (their buffers keep their capacity, counted in
    /// [`Self::buffered_size`]).
    fn filled_size(&self) -> usize;
}

impl<O: PairOutput + Send> RowsAccumulator for WindowingGroups<O> {
    fn evaluate_all(&mut self, total_num_groups: usize) -> Result<ArrayRef> {
        if total_num_groups > self.num_groups {
            self.num_groups = total_num_groups;
            self.index = None;
        }
        self.evaluate(EmitTo::All)
    }

    fn buffered_size(&self) -> usize {
        GroupsAccumulator::size(self)
    }

    fn give_spare(&mut self, spare: SpareRows) {
        self.log.spare = spare.0;
    }

    fn build_only(&mut self, fields: &[String]) {
        self.output.build_only(fields);
    }

    fn take_spare(&mut self) -> SpareRows {
        SpareRows(std::mem::take(&mut self.log.spare))
    }

    fn values_only(&mut self) {
        self.values_only = true;
    }

    fn keep_buffers(&mut self) {
        self.keep_buffers = true;
    }

    fn share_keys(&mut self, keys: Arc<SharedKeyCodes>) {
        self.shared_keys = Some(keys);
    }

    fn update_coded(
        &mut self,
        values: &[ArrayRef],
        rows: &[u32],
        groups: &[u32],
        codes: &[u64],
        total_num_groups: usize,
    ) -> Result<()> {
        if self.keys.is_none() || self.shared_keys.is_none() {
            return Err(exec_datafusion_err!(
                "coded keys reached a windowing aggregate without a shared key table"
            ));
        }
        let rows = rows
            .iter()
            .zip(groups)
            .map(|(&i, &g)| (i as usize, g as usize));
        self.append_log(values, rows, total_num_groups, |_, i| codes[i])
    }

    fn spill(
        &mut self,
        ranges: usize,
        range_of: &dyn Fn(u32) -> usize,
        write: &mut dyn FnMut(usize, &[u8]) -> Result<()>,
        keep_buffers: bool,
    ) -> Result<usize> {
        if self.base != 0 {
            return Err(exec_datafusion_err!(
                "a windowing aggregate spills only before it evaluates"
            ));
        }
        self.index = None;
        self.log.spill(ranges, range_of, write, keep_buffers)
    }

    fn unspill(&mut self, bytes: &[u8], base: u32, total_num_groups: usize) -> Result<()> {
        self.num_groups = self.num_groups.max(total_num_groups);
        self.index = None;
        self.log.unspill(bytes, base)
    }

    fn filled_size(&self) -> usize {
        self.log.filled()
    }
}

/// The plain `Accumulator` (no GROUP BY, window context): one group.
#[derive(Debug)]
pub struct SingleGroup<O: PairOutput>(pub WindowingGroups<O>);

impl<O: PairOutput> Accumulator for SingleGroup<O> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let groups = vec![0; values.first().map_or(0, |v| v.len())];
        self.0.update_batch(values, &groups, None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.0.num_groups = 1;
        let snapshot = self.0.state(EmitTo::All)?;
        self.merge_batch(&snapshot)?;
        let value = self.0.evaluate(EmitTo::All)?;
        self.merge_batch(&snapshot)?;
        ScalarValue::try_from_array(&value, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.0.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.num_groups = 1;
        let state = self.0.state(EmitTo::All)?;
        self.merge_batch(&state)?;
        state
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let groups = vec![0; states.first().map_or(0, |v| v.len())];
        self.0.merge_batch(states, &groups, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{StringArray, TimestampMicrosecondArray};
    use arrow::compute::cast;

    /// Messages per group, as the output.
    #[derive(Debug, Default)]
    struct Count(Vec<i64>);

    impl PairOutput for Count {
        fn begin(&mut self, _groups: usize) {
            self.0.clear();
        }
        fn push_group(&mut self, _: &LogRows, _: u32, outcomes: &[MessageOutcome]) -> Result<()> {
            self.0.push(outcomes.len() as i64);
            Ok(())
        }
        fn finish(&mut self) -> Result<ArrayRef> {
            Ok(Arc::new(Int64Array::from(std::mem::take(&mut self.0))))
        }
    }

    /// `n` rows, row i in group `i % groups`, every message distinct.
    fn batch(n: usize) -> Vec<ArrayRef> {
        let s = |v: Vec<Option<String>>| -> ArrayRef {
            cast(&StringArray::from(v), &DataType::Utf8View).unwrap()
        };
        let ids = (0..n).map(|i| Some(format!("id{i}"))).collect();
        let same = |v: &str| (0..n).map(|_| Some(v.to_string())).collect();
        let ts: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from((0..n as i64).collect::<Vec<_>>()).with_timezone("UTC"),
        );
        vec![
            s(ids),
            s(same("outbound")),
            s(same("template")),
            s(same("marketing")),
            s(same("delivered")),
            ts.clone(),
            ts,
            s((0..n).map(|_| None).collect()),
        ]
    }

    fn counts(a: &ArrayRef) -> Vec<i64> {
        a.as_primitive::<Int64Type>().values().to_vec()
    }

    /// An accumulator; `two_pass` sorts in two passes however few its groups.
    fn accumulator(two_pass: bool) -> WindowingGroups<Count> {
        let mut g = WindowingGroups::new(RuleChoice::Auto, Count::default());
        if two_pass {
            g.log.sort_buckets = 3;
        }
        g
    }

    #[test]
    fn kept_buffers_are_emptied_by_an_evaluation_and_refilled_by_the_next_rows() {
        let n = 1000;
        let mut values = batch(n);
        values[0] = cast(
            &StringArray::from_iter_values((0..n).map(|i| format!("wamid.{i:040}"))),
            &DataType::Utf8View,
        )
        .unwrap();
        let groups: Vec<usize> = (0..n).map(|i| i % 7).collect();
        let mut kept = accumulator(false);
        RowsAccumulator::keep_buffers(&mut kept);
        let mut answers = vec![];
        let mut capacities = vec![];
        for _ in 0..2 {
            kept.update_batch(&values, &groups, None, 7).unwrap();
            answers.push(counts(
                &RowsAccumulator::evaluate_all(&mut kept, 7).unwrap(),
            ));
            let log = &kept.log;
            assert_eq!((log.len(), log.rows.len(), log.id_bytes.len()), (0, 0, 0));
            capacities.push((log.rows.capacity(), log.id_bytes.capacity()));
        }
        for (rows, ids) in &capacities {
            assert!(*rows >= n && *ids >= n * 46, "{capacities:?}");
        }
        let mut fresh = accumulator(false);
        fresh.update_batch(&values, &groups, None, 7).unwrap();
        let expected = counts(&RowsAccumulator::evaluate_all(&mut fresh, 7).unwrap());
        assert_eq!(answers, [expected.clone(), expected]);
        assert_eq!(
            fresh.log.rows.capacity(),
            0,
            "without keep_buffers they are freed"
        );
    }

    #[test]
    fn sorting_moves_rows_whole_into_group_order() {
        // Base 10: in place (groups below 10 already emitted); base 0 and
        // few groups: scattered into a new buffer.
        for (base, buckets) in [(10, 3), (10, 8), (10, SORT_BUCKETS), (0, 8)] {
            let mut log = LogRows::default();
            let n = 1000u32;
            for i in 0..n {
                let group = (i * 7919) % 97;
                let id = mixed_id(i);
                log.push(
                    group as usize,
                    (i % 40) as u8,
                    i as i64,
                    Some(-(i as i64)),
                    id.as_bytes(),
                    0,
                )
                .unwrap();
            }
            let row_of = |log: &LogRows, r: u32| {
                let p = log.rows[r as usize];
                (
                    log.group[r as usize],
                    p.code(),
                    p.sent_at(),
                    p.delivered_at,
                    log.id_str(r).to_string(),
                    LogRows::id_hash(&p),
                )
            };
            let mut before: Vec<_> = (0..n).map(|r| row_of(&log, r)).collect();
            // Groups below `base` are already emitted: they go first, in any order.
            let index = log.sort_by_group(base, 97 - base, buckets);
            let after: Vec<_> = (0..n).map(|r| row_of(&log, r)).collect();
            let dead = after.iter().take_while(|r| (r.0 as usize) < base).count();
            assert_eq!(dead > 0, base > 0);
            assert!(after[dead..].iter().all(|r| r.0 as usize >= base));
            assert!(after[dead..].windows(2).all(|w| w[0].0 <= w[1].0));
            for g in base..97 {
                let rows = index.rows(g);
                assert!(!rows.is_empty());
                assert!(after[rows].iter().all(|r| r.0 as usize == g));
            }
            let mut after = after;
            before.sort();
            after.sort();
            assert_eq!(before, after);
        }
    }

    /// Short ids (kept in the row) and long ones (kept aside), mixed.
    #[test]
    fn short_copies_copy_every_length_exactly() {
        let src: Vec<u8> = (1..=INLINE_ID as u8).collect();
        for n in 0..=INLINE_ID {
            let mut dst = [0u8; INLINE_ID];
            copy_short(&mut dst, &src[..n]);
            assert_eq!(&dst[..n], &src[..n]);
            assert!(dst[n..].iter().all(|&b| b == 0), "length {n}");
        }
    }

    fn mixed_id(i: u32) -> String {
        if i.is_multiple_of(3) {
            format!("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI{i:08}")
        } else {
            format!("m{i}")
        }
    }

    #[test]
    fn ids_short_and_long_survive_compaction_with_their_hashes() {
        let mut log = LogRows::default();
        for i in 0..300u32 {
            log.push(
                (i % 10) as usize,
                0,
                i as i64,
                None,
                mixed_id(i).as_bytes(),
                0,
            )
            .unwrap();
        }
        assert!(log.rows.iter().any(|p| p.inline_len().is_none()));
        assert!(log.rows.iter().any(|p| p.inline_len() == Some(1 + 3)));
        log.compact(4);
        assert_eq!(log.len(), 180);
        for r in 0..log.len() as u32 {
            let i = log.sent_at(r) as u32;
            assert_eq!(log.group[r as usize], i % 10 - 4);
            assert_eq!(log.id_str(r), mixed_id(i));
            assert_eq!(
                LogRows::id_hash(&log.rows[r as usize]),
                crate::rules::id_hash(mixed_id(i).as_bytes())
            );
            assert_eq!(log.delivered_at(r), None);
        }
    }

    #[test]
    fn spilled_rows_come_back_whole_range_by_range() {
        let mut log = LogRows::default();
        // Enough rows that each range is written in several chunks,
        // interleaved with the others'.
        for i in 0..30000u32 {
            let delivered = i.is_multiple_of(4).then_some(i as i64 * 7);
            let (code, key) = ((i % 45) as u8, u64::from(i) * 31);
            log.push(
                (i % 20) as usize,
                code,
                i as i64,
                delivered,
                mixed_id(i).as_bytes(),
                key,
            )
            .unwrap();
        }
        // Ranges of 5, 5, 10 groups; records written in chunks per range.
        let range_of = |g: u32| match g {
            0..5 => 0,
            5..10 => 1,
            _ => 2,
        };
        let mut written: Vec<Vec<u8>> = vec![vec![]; 3];
        let mut writes = vec![];
        let rows = log
            .spill(
                3,
                &range_of,
                &mut |r, bytes| {
                    // Each write is whole records.
                    LogRows::default().unspill(bytes, 0).unwrap();
                    written[r].extend_from_slice(bytes);
                    writes.push(r);
                    Ok(())
                },
                true,
            )
            .unwrap();
        assert_eq!((rows, log.len(), log.filled()), (30000, 0, 0));
        assert!(
            writes.windows(2).any(|w| w[0] > w[1]),
            "ranges interleaved: {writes:?}"
        );
        assert!(log.size() >= 30000 * 44, "the buffers kept");
        let mut seen = 0;
        for (r, base) in [(0, 0u32), (1, 5), (2, 10)] {
            let mut back = LogRows::default();
            // Read back in two pieces cut between records.
            let half = written[r].len() / 2;
            let cut = (half..written[r].len())
                .find(|&at| {
                    let mut probe = LogRows::default();
                    probe.unspill(&written[r][..at], base).is_ok()
                })
                .unwrap();
            back.unspill(&written[r][..cut], base).unwrap();
            back.unspill(&written[r][cut..], base).unwrap();
            for row in 0..back.len() as u32 {
                let i = back.sent_at(row) as u32;
                assert_eq!(back.group[row as usize] + base, i % 20);
                assert_eq!(range_of(i % 20), r);
                assert_eq!(back.id_str(row), mixed_id(i));
                assert_eq!(
                    LogRows::id_hash(&back.rows[row as usize]),
                    crate::rules::id_hash(mixed_id(i).as_bytes())
                );
                assert_eq!(back.code(row), (i % 45) as u8);
                assert_eq!(back.key(row), u64::from(i) * 31);
                assert_eq!(
                    back.delivered_at(row),
                    i.is_multiple_of(4).then_some(i as i64 * 7)
                );
            }
            seen += back.len();
        }
        assert_eq!(seen, 30000);
        let e = LogRows::default()
            .unspill(&written[0][..10], 0)
            .unwrap_err();
        assert!(e.to_string().contains("cut short"), "{e}");
    }

    #[test]
    fn spill_records_hold_a_delivery_in_four_bytes_and_a_long_id_without_hash_or_prefix() {
        let sent = 1_706_745_600_000_000;
        let long = format!("wamid.{}", "H".repeat(52));
        let other = "x".repeat(40);
        let cases: [(Option<i64>, &str, usize); 6] = [
            (Some(sent + 3_000_000), &long, SPILLED_HEAD + 1 + 52),
            (Some(sent), &other, SPILLED_HEAD + 1 + 40),
            (Some(sent - 1), "wamid.0123", SPILLED_HEAD + 10),
            (None, "", SPILLED_HEAD),
            (Some(sent + (1 << 31)), "wamid.0123", SPILLED_HEAD + 8 + 10),
            (
                Some(sent + 86_400_000_000),
                &long,
                SPILLED_HEAD + 8 + 1 + 52,
            ),
        ];
        for (delivered, id, expected) in cases {
            let mut log = LogRows::default();
            log.push(0, 3, sent, delivered, id.as_bytes(), 7).unwrap();
            let mut bytes = vec![];
            let mut write = |_, b: &[u8]| {
                bytes.extend_from_slice(b);
                Ok(())
            };
            log.spill(1, &|_| 0, &mut write, false).unwrap();
            assert_eq!(bytes.len(), expected, "{delivered:?} {id}");
            let mut back = LogRows::default();
            back.unspill(&bytes, 0).unwrap();
            assert_eq!((back.delivered_at(0), back.id_str(0)), (delivered, id));
        }
    }

    #[test]
    fn spill_records_round_trip_at_the_extremes() {
        let times = [-SENT_LIMIT, -1, 0, SENT_LIMIT - 1];
        let deliveries = [None, Some(i64::MIN + 1), Some(-1), Some(0), Some(i64::MAX)];
        // Long ids with and without the platform's prefix, on both sides of
        // the one-byte length.
        let ids: Vec<String> = [0, 1, 15, 16, 17, 64, 126, 127, 300]
            .map(|n| "w".repeat(n))
            .into_iter()
            .chain([11, 126, 127, 300].map(|n| format!("wamid.{}", "w".repeat(n))))
            .collect();
        let mut log = LogRows::default();
        let mut expected = vec![];
        for (i, (&t, &d)) in times
            .iter()
            .flat_map(|t| deliveries.iter().map(move |d| (t, d)))
            .enumerate()
        {
            let id = &ids[i % ids.len()];
            let key = [0, 127, 128, u64::MAX][i % 4];
            log.push(i % 3, 44, t, d, id.as_bytes(), key).unwrap();
            expected.push((t, d, key, id.clone()));
        }
        let mut bytes = vec![];
        let mut write = |_, b: &[u8]| {
            bytes.extend_from_slice(b);
            Ok(())
        };
        log.spill(1, &|_| 0, &mut write, false).unwrap();
        let mut back = LogRows::default();
        back.unspill(&bytes, 0).unwrap();
        assert_eq!(back.len(), expected.len());
        for (r, (t, d, key, id)) in expected.iter().enumerate() {
            let r32 = r as u32;
            assert_eq!(back.sent_at(r32), *t, "row {r}");
            assert_eq!(back.delivered_at(r32), *d, "row {r}");
            assert_eq!(back.key(r32), *key, "row {r}");
            assert_eq!(back.id_str(r32), id, "row {r}");
            assert_eq!(back.code(r32), 44);
            assert_eq!(back.group[r] as usize, r % 3);
            assert_eq!(
                LogRows::id_hash(&back.rows[r]),
                crate::rules::id_hash(id.as_bytes())
            );
        }
        // Every proper prefix is cut short or ends between records.
        for at in 1..bytes.len() {
            let mut probe = LogRows::default();
            if probe.unspill(&bytes[..at], 0).is_ok() {
                assert!(probe.len() < expected.len());
            }
        }
    }

    #[test]
    fn rows_keep_their_times_codes_and_ids_within_the_supported_years() {
        let mut log = LogRows::default();
        let times = [-SENT_LIMIT, -1, 0, 1_706_745_600_000_000, SENT_LIMIT - 1];
        for (i, &t) in times.iter().enumerate() {
            let code = 44 - i as u8; // up to the largest code
            let id = "x".repeat(i * 5); // 0 to 20 bytes: short and long
            log.push(i, code, t, Some(t ^ 7), id.as_bytes(), 9).unwrap();
        }
        for (r, &t) in times.iter().enumerate() {
            let r32 = r as u32;
            assert_eq!(log.sent_at(r32), t);
            assert_eq!(log.delivered_at(r32), Some(t ^ 7));
            assert_eq!(log.code(r32), 44 - r as u8);
            assert_eq!(log.id_str(r32), "x".repeat(r * 5));
            assert_eq!(log.key(r32), 9);
        }
        for t in [SENT_LIMIT, -SENT_LIMIT - 1, i64::MAX] {
            let e = log.push(0, 0, t, None, b"late", 0).unwrap_err();
            assert!(e.to_string().contains("\"late\": sent_at"), "{e}");
        }
        assert_eq!(log.len(), times.len());
        assert_eq!(std::mem::size_of::<Packed>(), 40);
    }

    #[test]
    fn emitting_a_few_groups_at_a_time_matches_emitting_all() {
        for two_pass in [false, true] {
            emitting_in_pieces(two_pass);
        }
    }

    fn emitting_in_pieces(two_pass: bool) {
        let groups = 7;
        let values = batch(50);
        let group_of: Vec<usize> = (0..50).map(|i| i % groups).collect();
        let mut all = WindowingGroups::new(RuleChoice::Auto, Count::default());
        all.update_batch(&values, &group_of, None, groups).unwrap();
        let expected = counts(&all.evaluate(EmitTo::All).unwrap());
        assert_eq!(expected.iter().sum::<i64>(), 50);

        // Partial: state in pieces; final: merge the pieces, evaluate in pieces.
        let mut partial = accumulator(two_pass);
        partial
            .update_batch(&values, &group_of, None, groups)
            .unwrap();
        let mut final_ = accumulator(two_pass);
        let mut next_group = 0;
        for n in [2, 1, 3, 5] {
            let state = partial.state(EmitTo::First(n)).unwrap();
            let rows = state[0].len();
            let ids: Vec<usize> = (next_group..next_group + rows).collect();
            next_group += rows;
            final_.merge_batch(&state, &ids, next_group).unwrap();
        }
        assert_eq!(next_group, groups);
        let mut got = counts(&final_.evaluate(EmitTo::First(3)).unwrap());
        got.extend(counts(&final_.evaluate(EmitTo::First(1)).unwrap()));
        // New rows arrive for a group after others were emitted.
        final_.update_batch(&batch(1), &[0], None, 3).unwrap();
        let rest = counts(&final_.evaluate(EmitTo::All).unwrap());
        assert_eq!(rest.len(), 3);
        got.extend(rest);
        let mut want = expected.clone();
        want[4] += 1; // group 4 (then renumbered 0) got one more message
        assert_eq!(got, want);
        assert!(final_.size() < 1 << 20);
    }

    /// Customers' messages per (group, key), as a keyed output lists them.
    fn per_key(a: &ArrayRef) -> Vec<(usize, Option<String>, i64)> {
        let lists = a.as_list::<i32>();
        let mut out = vec![];
        for g in 0..lists.len() {
            let pairs = lists.value(g);
            let pairs = pairs.as_struct();
            let keys = arrow::compute::cast(pairs.column(0), &DataType::Utf8).unwrap();
            let keys = keys.as_string::<i32>();
            let counts = pairs.column(1).as_primitive::<Int64Type>();
            for p in 0..pairs.len() {
                let key = keys.is_valid(p).then(|| keys.value(p).to_string());
                out.push((g, key, counts.value(p)));
            }
        }
        out
    }

    #[test]
    fn by_key_groups_split_rows_by_key_and_survive_state_and_merge() {
        let n = 60;
        let key_of = |i: usize| -> Option<&str> {
            ["447", "0447", "x-1", "", "123456789012345678", "7"]
                .get(i % 7)
                .copied()
        };
        let keys: ArrayRef = Arc::new(arrow::array::StringViewArray::from(
            (0..n).map(key_of).collect::<Vec<_>>(),
        ));
        let log = batch(n);
        let codes = LogBatch::try_new(&log).unwrap().codes().unwrap();
        let values: Vec<ArrayRef> = vec![
            keys,
            Arc::clone(&log[0]),
            Arc::new(UInt8Array::from(codes)),
            Arc::clone(&log[5]),
            Arc::clone(&log[6]),
        ];
        let types: Vec<&DataType> = values.iter().map(|v| v.data_type()).collect();
        let groups = 3;
        let group_of: Vec<usize> = (0..n).map(|i| i % groups).collect();
        let mut want = std::collections::BTreeMap::new();
        for (i, &group) in group_of.iter().enumerate() {
            *want
                .entry((group, key_of(i).map(String::from)))
                .or_insert(0i64) += 1;
        }
        let want: Vec<_> = want.into_iter().map(|((g, k), c)| (g, k, c)).collect();
        let sorted = |mut v: Vec<(usize, Option<String>, i64)>| {
            v.sort();
            v
        };
        let keyed =
            || WindowingGroups::new(RuleChoice::Auto, Count::default()).with_arg_types(&types);

        let mut direct = keyed();
        direct.log.sort_buckets = 3;
        direct
            .update_batch(&values, &group_of, None, groups)
            .unwrap();
        let got = per_key(&direct.evaluate(EmitTo::All).unwrap());
        // Within a group, keys come in code order: digit keys by length.
        let first: Vec<_> = got
            .iter()
            .filter(|p| p.0 == 0)
            .map(|p| p.1.clone())
            .collect();
        assert_eq!(first.len(), 7);
        assert_eq!(
            first[..3],
            [Some(String::new()), Some("7".into()), Some("447".into())]
        );
        assert_eq!(first[6], None);
        assert_eq!(sorted(got), want);

        // Spilled or two-phase: the state carries each row's key.
        let mut partial = keyed();
        partial
            .update_batch(&values, &group_of, None, groups)
            .unwrap();
        let mut final_ = keyed();
        let first_state = partial.state(EmitTo::First(1)).unwrap();
        assert_eq!(first_state.len(), 5);
        final_.merge_batch(&first_state, &[0], 1).unwrap();
        let rest = partial.state(EmitTo::All).unwrap();
        final_.merge_batch(&rest, &[1, 2], groups).unwrap();
        assert_eq!(
            sorted(per_key(&final_.evaluate(EmitTo::All).unwrap())),
            want
        );

        // Skipped partial aggregation: each row its own state.
        let state = keyed().convert_to_state(&values, None).unwrap();
        let mut merged = keyed();
        merged.merge_batch(&state, &group_of, groups).unwrap();
        assert_eq!(
            sorted(per_key(&merged.evaluate(EmitTo::All).unwrap())),
            want
        );
    }
}
