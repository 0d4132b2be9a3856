//! A saved query's header (name, description, typed parameters, tables,
//! settings, require-non-null): parsing any text gives a query or an
//! error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(q) = wausage::engine::saved::SavedQuery::parse(text, "fuzz", "fuzz") {
        let _ = q.usage();
    }
});
