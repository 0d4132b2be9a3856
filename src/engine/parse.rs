//! SQL text into statements: DataFusion's parser, with the checks every
//! caller wants before planning (a byte order mark dropped, expressions
//! nested too deep refused).

use std::ops::ControlFlow;

use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::{Expr, Visit, Visitor};

use crate::error::{Result, WaError};

/// How deep an expression may nest (`1+1+…` nests one level a term).
/// Planning and optimizing recurse over expressions; far below where they
/// would overflow the stack or take seconds, and far above any report.
pub const MAX_EXPRESSION_DEPTH: usize = 256;

/// Splits SQL text into statements (DataFusion's parser, so `;` inside
/// strings and comments is handled). A leading byte order mark (Windows
/// editors write one) is not SQL; an expression nested deeper than
/// [`MAX_EXPRESSION_DEPTH`] is refused before anything plans it.
pub fn parse_statements(sql: &str) -> Result<Vec<Statement>> {
    let sql = sql.strip_prefix('\u{feff}').unwrap_or(sql);
    let statements: Vec<Statement> = DFParser::parse_sql(sql)
        .map_err(WaError::Query)?
        .into_iter()
        .collect();
    for (n, statement) in statements.iter().enumerate() {
        if too_deep(statement) {
            return Err(WaError::Input(format!(
                "statement {}: an expression nests more than {MAX_EXPRESSION_DEPTH} levels \
                 deep (a chain like 1+1+… counts a level a term, and so does each UNION); \
                 split it up",
                n + 1
            )));
        }
    }
    Ok(statements)
}

/// Whether a statement nests deeper than [`MAX_EXPRESSION_DEPTH`]: its
/// expressions, or its chains of set operations, inside `EXPLAIN` and
/// `COPY` too.
fn too_deep(statement: &Statement) -> bool {
    use datafusion::sql::parser::CopyToSource;
    use datafusion::sql::sqlparser::ast::Statement as Sql;
    // Set operations first: a chain too long is not visited at all.
    let chain_too_long =
        |q: &datafusion::sql::sqlparser::ast::Query| set_depth(&q.body) > MAX_EXPRESSION_DEPTH;
    match statement {
        Statement::Statement(s) => match s.as_ref() {
            Sql::Query(q) if chain_too_long(q) => true,
            other => nests_too_deep(other),
        },
        Statement::Explain(e) => too_deep(&e.statement),
        Statement::CopyTo(c) => match &c.source {
            CopyToSource::Query(q) => chain_too_long(q) || nests_too_deep(q.as_ref()),
            CopyToSource::Relation(_) => false,
        },
        _ => false,
    }
}

/// Whether an expression in `node` nests deeper than [`MAX_EXPRESSION_DEPTH`].
fn nests_too_deep(node: &impl Visit) -> bool {
    node.visit(&mut ExpressionDepth::default()).is_break()
}

/// How deep set operations (`UNION`, `EXCEPT`, `INTERSECT`) nest, counted
/// without recursion so that a long chain cannot overflow the count itself.
fn set_depth(body: &datafusion::sql::sqlparser::ast::SetExpr) -> usize {
    use datafusion::sql::sqlparser::ast::SetExpr;
    let mut deepest = 0;
    let mut pending = vec![(body, 1usize)];
    while let Some((e, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        if depth > MAX_EXPRESSION_DEPTH {
            break;
        }
        match e {
            SetExpr::SetOperation { left, right, .. } => {
                pending.push((left, depth + 1));
                pending.push((right, depth + 1));
            }
            SetExpr::Query(q) => pending.push((&q.body, depth + 1)),
            _ => {}
        }
    }
    deepest
}

#[derive(Default)]
struct ExpressionDepth {
    depth: usize,
}

impl Visitor for ExpressionDepth {
    type Break = ();

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > MAX_EXPRESSION_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}
