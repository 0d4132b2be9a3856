//! `--param KEY=VALUE` values bound against every built-in query's typed
//! parameters (months, integers, numbers, booleans, time zones).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let given: Vec<String> = text.split('\n').map(str::to_string).collect();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 3).expect("a date");
    for (name, sql) in wausage::engine::saved::BUILT_IN {
        let q = wausage::engine::saved::SavedQuery::parse(sql, name, name).expect("built-ins parse");
        let _ = wausage::engine::saved::bind(&q, &given, today);
        let _ = q.given_settings(&given);
    }
});
