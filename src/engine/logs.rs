//! Registers a message log (a Parquet file, a directory tree, a glob or a
//! hive-partitioned tree) as `messages_raw`, after checking every file
//! against the schema contract (`docs/log-schema.md`), so that a
//! wrong file is named before any query runs.
//!
//! Timestamps of any unit, with or without a UTC zone, are declared as
//! microseconds UTC in the table schema; DataFusion casts each file's
//! column on read. The vocabulary columns are declared as dictionaries
//! ([`crate::engine::log_table`]). Extra columns are kept; hive partition columns
//! (`month=2024-02/`) become queryable string columns.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::TableProvider;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

use crate::engine::log_table::{self, LogTable};
use crate::error::{Result, WaError};
use crate::storage;

/// Required columns and whether each is a timestamp (else a string).
pub const REQUIRED: [(&str, bool); 10] = [
    ("message_id", false),
    ("account_id", false),
    ("customer_id", false),
    ("direction", false),
    ("message_type", false),
    ("category", false),
    ("status", false),
    ("sent_at", true),
    ("delivered_at", true),
    ("entry_point", false),
];

/// The Arrow schema wausage writes a log in (`generate`, `ingest`): the
/// log's columns, `phone_number_id` and `template_name`, then `extra`.
pub fn written_log_schema(extra: Vec<Field>) -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let mut fields = vec![
        text("message_id", false),
        text("account_id", false),
        text("customer_id", false),
        text("direction", false),
        text("message_type", false),
        text("category", true),
        text("status", false),
        Field::new("sent_at", timestamp_type(), false),
        Field::new("delivered_at", timestamp_type(), true),
        text("entry_point", true),
        text("phone_number_id", true),
        text("template_name", true),
    ];
    fields.extend(extra);
    Arc::new(Schema::new(fields))
}

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn is_string(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string(v),
        _ => false,
    }
}

fn is_utc_timestamp(t: &DataType) -> bool {
    match t {
        DataType::Timestamp(_, None) => true,
        DataType::Timestamp(_, Some(tz)) => {
            matches!(
                tz.as_ref(),
                "UTC" | "utc" | "Z" | "+00:00" | "Etc/UTC" | "GMT"
            )
        }
        _ => false,
    }
}

/// Checks one file's schema against the contract; the error names the
/// file and the column.
pub fn check_file_schema(file: &Path, schema: &Schema) -> Result<()> {
    for (name, is_ts) in REQUIRED {
        let field = schema.field_with_name(name).map_err(|_| {
            WaError::Input(format!(
                "{}: missing required column `{name}` (see the message-log schema)",
                file.display()
            ))
        })?;
        let ok = if is_ts {
            is_utc_timestamp(field.data_type()) || field.data_type() == &DataType::Null
        } else {
            is_string(field.data_type()) || field.data_type() == &DataType::Null
        };
        if !ok {
            return Err(WaError::Input(format!(
                "{}: column `{name}` has type {}, expected {}",
                file.display(),
                field.data_type(),
                if is_ts {
                    "a timestamp (any unit) in UTC or without time zone"
                } else {
                    "a string"
                }
            )));
        }
    }
    Ok(())
}

/// The required columns that may not hold nulls.
const NOT_NULL: [&str; 7] = [
    "message_id",
    "account_id",
    "customer_id",
    "direction",
    "message_type",
    "status",
    "sent_at",
];

/// Checks from the footer's statistics that no row group holds a null in a
/// column the contract says is never null: a null account or customer
/// would make a pair of its own, and a null id merges unrelated rows. (A
/// file written without statistics is checked where the rules read it.)
fn check_not_null(file: &Path, metadata: &parquet::file::metadata::ParquetMetaData) -> Result<()> {
    let columns = metadata.file_metadata().schema_descr().columns();
    for name in NOT_NULL {
        let Some(index) = columns.iter().position(|c| c.path().string() == name) else {
            continue;
        };
        let nulls: u64 = metadata
            .row_groups()
            .iter()
            .filter_map(|rg| rg.column(index).statistics()?.null_count_opt())
            .sum();
        if nulls > 0 {
            return Err(WaError::Input(format!(
                "{}: column `{name}` holds {nulls} null(s); every message needs one",
                file.display()
            )));
        }
    }
    Ok(())
}

/// Hive partition columns (`key=value` directories) between the root and a file.
fn partition_columns(root: &Path, file: &Path) -> Vec<String> {
    let Ok(rel) = file.strip_prefix(root) else {
        return vec![];
    };
    // DataFusion reads `key=value` directories only as the leading parts
    // of a file's path below the root; one deeper does not count.
    let mut cols = vec![];
    if let Some(parent) = rel.parent() {
        for part in parent.components() {
            match part.as_os_str().to_string_lossy().split_once('=') {
                Some((k, _)) => cols.push(k.to_string()),
                None => break,
            }
        }
    }
    cols
}

/// A log or table file must be a regular file (or a link to one): opening a
/// FIFO blocks until a writer comes, and a device or socket is no Parquet.
pub fn check_regular_file(file: &Path) -> Result<()> {
    let meta = std::fs::metadata(file).map_err(|e| WaError::io(file.display().to_string(), e))?;
    if meta.is_file() {
        return Ok(());
    }
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let what = if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    };
    Err(WaError::Input(format!(
        "{}: {what}, not a regular file; wausage reads only regular files",
        file.display()
    )))
}

/// The first value of a string column that is not UTF-8 in the log at
/// `path` (a file or a tree), as "FILE: column `C`, row N (...)". The
/// Parquet reader's own error names none of these; this second look runs
/// only after a read has failed so, reading the string columns as bytes.
pub fn find_invalid_utf8(path: &str) -> Option<String> {
    let mut files = vec![];
    collect_parquet_files(Path::new(path), &mut files);
    files.sort();
    files.iter().find_map(|f| invalid_utf8_in(f).ok().flatten())
}

/// [`find_invalid_utf8`] for one file: its string columns' raw values,
/// read below the Arrow layer (which refuses to read them as bytes).
fn invalid_utf8_in(file: &Path) -> parquet::errors::Result<Option<String>> {
    use parquet::basic::{ConvertedType, LogicalType, Type};
    use parquet::column::reader::ColumnReader;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(file)?)?;
    let metadata = reader.metadata();
    let columns = metadata.file_metadata().schema_descr().columns().to_vec();
    let mut rows_before = 0usize;
    for g in 0..metadata.num_row_groups() {
        let group = reader.get_row_group(g)?;
        for (c, column) in columns.iter().enumerate() {
            // Strings in lists are not the log's columns; they are left to
            // the reader's own error.
            let is_string = column.physical_type() == Type::BYTE_ARRAY
                && column.max_rep_level() == 0
                && (matches!(column.logical_type_ref(), Some(LogicalType::String))
                    || column.converted_type() == ConvertedType::UTF8);
            if !is_string {
                continue;
            }
            let ColumnReader::ByteArrayColumnReader(mut values_reader) =
                group.get_column_reader(c)?
            else {
                continue;
            };
            let max_def = column.max_def_level();
            let (mut defs, mut values) = (vec![], vec![]);
            let mut row = rows_before;
            loop {
                defs.clear();
                values.clear();
                let (records, _, _) =
                    values_reader.read_records(8192, Some(&mut defs), None, &mut values)?;
                if records == 0 {
                    break;
                }
                // A required column has no levels: every record has a value.
                let present = (0..records).filter(|&r| max_def == 0 || defs[r] == max_def);
                for (r, v) in present.zip(&values) {
                    if std::str::from_utf8(v.data()).is_err() {
                        return Ok(Some(format!(
                            "{}: column `{}`, row {}: the value is not valid UTF-8",
                            file.display(),
                            column.name(),
                            row + r + 1
                        )));
                    }
                }
                row += records;
            }
        }
        rows_before += metadata.row_group(g).num_rows() as usize;
    }
    Ok(None)
}

fn collect_parquet_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            collect_parquet_files(&entry.path(), out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "parquet") {
        out.push(path.to_path_buf());
    }
}

/// Every `.parquet` entry under `dir` is a regular file (or a link to one).
fn check_tree_files(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| WaError::io(dir.display().to_string(), e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| WaError::io(dir.display().to_string(), e))?
            .path();
        if path.is_dir() {
            check_tree_files(&path)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            check_regular_file(&path)?;
        }
    }
    Ok(())
}

/// The hive partition columns every file of the log has in its path. Files
/// that disagree (some under `month=…/`, some not, or under other keys)
/// would be skipped by the listing: an error naming one of each.
fn common_partition_columns(
    path: &str,
    root: &Path,
    files: &[(PathBuf, String)],
) -> Result<Vec<String>> {
    let first = partition_columns(root, &files[0].0);
    if let Some((other, _)) = files
        .iter()
        .find(|(f, _)| partition_columns(root, f) != first)
    {
        let describe = |cols: &[String]| {
            if cols.is_empty() {
                "no hive partition".to_string()
            } else {
                cols.iter()
                    .map(|c| format!("{c}=…"))
                    .collect::<Vec<_>>()
                    .join("/")
            }
        };
        return Err(WaError::Input(format!(
            "{path}: files are partitioned differently: {} has {}, {} has {}; \
             every file of a log needs the same `key=value` directories (or none)",
            files[0].0.display(),
            describe(&first),
            other.display(),
            describe(&partition_columns(root, other)),
        )));
    }
    Ok(first)
}

fn table_url(path: &str) -> Result<(ListingTableUrl, Option<PathBuf>)> {
    let is_glob = path.contains(['*', '?', '[']);
    let p = Path::new(path);
    if !is_glob && !p.exists() {
        return Err(WaError::Input(format!("{path}: no such file or directory")));
    }
    let abs = if is_glob {
        PathBuf::from(path)
    } else {
        // The listing's paths are normalised (no `..`, links resolved), and
        // the hive keys are read relative to this root.
        std::fs::canonicalize(p).map_err(|e| WaError::io(path, e))?
    };
    let dir = (!is_glob && abs.is_dir()).then(|| abs.clone());
    let mut s = abs.to_string_lossy().into_owned();
    if dir.is_some() && !s.ends_with('/') {
        s.push('/');
    }
    let url = ListingTableUrl::parse(&s).map_err(|e| WaError::Input(format!("{path}: {e}")))?;
    Ok((url, dir))
}

/// What was registered, for `\d` and messages.
pub struct RegisteredLog {
    pub files: Vec<PathBuf>,
    pub schema: SchemaRef,
}

/// How the log's files are read ([`crate::engine::log_table`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogReads {
    /// Each file told to read the vocabulary columns as dictionaries: a
    /// session on this machine.
    Hinted,
    /// Read as the files say and cast to the declared types: a cluster's
    /// session, whose plans carry only DataFusion's own tables.
    Cast,
}

/// Registers the Parquet log at `path` as `name` (normally `messages_raw`).
pub async fn register_log(
    ctx: &SessionContext,
    name: &str,
    path: &str,
    reads: LogReads,
) -> Result<RegisteredLog> {
    let remote = storage::is_remote(path);
    let (url, root) = if remote {
        remote_table_url(path)?
    } else {
        table_url(path)?
    };
    match &root {
        _ if remote => {}
        // The listing passes over FIFOs, sockets and devices in silence.
        Some(dir) => check_tree_files(dir)?,
        None if Path::new(path).exists() => check_regular_file(Path::new(path))?,
        None => {}
    }
    // A store that cannot be set up, a missing bucket or refused
    // credentials: the error names the URL.
    let named = |e: datafusion::error::DataFusionError| {
        if remote {
            WaError::Input(format!("{path}: {}", storage::describe_error(&e)))
        } else {
            WaError::from(e)
        }
    };
    let store = ctx
        .runtime_env()
        .object_store(url.object_store())
        .map_err(named)?;
    let state = ctx.state();
    let metas: Vec<_> = url
        .list_all_files(&state, store.as_ref(), ".parquet")
        .await
        .map_err(named)?
        .try_collect()
        .await
        .map_err(named)?;
    // Each file's name for errors (its local path, or its URL) and its
    // object-store path; the tree's paths as local ones for the hive keys.
    let mut files: Vec<(PathBuf, String)> = metas
        .iter()
        .map(|m| {
            let location = m.location.as_ref().to_string();
            (PathBuf::from(format!("/{location}")), location)
        })
        .collect();
    files.sort();
    let labels: HashMap<String, PathBuf> = files
        .iter()
        .map(|(file, location)| {
            let label = if remote {
                PathBuf::from(format!("{}{location}", url.object_store().as_str()))
            } else {
                file.clone()
            };
            (location.clone(), label)
        })
        .collect();
    if files.is_empty() {
        return Err(WaError::Input(format!("{path}: no .parquet files found")));
    }
    let view_types = state
        .config_options()
        .execution
        .parquet
        .schema_force_view_types;
    let mut fields: Vec<Field> = vec![];
    // The first file that has each column, for errors.
    let mut field_files: HashMap<String, &Path> = HashMap::new();
    let mut read_schemas = HashMap::new();
    let meta_of: HashMap<&str, &object_store::ObjectMeta> =
        metas.iter().map(|m| (m.location.as_ref(), m)).collect();
    for (local, location) in &files {
        let file = &labels[location];
        let footer = if remote {
            remote_footer(store.as_ref(), meta_of[location.as_str()], file).await?
        } else {
            local_footer(local)?
        };
        let schema = footer.schema();
        check_file_schema(file, schema)?;
        check_not_null(file, footer.metadata())?;
        read_schemas.insert(location.clone(), log_table::read_schema(schema));
        for field in schema.fields() {
            if fields.iter().any(|f| f.name() == field.name()) {
                continue;
            }
            let t = field.data_type();
            let declared = if REQUIRED.iter().any(|(n, ts)| *ts && n == field.name()) {
                timestamp_type()
            } else if log_table::reads_as_words(field.name(), t) {
                log_table::word_type()
            } else if view_types && is_string(t) {
                DataType::Utf8View
            } else if let DataType::Timestamp(unit, tz) = t {
                DataType::Timestamp(*unit, tz.clone())
            } else {
                t.clone()
            };
            fields.push(Field::new(field.name(), declared, true));
            field_files.insert(field.name().clone(), file);
        }
    }
    let partitions = match root.as_deref() {
        Some(root) => common_partition_columns(path, root, &files)?,
        None => vec![],
    };
    if let Some(clash) = fields.iter().find(|f| partitions.contains(f.name())) {
        let file = field_files[clash.name()].display();
        return Err(WaError::Input(format!(
            "{file}: the file's own column `{0}` has the name of the hive partition `{0}=…` \
             in its path; rename one of them",
            clash.name()
        )));
    }
    let schema = Arc::new(Schema::new(fields));
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(
            partitions
                .iter()
                .map(|p| (p.clone(), DataType::Utf8))
                .collect(),
        );
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config)?;
    let full_schema = datafusion::datasource::TableProvider::schema(&table);
    let table: Arc<dyn TableProvider> = match reads {
        LogReads::Hinted => Arc::new(LogTable::new(table, read_schemas)),
        LogReads::Cast => Arc::new(table),
    };
    ctx.deregister_table(name)?;
    ctx.register_table(name, table)?;
    Ok(RegisteredLog {
        files: files
            .into_iter()
            .map(|(_, location)| labels[&location].clone())
            .collect(),
        schema: full_schema,
    })
}

/// A local file's footer, read through the file system.
fn local_footer(file: &Path) -> Result<ArrowReaderMetadata> {
    check_regular_file(file)?;
    let f = std::fs::File::open(file).map_err(|e| WaError::io(file.display().to_string(), e))?;
    ArrowReaderMetadata::load(&f, ArrowReaderOptions::default()).map_err(|e| {
        WaError::Input(format!(
            "{}: not a readable Parquet file: {e}",
            file.display()
        ))
    })
}

/// An object's footer, read with ranged GETs of its tail.
async fn remote_footer(
    store: &dyn object_store::ObjectStore,
    meta: &object_store::ObjectMeta,
    file: &Path,
) -> Result<ArrowReaderMetadata> {
    use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
    let unreadable = |e: String| {
        WaError::Input(format!(
            "{}: not a readable Parquet file: {e}",
            file.display()
        ))
    };
    let metadata = DFParquetMetadata::new(store, meta)
        .fetch_metadata()
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    ArrowReaderMetadata::try_new(metadata, ArrowReaderOptions::default())
        .map_err(|e| unreadable(e.to_string()))
}

/// A log's URL in an object store: a prefix (a tree, as `--data` takes
/// a local directory), one object, or a glob (`s3://b/logs/*/2024-*.parquet`);
/// with a prefix, its path as a local root for the hive keys.
fn remote_table_url(location: &str) -> Result<(ListingTableUrl, Option<PathBuf>)> {
    let bad = |e: datafusion::error::DataFusionError| WaError::Input(format!("{location}: {e}"));
    storage::split_url(location)?;
    if let Some(glob_at) = location.find(['*', '?', '[']) {
        let base_end = location[..glob_at].rfind('/').map_or(0, |i| i + 1);
        let url = ListingTableUrl::parse(&location[..base_end])
            .and_then(|u| u.with_glob(&location[base_end..]))
            .map_err(bad)?;
        return Ok((url, None));
    }
    if location.to_ascii_lowercase().ends_with(".parquet") {
        return Ok((ListingTableUrl::parse(location).map_err(bad)?, None));
    }
    let dir = if location.ends_with('/') {
        location.to_string()
    } else {
        format!("{location}/")
    };
    let url = ListingTableUrl::parse(&dir).map_err(bad)?;
    let root = PathBuf::from(format!("/{}", url.prefix()));
    Ok((url, Some(root)))
}

/// Registers an auxiliary table (`--table NAME=PATH`): Parquet, CSV, or
/// the platform's `pricing_analytics` response (`.json`).
pub async fn register_table(ctx: &SessionContext, spec: &str) -> Result<()> {
    let (name, path) = spec
        .split_once('=')
        .ok_or_else(|| WaError::Usage(format!("--table takes NAME=PATH, got {spec:?}")))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(WaError::Usage(format!("--table: bad table name {name:?}")));
    }
    let remote = storage::is_remote(path);
    if remote {
        storage::split_url(path)?;
    } else if !Path::new(path).exists() {
        return Err(WaError::Input(format!("{path}: no such file")));
    } else if !Path::new(path).is_dir() {
        check_regular_file(Path::new(path))?;
    }
    let lower = path.to_ascii_lowercase();
    let is_dir = if remote {
        path.ends_with('/')
    } else {
        Path::new(path).is_dir()
    };
    if lower.ends_with(".csv") {
        ctx.register_csv(name, path, datafusion::prelude::CsvReadOptions::new())
            .await
            .map_err(|e| WaError::Input(format!("--table {name}={path}: {e}")))?;
    } else if lower.ends_with(".parquet") || is_dir {
        ctx.register_parquet(
            name,
            path,
            datafusion::prelude::ParquetReadOptions::default(),
        )
        .await
        .map_err(|e| WaError::Input(format!("--table {name}={path}: {e}")))?;
    } else if lower.ends_with(".json") && remote {
        return Err(WaError::Usage(format!(
            "--table {name}={path}: a pricing_analytics response is read from a local file; \
             copy it here first"
        )));
    } else if lower.ends_with(".json") {
        crate::engine::pricing_analytics::register(ctx, name, path)?;
    } else {
        return Err(WaError::Usage(format!(
            "--table {name}={path}: expected a .csv or .parquet file, or a \
             pricing_analytics response (.json)"
        )));
    }
    if name == "rates" {
        check_rate_card(ctx, path).await?;
    }
    Ok(())
}

/// The optional column of a rate card that dates its rows.
pub const EFFECTIVE_FROM: &str = "effective_from";

/// A rate card has `country, pricing_category, price, currency` and
/// optionally `effective_from` (a date, `YYYY-MM-DD`: the row prices
/// messages from that UTC day on; without the column, every row applies to
/// every date). Its price is numeric and one row prices each country,
/// category, currency and date; errors name the file, the column and the
/// row (1 = the first data row). Registers the view `rate_card` that
/// saved queries read: the same rows, typed, `effective_from` NULL when the
/// card has no dates.
pub async fn check_rate_card(ctx: &SessionContext, path: &str) -> Result<()> {
    use arrow::array::{Array, AsArray};
    let batches = ctx.sql("SELECT * FROM rates").await?.collect().await?;
    let schema = ctx.table_provider("rates").await?.schema();
    for column in ["country", "pricing_category", "price", "currency"] {
        if schema.field_with_name(column).is_err() {
            return Err(WaError::Input(format!(
                "{path}: the rate card has no column `{column}` \
                 (expected country, pricing_category, price, currency and optionally {EFFECTIVE_FROM})"
            )));
        }
    }
    let dated = schema.field_with_name(EFFECTIVE_FROM).is_ok();
    let mut seen = std::collections::HashMap::new();
    let mut row = 0usize;
    for b in &batches {
        let text = |name: &str| -> Result<arrow::array::ArrayRef> {
            Ok(arrow::compute::cast(
                b.column_by_name(name).expect("checked"),
                &DataType::Utf8,
            )?)
        };
        let columns = [
            text("country")?,
            text("pricing_category")?,
            text("price")?,
            text("currency")?,
        ];
        let [country, category, price, currency] = columns.each_ref().map(|c| c.as_string::<i32>());
        let effective_from = if dated {
            Some(text(EFFECTIVE_FROM)?)
        } else {
            None
        };
        let effective_from = effective_from.as_ref().map(|c| c.as_string::<i32>());
        let value = |c: &arrow::array::StringArray, i: usize| {
            if c.is_null(i) {
                String::new()
            } else {
                c.value(i).to_string()
            }
        };
        for i in 0..b.num_rows() {
            row += 1;
            let amount = value(price, i);
            if amount.trim().parse::<f64>().is_err() {
                return Err(WaError::Input(format!(
                    "{path}: column `price`, row {row}: {amount:?} is not a number"
                )));
            }
            let date = match effective_from {
                Some(dates) if !dates.is_null(i) => {
                    let d = dates.value(i).trim();
                    // A Parquet card's timestamps cast as `YYYY-MM-DDT...`;
                    // only a whole date is a date.
                    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                        WaError::Input(format!(
                            "{path}: column `{EFFECTIVE_FROM}`, row {row}: {d:?} is not a date (YYYY-MM-DD)"
                        ))
                    })?;
                    d.to_string()
                }
                _ => String::new(),
            };
            let key = (
                value(country, i),
                value(category, i),
                value(currency, i),
                date,
            );
            if let Some(first) = seen.insert(key.clone(), row) {
                let from = if key.3.is_empty() {
                    String::new()
                } else {
                    format!(" from {}", key.3)
                };
                return Err(WaError::Input(format!(
                    "{path}: rows {first} and {row} both price country {}, pricing_category {} in {}{from}",
                    key.0, key.1, key.2
                )));
            }
        }
    }
    let effective_from = if dated {
        format!("CAST(CAST({EFFECTIVE_FROM} AS VARCHAR) AS DATE)")
    } else {
        "CAST(NULL AS DATE)".to_string()
    };
    ctx.sql(&format!(
        "CREATE OR REPLACE VIEW rate_card AS
         SELECT CAST(country AS VARCHAR) AS country,
                CAST(pricing_category AS VARCHAR) AS pricing_category,
                CAST(CAST(price AS VARCHAR) AS DECIMAL(24, 10)) AS price,
                CAST(currency AS VARCHAR) AS currency,
                {effective_from} AS effective_from
         FROM rates"
    ))
    .await?
    .collect()
    .await?;
    Ok(())
}
