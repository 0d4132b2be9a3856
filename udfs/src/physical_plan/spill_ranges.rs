//! The windowing operator's rows on disk, by range of buckets: when its
//! memory cannot grow, [`super::bucketed`] writes an output partition's
//! buffered rows to that partition's spill file in pieces, each piece the
//! rows of one range of its groups (a group is a bucket, so every pair's
//! rows lie in one range), and reads on. After its inputs end, the
//! partition evaluates range by range, reading each range's pieces back
//! once.
//!
//! The rows are written as the accumulators hold them
//! ([`crate::accumulator::buffer::RowsAccumulator::spill`]): 22 to 30 bytes
//! a row and its id, where the input's columns take more and
//! would have to be read and coded again.
//!
//! A spill that would outgrow the page cache is written and read with
//! direct I/O (`O_DIRECT`, where the spill dir's file system allows it),
//! in aligned blocks ([`DirectFile`]): it is written once and read once,
//! so the page cache only costs a copy of every byte into pages the kernel
//! must find, fill and write back at its own pace. On a virtual disk that
//! writes 385 MB/s through the page cache (8 s of system time for 6 GB),
//! direct writes ran at 0.9 to 1.1 GB/s for 1 to 1.6 s. A smaller spill
//! goes through the page cache and is read back from memory.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

#[cfg(target_os = "linux")]
use std::os::unix::fs::{FileExt, OpenOptionsExt};

use datafusion::common::{exec_datafusion_err, DataFusionError, Result};
use datafusion::execution::disk_manager::DiskManager;
use datafusion::execution::spill_file::{SpillFile, SpillWriter};

/// How an output partition's groups split into ranges.
#[derive(Debug, Clone, Copy)]
pub struct Ranges {
    /// Groups per output partition.
    pub groups: usize,
    /// Ranges per output partition.
    pub count: usize,
}

impl Ranges {
    pub fn new(groups: usize, count: usize) -> Ranges {
        Ranges {
            groups,
            count: count.clamp(1, groups.max(1)),
        }
    }

    /// The range of `group`.
    pub fn of(&self, group: usize) -> usize {
        group * self.count / self.groups
    }

    /// The groups of range `r`: `[start, end)`.
    pub fn bounds(&self, r: usize) -> (usize, usize) {
        let start = (r * self.groups).div_ceil(self.count);
        let end = ((r + 1) * self.groups).div_ceil(self.count);
        (start, end)
    }
}

/// One output partition's spilled rows: a file of pieces, each of one
/// aggregate's rows of one range, and where each (aggregate, range)'s
/// pieces lie. Dropping it removes the file.
pub struct PartitionSpill {
    file: Arc<dyn SpillFile>,
    writer: Option<Sink>,
    at: u64,
    ranges: Ranges,
    /// `spans[aggregate * ranges.count + range]`: `(start, len)` in the file.
    spans: Vec<Vec<(u64, u64)>>,
}

/// Where a partition's spill is written: the file with direct I/O, else
/// DataFusion's writer through the page cache (a file system without
/// `O_DIRECT`, such as tmpfs, or another system than Linux).
enum Sink {
    Direct(DirectFile),
    Buffered(BufWriter<Box<dyn SpillWriter>>),
}

impl PartitionSpill {
    /// A spill file for `aggregates` aggregates' `ranges`, written with
    /// direct I/O when `direct` and the file system allows it.
    pub fn create(
        disk: &Arc<DiskManager>,
        ranges: Ranges,
        aggregates: usize,
        direct: bool,
    ) -> Result<Self> {
        let file = disk.create_tmp_file("BucketedWindowingExec spill")?;
        let direct = if direct {
            DirectFile::open(&file)
        } else {
            None
        };
        let writer = match direct {
            Some(direct) => Sink::Direct(direct),
            None => Sink::Buffered(BufWriter::with_capacity(1 << 20, file.open_writer()?)),
        };
        Ok(PartitionSpill {
            file,
            writer: Some(writer),
            at: 0,
            ranges,
            spans: vec![vec![]; aggregates * ranges.count],
        })
    }

    /// Appends `bytes` of aggregate `aggregate`'s range `range`.
    pub fn append(&mut self, aggregate: usize, range: usize, bytes: &[u8]) -> Result<()> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| exec_datafusion_err!("a windowing spill file written after its end"))?;
        match writer {
            Sink::Direct(direct) => direct.write_all(bytes),
            Sink::Buffered(buffered) => buffered.write_all(bytes),
        }
        .map_err(|e| spill_error(&self.file, "writing", e))?;
        let spans = &mut self.spans[aggregate * self.ranges.count + range];
        match spans.last_mut() {
            Some((start, len)) if *start + *len == self.at => *len += bytes.len() as u64,
            _ => spans.push((self.at, bytes.len() as u64)),
        }
        self.at += bytes.len() as u64;
        Ok(())
    }

    /// Ends the writing: everything appended is in the file, to be read.
    pub fn finish(mut self) -> Result<WrittenSpill> {
        let mut direct = false;
        match self.writer.take() {
            Some(Sink::Direct(mut file)) => {
                file.finish()
                    .map_err(|e| spill_error(&self.file, "writing", e))?;
                direct = true;
            }
            Some(Sink::Buffered(writer)) => {
                let mut inner = writer
                    .into_inner()
                    .map_err(|e| spill_error(&self.file, "writing", e.into_error()))?;
                inner
                    .flush()
                    .map_err(|e| spill_error(&self.file, "writing", e))?;
                inner.finish()?;
            }
            None => {}
        }
        Ok(WrittenSpill {
            file: self.file,
            ranges: self.ranges,
            spans: self.spans,
            direct,
        })
    }
}

/// A partition's spill file, written.
pub struct WrittenSpill {
    file: Arc<dyn SpillFile>,
    ranges: Ranges,
    spans: Vec<Vec<(u64, u64)>>,
    /// Written with direct I/O, and so read with it, in aligned blocks.
    direct: bool,
}

impl WrittenSpill {
    pub fn ranges(&self) -> Ranges {
        self.ranges
    }

    /// Asks the kernel to start reading range `range`'s pieces, of every
    /// aggregate, into the page cache, from a thread of its own, and
    /// returns at once. A range's pieces lie scattered through a file
    /// larger than the page cache, so without this each read waits on the
    /// disk while the cores idle; called for the next range before the
    /// current one is evaluated, the disk reads while the cores evaluate.
    pub fn prefetch(&self, range: usize) {
        // Direct reads bypass the page cache this would fill.
        if range >= self.ranges.count || self.direct {
            return;
        }
        let Some(path) = self.file.path() else {
            return;
        };
        let spans = self.range_spans(range);
        let path = path.to_path_buf();
        // Advice only: a file already removed (the query ended) or a
        // failed call leaves the reads to `read`, which reports errors.
        std::thread::spawn(move || {
            if let Ok(file) = File::open(path) {
                will_need(&file, &spans);
            }
        });
    }

    /// Where range `range`'s pieces of every aggregate lie, `(start, len)`
    /// in file order.
    fn range_spans(&self, range: usize) -> Vec<(u64, u64)> {
        let mut spans: Vec<(u64, u64)> = self
            .spans
            .iter()
            .skip(range)
            .step_by(self.ranges.count)
            .flatten()
            .copied()
            .collect();
        spans.sort_unstable();
        spans
    }

    /// Calls `each` with every piece of aggregate `aggregate`'s range
    /// `range`, in the order written; `buffer` holds one piece at a time
    /// (with the blocks around it, when read directly).
    pub fn read(
        &self,
        aggregate: usize,
        range: usize,
        buffer: &mut Vec<u8>,
        mut each: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let spans = &self.spans[aggregate * self.ranges.count + range];
        if spans.is_empty() {
            return Ok(());
        }
        let path = self
            .file
            .path()
            .ok_or_else(|| exec_datafusion_err!("a windowing spill file must be a local file"))?;
        if self.direct {
            return self.read_direct(path, spans, buffer, each);
        }
        let mut file = File::open(path).map_err(|e| spill_error(&self.file, "reading", e))?;
        for &(start, len) in spans {
            buffer.clear();
            buffer.resize(len as usize, 0);
            file.seek(SeekFrom::Start(start))
                .and_then(|_| file.read_exact(buffer))
                .map_err(|e| spill_error(&self.file, "reading", e))?;
            each(buffer)?;
        }
        Ok(())
    }

    /// [`Self::read`] of a file written directly: each piece read with the
    /// aligned blocks around it into an aligned part of `buffer`.
    #[cfg(target_os = "linux")]
    fn read_direct(
        &self,
        path: &std::path::Path,
        spans: &[(u64, u64)],
        buffer: &mut Vec<u8>,
        mut each: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .map_err(|e| spill_error(&self.file, "reading", e))?;
        for &(start, len) in spans {
            let from = start / BLOCK as u64 * BLOCK as u64;
            let to = (start + len).div_ceil(BLOCK as u64) * BLOCK as u64;
            let blocks = aligned(buffer, (to - from) as usize);
            file.read_exact_at(blocks, from)
                .map_err(|e| spill_error(&self.file, "reading", e))?;
            let at = (start - from) as usize;
            each(&blocks[at..at + len as usize])?;
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn read_direct(
        &self,
        _path: &std::path::Path,
        _spans: &[(u64, u64)],
        _buffer: &mut Vec<u8>,
        _each: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        unreachable!("direct I/O is opened on Linux alone")
    }
}

/// The alignment of direct I/O's buffers, file offsets and lengths: the
/// page size, a multiple of any disk's logical block.
const BLOCK: usize = 4096;
/// The bytes gathered before each direct write.
const DIRECT_WRITE: usize = 4 << 20;

/// `len` bytes of `buffer` starting at a [`BLOCK`]-aligned address.
fn aligned(buffer: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if buffer.len() < len + BLOCK {
        buffer.resize(len + BLOCK, 0);
    }
    let at = buffer.as_ptr().align_offset(BLOCK);
    &mut buffer[at..at + len]
}

/// A spill file opened for direct writes, appended to through one aligned
/// block of [`DIRECT_WRITE`] bytes; the last block is padded with zeros
/// to the alignment (the pieces' spans say where the rows end).
struct DirectFile {
    file: File,
    block: Vec<u8>,
    filled: usize,
}

impl DirectFile {
    /// `file` opened for direct writes, or `None` where its file system or
    /// the system does not do them.
    #[cfg(target_os = "linux")]
    fn open(file: &Arc<dyn SpillFile>) -> Option<DirectFile> {
        let path = file.path()?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()?;
        Some(DirectFile {
            file,
            block: vec![],
            filled: 0,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn open(_file: &Arc<dyn SpillFile>) -> Option<DirectFile> {
        None
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let filled = self.filled;
            let block = aligned(&mut self.block, DIRECT_WRITE);
            let n = bytes.len().min(DIRECT_WRITE - filled);
            block[filled..filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == DIRECT_WRITE {
                self.write_block()?;
            }
        }
        Ok(())
    }

    /// Writes the block's filled part, padded to the alignment.
    fn write_block(&mut self) -> std::io::Result<()> {
        let len = self.filled.div_ceil(BLOCK) * BLOCK;
        let block = aligned(&mut self.block, DIRECT_WRITE);
        block[self.filled..len].fill(0);
        self.file.write_all(&block[..len])?;
        self.filled = 0;
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        if self.filled > 0 {
            self.write_block()?;
        }
        self.block = vec![];
        Ok(())
    }
}

/// `posix_fadvise(WILLNEED)` on each `(start, len)` of `file`.
#[cfg(target_os = "linux")]
fn will_need(file: &File, spans: &[(u64, u64)]) {
    use std::os::fd::AsRawFd;
    for &(start, len) in spans {
        let (Ok(start), Ok(len)) = (libc::off_t::try_from(start), libc::off_t::try_from(len))
        else {
            return;
        };
        // SAFETY: the descriptor is open for the call's length, and the
        // advice reads nothing into this process.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), start, len, libc::POSIX_FADV_WILLNEED) };
    }
}

#[cfg(not(target_os = "linux"))]
fn will_need(_file: &File, _spans: &[(u64, u64)]) {}

/// An I/O error on a spill file, naming it (and so the spill dir).
fn spill_error(file: &Arc<dyn SpillFile>, doing: &str, e: std::io::Error) -> DataFusionError {
    let name = file
        .path()
        .map_or_else(|| "(not a local file)".into(), |p| p.display().to_string());
    exec_datafusion_err!("{doing} the windowing's spill file {name}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_come_back_by_aggregate_and_range_and_read_ahead_covers_the_range() {
        for direct in [true, false] {
            let disk = Arc::new(DiskManager::builder().build().unwrap());
            let ranges = Ranges::new(10, 3);
            let mut spill = PartitionSpill::create(&disk, ranges, 2, direct).unwrap();
            let mut expected = vec![vec![]; 2 * 3];
            for i in 0..300u32 {
                let (a, r) = ((i % 2) as usize, (i % 3) as usize);
                // Pieces of a few bytes, and a few across direct writes'
                // blocks.
                let times = match i % 100 {
                    7 => DIRECT_WRITE / 4 + 1001,
                    _ => 1 + i as usize % 5,
                };
                let bytes = i.to_le_bytes().repeat(times);
                spill.append(a, r, &bytes).unwrap();
                expected[a * 3 + r].extend_from_slice(&bytes);
            }
            let written = spill.finish().unwrap();
            if direct && takes_direct_io(written.file.path().unwrap()) {
                assert!(
                    written.direct,
                    "written directly where the file system allows"
                );
            }
            assert!(direct || !written.direct);
            for r in 0..3 {
                let spans = written.range_spans(r);
                assert!(
                    spans.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0),
                    "{spans:?}"
                );
                let bytes: u64 = spans.iter().map(|s| s.1).sum();
                assert_eq!(bytes as usize, expected[r].len() + expected[3 + r].len());
                written.prefetch(r);
            }
            // Past the last range: nothing to read ahead.
            written.prefetch(3);
            let mut buffer = vec![];
            for a in 0..2 {
                for r in 0..3 {
                    let mut back = vec![];
                    written
                        .read(a, r, &mut buffer, |b| {
                            back.extend_from_slice(b);
                            Ok(())
                        })
                        .unwrap();
                    assert_eq!(
                        back,
                        expected[a * 3 + r],
                        "aggregate {a} range {r} {direct}"
                    );
                }
            }
        }
    }

    /// Whether a file beside `path` opens for direct writes.
    fn takes_direct_io(path: &std::path::Path) -> bool {
        #[cfg(target_os = "linux")]
        {
            let probe = path.with_extension("probe");
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_DIRECT)
                .open(&probe)
                .is_ok();
            let _ = std::fs::remove_file(probe);
            opened
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = path;
            false
        }
    }

    #[test]
    fn ranges_cover_every_group_once() {
        for (groups, count) in [(1024, 1), (1024, 3), (7, 7), (5, 9), (1000, 64)] {
            let r = Ranges::new(groups, count);
            let mut next = 0;
            for k in 0..r.count {
                let (start, end) = r.bounds(k);
                assert_eq!(start, next, "{groups} {count}");
                for g in start..end {
                    assert_eq!(r.of(g), k, "group {g} of {groups} in {count}");
                }
                next = end;
            }
            assert_eq!(next, groups);
        }
    }
}
