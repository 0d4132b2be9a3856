//! The customer key and its country, on any text: the key is a part of
//! the number without a leading `+`, a number's other forms (with `+`,
//! with blanks around it) have the same key, and one key has one country.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wausage_udfs::rules::{customer_key, customer_key_bytes};

fuzz_target!(|number: &str| {
    let key = customer_key(number);
    assert_eq!(customer_key_bytes(number.as_bytes()), key.as_bytes());
    assert!(!key.starts_with('+'), "{number:?} keeps a +");
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        assert_eq!(customer_key(key), key, "the key of a key is itself");
        for form in [format!("+{key}"), format!(" +{key}\n"), format!("++{key}")] {
            assert_eq!(customer_key(&form), key, "{form:?}");
        }
        let country = wausage_udfs::functions::phone_country::country_of(key);
        assert_eq!(country, wausage_udfs::functions::phone_country::country_of(number));
        assert_eq!(country, wausage_udfs::functions::phone_country::country_of(&format!(" +{key}\n")));
    }
});
