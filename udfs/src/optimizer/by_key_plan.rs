//! The plan of the by-key form ([`crate::keys::by_key`]), built by the rule in
//! [`crate::optimizer::single_phase`] over the compact rows (the grouping keys as
//! columns, then the compact log columns):
//!
//! ```text
//! ProjectionExec: the keys, each aggregate's value
//!   UnnestExec: each aggregate's list of {key0, …, value}, then its struct
//!     AggregateExec(SinglePartitioned): GROUP BY __wa_bucket; agg(keys…, ...)
//!       RepartitionExec: Hash(__wa_bucket)
//!         ProjectionExec: the rows, and __wa_bucket = wa_key_bucket(keys…)
//! ```
//!
//! In one process the aggregate, its repartition and the bucket are one
//! [`BucketedWindowingExec`], with the same output; it reads the customer's
//! number as logged where the rows compute `wa_customer_key` of it, and
//! strips the `+` as it codes the key. On a cluster the repartition stays
//! (it is the shuffle) and the aggregate is a [`BucketedWindowingExec`] per
//! partition ([`crate::physical_plan::bucketed::Routing::PerInput`]), which spills within the executor's
//! pool by range of buckets where DataFusion's aggregate, grouped by so few
//! and so large buckets, cannot.
//!
//! Its output has the schema of the one-phase aggregate it stands for, one
//! row per distinct keys. Every aggregate of one plan splits a group's rows
//! by key in key-code order, so the unnested lists line up.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{Result, UnnestOptions};
use datafusion::physical_expr::aggregate::{AggregateExprBuilder, AggregateFunctionExpr};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::unnest::{ListUnnest, UnnestExec};
use datafusion::physical_plan::{ExecutionPlan, Partitioning};

use crate::functions::wa_customer_key::WaCustomerKey;
use crate::functions::wa_key_bucket::wa_key_bucket_udf;
use crate::functions::windowing::windowing_aggregate;
use crate::physical_plan::bucketed::{BucketedWindowingExec, CodedKeys};

/// A grouping key and its output name.
type Key = (Arc<dyn PhysicalExpr>, String);

/// The by-key plan over `rows` (the compact rows, not yet repartitioned),
/// into `partitions` partitions, or `None` when it does not apply: a key
/// that is not a string column. `aggr_expr` are the compact-form
/// aggregates; `want` is the schema of the aggregate the plan stands for.
/// `in_process`: the repartition and aggregate as one
/// [`BucketedWindowingExec`]; else (a cluster) the repartition, then the
/// operator per partition.
pub fn by_key_plan(
    rows: Arc<dyn ExecutionPlan>,
    keys: &[Key],
    aggr_expr: &[Arc<AggregateFunctionExpr>],
    want: &Schema,
    partitions: usize,
    config: &ConfigOptions,
    in_process: bool,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let schema = rows.schema();
    let n = keys.len();
    for (key, _) in keys {
        let text = matches!(
            key.data_type(&schema)?,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        );
        if key.downcast_ref::<Column>().is_none() || !text {
            return Ok(None);
        }
    }
    if n == 0 || want.fields().len() != n + aggr_expr.len() {
        return Ok(None);
    }

    let key_exprs: Vec<Arc<dyn PhysicalExpr>> = keys.iter().map(|(k, _)| Arc::clone(k)).collect();
    let in_one = match in_process {
        true => in_process_windowing(&rows, &key_exprs, aggr_expr, partitions)?,
        false => None,
    };
    let aggregate = match in_one {
        Some(exec) => exec,
        None => repartitioned_windowing(rows, &key_exprs, aggr_expr, partitions, config)?,
    };
    unnested(aggregate, keys, aggr_expr, want)
}

/// Output partitions of the in-process operator per partition of the plan.
/// Each output partition evaluates its rows in one piece, and the threads
/// take pieces as they finish: with twice as many, half as large, the last
/// ones end closer together, and the sort's second buffer that one piece
/// hands to the next is half the size, which lowers the peak.
pub(crate) const SHARDS_PER_PARTITION: usize = 2;

/// The repartition and the aggregate as one [`BucketedWindowingExec`] that
/// codes and buckets the keys itself ([`CodedKeys`]), reading the
/// customer's number as logged where `rows` computes `wa_customer_key` of
/// it; `None` where that operator does not apply.
fn in_process_windowing(
    rows: &Arc<dyn ExecutionPlan>,
    key_exprs: &[Arc<dyn PhysicalExpr>],
    aggr_expr: &[Arc<AggregateFunctionExpr>],
    partitions: usize,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let last = key_exprs.last().expect("at least one key");
    let (rows, plus_stripped) = customer_as_logged(rows, last)?;
    let schema = rows.schema();
    let mut by_key = vec![];
    for a in aggr_expr {
        let Some(windowing) = windowing_aggregate(a.fun().name()) else {
            return Ok(None);
        };
        let mut args = key_exprs.to_vec();
        args.extend(a.expressions());
        by_key.push((with_args(a, args, &schema)?, windowing.rows_accumulator));
    }
    let keys = CodedKeys {
        keys: key_exprs.len(),
        plus_stripped,
    };
    Ok(
        BucketedWindowingExec::try_new(rows, keys, by_key, partitions * SHARDS_PER_PARTITION)?
            .map(|exec| Arc::new(exec) as Arc<dyn ExecutionPlan>),
    )
}

/// `rows` with its column `last` (the customer key) computed as the
/// argument `x` of `wa_customer_key(x)` instead, and `true`, where `rows`
/// is a projection that computes it so; else `rows` itself and `false`.
fn customer_as_logged(
    rows: &Arc<dyn ExecutionPlan>,
    last: &Arc<dyn PhysicalExpr>,
) -> Result<(Arc<dyn ExecutionPlan>, bool)> {
    let unchanged = Ok((Arc::clone(rows), false));
    let (Some(projection), Some(column)) = (
        rows.downcast_ref::<ProjectionExec>(),
        last.downcast_ref::<Column>(),
    ) else {
        return unchanged;
    };
    let Some(key) = projection
        .expr()
        .get(column.index())
        .and_then(|e| e.expr.downcast_ref::<ScalarFunctionExpr>())
    else {
        return unchanged;
    };
    let [number] = key.args() else {
        return unchanged;
    };
    let input = projection.input();
    let is_customer_key = key.fun().inner().downcast_ref::<WaCustomerKey>().is_some();
    if !is_customer_key || number.data_type(&input.schema())? != *key.return_type() {
        return unchanged;
    }
    let mut exprs = projection.expr().to_vec();
    exprs[column.index()].expr = Arc::clone(number);
    Ok((
        Arc::new(ProjectionExec::try_new(exprs, Arc::clone(input))?),
        true,
    ))
}

/// The rows and their bucket (`wa_key_bucket` of the keys), repartitioned
/// by the bucket alone, and a [`BucketedWindowingExec`] over each
/// partition (or DataFusion's aggregate where that operator does not
/// apply).
fn repartitioned_windowing(
    rows: Arc<dyn ExecutionPlan>,
    key_exprs: &[Arc<dyn PhysicalExpr>],
    aggr_expr: &[Arc<AggregateFunctionExpr>],
    partitions: usize,
    config: &ConfigOptions,
) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = rows.schema();
    let bucket = ScalarFunctionExpr::try_new(
        wa_key_bucket_udf(),
        key_exprs.to_vec(),
        &schema,
        Arc::new(config.clone()),
    )?;
    let mut columns: Vec<(Arc<dyn PhysicalExpr>, String)> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| (Arc::new(Column::new(f.name(), i)) as _, f.name().clone()))
        .collect();
    let bucket_column: Arc<dyn PhysicalExpr> = Arc::new(Column::new("__wa_bucket", columns.len()));
    columns.push((Arc::new(bucket), "__wa_bucket".into()));
    let bucketed: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(columns, rows)?);
    let schema = bucketed.schema();

    let mut by_key = vec![];
    for a in aggr_expr {
        let mut args = key_exprs.to_vec();
        args.extend(a.expressions());
        by_key.push(with_args(a, args, &schema)?);
    }
    let input: Arc<dyn ExecutionPlan> = Arc::new(RepartitionExec::try_new(
        bucketed,
        Partitioning::Hash(vec![Arc::clone(&bucket_column)], partitions),
    )?);
    let mut routed = Vec::with_capacity(by_key.len());
    for a in &by_key {
        match windowing_aggregate(a.fun().name()) {
            Some(windowing) => routed.push((Arc::clone(a), windowing.rows_accumulator)),
            None => break,
        }
    }
    if routed.len() == by_key.len() {
        let keys = CodedKeys {
            keys: key_exprs.len(),
            plus_stripped: false,
        };
        if let Some(exec) =
            BucketedWindowingExec::try_new_per_input(Arc::clone(&input), keys, routed)?
        {
            return Ok(Arc::new(exec));
        }
    }
    let filters = vec![None; by_key.len()];
    Ok(Arc::new(AggregateExec::try_new(
        AggregateMode::SinglePartitioned,
        PhysicalGroupBy::new_single(vec![(bucket_column, "__wa_bucket".into())]),
        by_key,
        filters,
        input,
        schema,
    )?))
}

/// The aggregate's output (a bucket, then per aggregate a list of
/// `{key0, …, value}`) as the one-phase aggregate's: a row per pair.
fn unnested(
    aggregate: Arc<dyn ExecutionPlan>,
    keys: &[Key],
    aggr_expr: &[Arc<AggregateFunctionExpr>],
    want: &Schema,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let n = keys.len();
    // Unnest each aggregate's list, then its struct: key and value columns.
    let grouped = aggregate.schema();
    let mut fields: Vec<Field> = vec![grouped.field(0).clone()];
    let mut lists = vec![];
    for (i, field) in grouped.fields()[1..].iter().enumerate() {
        let DataType::List(item) = field.data_type() else {
            return Ok(None);
        };
        let DataType::Struct(pair) = item.data_type() else {
            return Ok(None);
        };
        for (j, key) in pair.iter().take(n).enumerate() {
            fields.push(Field::new(
                format!("__wa_key_{i}_{j}"),
                key.data_type().clone(),
                want.field(j).is_nullable(),
            ));
        }
        fields.push(Field::new(
            format!("__wa_value_{i}"),
            pair[n].data_type().clone(),
            want.field(n + i).is_nullable(),
        ));
        lists.push(1 + i);
    }
    let unnest = Arc::new(UnnestExec::new(
        aggregate,
        lists
            .iter()
            .map(|&index_in_input_schema| ListUnnest {
                index_in_input_schema,
                depth: 1,
            })
            .collect(),
        lists.clone(),
        Arc::new(Schema::new(fields)),
        UnnestOptions::default(),
    )?);

    // Back to the aggregate's columns: the keys (the first aggregate's),
    // then every aggregate's value.
    let unnested = unnest.schema();
    let column = |at: usize, name: &str| -> (Arc<dyn PhysicalExpr>, String) {
        (
            Arc::new(Column::new(unnested.field(at).name(), at)),
            name.to_string(),
        )
    };
    let mut columns: Vec<(Arc<dyn PhysicalExpr>, String)> = keys
        .iter()
        .enumerate()
        .map(|(j, (_, name))| column(1 + j, name))
        .collect();
    for (i, a) in aggr_expr.iter().enumerate() {
        columns.push(column(1 + i * (n + 1) + n, a.name()));
    }
    Ok(Some(Arc::new(ProjectionExec::try_new(columns, unnest)?)))
}
/// Aggregate `a` (same function, name and display) over other arguments,
/// read from `schema`.
pub(crate) fn with_args(
    a: &AggregateFunctionExpr,
    args: Vec<Arc<dyn PhysicalExpr>>,
    schema: &SchemaRef,
) -> Result<Arc<AggregateFunctionExpr>> {
    let mut builder = AggregateExprBuilder::new(Arc::new(a.fun().clone()), args)
        .schema(Arc::clone(schema))
        .alias(a.name());
    if let Some(display) = a.human_display() {
        builder = builder.human_display(display);
    }
    Ok(Arc::new(builder.build()?))
}
