//! `wausage bench --ingest`: how fast `ingest` folds the webhooks of the
//! benchmark log, and its peak memory. The webhooks are written once, beside
//! the log (`DIR-webhooks/`). Each run times, interleaved, three passes over
//! the same files: decompressing and splitting lines alone (the floor),
//! that plus parsing every line into borrowed events, and the whole `ingest` into a fresh
//! folder; throughput is uncompressed NDJSON bytes per second. `ingest` runs
//! as a process of its own (this binary), so that its peak memory is its
//! own resident high-water mark, as the kernel reports it for the child.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::BenchArgs;
use crate::commands::measured::run_measured;
use crate::config::Config;
use crate::engine::session::build_session;
use crate::error::{Result, WaError};
use crate::ingest::{emit, open_lines, webhook};

pub async fn run(config: &Config, args: &BenchArgs) -> Result<()> {
    let name = args
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let hooks = args.dir.with_file_name(format!(
        "{}-webhooks",
        name.unwrap_or_else(|| "bench".into())
    ));
    if !hooks.join("sends.csv").exists() {
        eprintln!("writing the log's webhooks into {} ...", hooks.display());
        let t = Instant::now();
        let log = Config {
            data: args.dir.to_string_lossy().into_owned(),
            ..config.clone()
        };
        let ctx = build_session(&log).await?;
        let e = emit::write_webhooks(&ctx, &hooks).await?;
        eprintln!(
            "{} messages as {} events in {:.1} s",
            e.messages,
            e.events,
            t.elapsed().as_secs_f64()
        );
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&hooks)
        .map_err(|e| WaError::io(hooks.display().to_string(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".ndjson.gz"))
        .collect();
    files.sort();
    let compressed: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let mut times = [vec![], vec![], vec![]];
    let mut peaks = vec![];
    let mut bytes = 0u64;
    for run in 0..args.runs.max(1) {
        let (t_read, b) = timed(|| read_lines(&files, |_| ()))?;
        bytes = b;
        let (t_parse, _) = timed(|| {
            read_lines(&files, |line| {
                let _ = webhook::parse_line_with(line, &mut |_| ());
            })
        })?;
        let out = tempfile::tempdir_in(hooks.parent().unwrap_or(Path::new(".")))
            .map_err(|e| WaError::io(hooks.display().to_string(), e))?;
        let mut ingest = std::process::Command::new(
            std::env::current_exe().map_err(|e| WaError::io("the wausage binary", e))?,
        );
        if let Some(limit) = config.memory.given() {
            ingest.arg("--memory-limit").arg(limit.to_string());
        }
        ingest
            .arg("ingest")
            .args(&files)
            .arg("--sends")
            .arg(hooks.join("sends.csv"))
            .arg("--out")
            .arg(out.path().join("log"));
        let measured = run_measured(ingest, "wausage ingest")?;
        let (t_ingest, peak) = (measured.seconds, measured.peak);
        let summary = measured.stderr.lines().last().unwrap_or_default();
        println!(
            "run {}: read {t_read:.2} s, +parse {t_parse:.2} s, ingest {t_ingest:.2} s \
             (peak {:.0} MiB)\n  {summary}",
            run + 1,
            peak as f64 / (1 << 20) as f64,
        );
        times[0].push(t_read);
        times[1].push(t_parse);
        times[2].push(t_ingest);
        peaks.push(peak);
    }
    let mb = bytes as f64 / 1e6;
    let rate = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        mb / v[v.len() / 2]
    };
    println!(
        "{} files, {:.0} MB of NDJSON ({:.0} MB gzip)",
        files.len(),
        mb,
        compressed as f64 / 1e6
    );
    println!("decompress + lines  {:.0} MB/s", rate(&mut times[0]));
    println!("+ parse (serde_json) {:.0} MB/s", rate(&mut times[1]));
    println!(
        "ingest              {:.0} MB/s (target >= 150 MB/s)",
        rate(&mut times[2])
    );
    println!(
        "ingest peak memory  {:.0} MiB (target <= 1024 MiB)",
        peaks.iter().max().copied().unwrap_or(0) as f64 / (1 << 20) as f64
    );
    Ok(())
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(f64, T)> {
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed().as_secs_f64(), v))
}

/// Reads every line of `files` into `each`; returns the bytes read.
fn read_lines(files: &[PathBuf], mut each: impl FnMut(&[u8])) -> Result<u64> {
    let mut bytes = 0;
    let mut buf = Vec::new();
    for f in files {
        let mut r = open_lines(f)?;
        loop {
            buf.clear();
            let n = r
                .read_until(b'\n', &mut buf)
                .map_err(|e| WaError::io(f.display().to_string(), e))?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            each(buf.trim_ascii());
        }
    }
    Ok(bytes)
}
