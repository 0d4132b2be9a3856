//! A finished local file put at an object's key whole or not at all: one
//! multipart upload, completed only after its last part is stored, and
//! aborted on any error, so a reader never sees half a result and the
//! store keeps no parts. Results are written to a local temporary file
//! first (the writers are synchronous, as for local outputs), so a query
//! that fails never starts an upload.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Result, WaError};

/// Bytes a part: above S3's 5 MiB floor for every part but the last.
const PART: usize = 8 << 20;

/// Uploads `file` to `location` (`s3://bucket/key`) in the store
/// `store_for` gives for the location's bucket, waiting for it on a
/// thread of its own ([`super::wait`]).
pub fn upload_file(
    location: &str,
    file: &Path,
    store_for: &dyn Fn(&url::Url) -> datafusion::common::Result<Arc<dyn ObjectStore>>,
) -> Result<()> {
    let (store_url, key) = super::split_url(location)?;
    let store = store_for(&store_url).map_err(|e| WaError::Input(format!("{location}: {e}")))?;
    let mut source =
        std::fs::File::open(file).map_err(|e| WaError::io(file.display().to_string(), e))?;
    super::wait(upload(store.as_ref(), &key, &mut source, location))
}

async fn upload(
    store: &dyn ObjectStore,
    key: &object_store::path::Path,
    source: &mut std::fs::File,
    location: &str,
) -> Result<()> {
    let failed = |e: object_store::Error| WaError::Input(format!("{location}: {e}"));
    let mut upload = store.put_multipart(key).await.map_err(failed)?;
    match send_parts(upload.as_mut(), source, location).await {
        Ok(()) => match upload.complete().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = upload.abort().await;
                Err(failed(e))
            }
        },
        Err(e) => {
            // The parts sent so far are dropped with the upload; no object
            // appears at the key.
            let _ = upload.abort().await;
            Err(e)
        }
    }
}

async fn send_parts(
    upload: &mut dyn MultipartUpload,
    source: &mut std::fs::File,
    location: &str,
) -> Result<()> {
    loop {
        let mut part = Vec::with_capacity(PART);
        source
            .by_ref()
            .take(PART as u64)
            .read_to_end(&mut part)
            .map_err(|e| WaError::io(format!("{location}'s local copy"), e))?;
        let last = part.len() < PART;
        upload
            .put_part(PutPayload::from(part))
            .await
            .map_err(|e| WaError::Input(format!("{location}: {e}")))?;
        if last {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    use super::*;

    #[test]
    fn a_file_arrives_whole() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.csv");
        let bytes: Vec<u8> = (0..(PART * 2 + 10)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&file, &bytes).unwrap();
        let given = Arc::clone(&store);
        upload_file("s3://b/out/r.csv", &file, &move |_| Ok(Arc::clone(&given))).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt
            .block_on(async { store.get(&"out/r.csv".into()).await.unwrap().bytes().await })
            .unwrap();
        assert_eq!(got.as_ref(), bytes.as_slice());
        // A missing local file is an error naming it, and nothing is put.
        let err = upload_file("s3://b/x", &dir.path().join("none"), &move |_| {
            Ok(Arc::clone(&store))
        })
        .unwrap_err();
        assert!(err.to_string().contains("none"), "{err}");
    }
}
