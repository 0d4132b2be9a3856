//! The windowing operator's rows on disk, by range of buckets: when its
//! memory cannot grow, [`super::bucketed`] reads its input again and writes
//! every row to the spill file of its output partition's range of groups
//! (a group is a bucket, so every pair's rows land in one file), then
//! evaluates each range on its own, reading its file back once.
//!
//! A spill row is the row's group within its range, its key code (the
//! operator's key table stays in memory) and the aggregates' value
//! columns, as they are appended to the accumulators.

use std::fs::File;
use std::io::BufReader;
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, AsArray, RecordBatch, UInt32Array, UInt64Array};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use datafusion::common::{exec_datafusion_err, Result};
use datafusion::execution::disk_manager::DiskManager;
use datafusion::execution::spill_file::{SpillFile, SpillWriter as FileWriter};

/// Rows gathered for a range before they are written: a spill file of many
/// small batches would be mostly their headers.
const PENDING_ROWS: usize = 8192;

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

/// The schema of a spill row: group, key code, then the value columns.
pub fn spill_schema(values: &[DataType]) -> SchemaRef {
    let mut fields = vec![
        Field::new("group", DataType::UInt32, false),
        Field::new("code", DataType::UInt64, false),
    ];
    fields.extend(
        values
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("v{i}"), t.clone(), true)),
    );
    Arc::new(Schema::new(fields))
}

/// A spill file and its IPC stream, open.
type OpenFile = (Arc<dyn SpillFile>, StreamWriter<Box<dyn FileWriter>>);

struct Destination {
    pending: Vec<RecordBatch>,
    rows: usize,
    file: Option<OpenFile>,
}

/// The spill files being written, one per (output partition, range).
pub struct SpillWriter {
    disk: Arc<DiskManager>,
    schema: SchemaRef,
    ranges: Ranges,
    destinations: Vec<Mutex<Destination>>,
}

impl SpillWriter {
    pub fn new(
        disk: Arc<DiskManager>,
        schema: SchemaRef,
        partitions: usize,
        ranges: Ranges,
    ) -> SpillWriter {
        SpillWriter {
            disk,
            schema,
            ranges,
            destinations: (0..partitions * ranges.count)
                .map(|_| {
                    Mutex::new(Destination {
                        pending: vec![],
                        rows: 0,
                        file: None,
                    })
                })
                .collect(),
        }
    }

    pub fn ranges(&self) -> Ranges {
        self.ranges
    }

    /// Appends `rows` (indices into `values`, `codes`) of output partition
    /// `partition`'s `groups` (one per row), all in range `range`.
    pub fn append(
        &self,
        partition: usize,
        range: usize,
        rows: &[u32],
        groups: &[u32],
        codes: &[u64],
        values: &[ArrayRef],
    ) -> Result<()> {
        let (start, _) = self.ranges.bounds(range);
        let indices = UInt32Array::from(rows.to_vec());
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from_iter_values(
                groups.iter().map(|g| g - start as u32),
            )),
            Arc::new(UInt64Array::from_iter_values(
                rows.iter().map(|&r| codes[r as usize]),
            )),
        ];
        for v in values {
            columns.push(take(v.as_ref(), &indices, None)?);
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let mut d = lock(&self.destinations[partition * self.ranges.count + range]);
        d.rows += batch.num_rows();
        d.pending.push(batch);
        if d.rows >= PENDING_ROWS {
            self.write_pending(&mut d)?;
        }
        Ok(())
    }

    fn write_pending(&self, d: &mut Destination) -> Result<()> {
        if d.pending.is_empty() {
            return Ok(());
        }
        let batch = compact_views(concat_batches(&self.schema, &d.pending)?)?;
        d.pending.clear();
        d.rows = 0;
        if d.file.is_none() {
            let file = self.disk.create_tmp_file("BucketedWindowingExec spill")?;
            let writer = StreamWriter::try_new(file.open_writer()?, &self.schema)?;
            d.file = Some((file, writer));
        }
        let (file, writer) = d.file.as_mut().expect("created above");
        writer
            .write(&batch)
            .map_err(|e| exec_datafusion_err!("writing spill file {}: {e}", name(file)))?;
        Ok(())
    }

    /// Writes what is pending and closes the files: each (partition, range)'s
    /// file, `None` where it had no rows.
    pub fn finish(self) -> Result<SpillFiles> {
        let mut files = Vec::with_capacity(self.destinations.len());
        for d in &self.destinations {
            let mut d = lock(d);
            self.write_pending(&mut d)?;
            files.push(match d.file.take() {
                Some((file, mut writer)) => {
                    let err = |e: &dyn std::fmt::Display| {
                        exec_datafusion_err!("writing spill file {}: {e}", name(&file))
                    };
                    writer.finish().map_err(|e| err(&e))?;
                    let mut inner = writer.into_inner().map_err(|e| err(&e))?;
                    inner.finish()?;
                    Some(file)
                }
                None => None,
            });
        }
        Ok(SpillFiles {
            ranges: self.ranges,
            files,
        })
    }
}

/// `batch` with its string views holding only the bytes they show: a view
/// taken from an input batch still points into all of its buffers, which an
/// IPC file would copy whole for every batch written.
fn compact_views(batch: RecordBatch) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8View => Arc::new(c.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView => Arc::new(c.as_binary_view().gc()) as ArrayRef,
            _ => Arc::clone(c),
        })
        .collect();
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

fn name(file: &Arc<dyn SpillFile>) -> String {
    file.path()
        .map_or_else(|| "(not a local file)".into(), |p| p.display().to_string())
}

/// The spill files of a run, written.
pub struct SpillFiles {
    pub ranges: Ranges,
    files: Vec<Option<Arc<dyn SpillFile>>>,
}

impl SpillFiles {
    /// The batches of `partition`'s range `range`, read back in order;
    /// none when it had no rows.
    pub fn read(
        &self,
        partition: usize,
        range: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<RecordBatch>> + Send>> {
        let Some(file) = &self.files[partition * self.ranges.count + range] else {
            return Ok(Box::new(std::iter::empty()));
        };
        let path = file
            .path()
            .ok_or_else(|| exec_datafusion_err!("a windowing spill file must be a local file"))?;
        let reader = File::open(path)
            .map_err(|e| exec_datafusion_err!("reading spill file {}: {e}", path.display()))?;
        let reader = StreamReader::try_new(BufReader::with_capacity(1 << 20, reader), None)?;
        let path = path.display().to_string();
        Ok(Box::new(reader.map(move |b| {
            b.map_err(|e| exec_datafusion_err!("reading spill file {path}: {e}"))
        })))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

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
