//! An object store decorator between DataFusion and the real store. It does two jobs:
//!
//! * **Accounting.** Every object DataFusion reads is counted (objects, bytes) for the scan's report and
//!   the Prometheus counters.
//! * **Quarantine.** Arrow's JSON reader fails a whole query on one malformed line. Objects are immutable
//!   (the writers only ever add new keys), so once an object is known to be malformed it is *quarantined*:
//!   its valid lines are kept, re-serialised in the canonical form, and served in its place; its bad lines
//!   are counted and logged once with the object key. Clean objects pass straight through untouched, so
//!   the common case costs nothing.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload,
    PutResult,
};

use pool_core::event::Event;

/// A malformed object's usable content.
#[derive(Debug)]
pub struct Quarantined {
    /// Size of the original object (a re-written object under the same key would differ).
    pub original_size: u64,
    pub bad_lines: u64,
    pub good_lines: u64,
    /// The valid events, one canonical NDJSON line each.
    pub sanitized: Bytes,
}

/// What is known about objects across queries. Keyed by (path, size): objects are immutable, and the size
/// guards against someone overwriting a key in place.
#[derive(Debug, Default)]
pub struct Quarantine {
    bad: Mutex<HashMap<Path, Arc<Quarantined>>>,
    good: Mutex<HashSet<(Path, u64)>>,
}

/// Result of checking one object's lines.
pub struct Sanitized {
    pub quarantined: Quarantined,
    /// Up to a few `(line number, reason)` pairs for the log.
    pub examples: Vec<(usize, String)>,
}

impl Quarantine {
    pub fn get(&self, path: &Path) -> Option<Arc<Quarantined>> {
        self.bad.lock().expect("poisoned").get(path).cloned()
    }
    pub fn is_empty(&self) -> bool {
        self.bad.lock().expect("poisoned").is_empty()
    }
    pub fn is_known_good(&self, path: &Path, size: u64) -> bool {
        self.good
            .lock()
            .expect("poisoned")
            .contains(&(path.clone(), size))
    }
    pub fn mark_good(&self, path: Path, size: u64) {
        self.good.lock().expect("poisoned").insert((path, size));
    }
    pub fn insert(&self, path: Path, q: Quarantined) {
        self.bad.lock().expect("poisoned").insert(path, Arc::new(q));
    }

    /// Split `bytes` into lines and keep the ones that are valid events.
    pub fn sanitize(bytes: &[u8]) -> Sanitized {
        let mut out = Vec::with_capacity(bytes.len());
        let (mut bad, mut good) = (0u64, 0u64);
        let mut examples = Vec::new();
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            match Event::from_json(line) {
                Ok(e) => {
                    good += 1;
                    out.extend_from_slice(e.to_json().as_bytes());
                    out.push(b'\n');
                }
                Err(err) => {
                    bad += 1;
                    if examples.len() < 5 {
                        examples.push((i + 1, err.to_string()));
                    }
                }
            }
        }
        Sanitized {
            quarantined: Quarantined {
                original_size: bytes.len() as u64,
                bad_lines: bad,
                good_lines: good,
                sanitized: Bytes::from(out),
            },
            examples,
        }
    }
}

/// Per-scan counters.
#[derive(Debug, Default)]
pub struct ScanStats {
    pub objects: AtomicU64,
    pub bytes: AtomicU64,
    pub quarantined_objects: AtomicU64,
    pub skipped_lines: AtomicU64,
}

/// The decorator. One is made per query so its [`ScanStats`] belong to that query alone.
#[derive(Debug)]
pub struct ScanStore {
    inner: Arc<dyn ObjectStore>,
    quarantine: Arc<Quarantine>,
    pub stats: Arc<ScanStats>,
}

impl ScanStore {
    pub fn new(inner: Arc<dyn ObjectStore>, quarantine: Arc<Quarantine>) -> Self {
        Self {
            inner,
            quarantine,
            stats: Arc::default(),
        }
    }
}

impl fmt::Display for ScanStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScanStore({})", self.inner)
    }
}

fn slice_for(range: &Option<GetRange>, len: u64) -> Range<u64> {
    match range {
        None => 0..len,
        Some(GetRange::Bounded(r)) => r.start.min(len)..r.end.min(len),
        Some(GetRange::Offset(o)) => (*o).min(len)..len,
        Some(GetRange::Suffix(n)) => len.saturating_sub(*n)..len,
    }
}

#[async_trait]
impl ObjectStore for ScanStore {
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if let Some(q) = self.quarantine.get(location) {
            let mut meta = self.inner.head(location).await?;
            meta.size = q.sanitized.len() as u64;
            let range = slice_for(&options.range, meta.size);
            if !options.head {
                self.stats.objects.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .quarantined_objects
                    .fetch_add(1, Ordering::Relaxed);
                self.stats
                    .skipped_lines
                    .fetch_add(q.bad_lines, Ordering::Relaxed);
                self.stats
                    .bytes
                    .fetch_add(range.end - range.start, Ordering::Relaxed);
            }
            let body = q.sanitized.slice(range.start as usize..range.end as usize);
            return Ok(GetResult {
                payload: GetResultPayload::Stream(Box::pin(futures::stream::once(async move {
                    Ok(body)
                }))),
                meta,
                range,
                attributes: Default::default(),
            });
        }
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        if !head {
            self.stats.objects.fetch_add(1, Ordering::Relaxed);
            self.stats
                .bytes
                .fetch_add(result.range.end - result.range.start, Ordering::Relaxed);
        }
        Ok(result)
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_valid_lines_in_canonical_form() {
        let input = b"{\"finished_at\":\"2026-11-22T10:00:00Z\",\"job_id\":\"a\",\"pool_id\":\"pool-c6a.xlarge-us-east-1a\",\"status\":\"SUCCEEDED\",\"reason\":\"\"}\n\
{truncated\n\
\n\
{\"finished_at\":\"2026-11-22T10:00:00\",\"job_id\":\"b\",\"pool_id\":\"nope\",\"status\":\"SUCCEEDED\"}\n\
{\"finished_at\":\"2026-11-22T10:00:01.5\",\"job_id\":\"c\",\"pool_id\":\"pool-c6a.xlarge-us-east-1a\",\"status\":\"FAILED\",\"reason\":\"SPOT_INSTANCE_TERMINATION\"}";
        let s = Quarantine::sanitize(input);
        assert_eq!(s.quarantined.good_lines, 2);
        assert_eq!(s.quarantined.bad_lines, 2);
        assert_eq!(s.examples[0].0, 2);
        assert_eq!(s.examples[1].0, 4);
        let text = std::str::from_utf8(&s.quarantined.sanitized).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("\"finished_at\":\"2026-11-22T10:00:01.500\""));
    }

    #[test]
    fn ranges_are_clamped() {
        assert_eq!(slice_for(&None, 10), 0..10);
        assert_eq!(slice_for(&Some(GetRange::Bounded(2..50)), 10), 2..10);
        assert_eq!(slice_for(&Some(GetRange::Suffix(3)), 10), 7..10);
        assert_eq!(slice_for(&Some(GetRange::Offset(12)), 10), 10..10);
    }
}
