//! Writes a batch's partitions as new immutable objects, durably, retrying storage errors.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use pool_core::event::Partition;
use pool_core::storage::{Storage, StorageError};

use crate::metrics::WorkerMetrics;

/// What one batch write produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub objects: usize,
    pub bytes: usize,
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
    metrics: WorkerMetrics,
}

impl Writer {
    pub fn new(storage: Storage, concurrency: usize, metrics: WorkerMetrics) -> Self {
        Self {
            storage,
            concurrency: concurrency.max(1),
            metrics,
        }
    }

    /// A new unique object name (a time-ordered UUID, version 7).
    pub fn new_name() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// Write every partition as one new object and return once all are durable. Storage errors are
    /// retried with exponential backoff (100 ms doubling to 10 s) for as long as it takes: the messages
    /// stay unacknowledged meanwhile, and a shutdown deadline bounds the wait from outside.
    pub async fn write_all(&self, partitions: BTreeMap<Partition, Vec<u8>>) -> Written {
        let written: Vec<usize> = futures::stream::iter(partitions)
            .map(|(partition, body)| {
                let path = self.storage.object_path(&partition, &Self::new_name());
                self.write_one(path, Bytes::from(body))
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        Written {
            objects: written.len(),
            bytes: written.iter().sum(),
        }
    }

    async fn write_one(&self, path: Path, body: Bytes) -> usize {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(10))
            .with_jitter()
            .without_max_times()
            .build();
        let len = body.len();
        loop {
            let started = Instant::now();
            match self.try_write(&path, body.clone()).await {
                Ok(()) => {
                    tracing::debug!(object = %path, bytes = len, took = ?started.elapsed(), "object written");
                    return len;
                }
                Err(e) => {
                    self.metrics.errors.with_label_values(&["storage"]).inc();
                    let delay = backoff.next().unwrap_or(Duration::from_secs(10));
                    tracing::warn!(object = %path, error = %e, retry_in = ?delay, "writing object failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
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
    use pool_core::storage::StorageArgs;

    #[tokio::test]
    async fn writes_one_object_per_partition_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let storage = StorageArgs::for_url(dir.path().to_str().unwrap())
            .open()
            .unwrap();
        let metrics = WorkerMetrics::register(&prometheus::Registry::new());
        let writer = Writer::new(storage, 2, metrics);
        let p = |h| Partition {
            date: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            hour: h,
        };
        let mut parts = BTreeMap::new();
        parts.insert(p(9), b"a\n".to_vec());
        parts.insert(p(10), b"bb\n".to_vec());
        let w = writer.write_all(parts).await;
        assert_eq!(
            w,
            Written {
                objects: 2,
                bytes: 5
            }
        );
        let files: Vec<_> = std::fs::read_dir(dir.path().join("dt=2026-11-22/hr=10"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        assert_eq!(std::fs::read(&files[0]).unwrap(), b"bb\n");
        assert!(files[0].extension().is_some_and(|e| e == "json"));
    }
}
