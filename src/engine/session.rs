//! One function turns a `Config` into a ready `SessionContext`: memory
//! pool and spill directory, partitions, every wausage function, the
//! message log, extra tables and the views. Local and cluster sessions are
//! built the same way.

use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::settings::{settings, WaOptions, DEFAULT_SERVICE_ALLOWANCE};
use super::{logs, saved, saved_functions, views};
use crate::config::Config;
use crate::error::{Result, WaError};
use crate::storage::{AwsOptions, AzureOptions, GcpOptions, StoreRegistry};

/// Sets `wausage.{key}` on the session, as `SET` would, and re-registers
/// the views that read it.
pub async fn apply_setting(ctx: &SessionContext, key: &str, value: &str) -> Result<()> {
    let before = settings(ctx);
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .set(&format!("wausage.{key}"), value)?;
    refresh_views(ctx, &before).await
}

/// Re-registers the views that read a setting that differs from `before`
/// (after a `SET`).
pub async fn refresh_views(ctx: &SessionContext, before: &WaOptions) -> Result<()> {
    let after = settings(ctx);
    if after.rules != before.rules {
        views::register_pricing_views(ctx, after.rules).await?;
    }
    if after.service_allowance != before.service_allowance {
        views::register_settings_view(ctx, after.service_allowance).await?;
    }
    Ok(())
}

/// Builds the session for `config`, with the log registered and its views.
pub async fn build_session(config: &Config) -> Result<SessionContext> {
    let session_config = SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(config.partitions.max(1))
        .with_option_extension(WaOptions {
            rules: config.rules,
            memory_limit: config.memory.to_string(),
            ..WaOptions::default()
        });
    // `SET aws.region = …` and the like reach the stores built after it.
    let (aws, gcp, azure) = (
        AwsOptions::default(),
        GcpOptions::default(),
        AzureOptions::default(),
    );
    let stores = StoreRegistry::new(aws.0.clone(), gcp.0.clone(), azure.0.clone());
    let session_config = session_config
        .with_option_extension(aws)
        .with_option_extension(gcp)
        .with_option_extension(azure);
    let mut session_config = session_config;
    // Skip the partial phase of aggregations whose groups barely shrink the
    // input (10% distinct keys in the first 100k rows, not DataFusion's 80%):
    // for the windowing aggregates a partial phase only buffers rows to copy
    // them on, and a bursty log in time order repeats a customer a few times
    // within 100k rows, which DataFusion's threshold reads as reducing.
    session_config
        .options_mut()
        .execution
        .skip_partial_aggregation_probe_ratio_threshold = 0.1;
    // `--data` takes a directory tree: every file under it is part of the
    // log, not only the top level (DataFusion's default follows Hive and
    // skips subdirectories without `key=value` names).
    session_config
        .options_mut()
        .execution
        .listing_table_ignore_subdirectory = false;
    let mut runtime = RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(stores));
    if let Some(limit) = config.memory.pool() {
        let pool = TrackConsumersPool::new(
            FairSpillPool::new(limit),
            NonZeroUsize::new(5).expect("non-zero"),
        );
        runtime = runtime.with_memory_pool(Arc::new(pool));
    }
    if let Some(dir) = &config.spill_dir {
        runtime = runtime.with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![dir.clone()])),
        );
    }
    let runtime = runtime.build_arc()?;
    // One windowing path for every budget: the bucketed operator spills
    // past the pool (`wausage_udfs::physical_plan::spill_ranges`).
    let windowing_rule = wausage_udfs::single_phase_windowing_rule();
    let ctx = match &config.cluster {
        None => SessionContext::new_with_state(
            SessionStateBuilder::new()
                .with_config(session_config)
                .with_runtime_env(runtime)
                .with_default_features()
                .with_physical_optimizer_rule(windowing_rule)
                .build(),
        ),
        Some(url) => remote_context(url, session_config, runtime).await?,
    };
    wausage_udfs::register_all(&ctx);
    saved_functions::register_saved_functions(&ctx, saved::all(config)?);
    let reads = match config.cluster {
        None => logs::LogReads::Hinted,
        Some(_) => logs::LogReads::Cast,
    };
    logs::register_log(&ctx, "messages_raw", &config.data, reads)
        .await
        .map_err(|e| match e {
            WaError::Input(m) => WaError::Input(format!("--data: {m}")),
            other => other,
        })?;
    for spec in &config.tables {
        logs::register_table(&ctx, spec).await?;
    }
    if !ctx.table_exist("contracts")? {
        register_empty_contracts(&ctx).await?;
    }
    views::register_views(&ctx, config.rules, DEFAULT_SERVICE_ALLOWANCE).await?;
    Ok(ctx)
}

#[cfg(feature = "cluster")]
async fn remote_context(
    url: &str,
    config: SessionConfig,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> Result<SessionContext> {
    super::remote::remote_context(url, config, runtime).await
}

#[cfg(not(feature = "cluster"))]
async fn remote_context(
    url: &str,
    _config: SessionConfig,
    _runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> Result<SessionContext> {
    Err(WaError::Usage(format!(
        "--cluster {url}: this wausage was built without the `cluster` feature"
    )))
}

/// Without `--table contracts=FILE`, an empty `contracts` view, so that
/// reports can look up per-account quotas either way. A view over VALUES,
/// not an in-memory table: a cluster's plans can carry the one and not the
/// other.
async fn register_empty_contracts(ctx: &SessionContext) -> Result<()> {
    ctx.sql(
        "CREATE VIEW contracts AS
         SELECT account_id, monthly_quota
         FROM (VALUES (CAST(NULL AS VARCHAR), CAST(NULL AS BIGINT))) AS t(account_id, monthly_quota)
         WHERE account_id IS NOT NULL",
    )
    .await?
    .collect()
    .await?;
    Ok(())
}
