//! Redis is optional at run time: down, frozen or absent, the relay keeps answering (BYPASS), reports
//! the degradation on /ready, and caches again once Redis is back.

use std::time::{Duration, Instant};

use crate::support::{RedisServer, Upstream, dead_port, spawn_relay};

#[tokio::test]
async fn redis_killed_mid_test_keeps_answering_and_caching_resumes_when_it_returns() {
    let upstream = Upstream::spawn().await;
    let mut redis = RedisServer::start().await;
    let relay = spawn_relay(&upstream.base, &redis.url(), |s| {
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
    for i in 0..20 {
        let r = relay.get(q).await;
        assert_eq!(
            (r.status, r.cache.as_str()),
            (200, "BYPASS"),
            "request {i}: {:?}",
            r.body
        );
        assert_eq!(r.body["pool_id"], "pool-c6a.xlarge-us-east-1a");
        let other = relay.get("/pools?limit=1").await;
        assert_eq!(
            (other.status, other.cache.as_str()),
            (200, "BYPASS"),
            "{:?}",
            other.body
        );
    }
    let ready = relay.get("/ready").await;
    assert_eq!(ready.status, 200, "readiness never fails on Redis");
    assert_eq!(ready.body["redis"], "down");
    assert_eq!(ready.body["status"], "degraded");
    assert!(relay.metric("relay_redis_errors_total", &[]).await >= 1);
    assert_eq!(relay.metric("relay_redis_up", &[]).await, 0);
    assert!(
        relay
            .metric("relay_cache_requests_total", &[("result", "bypass")])
            .await
            >= 40
    );

    redis.restart().await;
    // The restarted server is empty: the first answer once it is reachable again is a MISS that
    // fills it, and the next one a HIT.
    testkit::eventually(
        "the relay to cache again",
        Duration::from_secs(10),
        || async { (relay.get(q).await.cache == "HIT").then_some(()) },
    )
    .await;
    assert_eq!(relay.get("/ready").await.body["redis"], "up");
    assert_eq!(relay.metric("relay_redis_up", &[]).await, 1);
}

#[tokio::test]
async fn a_frozen_redis_costs_at_most_its_timeout_and_then_nothing() {
    let upstream = Upstream::spawn().await;
    let redis = RedisServer::start().await;
    let relay = spawn_relay(&upstream.base, &redis.url(), |s| {
        s.l1_ttl = Duration::ZERO;
        s.redis_timeout = Duration::from_millis(100);
        s.redis_retry = Duration::from_secs(30);
    })
    .await;
    let q = "/get-pool?instance_types=m6a.xlarge";
    assert_eq!(relay.get(q).await.cache, "MISS");

    redis.pause();
    let started = Instant::now();
    let first = relay.get(q).await;
    assert_eq!(
        (first.status, first.cache.as_str()),
        (200, "BYPASS"),
        "{:?}",
        first.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The breaker is open: the following requests do not even try Redis (no further timeouts).
    let errors = relay.metric("relay_redis_errors_total", &[]).await;
    assert!(errors >= 1);
    for _ in 0..10 {
        assert_eq!(relay.get(q).await.cache, "BYPASS");
    }
    assert_eq!(relay.metric("relay_redis_errors_total", &[]).await, errors);
    redis.resume();
}

#[tokio::test]
async fn the_relay_starts_and_serves_without_redis() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_relay(
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
    let ready = relay.get("/ready").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["redis"], "down");
    assert_eq!(ready.body["upstream"], "up");
    assert_eq!(relay.get("/health").await.status, 200);
}
