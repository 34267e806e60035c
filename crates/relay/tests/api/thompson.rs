//! `strategy=thompson` without a seed is one random draw per request: the relay never caches, stores
//! or coalesces it, so every caller gets its own draw. With a seed the answer is reproducible and is
//! cached like any other.

use futures::future::join_all;

use crate::helpers::{Upstream, redis_holds, shared_redis, spawn_app};

const DRAW: &str = "/get-pool?strategy=thompson";

#[tokio::test]
async fn unseeded_thompson_requests_each_reach_the_upstream_and_nothing_is_cached() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;

    // One after the other: none is a HIT.
    for i in 0..5 {
        let r = relay.get(DRAW).await;
        assert_eq!(
            (r.status, r.cache.as_str()),
            (200, "BYPASS"),
            "{i}: {:?}",
            r.body
        );
        assert_eq!(r.age, Some(0));
        assert!(r.body["pool_id"].is_string(), "{:?}", r.body);
        assert!(r.content_type.starts_with("application/json"));
    }
    assert_eq!(upstream.requests_to("/get-pool").await, 5);

    // All at once: none joins another's fetch.
    let burst = join_all((0..20).map(|i| {
        // Respellings of the same question too: still one upstream request each.
        relay.get_owned(if i % 2 == 0 {
            DRAW.to_owned()
        } else {
            "/get-pool?strategy=Thompson&k=3".to_owned()
        })
    }))
    .await;
    for r in &burst {
        assert_eq!(
            (r.status, r.cache.as_str()),
            (200, "BYPASS"),
            "{:?}",
            r.body
        );
    }
    assert_eq!(upstream.requests_to("/get-pool").await, 25);

    for _ in 0..3 {
        let r = relay.get("/pools?strategy=thompson&limit=2").await;
        assert_eq!(
            (r.status, r.cache.as_str()),
            (200, "BYPASS"),
            "{:?}",
            r.body
        );
        assert_eq!(r.body["pools"].as_array().unwrap().len(), 2);
    }
    assert_eq!(upstream.requests_to("/pools").await, 3);

    assert!(!redis_holds(&relay.prefix, "GET /get-pool?strategy=thompson").await);
    assert!(!redis_holds(&relay.prefix, "GET /pools?strategy=thompson&limit=2").await);
    for (result, n) in [("hit", 0), ("miss", 0), ("stale", 0), ("bypass", 28)] {
        let counted = relay
            .metric("relay_cache_requests_total", &[("result", result)])
            .await;
        assert_eq!(counted, n, "{result}");
    }
    assert_eq!(relay.metric("relay_coalesced_waiters_total", &[]).await, 0);
    for (route, n) in [("/get-pool", 25), ("/pools", 3)] {
        let counted = relay
            .metric(
                "relay_uncacheable_total",
                &[("route", route), ("reason", "unseeded_thompson")],
            )
            .await;
        assert_eq!(counted, n, "{route}");
    }
}

#[tokio::test]
async fn seeded_thompson_is_cached_under_its_seed() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;

    let first = relay.get("/get-pool?strategy=thompson&seed=3").await;
    assert_eq!(
        (first.status, first.cache.as_str()),
        (200, "MISS"),
        "{:?}",
        first.body
    );
    let again = relay.get("/get-pool?seed=03&strategy=Thompson").await;
    assert_eq!((again.status, again.cache.as_str()), (200, "HIT"));
    assert_eq!(again.body, first.body);
    assert_eq!(upstream.requests_to("/get-pool").await, 1);
    assert!(redis_holds(&relay.prefix, "GET /get-pool?strategy=thompson&seed=3").await);

    // Another seed is another question.
    let other = relay.get("/get-pool?strategy=thompson&seed=4").await;
    assert_eq!((other.status, other.cache.as_str()), (200, "MISS"));
    assert_eq!(upstream.requests_to("/get-pool").await, 2);
    assert_eq!(relay.metric("relay_uncacheable_total", &[]).await, 0);
}

#[tokio::test]
async fn draws_by_pool_selectors_default_are_not_stored_either() {
    // pool-selector ranks by thompson when a request names no strategy: the relay cannot tell from the
    // request, but pool-selector's `Cache-Control: no-store` tells it.
    let upstream =
        Upstream::spawn_with(|s| s.strategy = pool_core::request::Strategy::Thompson).await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    for i in 0..3 {
        let r = relay
            .get("/get-pool?instance_types=c6a.xlarge,m6a.xlarge")
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_ne!(r.cache, "HIT", "{i}: a draw was served from the cache");
    }
    assert_eq!(upstream.requests_to("/get-pool").await, 3);
    assert!(
        !redis_holds(
            &relay.prefix,
            "GET /get-pool?instance_types=c6a.xlarge%2Cm6a.xlarge"
        )
        .await,
        "the draw was stored in Redis"
    );
    assert_eq!(
        relay
            .metric(
                "relay_uncacheable_total",
                &[("route", "/get-pool"), ("reason", "upstream_no_store")]
            )
            .await,
        3
    );
}
