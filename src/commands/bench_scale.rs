//! `wausage bench --scale`: the windowing past memory. Generates two logs
//! in arrival order, 50 messages per customer, with the platform's id
//! shapes (20M and 200M messages unless told), beside the benchmark dir
//! (`DIR-scale-N/`), then runs the conversations-by-category query on them
//! as processes of this binary, interleaved run by run: the small log
//! without a pool, the large one without a pool, and the large one under
//! `--scale-limit`. It prints medians of the time per message (cost stays
//! linear), the limited run against the unlimited one (spilling at full
//! speed), the limited run's peak memory, and checks that both large runs
//! give the same answer.

use std::path::PathBuf;

use crate::cli::BenchArgs;
use crate::commands::bench::WINDOWING;
use crate::commands::generate::{generate, GenerateOptions};
use crate::commands::measured::run_measured;
use crate::error::{Result, WaError};

/// The log of `messages` messages beside `args.dir`, generated when
/// missing.
fn scale_log(args: &BenchArgs, messages: u64) -> Result<PathBuf> {
    let name = args
        .dir
        .file_name()
        .map_or_else(|| "bench".into(), |n| n.to_string_lossy().into_owned());
    let dir = args.dir.with_file_name(format!("{name}-scale-{messages}"));
    if !dir.exists() {
        eprintln!("generating {messages} messages into {} ...", dir.display());
        let started = std::time::Instant::now();
        generate(&GenerateOptions {
            out: dir.clone(),
            messages,
            customers: Some((messages / 50).max(1)),
            days: 59,
            ..GenerateOptions::default()
        })?;
        eprintln!("generated in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(dir)
}

/// One run of the windowing query on `data` under `limit`.
fn query(data: &PathBuf, limit: &str) -> Result<crate::commands::measured::Measured> {
    let mut command = std::process::Command::new(
        std::env::current_exe().map_err(|e| WaError::io("the wausage binary", e))?,
    );
    command
        .arg("--data")
        .arg(data)
        .args(["--memory-limit", limit, "--format", "csv", "query"])
        .arg(format!("{WINDOWING} ORDER BY 1"));
    run_measured(command, &format!("wausage query on {}", data.display()))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let [small, large] = args.scale_messages[..] else {
        return Err(WaError::Usage(
            "--scale-messages takes two sizes, SMALL,LARGE".into(),
        ));
    };
    let limit = format!("{}m", args.scale_limit >> 20);
    let small_log = scale_log(args, small)?;
    let large_log = scale_log(args, large)?;
    let (mut per_small, mut per_large, mut limited, mut ratios) = (vec![], vec![], vec![], vec![]);
    let mut peak_limited = 0;
    for run in 1..=args.runs.max(1) {
        let a = query(&small_log, "none")?;
        let b = query(&large_log, "none")?;
        let c = query(&large_log, &limit)?;
        if b.stdout != c.stdout {
            return Err(WaError::Input(format!(
                "the {large}-message log's answer under --memory-limit {limit} differs from \
                 the unlimited one:\n{}\nagainst\n{}",
                c.stdout, b.stdout
            )));
        }
        let gib = |bytes: u64| bytes as f64 / (1u64 << 30) as f64;
        println!(
            "run {run}: {small} unlimited {:.2} s ({:.2} GiB), {large} unlimited {:.2} s \
             ({:.2} GiB), {large} under {limit} {:.2} s ({:.2} GiB), same answer",
            a.seconds,
            gib(a.peak),
            b.seconds,
            gib(b.peak),
            c.seconds,
            gib(c.peak)
        );
        per_small.push(a.seconds / small as f64);
        per_large.push(b.seconds / large as f64);
        limited.push(c.seconds);
        ratios.push(c.seconds / b.seconds);
        peak_limited = peak_limited.max(c.peak);
    }
    let (per_small, per_large) = (median(&mut per_small), median(&mut per_large));
    println!(
        "time per message: {:.1} ns at {small}, {:.1} ns at {large}: {:.2}x (target <= 1.25x)",
        per_small * 1e9,
        per_large * 1e9,
        per_large / per_small
    );
    println!(
        "{large} under --memory-limit {limit}: median {:.2} s, {:.2}x the unlimited run \
         (median of the runs' ratios; target <= 1.5x), peak {:.2} GiB (target <= 2.5 GiB)",
        median(&mut limited),
        median(&mut ratios),
        peak_limited as f64 / (1u64 << 30) as f64
    );
    Ok(())
}
