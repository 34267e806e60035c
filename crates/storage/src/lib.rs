//! `pool-storage`: where events live, and how their objects are named.
//!
//! One URL says it all: a local folder (`./data/events`, `file:///srv/events`), an S3 prefix
//! (`s3://bucket/events/`) or the seed's single growing object (`s3://bucket/events.json`). The seed's
//! environment (`S3_BUCKET_NAME`, `S3_FILE_NAME`, `AWS_KEY_ID`, `AWS_SECRET`, `LOCALSTACK_URL`,
//! `LOCALSTACK_PORT`) and the standard AWS variables resolve to the same [`Storage`].

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use url::Url;

use pool_core::event::Partition;
use pool_core::event::ndjson::Partitioned;

/// Default location of the event history: the folder `make run` fills with a sample.
pub const DEFAULT_EVENTS_URL: &str = "./data/events";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("EVENTS_URL {0:?} is not a folder path, file:// URL or s3://bucket/prefix URL")]
    BadUrl(String),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    ObjectStore(#[from] object_store::Error),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// Storage settings, flattened into every binary that reads or writes events.
#[derive(Args, Debug, Clone, Default)]
pub struct StorageArgs {
    /// Where events live: a folder, file:///folder, s3://bucket/prefix/ or s3://bucket/key.json.
    #[arg(long, env = "EVENTS_URL")]
    pub events_url: Option<String>,
    /// Seed compatibility: bucket name, used when EVENTS_URL is not set.
    #[arg(long, env = "S3_BUCKET_NAME", hide = true)]
    pub s3_bucket_name: Option<String>,
    /// Seed compatibility: object key (single NDJSON object) or prefix inside S3_BUCKET_NAME.
    #[arg(long, env = "S3_FILE_NAME", hide = true)]
    pub s3_file_name: Option<String>,
    /// S3 endpoint for S3-compatible servers (http allowed, path-style requests).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// Seed compatibility: LocalStack URL (with LOCALSTACK_PORT), used when AWS_ENDPOINT_URL is not set.
    #[arg(long, env = "LOCALSTACK_URL", hide = true)]
    pub localstack_url: Option<String>,
    #[arg(long, env = "LOCALSTACK_PORT", hide = true)]
    pub localstack_port: Option<String>,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub aws_region: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub aws_access_key_id: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,
    /// Seed compatibility: same as AWS_ACCESS_KEY_ID.
    #[arg(long, env = "AWS_KEY_ID", hide = true, hide_env_values = true)]
    pub aws_key_id: Option<String>,
    /// Seed compatibility: same as AWS_SECRET_ACCESS_KEY.
    #[arg(long, env = "AWS_SECRET", hide = true, hide_env_values = true)]
    pub aws_secret: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl StorageArgs {
    /// Settings for a given events URL and nothing else (tests, tools).
    pub fn for_url(url: impl Into<String>) -> Self {
        Self {
            events_url: Some(url.into()),
            aws_region: "us-east-1".into(),
            ..Default::default()
        }
    }

    /// The events URL after applying the seed's fallbacks.
    pub fn resolved_url(&self) -> String {
        if let Some(url) = non_empty(&self.events_url) {
            return url.to_owned();
        }
        if let Some(bucket) = non_empty(&self.s3_bucket_name) {
            return match non_empty(&self.s3_file_name) {
                Some(key) => format!("s3://{bucket}/{}", key.trim_start_matches('/')),
                None => format!("s3://{bucket}/"),
            };
        }
        DEFAULT_EVENTS_URL.to_owned()
    }

    /// The S3 endpoint after applying the seed's LocalStack fallback.
    pub fn resolved_endpoint(&self) -> Option<String> {
        if let Some(e) = non_empty(&self.aws_endpoint_url) {
            return Some(e.to_owned());
        }
        let base = non_empty(&self.localstack_url)?;
        let base = if base.contains("://") {
            base.to_owned()
        } else {
            format!("http://{base}")
        };
        let has_port = Url::parse(&base).ok().and_then(|u| u.port()).is_some();
        Some(match non_empty(&self.localstack_port) {
            Some(port) if !has_port => format!("{}:{port}", base.trim_end_matches('/')),
            _ => base,
        })
    }

    /// Resolve to a live object store handle.
    pub fn open(&self) -> Result<Storage, StorageError> {
        Storage::open(&self.resolved_url(), self)
    }
}

/// An opened event location.
#[derive(Debug, Clone)]
pub struct Storage {
    /// The store that holds the events.
    pub store: Arc<dyn ObjectStore>,
    /// The store's base URL (`s3://bucket/` or `file:///`), for registering it with a query engine.
    pub store_url: Url,
    /// The folder (or, for a single object, the object) inside the store.
    pub root: Path,
    /// True when the location is one NDJSON object rather than a folder of them.
    pub single_object: bool,
    /// The URL as the user gave it, for logs.
    pub display: String,
}

fn looks_like_object(key: &str) -> bool {
    !key.ends_with('/')
        && [".json", ".ndjson", ".jsonl"]
            .iter()
            .any(|ext| key.to_ascii_lowercase().ends_with(ext))
}

impl Storage {
    pub fn open(url: &str, args: &StorageArgs) -> Result<Self, StorageError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StorageError::BadUrl(url.to_owned()));
            }
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(&args.aws_region)
                .with_retry(RetryConfig {
                    max_retries: 3,
                    retry_timeout: Duration::from_secs(30),
                    ..Default::default()
                })
                .with_client_options(
                    ClientOptions::new()
                        .with_connect_timeout(Duration::from_secs(5))
                        .with_timeout(Duration::from_secs(60)),
                );
            if let Some(id) = non_empty(&args.aws_access_key_id).or(non_empty(&args.aws_key_id)) {
                builder = builder.with_access_key_id(id);
            }
            if let Some(secret) =
                non_empty(&args.aws_secret_access_key).or(non_empty(&args.aws_secret))
            {
                builder = builder.with_secret_access_key(secret);
            }
            if let Some(endpoint) = args.resolved_endpoint() {
                builder = builder
                    .with_endpoint(&endpoint)
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            let store = builder
                .build()
                .map_err(|e| StorageError::Config(format!("S3 configuration for {url}: {e}")))?;
            Ok(Storage {
                store: Arc::new(store),
                store_url: Url::parse(&format!("s3://{bucket}/"))
                    .map_err(|_| StorageError::BadUrl(url.to_owned()))?,
                root: Path::from(key.trim_matches('/')),
                single_object: looks_like_object(key),
                display: url.to_owned(),
            })
        } else {
            let raw = url.strip_prefix("file://").unwrap_or(url);
            if raw.is_empty() || url.contains("://") && !url.starts_with("file://") {
                return Err(StorageError::BadUrl(url.to_owned()));
            }
            let path = absolute(FsPath::new(raw))
                .map_err(|e| StorageError::Io(format!("resolving {raw}"), e))?;
            let single_object = path.is_file() || looks_like_object(raw);
            let root = Path::from_absolute_path(&path)
                .map_err(|e| StorageError::Config(format!("{}: {e}", path.display())))?;
            Ok(Storage {
                store: Arc::new(LocalFileSystem::new()),
                store_url: Url::parse("file:///").expect("static URL"),
                root,
                single_object,
                display: url.to_owned(),
            })
        }
    }

    /// The URL of the root folder (with a trailing slash) or of the single object.
    pub fn root_url(&self) -> String {
        let root = self.root.as_ref();
        let mut s = format!("{}{root}", self.store_url);
        if !self.single_object && !root.is_empty() {
            s.push('/');
        }
        s
    }

    /// Key of a new object in `partition`: `<root>/dt=…/hr=…/<name>.json`.
    pub fn object_path(&self, partition: &Partition, name: &str) -> Path {
        let rel = format!("{}/{name}.json", partition.path());
        if self.root.as_ref().is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{}/{rel}", self.root))
        }
    }

    /// Write one immutable object. On a local folder the object store writes a temporary file and renames
    /// it into place, so readers never see half an object.
    pub async fn put(&self, path: &Path, bytes: bytes::Bytes) -> Result<(), StorageError> {
        self.store.put(path, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// Write each partition of `events` as one object named `name` under its hour (`dt=…/hr=…/name`).
    /// Returns the number of objects written.
    pub async fn put_partitioned(
        &self,
        name: &str,
        events: Partitioned,
    ) -> Result<usize, StorageError> {
        let mut written = 0;
        for (partition, body) in events {
            self.put(&self.object_path(&partition, name), body.bytes.into())
                .await?;
            written += 1;
        }
        Ok(written)
    }

    /// Create the root folder of a local location (no-op on S3, where folders do not exist).
    pub fn ensure_local_root(&self) -> Result<(), StorageError> {
        if self.store_url.scheme() == "file" && !self.single_object {
            let dir = PathBuf::from(format!("/{}", self.root));
            std::fs::create_dir_all(&dir)
                .map_err(|e| StorageError::Io(format!("creating {}", dir.display()), e))?;
        }
        Ok(())
    }

    /// True when the location can be reached: the folder or bucket can be listed, or the object exists.
    pub async fn check_reachable(&self) -> Result<(), StorageError> {
        if self.single_object {
            self.store.head(&self.root).await?;
        } else {
            self.store.list_with_delimiter(Some(&self.root)).await?;
            if self.store_url.scheme() == "file" {
                let dir = PathBuf::from(format!("/{}", self.root));
                if !dir.is_dir() {
                    return Err(StorageError::Io(
                        dir.display().to_string(),
                        std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn absolute(p: &FsPath) -> std::io::Result<PathBuf> {
    let abs = std::path::absolute(p)?;
    // Resolve symlinks where the path exists so DataFusion and the store agree on keys.
    Ok(abs.canonicalize().unwrap_or(abs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_variables_resolve() {
        let args = StorageArgs {
            s3_bucket_name: Some("spark-events".into()),
            s3_file_name: Some("events.json".into()),
            localstack_url: Some("http://localstack".into()),
            localstack_port: Some("4566".into()),
            aws_region: "us-east-1".into(),
            ..Default::default()
        };
        assert_eq!(args.resolved_url(), "s3://spark-events/events.json");
        assert_eq!(
            args.resolved_endpoint().as_deref(),
            Some("http://localstack:4566")
        );
        let s = args.open().unwrap();
        assert!(s.single_object);
        assert_eq!(s.root.as_ref(), "events.json");
        assert_eq!(s.root_url(), "s3://spark-events/events.json");
    }

    #[test]
    fn events_url_wins_and_prefixes_are_folders() {
        let mut args = StorageArgs::for_url("s3://b/events/");
        args.s3_bucket_name = Some("ignored".into());
        let s = args.open().unwrap();
        assert!(!s.single_object);
        assert_eq!(s.root_url(), "s3://b/events/");
        let p = pool_core::event::Partition {
            date: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            hour: 7,
        };
        assert_eq!(
            s.object_path(&p, "x").as_ref(),
            "events/dt=2026-11-22/hr=07/x.json"
        );
    }

    #[test]
    fn local_paths() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path().to_str().unwrap(), &StorageArgs::default()).unwrap();
        assert!(!s.single_object);
        assert!(s.root_url().starts_with("file:///"));
        assert!(s.root_url().ends_with('/'));
        let s2 = Storage::open(
            &format!("file://{}", dir.path().display()),
            &StorageArgs::default(),
        )
        .unwrap();
        assert_eq!(s.root, s2.root);
        assert!(Storage::open("ftp://x/y", &StorageArgs::default()).is_err());
    }
}
