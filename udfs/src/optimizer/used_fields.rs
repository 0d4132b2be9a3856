//! Which fields of a windowing aggregate's structs a query reads, so that
//! the aggregate builds only those.
//!
//! Views unnest `wa_conversations(...)` into a struct per conversation and
//! read its fields with `c['category']`. A report usually needs one or two
//! of the four fields, but the aggregate built all of them, the opening
//! message's id (a string copy per conversation) included, and the
//! unnest copies them again. This pass finds the plan's
//! `ProjectionExec ← UnnestExec ← ProjectionExec…` over a
//! [`BucketedWindowingExec`]'s list, and when every use of the unnested
//! struct is a `get_field` by name, tells the operator those names. The
//! others are filled with empty strings and zero times, which nothing
//! reads; the schema stays the same. Any other shape keeps every field.
//!
//! When that projection reads nothing but such fields (no key, not the
//! struct whole), the two unnests and the projections between them are
//! dropped too: the operator emits the structs flat, a row each with the
//! fields as columns ([`BucketedWindowingExec::flattened`]), and the
//! projection reads those columns, without the unnests' copies of every
//! row or keys decoded for every pair that nothing reads.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{NullHandling, Result};
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::unnest::UnnestExec;
use datafusion::physical_plan::ExecutionPlan;

use crate::physical_plan::bucketed::BucketedWindowingExec;

/// `plan` with each [`BucketedWindowingExec`] told the struct fields its
/// consumers read, where they can be known.
pub fn keep_used_fields(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    // The operators (by address) and, per aggregate, the fields read.
    let mut used: HashMap<usize, Vec<(usize, Vec<String>)>> = HashMap::new();
    plan.apply(|node| {
        if let Some(read) = fields_read(node) {
            used.entry(address(&read.exec))
                .or_default()
                .push((read.aggregate, read.names));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if used.is_empty() {
        return Ok(plan);
    }
    let plan = plan
        .transform_up(|node| {
            let Some(exec) = node.downcast_ref::<BucketedWindowingExec>() else {
                return Ok(Transformed::no(node));
            };
            match used.get(&address(&node)) {
                Some(fields) => Ok(Transformed::yes(Arc::new(
                    exec.with_fields_read(fields.clone())?,
                ))),
                None => Ok(Transformed::no(node)),
            }
        })?
        .data;
    plan.transform_up(|node| match flat_projection(&node)? {
        Some(flat) => Ok(Transformed::yes(flat)),
        None => Ok(Transformed::no(node)),
    })
    .map(|t| t.data)
}

/// At a projection that reads only fields of the structs of a windowing
/// operator with one aggregate: the same projection over the operator's
/// flat output, without the unnests.
fn flat_projection(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(read) = fields_read(node).filter(|r| r.aggregate == 0) else {
        return Ok(None);
    };
    // `unnest_outer` makes a row of nulls of an empty list (a customer
    // with no conversation); the flat output has no row for it. A null
    // list, which would make one under `Preserve` too, never comes out of
    // a windowing aggregate (and `flat_columns` fails rather than drop it).
    if read.unnest.options().null_handling == NullHandling::PreserveAndExpandEmpty {
        return Ok(None);
    }
    let Some(flat) = read
        .exec
        .downcast_ref::<BucketedWindowingExec>()
        .map(BucketedWindowingExec::flattened)
        .transpose()?
        .flatten()
    else {
        return Ok(None);
    };
    let column = read.column;
    let schema = flat.schema();
    let mut exprs = Vec::with_capacity(read.projection.expr().len());
    for e in read.projection.expr() {
        let Some(expr) = as_flat(&e.expr, column, &schema) else {
            return Ok(None);
        };
        exprs.push(ProjectionExpr {
            expr,
            alias: e.alias.clone(),
        });
    }
    Ok(Some(Arc::new(ProjectionExec::try_new(
        exprs,
        Arc::new(flat),
    )?)))
}

/// `expr` with each `get_field(column, 'name')` the flat output's column
/// `name`; `None` when it reads any other column.
fn as_flat(
    expr: &Arc<dyn PhysicalExpr>,
    column: usize,
    flat: &datafusion::arrow::datatypes::Schema,
) -> Option<Arc<dyn PhysicalExpr>> {
    if let Some(f) = expr.downcast_ref::<ScalarFunctionExpr>() {
        if let ("get_field", [of, name]) = (f.name(), f.args()) {
            if of
                .downcast_ref::<Column>()
                .is_some_and(|c| c.index() == column)
            {
                let name = name
                    .downcast_ref::<Literal>()
                    .and_then(|l| l.value().try_as_str().flatten())?;
                let index = flat.index_of(name).ok()?;
                return Some(Arc::new(Column::new(name, index)));
            }
        }
    }
    if expr.downcast_ref::<Column>().is_some() {
        return None;
    }
    let children = expr
        .children()
        .into_iter()
        .map(|c| as_flat(c, column, flat))
        .collect::<Option<Vec<_>>>()?;
    if children.is_empty() {
        return Some(Arc::clone(expr));
    }
    Arc::clone(expr).with_new_children(children).ok()
}

fn address(plan: &Arc<dyn ExecutionPlan>) -> usize {
    Arc::as_ptr(plan) as *const () as usize
}

/// A projection that reads only fields of a windowing operator's structs,
/// as [`fields_read`] finds it.
struct FieldsRead<'a> {
    projection: &'a ProjectionExec,
    /// The unnest of the structs' lists, under `projection`.
    unnest: &'a UnnestExec,
    /// The unnested column, in `unnest`'s output.
    column: usize,
    /// The windowing operator the lists come from.
    exec: Arc<dyn ExecutionPlan>,
    /// The aggregate's index in it.
    aggregate: usize,
    /// The fields read, sorted.
    names: Vec<String>,
}

/// At a `ProjectionExec` over an `UnnestExec` of one list column whose
/// every use is `get_field(column, 'name')`: what it reads, and from which
/// windowing operator and aggregate.
fn fields_read(node: &Arc<dyn ExecutionPlan>) -> Option<FieldsRead<'_>> {
    let read = node.downcast_ref::<ProjectionExec>()?;
    let unnest = read.input().downcast_ref::<UnnestExec>()?;
    let [list] = unnest.list_column_indices() else {
        return None;
    };
    let unnest_input = unnest.input();
    if list.depth != 1
        || !unnest.struct_column_indices().is_empty()
        || unnest.schema().fields().len() != unnest_input.schema().fields().len()
    {
        return None;
    }
    // Unnesting one list at depth 1 keeps the columns in place.
    let column = list.index_in_input_schema;
    let mut names = vec![];
    for e in read.expr() {
        if !only_fields_of(&e.expr, column, &mut names) {
            return None;
        }
    }
    // Down through projections that only rename the column.
    let mut plan = Arc::clone(unnest_input);
    let unnested = column;
    let mut column = column;
    while let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        let exprs = projection.expr();
        let source = exprs[column].expr.downcast_ref::<Column>()?.index();
        let uses = exprs.iter().filter(|e| references(&e.expr, source)).count();
        if uses != 1 {
            return None;
        }
        column = source;
        plan = Arc::clone(projection.input());
    }
    // The by-key plan's own unnest, whose columns name their aggregate.
    let by_key = plan.downcast_ref::<UnnestExec>()?;
    let exec = Arc::clone(by_key.input());
    exec.downcast_ref::<BucketedWindowingExec>()?;
    let schema = plan.schema();
    let aggregate = schema
        .field(column)
        .name()
        .strip_prefix("__wa_value_")?
        .parse()
        .ok()?;
    names.sort();
    names.dedup();
    Some(FieldsRead {
        projection: read,
        unnest,
        column: unnested,
        exec,
        aggregate,
        names,
    })
}

/// Whether every use of `column` in `expr` is `get_field(column, 'name',
/// …)`; the names go to `names`.
fn only_fields_of(expr: &Arc<dyn PhysicalExpr>, column: usize, names: &mut Vec<String>) -> bool {
    if let Some(f) = expr.downcast_ref::<ScalarFunctionExpr>() {
        let args = f.args();
        let of_column = args
            .first()
            .and_then(|a| a.downcast_ref::<Column>())
            .is_some_and(|c| c.index() == column);
        if f.name() == "get_field" && of_column {
            let name = args
                .get(1)
                .and_then(|a| a.downcast_ref::<Literal>())
                .and_then(|l| l.value().try_as_str().flatten());
            let Some(name) = name else {
                return false;
            };
            names.push(name.to_string());
            return args[1..].iter().all(|a| only_fields_of(a, column, names));
        }
    }
    if expr
        .downcast_ref::<Column>()
        .is_some_and(|c| c.index() == column)
    {
        return false;
    }
    expr.children()
        .into_iter()
        .all(|c| only_fields_of(c, column, names))
}

fn references(expr: &Arc<dyn PhysicalExpr>, column: usize) -> bool {
    expr.downcast_ref::<Column>()
        .is_some_and(|c| c.index() == column)
        || expr.children().into_iter().any(|c| references(c, column))
}
