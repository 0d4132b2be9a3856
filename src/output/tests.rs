//! Output of every format, captured in memory, for a small result in two
//! batches covering strings, integers, floats, UTC timestamps, booleans and
//! nulls; plus the atomic file behaviour.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchReader};

use super::*;
use crate::error::WaError;

/// A `Write + Send + 'static` handle on a buffer the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }

    fn text(&self) -> String {
        String::from_utf8(self.bytes()).unwrap()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that went away, like `wausage ... | head -1`.
struct ClosedPipe;

impl Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }

    fn flush(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
}

const T0: i64 = 1_718_000_000_000_000; // 2024-06-10T06:13:20Z

fn schema() -> SchemaRef {
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("sent", DataType::Int64, true),
        Field::new("cost", DataType::Float64, true),
        Field::new("at", utc, true),
        Field::new("ok", DataType::Boolean, true),
    ]))
}

fn batch(
    name: Vec<Option<&str>>,
    sent: Vec<Option<i64>>,
    cost: Vec<Option<f64>>,
    at: Vec<Option<i64>>,
    ok: Vec<Option<bool>>,
) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(name)),
        Arc::new(Int64Array::from(sent)),
        Arc::new(Float64Array::from(cost)),
        Arc::new(TimestampMicrosecondArray::from(at).with_timezone("UTC")),
        Arc::new(BooleanArray::from(ok)),
    ];
    RecordBatch::try_new(schema(), columns).unwrap()
}

/// Three rows over two batches; the second row is all nulls.
fn batches() -> Vec<RecordBatch> {
    vec![
        batch(
            vec![Some("alice"), None],
            vec![Some(12), None],
            vec![Some(0.5), None],
            vec![Some(T0), None],
            vec![Some(true), None],
        ),
        batch(
            vec![Some("<b>Tom & \"Jerry\"</b>'s")],
            vec![Some(-3)],
            vec![Some(1.25)],
            vec![Some(T0 + 1_500_000)],
            vec![Some(false)],
        ),
    ]
}

fn run_with(format: Format, opts: &SinkOptions, input: &[RecordBatch]) -> (String, u64) {
    let out = Captured::default();
    let mut sink = writer_sink(format, schema(), out.clone(), opts).unwrap();
    for b in input {
        sink.write_batch(b).unwrap();
    }
    let rows = sink.finish().unwrap();
    (out.text(), rows)
}

fn run(format: Format, input: &[RecordBatch]) -> String {
    let (text, rows) = run_with(format, &SinkOptions::default(), input);
    let expected: usize = input.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, expected as u64, "{format} row count");
    text
}

#[test]
fn format_names_round_trip() {
    for f in Format::ALL {
        assert_eq!(f.name().parse::<Format>().unwrap(), f);
        assert_eq!(f.to_string(), f.name());
    }
    assert_eq!("CSV".parse::<Format>().unwrap(), Format::Csv);
    let err = "xml".parse::<Format>().unwrap_err().to_string();
    assert!(err.contains("'xml'"), "{err}");
    for f in Format::ALL {
        assert!(err.contains(f.name()), "{err}");
    }
    let wa: WaError = "xml".parse::<Format>().unwrap_err().into();
    assert_eq!(wa.exit_code(), 2);
    let streaming: Vec<_> = Format::ALL.into_iter().filter(Format::streams).collect();
    assert_eq!(streaming, [Format::Csv, Format::Ndjson, Format::Parquet]);
    assert_eq!(
        Format::from_path(Path::new("r/x.PARQUET")),
        Some(Format::Parquet)
    );
    assert_eq!(
        Format::from_path(Path::new("x.jsonl")),
        Some(Format::Ndjson)
    );
    assert_eq!(Format::from_path(Path::new("x")), None);
    assert_eq!(SinkOptions::default().max_rows, 40);
}

#[test]
fn table_shows_all_rows_and_count() {
    let text = run(Format::Table, &batches());
    let expected = "\
+-------------------------+------+------+----------------------+-------+
| name                    | sent | cost | at                   | ok    |
+-------------------------+------+------+----------------------+-------+
| alice                   | 12   | 0.5  | 2024-06-10T06:13:20Z | true  |
| NULL                    | NULL | NULL | NULL                 | NULL  |
| <b>Tom & \"Jerry\"</b>'s | -3   | 1.25 | 2024-06-10T06:13:21.500Z | false |
";
    // Column widths depend on the longest cell; compare the cells only.
    let cells = |s: &str| -> Vec<Vec<String>> {
        s.lines()
            .filter(|l| l.starts_with('|'))
            .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
            .collect()
    };
    assert_eq!(cells(&text), cells(expected), "{text}");
    assert!(text.ends_with("+\n3 rows\n"), "{text}");
}

#[test]
fn table_truncates_to_max_rows() {
    let opts = SinkOptions { max_rows: 2 };
    let (text, rows) = run_with(Format::Table, &opts, &batches());
    assert_eq!(rows, 3);
    assert!(text.contains("| alice"), "{text}");
    assert!(!text.contains("Jerry"), "{text}");
    assert!(text.ends_with("\n2 of 3 rows shown\n"), "{text}");

    let opts = SinkOptions { max_rows: 1 };
    let (text, _) = run_with(Format::Table, &opts, &batches());
    assert_eq!(text.lines().filter(|l| l.starts_with('|')).count(), 2);
    assert!(text.ends_with("\n1 of 3 rows shown\n"), "{text}");
}

#[test]
fn table_singular_and_empty() {
    let one = batches()[1].clone();
    assert!(run(Format::Table, &[one]).ends_with("+\n1 row\n"));

    let text = run(Format::Table, &[]);
    let expected = "\
+------+------+------+----+----+
| name | sent | cost | at | ok |
+------+------+------+----+----+
+------+------+------+----+----+
0 rows
";
    assert_eq!(text, expected);
    // An empty batch is the same as none.
    assert_eq!(run(Format::Table, &[batches()[0].slice(0, 0)]), expected);

    let none = Arc::new(Schema::empty());
    let out = Captured::default();
    let sink = writer_sink(Format::Table, none, out.clone(), &SinkOptions::default()).unwrap();
    assert_eq!(sink.finish().unwrap(), 0);
    assert_eq!(out.text(), "0 rows\n");
}

#[test]
fn csv_streams_header_and_rows() {
    let text = run(Format::Csv, &batches());
    assert_eq!(
        text,
        "name,sent,cost,at,ok\n\
         alice,12,0.5,2024-06-10T06:13:20Z,true\n\
         ,,,,\n\
         \"<b>Tom & \"\"Jerry\"\"</b>'s\",-3,1.25,2024-06-10T06:13:21.500Z,false\n"
    );
    assert_eq!(run(Format::Csv, &[]), "name,sent,cost,at,ok\n");
}

#[test]
fn json_is_one_array_with_explicit_nulls() {
    let text = run(Format::Json, &batches());
    assert!(text.ends_with("]\n"), "{text}");
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let expected = serde_json::json!([
        {"name": "alice", "sent": 12, "cost": 0.5, "at": "2024-06-10T06:13:20Z", "ok": true},
        {"name": null, "sent": null, "cost": null, "at": null, "ok": null},
        {"name": "<b>Tom & \"Jerry\"</b>'s", "sent": -3, "cost": 1.25,
         "at": "2024-06-10T06:13:21.500Z", "ok": false},
    ]);
    assert_eq!(value, expected);
    assert_eq!(run(Format::Json, &[]), "[]\n");
}

#[test]
fn ndjson_is_one_object_per_line() {
    let text = run(Format::Ndjson, &batches());
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["name"], "alice");
    assert_eq!(lines[0]["at"], "2024-06-10T06:13:20Z");
    let nulls = lines[1].as_object().unwrap();
    assert_eq!(nulls.len(), 5);
    assert!(nulls.values().all(serde_json::Value::is_null));
    assert_eq!(lines[2]["sent"], -3);
    assert!(text.ends_with("}\n"));
    assert_eq!(run(Format::Ndjson, &[]), "");
}

fn read_parquet(path: &Path) -> (SchemaRef, Vec<RecordBatch>) {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let schema = reader.schema();
    (schema, reader.map(Result::unwrap).collect())
}

#[test]
fn parquet_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.parquet");
    let bytes = {
        let out = Captured::default();
        let mut sink = writer_sink(
            Format::Parquet,
            schema(),
            out.clone(),
            &SinkOptions::default(),
        )
        .unwrap();
        for b in batches() {
            sink.write_batch(&b).unwrap();
        }
        assert_eq!(sink.finish().unwrap(), 3);
        out.bytes()
    };
    assert_eq!(&bytes[..4], b"PAR1");
    std::fs::write(&path, &bytes).unwrap();
    let (read_schema, read) = read_parquet(&path);
    assert_eq!(read_schema, schema());
    let all = arrow::compute::concat_batches(&schema(), &read).unwrap();
    let expected = arrow::compute::concat_batches(&schema(), &batches()).unwrap();
    assert_eq!(all, expected);
}

#[test]
fn parquet_without_rows_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.parquet");
    let sink = file_sink(Format::Parquet, schema(), &path, &SinkOptions::default()).unwrap();
    assert_eq!(sink.finish().unwrap(), 0);
    let (read_schema, read) = read_parquet(&path);
    assert_eq!(read_schema, schema());
    assert_eq!(read.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
}

#[test]
fn html_is_a_complete_escaped_page() {
    let text = run(Format::Html, &batches());
    assert!(text.starts_with("<!DOCTYPE html>\n"), "{text}");
    assert!(text.ends_with("</html>\n"), "{text}");
    assert!(text.contains("<style>") && text.contains("overflow-x: auto"));
    assert!(!text.contains("http") && !text.contains("<link") && !text.contains("<script"));
    assert!(
        text.contains("<th title=\"Utf8\">name</th><th class=\"num\" title=\"Int64\">sent</th>")
    );
    assert!(text.contains(
        "<tr><td>alice</td><td class=\"num\">12</td><td class=\"num\">0.5</td>\
         <td>2024-06-10T06:13:20Z</td><td>true</td></tr>"
    ));
    let null_row = "<tr>".to_string() + &"<td class=\"null\"></td>".repeat(5) + "</tr>";
    assert!(text.contains(&null_row), "{text}");
    assert!(text.contains("<td>&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;&#39;s</td>"));
    assert!(!text.contains("<b>Tom"));
    assert!(text.contains("<p class=\"count\">3 rows</p>"));
    assert_eq!(text.matches("<tr>").count(), 4);

    let empty = run(Format::Html, &[]);
    assert!(empty.contains("<tbody>\n</tbody>") && empty.contains("0 rows"));
}

#[test]
fn html_escapes_every_special_character() {
    assert_eq!(
        html::escape(r#"a&b<c>d"e'f"#),
        "a&amp;b&lt;c&gt;d&quot;e&#39;f"
    );
    assert_eq!(html::escape("plain ünïcode"), "plain ünïcode");
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn file_appears_only_after_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.csv");
    let mut sink = file_sink(Format::Csv, schema(), &path, &SinkOptions::default()).unwrap();
    for b in batches() {
        sink.write_batch(&b).unwrap();
    }
    assert!(!path.exists());
    let temp = dir_entries(dir.path());
    assert_eq!(temp.len(), 1);
    assert!(temp[0].starts_with(".report.csv.") && temp[0].ends_with(".tmp"));
    assert_eq!(sink.finish().unwrap(), 3);
    assert_eq!(dir_entries(dir.path()), ["report.csv"]);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        run(Format::Csv, &batches())
    );
}

#[test]
fn dropped_sink_leaves_nothing_and_old_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let mut sink = file_sink(Format::Json, schema(), &path, &SinkOptions::default()).unwrap();
    sink.write_batch(&batches()[0]).unwrap();
    drop(sink);
    assert!(dir_entries(dir.path()).is_empty());

    std::fs::write(&path, "old").unwrap();
    let mut sink = file_sink(Format::Json, schema(), &path, &SinkOptions::default()).unwrap();
    sink.write_batch(&batches()[0]).unwrap();
    drop(sink);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
    assert_eq!(dir_entries(dir.path()), ["report.json"]);

    // Finishing replaces it.
    let mut sink = file_sink(Format::Json, schema(), &path, &SinkOptions::default()).unwrap();
    sink.write_batch(&batches()[1]).unwrap();
    sink.finish().unwrap();
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(value[0]["sent"], -3);
    assert_eq!(dir_entries(dir.path()), ["report.json"]);
}

#[cfg(unix)]
#[test]
fn file_permissions_are_not_the_temp_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    let new = dir.path().join("new.html");
    file_sink(Format::Html, schema(), &new, &SinkOptions::default())
        .unwrap()
        .finish()
        .unwrap();
    assert_ne!(mode(&new), 0o600, "umask applies, not tempfile's 0600");

    let old = dir.path().join("old.csv");
    std::fs::write(&old, "x").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o640)).unwrap();
    file_sink(Format::Csv, schema(), &old, &SinkOptions::default())
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(mode(&old), 0o640);
}

#[test]
fn file_sink_refuses_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = file_sink(Format::Csv, schema(), dir.path(), &SinkOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, WaError::Io { .. }), "{err}");
    assert!(dir_entries(dir.path()).is_empty());
}

#[test]
fn closed_pipe_is_reported_as_broken_pipe() {
    for format in Format::ALL {
        let opts = SinkOptions::default();
        let result = writer_sink(format, schema(), ClosedPipe, &opts).and_then(|mut sink| {
            for b in batches() {
                sink.write_batch(&b)?;
            }
            sink.finish()
        });
        let err = result.unwrap_err();
        assert!(err.is_broken_pipe(), "{format}: {err:?}");
        assert!(err.to_string().starts_with("stdout: "), "{format}: {err}");
    }
}

#[test]
fn rows_leave_as_each_batch_arrives() {
    for format in [Format::Csv, Format::Json, Format::Ndjson, Format::Html] {
        let out = Captured::default();
        let mut sink = writer_sink(format, schema(), out.clone(), &SinkOptions::default()).unwrap();
        sink.write_batch(&batches()[0]).unwrap();
        assert!(out.text().contains("alice"), "{format}");
        sink.write_batch(&batches()[1]).unwrap();
        assert!(out.text().contains("Jerry"), "{format}");
        sink.finish().unwrap();
    }
}
