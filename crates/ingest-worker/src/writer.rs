//! Writes a batch's partitions as new immutable objects, durably, retrying storage errors: transient
//! ones for as long as it takes, permanent ones a bounded number of times.

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
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_permanent_attempts: crate::settings::DEFAULT_WRITE_MAX_ATTEMPTS,
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

/// True when retrying `error` cannot help: the store refuses the request itself (access denied,
/// unauthenticated, no such bucket, precondition, unsupported operation, invalid path, or any other
/// HTTP 4xx but 408 Request Timeout, 409 Conflict and 429 Too Many Requests), or the location is
/// misconfigured. Everything else — 5xx, timeouts, connection errors, a full disk — is transient.
///
/// 409 counts as transient because S3 answers it (`OperationAborted`) to a conflicting operation in
/// progress, which a later attempt does not meet.
pub fn is_permanent(error: &StorageError) -> bool {
    match error {
        StorageError::BadUrl(_) | StorageError::Config(_) => true,
        StorageError::Io(_, e) => io_is_permanent(e),
        StorageError::ObjectStore(e) => object_store_is_permanent(e),
    }
}

fn object_store_is_permanent(error: &object_store::Error) -> bool {
    use object_store::Error as E;
    match error {
        E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::NotFound { .. }
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
/// counted (pool-selector counts each `job_id` once). A retried write reuses its key, so a PUT that
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
        loop {
            let started = Instant::now();
            let e = match self.try_write(&path, body.clone()).await {
                Ok(()) => {
                    tracing::debug!(object = %path, bytes = len, took = ?started.elapsed(), "object written");
                    return Ok(len);
                }
                Err(e) => e,
            };
            if is_permanent(&e) {
                refused += 1;
                self.metrics
                    .errors
                    .with_label_values(&["storage_permanent"])
                    .inc();
                if refused >= self.retry.max_permanent_attempts {
                    self.metrics.write_given_up.inc();
                    tracing::error!(object = %path, error = %e, attempts = refused, events,
                        "the store refused the write {refused} times (WRITE_MAX_ATTEMPTS); giving up: \
                         its events go to the dead-letter exchange");
                    return Err(GivenUp {
                        partition,
                        body,
                        events,
                        error: e.to_string(),
                    });
                }
            } else {
                self.metrics.errors.with_label_values(&["storage"]).inc();
            }
            let delay = backoff.next().unwrap_or(self.retry.max_delay);
            tracing::warn!(object = %path, error = %e, permanent = is_permanent(&e), refused,
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
            E::NotFound {
                path: path(),
                source: boxed("NoSuchBucket"),
            },
            E::PermissionDenied {
                path: path(),
                source: boxed("AccessDenied"),
            },
            E::Unauthenticated {
                path: path(),
                source: boxed("InvalidAccessKeyId"),
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
}
