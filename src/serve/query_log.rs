//! One line on stderr per query, written when the query ends however it
//! ends (finished, failed, timed out, or dropped by a client that went
//! away): client address, the SQL's first 80 characters on one line,
//! rows, bytes sent, time and outcome. Tokens travel in headers and never
//! reach it.

use std::net::SocketAddr;
use std::time::Instant;

/// How a query ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Failed(String),
    TimedOut,
    /// The stream was dropped before its end: the client disconnected or
    /// stopped reading.
    Cancelled,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Finished => f.write_str("ok"),
            Outcome::Failed(m) => write!(f, "error: {}", one_line(m, 200)),
            Outcome::TimedOut => f.write_str("timed out"),
            Outcome::Cancelled => f.write_str("cancelled by the client"),
        }
    }
}

/// A query's line, written when it is dropped.
pub struct QueryLog {
    client: Option<SocketAddr>,
    sql: String,
    start: Instant,
    pub rows: u64,
    pub bytes: u64,
    pub outcome: Option<Outcome>,
}

impl QueryLog {
    pub fn new(client: Option<SocketAddr>, sql: &str) -> Self {
        Self {
            client,
            sql: one_line(sql, 80),
            start: Instant::now(),
            rows: 0,
            bytes: 0,
            outcome: None,
        }
    }

    pub fn line(&self) -> String {
        let client = self
            .client
            .map_or_else(|| "-".to_string(), |a| a.to_string());
        format!(
            "query client={client} rows={} bytes={} time={:.3}s outcome={} sql={:?}",
            self.rows,
            self.bytes,
            self.start.elapsed().as_secs_f64(),
            self.outcome.as_ref().unwrap_or(&Outcome::Cancelled),
            self.sql,
        )
    }
}

impl Drop for QueryLog {
    fn drop(&mut self) {
        eprintln!("{}", self.line());
    }
}

/// `text` on one line (whitespace runs as one space), at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &joined[..i]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_the_client_sql_and_outcome() {
        let sql = format!(
            "SELECT\n  count(*)\nFROM messages WHERE x = '{}'",
            "é".repeat(100)
        );
        let mut log = QueryLog::new(Some("127.0.0.1:5000".parse().unwrap()), &sql);
        log.rows = 3;
        log.bytes = 120;
        let line = log.line();
        assert!(
            line.starts_with("query client=127.0.0.1:5000 rows=3 bytes=120 time="),
            "{line}"
        );
        assert!(line.contains("outcome=cancelled by the client"), "{line}");
        assert!(
            line.contains("sql=\"SELECT count(*) FROM messages WHERE x = 'éé"),
            "{line}"
        );
        let shown: String = line.split("sql=").nth(1).unwrap().to_string();
        assert_eq!(shown.trim_matches('"').chars().count(), 81, "{shown}");
        log.outcome = Some(Outcome::Failed("table 'x'\nnot found".into()));
        assert!(log.line().contains("outcome=error: table 'x' not found"));
        std::mem::forget(log);
    }
}
