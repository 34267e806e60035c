//! Reading back what a pipeline stored: every event line under a storage root.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use object_store::ObjectStoreExt;
use pool_core::Event;
use pool_storage::Storage;

/// Every event line stored under the root (copies included), with the object it came from.
pub async fn stored(storage: &Storage) -> Vec<(String, Event)> {
    let metas: Vec<_> = storage
        .store
        .list(Some(&storage.root))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|m| m.expect("listing the store"))
        .collect();
    let mut out = Vec::new();
    for meta in metas {
        let bytes = storage
            .store
            .get(&meta.location)
            .await
            .expect("reading an object")
            .bytes()
            .await
            .expect("reading an object");
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let event = Event::from_json(line)
                .unwrap_or_else(|e| panic!("{} holds an invalid line: {e}", meta.location));
            out.push((meta.location.to_string(), event));
        }
    }
    out
}

/// The distinct job ids stored.
pub async fn stored_job_ids(storage: &Storage) -> HashSet<String> {
    stored(storage)
        .await
        .into_iter()
        .map(|(_, e)| e.job_id.as_str().to_owned())
        .collect()
}

/// Wait until at least `want` distinct job ids are stored; returns them.
pub async fn wait_stored(storage: &Storage, want: usize, timeout: Duration) -> HashSet<String> {
    crate::eventually(
        &format!("{want} distinct job ids in storage"),
        timeout,
        || async {
            let ids = stored_job_ids(storage).await;
            (ids.len() >= want).then_some(ids)
        },
    )
    .await
}

/// Wait until exactly `want` event lines are stored (copies included).
pub async fn wait_stored_lines(storage: &Storage, want: usize, timeout: Duration) {
    crate::eventually(
        &format!("{want} event lines in storage"),
        timeout,
        || async { (stored(storage).await.len() == want).then_some(()) },
    )
    .await;
}
