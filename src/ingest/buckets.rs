//! A run's messages spread over buckets by a hash of their id, so that no
//! step of `ingest` holds more than its share of the memory budget: each
//! reader folds into its own [`Staging`], which spills its folds to the
//! buckets' files on disk whenever it outgrows its share, and each bucket
//! is then settled on its own ([`super::settle`]), with every fold of its
//! messages, wherever they were.
//!
//! A spill file is a sequence of records, each a little-endian `u32`
//! length and a [postcard] encoding of a message id and what is known of
//! it. Folds merge in any order, so a bucket's records need no order.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::BuildHasher;
use std::io::{BufReader, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use foldhash::fast::FixedState;
use serde::{Deserialize, Serialize};

use super::fold::{EventRef, Folded, Send};
use crate::error::{Result, WaError};

/// Where an event came from: its file's number and its line.
pub type Source = (u32, u64);

/// The sources a reject names: the least few, so that the record is the
/// same however the files were split, and a count of the rest.
pub const SOURCES_KEPT: usize = 4;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sources {
    least: [Source; SOURCES_KEPT],
    len: u8,
    more: u64,
}

impl Sources {
    pub fn one(source: Source) -> Sources {
        let mut s = Sources::default();
        s.add(source);
        s
    }

    pub fn add(&mut self, source: Source) {
        let kept = &mut self.least[..self.len as usize];
        if kept.contains(&source) {
            return;
        }
        if (self.len as usize) < SOURCES_KEPT {
            self.least[self.len as usize] = source;
            self.len += 1;
        } else {
            self.more += 1;
            let last = &mut self.least[SOURCES_KEPT - 1];
            if source >= *last {
                return;
            }
            *last = source;
        }
        self.least[..self.len as usize].sort_unstable();
    }

    pub fn merge(&mut self, other: &Sources) {
        for s in other.kept() {
            self.add(*s);
        }
        self.more += other.more;
    }

    pub fn kept(&self) -> &[Source] {
        &self.least[..self.len as usize]
    }

    pub fn more(&self) -> u64 {
        self.more
    }

    /// No event of this run: a message known from the kept state alone.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A message's fold and the events of this run that went into it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub folded: Folded,
    pub sources: Sources,
}

impl Pending {
    pub fn merge(&mut self, other: Pending) {
        self.folded.merge(other.folded);
        self.sources.merge(&other.sources);
    }

    /// Roughly what it holds in a map, with its id.
    fn footprint(&self, id: &str) -> usize {
        // A map entry, the id's allocation, and room for labels that later
        // events add.
        std::mem::size_of::<(String, Pending)>() + 8 + id.len() + 16 + self.folded.heap_bytes() + 64
    }
}

/// A message's entry of the sends file, and its row there.
pub type SendEntry = (String, u64, Send);

/// What a spill record says of a message.
#[derive(Deserialize)]
enum Part {
    Events(Box<Pending>),
    Send(u64, Send),
}

/// [`Part`], borrowed, for writing: serde encodes both alike.
#[derive(Serialize)]
enum PartRef<'a> {
    Events(&'a Pending),
    Send(u64, &'a Send),
}

pub type Map = HashMap<String, Pending, FixedState>;

/// The buckets' spill files, in a folder of their own.
pub struct Store {
    dir: PathBuf,
    count: usize,
    hasher: FixedState,
    files: Vec<Mutex<()>>,
    spilled: AtomicBool,
}

impl Store {
    pub fn new(dir: &Path, count: usize) -> Store {
        Store {
            dir: dir.to_path_buf(),
            count,
            // Not the maps' hasher: a bucket's ids would share their low
            // hash bits and crowd its map.
            hasher: FixedState::with_seed(0x9e37_79b9_7f4a_7c15),
            files: (0..count).map(|_| Mutex::new(())).collect(),
            spilled: AtomicBool::new(false),
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn bucket_of(&self, id: &str) -> usize {
        ((self.hasher.hash_one(id) >> 32) % self.count as u64) as usize
    }

    /// Whether any fold went to disk: then the run is past its budget, and
    /// what comes after spills too.
    pub fn spilled(&self) -> bool {
        self.spilled.load(Ordering::Relaxed)
    }

    fn path(&self, bucket: usize) -> PathBuf {
        self.dir.join(format!("{bucket}.spill"))
    }

    fn append(&self, bucket: usize, bytes: &[u8]) -> Result<()> {
        self.spilled.store(true, Ordering::Relaxed);
        let path = self.path(bucket);
        let _only_writer = self.files[bucket].lock().expect("a spill file's lock");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| spill_error(&path, e))?;
        file.write_all(bytes).map_err(|e| spill_error(&path, e))
    }

    /// Every record spilled to `bucket`, in no order.
    pub fn read(
        &self,
        bucket: usize,
        mut events: impl FnMut(String, Pending),
        mut sends: impl FnMut(SendEntry),
    ) -> Result<()> {
        let path = self.path(bucket);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(spill_error(&path, e)),
        };
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut buf = vec![];
        while let Some(record) = read_record(&mut reader, &mut buf, &path)? {
            let (id, part): (String, Part) = postcard::from_bytes(record)
                .map_err(|e| WaError::Input(format!("{}: {e}", path.display())))?;
            match part {
                Part::Events(p) => events(id, *p),
                Part::Send(row, send) => sends((id, row, send)),
            }
        }
        Ok(())
    }
}

fn spill_error(path: &Path, e: std::io::Error) -> WaError {
    WaError::io(format!("spill file {}", path.display()), e)
}

/// Appends a record: its length, then its bytes.
pub fn write_record(buf: &mut Vec<u8>, value: &impl Serialize) {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    *buf = postcard::to_extend(value, std::mem::take(buf)).expect("a record encodes");
    let len = u32::try_from(buf.len() - at - 4).expect("a record under 4 GiB");
    buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// The next record of `reader`, or `None` at its end.
pub fn read_record<'b>(
    reader: &mut impl Read,
    buf: &'b mut Vec<u8>,
    path: &Path,
) -> Result<Option<&'b [u8]>> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(spill_error(path, e)),
    }
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    reader.read_exact(buf).map_err(|e| spill_error(path, e))?;
    Ok(Some(buf))
}

/// One reader's folds, by bucket, until they outgrow its share of the
/// budget and go to the store.
pub struct Staging {
    pub maps: Vec<Map>,
    pub sends: Vec<Vec<SendEntry>>,
    footprint: usize,
    budget: usize,
}

impl Staging {
    pub fn new(buckets: usize, budget: usize) -> Staging {
        Staging {
            maps: (0..buckets).map(|_| Map::default()).collect(),
            sends: (0..buckets).map(|_| vec![]).collect(),
            footprint: 0,
            budget,
        }
    }

    pub fn add_event(&mut self, store: &Store, event: &EventRef, source: Source) -> Result<()> {
        let map = &mut self.maps[store.bucket_of(event.message_id)];
        if let Some(p) = map.get_mut(event.message_id) {
            p.folded.add(event);
            p.sources.add(source);
            return Ok(());
        }
        let p = Pending {
            folded: Folded::of_ref(event),
            sources: Sources::one(source),
        };
        self.footprint += p.footprint(event.message_id);
        map.insert(event.message_id.to_string(), p);
        self.spill_past_budget(store)
    }

    /// A fold an earlier run kept, with no event of this run.
    pub fn add_kept(&mut self, store: &Store, id: String, folded: Folded) -> Result<()> {
        let p = Pending {
            folded,
            sources: Sources::default(),
        };
        let map = &mut self.maps[store.bucket_of(&id)];
        if let Some(mine) = map.get_mut(&id) {
            mine.merge(p);
            return Ok(());
        }
        self.footprint += p.footprint(&id);
        map.insert(id, p);
        self.spill_past_budget(store)
    }

    pub fn add_send(&mut self, store: &Store, id: String, row: u64, send: Send) -> Result<()> {
        self.footprint += std::mem::size_of::<SendEntry>()
            + id.len()
            + 16
            + send.template_name.as_ref().map_or(0, |t| t.len() + 16);
        self.sends[store.bucket_of(&id)].push((id, row, send));
        self.spill_past_budget(store)
    }

    fn spill_past_budget(&mut self, store: &Store) -> Result<()> {
        if self.footprint > self.budget {
            self.spill(store)?;
        }
        Ok(())
    }

    /// Writes every fold held to the store, and frees it.
    pub fn spill(&mut self, store: &Store) -> Result<()> {
        let mut buf = vec![];
        for b in 0..self.maps.len() {
            buf.clear();
            let map = std::mem::take(&mut self.maps[b]);
            for (id, p) in &map {
                write_record(&mut buf, &(id, PartRef::Events(p)));
            }
            drop(map);
            for (id, row, send) in std::mem::take(&mut self.sends[b]) {
                write_record(&mut buf, &(id, PartRef::Send(row, &send)));
            }
            if !buf.is_empty() {
                store.append(b, &buf)?;
            }
        }
        self.footprint = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_keep_the_least_whatever_the_order() {
        let all: Vec<Source> = (0..10).map(|i| (i % 3, 100 - i as u64)).collect();
        let mut forward = Sources::default();
        all.iter().for_each(|s| forward.add(*s));
        let mut halves = Sources::default();
        let mut other = Sources::default();
        all.iter().rev().take(5).for_each(|s| halves.add(*s));
        all.iter().rev().skip(5).for_each(|s| other.add(*s));
        halves.merge(&other);
        assert_eq!(forward.kept(), halves.kept());
        assert_eq!(forward.kept(), &[(0, 91), (0, 94), (0, 97), (0, 100)]);
        assert_eq!(forward.more(), 6);
        assert_eq!(halves.more(), 6);
        forward.add((0, 91));
        assert_eq!(forward.more(), 6, "the same line is one source");
    }

    #[test]
    fn records_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), 4);
        let mut staging = Staging::new(4, 0);
        let send = Send {
            template: None,
            template_name: Some("hello".into()),
            sent_at: Some(5),
        };
        staging
            .add_send(&store, "m1".into(), 2, send.clone())
            .unwrap();
        assert!(store.spilled(), "a budget of 0 spills at once");
        let b = store.bucket_of("m1");
        let mut sends = vec![];
        store
            .read(b, |_, _| panic!("no events"), |s| sends.push(s))
            .unwrap();
        assert_eq!(sends, vec![("m1".to_string(), 2, send)]);
    }
}
