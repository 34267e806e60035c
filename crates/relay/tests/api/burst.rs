//! Holding the burst: a cold cache under many identical concurrent requests sends one upstream request.

use futures::future::join_all;

use crate::helpers::{Upstream, shared_redis, spawn_app};

const Q: &str = "/get-pool?instance_types=r6a.xlarge,m6a.xlarge";

#[tokio::test]
async fn five_hundred_concurrent_cold_requests_reach_the_upstream_once() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;

    let replies = join_all((0..500).map(|_| relay.get(Q))).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.cache == "MISS" || r.cache == "HIT", "{r:?}");
        assert_eq!(r.body["pool_id"], "pool-r6a.xlarge-us-east-1c");
    }
    assert_eq!(upstream.requests_to("/get-pool").await, 1);
    let misses = replies.iter().filter(|r| r.cache == "MISS").count() as u64;
    // Misses joined the leader's fetch (a miss arriving just after it finished leads a new one, which
    // finds the entry in the cache and does not ask the upstream).
    let waiters = relay.metric("relay_coalesced_waiters_total", &[]).await;
    assert!(
        waiters > 0 && waiters < misses,
        "{waiters} waiters for {misses} misses"
    );
    assert_eq!(relay.metric("relay_upstream_requests_total", &[]).await, 1);
}

#[tokio::test]
async fn two_replicas_under_one_cold_burst_send_one_upstream_request() {
    let upstream = Upstream::spawn().await;
    let redis = shared_redis();
    let a = spawn_app(&upstream.base, &redis, |_| {}).await;
    let b = a.replica(&upstream.base, &redis, |_| {}).await;

    let replies = join_all((0..400).map(|i| if i % 2 == 0 { a.get(Q) } else { b.get(Q) })).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["pool_id"], "pool-r6a.xlarge-us-east-1c");
    }
    assert_eq!(upstream.requests_to("/get-pool").await, 1);
    let upstream_calls = a.metric("relay_upstream_requests_total", &[]).await
        + b.metric("relay_upstream_requests_total", &[]).await;
    assert_eq!(upstream_calls, 1);
}

#[tokio::test]
async fn a_cold_burst_without_redis_is_still_coalesced_in_process() {
    let upstream = Upstream::spawn().await;
    let nothing = format!("redis://127.0.0.1:{}", crate::helpers::dead_port());
    let relay = spawn_app(&upstream.base, &nothing, |_| {}).await;
    let replies = join_all((0..200).map(|_| relay.get(Q))).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{r:?}");
        assert!(["BYPASS", "HIT"].contains(&r.cache.as_str()), "{r:?}");
    }
    // Concurrent requests share one fetch, and later ones are answered by the in-process cache,
    // which keeps answers for their whole life while Redis is away.
    assert_eq!(upstream.requests_to("/get-pool").await, 1);
    let after = relay.get(Q).await;
    assert_eq!((after.status, after.cache.as_str()), (200, "HIT"));
}
