//! HIT, MISS, STALE, negative caching, errors never cached, key normalisation, upstream failures.

use std::time::Duration;

use crate::helpers::{Upstream, dead_port, shared_redis, spawn_app};

const BEST: &str = "/get-pool?instance_types=c6a.xlarge,m6a.xlarge";

#[tokio::test]
async fn a_miss_is_cached_and_then_served_as_a_hit_with_its_age() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;

    let first = relay.get(BEST).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.cache, "MISS");
    assert_eq!(first.age, Some(0));
    assert_eq!(first.body["pool_id"], "pool-m6a.xlarge-us-east-1b");

    let second = relay.get(BEST).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.cache, "HIT");
    assert_eq!(second.body, first.body);
    assert!(second.age.is_some());

    let pools = relay.get("/pools").await;
    assert_eq!(pools.status, 200);
    assert_eq!(pools.cache, "MISS");
    assert_eq!(pools.body["pools"].as_array().unwrap().len(), 3);
    assert_eq!(relay.get("/pools").await.cache, "HIT");

    assert_eq!(upstream.requests_to("/get-pool").await, 1);
    assert_eq!(upstream.requests_to("/pools").await, 1);
    assert_eq!(
        relay
            .metric("relay_cache_requests_total", &[("result", "hit")])
            .await,
        2
    );
    assert_eq!(
        relay
            .metric("relay_cache_requests_total", &[("result", "miss")])
            .await,
        2
    );
}

#[tokio::test]
async fn hits_come_from_redis_when_the_in_process_cache_is_off_and_the_age_grows() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |s| {
        s.l1_ttl = Duration::ZERO
    })
    .await;
    assert_eq!(relay.get(BEST).await.cache, "MISS");
    relay.advance(Duration::from_millis(1100));
    let hit = relay.get(BEST).await;
    assert_eq!(hit.cache, "HIT");
    assert_eq!(hit.age, Some(1), "{hit:?}");
    assert_eq!(relay.metric("relay_l1_hits_total", &[]).await, 0);
    assert_eq!(upstream.requests_to("/get-pool").await, 1);
}

#[tokio::test]
async fn an_in_process_copy_is_served_for_l1_ttl_then_redis_is_read_again() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |s| {
        s.l1_ttl = Duration::from_secs(60);
        s.cache_ttl_seconds = 600;
    })
    .await;
    assert_eq!(relay.get(BEST).await.cache, "MISS");
    assert_eq!(relay.get(BEST).await.cache, "HIT");
    assert_eq!(relay.metric("relay_l1_hits_total", &[]).await, 1);

    // Past L1_TTL the copy is not served: the hit is read from Redis, and mirrored again.
    relay.advance(Duration::from_secs(60));
    let from_redis = relay.get(BEST).await;
    assert_eq!(
        (from_redis.cache.as_str(), from_redis.age),
        ("HIT", Some(60))
    );
    assert_eq!(relay.metric("relay_l1_hits_total", &[]).await, 1);
    assert_eq!(relay.get(BEST).await.cache, "HIT");
    assert_eq!(relay.metric("relay_l1_hits_total", &[]).await, 2);
    assert_eq!(upstream.requests_to("/get-pool").await, 1);
}

#[tokio::test]
async fn a_second_replica_hits_what_the_first_stored() {
    let upstream = Upstream::spawn().await;
    let redis = shared_redis();
    let a = spawn_app(&upstream.base, &redis, |_| {}).await;
    let b = a.replica(&upstream.base, &redis, |_| {}).await;
    assert_eq!(a.get(BEST).await.cache, "MISS");
    assert_eq!(b.get(BEST).await.cache, "HIT");
    assert_eq!(upstream.requests_to("/get-pool").await, 1);
}

#[tokio::test]
async fn key_normalisation_makes_equivalent_queries_one_entry() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    assert_eq!(relay.get(BEST).await.cache, "MISS");
    for same in [
        "/get-pool?instance_types=m6a.xlarge,c6a.xlarge",
        "/get-pool?instance_types=M6A.XLARGE,c6a.xlarge,c6a.xlarge",
        "/get-pool?instance_types=c6a.xlarge%2Cm6a.xlarge",
        "/get-pool?instance_types=%20c6a.xlarge,,m6a.xlarge%20",
    ] {
        let r = relay.get(same).await;
        assert_eq!(
            (r.status, r.cache.as_str()),
            (200, "HIT"),
            "{same}: {:?}",
            r.body
        );
        assert_eq!(r.body["pool_id"], "pool-m6a.xlarge-us-east-1b");
    }
    // Different questions are different entries.
    let one = relay.get("/get-pool?instance_types=c6a.xlarge").await;
    assert_eq!(
        (one.cache.as_str(), &one.body["pool_id"]),
        ("MISS", &"pool-c6a.xlarge-us-east-1a".into())
    );
    let zones = relay
        .get("/get-pool?availability_zones=us-east-1c,us-east-1a&window=24h")
        .await;
    assert_eq!(zones.cache, "MISS");
    let zones = relay
        .get("/get-pool?window=24h&availability_zones=US-EAST-1A,us-east-1c,us-east-1a")
        .await;
    assert_eq!(zones.cache, "HIT");
    assert_eq!(zones.body["pool_id"], "pool-r6a.xlarge-us-east-1c");
    assert_eq!(upstream.requests_to("/get-pool").await, 3);
}

#[tokio::test]
async fn every_spelling_of_one_question_is_one_upstream_scan() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    let spellings = [
        "/get-pool?window=0",
        "/get-pool?window=00",
        "/get-pool?window=0s",
        "/get-pool?window=0h",
        "/get-pool?window=%200",
    ];
    for (i, q) in spellings.iter().enumerate() {
        let r = relay.get(q).await;
        assert_eq!(r.status, 200, "{q}: {:?}", r.body);
        assert_eq!(r.cache, if i == 0 { "MISS" } else { "HIT" }, "{q}");
    }
    for (i, q) in [
        "/pools?confidence=0.95&window=24h",
        "/pools?confidence=0.950&window=86400",
        "/pools?window=1d&confidence=.95",
    ]
    .iter()
    .enumerate()
    {
        let r = relay.get(q).await;
        assert_eq!(r.status, 200, "{q}: {:?}", r.body);
        assert_eq!(r.cache, if i == 0 { "MISS" } else { "HIT" }, "{q}");
    }
    assert_eq!(upstream.requests_to("/get-pool").await, 1);
    assert_eq!(upstream.requests_to("/pools").await, 1);
}

#[tokio::test]
async fn what_pool_selector_would_refuse_is_refused_by_the_relay_and_never_forwarded() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    for _ in 0..2 {
        let r = relay.get("/get-pool?instance_type=c6a.xlarge").await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("instance_type"),
            "{:?}",
            r.body
        );
        let bad = relay
            .get("/get-pool?instance_types=c6a.xlarge'%20OR%201=1")
            .await;
        assert_eq!(bad.status, 400, "{:?}", bad.body);
        assert_eq!(bad.body["field"], "instance_types", "{:?}", bad.body);
        let twice = relay.get("/pools?window=1h&window=2h").await;
        assert_eq!(twice.status, 400, "{:?}", twice.body);
    }
    assert_eq!(upstream.requests().await, 0);
}

#[tokio::test]
async fn a_404_is_cached_for_the_negative_ttl_only() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |s| {
        s.cache_ttl_seconds = 600;
        s.negative_ttl_seconds = 60;
        s.stale_grace_seconds = 0;
    })
    .await;
    let q = "/get-pool?instance_types=x2iedn.32xlarge";
    let first = relay.get(q).await;
    assert_eq!(
        (first.status, first.cache.as_str()),
        (404, "MISS"),
        "{:?}",
        first.body
    );
    assert_eq!(first.body["error"], "not_found");
    assert_eq!(relay.get(BEST).await.cache, "MISS");
    let again = relay.get(q).await;
    assert_eq!((again.status, again.cache.as_str()), (404, "HIT"));

    // Up to the last millisecond of the negative TTL, the 404 is a hit.
    relay.advance(Duration::from_millis(59_999));
    let last = relay.get(q).await;
    assert_eq!((last.status, last.cache.as_str()), (404, "HIT"));
    // Then it is asked again, while a 200 stored at the same time is still fresh.
    relay.advance(Duration::from_millis(1));
    let later = relay.get(q).await;
    assert_eq!((later.status, later.cache.as_str()), (404, "MISS"));
    let best = relay.get(BEST).await;
    assert_eq!((best.status, best.cache.as_str()), (200, "HIT"));
    assert_eq!(upstream.requests_to("/get-pool").await, 3);
}

#[tokio::test]
async fn past_its_ttl_an_entry_is_served_stale_while_one_refresh_runs() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |s| {
        s.cache_ttl_seconds = 1;
        s.stale_grace_seconds = 60;
    })
    .await;
    assert_eq!(relay.get(BEST).await.cache, "MISS");
    relay.advance(Duration::from_millis(1100));

    // A burst on the stale entry: every request is answered at once from the cache, one refresh runs.
    let burst = futures::future::join_all((0..50).map(|_| relay.get(BEST))).await;
    let mut stale = 0;
    for r in &burst {
        assert_eq!(r.status, 200);
        assert!(r.cache == "STALE" || r.cache == "HIT", "{r:?}");
        stale += usize::from(r.cache == "STALE");
    }
    assert!(stale >= 1);
    let refreshed = testkit::eventually("the refreshed entry", Duration::from_secs(30), || async {
        let r = relay.get(BEST).await;
        (r.cache == "HIT" && r.age == Some(0)).then_some(r)
    })
    .await;
    assert_eq!(refreshed.body["pool_id"], "pool-m6a.xlarge-us-east-1b");
    assert_eq!(upstream.requests_to("/get-pool").await, 2);
    // (A request that read the stale entry just before the refresh stored its result may start a
    // second refresh; it finds the fresh entry and does not ask the upstream: the count above.)
    assert!(relay.metric("relay_stale_refreshes_total", &[]).await >= 1);
}

#[tokio::test]
async fn a_stale_entry_is_served_while_the_upstream_is_down() {
    // Replica `a` fills the cache; replica `b` shares it but its upstream is down.
    let upstream = Upstream::spawn().await;
    let redis = shared_redis();
    let a = spawn_app(&upstream.base, &redis, |s| s.cache_ttl_seconds = 1).await;
    let down = format!("http://127.0.0.1:{}", dead_port());
    let b = a.replica(&down, &redis, |s| s.cache_ttl_seconds = 1).await;
    let fresh = a.get(BEST).await;
    assert_eq!(fresh.cache, "MISS");
    a.advance(Duration::from_millis(1100));
    for _ in 0..5 {
        let r = b.get(BEST).await;
        assert_eq!((r.status, r.cache.as_str()), (200, "STALE"), "{:?}", r.body);
        assert_eq!(r.body, fresh.body);
    }
    // The refreshes run in the background: wait for one to have failed.
    testkit::eventually(
        "a refresh to fail against the unreachable upstream",
        Duration::from_secs(30),
        || async {
            let failed = b
                .metric(
                    "relay_upstream_requests_total",
                    &[("outcome", "unavailable")],
                )
                .await;
            (failed >= 1).then_some(())
        },
    )
    .await;
    // With nothing cached, the same failure is a 502.
    let r = b.get("/pools").await;
    assert_eq!((r.status, r.cache.as_str()), (502, "MISS"), "{:?}", r.body);
    assert_eq!(r.body["error"], "upstream_unavailable");
}

#[tokio::test]
async fn an_unreachable_upstream_is_502_and_a_silent_one_504() {
    let redis = shared_redis();
    let down = spawn_app(&format!("http://127.0.0.1:{}", dead_port()), &redis, |_| {}).await;
    let r = down.get(BEST).await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert_eq!(r.body["error"], "upstream_unavailable");
    assert!(r.body["message"].as_str().unwrap().contains("unreachable"));
    // Errors are not cached: the next request asks again.
    assert_eq!(down.get(BEST).await.status, 502);
    assert_eq!(
        down.metric(
            "relay_upstream_requests_total",
            &[("outcome", "unavailable")]
        )
        .await,
        2
    );

    let (silent, _) = testkit::silent_server().await;
    let slow = spawn_app(&silent, &redis, |s| {
        s.upstream_timeout = Duration::from_millis(300)
    })
    .await;
    let r = slow.get(BEST).await;
    assert_eq!(r.status, 504, "{:?}", r.body);
    assert_eq!(r.body["error"], "upstream_timeout");
    // Public clients learn what failed, never where the backend is or what it said.
    for body in [&r.body.to_string(), &down.get(BEST).await.body.to_string()] {
        assert!(!body.contains("127.0.0.1"), "{body}");
        assert!(
            !body.to_lowercase().contains("connection refused"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn an_upstream_answer_over_the_body_cap_is_a_502_not_a_cached_blob() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |s| {
        s.upstream_max_body_bytes = 64;
    })
    .await;
    let r = relay.get("/pools").await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert_eq!(r.body["error"], "bad_gateway");
    assert_eq!(relay.metric("relay_upstream_oversized_total", &[]).await, 1);
}

#[tokio::test]
async fn upstream_connections_are_bounded() {
    let (silent, accepted) = testkit::silent_server().await;
    let relay = std::sync::Arc::new(
        spawn_app(&silent, &shared_redis(), |s| {
            s.upstream_max_connections = 2;
            s.upstream_timeout = Duration::from_secs(60);
        })
        .await,
    );
    // Eight distinct questions at once (distinct keys: no coalescing) to an upstream that never
    // answers: two are sent, six wait for a connection, and no third connection is ever opened.
    let pending: Vec<_> = (1..=8)
        .map(|h| {
            let relay = std::sync::Arc::clone(&relay);
            tokio::spawn(async move { relay.get_owned(format!("/get-pool?window={h}h")).await })
        })
        .collect();
    testkit::eventually(
        "six fetches to wait for a connection",
        Duration::from_secs(60),
        || async { (relay.metric("relay_upstream_waiting", &[]).await == 6).then_some(()) },
    )
    .await;
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    for p in pending {
        p.abort();
    }
}
