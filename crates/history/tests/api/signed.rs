//! Signed rollups (`ROLLUP_HMAC_KEY`): the compactor signs what it writes, the live view uses a rollup
//! only when its keyed digest matches, and a forged rollup (counts rewritten by someone who may write
//! under `_rollups/` but lacks the key) is refused, so the view's answers stay the raw events'.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use pool_core::window::Window;
use pool_history::compact::{CompactOptions, Compactor, Shard};
use pool_history::live::{LiveView, NoViewObserver, ViewOptions};
use pool_history::rollup::{self, SigningKey};
use pool_history::scan::NoObserver;
use pool_history::{EventSource, SourceOptions};
use pool_storage::Storage;

use crate::rollups::{assert_same, folder, generate, now, query, raw, view_options, view_tallies};

fn key() -> SigningKey {
    SigningKey::from_secret(b"the compactor's and pool-selector's secret").unwrap()
}

async fn compact_signed(storage: &Storage, key: Option<SigningKey>) {
    let source = Arc::new(EventSource::new(
        storage.clone(),
        SourceOptions {
            rollup_key: key,
            ..SourceOptions::default()
        },
        Arc::new(NoObserver),
    ));
    let compactor = Compactor::new(
        source,
        CompactOptions {
            settle: Duration::from_secs(600),
            shard: Shard::default(),
            concurrency: 2,
        },
    );
    let pass = compactor.run_once(now(), &|_, _| {}).await.unwrap();
    assert_eq!(pass.errors, 0, "{pass:?}");
}

async fn view_with(storage: &Storage, key: Option<SigningKey>) -> LiveView {
    let view = LiveView::new(
        storage.clone(),
        ViewOptions {
            rollup_key: key,
            ..view_options()
        },
        Arc::new(NoViewObserver),
    );
    view.refresh(now()).await.expect("the view loads");
    view
}

async fn rollup_keys(storage: &Storage) -> Vec<object_store::path::Path> {
    storage
        .store
        .list(Some(&storage.root.clone().join("_rollups")))
        .map(|m| m.unwrap().location)
        .collect()
        .await
}

/// Rewrite every rollup with every pool's spot terminations set to zero: what an attacker who wants
/// the worst pools to look best would write. `signing`: the key the forger signs with (not the real
/// one), or none.
async fn forge(storage: &Storage, signing: Option<&SigningKey>) -> usize {
    let keys = rollup_keys(storage).await;
    for path in &keys {
        let bytes = storage
            .store
            .get(path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let (manifest, mut rows) = rollup::decode(path.as_ref(), bytes, None).unwrap();
        for r in &mut rows {
            r.count.tally.spot_terminations = 0;
            r.count.moments.spot = Default::default();
        }
        let forged: Bytes = rollup::encode(&manifest, &mut rows, signing).unwrap();
        storage.store.put(path, forged.into()).await.unwrap();
    }
    keys.len()
}

#[tokio::test]
async fn signed_rollups_are_used_and_forged_ones_are_read_raw() {
    let (_dir, storage) = folder();
    generate(&storage, 21, 60).await;
    let raw = raw(&storage);
    let everything = query(Window::ALL, None);
    compact_signed(&storage, Some(key())).await;

    // Signed with the key: used.
    let view = view_with(&storage, Some(key())).await;
    let t = view.status().totals;
    assert!(t.rollup_hours >= 50, "signed rollups are used: {t:?}");
    assert_same(&raw, &view, &everything).await;

    // Forged: unsigned, and signed with another key. Neither is used; every hour is read raw and the
    // answer is still the raw events'.
    for forger in [None, SigningKey::from_secret(b"a guess")] {
        assert!(forge(&storage, forger.as_ref()).await > 0);
        let view = view_with(&storage, Some(key())).await;
        let t = view.status().totals;
        assert_eq!(t.rollup_hours, 0, "no forged rollup is used: {t:?}");
        assert_same(&raw, &view, &everything).await;
        let terminations = |v: &LiveView| -> u64 {
            view_tallies(v, &everything)
                .values()
                .map(|t| t.spot_terminations)
                .sum()
        };
        let honest = terminations(&view);
        assert!(honest > 0);

        // Without a key a reader would have believed it: the closed hours' terminations gone (only
        // the live hours, read raw, still have theirs).
        let fooled = view_with(&storage, None).await;
        assert!(fooled.status().totals.rollup_hours >= 50);
        assert!(
            terminations(&fooled) < honest / 2,
            "the forgery works on a reader without the key: {} of {honest}",
            terminations(&fooled)
        );
    }

    // The compactor refuses to build on forged rollups: it compacts those hours again, signed, and the
    // view uses them again.
    compact_signed(&storage, Some(key())).await;
    let view = view_with(&storage, Some(key())).await;
    assert!(view.status().totals.rollup_hours >= 50);
    assert_same(&raw, &view, &everything).await;
}
