//! How much memory queries may take: `--memory-limit SIZE`, `none`, or by
//! default a share of the memory available to the process, so that a query
//! too big for the machine ends with an error naming the operator and the
//! budget, not with the kernel killing the process.

use std::fmt;
use std::path::Path;

/// The share of the available memory queries take by default.
pub const DEFAULT_SHARE_PERCENT: usize = 80;

/// Where the available memory was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySource {
    /// The cgroup (v2) the process runs in: `memory.max`.
    Cgroup,
    /// The machine: `MemTotal` of `/proc/meminfo`.
    Physical,
}

/// The memory pool queries run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryLimit {
    /// `--memory-limit SIZE`: sorts, aggregations and the windowing spill to
    /// disk within it.
    Given(usize),
    /// No `--memory-limit`: [`DEFAULT_SHARE_PERCENT`] of the memory available.
    Default {
        bytes: usize,
        available: usize,
        from: MemorySource,
    },
    /// `--memory-limit none`, or no limit could be read.
    None,
}

impl MemoryLimit {
    /// The default: a share of the cgroup's limit when there is one, else
    /// of the machine's memory.
    pub fn default_for_this_process() -> MemoryLimit {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|c| cgroup_limit(&c, Path::new("/sys/fs/cgroup")));
        let physical = || {
            std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|m| mem_total(&m))
        };
        let available = match (cgroup, physical()) {
            (Some(c), Some(p)) if c < p => Some((c, MemorySource::Cgroup)),
            (Some(c), None) => Some((c, MemorySource::Cgroup)),
            (_, Some(p)) => Some((p, MemorySource::Physical)),
            (None, None) => None,
        };
        match available {
            Some((available, from)) => MemoryLimit::Default {
                bytes: available / 100 * DEFAULT_SHARE_PERCENT,
                available,
                from,
            },
            None => MemoryLimit::None,
        }
    }

    /// The pool's size, if it has one.
    pub fn pool(&self) -> Option<usize> {
        match *self {
            MemoryLimit::Given(b) | MemoryLimit::Default { bytes: b, .. } => Some(b),
            MemoryLimit::None => None,
        }
    }

    /// The size the user gave, if they gave one.
    pub fn given(&self) -> Option<usize> {
        match *self {
            MemoryLimit::Given(b) => Some(b),
            _ => None,
        }
    }
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MemoryLimit::Given(b) => write!(f, "{} (--memory-limit)", size(b)),
            MemoryLimit::Default {
                bytes,
                available,
                from,
            } => {
                let of = match from {
                    MemorySource::Cgroup => "the cgroup's memory.max",
                    MemorySource::Physical => "physical memory",
                };
                write!(
                    f,
                    "{} ({DEFAULT_SHARE_PERCENT}% of {} of {of})",
                    size(bytes),
                    size(available)
                )
            }
            MemoryLimit::None => write!(f, "none"),
        }
    }
}

/// A size as people read it: `19.2 GiB`.
pub fn size(bytes: usize) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", b / (1u64 << 20) as f64)
    }
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
pub fn mem_total(meminfo: &str) -> Option<usize> {
    proc_kb(meminfo, "MemTotal")
}

pub use wausage_udfs::proc_text::proc_kb;

/// A cgroup v2 `memory.max`: bytes, or `max` (no limit).
pub fn parse_memory_max(text: &str) -> Option<usize> {
    match text.trim() {
        "max" | "" => None,
        n => n.parse().ok(),
    }
}

/// The tightest `memory.max` on the way from the process's cgroup (named in
/// `/proc/self/cgroup`, the `0::` line of cgroup v2) up to `root`.
pub fn cgroup_limit(proc_self_cgroup: &str, root: &Path) -> Option<usize> {
    let path = proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim()
        .trim_start_matches('/');
    let mut dir = root.join(path);
    let mut tightest: Option<usize> = None;
    loop {
        let max = std::fs::read_to_string(dir.join("memory.max"))
            .ok()
            .and_then(|t| parse_memory_max(&t));
        tightest = match (tightest, max) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if dir == root || !dir.pop() || !dir.starts_with(root) {
            break;
        }
    }
    tightest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_read_from_a_status_text() {
        let status =
            "Name:\twausage\nVmPeak:\t 2097152 kB\nVmHWM:\t  1048576 kB\nVmRSS:\t   524288 kB\n";
        assert_eq!(proc_kb(status, "VmHWM"), Some(1 << 30));
        assert_eq!(proc_kb("Name:\twausage\n", "VmHWM"), None);
        assert_eq!(proc_kb("VmHWM:\t lots kB\n", "VmHWM"), None);
    }

    #[test]
    fn meminfo_gives_its_total() {
        let meminfo = "MemTotal:       24631948 kB\nMemFree:         1227104 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_631_948 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn memory_max_is_bytes_or_no_limit() {
        assert_eq!(parse_memory_max("2147483648\n"), Some(2 << 30));
        assert_eq!(parse_memory_max("max\n"), None);
        assert_eq!(parse_memory_max("lots"), None);
    }

    #[test]
    fn the_tightest_limit_on_the_way_up_is_the_cgroups() {
        let root = tempfile::tempdir().unwrap();
        let leaf = root.path().join("system.slice/wausage.service");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(leaf.join("memory.max"), "max\n").unwrap();
        std::fs::write(root.path().join("system.slice/memory.max"), "4294967296\n").unwrap();
        let cgroup = "0::/system.slice/wausage.service\n";
        assert_eq!(cgroup_limit(cgroup, root.path()), Some(4 << 30));
        std::fs::write(leaf.join("memory.max"), "1073741824\n").unwrap();
        assert_eq!(cgroup_limit(cgroup, root.path()), Some(1 << 30));
        // cgroup v1 only (no `0::` line), or no limit anywhere.
        assert_eq!(cgroup_limit("4:memory:/x\n", root.path()), None);
        assert_eq!(cgroup_limit("0::/\n", root.path()), None);
    }

    #[test]
    fn limits_say_where_they_come_from() {
        let d = MemoryLimit::Default {
            bytes: 8 << 30,
            available: 10 << 30,
            from: MemorySource::Cgroup,
        };
        assert_eq!(
            d.to_string(),
            "8.0 GiB (80% of 10.0 GiB of the cgroup's memory.max)"
        );
        assert_eq!(d.pool(), Some(8 << 30));
        assert_eq!(d.given(), None);
        assert_eq!(
            MemoryLimit::Given(512 << 20).to_string(),
            "512 MiB (--memory-limit)"
        );
        assert_eq!(MemoryLimit::None.pool(), None);
    }
}
