//! The hash and bucket of a tuple of grouping keys: one definition for the
//! SQL function `wa_key_bucket` (a cluster's plan) and the key coder (one
//! process), so that both put a pair in the same bucket.

use arrow::array::{make_view, Array, ArrayRef, AsArray, UInt32Array};
use arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result};

use crate::rules::id_hash;

/// Buckets: enough to keep a bucket to a few hundred customers at a million
/// customers, few enough that the hash table of buckets stays in the cache.
pub const KEY_BUCKETS: u32 = 1 << 14;

pub const MIX: u64 = 0x9e37_79b9_7f4a_7c15;
/// What a null key adds to the hash.
pub const NULL_HASH: u64 = 0x51_7cc1_b727_220a;

/// The hash of a key of at most 12 bytes from its view (length and bytes,
/// zero-padded): a function of the key alone, as for longer keys.
#[inline]
fn view_hash(view: u128) -> u64 {
    ((view as u64) ^ ((view >> 64) as u64).rotate_left(29)).wrapping_mul(MIX)
}

/// The hash of one key's bytes, whatever array it came from.
#[inline]
pub fn bytes_hash(key: &[u8]) -> u64 {
    if key.len() <= 12 {
        view_hash(make_view(key, 0, 0))
    } else {
        id_hash(key)
    }
}

/// Folds one key's hash into a row's.
#[inline]
pub fn fold(row: u64, key: u64) -> u64 {
    (row ^ key).rotate_left(27).wrapping_mul(MIX)
}

/// The bucket of a row's folded hash.
#[inline]
pub fn bucket_of(row: u64) -> u32 {
    ((row >> 40) as u32) & (KEY_BUCKETS - 1)
}

/// Folds every row's key of `key` into `rows`.
fn fold_column(key: &ArrayRef, rows: &mut [u64]) -> Result<()> {
    match key.data_type() {
        DataType::Utf8View => {
            // A short key is all in its view: hash the view itself.
            let keys = key.as_string_view();
            for (i, (row, &view)) in rows.iter_mut().zip(keys.views()).enumerate() {
                let hash = if keys.is_null(i) {
                    NULL_HASH
                } else if (view as u32) <= 12 {
                    view_hash(view)
                } else {
                    id_hash(keys.value(i).as_bytes())
                };
                *row = fold(*row, hash);
            }
        }
        DataType::Utf8 => {
            for (row, k) in rows.iter_mut().zip(key.as_string::<i32>()) {
                *row = fold(*row, k.map_or(NULL_HASH, |k| bytes_hash(k.as_bytes())));
            }
        }
        DataType::LargeUtf8 => {
            for (row, k) in rows.iter_mut().zip(key.as_string::<i64>()) {
                *row = fold(*row, k.map_or(NULL_HASH, |k| bytes_hash(k.as_bytes())));
            }
        }
        other => return exec_err!("wa_key_bucket takes strings, got {other}"),
    }
    Ok(())
}

/// The buckets of rows of `keys` (columns of equal length).
pub fn key_buckets(keys: &[ArrayRef]) -> Result<UInt32Array> {
    let mut rows = vec![0u64; keys.first().map_or(0, |k| k.len())];
    for key in keys {
        fold_column(key, &mut rows)?;
    }
    Ok(rows.into_iter().map(bucket_of).collect::<Vec<u32>>().into())
}
