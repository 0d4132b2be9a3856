//! The message log's table: DataFusion's listing table over the Parquet
//! files, with the four vocabulary columns (`direction`, `message_type`,
//! `category`, `status`) read as dictionaries.
//!
//! Those columns hold a handful of words, and every Parquet writer stores
//! them as dictionary pages. Read as strings, each row's word is copied
//! out of the dictionary into a 16-byte view, and the windowing compares
//! every view against its vocabulary: four columns, 50 million rows. Read
//! as `Dictionary(Int32, Utf8)`, a row is its 4-byte key, and the
//! classifier looks each batch's few words up once
//! ([`wausage_udfs`]'s `columns`). The table declares the type, and each
//! file's scan is told to read those columns so (its Arrow schema, built
//! from the file's own at registration): without that hint the reader
//! would expand the strings and a cast would pack them again.
//!
//! A cluster's plans carry only DataFusion's own tables, so there the
//! plain listing table (with the same declared types) is used, and the
//! scheduler's [`FooterReadSchemas`] rule gives each file of its scans
//! the same read schema, from the file's footer.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{ScanArgs, ScanResult, Session};
#[cfg(feature = "cluster")]
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Constraints, Result, Statistics};
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
#[cfg(feature = "cluster")]
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// The columns read as dictionaries.
pub const WORD_COLUMNS: [&str; 4] = ["direction", "message_type", "category", "status"];

/// How a vocabulary column is declared and read.
pub fn word_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Whether `name` of type `t` (a string type) is read as a dictionary.
pub fn reads_as_words(name: &str, t: &DataType) -> bool {
    WORD_COLUMNS.contains(&name) && t != &DataType::Null
}

/// The Arrow schema to read a file of schema `file` with: its own, the
/// vocabulary columns as dictionaries.
pub fn read_schema(file: &Schema) -> SchemaRef {
    let fields: Vec<Field> = file
        .fields()
        .iter()
        .map(|f| {
            if reads_as_words(f.name(), f.data_type()) {
                f.as_ref().clone().with_data_type(word_type())
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, file.metadata().clone()))
}

/// The listing table, and the schema each of its files is read with, by
/// object-store path.
#[derive(Debug)]
pub struct LogTable {
    inner: ListingTable,
    read_schemas: HashMap<String, SchemaRef>,
}

impl LogTable {
    pub fn new(inner: ListingTable, read_schemas: HashMap<String, SchemaRef>) -> Self {
        Self {
            inner,
            read_schemas,
        }
    }

    /// `plan` with every file of its scans given its read schema.
    fn with_read_schemas(&self, plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        hint_read_schemas(plan, |_, path| self.read_schemas.get(path).cloned())
    }
}

/// `plan` with each file of its Parquet scans given the read schema
/// `read_schema_of(scan, path)` names, where it names one and the file has
/// none yet.
fn hint_read_schemas(
    plan: Arc<dyn ExecutionPlan>,
    read_schema_of: impl Fn(&FileScanConfig, &str) -> Option<SchemaRef>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
            return Ok(Transformed::no(node));
        };
        let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() else {
            return Ok(Transformed::no(node));
        };
        let mut hinted_any = false;
        let groups = config
            .file_groups
            .iter()
            .map(|group| {
                let files = group
                    .iter()
                    .map(|file| {
                        let path = file.object_meta.location.as_ref();
                        match read_schema_of(config, path) {
                            Some(schema) if file.arrow_schema.is_none() => {
                                hinted_any = true;
                                file.clone().with_arrow_schema(schema)
                            }
                            _ => file.clone(),
                        }
                    })
                    .collect();
                let mut hinted = FileGroup::new(files);
                if let Some(statistics) = group.file_statistics(None) {
                    hinted = hinted.with_statistics(Arc::new(statistics.clone()));
                }
                hinted
            })
            .collect();
        if !hinted_any {
            return Ok(Transformed::no(node));
        }
        let config = FileScanConfigBuilder::from(config.clone())
            .with_file_groups(groups)
            .build();
        let exec = exec.clone().with_data_source(Arc::new(config));
        Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
    })
    .map(|t| t.data)
}

/// The physical rule that gives a cluster's scans their read schemas. A
/// cluster's plans carry only DataFusion's own listing table, which
/// declares the vocabulary columns as dictionaries but reads each file as
/// its footer says (plain strings) and casts every batch. The scheduler plans every
/// scan, so this rule, run there, reads each file's footer and gives the
/// file its read schema, as [`LogTable`] does in one process; the hint
/// travels with the plan to the executors.
#[cfg(feature = "cluster")]
#[derive(Debug, Default)]
pub struct FooterReadSchemas;

#[cfg(feature = "cluster")]
impl FooterReadSchemas {
    /// Whether files of this scan get read schemas: local Parquet files of
    /// a table that declares its vocabulary columns as dictionaries.
    fn hints(config: &FileScanConfig) -> bool {
        let declares_words = config
            .file_schema()
            .fields()
            .iter()
            .any(|f| reads_as_words(f.name(), f.data_type()) && *f.data_type() == word_type());
        let local = config.object_store_url.as_str() == "file:///";
        declares_words && local && config.file_source().file_type() == "parquet"
    }

    /// The read schema of the local file at `path` (an object-store path
    /// under the file system's root); `None` when its footer cannot be
    /// read (the scan then reads it, and reports any error, as before).
    fn footer_read_schema(path: &str) -> Option<SchemaRef> {
        let file = std::fs::File::open(format!("/{path}")).ok()?;
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).ok()?;
        Some(read_schema(builder.schema()))
    }
}

#[cfg(feature = "cluster")]
impl PhysicalOptimizerRule for FooterReadSchemas {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // A large file split into byte ranges appears once per range: its
        // footer is read once.
        let footers = std::cell::RefCell::new(HashMap::new());
        hint_read_schemas(plan, |config, path| {
            if !Self::hints(config) {
                return None;
            }
            footers
                .borrow_mut()
                .entry(path.to_string())
                .or_insert_with(|| Self::footer_read_schema(path))
                .clone()
        })
    }

    fn name(&self) -> &str {
        "FooterReadSchemas"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[async_trait]
impl TableProvider for LogTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.inner.get_table_definition()
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        self.inner.get_logical_plan()
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.inner.get_column_default(column)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, projection, filters, limit).await?;
        self.with_read_schemas(plan)
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: ScanArgs<'a>,
    ) -> Result<ScanResult> {
        let plan = self.inner.scan_with_args(state, args).await?.into_inner();
        Ok(ScanResult::new(self.with_read_schemas(plan)?))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::logs::{register_log, LogReads};
    use arrow::array::{ArrayRef, LargeStringArray, RecordBatch, StringArray};
    use arrow::datatypes::TimeUnit;
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;
    use parquet::arrow::ArrowWriter;

    fn write(path: &std::path::Path, columns: Vec<(&str, ArrayRef)>) {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None)
                .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    fn text(v: &[&str]) -> ArrayRef {
        Arc::new(StringArray::from(v.to_vec()))
    }

    /// Two files: the contract's columns in order, as `Utf8`; and the same
    /// columns shuffled, an extra one, vocabulary as `LargeUtf8`.
    fn two_files(dir: &std::path::Path) {
        let ts = |v: Vec<Option<i64>>| -> ArrayRef {
            Arc::new(arrow::array::TimestampMillisecondArray::from(v))
        };
        write(
            &dir.join("a.parquet"),
            vec![
                ("message_id", text(&["m1", "m2"])),
                ("account_id", text(&["acct", "acct"])),
                ("customer_id", text(&["+441", "+441"])),
                ("direction", text(&["outbound", "inbound"])),
                ("message_type", text(&["template", "free_form"])),
                ("category", text(&["utility", ""])),
                ("status", text(&["delivered", "received"])),
                ("sent_at", ts(vec![Some(0), Some(1000)])),
                ("delivered_at", ts(vec![Some(10), None])),
                ("entry_point", text(&["", ""])),
            ],
        );
        let large = |v: &[&str]| -> ArrayRef { Arc::new(LargeStringArray::from(v.to_vec())) };
        write(
            &dir.join("b.parquet"),
            vec![
                ("status", large(&["read"])),
                ("note", text(&["an extra column"])),
                ("entry_point", text(&[""])),
                ("delivered_at", ts(vec![Some(5010)])),
                ("sent_at", ts(vec![Some(5000)])),
                ("category", large(&["marketing"])),
                ("message_type", large(&["template"])),
                ("direction", large(&["outbound"])),
                ("customer_id", text(&["+442"])),
                ("account_id", text(&["acct"])),
                ("message_id", text(&["m3"])),
            ],
        );
    }

    const QUERY: &str = "SELECT message_id, direction, message_type, category, status, \
                         arrow_typeof(status) AS t FROM m ORDER BY message_id";

    async fn scan(reads: LogReads, dir: &std::path::Path) -> (String, Arc<dyn ExecutionPlan>) {
        let ctx = SessionContext::new();
        register_log(&ctx, "m", dir.to_str().unwrap(), reads)
            .await
            .unwrap();
        let df = ctx.sql(QUERY).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let batches = df.collect().await.unwrap();
        (pretty_format_batches(&batches).unwrap().to_string(), plan)
    }

    /// The read schemas of every file the plan scans.
    fn read_schemas_of(plan: &Arc<dyn ExecutionPlan>) -> Vec<Option<SchemaRef>> {
        let mut found = vec![];
        plan.apply(|node| {
            if let Some(exec) = node.downcast_ref::<DataSourceExec>() {
                let config = exec.data_source().downcast_ref::<FileScanConfig>().unwrap();
                for group in &config.file_groups {
                    found.extend(group.iter().map(|f| f.arrow_schema.clone()));
                }
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
        found
    }

    #[tokio::test]
    async fn every_file_reads_its_vocabulary_columns_as_dictionaries() {
        let dir = tempfile::tempdir().unwrap();
        two_files(dir.path());
        let (hinted, plan) = scan(LogReads::Hinted, dir.path()).await;
        let schemas = read_schemas_of(&plan);
        assert_eq!(schemas.len(), 2, "{schemas:?}");
        for schema in schemas {
            let schema = schema.expect("each file has its read schema");
            for name in WORD_COLUMNS {
                assert_eq!(
                    schema.field_with_name(name).unwrap().data_type(),
                    &word_type()
                );
            }
            // The rest as the file has it, in the file's order.
            assert_eq!(
                schema.field_with_name("sent_at").unwrap().data_type(),
                &DataType::Timestamp(TimeUnit::Millisecond, None)
            );
            assert!(
                matches!(schema.index_of("note").ok(), None | Some(1)),
                "{schema:?}"
            );
        }
        // The same answer as reading the strings and casting them.
        let (cast, plan) = scan(LogReads::Cast, dir.path()).await;
        assert!(read_schemas_of(&plan).iter().all(Option::is_none));
        assert_eq!(hinted, cast);
        for want in [
            "| m1         | outbound  | template     | utility   | delivered | Dictionary(Int32, Utf8) |",
            "| m2         | inbound   | free_form    |           | received  | Dictionary(Int32, Utf8) |",
            "| m3         | outbound  | template     | marketing | read      | Dictionary(Int32, Utf8) |",
        ] {
            assert!(hinted.contains(want), "{hinted}");
        }
    }

    /// A cluster's scan (the plain listing table, cast on read) gets the
    /// same read schemas from the scheduler's rule, and the same answer.
    #[cfg(feature = "cluster")]
    #[tokio::test]
    async fn the_cluster_rule_gives_a_plain_scan_the_footers_read_schemas() {
        let dir = tempfile::tempdir().unwrap();
        two_files(dir.path());
        let (hinted, hinted_plan) = scan(LogReads::Hinted, dir.path()).await;
        let (_, cast_plan) = scan(LogReads::Cast, dir.path()).await;
        let rule = FooterReadSchemas;
        let planned = rule.optimize(cast_plan, &ConfigOptions::default()).unwrap();
        let mut got = read_schemas_of(&planned);
        let mut want = read_schemas_of(&hinted_plan);
        let key = |s: &Option<SchemaRef>| s.as_ref().map(|s| format!("{s:?}"));
        got.sort_by_key(key);
        want.sort_by_key(key);
        assert!(got.iter().all(Option::is_some), "{got:?}");
        assert_eq!(got, want);
        let ctx = SessionContext::new();
        let batches = datafusion::physical_plan::collect(planned, ctx.task_ctx())
            .await
            .unwrap();
        assert_eq!(pretty_format_batches(&batches).unwrap().to_string(), hinted);
    }
}
