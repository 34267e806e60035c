//! `/backtest` and `/backtest.svg`: keyed by the canonical form of their own grammar, refused like
//! pool-selector refuses them, and replayed with the upstream's content type.

use crate::helpers::{Upstream, shared_redis, spawn_app};

#[tokio::test]
async fn every_spelling_of_one_backtest_is_one_upstream_replay() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;

    let first = relay
        .get("/backtest?strategies=naive,pooled&window=14d")
        .await;
    assert_eq!(
        (first.status, first.cache.as_str()),
        (200, "MISS"),
        "{:?}",
        first.body
    );
    assert!(
        first.content_type.starts_with("application/json"),
        "{}",
        first.content_type
    );
    for same in [
        "/backtest?window=336h&strategies=naive,pooled",
        "/backtest?strategies=Naive,%20pooled,naive&window=1209600",
    ] {
        let r = relay.get(same).await;
        assert_eq!((r.status, r.cache.as_str()), (200, "HIT"), "{same}");
        assert_eq!(r.body, first.body, "{same}");
        assert_eq!(r.content_type, first.content_type, "{same}");
    }
    assert_eq!(upstream.requests_to("/backtest").await, 1);

    // The order of the strategies is kept (it is the order of the answer's series): another entry.
    let swapped = relay
        .get("/backtest?strategies=pooled,naive&window=14d")
        .await;
    assert_eq!((swapped.status, swapped.cache.as_str()), (200, "MISS"));
    assert_eq!(upstream.requests_to("/backtest").await, 2);
}

#[tokio::test]
async fn a_backtest_pool_selector_would_refuse_is_refused_without_upstream_work() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    for _ in 0..2 {
        for path in ["/backtest?step=0", "/backtest.svg?step=0"] {
            let r = relay.get(path).await;
            assert_eq!(r.status, 400, "{path}: {:?}", r.body);
            assert_eq!(r.body["field"], "step", "{path}: {:?}", r.body);
            assert!(
                r.body["message"].as_str().unwrap().contains("step"),
                "{path}: {:?}",
                r.body
            );
            assert!(r.content_type.starts_with("application/json"), "{path}");
            assert_eq!(r.cache, "", "{path} must not go through the cache");
        }
        // Ranking parameters are not backtest parameters.
        let r = relay.get("/backtest?limit=5").await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains("limit"));
    }
    assert_eq!(upstream.requests().await, 0);
}

#[tokio::test]
async fn the_chart_keeps_its_svg_content_type_on_miss_and_hit_and_across_replicas() {
    let upstream = Upstream::spawn().await;
    let redis = shared_redis();
    let a = spawn_app(&upstream.base, &redis, |_| {}).await;
    let b = a.replica(&upstream.base, &redis, |_| {}).await;
    let q = "/backtest.svg?strategies=pooled,naive&window=2d";

    let miss = a.get(q).await;
    assert_eq!(
        (miss.status, miss.cache.as_str()),
        (200, "MISS"),
        "{:?}",
        miss.body
    );
    assert_eq!(miss.content_type, "image/svg+xml");
    let svg = miss.body.as_str().expect("an SVG, not JSON");
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");

    // From the in-process cache, then from Redis (replica `b` holds no copy of its own).
    for (who, relay, same) in [
        ("a", &a, "/backtest.svg?window=48h&strategies=pooled,naive"),
        ("b", &b, q),
    ] {
        let hit = relay.get(same).await;
        assert_eq!((hit.status, hit.cache.as_str()), (200, "HIT"), "{who}");
        assert_eq!(hit.content_type, "image/svg+xml", "{who}");
        assert_eq!(hit.body, miss.body, "{who}");
    }
    assert_eq!(upstream.requests_to("/backtest.svg").await, 1);

    // The table for the same question is another entry, JSON.
    let table = a.get("/backtest?strategies=pooled,naive&window=2d").await;
    assert_eq!((table.status, table.cache.as_str()), (200, "MISS"));
    assert!(table.content_type.starts_with("application/json"));
    assert_eq!(upstream.requests_to("/backtest").await, 1);
}
