//! The customer key and its country, on any bytes: the key is a part of
//! the number, idempotent, and every form of one number has one country.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wausage_udfs::rules::{customer_key, customer_key_bytes};

fuzz_target!(|number: &str| {
    let key = customer_key(number);
    assert_eq!(customer_key(key), key, "the key of a key is itself");
    assert_eq!(customer_key_bytes(number.as_bytes()), key.as_bytes());
    let country = wausage_udfs::functions::phone_country::country_of(number);
    assert_eq!(country, wausage_udfs::functions::phone_country::country_of(key));
    assert_eq!(country, wausage_udfs::functions::phone_country::country_of(&format!(" +{key}\n")));
});
