//! The sends file (`--sends FILE`): what the business's own sending code
//! logged of each outbound message, the authority for whether it was a
//! template. CSV (with a header), NDJSON or Parquet, told apart by the
//! file's first bytes and name; every column is read as text except a
//! Parquet `sent_at` of a timestamp type.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, NaiveDateTime};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::fold::{Send, TemplateCategory};
use crate::error::{Result, WaError};

/// The columns a sends file has; the last two may be missing.
const REQUIRED: [&str; 3] = ["message_id", "message_type", "category"];

/// Reads the sends file at `path`: each message id's entry.
pub fn read_sends(path: &Path) -> Result<HashMap<String, Send>> {
    let name = path.display().to_string();
    let mut sends = Entries::default();
    for_each_send(path, |id, row, send| sends.insert(&name, id, row, send))?;
    Ok(sends
        .0
        .into_iter()
        .map(|(id, (_, send))| (id, send))
        .collect())
}

/// Entries of a sends file by message id, with the row each came from: an
/// id twice with the same values is one entry, with different values an
/// error naming the later row.
#[derive(Debug, Default)]
pub struct Entries(pub HashMap<String, (u64, Send)>);

impl Entries {
    pub fn insert(&mut self, name: &str, id: String, row: u64, send: Send) -> Result<()> {
        match self.0.get_mut(&id) {
            None => {
                self.0.insert(id, (row, send));
                Ok(())
            }
            Some((_, before)) if *before == send => Ok(()),
            Some((before_row, _)) => Err(WaError::Input(format!(
                "{name}: row {}: message {id} is in the file twice, with different values",
                row.max(*before_row)
            ))),
        }
    }
}

/// Streams the entries of the sends file at `path`, a batch at a time:
/// each one's message id, row (counting a CSV header) and entry.
pub fn for_each_send(
    path: &Path,
    mut each: impl FnMut(String, u64, Send) -> Result<()>,
) -> Result<()> {
    let name = path.display().to_string();
    let err = |e: std::io::Error| WaError::io(&name, e);
    let mut file = File::open(path).map_err(err)?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(err)?;
    file.rewind().map_err(err)?;
    let is_json = path
        .extension()
        .is_some_and(|e| e == "ndjson" || e == "jsonl" || e == "json");
    let (batches, first_row) = if &magic[..n] == b"PAR1" {
        (read_parquet(file, &name)?, 1)
    } else if is_json || magic[..n].first() == Some(&b'{') {
        (read_ndjson(file, &name)?, 1)
    } else {
        (read_csv(file, &name)?, 2)
    };
    let mut row = first_row;
    for batch in batches {
        let batch = batch?;
        let columns = Columns::of(&batch, &name)?;
        for r in 0..batch.num_rows() {
            let (id, send) = columns.send(r, row, &name)?;
            each(id, row as u64, send)?;
            row += 1;
        }
    }
    Ok(())
}

/// A sends file's batches, read as they are asked for.
type Batches = Box<dyn Iterator<Item = Result<RecordBatch>>>;

fn read_parquet(file: File, name: &str) -> Result<Batches> {
    let input = |e: parquet::errors::ParquetError| WaError::Input(format!("{name}: {e}"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(input)?
        .build()
        .map_err(input)?;
    let name = name.to_string();
    Ok(Box::new(reader.map(move |b| {
        b.map_err(|e| WaError::Input(format!("{name}: {e}")))
    })))
}

fn arrow_batches(
    reader: impl Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>> + 'static,
    name: &str,
) -> Batches {
    let name = name.to_string();
    Box::new(reader.map(move |b| b.map_err(|e| WaError::Input(format!("{name}: {e}")))))
}

/// Every column as text: the values are checked one by one, with their row.
fn text_schema(names: impl IntoIterator<Item = String>) -> Arc<Schema> {
    let fields: Vec<Field> = names
        .into_iter()
        .map(|n| Field::new(n, DataType::Utf8, true))
        .collect();
    Arc::new(Schema::new(fields))
}

fn read_csv(file: File, name: &str) -> Result<Batches> {
    let input = |e: arrow::error::ArrowError| WaError::Input(format!("{name}: {e}"));
    let mut header = String::new();
    BufReader::new(&file)
        .read_line(&mut header)
        .map_err(|e| WaError::io(name, e))?;
    let names = header
        .trim_start_matches('\u{feff}')
        .trim_end_matches(['\r', '\n'])
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_string());
    let schema = text_schema(names);
    let mut file = file;
    file.rewind().map_err(|e| WaError::io(name, e))?;
    let reader = arrow::csv::ReaderBuilder::new(schema)
        .with_header(true)
        .build(file)
        .map_err(input)?;
    Ok(arrow_batches(reader, name))
}

fn read_ndjson(file: File, name: &str) -> Result<Batches> {
    let input = |e: arrow::error::ArrowError| WaError::Input(format!("{name}: {e}"));
    let mut reader = BufReader::new(file);
    let (inferred, _) =
        arrow::json::reader::infer_json_schema_from_seekable(&mut reader, None).map_err(input)?;
    let schema = text_schema(inferred.fields().iter().map(|f| f.name().clone()));
    let reader = arrow::json::ReaderBuilder::new(schema)
        .with_coerce_primitive(true)
        .build(reader)
        .map_err(input)?;
    Ok(arrow_batches(reader, name))
}

/// A batch's columns, by name.
struct Columns {
    message_id: Arc<dyn Array>,
    message_type: Arc<dyn Array>,
    category: Arc<dyn Array>,
    template_name: Option<Arc<dyn Array>>,
    /// Microseconds, where the file has a timestamp column.
    sent_at_micros: Option<Arc<dyn Array>>,
    sent_at_text: Option<Arc<dyn Array>>,
}

impl Columns {
    fn of(batch: &RecordBatch, name: &str) -> Result<Columns> {
        let text = |column: &str, required: bool| -> Result<Option<Arc<dyn Array>>> {
            match batch.column_by_name(column) {
                Some(c) => Ok(Some(cast(c, &DataType::Utf8).map_err(|e| {
                    WaError::Input(format!("{name}: column `{column}`: {e}"))
                })?)),
                None if required => Err(WaError::Input(format!(
                    "{name}: the sends file has no column `{column}` \
                     (it needs {}; template_name and sent_at are optional)",
                    REQUIRED.join(", ")
                ))),
                None => Ok(None),
            }
        };
        let [message_id, message_type, category] =
            REQUIRED.map(|c| text(c, true).map(|c| c.expect("required")));
        let (mut sent_at_micros, mut sent_at_text) = (None, None);
        if let Some(c) = batch.column_by_name("sent_at") {
            if let DataType::Timestamp(_, _) = c.data_type() {
                let micros = DataType::Timestamp(TimeUnit::Microsecond, None);
                sent_at_micros = Some(
                    cast(c, &micros)
                        .map_err(|e| WaError::Input(format!("{name}: column `sent_at`: {e}")))?,
                );
            } else {
                sent_at_text = text("sent_at", false)?;
            }
        }
        Ok(Columns {
            message_id: message_id?,
            message_type: message_type?,
            category: category?,
            template_name: text("template_name", false)?,
            sent_at_micros,
            sent_at_text,
        })
    }

    fn send(&self, r: usize, row: usize, name: &str) -> Result<(String, Send)> {
        fn value(c: &Arc<dyn Array>, r: usize) -> Option<&str> {
            let c = c.as_string::<i32>();
            (!c.is_null(r))
                .then(|| c.value(r).trim())
                .filter(|s| !s.is_empty())
        }
        let bad = |column: &str, what: String| {
            WaError::Input(format!("{name}: column `{column}`, row {row}: {what}"))
        };
        let id = value(&self.message_id, r)
            .ok_or_else(|| bad("message_id", "no message id".into()))?
            .to_string();
        let category = value(&self.category, r);
        let template = match value(&self.message_type, r) {
            Some("template") => Some(category.and_then(TemplateCategory::from_label).ok_or_else(
                || {
                    bad(
                        "category",
                        format!(
                            "{:?} is not a template category \
                                 (marketing, utility or authentication)",
                            category.unwrap_or("")
                        ),
                    )
                },
            )?),
            Some("free_form") => None,
            other => {
                return Err(bad(
                    "message_type",
                    format!("{:?} is not template or free_form", other.unwrap_or("")),
                ))
            }
        };
        let sent_at = if let Some(c) = &self.sent_at_micros {
            let c = c.as_primitive::<TimestampMicrosecondType>();
            (!c.is_null(r)).then(|| c.value(r))
        } else if let Some(c) = &self.sent_at_text {
            match value(c, r) {
                None => None,
                Some(s) => Some(parse_time(s).ok_or_else(|| {
                    bad(
                        "sent_at",
                        format!(
                            "{s:?} is not a time (Unix seconds, or RFC 3339 \
                             such as 2026-11-03T09:30:00Z)"
                        ),
                    )
                })?),
            }
        } else {
            None
        };
        let template_name = self
            .template_name
            .as_ref()
            .and_then(|c| value(c, r))
            .map(super::text::Text::from);
        Ok((
            id,
            Send {
                template,
                template_name,
                sent_at,
            },
        ))
    }
}

/// Microseconds since the epoch of Unix seconds or an RFC 3339 time (a
/// time without a zone is UTC).
fn parse_time(s: &str) -> Option<i64> {
    if let Ok(seconds) = s.parse::<i64>() {
        return seconds.checked_mul(1_000_000);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn csv_and_ndjson_give_the_same_entries() {
        let dir = tempfile::tempdir().unwrap();
        let csv = write(
            dir.path(),
            "sends.csv",
            "message_id,message_type,category,template_name,sent_at\n\
             m1,template,utility,order_update,2026-11-03T09:30:00Z\n\
             m2,free_form,,,\n",
        );
        let json = write(
            dir.path(),
            "sends.ndjson",
            "{\"message_id\":\"m1\",\"message_type\":\"template\",\"category\":\"utility\",\
             \"template_name\":\"order_update\",\"sent_at\":1793698200}\n\
             {\"message_id\":\"m2\",\"message_type\":\"free_form\",\"category\":null}\n",
        );
        let a = read_sends(&csv).unwrap();
        assert_eq!(a, read_sends(&json).unwrap());
        assert_eq!(a["m1"].template, Some(TemplateCategory::Utility));
        assert_eq!(a["m1"].sent_at, Some(1_793_698_200_000_000));
        assert_eq!(a["m2"].template, None);
    }

    #[test]
    fn bad_files_name_the_column_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let missing = write(
            dir.path(),
            "a.csv",
            "message_id,message_type\nm1,template\n",
        );
        let e = read_sends(&missing).unwrap_err().to_string();
        assert!(e.contains("a.csv") && e.contains("`category`"), "{e}");
        let kind = write(
            dir.path(),
            "b.csv",
            "message_id,message_type,category\nm1,template,utility\nm2,tmpl,utility\n",
        );
        let e = read_sends(&kind).unwrap_err().to_string();
        assert!(
            e.contains("b.csv: column `message_type`, row 3") && e.contains("\"tmpl\""),
            "{e}"
        );
        let category = write(
            dir.path(),
            "c.csv",
            "message_id,message_type,category\nm1,template,\n",
        );
        let e = read_sends(&category).unwrap_err().to_string();
        assert!(e.contains("column `category`, row 2"), "{e}");
    }

    #[test]
    fn an_id_twice_is_one_entry_unless_its_values_differ() {
        let dir = tempfile::tempdir().unwrap();
        let same = write(
            dir.path(),
            "same.csv",
            "message_id,message_type,category\nm1,template,utility\nm1,template,utility\n",
        );
        assert_eq!(read_sends(&same).unwrap().len(), 1);
        let differ = write(
            dir.path(),
            "differ.csv",
            "message_id,message_type,category\nm1,template,utility\nm2,free_form,\n\
             m1,template,marketing\n",
        );
        let e = read_sends(&differ).unwrap_err().to_string();
        assert!(
            e.contains("differ.csv: row 4: message m1 is in the file twice"),
            "{e}"
        );
    }

    #[test]
    fn times_parse_in_every_accepted_form() {
        for s in [
            "1793698200",
            "2026-11-03T09:30:00Z",
            "2026-11-03 09:30:00",
            "2026-11-03T10:30:00+01:00",
        ] {
            assert_eq!(parse_time(s), Some(1_793_698_200_000_000), "{s}");
        }
        assert_eq!(parse_time("tomorrow"), None);
    }
}
