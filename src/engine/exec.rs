//! The one path that runs SQL, for the REPL, `query`, `run` and reports:
//! parse the statements, plan each (binding typed parameters), stream its
//! batches into a sink, and cancel on Ctrl-C. A progress spinner appears on
//! a terminal's stderr for queries that run longer than a second.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::parse::parse_statements;
use super::{session, settings, signals};
use crate::error::{Result, WaError};
use crate::output::{BatchSink, Results};

/// Whether a statement returns a result to write (a query, `EXPLAIN`,
/// `SHOW`, `COPY`'s row count), as opposed to setting or defining
/// something. Unknown kinds count as returning one.
pub fn returns_rows(statement: &Statement) -> bool {
    use datafusion::sql::sqlparser::ast::Statement as S;
    match statement {
        Statement::CreateExternalTable(_) => false,
        Statement::Statement(s) => !matches!(
            s.as_ref(),
            S::Set(_)
                | S::CreateView { .. }
                | S::CreateTable(_)
                | S::CreateSchema { .. }
                | S::CreateDatabase { .. }
                | S::Drop { .. }
                | S::DropFunction { .. }
                | S::CreateFunction(_)
        ),
        _ => true,
    }
}

/// Creates the sink for a result of the given schema.
pub type SinkFactory<'a> = dyn FnMut(SchemaRef) -> Result<Box<dyn BatchSink>> + 'a;

/// What running statements produced.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub rows: u64,
    pub elapsed: Duration,
}

/// Runs every statement in `sql` in order; the first error stops the run.
/// Statements that return no columns (DDL, SET) write nothing.
pub async fn run_sql(
    ctx: &SessionContext,
    sql: &str,
    params: Option<&ParamValues>,
    results: Results,
    sinks: &mut SinkFactory<'_>,
) -> Result<RunSummary> {
    let start = Instant::now();
    let mut rows = 0;
    let statements = parse_statements(sql)?;
    if results == Results::One {
        let returning: Vec<String> = statements
            .iter()
            .enumerate()
            .filter(|(_, s)| returns_rows(s))
            .map(|(n, _)| (n + 1).to_string())
            .collect();
        if returning.len() > 1 {
            return Err(WaError::Usage(format!(
                "statements {} each return a result, and one output file holds one; \
                 run them one by one with an --output each (nothing was run)",
                returning.join(", ")
            )));
        }
    }
    for statement in statements {
        rows += run_statement(ctx, statement, params, sinks).await?;
    }
    Ok(RunSummary {
        rows,
        elapsed: start.elapsed(),
    })
}

async fn run_statement(
    ctx: &SessionContext,
    statement: Statement,
    params: Option<&ParamValues>,
    sinks: &mut SinkFactory<'_>,
) -> Result<u64> {
    // A signal at any point of the statement, planning included, stops it:
    // dropping its future drops the stream and the sink, which removes a
    // temporary output file.
    let mut running = signals::Running::start();
    tokio::select! {
        result = statement_rows(ctx, statement, params, sinks) => result,
        signal = running.stopped() => Err(WaError::Stopped(signal)),
    }
}

async fn statement_rows(
    ctx: &SessionContext,
    statement: Statement,
    params: Option<&ParamValues>,
    sinks: &mut SinkFactory<'_>,
) -> Result<u64> {
    let settings_before = settings::settings(ctx);
    let state = ctx.state();
    let mut plan = state.statement_to_plan(statement).await?;
    if let Some(p) = params {
        plan = plan.with_param_values(p.clone())?;
    }
    let df = ctx.execute_logical_plan(plan).await?;
    session::refresh_views(ctx, &settings_before).await?;
    let schema: SchemaRef = df.schema().inner().clone();
    if schema.fields().is_empty() {
        df.collect().await?;
        return Ok(0);
    }
    // Warnings belong to the statement that raised them.
    wausage_udfs::warnings::take_delivered_before_sent();
    let mut stream = df.execute_stream().await?;
    let mut sink = sinks(schema)?;
    let mut progress = Progress::new();
    let mut rows = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let lost = lost_executor(ctx);
    tokio::pin!(lost);
    loop {
        tokio::select! {
            next = stream.next() => match next {
                Some(batch) => {
                    let batch: RecordBatch = batch?;
                    rows += batch.num_rows() as u64;
                    sink.write_batch(&batch)?;
                    progress.update(rows);
                }
                None => break,
            },
            _ = tick.tick() => progress.update(rows),
            error = &mut lost => {
                progress.finish();
                return Err(error);
            }
        }
    }
    progress.finish();
    sink.finish()?;
    if let Some(w) = wausage_udfs::warnings::take_delivered_before_sent() {
        eprintln!(
            "warning: {} message(s) have a delivered_at before their sent_at (a skewed clock); \
             each counts at its sent_at: {}{}",
            w.messages,
            w.first_ids.join(", "),
            if w.messages > w.first_ids.len() as u64 {
                ", …"
            } else {
                ""
            }
        );
    }
    Ok(rows)
}

/// On a cluster, the error to stop with once an executor is lost and the
/// query does not finish; never resolves on a local session.
async fn lost_executor(ctx: &SessionContext) -> WaError {
    #[cfg(feature = "cluster")]
    return super::remote::lost_executor(ctx).await;
    #[cfg(not(feature = "cluster"))]
    {
        let _ = ctx;
        std::future::pending().await
    }
}

/// A spinner on stderr, shown only on a terminal and after one second.
struct Progress {
    start: Instant,
    bar: Option<ProgressBar>,
    enabled: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            bar: None,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn update(&mut self, rows: u64) {
        if !self.enabled || self.start.elapsed() < Duration::from_secs(1) {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {elapsed} running… {msg}")
                    .expect("valid template"),
            )
        });
        bar.set_message(format!("{rows} rows"));
        bar.tick();
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
