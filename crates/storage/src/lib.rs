//! `pool-storage`: where events live, and how their objects are named.
//!
//! One URL says it all: a local folder (`./data/events`, `file:///srv/events`), an S3 prefix
//! (`s3://bucket/events/`) or the seed's single growing object (`s3://bucket/events.json`). The seed's
//! environment (`S3_BUCKET_NAME`, `S3_FILE_NAME`, `AWS_KEY_ID`, `AWS_SECRET`, `LOCALSTACK_URL`,
//! `LOCALSTACK_PORT`) and the standard AWS variables resolve to the same [`Storage`].
//!
//! # Credentials
//!
//! Explicit keys (`AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, or the seed's `AWS_KEY_ID` and
//! `AWS_SECRET`; with `AWS_SESSION_TOKEN` for temporary ones) win. Without them the standard chain is
//! used, from the environment, in this order: web identity (IRSA: `AWS_WEB_IDENTITY_TOKEN_FILE` and
//! `AWS_ROLE_ARN`, which EKS injects for a ServiceAccount annotated with a role), ECS task credentials
//! (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`), EKS Pod Identity (`AWS_CONTAINER_CREDENTIALS_FULL_URI` and
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`), then the instance profile (IMDSv2). Temporary credentials
//! are renewed before they expire. So on EKS no key needs to be in a Secret at all.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
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

    /// Resolve to a live object store handle, with credentials from these settings or the standard
    /// chain read from the process environment (see the module docs).
    pub fn open(&self) -> Result<Storage, StorageError> {
        Storage::open_with_env(&self.resolved_url(), self, std::env::vars())
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

/// The object_store builder with every `AWS_*` variable of `env` it knows (the standard credential
/// chain's: web identity, container and Pod Identity endpoints, session token, metadata endpoint...),
/// as `AmazonS3Builder::from_env` would read them from the process, but from the given variables.
fn builder_from_env(env: impl IntoIterator<Item = (String, String)>) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::new();
    for (key, value) in env {
        if !key.starts_with("AWS_") {
            continue;
        }
        if let Ok(config_key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(config_key, value);
        }
    }
    builder
}

impl Storage {
    /// [`Storage::open_with_env`] with the process environment.
    pub fn open(url: &str, args: &StorageArgs) -> Result<Self, StorageError> {
        Self::open_with_env(url, args, std::env::vars())
    }

    /// Open `url` with `args`; on S3, credentials the settings do not give come from the standard chain
    /// configured by the `AWS_*` variables of `env` (the process environment, or a test's own).
    pub fn open_with_env(
        url: &str,
        args: &StorageArgs,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, StorageError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StorageError::BadUrl(url.to_owned()));
            }
            let mut builder = builder_from_env(env)
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

    /// A stand-in for the EKS Pod Identity agent on 127.0.0.1: answers every request with temporary
    /// credentials, and reports the `Authorization` header each request carried.
    async fn pod_identity_agent() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/credentials", listener.local_addr().unwrap());
        let (seen, heard) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let auth = request
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("authorization")
                            .then(|| v.trim().to_owned())
                    })
                    .unwrap_or_default();
                let _ = seen.send(auth);
                let expiration = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
                let body = format!(
                    r#"{{"AccessKeyId":"ASIAPODIDENTITY","SecretAccessKey":"pod-secret","Token":"pod-session","Expiration":"{expiration}"}}"#
                );
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        (url, heard)
    }

    /// PUT `http://endpoint/bucket` (the S3 test server takes unsigned requests).
    async fn create_bucket(endpoint: &str, bucket: &str) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
        let mut socket = tokio::net::TcpStream::connect(host).await.unwrap();
        let request = format!(
            "PUT /{bucket} HTTP/1.1\r\nhost: {host}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    /// Without explicit keys, the standard chain: here EKS Pod Identity, configured by the variables the
    /// EKS Pod Identity webhook sets, against the S3 test server (`TEST_S3_ENDPOINT`).
    #[tokio::test]
    async fn without_keys_credentials_come_from_the_standard_chain() {
        let endpoint = std::env::var("TEST_S3_ENDPOINT").expect(
            "TEST_S3_ENDPOINT is not set: start the test servers with \
             eval \"$(scripts/test-services.sh start)\"",
        );
        let bucket = format!("chain-{}", std::process::id());
        create_bucket(&endpoint, &bucket).await;
        let (agent, mut heard) = pod_identity_agent().await;
        let token = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(token.path(), "the-pod-identity-token").unwrap();
        let mut args = StorageArgs::for_url(format!("s3://{bucket}/events/"));
        args.aws_endpoint_url = Some(endpoint);
        assert!(args.aws_access_key_id.is_none() && args.aws_key_id.is_none());
        let env = [
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI".to_owned(), agent),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".to_owned(),
                token.path().display().to_string(),
            ),
            (
                "PATH".to_owned(),
                "ignored: not an AWS_ variable".to_owned(),
            ),
        ];
        let storage = Storage::open_with_env(&args.resolved_url(), &args, env).unwrap();
        let path = Path::from("events/dt=2026-11-22/hr=07/x.json");
        storage
            .put(&path, bytes::Bytes::from_static(b"{}\n"))
            .await
            .expect("a write signed with the Pod Identity credentials");
        let got = storage
            .store
            .get(&path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&got[..], b"{}\n");
        assert_eq!(
            heard.recv().await.as_deref(),
            Some("the-pod-identity-token"),
            "the agent was asked, with the token file's contents"
        );
    }
}
