//! Where logs live: local paths, or object stores (`s3://`, `gs://`,
//! `az://`) through the `object_store` crate DataFusion reads with. A
//! store is built on first use from the environment (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`, as `object_store` reads them) and the session's
//! `aws.*`, `gcp.*` and `azure.*` options (`SET aws.region = 'eu-west-1'`);
//! results are uploaded whole or not at all.

mod bucket;
mod options;
mod registry;
mod upload;

pub use bucket::Bucket;
pub use options::{AwsOptions, AzureOptions, GcpOptions, StoreOptions};
pub use registry::StoreRegistry;
pub use upload::upload_file;

/// The URL schemes of the object stores wausage reads and writes.
pub const REMOTE_SCHEMES: [&str; 6] = ["s3", "s3a", "gs", "gcs", "az", "abfs"];

/// Whether `location` names an object in a store (`s3://bucket/key`)
/// rather than a local path.
pub fn is_remote(location: &str) -> bool {
    location
        .split_once("://")
        .is_some_and(|(scheme, _)| REMOTE_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

/// A store's error in one line: the server's own code and message when
/// it sent them (`NoSuchBucket: The specified bucket does not exist`),
/// else `object_store`'s text (an unreachable endpoint, say).
pub fn describe_error(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let tag = |name: &str| {
        let (open, close) = (format!("<{name}>"), format!("</{name}>"));
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&close)? + start;
        Some(text[start..end].to_string())
    };
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => text,
    }
}

/// Waits for `work` on a thread of its own with its own runtime, so that
/// synchronous code, inside an async context or not, can wait for a
/// store's answer.
pub(crate) fn wait<T: Send>(
    work: impl std::future::Future<Output = crate::error::Result<T>> + Send,
) -> crate::error::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| crate::error::WaError::io("an object store's runtime", e))?
                .block_on(work)
        })
        .join()
        .unwrap_or_else(|_| {
            Err(crate::error::WaError::Input(
                "an object store call panicked".into(),
            ))
        })
    })
}

/// An object's URL split into the store's (`s3://bucket`) and the key.
pub fn split_url(location: &str) -> crate::error::Result<(url::Url, object_store::path::Path)> {
    let bad = |why: String| crate::error::WaError::Input(format!("{location}: {why}"));
    let url = url::Url::parse(location).map_err(|e| bad(e.to_string()))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("names no bucket (expected s3://BUCKET/KEY)".into()));
    }
    let key = object_store::path::Path::from_url_path(url.path())
        .map_err(|e| bad(format!("not a usable key: {e}")))?;
    let store = url::Url::parse(&format!(
        "{}://{}",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort]
    ))
    .map_err(|e| bad(e.to_string()))?;
    Ok((store, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_locations_by_scheme() {
        for remote in [
            "s3://b/k",
            "S3://b/",
            "gs://b/x.parquet",
            "az://c/p/",
            "abfs://c/p",
        ] {
            assert!(is_remote(remote), "{remote}");
        }
        for local in [
            "logs/",
            "/data/x.parquet",
            "file:///tmp/x",
            "C:/x",
            "s3:/b",
            "http://x/y",
        ] {
            assert!(!is_remote(local), "{local}");
        }
    }

    #[test]
    fn a_servers_error_reads_as_its_code_and_message() {
        let s3 = "Generic S3 error: Error performing GET http://h/b in 3ms - Server returned \
                  non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?><Error>\
                  <Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>\
                  <RequestId>x</RequestId></Error>";
        assert_eq!(
            describe_error(&s3),
            "NoSuchBucket: The specified bucket does not exist"
        );
        let plain = "error sending request for url (http://127.0.0.1:9/b)";
        assert_eq!(describe_error(&plain), plain);
    }

    #[test]
    fn urls_split_into_store_and_key() {
        let (store, key) = split_url("s3://bucket/out/report.parquet").unwrap();
        assert_eq!(store.as_str(), "s3://bucket");
        assert_eq!(key.as_ref(), "out/report.parquet");
        assert!(split_url("s3:///key").is_err());
    }
}
