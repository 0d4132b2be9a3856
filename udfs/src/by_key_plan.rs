//! The plan of the by-key form ([`crate::by_key`]), built by the rule in
//! [`crate::single_phase`] over rows already hash-repartitioned by every
//! grouping key:
//!
//! ```text
//! ProjectionExec: the other keys, the key, each aggregate's value
//!   UnnestExec: each aggregate's list of {key, value}, then its struct
//!     AggregateExec(SinglePartitioned): GROUP BY the other keys,
//!                                       wa_key_bucket(key); agg(key, ...)
//! ```
//!
//! Its output has the schema of the one-phase aggregate it stands for, one
//! row per (other keys, key). Every aggregate of one plan splits a group's
//! rows by key in key-code order, so the unnested lists line up.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{Result, UnnestOptions};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::unnest::{ListUnnest, UnnestExec};
use datafusion::physical_plan::ExecutionPlan;

use crate::single_phase::with_args;
use crate::wa_key_bucket_udf;

/// A grouping key and its output name.
type Key = (Arc<dyn PhysicalExpr>, String);

/// The by-key plan over `input` (rows repartitioned by `keys`), or `None`
/// when it does not apply: fewer than two keys, or a last key that is not a
/// string column. `aggr_expr` are the compact-form aggregates; `want` is the
/// schema of the aggregate the plan stands for.
pub fn by_key_plan(
    input: Arc<dyn ExecutionPlan>,
    keys: &[Key],
    aggr_expr: &[Arc<AggregateFunctionExpr>],
    want: &Schema,
    config: &ConfigOptions,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let schema = input.schema();
    let Some(((last, last_name), others)) = keys.split_last() else {
        return Ok(None);
    };
    let key_type = last.data_type(&schema)?;
    if others.is_empty()
        || last.downcast_ref::<Column>().is_none()
        || !matches!(
            key_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
    {
        return Ok(None);
    }
    let bucket = ScalarFunctionExpr::try_new(
        wa_key_bucket_udf(),
        vec![Arc::clone(last)],
        &schema,
        Arc::new(config.clone()),
    )?;
    let mut group_by: Vec<Key> = others.to_vec();
    group_by.push((Arc::new(bucket), "__wa_bucket".into()));
    let mut by_key = vec![];
    for a in aggr_expr {
        let mut args = vec![Arc::clone(last)];
        args.extend(a.expressions());
        by_key.push(with_args(a, args, &schema)?);
    }
    let filters = vec![None; by_key.len()];
    let aggregate = Arc::new(AggregateExec::try_new(
        AggregateMode::SinglePartitioned,
        PhysicalGroupBy::new_single(group_by),
        by_key,
        filters,
        Arc::clone(&input),
        schema,
    )?);

    // Unnest each aggregate's list, then its struct: {key, value} columns.
    let grouped = aggregate.schema();
    let g = keys.len(); // the other keys and the bucket
    let mut fields: Vec<Field> = grouped.fields()[..g]
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut lists = vec![];
    for (i, field) in grouped.fields()[g..].iter().enumerate() {
        let DataType::List(item) = field.data_type() else {
            return Ok(None);
        };
        let DataType::Struct(pair) = item.data_type() else {
            return Ok(None);
        };
        let want_value = want.field(g + i);
        fields.push(Field::new(
            format!("__wa_key_{i}"),
            pair[0].data_type().clone(),
            want.field(g - 1).is_nullable(),
        ));
        fields.push(Field::new(
            format!("__wa_value_{i}"),
            pair[1].data_type().clone(),
            want_value.is_nullable(),
        ));
        lists.push(g + i);
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

    // Back to the aggregate's columns: the other keys, the key, the values.
    let column = |i: usize, name: &str| -> (Arc<dyn PhysicalExpr>, String) {
        (Arc::new(Column::new(name, i)), name.to_string())
    };
    let unnested = unnest.schema();
    let mut columns: Vec<(Arc<dyn PhysicalExpr>, String)> = others
        .iter()
        .enumerate()
        .map(|(i, (_, name))| {
            (
                Arc::new(Column::new(unnested.field(i).name(), i)) as _,
                name.clone(),
            )
        })
        .collect();
    columns.push((column(g, unnested.field(g).name()).0, last_name.clone()));
    for (i, a) in aggr_expr.iter().enumerate() {
        let at = g + 2 * i + 1;
        columns.push((
            column(at, unnested.field(at).name()).0,
            a.name().to_string(),
        ));
    }
    Ok(Some(Arc::new(ProjectionExec::try_new(columns, unnest)?)))
}
