//! Saved queries as SQL: each is a table function named like the query
//! with `_` for `-` (`monthly_utilization('2024-02', 100000)`), taking its
//! parameters in the order its header declares them. Arguments are
//! literals or placeholders (`$1`), which take the values a client bound
//! to the statement ([`StatementParams`], set by `serve` on the statement's
//! session). The values are typed and checked by the same code as
//! `run --param`, then bound as placeholders of the saved query's plan,
//! never pasted into its text.
//!
//! What `run` adds around a saved query stays with `run`: `--param` values
//! of settings (`service_allowance`: the session's value applies here),
//! `--alert-at`, and the check that fails on a missing rate (here a
//! missing rate is a NULL price in the rows).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arrow::datatypes::DataType;

use chrono::Utc;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_datafusion_err, plan_err, ParamValues, ScalarValue};
use datafusion::datasource::ViewTable;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;

use super::parse::parse_statements;
use super::saved::{ParamKind, SavedQuery};
use crate::error::WaError;

/// What a statement's placeholders stand for, as a session config
/// extension: table function arguments are planned before the statement's
/// own placeholders are replaced, so they read them here. Without it, a
/// placeholder argument is an error naming it: a statement never runs on
/// values nobody gave.
#[derive(Debug, Clone)]
pub enum StatementParams {
    /// The values a client bound, to run the statement.
    Bound(ParamValues),
    /// None yet: the statement is planned only to learn its columns (a
    /// prepared statement's dataset schema), each placeholder argument
    /// standing for a value of its parameter's type, which is noted in
    /// the [`Described`].
    Describing(Described),
}

/// The placeholders (`$1`) that saved-query arguments took while a
/// statement was described, with their parameters' types: the plan no
/// longer holds them, and a client (JDBC) asks for every parameter's
/// type before it binds.
#[derive(Debug, Clone, Default)]
pub struct Described(Arc<Mutex<BTreeMap<String, DataType>>>);

impl Described {
    pub fn placeholders(&self) -> BTreeMap<String, DataType> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn note(&self, id: &str, kind: ParamKind) {
        let t = match kind {
            ParamKind::Month | ParamKind::Text => DataType::Utf8,
            ParamKind::Int | ParamKind::PositiveInt => DataType::Int64,
            ParamKind::Float => DataType::Float64,
            ParamKind::Bool => DataType::Boolean,
        };
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), t);
    }
}

/// The SQL name of a saved query's table function.
pub fn function_name(query: &SavedQuery) -> String {
    query.name.replace('-', "_")
}

/// Registers a table function per saved query.
pub fn register_saved_functions(ctx: &SessionContext, queries: Vec<SavedQuery>) {
    for query in queries {
        let name = function_name(&query);
        ctx.register_udtf(&name, Arc::new(SavedQueryFunction { query }));
    }
}

#[derive(Debug)]
struct SavedQueryFunction {
    query: SavedQuery,
}

impl SavedQueryFunction {
    /// A bad argument, named, with the function's signature (not `run`'s
    /// `--param` usage).
    fn argument_error(&self, e: WaError) -> DataFusionError {
        let reason = match &e {
            WaError::Usage(m) => m.lines().next().unwrap_or_default().to_string(),
            other => other.to_string(),
        };
        let params: Vec<&str> = self.query.params.iter().map(|p| p.name.as_str()).collect();
        plan_datafusion_err!(
            "{reason}; call it as {}({})",
            function_name(&self.query),
            params.join(", ")
        )
    }

    /// The arguments as `--param` would give them: `name=value`, a NULL
    /// leaving the parameter to its default.
    fn given(&self, args: &[Expr], bound: Option<&StatementParams>) -> DfResult<Vec<String>> {
        let name = function_name(&self.query);
        if args.len() > self.query.params.len() {
            let declared: Vec<&str> = self.query.params.iter().map(|p| p.name.as_str()).collect();
            return plan_err!(
                "{name} takes at most {} arguments ({}), got {}",
                declared.len(),
                declared.join(", "),
                args.len()
            );
        }
        let mut given = Vec::new();
        for (param, arg) in self.query.params.iter().zip(args) {
            let value = match arg {
                Expr::Literal(v, _) => v.clone(),
                Expr::Placeholder(p) => match bound {
                    Some(StatementParams::Bound(values)) => {
                        values.get_placeholders_with_values(&p.id)?.value
                    }
                    Some(StatementParams::Describing(described)) => {
                        described.note(&p.id, param.kind);
                        ScalarValue::Null
                    }
                    None => {
                        return plan_err!(
                            "{name}: argument {} ({}) is {}, and no value is bound to it: \
                             bind one through a prepared statement, or give a literal",
                            given.len() + 1,
                            param.name,
                            p.id
                        )
                    }
                },
                other => {
                    return plan_err!(
                        "{name}: argument {} ({}) must be a literal or a parameter such as $1, \
                         not {other}",
                        given.len() + 1,
                        param.name
                    )
                }
            };
            if value.is_null() {
                continue;
            }
            let text = match &value {
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)) => s.clone(),
                other => other.to_string(),
            };
            given.push(format!("{}={text}", param.name));
        }
        Ok(given)
    }
}

impl TableFunctionImpl for SavedQueryFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let state = args
            .session()
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| plan_datafusion_err!("saved query functions need a SessionState"))?;
        let params = state.config().get_extension::<StatementParams>();
        let given = self.given(args.exprs(), params.as_deref())?;
        let describing = matches!(params.as_deref(), Some(StatementParams::Describing(_)))
            && args.exprs().iter().any(is_placeholder);
        let values = if describing {
            super::saved::bind_for_columns(&self.query, Utc::now().date_naive())
                .map_err(|e| self.argument_error(e))?
        } else {
            super::saved::bind(&self.query, &given, Utc::now().date_naive())
                .map_err(|e| self.argument_error(e))?
        };
        let mut statements = parse_statements(&self.query.sql)
            .map_err(|e| plan_datafusion_err!("{}: {e}", self.query.origin))?;
        if statements.len() != 1 {
            return plan_err!(
                "{} holds {} statements; a table function runs one",
                self.query.origin,
                statements.len()
            );
        }
        let statement = statements.remove(0);
        // Table functions are called while planning, which is synchronous
        // here; resolving the saved query's tables does not wait on any
        // I/O (they are registered in memory catalogs), so the future
        // completes on this thread.
        let plan = futures::executor::block_on(state.statement_to_plan(statement))?
            .with_param_values(values)?;
        Ok(Arc::new(ViewTable::new(plan, Some(self.query.sql.clone()))))
    }
}

fn is_placeholder(e: &Expr) -> bool {
    matches!(e, Expr::Placeholder(_))
}
