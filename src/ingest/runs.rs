//! A month's messages in the rows' order, (sent_at, message_id): each
//! bucket settles into one sorted run per month, in memory or, once the
//! run is past its budget, in a file; a month is written from the merge of
//! its runs, so that no step holds the whole month.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::buckets::{read_record, write_record};
use super::fold::Folded;
use crate::error::{Result, WaError};

/// A message settled: every fold of it merged, the time it is kept at.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settled {
    pub at: i64,
    pub id: String,
    pub folded: Folded,
}

impl Settled {
    fn key(&self) -> (i64, &str) {
        (self.at, &self.id)
    }
}

pub enum Run {
    Memory(Vec<Settled>),
    File(PathBuf),
}

impl Run {
    /// Sorts `messages` into a run, written to `path` when given.
    pub fn of(messages: Vec<Settled>, path: Option<PathBuf>) -> Result<Run> {
        // Sorted by index, then each message moved once: a fold is some
        // hundred bytes, too many to move at every step of a sort.
        let mut order: Vec<u32> = (0..messages.len() as u32).collect();
        order
            .sort_unstable_by(|&a, &b| messages[a as usize].key().cmp(&messages[b as usize].key()));
        let mut slots: Vec<Option<Settled>> = messages.into_iter().map(Some).collect();
        let messages: Vec<Settled> = order
            .iter()
            .map(|&i| slots[i as usize].take().expect("each index once"))
            .collect();
        let Some(path) = path else {
            return Ok(Run::Memory(messages));
        };
        let err = |e| WaError::io(format!("run file {}", path.display()), e);
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&path).map_err(err)?);
        let mut buf = Vec::with_capacity(1 << 16);
        for chunk in messages.chunks(1024) {
            buf.clear();
            for m in chunk {
                write_record(&mut buf, m);
            }
            w.write_all(&buf).map_err(err)?;
        }
        w.flush().map_err(err)?;
        Ok(Run::File(path))
    }

    fn open(self) -> Result<Box<dyn Iterator<Item = Result<Settled>> + Send>> {
        match self {
            Run::Memory(v) => Ok(Box::new(v.into_iter().map(Ok))),
            Run::File(path) => {
                let file = File::open(&path)
                    .map_err(|e| WaError::io(format!("run file {}", path.display()), e))?;
                Ok(Box::new(FileRun {
                    reader: BufReader::with_capacity(1 << 16, file),
                    buf: vec![],
                    path,
                }))
            }
        }
    }
}

struct FileRun {
    reader: BufReader<File>,
    buf: Vec<u8>,
    path: PathBuf,
}

impl Iterator for FileRun {
    type Item = Result<Settled>;

    fn next(&mut self) -> Option<Result<Settled>> {
        let record = match read_record(&mut self.reader, &mut self.buf, &self.path) {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        Some(postcard::from_bytes(record).map_err(|e| bad_run(&self.path, e)))
    }
}

fn bad_run(path: &Path, e: impl std::fmt::Display) -> WaError {
    WaError::Input(format!("run file {}: {e}", path.display()))
}

/// The head of one run, ordered for a min-heap: its key alone, the fold
/// waiting beside the heap, so that heap steps move a few bytes.
struct Head {
    at: i64,
    id: String,
    run: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, &other.id, other.run).cmp(&(self.at, &self.id, self.run))
    }
}

/// The messages of `runs` in order.
pub struct Merged {
    runs: Vec<Box<dyn Iterator<Item = Result<Settled>> + Send>>,
    heap: BinaryHeap<Head>,
    /// Each run's head's fold.
    folds: Vec<Option<Folded>>,
}

impl Merged {
    pub fn of(runs: Vec<Run>) -> Result<Merged> {
        let mut merged = Merged {
            folds: runs.iter().map(|_| None).collect(),
            runs: runs.into_iter().map(Run::open).collect::<Result<_>>()?,
            heap: BinaryHeap::new(),
        };
        for run in 0..merged.runs.len() {
            merged.refill(run)?;
        }
        Ok(merged)
    }

    fn refill(&mut self, run: usize) -> Result<()> {
        if let Some(message) = self.runs[run].next() {
            let Settled { at, id, folded } = message?;
            self.folds[run] = Some(folded);
            self.heap.push(Head { at, id, run });
        }
        Ok(())
    }

    /// Up to `n` messages, in order; none when every run is done.
    pub fn next_chunk(&mut self, n: usize) -> Result<Vec<Settled>> {
        let mut chunk = Vec::with_capacity(n.min(self.heap.len() * 1024));
        while chunk.len() < n {
            let Some(Head { at, id, run }) = self.heap.pop() else {
                break;
            };
            let folded = self.folds[run].take().expect("a head's fold");
            self.refill(run)?;
            chunk.push(Settled { at, id, folded });
        }
        Ok(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::fold::{Event, Parties, Status};

    fn settled(at: i64, id: &str) -> Settled {
        let parties = Parties {
            account_id: "a".into(),
            phone_number_id: None,
            customer: "1".into(),
        };
        let event = Event::Status {
            status: Status::Sent,
            at,
            pricing: None,
            conversation: None,
        };
        Settled {
            at,
            id: id.into(),
            folded: Folded::of(parties, event),
        }
    }

    #[test]
    fn runs_in_memory_and_on_disk_merge_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = Run::of(vec![settled(3, "c"), settled(1, "b")], None).unwrap();
        let b = Run::of(
            vec![settled(1, "a"), settled(3, "b"), settled(2, "z")],
            Some(dir.path().join("b.run")),
        )
        .unwrap();
        let mut merged = Merged::of(vec![a, b, Run::Memory(vec![])]).unwrap();
        let mut order = vec![];
        loop {
            let chunk = merged.next_chunk(2).unwrap();
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= 2);
            order.extend(chunk.into_iter().map(|m| (m.at, m.id)));
        }
        let expected: Vec<(i64, String)> = [(1, "a"), (1, "b"), (2, "z"), (3, "b"), (3, "c")]
            .into_iter()
            .map(|(at, id)| (at, id.to_string()))
            .collect();
        assert_eq!(order, expected);
    }
}
