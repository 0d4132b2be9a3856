//! Webhook files into a message log (`wausage ingest`), as
//! `docs/webhook-ingest.md` says: lines are parsed ([`webhook`]), each
//! message's events folded ([`fold`]) with what the sends file says of it
//! ([`sends`]) and with the state an earlier run kept, and every month the
//! run touches is written again ([`partitions`]): aside first, then each
//! file renamed into place, so a run that fails leaves every partition as
//! it was.
//!
//! Memory is bounded whatever the input's size: messages are spread over
//! buckets by their id ([`buckets`]), folds past the budget spill to the
//! buckets' files, each bucket settles on its own into sorted runs by
//! month, and a month is written from the merge of its runs ([`runs`]).

pub mod buckets;
pub mod emit;
pub mod fold;
pub mod partitions;
pub mod rejects;
pub mod runs;
pub mod sends;
pub mod text;
pub mod to_bucket;
pub mod webhook;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use buckets::{Map, SendEntry, Staging, Store};
use partitions::{
    month_index, month_name, neighbours, rows_path, state_path, RowsWriter, StateWriter,
    REJECTS_DIR, STATE_DIR,
};
use rejects::Reject;
use runs::{Merged, Run, Settled};
use webhook::parse_line_with;

use crate::error::{Result, WaError};

/// What `ingest` holds in memory when no `--memory-limit` is given: past
/// it, folds spill to disk.
pub const DEFAULT_BUDGET: usize = 512 << 20;

/// What to ingest and where.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub files: Vec<PathBuf>,
    pub out: PathBuf,
    pub sends: Option<PathBuf>,
    /// Any reject fails the run, and nothing is written.
    pub strict: bool,
    /// Roughly the bytes of folds held in memory; past it they spill to disk.
    pub budget: usize,
}

/// What a run read and wrote, for its summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestSummary {
    pub files: usize,
    pub lines: u64,
    pub bytes: u64,
    pub events: u64,
    /// Changes of other fields than `messages`, skipped.
    pub other_changes: u64,
    /// Messages this run's events touched.
    pub messages_touched: usize,
    /// Rows written, in every month written.
    pub rows_written: usize,
    pub months_written: Vec<String>,
    /// Rejects by reason.
    pub rejects: BTreeMap<&'static str, usize>,
    pub rejects_file: Option<PathBuf>,
    /// Whether folds went to disk, the run being past its memory budget.
    pub spilled: bool,
}

impl IngestSummary {
    /// The summary `ingest` prints on stderr.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} file(s), {} line(s), {} event(s) ({} change(s) of other fields skipped); \
             {} message(s) touched; {} row(s) written in {} month(s)",
            self.files,
            self.lines,
            self.events,
            self.other_changes,
            self.messages_touched,
            self.rows_written,
            self.months_written.len(),
        );
        if !self.months_written.is_empty() {
            s.push_str(&format!(" ({})", self.months_written.join(", ")));
        }
        if self.spilled {
            s.push_str("; past the memory budget, folds spilled to disk");
        }
        let total: usize = self.rejects.values().sum();
        if total == 0 {
            s.push_str("; no rejects");
        } else {
            let by_reason: Vec<String> = self
                .rejects
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            s.push_str(&format!("; {total} reject(s): {}", by_reason.join(", ")));
            if let Some(f) = &self.rejects_file {
                s.push_str(&format!(", in {}", f.display()));
            }
        }
        s
    }
}

/// Opens a webhook file, gzip or plain (told by its first bytes).
pub fn open_lines(path: &Path) -> Result<Box<dyn BufRead>> {
    let name = path.display().to_string();
    let mut file = File::open(path).map_err(|e| WaError::io(&name, e))?;
    let meta = file.metadata().map_err(|e| WaError::io(&name, e))?;
    if !meta.is_file() {
        return Err(WaError::Input(format!("{name}: not a regular file")));
    }
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(|e| WaError::io(&name, e))?;
    let file = File::open(path).map_err(|e| WaError::io(&name, e))?;
    let capacity = 1 << 20;
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::with_capacity(
            capacity,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(capacity, file)),
        ))
    } else {
        Box::new(BufReader::with_capacity(capacity, file))
    })
}

/// What one reader of webhook files found, besides its folds.
#[derive(Default)]
struct Reading {
    rejects: Vec<Reject>,
    lines: u64,
    bytes: u64,
    events: u64,
    other_changes: u64,
    /// The months of the events' times, as [`month_index`]es.
    months: BTreeSet<i32>,
}

impl Reading {
    fn merge(&mut self, other: Reading) {
        self.rejects.extend(other.rejects);
        self.lines += other.lines;
        self.bytes += other.bytes;
        self.events += other.events;
        self.other_changes += other.other_changes;
        self.months.extend(other.months);
    }

    /// Folds every line of file number `f` into `staging`.
    fn fold_file(
        &mut self,
        f: u32,
        path: &Path,
        staging: &mut Staging,
        store: &Store,
    ) -> Result<()> {
        let mut reader = open_lines(path)?;
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut line_no = 0u64;
        // The month of the last event's time, and that month's bounds.
        let mut month = (i64::MAX, i64::MIN, 0);
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| WaError::Input(format!("{}: {e}", path.display())))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            self.bytes += n as u64;
            let line = buf.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let mut failed = Ok(());
            let (events, months) = (&mut self.events, &mut self.months);
            let parsed = parse_line_with(line, &mut |e| {
                *events += 1;
                let at = e.kind.at();
                if !(month.0..month.1).contains(&at) {
                    month = month_bounds(at);
                    months.insert(month.2);
                }
                if failed.is_ok() {
                    failed = staging.add_event(store, &e, (f, line_no));
                }
            });
            failed?;
            let text = || String::from_utf8_lossy(line).into_owned();
            let parsed = match parsed {
                Ok(p) => p,
                Err(why) => {
                    self.rejects.push(Reject::Line {
                        file: f,
                        line: line_no,
                        why,
                        text: text(),
                    });
                    continue;
                }
            };
            self.other_changes += parsed.other_changes as u64;
            for why in parsed.rejected {
                self.rejects.push(Reject::Line {
                    file: f,
                    line: line_no,
                    why,
                    text: text(),
                });
            }
        }
        self.lines += line_no;
        Ok(())
    }
}

/// The month of `at` and its bounds: `[start, end)` in microseconds.
fn month_bounds(at: i64) -> (i64, i64, i32) {
    let index = month_index(at);
    let start =
        |i: i32| {
            chrono::NaiveDate::from_ymd_opt(i.div_euclid(12), i.rem_euclid(12) as u32 + 1, 1)
                .map_or(at, |d| {
                    d.and_hms_opt(0, 0, 0)
                        .expect("midnight")
                        .and_utc()
                        .timestamp_micros()
                })
        };
    let (lo, hi) = (start(index), start(index + 1));
    if (lo..hi).contains(&at) {
        (lo, hi, index)
    } else {
        (at, at + 1, index)
    }
}

/// Folds `files` on as many threads as there are cores (a file each at a
/// time), each into its own staging.
fn fold_files(files: &[PathBuf], store: &Store, budget: usize) -> Result<(Reading, Vec<Staging>)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = cores.min(files.len()).max(1);
    let next = AtomicUsize::new(0);
    let share = budget / workers;
    let done: Vec<Result<(Reading, Staging)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut reading = Reading::default();
                    let mut staging = Staging::new(store.count(), share);
                    loop {
                        let f = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(f) else {
                            return Ok((reading, staging));
                        };
                        let number = u32::try_from(f).expect("fewer than 4G files");
                        reading.fold_file(number, path, &mut staging, store)?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut all = Reading::default();
    let mut stagings = vec![];
    for d in done {
        let (reading, staging) = d?;
        all.merge(reading);
        stagings.push(staging);
    }
    Ok((all, stagings))
}

/// How many buckets a run spreads its messages over: enough that one
/// bucket's folds, settled on each core at once, stay within the budget,
/// told from the input's size (a gzip file as 16 times its size; a fold
/// takes about as much memory as its message's NDJSON).
fn bucket_count(files: &[PathBuf], others: u64, budget: usize, cores: usize) -> usize {
    let ndjson: u64 = files
        .iter()
        .map(|f| {
            let len = fs::metadata(f).map_or(0, |m| m.len());
            let mut magic = [0u8; 2];
            let gzip = File::open(f)
                .and_then(|mut file| file.read_exact(&mut magic))
                .is_ok()
                && magic == [0x1f, 0x8b];
            if gzip {
                len * 16
            } else {
                len
            }
        })
        .sum();
    let bytes = ndjson + others;
    let share = (budget / (2 * cores)).max(1) as u64;
    let wanted = (bytes / share + 1) as usize;
    wanted.next_power_of_two().clamp(cores, 1024)
}

/// One bucket settled: its messages by month, and what was wrong with them.
struct Outcome {
    touched: usize,
    rejects: Vec<Reject>,
    runs: BTreeMap<i32, Run>,
}

/// Settles bucket `b`: merges every fold of its messages (held or
/// spilled), applies the sends file's entries to them, checks those this
/// run's events touched, and sorts them into runs by month, written to
/// `runs_dir` when given.
fn settle(
    b: usize,
    held: Vec<(Map, Vec<SendEntry>)>,
    store: &Store,
    sends_name: &str,
    runs_dir: Option<&Path>,
) -> Result<Outcome> {
    let mut maps = vec![];
    let mut send_entries = vec![];
    for (map, sends) in held {
        maps.push(map);
        send_entries.extend(sends);
    }
    // The largest map takes the others in.
    let largest = (0..maps.len()).max_by_key(|&i| maps[i].len());
    let mut messages = largest.map(|i| maps.swap_remove(i)).unwrap_or_default();
    let merge = |messages: &mut Map, id: String, p: buckets::Pending| match messages.get_mut(&id) {
        Some(mine) => mine.merge(p),
        None => {
            messages.insert(id, p);
        }
    };
    for map in maps {
        for (id, p) in map {
            merge(&mut messages, id, p);
        }
    }
    store.read(
        b,
        |id, p| merge(&mut messages, id, p),
        |s| send_entries.push(s),
    )?;
    let mut sends = sends::Entries::default();
    for (id, row, send) in send_entries {
        sends.insert(sends_name, id, row, send)?;
    }
    for (id, (_, send)) in sends.0 {
        if let Some(p) = messages.get_mut(&id) {
            p.folded.with_send(send);
        }
    }
    let mut outcome = Outcome {
        touched: 0,
        rejects: vec![],
        runs: BTreeMap::new(),
    };
    let mut by_month: BTreeMap<i32, Vec<Settled>> = BTreeMap::new();
    for (id, p) in messages {
        if !p.sources.is_empty() {
            outcome.touched += 1;
            if let Err(why) = p.folded.check() {
                outcome.rejects.push(Reject::Message {
                    id: id.clone(),
                    reason: why.reason(),
                    detail: why.detail(),
                    sources: p.sources.clone(),
                });
            }
        }
        let at = p.folded.event_at();
        by_month.entry(month_index(at)).or_default().push(Settled {
            at,
            id,
            folded: p.folded,
        });
    }
    for (month, messages) in by_month {
        let path = runs_dir.map(|d| d.join(format!("{b}-{}.run", month_name(month))));
        outcome.runs.insert(month, Run::of(messages, path)?);
    }
    Ok(outcome)
}

/// Settles every bucket, on as many threads as there are cores.
fn settle_all(
    held: Vec<Staging>,
    store: &Store,
    sends_name: &str,
    runs_dir: Option<&Path>,
) -> Result<Vec<Outcome>> {
    let count = store.count();
    let mut by_bucket: Vec<Vec<(Map, Vec<SendEntry>)>> = (0..count).map(|_| vec![]).collect();
    for staging in held {
        for (b, (map, sends)) in staging.maps.into_iter().zip(staging.sends).enumerate() {
            by_bucket[b].push((map, sends));
        }
    }
    let by_bucket: Vec<Mutex<Option<_>>> =
        by_bucket.into_iter().map(|h| Mutex::new(Some(h))).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let outcomes: Vec<Result<Vec<Outcome>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cores.min(count))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = vec![];
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        let Some(slot) = by_bucket.get(b) else {
                            return Ok(mine);
                        };
                        let held = slot
                            .lock()
                            .expect("a bucket's slot")
                            .take()
                            .unwrap_or_default();
                        mine.push(settle(b, held, store, sends_name, runs_dir)?);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut all = vec![];
    for o in outcomes {
        all.extend(o?);
    }
    Ok(all)
}

/// Writes a month from the merge of its runs: the merge, the state's
/// encoding and the rows' encoding each on a thread of its own, a chunk
/// at a time. Returns the rows written.
fn write_month(runs: Vec<Run>, state: &Path, rows: &Path) -> Result<usize> {
    const CHUNK: usize = 64 * 1024;
    let mut merged = Merged::of(runs)?;
    let mut state_writer = StateWriter::create(state)?;
    let mut rows_writer = RowsWriter::create(rows)?;
    let (to_state, for_state) = std::sync::mpsc::sync_channel::<Arc<Vec<Settled>>>(1);
    let (to_rows, for_rows) = std::sync::mpsc::sync_channel::<Arc<Vec<Settled>>>(1);
    std::thread::scope(|s| {
        let state = s.spawn(move || -> Result<()> {
            for chunk in for_state {
                state_writer.write(&chunk)?;
            }
            state_writer.finish()
        });
        let rows = s.spawn(move || -> Result<usize> {
            for chunk in for_rows {
                rows_writer.write(&chunk)?;
            }
            rows_writer.finish()
        });
        let mut merging = Ok(());
        loop {
            let chunk = match merged.next_chunk(CHUNK) {
                Ok(c) if c.is_empty() => break,
                Ok(c) => Arc::new(c),
                Err(e) => {
                    merging = Err(e);
                    break;
                }
            };
            // A writer that stopped has its error to tell.
            if to_state.send(Arc::clone(&chunk)).is_err() || to_rows.send(chunk).is_err() {
                break;
            }
        }
        drop((to_state, to_rows));
        let state = state
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        let rows = rows.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        merging?;
        state?;
        rows
    })
}

/// Runs `ingest`. A run that fails leaves `--out` as it was: a folder it
/// created is removed again.
pub fn ingest(opts: &IngestOptions) -> Result<IngestSummary> {
    let created = !opts.out.exists();
    let done = ingest_into(opts);
    if done.is_err() && created {
        let _ = fs::remove_dir_all(&opts.out);
    }
    done
}

fn ingest_into(opts: &IngestOptions) -> Result<IngestSummary> {
    let out = &opts.out;
    if out.exists() && !out.is_dir() {
        return Err(WaError::Input(format!(
            "{}: --out must be a directory",
            out.display()
        )));
    }
    if partitions::holds_foreign_log(out)? {
        return Err(WaError::Input(format!(
            "{}: holds a log that `ingest` did not write (no {STATE_DIR}/ beside its \
             partitions); give an empty or new directory",
            out.display()
        )));
    }
    let stored: BTreeSet<String> = partitions::state_months(out)?.into_iter().collect();
    // A kept state file is compressed binary: its folds take about eight
    // times its size; the sends file's entries about its size.
    let other_bytes: u64 = stored
        .iter()
        .filter_map(|m| fs::metadata(state_path(out, m)).ok())
        .map(|m| m.len() * 8)
        .sum::<u64>()
        + opts
            .sends
            .as_ref()
            .and_then(|p| fs::metadata(p).ok())
            .map_or(0, |m| m.len());

    // Everything of the run is written aside first, its spill files too.
    fs::create_dir_all(out.join(STATE_DIR))
        .map_err(|e| WaError::io(out.display().to_string(), e))?;
    let aside = tempfile::Builder::new()
        .prefix(".run-")
        .tempdir_in(out.join(STATE_DIR))
        .map_err(|e| WaError::io(out.display().to_string(), e))?;
    let spill_dir = aside.path().join("spill");
    fs::create_dir_all(&spill_dir).map_err(|e| WaError::io(spill_dir.display().to_string(), e))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let budget = opts.budget.max(1);
    let store = Store::new(
        &spill_dir,
        bucket_count(&opts.files, other_bytes, budget, cores),
    );

    // A quarter of the budget for the sends file, half for the webhook
    // files' readers, a quarter for the kept state.
    let mut sends_staging = Staging::new(store.count(), budget / 4);
    let sends_name = opts
        .sends
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if let Some(p) = &opts.sends {
        sends::for_each_send(p, |id, row, send| {
            sends_staging.add_send(&store, id, row, send)
        })?;
    }
    let (reading, mut stagings) = fold_files(&opts.files, &store, budget / 2)?;
    let mut summary = IngestSummary {
        files: opts.files.len(),
        lines: reading.lines,
        bytes: reading.bytes,
        events: reading.events,
        other_changes: reading.other_changes,
        ..Default::default()
    };
    let mut rejects = reading.rejects;

    // The months the new events can touch: a message's events lie within
    // days of each other, so its row is in an event's month or next to it.
    // Their kept state joins the folds.
    let mut months: BTreeSet<String> = BTreeSet::new();
    for m in reading.months.iter().map(|&m| month_name(m)) {
        for n in neighbours(&m) {
            if stored.contains(&n) {
                months.insert(n);
            }
        }
        months.insert(m);
    }
    let mut kept = Staging::new(store.count(), budget / 4);
    for m in months.iter().filter(|m| stored.contains(*m)) {
        partitions::read_state(&state_path(out, m), |id, folded| {
            kept.add_kept(&store, id, folded)
        })?;
    }
    stagings.push(kept);
    stagings.push(sends_staging);
    // Past the budget, what is still held goes to disk too, so that the
    // buckets settle one by one with nothing else in memory.
    let runs_dir = store.spilled().then(|| aside.path().join("runs"));
    if let Some(dir) = &runs_dir {
        for s in &mut stagings {
            s.spill(&store)?;
        }
        fs::create_dir_all(dir).map_err(|e| WaError::io(dir.display().to_string(), e))?;
    }
    summary.spilled = store.spilled();
    let outcomes = settle_all(stagings, &store, &sends_name, runs_dir.as_deref())?;
    fs::remove_dir_all(&spill_dir).map_err(|e| WaError::io(spill_dir.display().to_string(), e))?;
    let mut by_month: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for o in outcomes {
        summary.messages_touched += o.touched;
        rejects.extend(o.rejects);
        for (month, run) in o.runs {
            by_month.entry(month_name(month)).or_default().push(run);
        }
    }
    rejects.sort_by(|a, b| a.order().cmp(&b.order()));
    for r in &rejects {
        *summary.rejects.entry(r.reason()).or_default() += 1;
    }
    if opts.strict && !rejects.is_empty() {
        let first = rejects[0].json(&opts.files);
        return Err(WaError::Input(format!(
            "{} reject(s) under --strict; nothing written. The first: {first}",
            rejects.len()
        )));
    }
    months.extend(by_month.keys().cloned());

    // Written aside, then renamed into place.
    let mut moves: Vec<(PathBuf, PathBuf)> = vec![];
    let mut removals: Vec<PathBuf> = vec![];
    for month in &months {
        let runs = by_month.remove(month).unwrap_or_default();
        let tmp_state = aside.path().join(format!("{month}.state"));
        // Not `.parquet`: a run killed before its renames leaves nothing a
        // listing of the log would read.
        let tmp_rows = aside.path().join(format!("{month}.rows"));
        let rows = write_month(runs, &tmp_state, &tmp_rows)?;
        moves.push((tmp_state, state_path(out, month)));
        let target = rows_path(out, month);
        if rows == 0 {
            fs::remove_file(&tmp_rows)
                .map_err(|e| WaError::io(tmp_rows.display().to_string(), e))?;
            if target.exists() {
                removals.push(target);
            }
        } else {
            moves.push((tmp_rows, target));
            summary.rows_written += rows;
        }
        summary.months_written.push(month.clone());
    }
    if !rejects.is_empty() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
        let tmp = aside.path().join("rejects.ndjson");
        let mut w = std::io::BufWriter::new(
            File::create(&tmp).map_err(|e| WaError::io(tmp.display().to_string(), e))?,
        );
        for r in &rejects {
            writeln!(w, "{}", r.json(&opts.files))
                .map_err(|e| WaError::io(tmp.display().to_string(), e))?;
        }
        w.flush()
            .map_err(|e| WaError::io(tmp.display().to_string(), e))?;
        let target = out.join(REJECTS_DIR).join(format!("{stamp}.ndjson"));
        summary.rejects_file = Some(target.clone());
        moves.push((tmp, target));
    }
    for (from, to) in &moves {
        let dir = to.parent().expect("inside the output directory");
        fs::create_dir_all(dir).map_err(|e| WaError::io(dir.display().to_string(), e))?;
        fs::rename(from, to).map_err(|e| WaError::io(to.display().to_string(), e))?;
    }
    for path in removals {
        fs::remove_file(&path).map_err(|e| WaError::io(path.display().to_string(), e))?;
        if let Some(dir) = path.parent() {
            let _ = fs::remove_dir(dir); // only when empty
        }
    }
    Ok(summary)
}
