//! The message-log columns every windowing function takes, in one order,
//! and their classification into the compact codes the rules run on.
//!
//! Strings are coerced to `Utf8View` and timestamps to microseconds UTC
//! when the query is planned, so the hot loop sees one layout. Short
//! vocabulary values (`outbound`, `template`, `delivered`, ...) are inline
//! in a `Utf8View`, so most are classified by comparing one `u128` view,
//! not by comparing strings. Dictionary columns (a registered log's
//! vocabulary columns) stay dictionaries of `Utf8`: their words are
//! classified once a batch, and each row costs a key lookup.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    make_view, Array, ArrayRef, AsArray, Int32DictionaryArray, LargeStringArray, StringArray,
    StringViewArray, TimestampMicrosecondArray, UInt8Array,
};
use arrow::datatypes::{DataType, Field, Int32Type, TimeUnit, TimestampMicrosecondType, UInt8Type};
use datafusion::common::{exec_datafusion_err, plan_err, Result};

use crate::rules::{Kind, Row, Status, TemplateCategory};

/// The log columns, in argument order.
pub const LOG_ARGS: [&str; 8] = [
    "message_id",
    "direction",
    "message_type",
    "category",
    "status",
    "sent_at",
    "delivered_at",
    "entry_point",
];

/// The SQL argument list, for documentation and views.
pub const LOG_ARGS_SQL: &str =
    "message_id, direction, message_type, category, status, sent_at, delivered_at, entry_point";

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Coerces the eight log arguments (plus `extra` trailing string arguments).
pub fn coerce_log_args(name: &str, arg_types: &[DataType], extra: usize) -> Result<Vec<DataType>> {
    if arg_types.len() < LOG_ARGS.len() || arg_types.len() > LOG_ARGS.len() + extra {
        return plan_err!(
            "{name} takes the log columns ({LOG_ARGS_SQL}){}; got {} arguments",
            if extra > 0 { " and a rule set" } else { "" },
            arg_types.len()
        );
    }
    arg_types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let arg = LOG_ARGS.get(i).copied().unwrap_or("rules");
            match (arg, t) {
                ("sent_at" | "delivered_at", DataType::Timestamp(_, _) | DataType::Null) => {
                    Ok(timestamp_type())
                }
                ("sent_at" | "delivered_at", other) => {
                    plan_err!("{name}: argument {arg} must be a timestamp, got {other}")
                }
                // A dictionary of words stays one (see `Text::Dict`); only
                // the message id, unique per row, is read as views.
                (arg, DataType::Dictionary(_, value))
                    if arg != "message_id"
                        && matches!(
                            **value,
                            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                        ) =>
                {
                    Ok(DataType::Dictionary(
                        Box::new(DataType::Int32),
                        Box::new(DataType::Utf8),
                    ))
                }
                (
                    _,
                    DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
                    | DataType::Null
                    | DataType::Dictionary(_, _),
                ) => Ok(DataType::Utf8View),
                (_, other) => plan_err!("{name}: argument {arg} must be a string, got {other}"),
            }
        })
        .collect()
}

/// A row's kind and status in one byte: `kind << 3 | status`.
pub type Code = u8;

const KINDS: [Kind; 6] = [
    Kind::Inbound { entry_point: false },
    Kind::Inbound { entry_point: true },
    Kind::Template(TemplateCategory::Marketing),
    Kind::Template(TemplateCategory::Utility),
    Kind::Template(TemplateCategory::Authentication),
    Kind::FreeForm,
];
const STATUSES: [Status; 5] = [
    Status::Sent,
    Status::Failed,
    Status::Delivered,
    Status::Read,
    Status::Received,
];

pub fn decode(code: Code) -> (Kind, Status) {
    (KINDS[(code >> 3) as usize], STATUSES[(code & 7) as usize])
}

fn encode(kind: Kind, status: Status) -> Code {
    let k = KINDS
        .iter()
        .position(|&k| k == kind)
        .expect("every kind is listed") as u8;
    let s = STATUSES
        .iter()
        .position(|&s| s == status)
        .expect("every status") as u8;
    (k << 3) | s
}

/// A row of the rules from buffered columns.
pub fn row(code: Code, sent_at: i64, delivered_at: Option<i64>, id: &[u8]) -> Row {
    let (kind, status) = decode(code);
    Row {
        kind,
        status,
        sent_at,
        delivered_at,
        id_hash: crate::rules::id_hash(id),
    }
}

/// A fixed list of words, matched by their inline view where they fit.
struct Vocabulary {
    words: Vec<(&'static str, u128)>,
    /// A perfect hash of the words' views: [`Vocabulary::slot`] of a word's
    /// view finds it, with no other word in its slot.
    table: [Slot; VOCABULARY_SLOTS],
    multiplier: u64,
}

/// One slot of [`Vocabulary::table`]: a word's view as [`view_key`] gives
/// it, and its position; `NOT_A_WORD` when empty.
#[derive(Clone, Copy)]
struct Slot {
    key: (u64, u64),
    position: u8,
}

const VOCABULARY_SLOTS: usize = 64;

/// The part of a view that identifies its string: all of it when the string
/// is inline (12 bytes or fewer), else its length and first four bytes (the
/// rest of such a view says where the bytes are, not what they are).
#[inline]
fn view_key(view: u128) -> (u64, u64) {
    let low = view as u64;
    let inline = ((low as u32) <= 12) as u64;
    (low, ((view >> 64) as u64) & inline.wrapping_neg())
}

impl Vocabulary {
    fn new(words: &[&'static str]) -> Self {
        let words: Vec<(&'static str, u128)> = words
            .iter()
            .map(|w| (*w, make_view(w.as_bytes(), 0, 0)))
            .collect();
        let empty = Slot {
            key: (u64::MAX, u64::MAX),
            position: NOT_A_WORD,
        };
        // Odd multipliers until one puts every word in a slot of its own.
        let mut multiplier = 0x9e37_79b9_7f4a_7c15u64;
        loop {
            let mut table = [empty; VOCABULARY_SLOTS];
            let mut perfect = true;
            for (p, (_, view)) in words.iter().enumerate() {
                let key = view_key(*view);
                let slot = &mut table[Self::slot_of(key, multiplier)];
                perfect &= slot.position == NOT_A_WORD;
                *slot = Slot {
                    key,
                    position: p as u8,
                };
            }
            if perfect {
                return Self {
                    words,
                    table,
                    multiplier,
                };
            }
            multiplier = multiplier.wrapping_add(0x2545_f491_4f6c_dd1d) | 1;
        }
    }

    #[inline]
    fn slot_of(key: (u64, u64), multiplier: u64) -> usize {
        ((key.0 ^ key.1.rotate_left(17)).wrapping_mul(multiplier) >> 58) as usize
    }

    /// Position of the word a view may hold: exact for inline strings; for
    /// longer ones a match of length and prefix that the caller confirms.
    #[inline]
    fn lookup(&self, view: u128) -> u8 {
        let key = view_key(view);
        let slot = &self.table[Self::slot_of(key, self.multiplier)];
        if slot.key == key {
            slot.position
        } else {
            NOT_A_WORD
        }
    }

    /// Position of every row's value in the list, [`NOT_A_WORD`] where it is
    /// null or none of the words: one tight loop per column, where looking
    /// each row's five words up one by one cost a branch per column.
    fn positions(&self, text: Text<'_>) -> Vec<u8> {
        let of = |value: &str| {
            self.words
                .iter()
                .position(|w| w.0 == value)
                .map_or(NOT_A_WORD, |p| p as u8)
        };
        let mut out: Vec<u8> = match text {
            Text::View(array) => {
                let words = &self.words;
                array
                    .views()
                    .iter()
                    .enumerate()
                    .map(|(i, &view)| {
                        let p = self.lookup(view);
                        // A long string matched only its length and prefix.
                        if (view as u32) > 12
                            && p != NOT_A_WORD
                            && array.value(i) != words[p as usize].0
                        {
                            NOT_A_WORD
                        } else {
                            p
                        }
                    })
                    .collect()
            }
            Text::Plain(array) => (0..array.len()).map(|i| of(array.value(i))).collect(),
            Text::LargePlain(array) => (0..array.len()).map(|i| of(array.value(i))).collect(),
            Text::Dict(dict, words) => {
                // Each word once, then a key lookup per row; a key out of
                // the dictionary's range is no word.
                let mut of_key = self.positions(Text::Plain(words));
                of_key.push(NOT_A_WORD);
                let last = of_key.len() - 1;
                let mut out: Vec<u8> = dict
                    .keys()
                    .values()
                    .iter()
                    .map(|&k| of_key[(k as u32 as usize).min(last)])
                    .collect();
                if let Some(nulls) = dict.nulls() {
                    for i in (!nulls.inner()).set_indices() {
                        out[i] = NOT_A_WORD;
                    }
                }
                return out;
            }
        };
        text.mark_nulls(&mut out, NOT_A_WORD);
        out
    }

    /// Position of row `i`'s value in the list, if it is one of the words.
    #[inline]
    fn find(&self, text: Text<'_>, i: usize) -> Option<usize> {
        if let Text::View(array) = text {
            let view = array.views()[i];
            if (view as u32) <= 12 {
                return self.words.iter().position(|w| w.1 == view);
            }
        }
        let value = text.value(i);
        self.words.iter().position(|w| w.0 == value)
    }
}

/// A string column as the classifier reads it: views (a local session's
/// scans), plain strings (a cluster's: Ballista keeps views out of its
/// plans), read in place rather than cast to views row by row, or a
/// dictionary of plain strings (the vocabulary columns of a registered log,
/// read from Parquet's dictionary pages without expanding them): its few
/// words are classified once and each row only looks its key up.
#[derive(Clone, Copy)]
enum Text<'a> {
    View(&'a StringViewArray),
    Plain(&'a StringArray),
    LargePlain(&'a LargeStringArray),
    Dict(&'a Int32DictionaryArray, &'a StringArray),
}

impl<'a> Text<'a> {
    fn try_new(array: &'a ArrayRef) -> Option<Self> {
        match array.data_type() {
            DataType::Utf8View => Some(Self::View(array.as_string_view())),
            DataType::Utf8 => Some(Self::Plain(array.as_string::<i32>())),
            DataType::LargeUtf8 => Some(Self::LargePlain(array.as_string::<i64>())),
            DataType::Dictionary(key, value)
                if **key == DataType::Int32 && **value == DataType::Utf8 =>
            {
                let dict = array.as_dictionary::<Int32Type>();
                Some(Self::Dict(dict, dict.values().as_string::<i32>()))
            }
            _ => None,
        }
    }

    /// Sets `out[i]` to `mark` for every null row of a column of strings
    /// (a dictionary's nulls are its keys', which its callers handle),
    /// finding them a word of the bitmap at a time.
    fn mark_nulls(&self, out: &mut [u8], mark: u8) {
        let nulls = match self {
            Self::View(a) => a.nulls(),
            Self::Plain(a) => a.nulls(),
            Self::LargePlain(a) => a.nulls(),
            Self::Dict(..) => None,
        };
        if let Some(nulls) = nulls {
            for i in (!nulls.inner()).set_indices() {
                out[i] = mark;
            }
        }
    }

    /// The word row `i` points to in a dictionary, if its key is valid.
    #[inline]
    fn word(dict: &Int32DictionaryArray, words: &StringArray, i: usize) -> Option<usize> {
        let key = usize::try_from(dict.keys().values()[i]).ok()?;
        (dict.is_valid(i) && key < words.len() && words.is_valid(key)).then_some(key)
    }

    fn is_null(&self, i: usize) -> bool {
        match self {
            Self::View(a) => a.is_null(i),
            Self::Plain(a) => a.is_null(i),
            Self::LargePlain(a) => a.is_null(i),
            Self::Dict(d, w) => Self::word(d, w, i).is_none(),
        }
    }

    /// Row `i`'s string; `""` for a null row.
    fn value(&self, i: usize) -> &'a str {
        match self {
            Self::View(a) => a.value(i),
            Self::Plain(a) => a.value(i),
            Self::LargePlain(a) => a.value(i),
            Self::Dict(d, w) => Self::word(d, w, i).map_or("", |k| w.value(k)),
        }
    }
}

/// A string column (message ids, keys) as views: plain strings are viewed
/// in place, without copying their bytes.
pub fn text_as_views(array: &ArrayRef) -> Option<StringViewArray> {
    match array.data_type() {
        DataType::Utf8 => Some(StringViewArray::from(array.as_string::<i32>())),
        DataType::LargeUtf8 => Some(StringViewArray::from(array.as_string::<i64>())),
        DataType::Utf8View => Some(array.as_string_view().clone()),
        _ => None,
    }
}

static DIRECTIONS: LazyLock<Vocabulary> =
    LazyLock::new(|| Vocabulary::new(&["outbound", "inbound"]));
static MESSAGE_TYPES: LazyLock<Vocabulary> =
    LazyLock::new(|| Vocabulary::new(&["template", "free_form"]));
static CATEGORIES: LazyLock<Vocabulary> =
    LazyLock::new(|| Vocabulary::new(&["marketing", "utility", "authentication"]));
static STATUS_WORDS: LazyLock<Vocabulary> =
    LazyLock::new(|| Vocabulary::new(&["sent", "failed", "delivered", "read", "received"]));

/// [`Vocabulary::positions`] of a null or unknown word.
const NOT_A_WORD: u8 = u8::MAX;

/// The arguments of the compact form a windowing aggregate takes in plans
/// rewritten by [`crate::optimizer::single_phase`]: `(message_id, code, sent_at,
/// delivered_at)` (plus any trailing constant), where `code` is
/// `wa_row_code(...)` of the eight log columns, computed before the rows are
/// repartitioned. SQL always uses the eight columns.
pub const COMPACT_ARGS: usize = 4;

/// Whether `args` arguments, the second of type `second`, are the compact
/// form (a `UInt8` code second).
pub fn is_compact(args: usize, second: Option<&DataType>) -> bool {
    args >= COMPACT_ARGS && second == Some(&DataType::UInt8)
}

/// Index of the first argument after the log columns (a rule set or
/// category constant), in any form.
pub fn trailing_arg_index(types: &[&DataType]) -> usize {
    let keys = crate::keys::by_key::key_count(types);
    if keys > 0 {
        COMPACT_ARGS + keys
    } else if is_compact(types.len(), types.get(1).copied()) {
        COMPACT_ARGS
    } else {
        LOG_ARGS.len()
    }
}

/// The string columns a row's code is computed from.
struct Words<'a> {
    direction: Text<'a>,
    message_type: Text<'a>,
    category: Text<'a>,
    status: Text<'a>,
    entry_point: Text<'a>,
}

/// Where a batch's row codes come from.
enum Codes<'a> {
    Words(Words<'a>),
    Computed(&'a UInt8Array),
}

/// One batch of log columns, downcast once: the eight log columns, or the
/// compact form with codes already computed.
pub struct LogBatch<'a> {
    pub message_id: StringViewArray,
    codes: Codes<'a>,
    pub sent_at: &'a TimestampMicrosecondArray,
    pub delivered_at: &'a TimestampMicrosecondArray,
}

/// A row [`LogBatch::codes`] cannot code (a bad or missing value), for
/// `classify` to word its error.
const NEEDS_CLASSIFY: Code = Code::MAX;

/// Sizes of [`CODE_TABLE`]'s dimensions: each vocabulary's words and one
/// more slot for no word, then whether the row has an entry point.
const CODE_DIMS: [usize; 5] = [3, 3, 4, 6, 2];

/// The code of every combination of a row's word positions (direction,
/// message type, category, status; the last slot of each is no word) and
/// entry point, as [`code_of_positions`] gives it.
static CODE_TABLE: LazyLock<Vec<Code>> = LazyLock::new(|| {
    let vocabularies = [&DIRECTIONS, &MESSAGE_TYPES, &CATEGORIES, &STATUS_WORDS];
    for (v, &dim) in vocabularies.iter().zip(&CODE_DIMS) {
        assert_eq!(v.words.len() + 1, dim, "CODE_DIMS follows the vocabularies");
    }
    let word = |slot: usize, dim: usize| {
        if slot + 1 == dim {
            NOT_A_WORD
        } else {
            slot as u8
        }
    };
    let [dd, td, cd, sd, ed] = CODE_DIMS;
    let mut table = vec![NEEDS_CLASSIFY; dd * td * cd * sd * ed];
    for d in 0..dd {
        for t in 0..td {
            for c in 0..cd {
                for s in 0..sd {
                    for e in 0..ed {
                        let (dw, tw, cw, sw) = (word(d, dd), word(t, td), word(c, cd), word(s, sd));
                        table[code_slot(dw, tw, cw, sw, e as u8)] =
                            code_of_positions(dw, tw, cw, sw, e == 1);
                    }
                }
            }
        }
    }
    table
});

/// The index in [`CODE_TABLE`] of a row's word positions ([`NOT_A_WORD`]
/// for none) and entry point (0 or 1).
#[inline]
fn code_slot(d: u8, t: u8, c: u8, s: u8, entry_point: u8) -> usize {
    let [dd, td, cd, sd, ed] = CODE_DIMS;
    let slot = |p: u8, dim: usize| (p as usize).min(dim - 1);
    (((slot(d, dd) * td + slot(t, td)) * cd + slot(c, cd)) * sd + slot(s, sd)) * ed
        + (entry_point as usize).min(ed - 1)
}

/// A row's code from its word positions and entry point: `KINDS` order is
/// inbound without and with an entry point, the three template categories,
/// free-form; [`NEEDS_CLASSIFY`] where a word the kind needs is missing.
fn code_of_positions(d: u8, t: u8, c: u8, s: u8, entry_point: bool) -> Code {
    let kind = if d == NOT_A_WORD || t == NOT_A_WORD || s == NOT_A_WORD {
        None
    } else if d == 1 {
        Some(u8::from(entry_point))
    } else if t == 1 {
        Some(5)
    } else if c == NOT_A_WORD {
        None
    } else {
        Some(2 + c)
    };
    kind.map_or(NEEDS_CLASSIFY, |k| (k << 3) | s)
}

/// 1 where a row's entry point is a value (neither null nor empty), a
/// column at a time.
fn has_entry_point(text: Text<'_>) -> Vec<u8> {
    let mut out: Vec<u8> = match text {
        Text::View(a) => a.views().iter().map(|&v| u8::from(v as u32 != 0)).collect(),
        Text::Plain(a) => a
            .offsets()
            .windows(2)
            .map(|w| u8::from(w[1] != w[0]))
            .collect(),
        Text::LargePlain(a) => a
            .offsets()
            .windows(2)
            .map(|w| u8::from(w[1] != w[0]))
            .collect(),
        Text::Dict(dict, words) => {
            return (0..dict.len())
                .map(|i| {
                    u8::from(Text::word(dict, words, i).is_some_and(|k| words.value_length(k) != 0))
                })
                .collect();
        }
    };
    text.mark_nulls(&mut out, 0);
    out
}

impl<'a> LogBatch<'a> {
    pub fn try_new(values: &'a [ArrayRef]) -> Result<Self> {
        let compact = is_compact(values.len(), values.get(1).map(|v| v.data_type()));
        let names: &[&str] = if compact {
            &["message_id", "code", "sent_at", "delivered_at"]
        } else {
            &LOG_ARGS
        };
        if values.len() < names.len() {
            return Err(exec_datafusion_err!(
                "expected the {} log columns",
                LOG_ARGS.len()
            ));
        }
        let must_be_text = |i: usize| {
            exec_datafusion_err!(
                "{} must be a string, got {}",
                names[i],
                values[i].data_type()
            )
        };
        let s = |i: usize| -> Result<Text<'a>> {
            Text::try_new(&values[i]).ok_or_else(|| must_be_text(i))
        };
        let message_id = text_as_views(&values[0]).ok_or_else(|| must_be_text(0))?;
        let t = |i: usize| -> Result<&'a TimestampMicrosecondArray> {
            values[i]
                .as_primitive_opt::<TimestampMicrosecondType>()
                .ok_or_else(|| {
                    exec_datafusion_err!(
                        "{} must be a timestamp, got {}",
                        names[i],
                        values[i].data_type()
                    )
                })
        };
        if compact {
            return Ok(Self {
                message_id,
                codes: Codes::Computed(values[1].as_primitive::<UInt8Type>()),
                sent_at: t(2)?,
                delivered_at: t(3)?,
            });
        }
        Ok(Self {
            message_id,
            codes: Codes::Words(Words {
                direction: s(1)?,
                message_type: s(2)?,
                category: s(3)?,
                status: s(4)?,
                entry_point: s(7)?,
            }),
            sent_at: t(5)?,
            delivered_at: t(6)?,
        })
    }

    pub fn len(&self) -> usize {
        self.message_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn id(&self, i: usize) -> &[u8] {
        self.message_id.value(i).as_bytes()
    }

    /// Row `i`'s delivery, chosen without a branch: a third of a log's
    /// rows are undelivered, at random.
    #[inline]
    pub fn delivered_at(&self, i: usize) -> Option<i64> {
        let value = self.delivered_at.values()[i];
        std::hint::select_unpredictable(self.delivered_at.is_valid(i), Some(value), None)
    }

    /// Every row's code, as [`LogBatch::code`] gives them, classified a
    /// column at a time; the first bad row's error, as `code` words it.
    pub fn codes(&self) -> Result<Vec<Code>> {
        let w = match &self.codes {
            Codes::Computed(codes) => return Ok(codes.values().to_vec()),
            Codes::Words(words) => words,
        };
        let direction = DIRECTIONS.positions(w.direction);
        let message_type = MESSAGE_TYPES.positions(w.message_type);
        let category = CATEGORIES.positions(w.category);
        let status = STATUS_WORDS.positions(w.status);
        let entry_point = has_entry_point(w.entry_point);
        let has_nulls = self.message_id.null_count() > 0 || self.sent_at.null_count() > 0;
        // One table lookup per row, no branch on its words: inbound and
        // outbound, template and free-form rows alternate at random in a
        // log, and a branch on each mispredicted often.
        let table = &*CODE_TABLE;
        let mut codes: Vec<Code> = Vec::with_capacity(self.len());
        let mut unusual = false;
        let rows = direction
            .iter()
            .zip(&message_type)
            .zip(&category)
            .zip(&status)
            .zip(&entry_point);
        for ((((&d, &t), &c), &s), &e) in rows {
            let code = table[code_slot(d, t, c, s, e)];
            unusual |= code == NEEDS_CLASSIFY;
            codes.push(code);
        }
        if unusual || has_nulls {
            for (i, code) in codes.iter_mut().enumerate() {
                let usable = self.message_id.is_valid(i) && self.sent_at.is_valid(i);
                if *code == NEEDS_CLASSIFY || !usable {
                    *code = self.classify(w, i)?;
                }
            }
        }
        Ok(codes)
    }

    /// Classifies row `i`; an error names the message id and the bad value.
    #[inline]
    pub fn code(&self, i: usize) -> Result<Code> {
        match &self.codes {
            Codes::Computed(codes) => Ok(codes.value(i)),
            Codes::Words(words) => self.classify(words, i),
        }
    }

    fn classify(&self, w: &Words<'a>, i: usize) -> Result<Code> {
        if self.message_id.is_null(i) {
            return Err(exec_datafusion_err!("a row has a null message_id"));
        }
        let bad = |column: &str, array: Text<'_>| {
            let value = if array.is_null(i) {
                "null".to_string()
            } else {
                format!("{:?}", array.value(i))
            };
            exec_datafusion_err!(
                "message_id {:?}: {column} {value} is not allowed (see the message-log schema)",
                self.message_id.value(i)
            )
        };
        let lookup = |vocab: &Vocabulary, array: Text<'_>| {
            if array.is_null(i) {
                None
            } else {
                vocab.find(array, i)
            }
        };
        let direction =
            lookup(&DIRECTIONS, w.direction).ok_or_else(|| bad("direction", w.direction))?;
        let message_type = lookup(&MESSAGE_TYPES, w.message_type)
            .ok_or_else(|| bad("message_type", w.message_type))?;
        let status = lookup(&STATUS_WORDS, w.status).ok_or_else(|| bad("status", w.status))?;
        if self.sent_at.is_null(i) {
            return Err(exec_datafusion_err!(
                "message_id {:?}: sent_at is null",
                self.message_id.value(i)
            ));
        }
        let kind = match (direction, message_type) {
            (1, _) => Kind::Inbound {
                entry_point: !w.entry_point.is_null(i) && !w.entry_point.value(i).is_empty(),
            },
            (_, 1) => Kind::FreeForm,
            _ => match lookup(&CATEGORIES, w.category) {
                Some(0) => Kind::Template(TemplateCategory::Marketing),
                Some(1) => Kind::Template(TemplateCategory::Utility),
                Some(_) => Kind::Template(TemplateCategory::Authentication),
                None if w.category.is_null(i) => {
                    return Err(exec_datafusion_err!(
                        "message_id {:?}: template without category",
                        self.message_id.value(i)
                    ))
                }
                None => return Err(bad("category", w.category)),
            },
        };
        Ok(encode(kind, STATUSES[status]))
    }
}

/// A non-null field.
pub fn field(name: &str, data_type: DataType) -> Arc<Field> {
    Arc::new(Field::new(name, data_type, false))
}

/// A nullable field.
pub fn nullable(name: &str, data_type: DataType) -> Arc<Field> {
    Arc::new(Field::new(name, data_type, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;
    use arrow::compute::cast;

    /// Every combination of the classifier's words (known, unknown, null,
    /// too long to inline), as a batch of `text` strings.
    fn every_combination(text: &DataType) -> Vec<ArrayRef> {
        let directions = [Some("outbound"), Some("inbound"), None, Some("sideways")];
        let types = [Some("template"), Some("free_form"), None];
        let categories = [
            Some("marketing"),
            Some("utility"),
            Some("authentication"),
            None,
            Some("promotional-offers-long"),
            // Length and first four bytes of "authentication": only the
            // bytes past the view's prefix tell them apart.
            Some("authenticatio_"),
        ];
        let statuses = [
            Some("sent"),
            Some("failed"),
            Some("delivered"),
            Some("read"),
            Some("received"),
            None,
            Some("not-a-status-at-all"),
        ];
        let entry_points = [
            None,
            Some(""),
            Some("ad"),
            Some("click-to-whatsapp-ad-long"),
        ];
        let mut cols: [Vec<Option<&str>>; 5] = Default::default();
        for d in directions {
            for t in types {
                for c in categories {
                    for s in statuses {
                        for e in entry_points {
                            for (col, v) in cols.iter_mut().zip([d, t, c, s, e]) {
                                col.push(v);
                            }
                        }
                    }
                }
            }
        }
        let n = cols[0].len();
        let strings = |v: &[Option<&str>]| -> ArrayRef {
            cast(&StringArray::from(v.to_vec()), text).unwrap()
        };
        let ids: Vec<String> = (0..n).map(|i| format!("wamid.row-{i:06}")).collect();
        let ids: Vec<Option<&str>> = ids.iter().map(|s| Some(s.as_str())).collect();
        // Message ids are never dictionaries (`coerce_log_args`).
        let id_type = match text {
            DataType::Dictionary(..) => &DataType::Utf8View,
            other => other,
        };
        let ids = cast(&StringArray::from(ids), id_type).unwrap();
        let ts: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from((0..n as i64).collect::<Vec<_>>()).with_timezone("UTC"),
        );
        vec![
            ids,
            strings(&cols[0]),
            strings(&cols[1]),
            strings(&cols[2]),
            strings(&cols[3]),
            ts.clone(),
            ts,
            strings(&cols[4]),
        ]
    }

    fn word_dictionary() -> DataType {
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
    }

    #[test]
    fn codes_of_a_batch_match_each_rows_code_and_error() {
        let mut per_type: Vec<Vec<std::result::Result<Code, String>>> = vec![];
        for text in [
            DataType::Utf8View,
            DataType::Utf8,
            DataType::LargeUtf8,
            word_dictionary(),
        ] {
            let columns = every_combination(&text);
            let n = columns[0].len();
            let mut good = vec![];
            let mut bad = 0;
            let mut outcomes = vec![];
            for i in 0..n {
                // A one-row slice: offsets into the views and null bitmaps too.
                let row: Vec<ArrayRef> = columns.iter().map(|c| c.slice(i, 1)).collect();
                let batch = LogBatch::try_new(&row).unwrap();
                match (batch.codes(), batch.code(0)) {
                    (Ok(all), Ok(one)) => {
                        assert_eq!(all, vec![one], "{text} row {i}");
                        good.push(i);
                        outcomes.push(Ok(one));
                    }
                    (Err(a), Err(b)) => {
                        assert_eq!(a.to_string(), b.to_string(), "{text} row {i}");
                        bad += 1;
                        outcomes.push(Err(a.to_string()));
                    }
                    (a, b) => panic!("{text} row {i}: batch {a:?}, row {b:?}"),
                }
            }
            // Every layout classifies every row alike, errors worded alike.
            if let Some(first) = per_type.first() {
                assert_eq!(&outcomes, first, "{text}");
            }
            per_type.push(outcomes);
            assert!(
                good.len() > 50 && bad > 50,
                "{} good, {bad} bad",
                good.len()
            );
            // The good rows as one batch, at their positions in it.
            let indices =
                arrow::array::UInt32Array::from_iter_values(good.iter().map(|&i| i as u32));
            let taken: Vec<ArrayRef> = columns
                .iter()
                .map(|c| arrow::compute::take(c, &indices, None).unwrap())
                .collect();
            let batch = LogBatch::try_new(&taken).unwrap();
            let one_by_one: Vec<Code> = (0..good.len()).map(|i| batch.code(i).unwrap()).collect();
            assert_eq!(batch.codes().unwrap(), one_by_one, "{text}");
        }
    }

    #[test]
    fn dictionary_words_are_classified_through_their_keys() {
        // Words out of order, one unused, one null, one not a word, and a
        // null key: as the same strings in views.
        let words = StringArray::from(vec![
            Some("read"),
            None,
            Some("sent"),
            Some("delivered!"),
            Some("failed"),
        ]);
        let keys = arrow::array::Int32Array::from(vec![Some(2), Some(0), None, Some(1), Some(3)]);
        let dict = Int32DictionaryArray::try_new(keys, Arc::new(words)).unwrap();
        let as_views = cast(&dict, &DataType::Utf8View).unwrap();
        let dict: ArrayRef = Arc::new(dict);
        let from_dict = STATUS_WORDS.positions(Text::try_new(&dict).unwrap());
        let from_views = STATUS_WORDS.positions(Text::try_new(&as_views).unwrap());
        assert_eq!(from_dict, from_views);
        assert_eq!(from_dict, vec![0, 3, NOT_A_WORD, NOT_A_WORD, NOT_A_WORD]);
        let text = Text::try_new(&dict).unwrap();
        assert_eq!(
            (0..5).map(|i| text.is_null(i)).collect::<Vec<_>>(),
            [false, false, true, true, false]
        );
        assert_eq!(text.value(4), "delivered!");
        assert_eq!(STATUS_WORDS.find(text, 1), Some(3));
        assert_eq!(STATUS_WORDS.find(text, 3), None);
    }

    #[test]
    fn vocabulary_views_find_their_words_and_nothing_else() {
        for vocabulary in [&*DIRECTIONS, &*MESSAGE_TYPES, &*CATEGORIES, &*STATUS_WORDS] {
            let mut values: Vec<String> = vec![];
            for (word, _) in &vocabulary.words {
                values.push(word.to_string());
                values.push(format!("{word}_"));
                values.push(word[..word.len() - 1].to_string());
                values.push(word.to_uppercase());
            }
            values.push(String::new());
            let array = StringViewArray::from_iter_values(&values);
            let got = vocabulary.positions(Text::View(&array));
            for (value, p) in values.iter().zip(got) {
                let want = vocabulary
                    .words
                    .iter()
                    .position(|w| w.0 == value)
                    .map_or(NOT_A_WORD, |p| p as u8);
                assert_eq!(p, want, "{value:?}");
            }
        }
    }
}
