//! Dispatches a parsed command line: builds the config and the session and
//! runs the command. Everything returns `WaError`, which `main` maps to an
//! exit code.

use crate::cli::{Cli, Command, ExecutorArgs, GenerateArgs};
use crate::commands::{self, generate, repl};
use crate::config::Config;
use crate::engine::session;
use crate::error::{Result, WaError};

pub async fn run(cli: Cli) -> Result<()> {
    // A server stops on SIGTERM by its own rule (finish running queries,
    // exit 0), not by the statements' one.
    if !matches!(cli.command, Some(Command::Serve(_))) {
        crate::engine::signals::install();
    }
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
    match crate::engine::logs::find_invalid_utf8(&config.data) {
        Some(place) => WaError::Input(place),
        None => error,
    }
}

async fn run_command(config: &Config, command: Command) -> Result<()> {
    let config = config.clone();
    match command {
        Command::Generate(args) => run_generate(&config, &args).await,
        Command::Ingest(args) => commands::ingest::run(&config, &args),
        Command::Queries => commands::queries::list(&config),
        Command::Report {
            month,
            quota,
            account,
        } => {
            let output = config
                .output
                .clone()
                .ok_or_else(|| WaError::Usage("report needs --output FILE.html".into()))?;
            let args = crate::commands::report::ReportArgs {
                month,
                quota,
                account,
                output,
            };
            crate::commands::report::run(&config, &args).await
        }
        Command::Bench(args) if args.scale => crate::commands::bench_scale::run(&args),
        Command::Bench(args) if args.serve => {
            crate::commands::bench_serve::run(&config, &args).await
        }
        Command::Bench(args) => crate::commands::bench::run(&config, &args).await,
        Command::Serve(args) => commands::serve::run(&config, &args).await,
        Command::Scheduler { bind } => run_scheduler(&bind).await,
        Command::Executor(args) => run_executor(&config, &args).await,
        Command::Repl => {
            let ctx = session::build_session(&config).await?;
            repl::run(ctx, config).await
        }
        Command::Query { file, sql } => commands::query::run(&config, file, sql).await,
        Command::Run {
            name,
            params,
            alert_at,
        } => commands::run::run(&config, &name, &params, alert_at).await,
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
        memory_limit: config.memory.given(),
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

async fn run_generate(config: &Config, args: &GenerateArgs) -> Result<()> {
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
        whole_seconds: args.webhooks.is_some(),
        short_ids: args.short_ids,
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
    if let Some(dir) = &args.webhooks {
        let t = std::time::Instant::now();
        let log = Config {
            data: args.out.display().to_string(),
            ..config.clone()
        };
        let ctx = session::build_session(&log).await?;
        let emitted = crate::ingest::emit::write_webhooks(&ctx, dir).await?;
        eprintln!(
            "wrote {} messages as {} webhook events in {} files (and sends.csv) to {} in {:.1} s",
            emitted.messages,
            emitted.events,
            emitted.files.len() - 1,
            dir.display(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
