//! Reading constant arguments (a rule set, a category) once, when the
//! accumulator is created, instead of per row.

use std::sync::Arc;

use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::physical_expr::expressions::{CastExpr, Literal};
use datafusion::physical_expr::PhysicalExpr;

/// The value of a constant string argument; an error if it is not constant.
pub fn constant_string(expr: &Arc<dyn PhysicalExpr>, what: &str) -> Result<String> {
    let mut e: &dyn PhysicalExpr = expr.as_ref();
    if let Some(cast) = (e as &dyn std::any::Any).downcast_ref::<CastExpr>() {
        e = cast.expr().as_ref();
    }
    match (e as &dyn std::any::Any)
        .downcast_ref::<Literal>()
        .map(|l| l.value())
    {
        Some(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
        ) => Ok(s.clone()),
        _ => plan_err!("{what} must be a constant string, got {expr}"),
    }
}
