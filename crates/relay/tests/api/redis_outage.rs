//! Redis is optional at run time: down, frozen, slow or absent, the relay keeps answering from its
//! in-process cache (so the request rate never falls through to pool-selector), reports the
//! degradation on /ready, and shares the cache through Redis again once it is back.

use std::time::Duration;

use futures::future::join_all;

use crate::helpers::{LateProxy, RedisServer, Upstream, dead_port, spawn_app};

#[tokio::test]
async fn redis_killed_mid_test_keeps_answering_from_process_and_caching_resumes_when_it_returns() {
    let upstream = Upstream::spawn().await;
    let mut redis = RedisServer::start().await;
    let relay = spawn_app(&upstream.base, &redis.url(), |s| {
        s.l1_ttl = Duration::ZERO;
        s.redis_retry = Duration::from_millis(200);
    })
    .await;
    let q = "/get-pool?instance_types=c6a.xlarge";
    assert_eq!(relay.get(q).await.cache, "MISS");
    assert_eq!(relay.get(q).await.cache, "HIT");
    let ready = relay.get("/ready").await;
    assert_eq!(
        (ready.status, &ready.body["redis"]),
        (200, &"up".into()),
        "{:?}",
        ready.body
    );

    redis.kill();
    let before = upstream.requests_to("/get-pool").await;
    for i in 0..20 {
        let r = relay.get(q).await;
        assert_eq!(r.status, 200, "request {i}: {:?}", r.body);
        // Even the first one, which finds Redis gone, is answered from the in-process copy (kept for
        // the entry's whole life, served that long while Redis is down): no trip to pool-selector.
        assert_eq!(r.cache, "HIT", "request {i}");
        assert_eq!(r.body["pool_id"], "pool-c6a.xlarge-us-east-1a");
    }
    assert_eq!(upstream.requests_to("/get-pool").await, before);
    // A question not asked before is fetched once, then answered from the process.
    let new = "/get-pool?instance_types=c6a.xlarge&window=1h";
    assert_eq!(relay.get(new).await.cache, "BYPASS");
    assert_eq!(relay.get(new).await.cache, "HIT");
    assert_eq!(upstream.requests_to("/get-pool").await, before + 1);
    let ready = relay.get("/ready").await;
    assert_eq!(ready.status, 200, "readiness never fails on Redis");
    assert_eq!(ready.body["redis"], "down");
    assert_eq!(ready.body["status"], "degraded");
    assert!(relay.metric("relay_redis_errors_total", &[]).await >= 1);
    assert_eq!(relay.metric("relay_redis_up", &[]).await, 0);
    assert!(relay.metric("relay_l1_fallback_stores_total", &[]).await >= 1);

    redis.restart().await;
    // Another question, asked once Redis is back, is stored in Redis again: a second replica with the
    // same prefix and no in-process copy hits it.
    let other = "/get-pool?instance_types=m6a.xlarge";
    testkit::eventually(
        "the relay to use Redis again",
        Duration::from_secs(60),
        || async { (relay.get("/ready").await.body["redis"] == "up").then_some(()) },
    )
    .await;
    assert_eq!(relay.get(other).await.cache, "MISS");
    let replica = relay
        .replica(&upstream.base, &redis.url(), |s| s.l1_ttl = Duration::ZERO)
        .await;
    assert_eq!(replica.get(other).await.cache, "HIT");
    assert_eq!(relay.metric("relay_redis_up", &[]).await, 1);
}

/// Twenty concurrent identical requests against a frozen (SIGSTOP) or a slow Redis: one upstream
/// request, every answer a 200.
async fn one_upstream_request_for_a_burst(relay: &crate::helpers::TestRelay, upstream: &Upstream) {
    let q = "/get-pool?instance_types=m6a.xlarge";
    let before = upstream.requests_to("/get-pool").await;
    let replies = join_all((0..20).map(|_| relay.get(q))).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["pool_id"], "pool-m6a.xlarge-us-east-1b");
    }
    // And later requests are hits from the in-process cache, not new scans.
    for _ in 0..20 {
        let r = relay.get(q).await;
        assert_eq!((r.status, r.cache.as_str()), (200, "HIT"), "{r:?}");
    }
    assert_eq!(upstream.requests_to("/get-pool").await, before + 1);
}

#[tokio::test]
async fn a_frozen_redis_still_leaves_a_working_cache_and_costs_no_further_timeouts() {
    let upstream = Upstream::spawn().await;
    let redis = RedisServer::start().await;
    let relay = spawn_app(&upstream.base, &redis.url(), |s| {
        s.l1_ttl = Duration::ZERO;
        s.redis_timeout = Duration::from_millis(100);
        s.redis_retry = Duration::from_secs(60);
    })
    .await;
    assert_eq!(relay.get("/get-pool").await.cache, "MISS");

    redis.pause();
    one_upstream_request_for_a_burst(&relay, &upstream).await;
    // The breaker is open: the requests after the first failures do not even try Redis.
    let errors = relay.metric("relay_redis_errors_total", &[]).await;
    assert!(errors >= 1);
    for _ in 0..10 {
        assert_eq!(
            relay
                .get("/get-pool?instance_types=m6a.xlarge")
                .await
                .status,
            200
        );
    }
    assert_eq!(relay.metric("relay_redis_errors_total", &[]).await, errors);
    redis.resume();
}

#[tokio::test]
async fn a_slow_redis_still_leaves_a_working_cache() {
    let upstream = Upstream::spawn().await;
    let redis = RedisServer::start().await;
    // Redis answers, but only after the relay's 100 ms command timeout: the proxy holds every answer
    // until the burst is over.
    let late = LateProxy::start(redis.port).await;
    let relay = spawn_app(
        &upstream.base,
        &format!("redis://127.0.0.1:{}", late.port),
        |s| {
            s.redis_timeout = Duration::from_millis(100);
            s.redis_retry = Duration::from_secs(60);
        },
    )
    .await;
    one_upstream_request_for_a_burst(&relay, &upstream).await;
    assert!(relay.metric("relay_redis_errors_total", &[]).await >= 1);
    assert_eq!(relay.metric("relay_redis_up", &[]).await, 0);
    late.release();
}

#[tokio::test]
async fn the_relay_starts_and_serves_without_redis() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(
        &upstream.base,
        &format!("redis://127.0.0.1:{}", dead_port()),
        |_| {},
    )
    .await;
    let r = relay.get("/get-pool").await;
    assert_eq!(
        (r.status, r.cache.as_str()),
        (200, "BYPASS"),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["pool_id"], "pool-r6a.xlarge-us-east-1c");
    assert_eq!(relay.get("/get-pool").await.cache, "HIT");
    let ready = relay.get("/ready").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["redis"], "down");
    assert_eq!(ready.body["upstream"], "up");
    assert_eq!(relay.get("/health").await.status, 200);
}

#[tokio::test]
async fn caches_through_redis_over_tls_with_the_harness_ca() {
    let upstream = Upstream::spawn().await;
    let rediss = testkit::require_env("TEST_REDISS_URL");
    let ca = testkit::require_env("TEST_TLS_CA_FILE");
    let relay = spawn_app(&upstream.base, &rediss, |s| {
        s.redis_ca_file = Some(ca.into());
        s.l1_ttl = Duration::ZERO;
    })
    .await;
    let q = "/get-pool?instance_types=c6a.xlarge";
    assert_eq!(relay.get(q).await.cache, "MISS");
    // No in-process copy (L1_TTL=0): this hit was read from Redis, over TLS.
    assert_eq!(relay.get(q).await.cache, "HIT");
    assert_eq!(relay.get("/ready").await.body["redis"], "up");
    assert_eq!(relay.metric("relay_redis_errors_total", &[]).await, 0);

    // Without the CA the server's certificate is not trusted: Redis is "down", answers still flow.
    let untrusted = spawn_app(&upstream.base, &rediss, |s| s.l1_ttl = Duration::ZERO).await;
    assert_eq!(untrusted.get(q).await.status, 200);
    assert_eq!(untrusted.get("/ready").await.body["redis"], "down");
}
