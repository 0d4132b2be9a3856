//! The session's options of each kind of store, `SET aws.region = …` as
//! datafusion-cli has them: DataFusion config extensions whose values
//! are shared with the [`super::StoreRegistry`] that builds the stores,
//! so a `SET` applies to the stores built after it. A key is checked
//! against `object_store`'s own names when it is set (`aws.region`,
//! `aws.endpoint`, `aws.allow_http`, `gcp.service_account_path`,
//! `azure.account_name`, …).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::common::DataFusionError;
use object_store::aws::AmazonS3ConfigKey;
use object_store::azure::AzureConfigKey;
use object_store::gcp::GoogleConfigKey;

/// The values set under one prefix, shared by every copy of a session's
/// config and by the registry.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions(Arc<RwLock<BTreeMap<String, String>>>);

impl StoreOptions {
    /// The values as they are now.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, key: &str, value: &str) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), value.to_string());
    }

    fn entries(&self, prefix: &str) -> Vec<ConfigEntry> {
        self.snapshot()
            .into_iter()
            .map(|(key, value)| ConfigEntry {
                // Secrets are set, never shown.
                value: Some(if is_secret(&key) {
                    "********".into()
                } else {
                    value
                }),
                key: format!("{prefix}.{key}"),
                description: "an object store option (object_store's name for it)",
            })
            .collect()
    }
}

fn is_secret(key: &str) -> bool {
    ["secret", "token", "key", "password", "sas"]
        .iter()
        .any(|s| key.contains(s))
        && !key.ends_with("_id")
        && key != "sse_kms_key_id"
}

macro_rules! store_options {
    ($name:ident, $prefix:literal, $key:ty) => {
        #[doc = concat!("`SET ", $prefix, ".KEY = VALUE`: options of the `", $prefix, "` stores.")]
        #[derive(Debug, Clone, Default)]
        pub struct $name(pub StoreOptions);

        impl ConfigExtension for $name {
            const PREFIX: &'static str = $prefix;
        }

        impl ExtensionOptions for $name {
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
                // `SET aws.region` hands over `region`; table options hand
                // over the whole `aws.region`.
                let key = key.strip_prefix(concat!($prefix, ".")).unwrap_or(key);
                let key = key.to_ascii_lowercase();
                <$key>::from_str(&key).map_err(|_| {
                    DataFusionError::Configuration(format!(
                        "{}.{key} is not an option of object_store's {} stores",
                        $prefix, $prefix
                    ))
                })?;
                self.0.set(&key, value);
                Ok(())
            }

            fn entries(&self) -> Vec<ConfigEntry> {
                self.0.entries($prefix)
            }
        }
    };
}

store_options!(AwsOptions, "aws", AmazonS3ConfigKey);
store_options!(GcpOptions, "gcp", GoogleConfigKey);
store_options!(AzureOptions, "azure", AzureConfigKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_object_stores_own_and_shared_by_copies() {
        let mut aws = AwsOptions::default();
        let copy = aws.cloned();
        aws.set("region", "eu-west-1").unwrap();
        aws.set("aws.allow_http", "true").unwrap();
        assert!(aws
            .set("regoin", "x")
            .unwrap_err()
            .to_string()
            .contains("aws.regoin"));
        let seen = copy.entries();
        let keys: Vec<_> = seen.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["aws.allow_http", "aws.region"]);
        aws.set("secret_access_key", "hush").unwrap();
        let shown = aws.entries();
        let secret = shown
            .iter()
            .find(|e| e.key == "aws.secret_access_key")
            .unwrap();
        assert_eq!(secret.value.as_deref(), Some("********"));
        assert!(GcpOptions::default()
            .set("service_account_path", "/k.json")
            .is_ok());
        assert!(AzureOptions::default().set("account_name", "acct").is_ok());
    }
}
