//! A child process of this binary, timed from outside, with its peak
//! memory as the kernel reports it for the child (`wait4`): what the bench
//! commands quote, free of what the parent itself holds.

use std::io::Read;
use std::time::Instant;

use crate::error::{Result, WaError};

/// A finished child's figures and output.
pub struct Measured {
    pub seconds: f64,
    /// Resident high-water mark, bytes.
    pub peak: u64,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` (named `name` in errors) to its end; an exit other than
/// 0 is an error with its stderr.
pub fn run_measured(mut command: std::process::Command, name: &str) -> Result<Measured> {
    let started = Instant::now();
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| WaError::io(name, e))?;
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    });
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_string(&mut stdout)
            .map_err(|e| WaError::io(format!("{name}'s output"), e))?;
    }
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data that `wait4` fills; the child is ours
    // and not yet waited for (`child` is not waited on after this).
    let (waited, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        (libc::wait4(pid, &mut status, 0, &mut usage), usage)
    };
    let seconds = started.elapsed().as_secs_f64();
    if waited != pid {
        return Err(WaError::io(name, std::io::Error::last_os_error()));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(WaError::Input(format!("{name} failed: {}", stderr.trim())));
    }
    Ok(Measured {
        seconds,
        // Linux reports kilobytes.
        peak: usage.ru_maxrss as u64 * 1024,
        stdout,
        stderr,
    })
}
