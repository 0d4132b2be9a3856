//! `phone_country(customer_id)`: the customer's country (ISO 3166-1
//! alpha-2) from the phone number, as libphonenumber assigns it (the
//! `phonenumber` crate): the calling code and, where one code covers several
//! countries (+1, +7, +44...), the national prefix. `ZZ` when unknown.
//!
//! Parsing is costly and numbers repeat, so each distinct number is parsed
//! once per batch, and results are kept in a bounded cache shared by all
//! batches and threads.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// The scalar function `phone_country`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PhoneCountry {
    signature: Signature,
}

impl Default for PhoneCountry {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

pub fn phone_country_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(PhoneCountry::default()))
}

/// Country of an E.164 number, read from its customer key
/// ([`crate::rules::customer_key`]), so that every form of one customer's
/// number has one country.
pub fn country_of(number: &str) -> &'static str {
    let digits = crate::rules::customer_key(number);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return "ZZ";
    }
    if let Some(country) = single_region(digits) {
        return country;
    }
    let parsed = phonenumber::parse(None, format!("+{digits}"));
    match parsed.ok().and_then(|n| n.country().id()) {
        Some(id) => intern(id.as_ref()),
        None => "ZZ",
    }
}

/// Fast path, same answer as a full parse: libphonenumber assigns a number
/// whose calling code belongs to a single region to that region without
/// looking further (`validator::source_for`), so only numbers on shared
/// codes (+1, +7, +44, ...) need the full parse. Calling codes are
/// prefix-free, so the first 1 to 3 digits that name one are it.
fn single_region(digits: &str) -> Option<&'static str> {
    let db = &*phonenumber::metadata::DATABASE;
    for len in 1..=3.min(digits.len()) {
        let code: u16 = digits[..len].parse().ok()?;
        if let Some(regions) = db.region(&code) {
            let national = &digits[len..];
            return match regions.as_slice() {
                [only] if *only != "001" && phonenumber::is_viable(national) => Some(intern(only)),
                _ => None,
            };
        }
    }
    None
}

/// Country codes as `'static` strings (there are a few hundred).
fn intern(code: &str) -> &'static str {
    static CODES: LazyLock<RwLock<HashMap<String, &'static str>>> = LazyLock::new(Default::default);
    if let Some(c) = CODES.read().expect("not poisoned").get(code) {
        return c;
    }
    let mut codes = CODES.write().expect("not poisoned");
    codes
        .entry(code.to_string())
        .or_insert_with(|| Box::leak(code.to_string().into_boxed_str()))
}

/// Cache of numbers already placed, shared across batches.
static SEEN: LazyLock<RwLock<HashMap<Box<str>, &'static str>>> = LazyLock::new(Default::default);
const SEEN_LIMIT: usize = 2_000_000;

fn countries<'a>(values: impl Iterator<Item = Option<&'a str>>, len: usize) -> ArrayRef {
    let mut local: HashMap<&'a str, &'static str> = HashMap::new();
    let mut fresh: Vec<(&'a str, &'static str)> = vec![];
    let mut out = StringBuilder::with_capacity(len, len * 2);
    {
        let seen = SEEN.read().expect("not poisoned");
        for v in values {
            let Some(number) = v else {
                out.append_null();
                continue;
            };
            let country = *local.entry(number).or_insert_with(|| {
                seen.get(number).copied().unwrap_or_else(|| {
                    let c = country_of(number);
                    fresh.push((number, c));
                    c
                })
            });
            out.append_value(country);
        }
    }
    if !fresh.is_empty() {
        let mut seen = SEEN.write().expect("not poisoned");
        if seen.len() + fresh.len() > SEEN_LIMIT {
            seen.clear();
        }
        seen.extend(fresh.into_iter().map(|(n, c)| (Box::from(n), c)));
    }
    Arc::new(out.finish())
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::functions::docs::SECTION,
        "The customer's country (ISO 3166-1 alpha-2) from an E.164 phone number, with or \
         without '+', as libphonenumber assigns it (US, CA or a Caribbean country on +1); \
         'ZZ' when it cannot be assigned.",
        "phone_country(customer_id)",
    )
    .with_argument(
        "customer_id",
        "an E.164 phone number, e.g. '+6281234567890'",
    )
    .with_sql_example("```sql\nSELECT phone_country('+14165550123'); -- CA\n```")
    .build()
});

impl ScalarUDFImpl for PhoneCountry {
    fn name(&self) -> &str {
        "phone_country"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Utf8 | DataType::LargeUtf8 | DataType::Null | DataType::Dictionary(_, _)] => {
                Ok(vec![DataType::Utf8])
            }
            [DataType::Utf8View] => Ok(vec![DataType::Utf8View]),
            [other] => datafusion::common::plan_err!("phone_country takes a string, got {other}"),
            _ => datafusion::common::plan_err!("phone_country takes one argument"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match &args.args[0] {
            ColumnarValue::Scalar(s) => {
                let value = match s {
                    ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v) => {
                        v.as_deref().map(country_of)
                    }
                    other => return exec_err!("phone_country takes a string, got {other}"),
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(
                    value.map(str::to_string),
                )))
            }
            ColumnarValue::Array(a) => {
                let out = match a.data_type() {
                    DataType::Utf8View => countries(a.as_string_view().iter(), a.len()),
                    DataType::Utf8 => countries(a.as_string::<i32>().iter(), a.len()),
                    other => return exec_err!("phone_country takes a string, got {other}"),
                };
                Ok(ColumnarValue::Array(out))
            }
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::country_of;

    #[test]
    fn assigns_countries_sharing_a_calling_code() {
        assert_eq!(country_of("+12125550123"), "US");
        assert_eq!(country_of("+14165550123"), "CA");
        assert_eq!(country_of("6281234567890"), "ID");
        assert_eq!(country_of("+447400123456"), "GB");
        assert_eq!(country_of("+79161234567"), "RU");
    }

    #[test]
    fn fast_path_agrees_with_a_full_parse() {
        for n in [
            "6281234567890",
            "919812345678",
            "5511987654321",
            "525512345678",
            "4915112345678",
            "33612345678",
            "34612345678",
            "393123456789",
            "2348031234567",
            "27821234567",
            "905321234567",
            "966501234567",
            "201012345678",
            "971501234567",
            "573001234567",
            "3906123456",
            "6221",
            "99912345",
        ] {
            let full = phonenumber::parse(None, format!("+{n}"))
                .ok()
                .and_then(|p| p.country().id())
                .map(|id| id.as_ref().to_string())
                .unwrap_or_else(|| "ZZ".into());
            assert_eq!(country_of(n), full, "{n}");
        }
    }

    #[test]
    fn unknown_numbers_are_zz() {
        assert_eq!(country_of(""), "ZZ");
        assert_eq!(country_of("+"), "ZZ");
        assert_eq!(country_of("not a number"), "ZZ");
        assert_eq!(country_of("+999123"), "ZZ");
    }
}
