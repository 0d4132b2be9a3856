//! Fields of Linux's /proc texts: the memory the page cache can use, for
//! the windowing's spill ([`crate::physical_plan::bucketed`]), and the
//! binary's default pool and an executor's peak.

/// A `FIELD: N kB` line of a /proc text (`meminfo`, `PID/status`), in bytes.
pub fn proc_kb(text: &str, field: &str) -> Option<usize> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    let kb: usize = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    kb.checked_mul(1024)
}

/// `MemAvailable` of `/proc/meminfo`: what the kernel can give without
/// swapping, the page cache's room. `None` off Linux.
pub fn memory_available() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    proc_kb(&meminfo, "MemAvailable")
}
