//! SQL text as the statement runner splits and checks it (a byte order
//! mark, the expression depth limit, which statements return rows).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|sql: &str| {
    if let Ok(statements) = wausage::engine::exec::parse_statements(sql) {
        for s in &statements {
            let _ = wausage::engine::exec::returns_rows(s);
        }
    }
});
