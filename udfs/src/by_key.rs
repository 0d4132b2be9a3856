//! The by-key form of a windowing aggregate: one DataFusion group holds the
//! rows of several customers (a bucket, `wa_key_bucket`), and the aggregate
//! splits them by the customer key it is handed as its first argument.
//!
//! DataFusion's hash table over a million (account, customer) keys missed
//! the cache on almost every row: a quarter of the windowing query. Grouped
//! by (account, bucket) the table stays in the cache, and the rows a group
//! gathers are split by customer where they already sit together, after the
//! aggregate's sort. The rule in [`crate::single_phase`] builds this form;
//! SQL cannot write it. Its value per group is a list of `{key, value}`
//! structs, one per customer, that the rule's `UnnestExec` turns back into
//! one row per customer.
//!
//! A key travels in the buffered row as a `u64` code: digit strings of up
//! to 17 digits (phone numbers) as their length and value, anything else as
//! an index into a side table of the aggregate, so codes are equal exactly
//! when keys are.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, LargeStringBuilder, StringBuilder, StringViewBuilder};
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{exec_err, Result};

/// The types of an aggregate's arguments.
pub fn arg_types<'a>(
    args: &'a datafusion::logical_expr::function::AccumulatorArgs,
) -> Vec<&'a DataType> {
    args.expr_fields.iter().map(|f| f.data_type()).collect()
}

/// Whether argument types are the by-key form: a string key, then the
/// compact form (`message_id`, a `UInt8` code, `sent_at`, `delivered_at`).
pub fn is_by_key(types: &[&DataType]) -> bool {
    types.len() > crate::columns::COMPACT_ARGS && is_text(types[0]) && types[2] == &DataType::UInt8
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The value type of the by-key form of an aggregate whose plain value is
/// `value`: a list of `{key, value}`, one per key of the group.
pub fn list_type(key: &DataType, value: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(
        DataType::Struct(struct_fields(key, value)),
        false,
    )))
}

/// The `{key, value}` struct's fields.
pub fn struct_fields(key: &DataType, value: DataType) -> Fields {
    Fields::from(vec![
        Field::new("key", key.clone(), true),
        Field::new("value", value, true),
    ])
}

/// An aggregate's return type for `arg_types`: `value`, or its by-key list.
pub fn return_type(arg_types: &[DataType], value: DataType) -> DataType {
    let types: Vec<&DataType> = arg_types.iter().collect();
    if is_by_key(&types) {
        list_type(&arg_types[0], value)
    } else {
        value
    }
}

/// The state fields for `input_fields`: the buffered columns, and the key
/// of every row in the by-key form.
pub fn state_fields(name: &str, input_fields: &[FieldRef]) -> Vec<FieldRef> {
    let mut fields = crate::buffer::state_fields(name);
    let types: Vec<&DataType> = input_fields.iter().map(|f| f.data_type()).collect();
    if is_by_key(&types) {
        fields.push(key_state_field(name));
    }
    fields
}

pub fn key_state_field(name: &str) -> FieldRef {
    Arc::new(Field::new(
        format!("{name}[key]"),
        DataType::List(Arc::new(Field::new_list_field(DataType::Utf8View, true))),
        true,
    ))
}

/// The code of a null key.
pub const NULL_KEY: u64 = u64::MAX;
const SIDE: u64 = 1 << 63;
const DIGITS_SHIFT: u32 = 57;
const MAX_DIGITS: usize = 17;

/// Keys as `u64` codes, one table per aggregate (per partition).
#[derive(Debug)]
pub struct KeyCodes {
    /// The type the keys are output as (the key argument's).
    pub data_type: DataType,
    side: HashMap<Box<[u8]>, u64>,
    side_keys: Vec<Box<str>>,
}

impl KeyCodes {
    pub fn new(data_type: DataType) -> Self {
        Self {
            data_type,
            side: HashMap::new(),
            side_keys: vec![],
        }
    }

    pub fn encode(&mut self, key: Option<&str>) -> u64 {
        let Some(key) = key else {
            return NULL_KEY;
        };
        let bytes = key.as_bytes();
        if bytes.len() <= MAX_DIGITS {
            // One pass: the value, and whether every byte was a digit.
            let mut value = 0u64;
            let mut digits = true;
            for &b in bytes {
                let d = b.wrapping_sub(b'0');
                digits &= d < 10;
                value = value.wrapping_mul(10).wrapping_add(u64::from(d));
            }
            if digits {
                return ((bytes.len() as u64) << DIGITS_SHIFT) | value;
            }
        }
        if let Some(&code) = self.side.get(bytes) {
            return code;
        }
        let code = SIDE | self.side_keys.len() as u64;
        self.side.insert(bytes.into(), code);
        self.side_keys.push(key.into());
        code
    }

    /// The key of `code`, written into `out` (cleared first); false for null.
    fn decode_into(&self, code: u64, out: &mut String) -> bool {
        out.clear();
        if code == NULL_KEY {
            return false;
        }
        if code & SIDE != 0 {
            out.push_str(&self.side_keys[(code & !SIDE) as usize]);
        } else {
            let len = (code >> DIGITS_SHIFT) as usize;
            let value = code & ((1 << DIGITS_SHIFT) - 1);
            if len > 0 {
                use std::fmt::Write;
                write!(out, "{value:0len$}").expect("writing to a String");
            }
        }
        true
    }

    /// The keys of `codes` as an array of `data_type`.
    pub fn decode(&self, codes: &[u64], data_type: &DataType) -> Result<ArrayRef> {
        let mut text = String::new();
        macro_rules! build {
            ($builder:expr) => {{
                let mut b = $builder;
                for &c in codes {
                    if self.decode_into(c, &mut text) {
                        b.append_value(&text);
                    } else {
                        b.append_null();
                    }
                }
                Arc::new(b.finish()) as ArrayRef
            }};
        }
        Ok(match data_type {
            DataType::Utf8View => build!(StringViewBuilder::with_capacity(codes.len())),
            DataType::Utf8 => build!(StringBuilder::with_capacity(codes.len(), codes.len() * 12)),
            DataType::LargeUtf8 => {
                build!(LargeStringBuilder::with_capacity(
                    codes.len(),
                    codes.len() * 12
                ))
            }
            other => return exec_err!("a by-key windowing key must be a string, got {other}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn codes_are_equal_exactly_when_keys_are_and_decode_back() {
        let keys = [
            Some("447700900123"),
            Some("0447700900123"), // a leading zero is a different key
            Some("00447700900123"),
            Some("12345678901234567"),  // 17 digits: coded by value
            Some("123456789012345678"), // 18: the side table
            Some(""),
            Some("0"),
            Some("00"),
            Some("+447700900123"),
            Some("customer-7"),
            None,
        ];
        let mut codes = KeyCodes::new(DataType::Utf8View);
        let coded: Vec<u64> = keys.iter().map(|k| codes.encode(*k)).collect();
        let distinct: std::collections::HashSet<u64> = coded.iter().copied().collect();
        assert_eq!(distinct.len(), keys.len(), "{coded:?}");
        // Encoding again gives the same codes, side-table keys included.
        let again: Vec<u64> = keys.iter().map(|k| codes.encode(*k)).collect();
        assert_eq!(coded, again);
        for data_type in [DataType::Utf8View, DataType::Utf8, DataType::LargeUtf8] {
            let decoded = codes.decode(&coded, &data_type).unwrap();
            assert_eq!(decoded.data_type(), &data_type);
            let decoded = arrow::compute::cast(&decoded, &DataType::Utf8).unwrap();
            let decoded: Vec<Option<&str>> = decoded.as_string::<i32>().iter().collect();
            assert_eq!(decoded, keys);
        }
    }

    #[test]
    fn the_by_key_form_is_told_by_its_types() {
        let (s, v, u, t) = (
            DataType::Utf8,
            DataType::Utf8View,
            DataType::UInt8,
            DataType::Int64,
        );
        assert!(is_by_key(&[&s, &v, &u, &t, &t]));
        assert!(!is_by_key(&[&v, &u, &t, &t])); // the compact form
        assert!(!is_by_key(&[&v, &v, &v, &v, &v, &t, &t, &v])); // the log columns
    }
}
