//! The `wausage` binary: parse the command line, run it, map the outcome to
//! an exit code (0 success, 1 query or input error, 2 usage error, 3 alert).
//! Errors go to stderr; a closed stdout (`| head`) exits quietly.

use std::process::ExitCode;

use clap::Parser;
use wausage::cli::Cli;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // Planning and (de)serialising plans recurse over the plan tree: a
    // cluster scheduler decoding a report's plan overflowed tokio's 2 MiB
    // default worker stack in a debug build.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(16 << 20)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wausage: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(wausage::app::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wausage: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Two malloc arenas rather than glibc's default of eight per core. Query
/// threads free batches that other threads allocated; with an arena per
/// thread, memory freed in one arena goes back to the kernel while another
/// asks for fresh pages, and zeroing fresh pages is costly on
/// virtual machines. Two arenas keep freed memory for reuse.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets an allocator parameter; it runs before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
