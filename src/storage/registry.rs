//! The session's object stores: local files, and a store per bucket (or
//! container) built on first use from the environment and the session's
//! options, rebuilt when a `SET` changes them. DataFusion asks it for the
//! store of every URL it lists, reads or writes, so `--data`, `--table`,
//! `CREATE EXTERNAL TABLE`, `COPY` and saved queries all reach objects
//! the same way.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use url::Url;

use super::options::StoreOptions;

#[derive(Debug)]
pub struct StoreRegistry {
    local: Arc<dyn ObjectStore>,
    aws: StoreOptions,
    gcp: StoreOptions,
    azure: StoreOptions,
    /// Stores given by `register_store`, by `scheme://host`.
    registered: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    /// Stores built here, with the options they were built with.
    built: Mutex<HashMap<String, Built>>,
}

type Built = (BTreeMap<String, String>, Arc<dyn ObjectStore>);

impl StoreRegistry {
    /// A registry whose stores read the options the session's `SET`s change.
    pub fn new(aws: StoreOptions, gcp: StoreOptions, azure: StoreOptions) -> Self {
        Self {
            local: Arc::new(LocalFileSystem::new()),
            aws,
            gcp,
            azure,
            registered: Mutex::default(),
            built: Mutex::default(),
        }
    }

    fn build(
        &self,
        scheme: &str,
        url: &Url,
        options: &BTreeMap<String, String>,
    ) -> Result<Arc<dyn ObjectStore>> {
        let failed = |e: object_store::Error| {
            DataFusionError::Configuration(format!("{url}: cannot set up its object store: {e}"))
        };
        let unknown = |key: &str| {
            DataFusionError::Configuration(format!("{scheme} store option {key} is unknown"))
        };
        let store: Arc<dyn ObjectStore> = match scheme {
            "s3" | "s3a" => {
                let mut b = AmazonS3Builder::from_env().with_url(url.as_str());
                for (k, v) in options {
                    b = b.with_config(k.parse().map_err(|_| unknown(k))?, v);
                }
                Arc::new(b.build().map_err(failed)?)
            }
            "gs" | "gcs" => {
                let mut b = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
                for (k, v) in options {
                    b = b.with_config(k.parse().map_err(|_| unknown(k))?, v);
                }
                Arc::new(b.build().map_err(failed)?)
            }
            "az" | "abfs" | "abfss" | "azure" => {
                let mut b = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
                for (k, v) in options {
                    b = b.with_config(k.parse().map_err(|_| unknown(k))?, v);
                }
                Arc::new(b.build().map_err(failed)?)
            }
            other => {
                return Err(DataFusionError::Configuration(format!(
                    "{url}: no object store for scheme {other}:// (wausage reads local paths, \
                     s3://, gs:// and az://)"
                )))
            }
        };
        Ok(store)
    }

    /// A registry whose stores come from the environment alone (outputs,
    /// `ingest --out`, a cluster's processes).
    pub fn from_env() -> Self {
        Self::new(Default::default(), Default::default(), Default::default())
    }

    fn options(&self, scheme: &str) -> BTreeMap<String, String> {
        match scheme {
            "s3" | "s3a" => self.aws.snapshot(),
            "gs" | "gcs" => self.gcp.snapshot(),
            "az" | "abfs" | "abfss" | "azure" => self.azure.snapshot(),
            _ => BTreeMap::new(),
        }
    }
}

/// A store's key: `scheme://host[:port]`, as DataFusion's own registry
/// keys them.
fn store_key(url: &Url) -> String {
    format!(
        "{}://{}",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort]
    )
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        let mut registered = self.registered.lock().unwrap_or_else(|p| p.into_inner());
        registered.insert(store_key(url), store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let mut registered = self.registered.lock().unwrap_or_else(|p| p.into_inner());
        registered.remove(&store_key(url)).ok_or_else(|| {
            DataFusionError::Execution(format!("no object store registered for {url}"))
        })
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let key = store_key(url);
        if let Some(store) = self
            .registered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Arc::clone(store));
        }
        let scheme = url.scheme().to_ascii_lowercase();
        if scheme == "file" {
            return Ok(Arc::clone(&self.local));
        }
        let options = self.options(&scheme);
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((with, store)) = built.get(&key) {
            if *with == options {
                return Ok(Arc::clone(store));
            }
        }
        let store = self.build(&scheme, url, &options)?;
        built.insert(key, (options, Arc::clone(&store)));
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::common::config::ExtensionOptions;

    use super::*;
    use crate::storage::AwsOptions;

    #[test]
    fn a_store_per_bucket_rebuilt_when_its_options_change() {
        let aws = AwsOptions::default();
        let registry = StoreRegistry::new(
            aws.0.clone(),
            StoreOptions::default(),
            StoreOptions::default(),
        );
        let url = Url::parse("s3://bucket-a/logs/").unwrap();
        let first = registry.get_store(&url).unwrap();
        let again = registry
            .get_store(&Url::parse("s3://bucket-a/other").unwrap())
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other = registry
            .get_store(&Url::parse("s3://bucket-b/").unwrap())
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        let mut set = aws.clone();
        set.set("region", "eu-west-1").unwrap();
        let rebuilt = registry.get_store(&url).unwrap();
        assert!(!Arc::ptr_eq(&first, &rebuilt));
        let local = registry
            .get_store(&Url::parse("file:///").unwrap())
            .unwrap();
        assert!(local.to_string().contains("LocalFileSystem"));
        let err = registry
            .get_store(&Url::parse("hdfs://nn/x").unwrap())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("no object store for scheme hdfs://"),
            "{err}"
        );
    }
}
