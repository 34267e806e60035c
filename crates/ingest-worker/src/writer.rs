//! Writes a batch's partitions as new immutable objects, durably, retrying storage errors: transient
//! ones for as long as it takes, credential and clock ones ([`ErrorClass::Credentials`]) for a bounded
//! time, permanent ones a bounded number of times.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use pool_core::event::Partition;
use pool_core::event::ndjson::{Body, Partitioned};
use pool_storage::{Storage, StorageError};

use crate::metrics::WorkerMetrics;

/// How a failed write is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First delay between attempts (doubling, with jitter, up to `max_delay`).
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Attempts failing with a permanent error (see [`is_permanent`]) before the write is given up.
    /// Transient errors do not count: they are retried for as long as it takes.
    pub max_permanent_attempts: u32,
    /// How long a write is retried while the store refuses its credentials or its clock
    /// ([`ErrorClass::Credentials`]: expired token, skewed clock, unknown key, access denied) before
    /// it is given up: long enough for credentials to be renewed or a policy to propagate.
    pub credentials_retry_for: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_permanent_attempts: crate::settings::DEFAULT_WRITE_MAX_ATTEMPTS,
            credentials_retry_for: crate::settings::DEFAULT_WRITE_CREDENTIALS_RETRY_FOR,
        }
    }
}

/// A partition the store refused to take: its NDJSON (valid, canonical events), to be sent to the
/// dead-letter exchange instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenUp {
    pub partition: Partition,
    pub body: Bytes,
    /// Events (lines) in `body`.
    pub events: usize,
    /// The last storage error.
    pub error: String,
}

/// What one batch write produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub objects: usize,
    pub bytes: usize,
    /// Partitions not written: the store refused them `max_permanent_attempts` times.
    pub given_up: Vec<GivenUp>,
}

/// How a storage error is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// 5xx, timeouts, connection errors, a full disk: retried for as long as it takes.
    Transient,
    /// The store refuses the request's credentials or clock: any 401 or 403, and the S3 codes of an
    /// expired or unknown token or key, a bad signature or a skewed clock ([`CREDENTIAL_CODES`], some
    /// of which come as 400). Credentials get renewed, clocks resynchronised and policies propagate, so
    /// these are retried like transient errors, but only for `credentials_retry_for`: dead-lettering a
    /// whole flow in seconds because a token expired is worse than waiting.
    Credentials,
    /// Retrying cannot help: see [`is_permanent`].
    Permanent,
}

/// S3 error codes that say the credentials or the clock were refused, whatever the HTTP status.
pub const CREDENTIAL_CODES: &[&str] = &[
    "RequestTimeTooSkewed",
    "RequestExpired",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidToken",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "AccessDenied",
];

/// How `error` is retried (see [`ErrorClass`]).
pub fn classify(error: &StorageError) -> ErrorClass {
    match error {
        StorageError::BadUrl(_) | StorageError::Config(_) => ErrorClass::Permanent,
        StorageError::Io(_, e) if io_is_permanent(e) => ErrorClass::Permanent,
        StorageError::Io(..) => ErrorClass::Transient,
        StorageError::ObjectStore(e) => {
            if refuses_credentials(e) {
                ErrorClass::Credentials
            } else if object_store_is_permanent(e) {
                ErrorClass::Permanent
            } else {
                ErrorClass::Transient
            }
        }
    }
}

/// True when retrying `error` cannot help: the store refuses the request itself (no such bucket,
/// precondition, unsupported operation, invalid path, or any other HTTP 4xx but 401, 403, 408 Request
/// Timeout, 409 Conflict and 429 Too Many Requests), or the location is misconfigured. Credential and
/// clock refusals are [`ErrorClass::Credentials`]; everything else is transient.
///
/// 409 counts as transient because S3 answers it (`OperationAborted`) to a conflicting operation in
/// progress, which a later attempt does not meet.
pub fn is_permanent(error: &StorageError) -> bool {
    classify(error) == ErrorClass::Permanent
}

/// The error, its text and its sources' texts name a credential or clock refusal.
fn refuses_credentials(error: &object_store::Error) -> bool {
    use object_store::Error as E;
    if matches!(
        error,
        E::PermissionDenied { .. } | E::Unauthenticated { .. }
    ) {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        let text = e.to_string();
        if matches!(http_status(&text), Some(401 | 403))
            || CREDENTIAL_CODES.iter().any(|code| text.contains(code))
        {
            return true;
        }
        source = e.source();
    }
    false
}

fn object_store_is_permanent(error: &object_store::Error) -> bool {
    use object_store::Error as E;
    match error {
        E::NotFound { .. }
        | E::Precondition { .. }
        | E::NotSupported { .. }
        | E::InvalidPath { .. }
        | E::NotImplemented { .. }
        | E::UnknownConfigurationKey { .. } => true,
        E::AlreadyExists { .. } | E::NotModified { .. } => false,
        // A generic error carries the HTTP status (in the text of object_store's private retry error)
        // or an I/O error (local files) somewhere down its chain of sources.
        _ => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
            while let Some(e) = source {
                if let Some(io) = e.downcast_ref::<std::io::Error>()
                    && io_is_permanent(io)
                {
                    return true;
                }
                if let Some(status) = http_status(&e.to_string()) {
                    return status_is_permanent(status);
                }
                source = e.source();
            }
            false
        }
    }
}

fn io_is_permanent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

fn status_is_permanent(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 408 | 409 | 429)
}

/// The status in object_store's "Server returned non-2xx status code: 403 Forbidden: …".
fn http_status(text: &str) -> Option<u16> {
    let (_, rest) = text.split_once("status code: ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (digits.len() == 3).then(|| digits.parse().ok()).flatten()
}

/// Writes objects under the storage root.
///
/// Object keys are `dt=…/hr=…/<uuid v7>.json`: unique without coordination between workers, and
/// ordered by creation time when listed. Keys are *not* derived from the content: after a crash the
/// broker redelivers a batch's messages in a different grouping, so a content-derived key would not
/// make the second write land on the first anyway. Duplicates are instead removed where they are
/// counted (pool-selector counts each event once). A retried write reuses its key, so a PUT that
/// succeeded on the server but failed on the way back is overwritten with the same bytes, not copied.
#[derive(Clone)]
pub struct Writer {
    storage: Storage,
    concurrency: usize,
    retry: RetryPolicy,
    metrics: WorkerMetrics,
}

impl Writer {
    pub fn new(
        storage: Storage,
        concurrency: usize,
        retry: RetryPolicy,
        metrics: WorkerMetrics,
    ) -> Self {
        Self {
            storage,
            concurrency: concurrency.max(1),
            retry: RetryPolicy {
                max_permanent_attempts: retry.max_permanent_attempts.max(1),
                max_delay: retry.max_delay.max(retry.min_delay),
                ..retry
            },
            metrics,
        }
    }

    /// A new unique object name (a time-ordered UUID, version 7).
    pub fn new_name() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// Write every partition as one new object and return once each is durable or given up.
    ///
    /// Transient storage errors are retried with exponential backoff for as long as it takes: the
    /// messages stay unacknowledged meanwhile, and a shutdown deadline bounds the wait from outside.
    /// A partition refused with a permanent error ([`is_permanent`]) `max_permanent_attempts` times is
    /// given up and returned in [`Written::given_up`], for the caller to dead-letter.
    pub async fn write_all(&self, partitions: Partitioned) -> Written {
        let results: Vec<Result<usize, GivenUp>> = futures::stream::iter(partitions)
            .map(|(partition, body)| self.write_one(partition, body))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut written = Written::default();
        for r in results {
            match r {
                Ok(bytes) => {
                    written.objects += 1;
                    written.bytes += bytes;
                }
                Err(given_up) => written.given_up.push(given_up),
            }
        }
        written
    }

    async fn write_one(&self, partition: Partition, body: Body) -> Result<usize, GivenUp> {
        let Body {
            bytes: body,
            events,
        } = body;
        let body = Bytes::from(body);
        let path = self.storage.object_path(&partition, &Self::new_name());
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_jitter()
            .without_max_times()
            .build();
        let len = body.len();
        let mut refused = 0u32;
        // When the store first refused this write's credentials or clock (reset by a success only:
        // the write ends then).
        let mut credentials_refused_since: Option<Instant> = None;
        loop {
            let started = Instant::now();
            let e = match self.try_write(&path, body.clone()).await {
                Ok(()) => {
                    tracing::debug!(object = %path, bytes = len, took = ?started.elapsed(), "object written");
                    return Ok(len);
                }
                Err(e) => e,
            };
            let class = classify(&e);
            let give_up = match class {
                ErrorClass::Permanent => {
                    refused += 1;
                    self.metrics
                        .errors
                        .with_label_values(&["storage_permanent"])
                        .inc();
                    (refused >= self.retry.max_permanent_attempts).then(|| {
                        format!("the store refused the write {refused} times (WRITE_MAX_ATTEMPTS)")
                    })
                }
                ErrorClass::Credentials => {
                    self.metrics
                        .errors
                        .with_label_values(&["storage_credentials"])
                        .inc();
                    let since = *credentials_refused_since.get_or_insert(started);
                    (since.elapsed() >= self.retry.credentials_retry_for).then(|| {
                        format!(
                            "the store refused the write's credentials or clock for {:?} \
                             (WRITE_CREDENTIALS_RETRY_FOR)",
                            since.elapsed()
                        )
                    })
                }
                ErrorClass::Transient => {
                    self.metrics.errors.with_label_values(&["storage"]).inc();
                    None
                }
            };
            if let Some(why) = give_up {
                self.metrics.write_given_up.inc();
                tracing::error!(object = %path, error = %e, events,
                    "{why}; giving up: its events go to the dead-letter exchange");
                return Err(GivenUp {
                    partition,
                    body,
                    events,
                    error: e.to_string(),
                });
            }
            let delay = backoff.next().unwrap_or(self.retry.max_delay);
            tracing::warn!(object = %path, error = %e, class = ?class, refused,
                retry_in = ?delay, "writing object failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn try_write(&self, path: &Path, body: Bytes) -> Result<(), StorageError> {
        self.storage.put(path, body).await?;
        if self.storage.store_url.scheme() == "file" {
            // object_store's local store renames a temporary file into place but does not fsync:
            // do it here (file, then the folders that may have been created for it), or a power cut
            // after the ack could lose an acknowledged object.
            let file = PathBuf::from(format!("/{path}"));
            tokio::task::spawn_blocking(move || fsync_with_parents(&file, 3))
                .await
                .map_err(|e| StorageError::Io("fsync task".into(), std::io::Error::other(e)))?
                .map_err(|e| StorageError::Io(format!("fsync of /{path}"), e))?;
        }
        Ok(())
    }
}

/// fsync `file`, then its parent folder and `levels - 1` further ancestors (new `hr=`/`dt=` folders).
fn fsync_with_parents(file: &std::path::Path, levels: usize) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    let mut dir = file.parent();
    for _ in 0..levels {
        let Some(d) = dir else { break };
        std::fs::File::open(d)?.sync_all()?;
        dir = d.parent();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use pool_core::Event;
    use pool_storage::StorageArgs;

    /// A valid event finishing at `hour`:30 on 2026-11-22 (UTC).
    fn event_at(hour: u32, job: &str) -> Event {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, hour, 30, 0)
            .unwrap();
        testkit::event(at, job, "pool-c6a.xlarge-us-east-1a", "spot")
    }

    fn ndjson(events: &[Event]) -> Vec<u8> {
        testkit::ndjson(events).into_bytes()
    }

    #[tokio::test]
    async fn writes_one_object_per_partition_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let storage = StorageArgs::for_url(dir.path().to_str().unwrap())
            .open()
            .unwrap();
        let metrics = WorkerMetrics::register(&prometheus::Registry::new());
        let writer = Writer::new(storage, 2, RetryPolicy::default(), metrics);
        let nine = [event_at(9, "a")];
        let ten = [event_at(10, "b"), event_at(10, "c")];
        let parts = Partitioned::of(nine.iter().chain(&ten));
        let w = writer.write_all(parts).await;
        assert_eq!(
            w,
            Written {
                objects: 2,
                bytes: ndjson(&nine).len() + ndjson(&ten).len(),
                given_up: Vec::new(),
            }
        );
        let files: Vec<_> = std::fs::read_dir(dir.path().join("dt=2026-11-22/hr=10"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        assert_eq!(std::fs::read(&files[0]).unwrap(), ndjson(&ten));
        assert!(files[0].extension().is_some_and(|e| e == "json"));
    }

    #[test]
    fn permanent_and_transient_storage_errors() {
        use object_store::Error as E;
        let boxed = |m: &str| -> Box<dyn std::error::Error + Send + Sync> { m.to_owned().into() };
        let os = |e: E| StorageError::ObjectStore(e);
        let path = || "events/x.json".to_owned();
        for e in [
            E::PermissionDenied {
                path: path(),
                source: boxed("AccessDenied"),
            },
            E::Unauthenticated {
                path: path(),
                source: boxed("InvalidAccessKeyId"),
            },
        ] {
            assert_eq!(classify(&os(e)), ErrorClass::Credentials);
        }
        for e in [
            E::NotFound {
                path: path(),
                source: boxed("NoSuchBucket"),
            },
            E::Precondition {
                path: path(),
                source: boxed("412"),
            },
            E::NotSupported {
                source: boxed("no"),
            },
        ] {
            assert!(is_permanent(&os(e)));
        }
        assert!(is_permanent(&StorageError::Config("bad".into())));
        let generic = |text: &str| {
            os(E::Generic {
                store: "S3",
                source: boxed(text),
            })
        };
        assert!(is_permanent(&generic(
            "Error performing PUT http://s3/b/k in 3ms - Server returned non-2xx status code: 400 Bad Request: EntityTooLarge"
        )));
        for credentials in [
            "Server returned non-2xx status code: 403 Forbidden: <Error><Code>RequestTimeTooSkewed</Code></Error>",
            "Server returned non-2xx status code: 400 Bad Request: <Error><Code>ExpiredToken</Code></Error>",
            "Server returned non-2xx status code: 403 Forbidden: <Error><Code>InvalidAccessKeyId</Code></Error>",
            "Server returned non-2xx status code: 401 Unauthorized: ",
        ] {
            assert_eq!(
                classify(&generic(credentials)),
                ErrorClass::Credentials,
                "{credentials}"
            );
            assert!(!is_permanent(&generic(credentials)));
        }
        for transient in [
            "Server returned non-2xx status code: 500 Internal Server Error: ",
            "Server returned non-2xx status code: 503 Service Unavailable: SlowDown",
            "Server returned non-2xx status code: 429 Too Many Requests: ",
            "Server returned non-2xx status code: 408 Request Timeout: ",
            "error sending request: connection refused",
            "operation timed out",
        ] {
            assert!(!is_permanent(&generic(transient)), "{transient}");
        }
        assert!(!is_permanent(&os(E::AlreadyExists {
            path: path(),
            source: boxed("OperationAborted"),
        })));
        let io = |kind| StorageError::Io("fsync".into(), std::io::Error::from(kind));
        assert!(is_permanent(&io(std::io::ErrorKind::PermissionDenied)));
        assert!(!is_permanent(&io(std::io::ErrorKind::StorageFull)));
        assert!(!is_permanent(&io(std::io::ErrorKind::TimedOut)));
        // An I/O error down a generic error's chain (the local store).
        assert!(is_permanent(&os(E::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
        })));
    }

    #[tokio::test]
    async fn a_missing_bucket_is_given_up_after_the_permanent_attempts() {
        // The S3 test server, and a bucket that does not exist there: every PUT answers 404.
        let bucket = format!(
            "no-such-bucket-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let storage = testkit::s3_args(&bucket, "events/").open().unwrap();
        let registry = prometheus::Registry::new();
        let metrics = WorkerMetrics::register(&registry);
        let retry = RetryPolicy {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_permanent_attempts: 3,
            ..RetryPolicy::default()
        };
        let writer = Writer::new(storage, 2, retry, metrics.clone());
        let refused = [event_at(7, "a"), event_at(7, "b")];
        let p = refused[0].partition();
        let w = writer.write_all(Partitioned::of(&refused)).await;
        assert_eq!((w.objects, w.bytes), (0, 0));
        assert_eq!(w.given_up.len(), 1);
        let g = &w.given_up[0];
        assert_eq!(g.partition, p);
        assert_eq!(g.events, 2);
        assert_eq!(&g.body[..], &ndjson(&refused)[..]);
        assert_eq!(metrics.write_given_up.get(), 1);
        assert_eq!(
            metrics
                .errors
                .with_label_values(&["storage_permanent"])
                .get(),
            3
        );
        assert_eq!(metrics.errors.with_label_values(&["storage"]).get(), 0);
    }

    /// An S3 endpoint on 127.0.0.1 that answers the first `refusals` PUTs with `status` and an S3 error
    /// body naming `code`, and every later one with 200. Counts the PUTs it got.
    async fn refusing_s3(
        refusals: usize,
        status: &'static str,
        code: &'static str,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let puts = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = puts.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    // Read the head and the body (Content-Length), then answer and close.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf);
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length: usize = text[..end]
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse().ok())?
                                })
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    let n = counted.fetch_add(1, Ordering::SeqCst);
                    let response = if n < refusals {
                        let body = format!(
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>refused</Message></Error>"
                        );
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        "HTTP/1.1 200 OK\r\netag: \"e\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
                    };
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        (endpoint, puts)
    }

    fn writer_for(endpoint: &str, retry: RetryPolicy) -> (Writer, WorkerMetrics) {
        let mut args = StorageArgs::for_url("s3://bucket/events/");
        args.aws_endpoint_url = Some(endpoint.to_owned());
        args.aws_access_key_id = Some("key".into());
        args.aws_secret_access_key = Some("secret".into());
        let metrics = WorkerMetrics::register(&prometheus::Registry::new());
        (
            Writer::new(args.open().unwrap(), 1, retry, metrics.clone()),
            metrics,
        )
    }

    #[tokio::test]
    async fn a_skewed_clock_or_expired_token_is_retried_not_dead_lettered() {
        // Six refusals in a row, more than WRITE_MAX_ATTEMPTS (3 here): a permanent error would have
        // been given up after three. The write goes through once the store takes it again.
        for (status, code) in [
            ("403 Forbidden", "RequestTimeTooSkewed"),
            ("400 Bad Request", "ExpiredToken"),
            ("403 Forbidden", "InvalidAccessKeyId"),
        ] {
            let (endpoint, puts) = refusing_s3(6, status, code).await;
            let (writer, metrics) = writer_for(
                &endpoint,
                RetryPolicy {
                    min_delay: Duration::from_millis(1),
                    max_delay: Duration::from_millis(2),
                    max_permanent_attempts: 3,
                    credentials_retry_for: Duration::from_secs(600),
                },
            );
            let w = writer.write_all(Partitioned::of(&[event_at(7, "a")])).await;
            assert_eq!((w.objects, w.given_up.len()), (1, 0), "{code}: {w:?}");
            assert_eq!(puts.load(std::sync::atomic::Ordering::SeqCst), 7, "{code}");
            assert_eq!(
                metrics
                    .errors
                    .with_label_values(&["storage_credentials"])
                    .get(),
                6
            );
            assert_eq!(metrics.write_given_up.get(), 0);
        }
    }

    #[tokio::test]
    async fn credential_refusals_are_given_up_after_their_bound() {
        // A bound of zero: the first refusal is already past it, so the events are dead-lettered
        // (no clock needs to move for the test to see the bound).
        let (endpoint, puts) = refusing_s3(usize::MAX, "403 Forbidden", "AccessDenied").await;
        let (writer, metrics) = writer_for(
            &endpoint,
            RetryPolicy {
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
                max_permanent_attempts: 3,
                credentials_retry_for: Duration::ZERO,
            },
        );
        let w = writer.write_all(Partitioned::of(&[event_at(7, "a")])).await;
        assert_eq!((w.objects, w.given_up.len()), (0, 1));
        assert!(w.given_up[0].error.contains("AccessDenied"), "{w:?}");
        assert_eq!(puts.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(metrics.write_given_up.get(), 1);
    }
}
