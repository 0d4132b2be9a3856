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
use datafusion::sql::parser::{DFParser, Statement};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{Result, WaError};
use crate::output::BatchSink;
use crate::session;

/// Splits SQL text into statements (DataFusion's parser, so `;` inside
/// strings and comments is handled).
pub fn parse_statements(sql: &str) -> Result<Vec<Statement>> {
    let statements = DFParser::parse_sql(sql).map_err(WaError::Query)?;
    Ok(statements.into_iter().collect())
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
    sinks: &mut SinkFactory<'_>,
) -> Result<RunSummary> {
    let start = Instant::now();
    let mut rows = 0;
    for statement in parse_statements(sql)? {
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
    let settings_before = session::settings(ctx);
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
    let mut stream = df.execute_stream().await?;
    let mut sink = sinks(schema)?;
    let mut progress = Progress::new();
    let mut rows = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let cancel = tokio::signal::ctrl_c();
    tokio::pin!(cancel);
    let lost = lost_executor();
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
            _ = &mut cancel => {
                progress.finish();
                return Err(WaError::Query(datafusion::common::DataFusionError::Execution(
                    "query cancelled".into(),
                )));
            }
        }
    }
    progress.finish();
    sink.finish()?;
    Ok(rows)
}

/// On a cluster, the error to stop with once an executor is lost and the
/// query does not finish; never resolves on a local session.
async fn lost_executor() -> WaError {
    #[cfg(feature = "cluster")]
    return crate::cluster::lost_executor().await;
    #[cfg(not(feature = "cluster"))]
    std::future::pending().await
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
