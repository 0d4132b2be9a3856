//! The `wausage.*` settings: a DataFusion config extension, so that `SET`
//! works in any SQL, `SHOW ALL` lists them and a cluster's client carries
//! them. One definition of each, with its default and its check.

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::prelude::SessionContext;
use wausage_udfs::rules::RuleChoice;

/// The `wausage.*` settings namespace: `SET wausage.rules = 'pmp'`.
#[derive(Debug, Clone)]
pub struct WaOptions {
    pub rules: RuleChoice,
    /// `pmp26`'s free service messages per business phone number and month
    /// (rule P5): a setting, as the platform may change it.
    pub service_allowance: u64,
    /// The query memory pool, as the session was started with it
    /// (`--memory-limit`): shown, not set.
    pub memory_limit: String,
}

/// The platform's monthly service allowance as announced for October 2026.
pub const DEFAULT_SERVICE_ALLOWANCE: u64 = 1000;

impl Default for WaOptions {
    fn default() -> Self {
        Self {
            rules: RuleChoice::default(),
            service_allowance: DEFAULT_SERVICE_ALLOWANCE,
            memory_limit: "none".into(),
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
            "memory_limit" => Err(Configuration(
                "wausage.memory_limit is the memory pool the session started with; give \
                 --memory-limit SIZE (or none) when starting wausage"
                    .into(),
            )),
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
            ConfigEntry {
                key: "wausage.memory_limit".into(),
                value: Some(self.memory_limit.clone()),
                description:
                    "the query memory pool (--memory-limit; by default 80% of the memory available)",
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
