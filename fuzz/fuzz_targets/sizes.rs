//! `--memory-limit` sizes (`512m`, `1.5GB`, ...) and service allowances.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(n) = wausage::cli::parse_size(text) {
        assert!(n > 0, "a size is positive");
    }
    let _ = wausage::cli::parse_memory_limit(text);
    let _ = wausage::engine::settings::parse_service_allowance(text);
});
