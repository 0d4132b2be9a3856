//! A prefix of a bucket as a folder: list, fetch, put and delete its
//! objects by their keys below the prefix, for commands that write a
//! whole folder (`ingest --out s3://…`). Calls wait on a thread of their
//! own, as an upload does, so synchronous commands can use them.

use std::path::Path;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};

use super::registry::StoreRegistry;
use crate::error::{Result, WaError};

pub struct Bucket {
    /// `s3://bucket/prefix`, without a trailing `/`.
    location: String,
    store: Arc<dyn ObjectStore>,
    prefix: Key,
}

impl Bucket {
    /// The folder at `location` (`s3://bucket/prefix/`), its store built
    /// from the environment.
    pub fn open(location: &str) -> Result<Bucket> {
        let (store_url, prefix) = super::split_url(location)?;
        let stores = StoreRegistry::from_env();
        let store = datafusion::execution::object_store::ObjectStoreRegistry::get_store(
            &stores, &store_url,
        )
        .map_err(|e| WaError::Input(format!("{location}: {e}")))?;
        Ok(Bucket {
            location: location.trim_end_matches('/').to_string(),
            store,
            prefix,
        })
    }

    /// The URL of the object at `rel`.
    pub fn url(&self, rel: &str) -> String {
        format!("{}/{rel}", self.location)
    }

    fn key(&self, rel: &str) -> Key {
        Key::from_iter(self.prefix.parts().chain(Key::from(rel).parts()))
    }

    fn failed(&self, rel: &str) -> impl Fn(object_store::Error) -> WaError + '_ {
        let url = if rel.is_empty() {
            format!("{}/", self.location)
        } else {
            self.url(rel)
        };
        move |e| WaError::Input(format!("{url}: {}", super::describe_error(&e)))
    }

    /// Every object's key below the prefix, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let listed: Vec<_> = super::wait(
            self.store
                .list(Some(&self.prefix))
                .map_err(self.failed(""))
                .try_collect(),
        )?;
        let mut keys: Vec<String> = listed
            .into_iter()
            .filter_map(|meta| {
                meta.location.prefix_match(&self.prefix).map(|parts| {
                    parts
                        .map(|p| p.as_ref().to_string())
                        .collect::<Vec<_>>()
                        .join("/")
                })
            })
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Copies the object at `rel` to the local `file`.
    pub fn fetch(&self, rel: &str, file: &Path) -> Result<()> {
        let key = self.key(rel);
        let bytes = super::wait(async {
            self.store
                .get(&key)
                .await
                .map_err(self.failed(rel))?
                .bytes()
                .await
                .map_err(self.failed(rel))
        })?;
        std::fs::write(file, bytes).map_err(|e| WaError::io(file.display().to_string(), e))
    }

    /// Puts the local `file` at `rel`, whole or not at all.
    pub fn put(&self, rel: &str, file: &Path) -> Result<()> {
        let store = Arc::clone(&self.store);
        super::upload_file(&self.url(rel), file, &move |_| Ok(Arc::clone(&store)))
    }

    pub fn delete(&self, rel: &str) -> Result<()> {
        let key = self.key(rel);
        super::wait(async { self.store.delete(&key).await.map_err(self.failed(rel)) })
    }
}
