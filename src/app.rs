//! Dispatches a parsed command line: builds the config and the session and
//! runs the command. Everything returns `WaError`, which `main` maps to an
//! exit code.

use std::io::BufWriter;

use arrow::datatypes::SchemaRef;

use crate::cli::{Cli, Command, ExecutorArgs, GenerateArgs};
use crate::config::Config;
use crate::error::{Result, WaError};
use crate::output::{self, BatchSink, SinkOptions};
use crate::{exec, generate, repl, saved, session};

/// The sink for one result, per the config's format and output file.
pub fn sink(config: &Config, schema: SchemaRef) -> Result<Box<dyn BatchSink>> {
    let opts = SinkOptions {
        max_rows: config.max_rows,
    };
    match &config.output {
        Some(path) => output::file_sink(config.format, schema, path, &opts),
        None => output::writer_sink(
            config.format,
            schema,
            BufWriter::new(std::io::stdout()),
            &opts,
        ),
    }
}

/// With an output file, a run may write one result (see [`exec::Results`]).
pub fn results(config: &Config) -> exec::Results {
    match config.output {
        Some(_) => exec::Results::One,
        None => exec::Results::Any,
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    let config = Config::from_args(&cli.global)?;
    run_command(&config, cli.command.unwrap_or(Command::Repl))
        .await
        .map_err(|e| explain(e, &config))
}

/// The log's reader fails on a string that is not UTF-8 without naming the
/// file, column or row: find them.
fn explain(error: WaError, config: &Config) -> WaError {
    if !error.to_string().contains("non UTF-8") {
        return error;
    }
    match crate::logs::find_invalid_utf8(&config.data) {
        Some(place) => WaError::Input(place),
        None => error,
    }
}

async fn run_command(config: &Config, command: Command) -> Result<()> {
    let config = config.clone();
    match command {
        Command::Generate(args) => run_generate(&args),
        Command::Queries => saved::list(&config),
        Command::Report {
            month,
            quota,
            account,
        } => {
            let output = config
                .output
                .clone()
                .ok_or_else(|| WaError::Usage("report needs --output FILE.html".into()))?;
            let args = crate::report::ReportArgs {
                month,
                quota,
                account,
                output,
            };
            crate::report::run(&config, &args).await
        }
        Command::Bench(args) => crate::bench::run(&config, &args).await,
        Command::Scheduler { bind } => run_scheduler(&bind).await,
        Command::Executor(args) => run_executor(&config, &args).await,
        Command::Repl => {
            let ctx = session::build_session(&config).await?;
            repl::run(ctx, config).await
        }
        Command::Query { file, sql } => {
            let sql = match (file, sql) {
                (Some(f), None) => std::fs::read_to_string(&f)
                    .map_err(|e| WaError::io(f.display().to_string(), e))?,
                (None, Some(s)) => s,
                _ => return Err(WaError::Usage("query takes SQL text or -f FILE".into())),
            };
            let ctx = session::build_session(&config).await?;
            exec::run_sql(&ctx, &sql, None, results(&config), &mut |schema| {
                sink(&config, schema)
            })
            .await?;
            Ok(())
        }
        Command::Run {
            name,
            params,
            alert_at,
        } => saved::run(&config, &name, &params, alert_at).await,
    }
}

#[cfg(feature = "cluster")]
async fn run_scheduler(bind: &str) -> Result<()> {
    crate::cluster::run_scheduler(bind).await
}

#[cfg(feature = "cluster")]
async fn run_executor(config: &Config, args: &ExecutorArgs) -> Result<()> {
    crate::cluster::run_executor(&crate::cluster::ExecutorOptions {
        scheduler: args.scheduler.clone(),
        bind: args.bind.clone(),
        grpc_bind: args.grpc_bind.clone(),
        work_dir: args.work_dir.clone(),
        concurrency: args.concurrency,
        memory_limit: config.memory_limit,
    })
    .await
}

#[cfg(not(feature = "cluster"))]
async fn run_scheduler(_bind: &str) -> Result<()> {
    Err(not_built())
}

#[cfg(not(feature = "cluster"))]
async fn run_executor(_config: &Config, _args: &ExecutorArgs) -> Result<()> {
    Err(not_built())
}

#[cfg(not(feature = "cluster"))]
fn not_built() -> WaError {
    WaError::Usage("this wausage was built without the `cluster` feature".into())
}

fn run_generate(args: &GenerateArgs) -> Result<()> {
    let start = chrono::NaiveDate::parse_from_str(&args.start, "%Y-%m-%d").map_err(|_| {
        WaError::Usage(format!(
            "--start: expected YYYY-MM-DD, got {:?}",
            args.start
        ))
    })?;
    let opts = generate::GenerateOptions {
        out: args.out.clone(),
        messages: args.messages,
        customers: args.customers,
        accounts: args.accounts,
        seed: args.seed,
        start,
        days: args.days,
        partition_by_month: args.partition_by_month,
        rows_per_file: args.rows_per_file,
    };
    let t = std::time::Instant::now();
    let summary = generate::generate(&opts)?;
    eprintln!(
        "wrote {} messages ({} rows) in {} files to {} in {:.1} s",
        summary.messages,
        summary.rows,
        summary.files.len(),
        args.out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
