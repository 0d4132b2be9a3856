//! The server is read-only by design: a request holds one statement, and
//! only queries run (`SELECT`, `WITH`, `VALUES`, `EXPLAIN` of one,
//! `SHOW`, `DESCRIBE`). Everything else (DDL, DML, `COPY`, `CREATE
//! EXTERNAL TABLE`, `SET`) is refused here, before planning, so that a
//! client can neither read a file the server did not register, nor write
//! one, nor change what another client sees. The planned statement is
//! checked once more by DataFusion's own [`SQLOptions`] (a `SELECT … INTO`
//! plans as DDL).

use datafusion::execution::context::SQLOptions;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::Statement as Sql;

use crate::engine::parse::parse_statements;

/// What runs: queries only.
pub fn sql_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not SQL, or nested too deep.
    Invalid(String),
    /// Not exactly one statement.
    Count(usize),
    /// A statement that is not a query: its kind (`INSERT`, `COPY`, …).
    NotAQuery(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Invalid(m) => f.write_str(m),
            Refusal::Count(0) => f.write_str("the request holds no SQL statement"),
            Refusal::Count(n) => write!(f, "the request holds {n} statements; send one at a time"),
            Refusal::NotAQuery(kind) => write!(
                f,
                "wausage serve is read-only: {kind} is refused; only SELECT, WITH, VALUES, \
                 EXPLAIN, SHOW and DESCRIBE run"
            ),
        }
    }
}

/// The one query in `sql`, or why it does not run.
pub fn check(sql: &str) -> Result<Statement, Refusal> {
    let mut statements = parse_statements(sql).map_err(|e| Refusal::Invalid(e.to_string()))?;
    if statements.len() != 1 {
        return Err(Refusal::Count(statements.len()));
    }
    let statement = statements.remove(0);
    match refused_kind(&statement) {
        Some(kind) => Err(Refusal::NotAQuery(kind)),
        None => Ok(statement),
    }
}

/// The kind of a statement that is not a query; none for a query.
fn refused_kind(statement: &Statement) -> Option<String> {
    match statement {
        Statement::Statement(s) => refused_sql_kind(s),
        Statement::Explain(e) => refused_kind(&e.statement),
        Statement::CreateExternalTable(_) => Some("CREATE EXTERNAL TABLE".into()),
        Statement::CopyTo(_) => Some("COPY".into()),
        Statement::Reset(_) => Some("RESET".into()),
    }
}

fn refused_sql_kind(statement: &Sql) -> Option<String> {
    match statement {
        Sql::Query(_)
        | Sql::ShowVariable { .. }
        | Sql::ShowVariables { .. }
        | Sql::ShowTables { .. }
        | Sql::ShowColumns { .. }
        | Sql::ShowFunctions { .. }
        | Sql::ShowSchemas { .. }
        | Sql::ShowDatabases { .. }
        | Sql::ShowViews { .. }
        | Sql::ExplainTable { .. } => None,
        Sql::Explain { statement, .. } => refused_sql_kind(statement),
        other => Some(kind_words(&other.to_string())),
    }
}

/// The statement's leading keywords: `CREATE VIEW`, `INSERT`, `SET`.
fn kind_words(sql: &str) -> String {
    let mut words = sql.split_whitespace().map(str::to_ascii_uppercase);
    let first = words.next().unwrap_or_default();
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" => {
            let mut kind = vec![first];
            for w in words.by_ref() {
                let object = !matches!(
                    w.as_str(),
                    "OR" | "REPLACE"
                        | "TEMPORARY"
                        | "TEMP"
                        | "EXTERNAL"
                        | "UNBOUNDED"
                        | "IF"
                        | "NOT"
                        | "EXISTS"
                );
                kind.push(w);
                if object {
                    break;
                }
            }
            kind.join(" ")
        }
        _ => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_run() {
        for sql in [
            "SELECT 1",
            "WITH t AS (SELECT 1 AS a) SELECT a FROM t",
            "VALUES (1), (2)",
            "EXPLAIN SELECT 1",
            "EXPLAIN ANALYZE SELECT 1",
            "SHOW TABLES",
            "SHOW wausage.rules",
            "SHOW ALL",
            "DESCRIBE messages",
            "SHOW COLUMNS FROM messages",
            "select * from monthly_utilization($1, $2);",
        ] {
            assert!(check(sql).is_ok(), "{sql}: {:?}", check(sql));
        }
    }

    #[test]
    fn everything_else_is_refused_by_kind() {
        for (sql, kind) in [
            ("CREATE TABLE t (a INT)", "CREATE TABLE"),
            (
                "CREATE OR REPLACE VIEW v AS SELECT 1",
                "CREATE OR REPLACE VIEW",
            ),
            (
                "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc/x'",
                "CREATE EXTERNAL TABLE",
            ),
            ("INSERT INTO t VALUES (1)", "INSERT"),
            ("DELETE FROM t", "DELETE"),
            ("UPDATE t SET a = 1", "UPDATE"),
            ("DROP VIEW messages", "DROP VIEW"),
            ("COPY messages TO '/tmp/x.parquet'", "COPY"),
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("SET wausage.rules = 'cbp'", "SET"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("EXPLAIN INSERT INTO t VALUES (1)", "INSERT"),
            ("EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("RESET datafusion.execution.batch_size", "RESET"),
            (
                "CREATE FUNCTION f() RETURNS INT RETURN 1",
                "CREATE FUNCTION",
            ),
        ] {
            match check(sql) {
                Err(Refusal::NotAQuery(k)) => assert_eq!(k, kind, "{sql}"),
                other => panic!("{sql}: {other:?}"),
            }
            assert!(check(sql).unwrap_err().to_string().contains("read-only"));
        }
    }

    #[test]
    fn one_statement_a_request() {
        assert_eq!(check("SELECT 1; SELECT 2").unwrap_err(), Refusal::Count(2));
        assert_eq!(check("  ").unwrap_err(), Refusal::Count(0));
        assert_eq!(
            check("SELECT 1; DROP VIEW messages").unwrap_err(),
            Refusal::Count(2)
        );
        assert!(matches!(check("SELEC 1"), Err(Refusal::Invalid(_))));
    }
}
