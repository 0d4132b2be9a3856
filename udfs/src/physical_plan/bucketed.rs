//! The by-key form's repartition and aggregate as one operator, for a run
//! on one machine.
//!
//! The by-key plan ([`crate::optimizer::by_key_plan`]) otherwise hash-repartitions the
//! compact rows by their bucket and aggregates each partition. The
//! repartition gathers every column of a batch into one small batch per
//! output partition (`take`), its coalescer copies those into full batches
//! again, and the aggregate copies each row once more into its row buffer
//! after looking its bucket up in a hash table: three copies of every
//! message id. This
//! operator appends each input batch's rows straight into the row buffer of
//! the output partition that owns their bucket (`bucket % partitions`; the
//! group is `bucket / partitions`, so no hash table either). It codes and
//! buckets the keys itself, in one pass over each batch with one key table
//! for all partitions ([`crate::keys::key_coder`]), where the repartition's plan
//! computes `wa_customer_key` and `wa_key_bucket` columns and each
//! aggregate parses the keys again. When every
//! input has ended, each output partition evaluates its own buffer, with
//! the output of the aggregate it stands for: the bucket, then each
//! aggregate's list. When nothing above reads the keys, only fields of one
//! aggregate's structs, it emits those structs instead, a row each
//! ([`BucketedWindowingExec::flattened`], chosen by [`crate::optimizer::used_fields`]),
//! and the unnests that would have copied them go.
//!
//! On a cluster the repartition is the shuffle, and the operator runs after
//! it per input partition ([`Routing::PerInput`]), shipped to the executors
//! by the cluster's codec. Its rows count against the session's memory pool;
//! past its share, an output partition writes its buffered rows to its
//! spill file by range of buckets ([`super::spill_ranges`]) and reads on.
//! After the inputs end, a partition that spilled evaluates its ranges one
//! by one: the same answer, as every pair's rows lie in one range.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{exec_datafusion_err, DataFusionError, Result};
use datafusion::execution::disk_manager::DiskManager;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet, RecordOutput, Time,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, StatisticsArgs,
    StatisticsContext,
};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use tokio::sync::watch;

use super::spill_ranges::{PartitionSpill, Ranges, WrittenSpill};
use crate::accumulator::buffer::{RowsAccumulator, RowsAccumulatorFactory, SpareRows};
use crate::keys::hash::KEY_BUCKETS;
use crate::keys::key_coder::{KeyCoder, SharedKeyCodes};
use crate::log::columns;

/// The grouping keys, which the operator codes and buckets the rows by
/// itself, with one key table for all its partitions
/// ([`crate::keys::key_coder`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodedKeys {
    /// How many of each aggregate's arguments lead as keys (the same for
    /// every aggregate).
    pub keys: usize,
    /// The last key is the customer's number as logged, and the key is
    /// `wa_customer_key` of it.
    pub plus_stripped: bool,
}

/// Buckets its input's rows into `partitions` windowing aggregates.
#[derive(Debug)]
pub struct BucketedWindowingExec {
    input: Arc<dyn ExecutionPlan>,
    keys: CodedKeys,
    /// How rows reach the output partitions.
    routing: Routing,
    aggr_expr: Vec<Arc<AggregateFunctionExpr>>,
    /// What builds each aggregate's accumulator, handed over by the plan
    /// that chose the aggregates ([`crate::functions::windowing`]).
    factories: Vec<RowsAccumulatorFactory>,
    partitions: usize,
    schema: SchemaRef,
    cache: Arc<PlanProperties>,
    /// Per aggregate, the fields of its structs that the plan reads, where
    /// known ([`crate::optimizer::used_fields`]); the others need not be built.
    fields_read: Vec<Option<Vec<String>>>,
    /// Whether the output is the one aggregate's structs, one row each
    /// ([`Self::flattened`]), rather than a row per bucket.
    flat: bool,
    /// Whether other windowing operators run in the same plan, so that
    /// each holds less of the pool ([`Shards::cap_of`]).
    shares_pool: bool,
    /// Started by the first `execute`: one run shared by every output
    /// partition ([`Routing::ByBucket`]), or one per output partition
    /// ([`Routing::PerInput`]).
    running: Mutex<Vec<Option<Arc<Running>>>>,
    /// `append_time` per input partition; `elapsed_compute` (evaluating)
    /// and `output_rows` per output partition (`EXPLAIN ANALYZE`).
    metrics: ExecutionPlanMetricsSet,
}

/// How the operator's input rows reach its output partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// Every output partition reads from every input partition and routes
    /// each row to the output partition that owns its bucket: one process
    /// reading a log's files.
    ByBucket,
    /// The input is already hash-partitioned by the pairs (a cluster's
    /// shuffle by `wa_key_bucket`): output partition `p` reads input
    /// partition `p` alone, with its own key table and buffers, so that a
    /// cluster's task runs one partition of the plan on its own.
    PerInput,
}

/// What a [`BucketedWindowingExec`] is made of besides its input and its
/// aggregates, for a codec that ships it to a cluster's executors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowingParts {
    pub keys: CodedKeys,
    pub routing: Routing,
    /// Output partitions; with [`Routing::PerInput`], the input's.
    pub partitions: usize,
    pub fields_read: Vec<Option<Vec<String>>>,
    pub flat: bool,
}

impl BucketedWindowingExec {
    /// `aggregates` are by-key windowing aggregates over `input`'s columns,
    /// each led by the same `keys`, with what builds its accumulator;
    /// `None` when their keys differ.
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        keys: CodedKeys,
        aggregates: Vec<(Arc<AggregateFunctionExpr>, RowsAccumulatorFactory)>,
        partitions: usize,
    ) -> Result<Option<Self>> {
        Self::try_new_routed(input, keys, aggregates, Routing::ByBucket, partitions)
    }

    /// As [`Self::try_new`], over an input already hash-partitioned by the
    /// pairs, one output partition per input partition
    /// ([`Routing::PerInput`]).
    pub fn try_new_per_input(
        input: Arc<dyn ExecutionPlan>,
        keys: CodedKeys,
        aggregates: Vec<(Arc<AggregateFunctionExpr>, RowsAccumulatorFactory)>,
    ) -> Result<Option<Self>> {
        let partitions = input.properties().output_partitioning().partition_count();
        Self::try_new_routed(input, keys, aggregates, Routing::PerInput, partitions)
    }

    /// The operator of `parts` over `input`, each aggregate's accumulator
    /// built as its windowing function builds it: what a codec decodes.
    pub fn from_parts(
        input: Arc<dyn ExecutionPlan>,
        parts: WindowingParts,
        aggr_expr: Vec<Arc<AggregateFunctionExpr>>,
    ) -> Result<Self> {
        let mut aggregates = Vec::with_capacity(aggr_expr.len());
        for a in aggr_expr {
            let windowing = crate::functions::windowing::windowing_aggregate(a.fun().name())
                .ok_or_else(|| {
                    exec_datafusion_err!(
                        "BucketedWindowingExec: {} is not a windowing aggregate",
                        a.fun().name()
                    )
                })?;
            aggregates.push((a, windowing.rows_accumulator));
        }
        let mut exec = Self::try_new_routed(
            input,
            parts.keys,
            aggregates,
            parts.routing,
            parts.partitions,
        )?
        .ok_or_else(|| {
            exec_datafusion_err!("BucketedWindowingExec: its aggregates' keys differ")
        })?;
        exec.fields_read = parts.fields_read;
        if parts.flat {
            exec = exec.into_flat().ok_or_else(|| {
                exec_datafusion_err!("BucketedWindowingExec: no flat output for its aggregates")
            })?;
        }
        Ok(exec)
    }

    /// What the operator is made of, with its aggregates: what a codec
    /// encodes.
    pub fn parts(&self) -> (WindowingParts, &[Arc<AggregateFunctionExpr>]) {
        let parts = WindowingParts {
            keys: self.keys,
            routing: self.routing,
            partitions: self.partitions,
            fields_read: self.fields_read.clone(),
            flat: self.flat,
        };
        (parts, &self.aggr_expr)
    }

    fn try_new_routed(
        input: Arc<dyn ExecutionPlan>,
        keys: CodedKeys,
        aggregates: Vec<(Arc<AggregateFunctionExpr>, RowsAccumulatorFactory)>,
        routing: Routing,
        partitions: usize,
    ) -> Result<Option<Self>> {
        let input_schema = input.schema();
        let (aggr_expr, factories): (Vec<_>, Vec<_>) = aggregates.into_iter().unzip();
        if keys.keys == 0 || !share_keys(&aggr_expr, keys.keys, &input_schema)? {
            return Ok(None);
        }
        let bucket = Field::new("__wa_bucket", DataType::UInt32, false);
        let mut fields: Vec<FieldRef> = vec![Arc::new(bucket)];
        fields.extend(aggr_expr.iter().map(|a| a.field()));
        let schema = Arc::new(Schema::new(fields));
        let cache = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Ok(Some(Self {
            input,
            keys,
            routing,
            fields_read: vec![None; aggr_expr.len()],
            flat: false,
            shares_pool: false,
            aggr_expr,
            factories,
            partitions,
            schema,
            cache,
            running: Mutex::new(vec![]),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }

    /// This operator, building of aggregate `i`'s structs only the fields
    /// named, for each `(i, names)` of `fields`.
    pub fn with_fields_read(&self, fields: Vec<(usize, Vec<String>)>) -> Result<Self> {
        let mut exec = self.fresh(Arc::clone(&self.input))?;
        for (i, names) in fields {
            if let Some(slot) = exec.fields_read.get_mut(i) {
                *slot = Some(names);
            }
        }
        Ok(exec)
    }

    /// This operator, emitting its one aggregate's structs flat: a row per
    /// struct of every pair's list, the struct's fields as columns, which is
    /// what unnesting the by-key list and then each pair's list gives when
    /// nothing reads the keys ([`crate::optimizer::used_fields`]). `None` unless the
    /// operator has one aggregate whose value is a list of structs.
    pub fn flattened(&self) -> Result<Option<Self>> {
        let exec = self.fresh(Arc::clone(&self.input))?;
        Ok(exec.into_flat())
    }

    fn into_flat(mut self) -> Option<Self> {
        let [aggregate] = self.aggr_expr.as_slice() else {
            return None;
        };
        let fields = flat_fields(aggregate.field().data_type())?;
        self.flat = true;
        self.schema = Arc::new(Schema::new(fields));
        self.cache = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&self.schema)),
            Partitioning::UnknownPartitioning(self.partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Some(self)
    }

    /// This operator in a plan with other windowing operators: it holds a
    /// quarter of the pool, not most of it ([`Shards::cap_of`]).
    pub fn sharing_the_pool(&self) -> Result<Self> {
        let mut exec = self.fresh(Arc::clone(&self.input))?;
        exec.shares_pool = true;
        Ok(exec)
    }

    pub fn shares_pool(&self) -> bool {
        self.shares_pool
    }

    /// The same operator over `input`, not yet run.
    fn fresh(&self, input: Arc<dyn ExecutionPlan>) -> Result<Self> {
        let aggregates = self.aggr_expr.iter().cloned().zip(self.factories.clone());
        let exec = match self.routing {
            Routing::ByBucket => {
                Self::try_new(input, self.keys, aggregates.collect(), self.partitions)?
            }
            Routing::PerInput => Self::try_new_per_input(input, self.keys, aggregates.collect())?,
        };
        let mut exec =
            exec.ok_or_else(|| exec_datafusion_err!("BucketedWindowingExec lost its aggregates"))?;
        exec.fields_read = self.fields_read.clone();
        exec.shares_pool = self.shares_pool;
        if self.flat {
            exec = exec.into_flat().ok_or_else(|| {
                exec_datafusion_err!("BucketedWindowingExec lost its flat output")
            })?;
        }
        Ok(exec)
    }

    /// The run that output partition `partition` reads, started on the
    /// first call, and the shard of that run that is the partition's.
    fn running(
        &self,
        context: &Arc<TaskContext>,
        partition: usize,
    ) -> Result<(Arc<Running>, usize)> {
        let (slot, inputs, shard) = match self.routing {
            Routing::ByBucket => {
                let inputs = self
                    .input
                    .properties()
                    .output_partitioning()
                    .partition_count();
                (0, (0..inputs).collect(), partition)
            }
            Routing::PerInput => (partition, vec![partition], 0),
        };
        let mut running = lock(&self.running);
        if running.len() <= slot {
            running.resize(slot + 1, None);
        }
        if let Some(r) = running[slot].as_ref() {
            return Ok((Arc::clone(r), shard));
        }
        let started = Arc::new(Running::start(self, context, inputs, slot)?);
        running[slot] = Some(Arc::clone(&started));
        Ok((started, shard))
    }
}

/// The fields of the structs of a by-key value `[{key0, …, value: [{…}]}]`.
fn flat_fields(by_key: &DataType) -> Option<Fields> {
    let DataType::List(pair) = by_key else {
        return None;
    };
    let DataType::Struct(pair) = pair.data_type() else {
        return None;
    };
    let DataType::List(item) = pair.last()?.data_type() else {
        return None;
    };
    match item.data_type() {
        DataType::Struct(fields) => Some(fields.clone()),
        _ => None,
    }
}

/// Whether every aggregate of `aggr_expr` (at least one) is in the by-key
/// form with the same `keys` leading arguments.
fn share_keys(
    aggr_expr: &[Arc<AggregateFunctionExpr>],
    keys: usize,
    schema: &Schema,
) -> Result<bool> {
    let Some(first) = aggr_expr.first() else {
        return Ok(false);
    };
    let first = first.expressions();
    for a in aggr_expr {
        let exprs = a.expressions();
        let types = exprs
            .iter()
            .map(|e| e.data_type(schema))
            .collect::<Result<Vec<_>>>()?;
        let types: Vec<&DataType> = types.iter().collect();
        if crate::keys::by_key::key_count(&types) != keys || exprs[..keys] != first[..keys] {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The accumulator of aggregate `a`, built by `factory` from its arguments.
fn rows_accumulator(
    a: &AggregateFunctionExpr,
    factory: RowsAccumulatorFactory,
    schema: &Schema,
) -> Result<Box<dyn RowsAccumulator>> {
    let exprs = a.expressions();
    let expr_fields = exprs
        .iter()
        .map(|e| e.return_field(schema))
        .collect::<Result<Vec<_>>>()?;
    let args = AccumulatorArgs {
        return_field: a.field(),
        schema,
        expr_fields: &expr_fields,
        ignore_nulls: a.ignore_nulls(),
        order_bys: a.order_bys(),
        is_reversed: a.is_reversed(),
        name: a.name(),
        is_distinct: a.is_distinct(),
        exprs: &exprs,
    };
    factory(&args)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock fails the query anyway.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How the inputs stand.
#[derive(Debug, Clone)]
enum Inputs {
    Reading,
    Ended,
    Failed(Arc<DataFusionError>),
}

/// One run: the input tasks and the shards they fill.
struct Running {
    shards: Arc<Shards>,
    ended: watch::Receiver<Inputs>,
    /// Aborted when the run is dropped (a cancelled query).
    _inputs: Vec<SpawnedTask<()>>,
    /// How a spilled range's accumulators are built.
    spec: AccumulatorSpec,
}

/// How a shard's (or a range's) accumulators are built.
struct AccumulatorSpec {
    aggr_expr: Vec<Arc<AggregateFunctionExpr>>,
    factories: Vec<RowsAccumulatorFactory>,
    fields_read: Vec<Option<Vec<String>>>,
    flat: bool,
    input_schema: SchemaRef,
}

impl AccumulatorSpec {
    fn build(&self, keys: &Arc<SharedKeyCodes>) -> Result<Vec<Box<dyn RowsAccumulator>>> {
        self.aggr_expr
            .iter()
            .zip(&self.factories)
            .zip(&self.fields_read)
            .map(|((a, factory), fields)| {
                let mut accumulator = rows_accumulator(a, *factory, &self.input_schema)?;
                if let Some(fields) = fields {
                    accumulator.build_only(fields);
                }
                if self.flat {
                    accumulator.values_only();
                }
                accumulator.share_keys(Arc::clone(keys));
                Ok(accumulator)
            })
            .collect()
    }
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running").finish_non_exhaustive()
    }
}

/// The output partitions' buffers, filled by the input tasks.
struct Shards {
    shards: Vec<Mutex<Shard>>,
    /// Each aggregate's arguments.
    args: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    /// How many arguments lead as keys.
    key_count: usize,
    /// The key table the input tasks code into.
    keys: Arc<SharedKeyCodes>,
    groups_per_shard: usize,
    inputs_left: AtomicUsize,
    ended: watch::Sender<Inputs>,
    /// Row buffers that evaluated shards leave for the next ones to sort
    /// into, so that each sort writes to memory already mapped.
    spare: Mutex<Vec<SpareRows>>,
    /// Rows appended so far, for sizing the spill's ranges.
    rows_read: AtomicUsize,
    /// Bytes all shards hold, and the most they hold before spilling
    /// ([`Self::cap_of`]).
    held: AtomicUsize,
    cap: usize,
    /// The pool's size when bounded.
    pool: Option<usize>,
    /// Where spill files go, and the input whose row count sizes the
    /// ranges.
    disk: Arc<DiskManager>,
    input: Arc<dyn ExecutionPlan>,
    /// How every shard spills, chosen at the first spill from one estimate
    /// of the input's bytes ([`Self::spill_layout`]).
    spill_layout: OnceLock<SpillLayout>,
    spilled_rows: Count,
}

struct Shard {
    accumulators: Vec<Box<dyn RowsAccumulator>>,
    reservation: MemoryReservation,
    /// The rows this shard wrote to disk, once it has spilled; then all its
    /// rows, written, once its inputs have ended.
    spill: Option<PartitionSpill>,
    written: Option<WrittenSpill>,
    /// What the shard's accumulators held when last counted in
    /// [`Shards::held`].
    counted: usize,
}

impl Running {
    /// A run reading input partitions `inputs` into its shards: one per
    /// output partition ([`Routing::ByBucket`]), or the one of output
    /// partition `first` ([`Routing::PerInput`]).
    fn start(
        exec: &BucketedWindowingExec,
        context: &Arc<TaskContext>,
        inputs: Vec<usize>,
        first: usize,
    ) -> Result<Self> {
        let input_schema = exec.input.schema();
        let types = exec.aggr_expr[0].expressions()[..exec.keys.keys]
            .iter()
            .map(|e| e.data_type(&input_schema))
            .collect::<Result<Vec<_>>>()?;
        let keys = Arc::new(SharedKeyCodes::new(types, exec.keys.plus_stripped));
        let spec = AccumulatorSpec {
            aggr_expr: exec.aggr_expr.clone(),
            factories: exec.factories.clone(),
            fields_read: exec.fields_read.clone(),
            flat: exec.flat,
            input_schema: Arc::clone(&input_schema),
        };
        let shard_count = match exec.routing {
            Routing::ByBucket => exec.partitions,
            Routing::PerInput => 1,
        };
        let mut shards = Vec::with_capacity(shard_count);
        for p in first..first + shard_count {
            let reservation = MemoryConsumer::new(format!("BucketedWindowingExec[{p}]"))
                .register(context.memory_pool());
            shards.push(Mutex::new(Shard {
                accumulators: spec.build(&keys)?,
                reservation,
                spill: None,
                written: None,
                counted: 0,
            }));
        }
        let (ended, ended_rx) = watch::channel(if inputs.is_empty() {
            Inputs::Ended
        } else {
            Inputs::Reading
        });
        let pool = match context.memory_pool().memory_limit() {
            MemoryLimit::Finite(n) => Some(n),
            _ => None,
        };
        let shards = Arc::new(Shards {
            shards,
            args: exec.aggr_expr.iter().map(|a| a.expressions()).collect(),
            key_count: exec.keys.keys,
            keys,
            groups_per_shard: (KEY_BUCKETS as usize).div_ceil(shard_count),
            inputs_left: AtomicUsize::new(inputs.len()),
            ended,
            spare: Mutex::new(vec![]),
            rows_read: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            cap: pool.map_or(usize::MAX, |n| {
                Shards::cap_of(n, exec.routing, exec.shares_pool)
            }),
            pool,
            disk: Arc::clone(&context.runtime_env().disk_manager),
            input: Arc::clone(&exec.input),
            spill_layout: OnceLock::new(),
            spilled_rows: MetricBuilder::new(&exec.metrics).counter("spilled_rows", 0),
        });
        let mut tasks = Vec::with_capacity(inputs.len());
        for i in inputs {
            let stream = exec.input.execute(i, Arc::clone(context))?;
            let shards = Arc::clone(&shards);
            let append_time = MetricBuilder::new(&exec.metrics).subset_time("append_time", i);
            tasks.push(SpawnedTask::spawn(async move {
                // A panic must still end the input, or the outputs would
                // wait for it forever.
                let coder = KeyCoder::new(Arc::clone(&shards.keys));
                let read = AssertUnwindSafe(shards.read(stream, coder, append_time))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| {
                        Err(exec_datafusion_err!("a windowing input task panicked"))
                    });
                shards.input_ended(read);
            }));
        }
        Ok(Self {
            shards,
            ended: ended_rx,
            _inputs: tasks,
            spec,
        })
    }

    /// Output partition `p`: waits for every input, then evaluates its shard
    /// (or, when the shard spilled, its ranges one by one).
    async fn output(
        self: Arc<Self>,
        p: usize,
        schema: SchemaRef,
        batch_size: usize,
        metrics: BaselineMetrics,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        let mut ended = self.ended.clone();
        let inputs = ended
            .wait_for(|s| !matches!(s, Inputs::Reading))
            .await
            .map_err(|_| exec_datafusion_err!("the windowing's inputs stopped"))?
            .clone();
        if let Inputs::Failed(e) = inputs {
            return Err(DataFusionError::Shared(e));
        }
        let batch_size = batch_size.max(1);
        if self.shards.spill_layout.get().is_some() {
            // Every spilled shard's rows still held join the ones on disk
            // before any range is evaluated, so that the buffers they kept
            // leave the pool to the ranges. Each output partition starts
            // with its own shard and helps with the others.
            let shards = self.shards.shards.len();
            for s in (0..shards).map(|k| (p + k) % shards) {
                self.shards
                    .finish_spill(&mut lock(&self.shards.shards[s]))?;
            }
        }
        let mut shard = lock(&self.shards.shards[p]);
        if let Some(spill) = shard.written.take() {
            drop(shard);
            // One set of accumulators evaluates range after range, refilling
            // the buffers of the last: a range's rows would otherwise fill
            // fresh pages, which cost the kernel a fault and a zeroed page
            // per 4 KiB, about as much as reading the rows back.
            let mut accumulators = self.range_accumulators()?;
            let mut buffer = vec![];
            let running = Arc::clone(&self);
            let batches = futures::stream::iter(0..spill.ranges().count)
                .map(move |r| {
                    let _timer = metrics.elapsed_compute().timer();
                    let batch = running.evaluate_range(
                        &spill,
                        p,
                        r,
                        &schema,
                        &mut accumulators,
                        &mut buffer,
                    )?;
                    Ok::<_, DataFusionError>(slices(batch, batch_size, &metrics))
                })
                .map_ok(|slices| futures::stream::iter(slices.into_iter().map(Ok)))
                .try_flatten();
            return Ok(Box::pin(batches));
        }
        let _timer = metrics.elapsed_compute().timer();
        let accumulators = std::mem::take(&mut shard.accumulators);
        let partitions = self.shards.shards.len();
        let groups = self.shards.groups_per_shard;
        let bucket =
            UInt32Array::from_iter_values((0..groups).map(|g| (g * partitions + p) as u32));
        let mut columns: Vec<ArrayRef> = vec![Arc::new(bucket)];
        for mut a in accumulators {
            columns.push(self.shards.evaluate(&mut *a, groups)?);
        }
        shard.reservation.free();
        let batch = output_batch(schema, self.spec.flat, columns)?;
        let batches = slices(batch, batch_size, &metrics);
        Ok(Box::pin(futures::stream::iter(batches.into_iter().map(Ok))))
    }

    /// Accumulators that keep their buffers from one range to the next.
    fn range_accumulators(&self) -> Result<Vec<Box<dyn RowsAccumulator>>> {
        let mut accumulators = self.spec.build(&self.shards.keys)?;
        for a in &mut accumulators {
            a.keep_buffers();
        }
        Ok(accumulators)
    }

    /// Evaluates range `r` of output partition `p` from its spill file
    /// with `accumulators` (empty, with the buffers of the range before),
    /// reading through `buffer`. The buffers are counted in the shard's
    /// reservation while a range is evaluated, like the sort's spare rows
    /// ([`Shards::evaluate`]): when the pool cannot take them back for the
    /// next range, fresh accumulators replace them.
    fn evaluate_range(
        &self,
        spill: &WrittenSpill,
        p: usize,
        r: usize,
        schema: &SchemaRef,
        accumulators: &mut Vec<Box<dyn RowsAccumulator>>,
        buffer: &mut Vec<u8>,
    ) -> Result<RecordBatch> {
        let (start, end) = spill.ranges().bounds(r);
        let groups = end - start;
        let mut shard = lock(&self.shards.shards[p]);
        let reservation = &mut shard.reservation;
        let kept = accumulators.iter().map(|a| a.buffered_size()).sum();
        if reservation.try_resize(kept).is_err() {
            *accumulators = self.range_accumulators()?;
        }
        let mut held = 0;
        for (i, a) in accumulators.iter_mut().enumerate() {
            spill.read(i, r, buffer, |bytes| {
                a.unspill(bytes, start as u32, groups)?;
                reservation.try_resize(held + a.buffered_size())?;
                Ok(())
            })?;
            held += a.buffered_size();
        }
        spill.prefetch(r + 1);
        let partitions = self.shards.shards.len();
        let bucket =
            UInt32Array::from_iter_values((start..end).map(|g| (g * partitions + p) as u32));
        let mut columns: Vec<ArrayRef> = vec![Arc::new(bucket)];
        for a in accumulators.iter_mut() {
            columns.push(self.shards.evaluate(&mut **a, groups)?);
        }
        if r + 1 == spill.ranges().count {
            accumulators.clear();
            *buffer = vec![];
        }
        shard.reservation.free();
        output_batch(Arc::clone(schema), self.spec.flat, columns)
    }
}

/// The operator's output of one evaluation: the bucket and each aggregate's
/// list, or the one aggregate's structs when flat.
fn output_batch(schema: SchemaRef, flat: bool, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    if flat {
        let [_, values] = columns.as_slice() else {
            return Err(exec_datafusion_err!("a flat windowing has one aggregate"));
        };
        Ok(RecordBatch::try_new(schema, flat_columns(values)?)?)
    } else {
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

/// `batch` in slices of `batch_size` rows, counted as output.
fn slices(batch: RecordBatch, batch_size: usize, metrics: &BaselineMetrics) -> Vec<RecordBatch> {
    let rows = batch.num_rows();
    (0..rows)
        .step_by(batch_size)
        .map(|at| {
            batch
                .slice(at, batch_size.min(rows - at))
                .record_output(metrics)
        })
        .collect()
}

/// The columns of the structs of every list of `values` (a list per pair),
/// in order.
fn flat_columns(values: &ArrayRef) -> Result<Vec<ArrayRef>> {
    let lists = values
        .as_list_opt::<i32>()
        .ok_or_else(|| exec_datafusion_err!("a flat windowing's values must be lists"))?;
    if lists.null_count() > 0 {
        // Unnesting would make a row of nulls of it: not the same output.
        return Err(exec_datafusion_err!(
            "a flat windowing's values must not be null lists"
        ));
    }
    let offsets = lists.value_offsets();
    let (start, end) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
    let structs = lists.values().slice(start, end - start);
    let structs = structs
        .as_struct_opt()
        .ok_or_else(|| exec_datafusion_err!("a flat windowing's lists must hold structs"))?;
    if structs.null_count() > 0 {
        return Err(exec_datafusion_err!(
            "a flat windowing's structs must not be null"
        ));
    }
    Ok(structs.columns().to_vec())
}

impl Shards {
    /// The most a run holds before it spills, in a pool of `pool` bytes.
    /// The one run of [`Routing::ByBucket`], alone in its plan, takes three
    /// quarters: the rest is for the evaluation's group sort, which writes
    /// a shard's rows into a second buffer, and for the operators above. (A
    /// quarter made the default pool, 80% of the machine, spill logs that
    /// fit in memory twice over.) Anywhere else it takes a quarter: beside
    /// other windowings of its plan (`shares_pool`), one of which may hold
    /// its rows while waiting for its output to be read as another
    /// evaluates, and on a cluster's executor ([`Routing::PerInput`]),
    /// which runs one run per task side by side in its pool.
    fn cap_of(pool: usize, routing: Routing, shares_pool: bool) -> usize {
        match routing {
            Routing::ByBucket if !shares_pool => pool / 4 * 3,
            _ => pool / 4,
        }
    }

    async fn read(
        &self,
        mut stream: SendableRecordBatchStream,
        mut coder: KeyCoder,
        append_time: Time,
    ) -> Result<()> {
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let _timer = append_time.timer();
            self.rows_read.fetch_add(batch.num_rows(), Ordering::AcqRel);
            self.append(&batch, &mut coder)?;
        }
        Ok(())
    }

    /// Evaluates one accumulator of `groups` groups, sorting into a spare
    /// row buffer.
    fn evaluate(&self, a: &mut dyn RowsAccumulator, groups: usize) -> Result<ArrayRef> {
        let spare = lock(&self.spare).pop().unwrap_or_default();
        a.give_spare(spare);
        let values = a.evaluate_all(groups)?;
        lock(&self.spare).push(a.take_spare());
        Ok(values)
    }

    /// Each aggregate's arguments over `batch`, and its keys coded and
    /// bucketed by `coder`.
    fn arguments(&self, batch: &RecordBatch, coder: &mut KeyCoder) -> Result<Vec<Vec<ArrayRef>>> {
        let n = batch.num_rows();
        let args = self
            .args
            .iter()
            .map(|exprs| {
                exprs
                    .iter()
                    .map(|e| e.evaluate(batch)?.into_array(n))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let keys = args[0][..self.key_count]
            .iter()
            .map(|k| {
                columns::text_as_views(k).ok_or_else(|| {
                    exec_datafusion_err!("a windowing key must be a string, got {}", k.data_type())
                })
            })
            .collect::<Result<Vec<_>>>()?;
        coder.code_batch(&keys);
        for &b in &coder.buckets {
            if b >= KEY_BUCKETS {
                return Err(exec_datafusion_err!("bucket {b} is out of range"));
            }
        }
        Ok(args)
    }

    fn input_ended(&self, read: Result<()>) {
        match read {
            Err(e) => {
                let e = Arc::new(e);
                self.ended.send_if_modified(|s| match s {
                    Inputs::Failed(_) => false,
                    _ => {
                        *s = Inputs::Failed(e);
                        true
                    }
                });
            }
            Ok(()) => {
                if self.inputs_left.fetch_sub(1, Ordering::AcqRel) == 1 {
                    self.ended.send_if_modified(|s| match s {
                        Inputs::Reading => {
                            *s = Inputs::Ended;
                            true
                        }
                        _ => false,
                    });
                }
            }
        }
    }

    /// Appends a batch's rows to the shards of their buckets: each row's
    /// key code and bucket (`coder`), a counting sort of row indices by
    /// shard, then each shard's rows under its lock. A shard holding its
    /// share of more than the operator may hold, or whose reservation
    /// cannot grow, writes its rows to disk.
    fn append(&self, batch: &RecordBatch, coder: &mut KeyCoder) -> Result<()> {
        let args = self.arguments(batch, coder)?;
        let codes = &coder.codes;
        let shards = self.shards.len();
        let (starts, rows, groups) =
            by_destination(&coder.buckets, shards, shards, |b| b as usize % shards);
        for s in 0..shards {
            let range = starts[s]..starts[s + 1];
            if range.is_empty() {
                continue;
            }
            let mut shard = lock(&self.shards[s]);
            for (a, values) in shard.accumulators.iter_mut().zip(&args) {
                let (rows, groups) = (&rows[range.clone()], &groups[range.clone()]);
                a.update_coded(
                    &values[self.key_count..],
                    rows,
                    groups,
                    codes,
                    self.groups_per_shard,
                )?;
            }
            let held = self.account(&mut shard);
            let all = self.held.load(Ordering::Acquire);
            let refused = shard.reservation.try_resize(held).is_err();
            // A spilled shard keeps its buffers and refills them, and a
            // buffer's capacity is up to twice its rows: past half the cap,
            // a shard whose rows fill its share of that half spills, which
            // keeps each run large and the capacity within the cap.
            let filled: usize = shard.accumulators.iter().map(|a| a.filled_size()).sum();
            let half = self.cap / 2;
            if refused || (all > half && filled.saturating_mul(shards) >= half) {
                self.spill_shard(&mut shard, !refused)?;
            }
        }
        Ok(())
    }

    /// Counts what `shard`'s accumulators now hold in `held`; the bytes.
    fn account(&self, shard: &mut Shard) -> usize {
        let held: usize = shard.accumulators.iter().map(|a| a.buffered_size()).sum();
        let before = std::mem::replace(&mut shard.counted, held);
        if held >= before {
            self.held.fetch_add(held - before, Ordering::AcqRel);
        } else {
            self.held.fetch_sub(before - held, Ordering::AcqRel);
        }
        held
    }

    /// Writes `shard`'s rows to its spill file, by range, and drops them,
    /// keeping their buffers when `keep_buffers`.
    fn spill_shard(&self, shard: &mut Shard, keep_buffers: bool) -> Result<()> {
        let SpillLayout { ranges, direct_io } = *self.spill_layout.get_or_init(|| {
            let bytes = self.estimated_bytes();
            SpillLayout {
                ranges: Ranges::new(
                    self.groups_per_shard,
                    self.ranges_needed(bytes).div_ceil(self.shards.len()),
                ),
                direct_io: outgrows_page_cache(bytes, crate::proc_text::memory_available()),
            }
        });
        let Shard {
            accumulators,
            spill,
            ..
        } = &mut *shard;
        let spill = match spill {
            Some(spill) => spill,
            None => spill.insert(PartitionSpill::create(
                &self.disk,
                ranges,
                accumulators.len(),
                direct_io,
            )?),
        };
        let range_of = |g: u32| ranges.of(g as usize);
        let mut rows = 0;
        for (i, a) in accumulators.iter_mut().enumerate() {
            let mut write = |r, bytes: &[u8]| spill.append(i, r, bytes);
            rows = a.spill(ranges.count, &range_of, &mut write, keep_buffers)?;
        }
        self.spilled_rows.add(rows);
        let held = self.account(shard);
        shard.reservation.resize(held);
        Ok(())
    }

    /// Once the inputs have ended: when `shard` has spilled, writes the
    /// rows it still holds, frees its buffers and closes its file.
    fn finish_spill(&self, shard: &mut Shard) -> Result<()> {
        if shard.spill.is_none() {
            return Ok(());
        }
        self.spill_shard(shard, false)?;
        let spill = shard.spill.take().expect("checked above");
        shard.written = Some(spill.finish()?);
        shard.reservation.free();
        Ok(())
    }

    /// Ranges in all: the input's `bytes` over a share of the pool for
    /// each output partition evaluating a range at once (all of them may,
    /// however few the cores).
    fn ranges_needed(&self, bytes: usize) -> usize {
        let Some(pool) = self.pool else {
            return self.shards.len() * 8;
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let at_once = cores.max(self.shards.len());
        // An evaluation holds its rows and their sort, the operators above
        // want their share, and buckets are not all alike: an eighth of a
        // partition's share for the rows.
        let per_range = (pool / (8 * at_once)).max(1);
        bytes.div_ceil(per_range).max(1)
    }

    /// The bytes the whole input's rows would take in memory: the bytes
    /// per row held so far times the input's rows.
    fn estimated_bytes(&self) -> usize {
        let held = self.held.load(Ordering::Acquire);
        let read = self.rows_read.load(Ordering::Acquire).max(1);
        let total_rows = StatisticsContext::new()
            .compute(self.input.as_ref(), &StatisticsArgs::new())
            .ok()
            .and_then(|s| s.num_rows.get_value().copied())
            .filter(|&n| n >= read);
        match total_rows {
            Some(rows) => (held as f64 / read as f64 * rows as f64) as usize,
            // Past the pool with an unknown rest: room for 8 times as much.
            None => held.saturating_mul(8),
        }
    }
}

/// How every shard of a run spills.
#[derive(Debug, Clone, Copy)]
struct SpillLayout {
    /// How every shard's groups split into ranges.
    ranges: Ranges,
    /// Whether the files are written and read with direct I/O
    /// ([`outgrows_page_cache`]).
    direct_io: bool,
}

/// Whether rows of `bytes` outgrow half of `available`, the memory the page
/// cache can use (never when unknown): then the spill files are written and
/// read with direct I/O. A spill that stays in the page cache is read back
/// from memory, faster than direct reads from disk (20M messages under
/// 256m: 6.5 s against 9.5 s); past it, every byte costs a copy into pages
/// the kernel must find and write back at the disk's pace (200M under 2g:
/// 40 s of system time against 7 s).
fn outgrows_page_cache(bytes: usize, available: Option<usize>) -> bool {
    available.is_some_and(|available| bytes > available / 2)
}

/// A counting sort of a batch's rows by destination (of `destinations`):
/// each destination's row indices and their groups (`bucket / shards`) lie
/// at `starts[d]..starts[d + 1]`.
fn by_destination(
    buckets: &[u32],
    shards: usize,
    destinations: usize,
    destination: impl Fn(u32) -> usize,
) -> (Vec<usize>, Vec<u32>, Vec<u32>) {
    let mut starts = vec![0usize; destinations + 1];
    for &b in buckets {
        starts[destination(b) + 1] += 1;
    }
    for d in 0..destinations {
        starts[d + 1] += starts[d];
    }
    let mut rows = vec![0u32; buckets.len()];
    let mut groups = vec![0u32; buckets.len()];
    let mut next = starts.clone();
    for (i, &b) in buckets.iter().enumerate() {
        let d = destination(b);
        rows[next[d]] = i as u32;
        groups[next[d]] = b / shards as u32;
        next[d] += 1;
    }
    (starts, rows, groups)
}

impl DisplayAs for BucketedWindowingExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self.aggr_expr.iter().map(|a| a.name()).collect();
        write!(f, "BucketedWindowingExec: ")?;
        let mut keys: Vec<String> = self.aggr_expr[0].expressions()[..self.keys.keys]
            .iter()
            .map(|e| e.to_string())
            .collect();
        if let (true, Some(last)) = (self.keys.plus_stripped, keys.last_mut()) {
            *last = format!("wa_customer_key({last})");
        }
        write!(f, "keys=[{}]", keys.join(", "))?;
        write!(
            f,
            ", partitions={}, aggr=[{}]",
            self.partitions,
            names.join(", ")
        )?;
        for (i, fields) in self.fields_read.iter().enumerate() {
            if let Some(fields) = fields {
                write!(f, ", fields_read[{i}]=[{}]", fields.join(", "))?;
            }
        }
        if self.flat {
            write!(f, ", flat")?;
        }
        if self.routing == Routing::PerInput {
            write!(f, ", per_input")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for BucketedWindowingExec {
    fn name(&self) -> &str {
        "BucketedWindowingExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.cache
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for a in &self.aggr_expr {
            for e in a.expressions() {
                if f(&e)? == TreeNodeRecursion::Stop {
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children
            .pop()
            .filter(|_| children.is_empty())
            .ok_or_else(|| exec_datafusion_err!("BucketedWindowingExec has one input"))?;
        Ok(Arc::new(self.fresh(input)?))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    /// A new run: the children again, without this one's shards.
    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        let input = Arc::clone(&self.input);
        self.replace_children(
            vec![input],
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition >= self.partitions {
            return Err(exec_datafusion_err!(
                "BucketedWindowingExec has {} partitions, not {partition}",
                self.partitions
            ));
        }
        let (running, shard) = self.running(&context, partition)?;
        let batch_size = context.session_config().batch_size();
        let schema = Arc::clone(&self.schema);
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let output =
            futures::stream::once(running.output(shard, Arc::clone(&schema), batch_size, metrics))
                .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, output)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_optimizer::PhysicalOptimizerRule;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use crate::{single_phase_windowing_rule, single_phase_windowing_rule_for_cluster};

    /// 3,000 rows of two accounts and 37 customers; row 1234 is sent in
    /// the year 2200 when `late` is set.
    fn log(late: bool) -> String {
        let sent = if late {
            "CASE WHEN i = 1234 THEN 7258118400 ELSE 1706745600 + i * 620 END"
        } else {
            "1706745600 + i * 620"
        };
        format!(
            "CREATE TABLE log AS SELECT
            'm' || CAST(i AS VARCHAR) AS message_id,
            'acct-' || CAST(i % 2 AS VARCHAR) AS account_id,
            CASE WHEN i % 11 = 0 THEN 'cust-' || CAST(i % 3 AS VARCHAR)
                 ELSE '+6281' || CAST(i % 37 AS VARCHAR) END AS customer_id,
            CASE WHEN i % 4 = 0 THEN 'inbound' ELSE 'outbound' END AS direction,
            CASE WHEN i % 4 = 3 THEN 'free_form' ELSE 'template' END AS message_type,
            CASE i % 3 WHEN 0 THEN 'marketing' WHEN 1 THEN 'utility' ELSE 'authentication' END AS category,
            CASE WHEN i % 4 = 0 THEN 'received' ELSE 'delivered' END AS status,
            to_timestamp({sent}) AS sent_at,
            to_timestamp({sent} + 5) AS delivered_at,
            CAST(NULL AS VARCHAR) AS entry_point
            FROM generate_series(0, 2999) AS t(i)"
        )
    }

    const QUERY: &str = "SELECT account_id, wa_customer_key(customer_id) AS c,
        wa_conversation_count(message_id, direction, message_type, category, status,
                              sent_at, delivered_at, entry_point) AS n,
        wa_conversations(message_id, direction, message_type, category, status,
                         sent_at, delivered_at, entry_point) AS convs
        FROM log GROUP BY 1, 2 ORDER BY 1, 2";

    async fn session(
        partitions: usize,
        rule: Option<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
        late: bool,
    ) -> SessionContext {
        let mut builder = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(partitions))
            .with_default_features();
        if let Some(rule) = rule {
            builder = builder.with_physical_optimizer_rule(rule);
        }
        let ctx = SessionContext::new_with_state(builder.build());
        crate::register_all(&ctx);
        ctx.sql(&log(late)).await.unwrap().collect().await.unwrap();
        ctx
    }

    /// A session of the bucketed operator whose memory pool holds `pool` bytes.
    async fn pooled_session(partitions: usize, pool: usize) -> SessionContext {
        pooled_session_in_batches(partitions, pool, 8192).await
    }

    /// The same, its table and scans in batches of `batch_size` rows.
    async fn pooled_session_in_batches(
        partitions: usize,
        pool: usize,
        batch_size: usize,
    ) -> SessionContext {
        pooled_session_with(partitions, pool, batch_size, single_phase_windowing_rule()).await
    }

    /// The same, planned by `rule`.
    async fn pooled_session_with(
        partitions: usize,
        pool: usize,
        batch_size: usize,
        rule: Arc<dyn PhysicalOptimizerRule + Send + Sync>,
    ) -> SessionContext {
        use datafusion::execution::memory_pool::FairSpillPool;
        use datafusion::execution::runtime_env::RuntimeEnvBuilder;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(pool)))
            .build_arc()
            .unwrap();
        // The ORDER BY's sort keeps 10 MB aside for merging by default.
        let config = SessionConfig::new()
            .with_target_partitions(partitions)
            .with_batch_size(batch_size)
            .with_sort_spill_reservation_bytes(8 << 10);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rule(rule)
            .build();
        let ctx = SessionContext::new_with_state(state);
        crate::register_all(&ctx);
        ctx.sql(&log(false)).await.unwrap().collect().await.unwrap();
        ctx
    }

    /// The rows `EXPLAIN ANALYZE` says the operator spilled (`3.00 K` read
    /// as 3000).
    async fn spilled_row_count(ctx: &SessionContext, sql: &str) -> usize {
        let spilled = spilled_rows(ctx, sql).await;
        match spilled.strip_suffix(" K") {
            Some(k) => (k.parse::<f64>().unwrap() * 1000.0) as usize,
            None => spilled.parse().unwrap(),
        }
    }

    /// The rows the operator spilled, as `EXPLAIN ANALYZE` writes them
    /// (`3.00 K`).
    async fn spilled_rows(ctx: &SessionContext, sql: &str) -> String {
        let analyzed = run(ctx, &format!("EXPLAIN ANALYZE {sql}")).await.unwrap();
        let line = analyzed
            .lines()
            .find(|l| l.contains("BucketedWindowingExec"))
            .unwrap_or_else(|| panic!("{analyzed}"));
        line.split("spilled_rows=")
            .nth(1)
            .and_then(|v| v.split([',', ']']).next())
            .unwrap_or_else(|| panic!("{line}"))
            .to_string()
    }

    /// The rows of `sql`'s result, as table lines, sorted: without an
    /// ORDER BY, whose sort would need more than the tiny pools hold.
    async fn sorted_lines(
        ctx: &SessionContext,
        sql: &str,
    ) -> datafusion::common::Result<Vec<String>> {
        let mut lines: Vec<String> = run(ctx, sql).await?.lines().map(str::to_string).collect();
        lines.sort();
        Ok(lines)
    }

    #[test]
    fn only_a_spill_past_half_the_page_cache_goes_around_it() {
        use super::outgrows_page_cache;
        let gib = 1usize << 30;
        assert!(outgrows_page_cache(31 * gib, Some(22 * gib)));
        assert!(!outgrows_page_cache(3 * gib, Some(22 * gib)));
        assert!(!outgrows_page_cache(11 * gib, Some(22 * gib)));
        assert!(!outgrows_page_cache(usize::MAX, None));
    }

    #[tokio::test]
    async fn past_its_pool_the_operator_spills_and_gives_the_same_answer() {
        let unordered = QUERY.replace(" ORDER BY 1, 2", "");
        let expected = sorted_lines(&session(3, None, false).await, &unordered)
            .await
            .unwrap();
        for partitions in [2, 3, 16] {
            for pool in [128 << 10, 192 << 10, 384 << 10, 1 << 20, 64 << 20] {
                let ctx = pooled_session(partitions, pool).await;
                assert_eq!(
                    sorted_lines(&ctx, &unordered).await.unwrap(),
                    expected,
                    "{partitions} partitions, a pool of {pool} bytes"
                );
                // Rows are written at most once, and a shard that spills
                // writes all its rows.
                let rows = spilled_row_count(&ctx, &unordered).await;
                assert!(rows <= 3000, "{rows}");
                match pool {
                    p if p <= 128 << 10 => assert!(rows > 2000, "most rows spilled: {rows}"),
                    // The rows take about a quarter of a megabyte, their
                    // buffers up to twice that: most of a 1 MB pool.
                    p if p >= 1 << 20 => assert_eq!(rows, 0, "a pool that holds the rows"),
                    _ => {}
                }
            }
        }
        // A range of one bucket's rows does not fit: an error naming the
        // operator and the pool.
        let ctx = pooled_session(2, 1 << 10).await;
        let e = sorted_lines(&ctx, &unordered)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("BucketedWindowingExec[") && e.contains("pool_size: 1024.0 B"),
            "{e}"
        );
    }

    /// After a cluster's shuffle the operator runs per input partition,
    /// each with its own key table, buffers and spill file: past its pool
    /// it spills, with the same answer.
    #[tokio::test]
    async fn per_input_partition_the_operator_spills_and_gives_the_same_answer() {
        let unordered = QUERY.replace(" ORDER BY 1, 2", "");
        let expected = sorted_lines(&session(3, None, false).await, &unordered)
            .await
            .unwrap();
        // The small pool is shared fairly by every partition's operator and
        // the shuffle's buffers: at 16 partitions a share of 128 KB is less
        // than one batch of a partition's rows, so fewer partitions.
        for partitions in [2, 3, 8] {
            let small = 128 << 10;
            for pool in [small, 64 << 20] {
                let rule = single_phase_windowing_rule_for_cluster();
                let ctx = pooled_session_with(partitions, pool, 8192, rule).await;
                let plan = run(&ctx, &format!("EXPLAIN {unordered}")).await.unwrap();
                assert!(
                    plan.contains(&format!("partitions={partitions}, "))
                        && plan.contains("per_input")
                        && plan.contains("RepartitionExec: partitioning=Hash([__wa_bucket@"),
                    "{plan}"
                );
                assert_eq!(
                    sorted_lines(&ctx, &unordered).await.unwrap(),
                    expected,
                    "{partitions} partitions, a pool of {pool} bytes"
                );
                let rows = spilled_row_count(&ctx, &unordered).await;
                if pool == small {
                    assert!(rows > 1000, "{partitions} partitions spilled {rows} rows");
                } else {
                    assert_eq!(rows, 0, "a pool that holds the rows");
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 8, ..Default::default() })]

        /// Any pool that holds a range, any partition count and any split
        /// of the input into batches give the unlimited answer.
        #[test]
        fn any_budget_and_split_give_the_unlimited_answer(
            pool_kb in 128usize..512,
            partitions in 2usize..17,
            batch_size in 50usize..5000,
        ) {
            let rt = tokio::runtime::Runtime::new().unwrap();
            let (got, expected, spilled) = rt.block_on(async {
                let unordered = QUERY.replace(" ORDER BY 1, 2", "");
                let expected = sorted_lines(&session(3, None, false).await, &unordered).await;
                let ctx = pooled_session_in_batches(partitions, pool_kb << 10, batch_size).await;
                let got = sorted_lines(&ctx, &unordered).await;
                (got, expected, spilled_rows(&ctx, &unordered).await)
            });
            proptest::prop_assert_eq!(got.unwrap(), expected.unwrap());
            proptest::prop_assert_ne!(spilled, "0", "pools this small spill");
        }
    }

    async fn run(ctx: &SessionContext, sql: &str) -> datafusion::common::Result<String> {
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(pretty_format_batches(&batches)?.to_string())
    }

    #[tokio::test]
    async fn buckets_in_one_operator_give_the_two_phase_answer_at_any_partition_count() {
        let expected = run(&session(3, None, false).await, QUERY).await.unwrap();
        assert_eq!(expected.matches("| acct-").count(), 2 * 37 + 2 * 3);
        for partitions in [2, 3, 16] {
            let ctx = session(partitions, Some(single_phase_windowing_rule()), false).await;
            let plan = run(&ctx, &format!("EXPLAIN {QUERY}")).await.unwrap();
            // The operator codes and buckets the keys itself, reading the
            // customer's number as logged, into more, smaller partitions.
            let shards = partitions * crate::optimizer::by_key_plan::SHARDS_PER_PARTITION;
            assert!(
                plan.contains(&format!(
                    "BucketedWindowingExec: keys=[__wa_group_key_0@0, \
                     wa_customer_key(__wa_group_key_1@1)], partitions={shards}"
                )),
                "{plan}"
            );
            let rows = plan
                .lines()
                .find(|l| l.contains(" as __wa_group_key_1"))
                .expect("the rows' projection");
            assert!(rows.contains("customer_id@"), "{rows}");
            assert!(!rows.contains("wa_customer_key("), "{rows}");
            assert!(!plan.contains("wa_key_bucket"), "{plan}");
            assert_eq!(
                run(&ctx, QUERY).await.unwrap(),
                expected,
                "{partitions} partitions"
            );
            // The same plan runs again from the start.
            assert_eq!(run(&ctx, QUERY).await.unwrap(), expected);
            let analyzed = run(&ctx, &format!("EXPLAIN ANALYZE {QUERY}"))
                .await
                .unwrap();
            let line = analyzed
                .lines()
                .find(|l| l.contains("BucketedWindowingExec"))
                .unwrap_or_else(|| panic!("{analyzed}"));
            // A row per bucket, in batches.
            assert!(line.contains("output_rows=16.3"), "{line}");
            assert!(!line.contains("output_batches=0"), "{line}");
            assert!(line.contains("append_time="), "{line}");
        }
        // One customer in two accounts: most shards receive no rows.
        let one = QUERY.replace("FROM log", "FROM log WHERE customer_id = '+628110'");
        let expected_one = run(&session(3, None, false).await, &one).await.unwrap();
        assert_eq!(expected_one.matches("| acct-").count(), 2, "{expected_one}");
        let ctx = session(16, Some(single_phase_windowing_rule()), false).await;
        assert_eq!(run(&ctx, &one).await.unwrap(), expected_one);
        let cluster = session(3, Some(single_phase_windowing_rule_for_cluster()), false).await;
        assert_eq!(run(&cluster, QUERY).await.unwrap(), expected);
    }

    /// The `conversations` view's shape: unnest the lists, read fields.
    fn unnested(select: &str, tail: &str) -> String {
        format!(
            "SELECT {select} FROM (
               SELECT account_id, k, unnest(convs) AS c FROM (
                 SELECT account_id, wa_customer_key(customer_id) AS k,
                   wa_conversations(message_id, direction, message_type, category, status,
                                    sent_at, delivered_at, entry_point) AS convs
                 FROM log GROUP BY 1, 2)) {tail}"
        )
    }

    #[tokio::test]
    async fn only_the_struct_fields_a_query_reads_are_built() {
        let two_phase = session(3, None, false).await;
        let ctx = session(3, Some(single_phase_windowing_rule()), false).await;
        // (select, the fields read, whether the structs come out flat)
        let cases = [
            (
                "c['category'] AS category, count(*) AS n",
                Some("[category]"),
                true,
            ),
            (
                "c['opened_at'], c['category'] || '!', c['opening_message_id']",
                Some("[category, opened_at, opening_message_id]"),
                true,
            ),
            // A key is read: the unnests stay.
            (
                "account_id, c['opened_at'], c['category'] || '!'",
                Some("[category, opened_at]"),
                false,
            ),
            (
                "k, c['opening_message_id'], c['expires_at']",
                Some("[expires_at, opening_message_id]"),
                false,
            ),
            // The whole struct is read: every field is built.
            ("k, c, c['category']", None, false),
        ];
        for (select, fields, flat) in cases {
            let sql = match select.contains("count(*)") {
                true => unnested(select, "GROUP BY 1 ORDER BY 1"),
                false => unnested(select, "ORDER BY 1, 2, 3"),
            };
            check_fields_read(&two_phase, &ctx, &sql, fields, flat).await;
        }
        // Flat, with most shards empty: one customer in two accounts.
        let one = unnested(
            "c['category'] AS category, c['opened_at'] AS opened",
            "ORDER BY 1, 2",
        )
        .replace("FROM log", "FROM log WHERE customer_id = '+628110'");
        check_fields_read(&two_phase, &ctx, &one, Some("[category, opened_at]"), true).await;
        // `unnest_outer` makes a row of nulls of an empty list: not flat.
        // Only inbound messages: no conversation opens, every list is empty.
        let outer = unnested("c['category'] AS category, count(*) AS n", "GROUP BY 1")
            .replace("unnest(convs)", "unnest_outer(convs)")
            .replace("FROM log", "FROM log WHERE direction = 'inbound'");
        let plan = run(&ctx, &format!("EXPLAIN {outer}")).await.unwrap();
        assert!(plan.contains("fields_read[0]=[category]"), "{plan}");
        assert!(!plan.contains(", flat"), "{plan}");
        let expected = run(&two_phase, &outer).await.unwrap();
        assert!(expected.contains("|          | 40 |"), "{expected}");
        assert_eq!(run(&ctx, &outer).await.unwrap(), expected);
        // wa_messages' lists of message structs come out flat as well.
        let messages = unnested(
            "c['message_id'], c['pricing_category'], c['billable']",
            "ORDER BY 1, 2, 3",
        )
        .replace("wa_conversations(", "wa_messages(");
        check_fields_read(
            &two_phase,
            &ctx,
            &messages,
            Some("[billable, message_id, pricing_category]"),
            true,
        )
        .await;
        // A filter on a field the output does not show: whatever the plan's
        // shape, that field is built.
        let filtered = unnested(
            "c['category'] AS category, count(*) AS n",
            "WHERE c['opened_at'] >= TIMESTAMP '2024-02-10T00:00:00Z' GROUP BY 1 ORDER BY 1",
        );
        let plan = run(&ctx, &format!("EXPLAIN {filtered}")).await.unwrap();
        assert!(!plan.contains("fields_read[0]=[category]"), "{plan}");
        let expected = run(&two_phase, &filtered).await.unwrap();
        assert_eq!(run(&ctx, &filtered).await.unwrap(), expected);
        let all = run(
            &two_phase,
            &unnested(
                "c['category'] AS category, count(*) AS n",
                "GROUP BY 1 ORDER BY 1",
            ),
        )
        .await
        .unwrap();
        assert_ne!(expected, all, "the filter drops some conversations");
    }

    /// `sql` through the rule reads `fields` (`None`: every field), emits
    /// the structs flat or not, and answers as two-phase aggregation does.
    async fn check_fields_read(
        two_phase: &SessionContext,
        ctx: &SessionContext,
        sql: &str,
        fields: Option<&str>,
        flat: bool,
    ) {
        let plan = run(ctx, &format!("EXPLAIN {sql}")).await.unwrap();
        assert!(plan.contains("BucketedWindowingExec"), "{plan}");
        match fields {
            Some(f) => assert!(plan.contains(&format!("fields_read[0]={f}")), "{plan}"),
            None => assert!(!plan.contains("fields_read"), "{plan}"),
        }
        assert_eq!(plan.contains(", flat"), flat, "{plan}");
        assert!(
            plan.contains("BucketedWindowingExec: keys=[__wa_group_key_0@0, wa_customer_key("),
            "{plan}"
        );
        assert_eq!(plan.contains("UnnestExec"), !flat, "{plan}");
        let expected = run(two_phase, sql).await.unwrap();
        assert!(expected.lines().count() >= 7, "{expected}");
        assert_eq!(run(ctx, sql).await.unwrap(), expected, "{sql}");
    }

    #[tokio::test]
    async fn a_row_the_buffer_cannot_hold_fails_the_query_naming_its_message() {
        let ctx = session(4, Some(single_phase_windowing_rule()), true).await;
        let err = run(&ctx, QUERY).await.unwrap_err().to_string();
        assert!(err.contains("message_id \"m1234\""), "{err}");
        assert!(err.contains("outside the years 1827 to 2112"), "{err}");
    }
}
