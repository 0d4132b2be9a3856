//! rustyline glue: a statement is complete at `;` (so it may span lines),
//! a meta-command at the end of its line; Tab completes SQL keywords and
//! the session's tables, columns and functions.

use std::borrow::Cow;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "OUTER",
    "FULL",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DISTINCT",
    "UNION",
    "ALL",
    "WITH",
    "EXPLAIN",
    "ANALYZE",
    "CREATE",
    "EXTERNAL",
    "TABLE",
    "VIEW",
    "STORED",
    "PARQUET",
    "CSV",
    "LOCATION",
    "COPY",
    "TO",
    "SHOW",
    "TABLES",
    "FUNCTIONS",
    "COLUMNS",
    "SET",
    "DESC",
    "ASC",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "DATE_TRUNC",
    "INTERVAL",
    "TIMESTAMP",
    "UNNEST",
    "OVER",
    "PARTITION",
    "FILTER",
    "CAST",
    "TRUE",
    "FALSE",
];

/// Whether the buffer is a complete unit of input.
pub fn is_complete(buffer: &str) -> bool {
    let t = buffer.trim();
    t.is_empty() || t.starts_with('\\') || t.ends_with(';')
}

#[derive(Default)]
pub struct ReplHelper {
    /// Table, column and function names of the session.
    pub names: Vec<String>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((start, vec![]));
        }
        let lower = word.to_ascii_lowercase();
        let upper_case = word.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        let mut out: Vec<Pair> = vec![];
        for k in KEYWORDS {
            if k.to_ascii_lowercase().starts_with(&lower) {
                let text = if upper_case {
                    k.to_string()
                } else {
                    k.to_ascii_lowercase()
                };
                out.push(Pair {
                    display: text.clone(),
                    replacement: text,
                });
            }
        }
        for n in &self.names {
            if n.to_ascii_lowercase().starts_with(&lower)
                && !out.iter().any(|p| &p.replacement == n)
            {
                out.push(Pair {
                    display: n.clone(),
                    replacement: n.clone(),
                });
            }
        }
        Ok((start, out))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;
    use rustyline::history::DefaultHistory;

    #[test]
    fn statements_end_at_semicolon() {
        assert!(!is_complete("SELECT 1"));
        assert!(is_complete("SELECT 1\n;"));
        assert!(is_complete("\\d"));
    }

    #[test]
    fn completes_names_and_keywords() {
        let h = ReplHelper {
            names: vec!["conversations".into(), "country".into()],
        };
        let history = DefaultHistory::new();
        let ctx = Context::new(&history);
        let (start, c) = h.complete("SELECT * FROM conv", 18, &ctx).unwrap();
        assert_eq!(start, 14);
        assert_eq!(
            c.iter().map(|p| p.replacement.as_str()).collect::<Vec<_>>(),
            ["conversations"]
        );
        let (_, c) = h.complete("sel", 3, &ctx).unwrap();
        assert_eq!(c[0].replacement, "select");
    }
}
