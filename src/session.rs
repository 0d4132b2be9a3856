//! One function turns a `Config` into a ready `SessionContext`: memory
//! pool and spill directory, partitions, every wausage function, the
//! message log, extra tables and the views. Local and cluster sessions are
//! built the same way.

use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use wausage_udfs::rules::RuleChoice;

use crate::config::Config;
use crate::error::{Result, WaError};
use crate::{logs, views};

/// The `wausage.*` settings namespace: `SET wausage.rules = 'pmp'`.
#[derive(Debug, Clone)]
pub struct WaOptions {
    pub rules: RuleChoice,
    /// `pmp26`'s free service messages per business phone number and month
    /// (rule P5): a setting, as the platform may change it.
    pub service_allowance: u64,
}

/// The platform's monthly service allowance as announced for October 2026.
pub const DEFAULT_SERVICE_ALLOWANCE: u64 = 1000;

impl Default for WaOptions {
    fn default() -> Self {
        Self {
            rules: RuleChoice::default(),
            service_allowance: DEFAULT_SERVICE_ALLOWANCE,
        }
    }
}

/// Reads a service allowance: a whole number of messages, zero or more.
pub fn parse_service_allowance(value: &str) -> std::result::Result<u64, String> {
    value.trim().replace('_', "").parse().map_err(|_| {
        format!(
            "wausage.service_allowance must be a whole number of messages, 0 or more; got {value:?}"
        )
    })
}

impl ConfigExtension for WaOptions {
    const PREFIX: &'static str = "wausage";
}

impl ExtensionOptions for WaOptions {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> datafusion::common::Result<()> {
        use datafusion::common::DataFusionError::Configuration;
        match key {
            "rules" => {
                self.rules = RuleChoice::parse(value).ok_or_else(|| {
                    Configuration(format!(
                        "unknown rule set {value:?}; expected one of {}",
                        RuleChoice::NAMES
                    ))
                })?;
                Ok(())
            }
            "service_allowance" => {
                self.service_allowance = parse_service_allowance(value).map_err(Configuration)?;
                Ok(())
            }
            _ => Err(Configuration(format!(
                "unknown setting wausage.{key}; known: wausage.rules, wausage.service_allowance"
            ))),
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        vec![
            ConfigEntry {
                key: "wausage.rules".into(),
                value: Some(self.rules.as_str().into()),
                description: "rule set that prices messages: auto, cbp, pmp or pmp26",
            },
            ConfigEntry {
                key: "wausage.service_allowance".into(),
                value: Some(self.service_allowance.to_string()),
                description: "free service messages per business phone number and month (pmp26)",
            },
        ]
    }
}

/// The session's `wausage.*` settings now.
pub fn settings(ctx: &SessionContext) -> WaOptions {
    ctx.state()
        .config()
        .options()
        .extensions
        .get::<WaOptions>()
        .cloned()
        .unwrap_or_default()
}

/// The rule set the session's settings hold now.
pub fn current_rules(ctx: &SessionContext) -> RuleChoice {
    settings(ctx).rules
}

/// Checks `value` for the setting `wausage.{key}` without a session: the
/// error says what the setting takes.
pub fn check_setting(key: &str, value: &str) -> std::result::Result<(), String> {
    let mut options = WaOptions::default();
    options.set(key, value).map_err(|e| match e {
        datafusion::common::DataFusionError::Configuration(m) => m,
        other => other.to_string(),
    })
}

/// Sets `wausage.{key}` on the session, as `SET` would, and re-registers
/// the views that read it.
pub async fn apply_setting(ctx: &SessionContext, key: &str, value: &str) -> Result<()> {
    let before = settings(ctx);
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .set(&format!("{}.{key}", WaOptions::PREFIX), value)?;
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
    let mut session_config = SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(config.partitions.max(1))
        .with_option_extension(WaOptions {
            rules: config.rules,
            ..WaOptions::default()
        });
    // Skip the partial phase of aggregations whose groups barely shrink the
    // input (10% distinct keys in the first 100k rows, not DataFusion's 80%):
    // for the windowing aggregates a partial phase only buffers rows to copy
    // them on, and a bursty log in time order repeats a customer a few times
    // within 100k rows. Measured: 26 s instead of 38 s on 50M messages.
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
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = config.memory_limit {
        let pool = TrackConsumersPool::new(
            FairSpillPool::new(limit),
            NonZeroUsize::new(5).expect("non-zero"),
        );
        runtime = runtime.with_memory_pool(Arc::new(pool));
    }
    let runtime = runtime.build_arc()?;
    let windowing_rule = match config.memory_limit {
        None => wausage_udfs::single_phase_windowing_rule(),
        Some(_) => wausage_udfs::single_phase_windowing_rule_without_buckets(),
    };
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
    crate::cluster::remote_context(url, config, runtime).await
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
