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
    let store = store_for(&store_url)
        .map_err(|e| WaError::Input(format!("{location}: {}", super::describe_error(&e))))?;
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
    let upload = store
        .put_multipart(key)
        .await
        .map_err(|e| WaError::Input(format!("{location}: {}", super::describe_error(&e))))?;
    put_whole(upload, source, location).await
}

/// Sends `source` as the parts of `upload` and completes it; on any
/// error aborts it, so the parts sent so far are dropped and no object
/// appears at the key.
async fn put_whole(
    mut upload: Box<dyn MultipartUpload>,
    source: &mut std::fs::File,
    location: &str,
) -> Result<()> {
    let sent = match send_parts(upload.as_mut(), source, location).await {
        Ok(()) => upload
            .complete()
            .await
            .map(|_| ())
            .map_err(|e| WaError::Input(format!("{location}: {}", super::describe_error(&e)))),
        Err(e) => Err(e),
    };
    if sent.is_err() {
        let _ = upload.abort().await;
    }
    sent
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
            .map_err(|e| WaError::Input(format!("{location}: {}", super::describe_error(&e))))?;
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

    /// An upload whose part `fail_at` fails; it records what was called.
    #[derive(Debug, Default)]
    struct Failing {
        parts: usize,
        fail_at: usize,
        calls: Arc<std::sync::Mutex<Vec<&'static str>>>,
    }

    #[async_trait::async_trait]
    impl MultipartUpload for Failing {
        fn put_part(&mut self, _data: PutPayload) -> object_store::UploadPart {
            self.parts += 1;
            let fail = self.parts == self.fail_at;
            Box::pin(async move {
                if fail {
                    Err(object_store::Error::Generic {
                        store: "test",
                        source: "the network went away".into(),
                    })
                } else {
                    Ok(())
                }
            })
        }

        async fn complete(&mut self) -> object_store::Result<object_store::PutResult> {
            self.calls.lock().unwrap().push("complete");
            Ok(object_store::PutResult {
                e_tag: None,
                version: None,
            })
        }

        async fn abort(&mut self) -> object_store::Result<()> {
            self.calls.lock().unwrap().push("abort");
            Ok(())
        }
    }

    #[test]
    fn a_failed_part_aborts_the_upload_and_never_completes_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.csv");
        std::fs::write(&file, vec![7u8; PART * 2 + 1]).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for (fail_at, expected) in [(2, vec!["abort"]), (9, vec!["complete"])] {
            let calls = Arc::default();
            let upload = Box::new(Failing {
                fail_at,
                calls: Arc::clone(&calls),
                ..Failing::default()
            });
            let mut source = std::fs::File::open(&file).unwrap();
            let result = rt.block_on(put_whole(upload, &mut source, "s3://b/r.csv"));
            assert_eq!(*calls.lock().unwrap(), expected);
            if fail_at == 2 {
                let err = result.unwrap_err().to_string();
                assert!(
                    err.contains("s3://b/r.csv") && err.contains("went away"),
                    "{err}"
                );
            } else {
                result.unwrap();
            }
        }
    }

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
