//! Webhook files into a message log (`wausage ingest`), as
//! `docs/webhook-ingest.md` says: lines are parsed ([`webhook`]), each
//! message's events folded ([`fold`]) with what the sends file says of it
//! ([`sends`]) and with the state an earlier run kept, and every month the
//! run touches is written again ([`partitions`]): aside first, then each
//! file renamed into place, so a run that fails leaves every partition as
//! it was.

pub mod emit;
pub mod fold;
pub mod partitions;
pub mod sends;
pub mod webhook;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use fold::EventRef;
use fold::Folded;
use partitions::{month_of, neighbours, rows_path, state_path, REJECTS_DIR, STATE_DIR};
use webhook::{parse_line_with, Rejected};

use crate::error::{Result, WaError};

/// What to ingest and where.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub files: Vec<PathBuf>,
    pub out: PathBuf,
    pub sends: Option<PathBuf>,
    /// Any reject fails the run, and nothing is written.
    pub strict: bool,
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

/// Where a message's events came from, for its reject record.
type Source = (u32, u64);
/// The sources kept per message: a reject lists these and counts the rest.
const SOURCES_KEPT: usize = 16;

struct Pending {
    folded: Folded,
    sources: Vec<Source>,
    more_sources: u64,
}

/// One record of `DIR/_rejects/`.
enum Reject {
    Line {
        file: u32,
        line: u64,
        why: Rejected,
        text: String,
    },
    Message {
        id: String,
        reason: &'static str,
        detail: String,
        sources: Vec<Source>,
        more_sources: u64,
    },
}

impl Reject {
    fn reason(&self) -> &'static str {
        match self {
            Reject::Line { why, .. } => why.reason,
            Reject::Message { reason, .. } => reason,
        }
    }

    fn json(&self, files: &[PathBuf]) -> String {
        let name = |f: u32| files[f as usize].display().to_string();
        let value = match self {
            Reject::Line {
                file,
                line,
                why,
                text,
            } => serde_json::json!({
                "file": name(*file),
                "line": line,
                "reason": why.reason,
                "detail": why.detail,
                "text": text,
            }),
            Reject::Message {
                id,
                reason,
                detail,
                sources,
                more_sources,
            } => {
                let events: Vec<_> = sources
                    .iter()
                    .map(|(f, l)| serde_json::json!({"file": name(*f), "line": l}))
                    .collect();
                let mut v = serde_json::json!({
                    "message_id": id,
                    "reason": reason,
                    "detail": detail,
                    "events": events,
                });
                if *more_sources > 0 {
                    v["more_events"] = (*more_sources).into();
                }
                v
            }
        };
        value.to_string()
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

/// What the files' lines fold to, before the kept state is merged in.
#[derive(Default)]
struct Folding {
    pending: HashMap<String, Pending>,
    rejects: Vec<Reject>,
    lines: u64,
    bytes: u64,
    events: u64,
    other_changes: u64,
}

impl Folding {
    fn add(pending: &mut HashMap<String, Pending>, event: &EventRef, source: Source) {
        match pending.get_mut(event.message_id) {
            Some(p) => {
                p.folded.add(event);
                if p.sources.len() < SOURCES_KEPT {
                    p.sources.push(source);
                } else {
                    p.more_sources += 1;
                }
            }
            None => {
                pending.insert(
                    event.message_id.to_string(),
                    Pending {
                        folded: Folded::of_ref(event),
                        sources: vec![source],
                        more_sources: 0,
                    },
                );
            }
        }
    }

    /// Merges another worker's folding; the fold is commutative, so the
    /// split of the files between workers does not show.
    fn merge(&mut self, mut other: Folding) {
        if other.pending.len() > self.pending.len() {
            std::mem::swap(&mut self.pending, &mut other.pending);
        }
        for (id, p) in other.pending {
            match self.pending.get_mut(&id) {
                Some(mine) => {
                    mine.folded.merge(p.folded);
                    mine.sources.extend(p.sources);
                    mine.more_sources += p.more_sources;
                    if mine.sources.len() > SOURCES_KEPT {
                        mine.sources.sort_unstable();
                        mine.more_sources += (mine.sources.len() - SOURCES_KEPT) as u64;
                        mine.sources.truncate(SOURCES_KEPT);
                    }
                }
                None => {
                    self.pending.insert(id, p);
                }
            }
        }
        self.rejects.extend(other.rejects);
        self.lines += other.lines;
        self.bytes += other.bytes;
        self.events += other.events;
        self.other_changes += other.other_changes;
    }

    /// Folds every line of file number `f`.
    fn fold_file(&mut self, f: u32, path: &Path) -> Result<()> {
        let mut reader = open_lines(path)?;
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut line_no = 0u64;
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
            let text = || String::from_utf8_lossy(line).into_owned();
            let (pending, events) = (&mut self.pending, &mut self.events);
            let parsed = parse_line_with(line, &mut |e| {
                *events += 1;
                Folding::add(pending, &e, (f, line_no));
            });
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

/// Folds `files` on as many threads as there are cores (a file each at a
/// time), then merges the threads' folds.
fn fold_files(files: &[PathBuf]) -> Result<Folding> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = cores.min(files.len()).max(1);
    let next = AtomicUsize::new(0);
    let folded: Vec<Result<Folding>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut folding = Folding::default();
                    loop {
                        let f = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(f) else {
                            return Ok(folding);
                        };
                        let number = u32::try_from(f).expect("fewer than 4G files");
                        folding.fold_file(number, path)?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut all = Folding::default();
    for f in folded {
        all.merge(f?);
    }
    all.rejects.sort_by_key(|r| match r {
        Reject::Line { file, line, .. } => (*file, *line),
        Reject::Message { .. } => (u32::MAX, 0),
    });
    for p in all.pending.values_mut() {
        p.sources.sort_unstable();
    }
    Ok(all)
}

/// Runs `ingest`.
pub fn ingest(opts: &IngestOptions) -> Result<IngestSummary> {
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
    let sends = match &opts.sends {
        Some(p) => sends::read_sends(p)?,
        None => HashMap::new(),
    };
    let folding = fold_files(&opts.files)?;
    let mut summary = IngestSummary {
        files: opts.files.len(),
        lines: folding.lines,
        bytes: folding.bytes,
        events: folding.events,
        other_changes: folding.other_changes,
        ..Default::default()
    };
    let pending = folding.pending;
    let mut rejects = folding.rejects;
    summary.messages_touched = pending.len();
    let mut messages = pending;

    // The months the new events can touch: a message's events lie within
    // days of each other, so its row is in an event's month or next to it.
    let stored: BTreeSet<String> = partitions::state_months(out)?.into_iter().collect();
    let mut months: BTreeSet<String> = BTreeSet::new();
    for p in messages.values() {
        let m = month_of(p.folded.event_at());
        for n in neighbours(&m) {
            if stored.contains(&n) {
                months.insert(n);
            }
        }
        months.insert(m);
    }
    // The kept state of those months joins the same map: a message this
    // run did not touch has no sources.
    for m in months.iter().filter(|m| stored.contains(*m)) {
        for (id, folded) in partitions::read_state(&state_path(out, m))? {
            match messages.get_mut(&id) {
                Some(p) => p.folded.merge(folded),
                None => {
                    messages.insert(
                        id,
                        Pending {
                            folded,
                            sources: vec![],
                            more_sources: 0,
                        },
                    );
                }
            }
        }
    }
    for (id, send) in sends {
        if let Some(p) = messages.get_mut(&id) {
            p.folded.with_send(send);
        }
    }
    for (id, p) in &messages {
        if p.sources.is_empty() {
            continue;
        }
        if let Err(why) = p.folded.check() {
            rejects.push(Reject::Message {
                id: id.clone(),
                reason: why.reason(),
                detail: why.detail(),
                sources: p.sources.clone(),
                more_sources: p.more_sources,
            });
        }
    }
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

    // Every message of the months read, by the month it belongs to now,
    // in the rows' order: (sent_at, message_id).
    let mut by_month: BTreeMap<String, Vec<(i64, &str, &Folded)>> = BTreeMap::new();
    for (id, p) in &messages {
        let at = p.folded.event_at();
        let month = month_of(at);
        if !by_month.contains_key(&month) {
            months.insert(month.clone());
        }
        by_month
            .entry(month)
            .or_default()
            .push((at, id.as_str(), &p.folded));
    }

    // Written aside, then renamed into place.
    fs::create_dir_all(out.join(STATE_DIR))
        .map_err(|e| WaError::io(out.display().to_string(), e))?;
    let aside = tempfile::Builder::new()
        .prefix(".run-")
        .tempdir_in(out.join(STATE_DIR))
        .map_err(|e| WaError::io(out.display().to_string(), e))?;
    let mut moves: Vec<(PathBuf, PathBuf)> = vec![];
    let mut removals: Vec<PathBuf> = vec![];
    for month in &months {
        let mut entries = by_month.remove(month).unwrap_or_default();
        entries.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let tmp_state = aside.path().join(format!("{month}.state"));
        // Not `.parquet`: a run killed before its renames leaves nothing a
        // listing of the log would read.
        let tmp_rows = aside.path().join(format!("{month}.rows"));
        // The state and the rows are encoded side by side.
        let (state, rows) = std::thread::scope(|s| {
            let state = s.spawn(|| partitions::write_state(&tmp_state, &entries));
            let rows = partitions::write_rows(&tmp_rows, &entries);
            (
                state
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
                rows,
            )
        });
        state?;
        let rows = rows?;
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
