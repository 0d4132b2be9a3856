//! Synthetic message logs (`wausage generate`).
//!
//! Benchmarks, demos and tests need message logs that look like a real WhatsApp Business
//! export (see `message-log.md`) without shipping customer data. This module writes them as
//! Parquet: a fixed population of customers with real-format phone numbers from many
//! countries, activity as "situations" (template campaigns, OTPs, support chats through free
//! entry points, replies outside the 24-hour window, templates just either side of a 24-hour
//! boundary, `sent` rows later followed by their `delivered` row), in arrival order.
//!
//! The output depends only on the options: a seeded SplitMix64 generator, no hash-map
//! iteration, and time slices that are generated independently of each other and then merged
//! in order. Rows are streamed slice by slice, so memory stays small at any size.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondArray};
use arrow::datatypes::SchemaRef;
use chrono::{Datelike, NaiveDate};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::error::{Result, WaError};

/// What to generate and where.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Output directory (created if missing).
    pub out: PathBuf,
    /// Number of distinct messages (message ids); duplicate rows come on top.
    pub messages: u64,
    /// Size of the customer population; default `messages / 50`, at least 1.
    pub customers: Option<u64>,
    /// Business accounts `acct-1` .. `acct-N`.
    pub accounts: u32,
    pub seed: u64,
    /// First day (UTC) of the log; `sent_at` lies in `[start, start + days)`.
    pub start: NaiveDate,
    pub days: u32,
    /// Write `OUT/month=YYYY-MM/part-*.parquet` instead of `OUT/part-*.parquet`.
    pub partition_by_month: bool,
    /// Rows (duplicates included) per file; default 2,000,000.
    pub rows_per_file: Option<u64>,
    /// Times in whole seconds, as webhooks carry them, so that the log's
    /// webhooks fold back into the same log (`generate --webhooks`).
    pub whole_seconds: bool,
    /// Ids of 16 bytes (`wamid.` and ten base-36 digits) instead of the
    /// platform's 56–64 characters.
    pub short_ids: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            out: PathBuf::from("generated"),
            messages: 1_000_000,
            customers: None,
            accounts: 3,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2024, 2, 1).expect("valid date"),
            days: 28,
            partition_by_month: false,
            rows_per_file: None,
            whole_seconds: false,
            short_ids: false,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Rows written, duplicate rows included.
    pub rows: u64,
    /// Distinct message ids written (always `GenerateOptions::messages`).
    pub messages: u64,
    /// The files written, in row order.
    pub files: Vec<PathBuf>,
}

const SEC: i64 = 1_000_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
/// `delivered_at` of a row that was never delivered.
const NULL_TS: i64 = i64::MIN;
const ROW_GROUP_ROWS: usize = 256 * 1024;
const BATCH_ROWS: usize = 64 * 1024;
/// At most this many batches (about 80 MB of rows) wait for each writer.
const MAX_LAG_BATCHES: u64 = 32;
/// Aim for about this many messages per independently generated time slice.
const SLICE_MESSAGES: u64 = 64 * 1024;
const MAX_CUSTOMERS: u64 = 100_000_000;

/// Write a synthetic message log as described by `opts`.
///
/// One thread generates the rows and cuts them into files; two threads encode the files
/// (even and odd file numbers), so the output does not depend on thread timing.
pub fn generate(opts: &GenerateOptions) -> Result<GenerateSummary> {
    let plan = Plan::new(opts)?;
    fs::create_dir_all(&opts.out).map_err(|e| io_err(&opts.out, e))?;
    let props = writer_properties();
    // Each writer may lag a whole file behind, so that both encode at the same time while the
    // producer fills the files in turn.
    let lag = (plan.per_file.div_ceil(BATCH_ROWS as u64)).min(MAX_LAG_BATCHES) as usize + 1;
    let (tx0, rx0) = mpsc::sync_channel(lag);
    let (tx1, rx1) = mpsc::sync_channel(lag);
    let (rows, files0, files1) = std::thread::scope(|s| {
        let producer = s.spawn(|| plan.produce([tx0, tx1]));
        let writer1 = s.spawn(|| write_files(&plan, rx1, &props));
        let files0 = write_files(&plan, rx0, &props);
        (join(producer), files0, join(writer1))
    });
    // A writer's failure stops the producer, which stops the other writer: report the cause.
    let mut files = files0?;
    files.extend(files1?);
    files.sort();
    let files: Vec<PathBuf> = files.into_iter().map(|(_, path)| path).collect();
    remove_stale(&opts.out, &files)?;
    Ok(GenerateSummary {
        rows,
        messages: opts.messages,
        files,
    })
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// The Arrow schema of a generated log (`message-log.md`).
fn schema() -> SchemaRef {
    crate::engine::logs::written_log_schema(vec![])
}

/// Business phone numbers per account: the unit of `pmp26`'s service
/// allowance. Each account has two; a customer always talks to the same one.
const PHONE_NUMBERS_PER_ACCOUNT: usize = 2;

/// The platform's phone number ids are 15 digits.
fn phone_number_id(account: usize, k: usize) -> String {
    format!("1065403522{:03}{k:02}", account + 1)
}

/// Template names by category, as a business names its templates.
const MARKETING_TEMPLATES: [&str; 3] = ["spring_sale", "new_arrivals", "cart_reminder"];
const UTILITY_TEMPLATES: [&str; 3] = ["order_confirmation", "shipping_update", "payment_receipt"];
const AUTHENTICATION_TEMPLATES: [&str; 1] = ["login_code"];

/// A template's name, chosen from its message number (not from the random
/// streams, so that naming templates leaves every other column as it was).
fn template_name(kind: Kind, no: u64) -> Option<&'static str> {
    let pick = |names: &'static [&'static str]| names[(mix(no) % names.len() as u64) as usize];
    match kind {
        Kind::Marketing => Some(pick(&MARKETING_TEMPLATES)),
        Kind::Utility => Some(pick(&UTILITY_TEMPLATES)),
        Kind::Authentication => Some(pick(&AUTHENTICATION_TEMPLATES)),
        Kind::Inbound | Kind::FreeForm => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Randomness

/// SplitMix64's output function: a bijection on `u64` with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64: tiny, fast and plenty for synthetic data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        Rng(mix(seed ^ mix(stream.wrapping_add(0x5EED))))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in `[0, n)`.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Uniform duration in `[lo, hi)`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }
}

/// The compact part of a message id: a bijection of the message number on 50 bits (so ids
/// never collide), keyed by the seed. 36^10 > 2^50, so ten base-36 digits always suffice.
fn id_code(no: u64, key: u64) -> u64 {
    const MASK: u64 = (1 << 50) - 1;
    let mut x = no.wrapping_add(key) & MASK;
    x ^= x >> 23;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) & MASK;
    x ^= x >> 26;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9) & MASK;
    x ^ (x >> 21)
}

/// An id as the platform writes them: `wamid.` and the base64 of a
/// protobuf-like message holding the customer's number and an 18-digit hex
/// key (`wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjRBNTY…`), 56–64 characters. The
/// key holds `code` (unique) and a mix of it, so ids never collide.
fn write_platform_id<'b>(code: u64, digits: &str, inbound: bool, buf: &'b mut Vec<u8>) -> &'b str {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut raw = [0u8; 48];
    let digits = &digits.as_bytes()[..digits.len().min(15)];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        raw[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    put(&[0x1C, 0x18, digits.len() as u8]);
    put(digits);
    put(&[
        0x15,
        0x02,
        0x00,
        if inbound { 0x12 } else { 0x11 },
        0x18,
        0x12,
    ]);
    // 72 bits: the code's 50, then 22 of its mix.
    let key = (code as u128) << 22 | (mix(code) >> 42) as u128;
    let mut hex = [0u8; 18];
    for (i, h) in hex.iter_mut().enumerate() {
        *h = HEX[(key >> ((17 - i) * 4) & 0xF) as usize];
    }
    put(&hex);
    put(&[0x00]);
    buf.clear();
    buf.extend_from_slice(b"wamid.");
    base64(&raw[..n], buf);
    std::str::from_utf8(buf).expect("ASCII")
}

/// Standard base64, without padding.
fn base64(bytes: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize]);
        }
    }
}

/// `wamid.` followed by ten base-36 digits.
fn write_id(code: u64, buf: &mut [u8; 16]) -> &str {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    buf[..6].copy_from_slice(b"wamid.");
    let mut x = code;
    for b in buf[6..].iter_mut().rev() {
        *b = DIGITS[(x % 36) as usize];
        x /= 36;
    }
    std::str::from_utf8(buf).expect("ASCII")
}

// ---------------------------------------------------------------------------------------------
// Customers

/// A country's mobile numbers: `+cc prefix subscriber`, where the prefix is one of the
/// space-separated `prefixes` and the subscriber part has `free` digits. In the North American
/// plan (`+1`) the exchange code after the area code must also start with 2-9 and not be N11.
struct Country {
    /// ISO 3166-1 code libphonenumber assigns these numbers to (checked by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    iso: &'static str,
    cc: &'static str,
    prefixes: &'static str,
    free: u32,
    weight: u64,
}

const fn c(
    iso: &'static str,
    cc: &'static str,
    prefixes: &'static str,
    free: u32,
    weight: u64,
) -> Country {
    Country {
        iso,
        cc,
        prefixes,
        free,
        weight,
    }
}

/// Real national formats; `weight` roughly follows where WhatsApp Business is used.
const COUNTRIES: &[Country] = &[
    c("ID", "62", "811 812 813 821 822 852 857", 8, 16),
    c("IN", "91", "98 99 96 94 93", 8, 16),
    c("BR", "55", "119 219 319", 8, 12),
    c("MX", "52", "55 33 81", 8, 8),
    c("US", "1", "212 415 646 312 713", 5, 6),
    c("CA", "1", "416 604 514", 5, 2),
    c("GB", "44", "771 772 773 774 775", 7, 5),
    c("DE", "49", "151 160 170", 8, 4),
    c("FR", "33", "60 61 62 64 65 66 67 68", 7, 3),
    c("ES", "34", "6", 8, 4),
    c("IT", "39", "320 333 347 380 393", 7, 4),
    c("RU", "7", "915 916 926 903", 7, 3),
    c("NG", "234", "803 805 806 807 808", 7, 4),
    c("ZA", "27", "82 83 84", 7, 3),
    c("TR", "90", "530 532 535 541 542 505", 7, 4),
    c("SA", "966", "50 55 56 59", 7, 3),
    c("EG", "20", "100 101 106 111 112 122", 7, 3),
    c("AE", "971", "50 52 54 55 56 58", 7, 2),
    c("CO", "57", "300 301 310 311 315 320", 7, 4),
];

/// Every customer's phone number and home account.
struct Population {
    /// E.164 with `+`, in fixed 16-byte slots (length, then the text) so that looking up a
    /// random customer touches one cache line.
    phones: Vec<[u8; 16]>,
    home: Vec<u16>,
}

impl Population {
    fn new(customers: u64, accounts: u32, seed: u64) -> Self {
        let total: u64 = COUNTRIES.iter().map(|c| c.weight).sum();
        let prefixes: Vec<Vec<String>> = COUNTRIES.iter().map(expand_prefixes).collect();
        let mut issued = vec![0u64; COUNTRIES.len()];
        let mut pop = Population {
            phones: Vec::with_capacity(customers as usize),
            home: Vec::with_capacity(customers as usize),
        };
        for i in 0..customers {
            let h = mix(seed ^ mix(i ^ 0xC057));
            let mut pick = h % total;
            let mut k = 0;
            while pick >= COUNTRIES[k].weight {
                pick -= COUNTRIES[k].weight;
                k += 1;
            }
            let number = phone_number(k, &prefixes[k], issued[k], seed);
            issued[k] += 1;
            let mut slot = [0u8; 16];
            slot[0] = number.len() as u8; // at most 15: `+` and up to 14 digits here
            slot[1..=number.len()].copy_from_slice(number.as_bytes());
            pop.phones.push(slot);
            pop.home.push(((h >> 32) % u64::from(accounts)) as u16);
        }
        pop
    }

    /// The number in E.164 with `+`.
    fn phone(&self, i: u32) -> &str {
        let slot = &self.phones[i as usize];
        std::str::from_utf8(&slot[1..=slot[0] as usize]).expect("ASCII")
    }
}

/// The national prefixes of `c`, with NANP exchange codes `[2-9][02-9]` spelled out.
fn expand_prefixes(c: &Country) -> Vec<String> {
    let mut out = Vec::new();
    for p in c.prefixes.split(' ') {
        if c.cc != "1" {
            out.push(p.to_string());
            continue;
        }
        for a in 2..=9 {
            out.extend((0..=9).filter(|&b| b != 1).map(|b| format!("{p}{a}{b}")));
        }
    }
    out
}

/// The `n`-th number issued in country `k`: an affine bijection on the country's number space
/// (while it lasts), so customers in one country never share a number.
fn phone_number(k: usize, prefixes: &[String], n: u64, seed: u64) -> String {
    let c = &COUNTRIES[k];
    let p = prefixes.len() as u64;
    let space = p * 10u64.pow(c.free);
    // 2^61 - 1 is prime and larger than any space, hence coprime with it.
    let a = ((1u64 << 61) - 1) % space;
    let b = mix(seed ^ (k as u64 + 1).wrapping_mul(0x9E37)) % space;
    let v = ((a as u128 * (n % space) as u128 + b as u128) % space as u128) as u64;
    let width = c.free as usize;
    format!("+{}{}{:0width$}", c.cc, prefixes[(v % p) as usize], v / p)
}

// ---------------------------------------------------------------------------------------------
// Messages

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Inbound,
    FreeForm,
    Marketing,
    Utility,
    Authentication,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Sent,
    Delivered,
    Read,
    Failed,
    Received,
}

const ENTRY_POINTS: [Option<&str>; 3] = [None, Some("ctwa_ad"), Some("page_cta")];

/// One log row, compact; strings are only materialised when the Arrow batch is built. The
/// derived order (by `sent`, then `no`, then `rank`) is the arrival order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    sent: i64,
    /// Message number: unique across the output, mapped to the message id.
    no: u64,
    /// 0 for the early `sent` row of a message logged twice, else 1.
    rank: u8,
    delivered: i64,
    customer: u32,
    account: u16,
    kind: Kind,
    status: Status,
    entry: u8,
    plus: bool,
}

/// Everything fixed before generation: time slices, their message budgets, the customers.
struct Plan {
    seed: u64,
    whole_seconds: bool,
    short_ids: bool,
    id_key: u64,
    start: i64,
    end: i64,
    /// Cumulative diurnal weight per hour of the period (`hours + 1` entries).
    cum: Vec<u64>,
    hours_per_slice: usize,
    /// Message numbers: slice `s` issues `budget[s]..budget[s + 1]`.
    budget: Vec<u64>,
    pop: Population,
    accounts: Vec<String>,
    /// Each account's business phone number ids.
    phone_numbers: Vec<Vec<String>>,
    /// Calendar months covered: (first microsecond, `YYYY-MM`).
    months: Vec<(i64, String)>,
    out: PathBuf,
    by_month: bool,
    per_file: u64,
}

impl Plan {
    fn new(o: &GenerateOptions) -> Result<Plan> {
        let usage = |m: &str| Err(WaError::Usage(m.to_string()));
        let customers = o.customers.unwrap_or((o.messages / 50).max(1));
        if o.messages == 0 || o.messages > 1 << 48 {
            return usage("--messages must be between 1 and 2^48");
        }
        if customers == 0 || customers > MAX_CUSTOMERS {
            return usage("--customers must be between 1 and 100000000");
        }
        if o.accounts == 0 || o.accounts > u32::from(u16::MAX) {
            return usage("--accounts must be between 1 and 65535");
        }
        if o.days == 0 || o.days > 36_600 {
            return usage("--days must be between 1 and 36600");
        }
        if o.rows_per_file == Some(0) {
            return usage("--rows-per-file must be at least 1");
        }
        let start = o
            .start
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp_micros();
        let hours = o.days as usize * 24;
        let mut cum = vec![0u64; hours + 1];
        for h in 0..hours {
            cum[h + 1] = cum[h] + hour_weight(o.start, h);
        }
        let slices = o.messages.div_ceil(SLICE_MESSAGES).min(hours as u64) as usize;
        let hours_per_slice = hours.div_ceil(slices);
        let slices = hours.div_ceil(hours_per_slice);
        let share = |h: usize| (o.messages as u128 * cum[h] as u128 / cum[hours] as u128) as u64;
        let budget = (0..=slices)
            .map(|s| share((s * hours_per_slice).min(hours)))
            .collect();
        let mut months = Vec::new();
        let mut day = o.start.with_day(1).expect("day 1");
        let last = o.start + chrono::Days::new(u64::from(o.days));
        while day < last {
            let from = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
            months.push((
                from.timestamp_micros().max(start),
                day.format("%Y-%m").to_string(),
            ));
            day = day + chrono::Months::new(1);
        }
        Ok(Plan {
            seed: o.seed,
            whole_seconds: o.whole_seconds,
            short_ids: o.short_ids,
            id_key: mix(o.seed ^ 0x1D5),
            start,
            end: start + hours as i64 * HOUR,
            cum,
            hours_per_slice,
            budget,
            pop: Population::new(customers, o.accounts, o.seed),
            accounts: (1..=o.accounts).map(|a| format!("acct-{a}")).collect(),
            phone_numbers: (0..o.accounts as usize)
                .map(|a| {
                    (0..PHONE_NUMBERS_PER_ACCOUNT)
                        .map(|k| phone_number_id(a, k))
                        .collect()
                })
                .collect(),
            months,
            out: o.out.clone(),
            by_month: o.partition_by_month,
            per_file: o.rows_per_file.unwrap_or(2_000_000),
        })
    }

    /// Generate slice by slice, merge into arrival order, cut into files and hand each
    /// batch to the writer of its file. Returns the number of rows.
    fn produce(&self, tx: [mpsc::SyncSender<Msg>; 2]) -> u64 {
        let slice_len = self.hours_per_slice as i64 * HOUR;
        // Rows that belong to a later slice than the one that generated them, by slice.
        let mut pending = vec![Vec::new(); self.budget.len() - 1];
        let (mut rows, mut file) = (0, FilePos::default());
        for s in 0..pending.len() {
            let mut due = std::mem::take(&mut pending[s]);
            for row in self.slice(s) {
                match ((row.sent - self.start) / slice_len) as usize {
                    k if k == s => due.push(row),
                    k => {
                        debug_assert!(k > s, "situations only move forward in time");
                        pending[k].push(row);
                    }
                }
            }
            due.sort_unstable();
            let mut rest = &due[..];
            while let Some(first) = rest.first() {
                let month = self.months.partition_point(|m| m.0 <= first.sent) - 1;
                let month_end = self.months.get(month + 1).map_or(i64::MAX, |m| m.0);
                if rows > 0 && (file.rows == self.per_file || self.by_month && file.month != month)
                {
                    let new_dir = self.by_month && file.month != month;
                    file = FilePos {
                        index: file.index + 1,
                        part: if new_dir { 0 } else { file.part + 1 },
                        month,
                        rows: 0,
                    };
                }
                file.month = month;
                let room = (self.per_file - file.rows).min(BATCH_ROWS as u64) as usize;
                let n = rest.partition_point(|r| r.sent < month_end).min(room);
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                let path = self.path(&file);
                (file.rows, rows) = (file.rows + n as u64, rows + n as u64);
                if tx[file.index % 2]
                    .send(Msg::Batch(file.index, path, chunk.to_vec()))
                    .is_err()
                {
                    return rows; // that writer failed; its error is the one to report
                }
            }
        }
        for t in tx {
            let _ = t.send(Msg::End);
        }
        rows
    }

    fn path(&self, f: &FilePos) -> PathBuf {
        let name = format!("part-{:05}.parquet", f.part);
        match self.by_month {
            true => self
                .out
                .join(format!("month={}", self.months[f.month].1))
                .join(name),
            false => self.out.join(name),
        }
    }

    /// The rows of the situations starting in slice `s`, unsorted.
    fn slice(&self, s: usize) -> Vec<Row> {
        let hours = self.cum.len() - 1;
        let h0 = s * self.hours_per_slice;
        let h1 = (h0 + self.hours_per_slice).min(hours);
        let budget = self.budget[s + 1] - self.budget[s];
        let mut g = SliceGen {
            plan: self,
            rng: Rng::new(self.seed, s as u64),
            rows: Vec::with_capacity(budget as usize * 21 / 20 + 16),
            next_no: self.budget[s],
            left: budget,
        };
        while g.left > 0 {
            let x = self.cum[h0] + g.rng.below(self.cum[h1] - self.cum[h0]);
            let h = self.cum.partition_point(|&c| c <= x) - 1;
            let t = self.start + h as i64 * HOUR + g.rng.between(0, HOUR);
            g.situation(t);
        }
        g.rows
    }

    fn batch(&self, rows: &[Row]) -> Result<RecordBatch> {
        let n = rows.len();
        let mut cols: Vec<StringBuilder> = [16, 8, 14, 8, 9, 9, 9]
            .iter()
            .map(|w| StringBuilder::with_capacity(n, n * w))
            .collect();
        let mut entry = StringBuilder::with_capacity(n, n);
        let mut phone_number = StringBuilder::with_capacity(n, n * 15);
        let mut template = StringBuilder::with_capacity(n, n * 12);
        let mut buf = [0u8; 16];
        let mut long = Vec::with_capacity(64);
        for r in rows {
            let phone = self.pop.phone(r.customer);
            let code = id_code(r.no, self.id_key);
            cols[0].append_value(if self.short_ids {
                write_id(code, &mut buf)
            } else {
                write_platform_id(code, &phone[1..], r.kind == Kind::Inbound, &mut long)
            });
            cols[1].append_value(&self.accounts[r.account as usize]);
            cols[2].append_value(if r.plus { phone } else { &phone[1..] });
            let (direction, message_type, category) = match r.kind {
                Kind::Inbound => ("inbound", "free_form", None),
                Kind::FreeForm => ("outbound", "free_form", None),
                Kind::Marketing => ("outbound", "template", Some("marketing")),
                Kind::Utility => ("outbound", "template", Some("utility")),
                Kind::Authentication => ("outbound", "template", Some("authentication")),
            };
            cols[3].append_value(direction);
            cols[4].append_value(message_type);
            cols[5].append_option(category);
            cols[6].append_value(match r.status {
                Status::Sent => "sent",
                Status::Delivered => "delivered",
                Status::Read => "read",
                Status::Failed => "failed",
                Status::Received => "received",
            });
            entry.append_option(ENTRY_POINTS[r.entry as usize]);
            let numbers = &self.phone_numbers[r.account as usize];
            phone_number.append_value(&numbers[r.customer as usize % numbers.len()]);
            template.append_option(template_name(r.kind, r.no));
        }
        let ts = |v: TimestampMicrosecondArray| Arc::new(v.with_timezone("UTC")) as ArrayRef;
        // Flooring keeps every delivery at or after its send.
        let unit = if self.whole_seconds { SEC } else { 1 };
        let at = |t: i64| t - t.rem_euclid(unit);
        let mut arrays: Vec<ArrayRef> =
            cols.iter_mut().map(|b| Arc::new(b.finish()) as _).collect();
        arrays.push(ts(TimestampMicrosecondArray::from_iter_values(
            rows.iter().map(|r| at(r.sent)),
        )));
        arrays.push(ts(rows
            .iter()
            .map(|r| (r.delivered != NULL_TS).then(|| at(r.delivered)))
            .collect()));
        arrays.push(Arc::new(entry.finish()));
        arrays.push(Arc::new(phone_number.finish()));
        arrays.push(Arc::new(template.finish()));
        Ok(RecordBatch::try_new(schema(), arrays)?)
    }
}

/// Relative activity in hour `h` of the period (UTC): quiet nights, busy days, calmer weekends.
fn hour_weight(start: NaiveDate, h: usize) -> u64 {
    const DAY: [u64; 24] = [
        3, 2, 2, 2, 3, 4, 6, 8, 10, 11, 12, 12, 12, 12, 12, 11, 11, 10, 10, 10, 9, 8, 6, 4,
    ];
    let weekday = (start + chrono::Days::new(h as u64 / 24))
        .weekday()
        .num_days_from_monday();
    DAY[h % 24] * if weekday >= 5 { 7 } else { 10 }
}

/// The state of one slice being generated.
struct SliceGen<'a> {
    plan: &'a Plan,
    rng: Rng,
    rows: Vec<Row>,
    next_no: u64,
    left: u64,
}

/// Who a situation is between.
#[derive(Clone, Copy)]
struct Pair {
    customer: u32,
    account: u16,
}

impl SliceGen<'_> {
    /// One burst of activity between a customer and an account, starting at `t`.
    fn situation(&mut self, t: i64) {
        let customers = self.plan.pop.home.len() as f64;
        // Squaring skews the choice: the first 1% of customers get 10% of the situations.
        let u = self.rng.unit();
        let customer = ((u * u * customers) as u32).min(self.plan.pop.home.len() as u32 - 1);
        let mut account = self.plan.pop.home[customer as usize];
        if self.rng.chance(0.1) {
            account = self.rng.below(self.plan.accounts.len() as u64) as u16;
        }
        let p = Pair { customer, account };
        let _ = match self.rng.below(100) {
            0..30 => self.campaign(p, t),
            30..50 => self.order_updates(p, t),
            50..62 => self.one_time_password(p, t),
            62..90 => self.support(p, t),
            _ => self.around_24h(p, t),
        };
    }

    /// A marketing template; some customers answer it and a short chat follows.
    fn campaign(&mut self, p: Pair, t: i64) -> Option<()> {
        self.emit(p, Kind::Marketing, t, 0)?;
        if self.rng.chance(0.15) {
            let t = t + self.rng.between(MIN, 2 * HOUR);
            self.chat(p, t, 0)?;
        }
        Some(())
    }

    /// Utility templates: an order confirmation, often a shipping update hours or days later.
    fn order_updates(&mut self, p: Pair, t: i64) -> Option<()> {
        self.emit(p, Kind::Utility, t, 0)?;
        if self.rng.chance(0.3) {
            let t = t + self.rng.between(HOUR, 48 * HOUR);
            self.emit(p, Kind::Utility, t, 0)?;
            if self.rng.chance(0.1) {
                let t = t + self.rng.between(MIN, HOUR);
                self.chat(p, t, 0)?;
            }
        }
        Some(())
    }

    /// An authentication template, sometimes re-sent a minute or two later.
    fn one_time_password(&mut self, p: Pair, t: i64) -> Option<()> {
        self.emit(p, Kind::Authentication, t, 0)?;
        if self.rng.chance(0.15) {
            let t = t + self.rng.between(30 * SEC, 2 * MIN);
            self.emit(p, Kind::Authentication, t, 0)?;
        }
        Some(())
    }

    /// The customer writes first, sometimes through an ad or a Page button.
    fn support(&mut self, p: Pair, t: i64) -> Option<()> {
        let entry = match self.rng.below(100) {
            0..8 => 1,
            8..12 => 2,
            _ => 0,
        };
        let t = self.chat(p, t, entry)?;
        if self.rng.chance(0.1) {
            let kind = if self.rng.chance(0.5) {
                Kind::Marketing
            } else {
                Kind::Utility
            };
            let t = t + self.rng.between(MIN, 30 * HOUR);
            self.emit(p, kind, t, 0)?;
        }
        Some(())
    }

    /// Templates of one category about 24 hours apart, just before or just after the boundary.
    fn around_24h(&mut self, p: Pair, t: i64) -> Option<()> {
        let kind =
            [Kind::Marketing, Kind::Utility, Kind::Authentication][self.rng.below(3) as usize];
        let mut t = t;
        for _ in 0..1 + self.rng.below(3) {
            self.emit(p, kind, t, 0)?;
            let off = [6 * MIN, 36 * SEC, 2 * SEC][self.rng.below(3) as usize];
            t += 24 * HOUR + if self.rng.chance(0.5) { -off } else { off };
        }
        Some(())
    }

    /// Rounds of inbound messages answered with free-form replies; returns the last time.
    fn chat(&mut self, p: Pair, mut t: i64, entry: u8) -> Option<i64> {
        for round in 0..1 + self.rng.below(4) {
            self.emit(p, Kind::Inbound, t, if round == 0 { entry } else { 0 })?;
            let r = self.rng.unit();
            t += if r < 0.85 {
                self.rng.between(10 * SEC, 15 * MIN)
            } else if r < 0.98 {
                self.rng.between(15 * MIN, 6 * HOUR)
            } else {
                self.rng.between(24 * HOUR + MIN, 30 * HOUR) // outside the window
            };
            self.emit(p, Kind::FreeForm, t, 0)?;
            if self.rng.chance(0.3) {
                t += self.rng.between(5 * SEC, 2 * MIN);
                self.emit(p, Kind::FreeForm, t, 0)?;
            }
            t += self.rng.between(MIN, 30 * MIN);
        }
        Some(t)
    }

    /// Log one message sent (or received) at `t`; `None` ends the situation: the slice's
    /// budget is used up or `t` is past the end of the period.
    fn emit(&mut self, p: Pair, kind: Kind, t: i64, entry: u8) -> Option<()> {
        if self.left == 0 || t >= self.plan.end {
            return None;
        }
        self.left -= 1;
        self.next_no += 1;
        let mut row = Row {
            sent: t,
            delivered: NULL_TS,
            no: self.next_no - 1,
            customer: p.customer,
            account: p.account,
            kind,
            status: Status::Received,
            entry,
            plus: !self.rng.chance(0.1),
            rank: 1,
        };
        if kind != Kind::Inbound {
            let (fail, lost) = if kind == Kind::FreeForm {
                (0.01, 0.02)
            } else {
                (0.03, 0.05)
            };
            let r = self.rng.unit();
            row.status = if r < fail {
                Status::Failed
            } else if r < fail + lost {
                Status::Sent
            } else {
                let r = self.rng.unit();
                row.delivered = t + if r < 0.85 {
                    self.rng.between(SEC / 4, 8 * SEC)
                } else if r < 0.97 {
                    self.rng.between(8 * SEC, 10 * MIN)
                } else {
                    self.rng.between(HOUR, 12 * HOUR) // the phone was off
                };
                if self.rng.chance(0.05) {
                    let sent_row = Row {
                        delivered: NULL_TS,
                        status: Status::Sent,
                        rank: 0,
                        ..row
                    };
                    self.rows.push(sent_row);
                }
                if self.rng.chance(0.55) {
                    Status::Read
                } else {
                    Status::Delivered
                }
            };
        }
        self.rows.push(row);
        Some(())
    }
}

// ---------------------------------------------------------------------------------------------
// Files

/// The file the producer is filling: its number among all files, its month and its part
/// number within its directory.
#[derive(Default)]
struct FilePos {
    index: usize,
    month: usize,
    part: u32,
    rows: u64,
}

enum Msg {
    /// Rows for file number `.0`, to be written at `.1`.
    Batch(usize, PathBuf, Vec<Row>),
    /// Everything was sent: finish the open file.
    End,
}

/// A file being written under a temporary name; dropped unfinished, it is removed.
struct OpenFile {
    index: usize,
    writer: Option<ArrowWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
}

impl OpenFile {
    fn create(index: usize, path: PathBuf, props: &WriterProperties) -> Result<Self> {
        let dir = path.parent().expect("part files are inside a directory");
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let name = path.file_name().expect("file name").to_string_lossy();
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        let writer = ArrowWriter::try_new(file, schema(), Some(props.clone()))?;
        Ok(OpenFile {
            index,
            writer: Some(writer),
            tmp,
            path,
        })
    }

    fn finish(mut self) -> Result<(usize, PathBuf)> {
        self.writer.take().expect("open").close()?;
        fs::rename(&self.tmp, &self.path).map_err(|e| io_err(&self.path, e))?;
        Ok((self.index, std::mem::take(&mut self.path)))
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Write the batches sent to one writer thread; returns the files finished, by number. If
/// the producer stops without `End`, the open file is abandoned.
fn write_files(
    plan: &Plan,
    rx: mpsc::Receiver<Msg>,
    props: &WriterProperties,
) -> Result<Vec<(usize, PathBuf)>> {
    let mut done = Vec::new();
    let mut open: Option<OpenFile> = None;
    for msg in rx {
        match msg {
            Msg::Batch(index, path, rows) => {
                let batch = plan.batch(&rows)?;
                if open.as_ref().is_none_or(|f| f.index != index) {
                    done.extend(open.take().map(OpenFile::finish).transpose()?);
                    open = Some(OpenFile::create(index, path, props)?);
                }
                open.as_mut()
                    .and_then(|f| f.writer.as_mut())
                    .expect("open")
                    .write(&batch)?;
            }
            Msg::End => {
                done.extend(open.take().map(OpenFile::finish).transpose()?);
            }
        }
    }
    Ok(done)
}

/// Snappy, row groups of 256k rows, dictionary encoding except for the columns whose values
/// are (nearly) all distinct, where building a dictionary only costs time before parquet
/// falls back to plain encoding.
fn writer_properties() -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for col in ["message_id", "sent_at", "delivered_at"] {
        props = props.set_column_dictionary_enabled(ColumnPath::from(col), false);
    }
    props.build()
}

fn io_err(path: &Path, e: std::io::Error) -> WaError {
    WaError::io(path.display().to_string(), e)
}

/// Remove `part-*.parquet` files (and emptied `month=*` directories) left in `out` by an
/// earlier run, so the directory holds exactly this log.
fn remove_stale(out: &Path, written: &[PathBuf]) -> Result<()> {
    let is_part = |n: &str| n.starts_with("part-") && n.ends_with(".parquet");
    let list = |dir: &Path| -> Result<Vec<(PathBuf, String)>> {
        let entries = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
        let mut v = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(dir, e))?;
            v.push((
                entry.path(),
                entry.file_name().to_string_lossy().into_owned(),
            ));
        }
        Ok(v)
    };
    let remove = |p: &Path| fs::remove_file(p).map_err(|e| io_err(p, e));
    for (path, name) in list(out)? {
        if is_part(&name) && !written.contains(&path) {
            remove(&path)?;
        } else if name.starts_with("month=") && path.is_dir() {
            let inside = list(&path)?;
            for (p, n) in &inside {
                if is_part(n) && !written.contains(p) {
                    remove(p)?;
                }
            }
            let _ = fs::remove_dir(&path); // only succeeds when empty
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::TimestampMicrosecondType as Micros;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::collections::{BTreeMap, BTreeSet};

    /// A row read back from the files.
    #[derive(Debug)]
    struct Rec {
        id: String,
        account: String,
        customer: String,
        direction: String,
        kind: String,
        category: Option<String>,
        status: String,
        sent: i64,
        delivered: Option<i64>,
        entry: Option<String>,
    }

    fn opts(dir: &Path, messages: u64) -> GenerateOptions {
        let out = dir.to_path_buf();
        GenerateOptions {
            out,
            messages,
            ..Default::default()
        }
    }

    fn read(files: &[PathBuf]) -> Vec<Rec> {
        let mut out = Vec::new();
        for f in files {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(f).unwrap()).unwrap();
            assert_eq!(reader.schema().fields(), schema().fields(), "{f:?}");
            for b in reader.build().unwrap() {
                let b = b.unwrap();
                let strs: Vec<_> = b
                    .columns()
                    .iter()
                    .map(|c| c.as_string_opt::<i32>())
                    .collect();
                let t = |c: usize| b.column(c).as_primitive::<Micros>();
                let (sent, delivered) = (t(7), t(8));
                for i in 0..b.num_rows() {
                    let o = |c: usize| {
                        let a = strs[c].expect("a string column");
                        a.is_valid(i).then(|| a.value(i).to_string())
                    };
                    let v = |c: usize| o(c).unwrap();
                    out.push(Rec {
                        id: v(0),
                        account: v(1),
                        customer: v(2),
                        direction: v(3),
                        kind: v(4),
                        category: o(5),
                        status: v(6),
                        sent: sent.value(i),
                        delivered: delivered.is_valid(i).then(|| delivered.value(i)),
                        entry: o(9),
                    });
                }
            }
        }
        out
    }

    fn micros(y: i32, m: u32, d: u32) -> i64 {
        let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
        date.and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_micros()
    }

    #[test]
    fn writes_the_documented_columns_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let summary = generate(&opts(dir.path(), 20_000)).unwrap();
        assert_eq!(summary.files, vec![dir.path().join("part-00000.parquet")]);
        let recs = read(&summary.files);
        assert_eq!(
            (recs.len() as u64, summary.messages),
            (summary.rows, 20_000)
        );
        let (start, end) = (micros(2024, 2, 1), micros(2024, 2, 29));
        let mut ids: BTreeMap<&str, &Rec> = BTreeMap::new();
        for (i, r) in recs.iter().enumerate() {
            assert!(
                r.id.starts_with("wamid.HBg") && (56..=64).contains(&r.id.len()),
                "the platform's shape: {r:?}"
            );
            assert!(start <= r.sent && r.sent < end, "{r:?}");
            assert!(
                i == 0 || recs[i - 1].sent <= r.sent,
                "not in arrival order: {r:?}"
            );
            assert!(["acct-1", "acct-2", "acct-3"].contains(&r.account.as_str()));
            let template = r.kind == "template";
            let category = r.category.as_deref().unwrap_or("none");
            if r.direction == "inbound" {
                assert_eq!(
                    (r.kind.as_str(), category, r.status.as_str()),
                    ("free_form", "none", "received")
                );
                assert!(r.delivered.is_none());
            } else {
                assert_eq!(r.direction, "outbound");
                let expected = ["marketing", "utility", "authentication"].contains(&category);
                assert!(
                    template == expected && (template || r.kind == "free_form"),
                    "{r:?}"
                );
                let delivered = r.status == "delivered" || r.status == "read";
                assert!(
                    delivered || r.status == "sent" || r.status == "failed",
                    "{r:?}"
                );
                assert_eq!(r.delivered.is_some(), delivered, "{r:?}");
                assert!(r.delivered.is_none_or(|d| d > r.sent) && r.entry.is_none());
            }
            // A message logged twice: first its `sent` row, then the delivered one.
            if let Some(first) = ids.insert(&r.id, r) {
                assert_eq!(first.status, "sent", "{r:?}");
                assert!(r.delivered.is_some() && first.delivered.is_none(), "{r:?}");
                let same = |x: &Rec| {
                    (
                        x.account.clone(),
                        x.customer.clone(),
                        x.category.clone(),
                        x.sent,
                    )
                };
                assert_eq!(same(first), same(r));
            }
        }
        assert_eq!(ids.len(), 20_000);
        let count = |f: &dyn Fn(&Rec) -> bool| recs.iter().filter(|r| f(r)).count();
        let dups = recs.len() - 20_000;
        assert!((300..1000).contains(&dups), "{dups} duplicate rows");
        let no_plus = count(&|r| !r.customer.starts_with('+'));
        assert!(
            (1500..2500).contains(&no_plus),
            "{no_plus} numbers without +"
        );
        assert!(count(&|r| r.entry.as_deref() == Some("ctwa_ad")) > 50);
        assert!(count(&|r| r.entry.as_deref() == Some("page_cta")) > 20);
        assert!(count(&|r| r.status == "failed") > 50);
        assert!(
            count(&|r| r.status == "sent") > dups + 50,
            "templates never delivered"
        );
        assert_situations(&recs);
    }

    /// The situations the conversation rules are about all occur.
    fn assert_situations(recs: &[Rec]) {
        let mut pairs: BTreeMap<(&str, &str), Vec<&Rec>> = BTreeMap::new();
        let mut per_customer: BTreeMap<&str, (usize, BTreeSet<&str>)> = BTreeMap::new();
        for r in recs.iter().filter(|r| r.status != "sent") {
            let digits = r.customer.trim_start_matches('+');
            pairs.entry((&r.account, digits)).or_default().push(r);
            let c = per_customer.entry(digits).or_default();
            c.0 += 1;
            c.1.insert(&r.customer);
        }
        let (mut near_24h, mut late_replies) = (0, 0);
        for rows in pairs.values() {
            let mut last_template: BTreeMap<&str, i64> = BTreeMap::new();
            let mut last_inbound = None;
            for r in rows {
                if let (Some(c), Some(d)) = (&r.category, r.delivered) {
                    if let Some(prev) = last_template.insert(c, d) {
                        near_24h += usize::from((d - prev - 24 * HOUR).abs() < 10 * MIN);
                    }
                } else if r.direction == "inbound" {
                    last_inbound = Some(r.sent);
                } else if let Some(t) = last_inbound {
                    late_replies += usize::from(r.sent - t > 24 * HOUR);
                }
            }
        }
        assert!(
            near_24h > 30,
            "{near_24h} templates near 24 hours after the previous one"
        );
        assert!(
            late_replies > 10,
            "{late_replies} replies outside the window"
        );
        let both_forms = per_customer.values().filter(|c| c.1.len() == 2).count();
        assert!(
            both_forms > 50,
            "{both_forms} customers written both with and without +"
        );
        let mut activity: Vec<usize> = per_customer.values().map(|c| c.0).collect();
        activity.sort_unstable();
        let (median, top) = (activity[activity.len() / 2], activity[activity.len() - 1]);
        assert!(
            top > 10 * median,
            "activity not skewed: top {top}, median {median}"
        );
    }

    #[test]
    fn same_options_give_identical_files_and_seeds_differ() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let o = |i: usize, seed| GenerateOptions {
            rows_per_file: Some(3_000),
            seed,
            ..opts(dirs[i].path(), 7_000)
        };
        let (a, b, c) = (
            generate(&o(0, 1)).unwrap(),
            generate(&o(1, 1)).unwrap(),
            generate(&o(2, 2)).unwrap(),
        );
        assert_eq!(a.files.len(), 3);
        assert_eq!((a.rows, a.files.len()), (b.rows, b.files.len()));
        for (x, y) in a.files.iter().zip(&b.files) {
            assert!(
                fs::read(x).unwrap() == fs::read(y).unwrap(),
                "{x:?} differs"
            );
        }
        let ids = |s: &GenerateSummary| -> BTreeSet<String> {
            read(&s.files).into_iter().map(|r| r.id).collect()
        };
        assert_eq!(ids(&a).len(), 7_000);
        assert!(ids(&a).intersection(&ids(&c)).count() < 10);
        // A second run into the same directory replaces the first one's files.
        let again = generate(&GenerateOptions {
            rows_per_file: None,
            ..o(0, 1)
        })
        .unwrap();
        assert_eq!(
            fs::read_dir(dirs[0].path()).unwrap().count(),
            again.files.len()
        );
    }

    #[test]
    fn partitions_by_month() {
        let dir = tempfile::tempdir().unwrap();
        let o = GenerateOptions {
            start: NaiveDate::from_ymd_opt(2024, 1, 20).unwrap(),
            days: 20,
            partition_by_month: true,
            rows_per_file: Some(4_000),
            ..opts(dir.path(), 10_000)
        };
        let summary = generate(&o).unwrap();
        let names: Vec<String> = summary
            .files
            .iter()
            .map(|f| f.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        let expected = [
            "month=2024-01/part-00000.parquet",
            "month=2024-01/part-00001.parquet",
            "month=2024-02/part-00000.parquet",
        ];
        assert_eq!(names[..3], expected, "{names:?}");
        let mut rows = 0;
        for f in &summary.files {
            let recs = read(std::slice::from_ref(f));
            let in_feb = f.to_string_lossy().contains("month=2024-02");
            assert!(
                recs.iter()
                    .all(|r| (r.sent >= micros(2024, 2, 1)) == in_feb),
                "{f:?}"
            );
            assert!(recs.len() <= 4_000);
            rows += recs.len() as u64;
        }
        assert_eq!(rows, summary.rows);
        let ids: BTreeSet<String> = read(&summary.files).into_iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn phone_numbers_are_valid_for_their_country() {
        let check = |phone: &str, iso: &str| {
            let parsed = phonenumber::parse(None, phone).unwrap();
            assert!(
                phonenumber::is_valid(&parsed),
                "{phone} is not a valid {iso} number"
            );
            let id = parsed.country().id().map(|id| id.as_ref().to_string());
            assert_eq!(id.as_deref(), Some(iso), "{phone}");
        };
        for (k, c) in COUNTRIES.iter().enumerate() {
            let prefixes = expand_prefixes(c);
            let last = 10u64.pow(c.free) - 1;
            for (p, sub) in prefixes
                .iter()
                .flat_map(|p| [0, last / 3, last].map(|s| (p, s)))
            {
                check(
                    &format!("+{}{p}{sub:0w$}", c.cc, w = c.free as usize),
                    c.iso,
                );
            }
            for n in 0..500 {
                check(&phone_number(k, &prefixes, n, 42), c.iso);
            }
        }
        assert!(COUNTRIES.len() >= 15);
        let pop = Population::new(20_000, 3, 42);
        let numbers: BTreeSet<&str> = (0..20_000).map(|i| pop.phone(i)).collect();
        assert_eq!(numbers.len(), 20_000, "customers share numbers");
    }

    #[test]
    fn rejects_bad_options() {
        let dir = tempfile::tempdir().unwrap();
        let o = || opts(dir.path(), 10);
        for bad in [
            opts(dir.path(), 0),
            GenerateOptions { accounts: 0, ..o() },
            GenerateOptions { days: 0, ..o() },
            GenerateOptions {
                customers: Some(0),
                ..o()
            },
            GenerateOptions {
                rows_per_file: Some(0),
                ..o()
            },
        ] {
            assert!(matches!(generate(&bad), Err(WaError::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn platform_ids_are_unique_and_carry_the_customer() {
        let mut buf = vec![];
        let mut seen = std::collections::HashSet::new();
        for n in 0..50_000u64 {
            let id = write_platform_id(id_code(n, 7), "6281234567890", n % 2 == 0, &mut buf);
            assert!((56..=64).contains(&id.len()), "{id}");
            assert!(seen.insert(id.to_string()), "{id} twice");
        }
        // The platform's own example decodes to the same layout.
        let id = write_platform_id(0, "16503879439", false, &mut buf).to_string();
        assert!(id.starts_with("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI"), "{id}");
        let dir = tempfile::tempdir().unwrap();
        let short = generate(&GenerateOptions {
            short_ids: true,
            ..opts(dir.path(), 100)
        })
        .unwrap();
        for r in read(&short.files) {
            assert!(r.id.starts_with("wamid.") && r.id.len() == 16, "{r:?}");
        }
    }

    #[test]
    fn message_ids_are_unique_and_compact() {
        let mut buf = [0u8; 16];
        let mut id = |n| write_id(id_code(n, 99), &mut buf).to_string();
        let ids: BTreeSet<String> = (0..100_000).map(&mut id).collect();
        assert_eq!(ids.len(), 100_000);
        assert_eq!(id((1 << 50) - 1).len(), 16);
    }
}
