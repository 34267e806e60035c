//! The per-client limit on cache misses: a client's requests that start an upstream fetch are counted
//! against its bucket (429 with Retry-After past it); hits, spellings of a cached question and
//! coalesced misses are free, another client has its own bucket, and a view of the ranking page, which
//! fetches the ranking and the chart, counts once. The rate is one per thousand seconds, so a bucket
//! never refills during a test, however slow the machine.

use futures::future::join_all;

use crate::helpers::{Upstream, shared_redis, spawn_app};

#[tokio::test]
async fn misses_past_a_clients_burst_are_429_and_hits_never_are() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |s| {
        s.miss_rate_per_client = 0.001;
        s.miss_burst_per_client = 3;
    })
    .await;

    // Three distinct questions: three misses, the whole burst.
    for q in [
        "/get-pool?instance_types=c6a.xlarge",
        "/pools?window=1h",
        "/pools?window=2h",
    ] {
        let r = relay.get(q).await;
        assert_eq!((r.status, r.cache.as_str()), (200, "MISS"), "{q}: {r:?}");
    }
    let asked = upstream.requests().await;

    // A fourth distinct question is refused before reaching pool-selector.
    let r = relay.get("/pools?window=3h").await;
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.body["error"], "rate_limited");
    assert_eq!(
        upstream.requests().await,
        asked,
        "nothing was sent upstream"
    );
    assert_eq!(relay.metric("relay_limited_total", &[]).await, 1);
    let res = relay
        .client
        .get(format!("{}/pools?window=4h", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1, "{wait}");

    // Hits are never limited, nor are other spellings of a cached question: the relay keys its cache
    // by the parsed, canonical query (a window rounded to its grain), so they are hits too.
    for q in [
        "/get-pool?instance_types=c6a.xlarge",
        "/get-pool?instance_types=C6A.XLARGE",
        "/pools?window=3600",
        "/pools?window=60m",
        "/pools?window=3601",
        "/pools?window=7200s",
    ] {
        for _ in 0..5 {
            let r = relay.get(q).await;
            assert_eq!((r.status, r.cache.as_str()), (200, "HIT"), "{q}: {r:?}");
        }
    }
    assert_eq!(upstream.requests().await, asked);

    // Another client address (127.0.0.2 is loopback too) has a bucket of its own.
    let other = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let res = other
        .get(format!("{}/pools?window=3h", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-cache"], "MISS");
}

#[tokio::test]
async fn concurrent_misses_for_one_question_stay_coalesced_and_cost_one() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |s| {
        s.miss_rate_per_client = 0.001;
        s.miss_burst_per_client = 1;
    })
    .await;
    let q = "/get-pool?instance_types=r6a.xlarge,m6a.xlarge";
    let replies = join_all((0..100).map(|_| relay.get(q))).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert_eq!(upstream.requests_to("/get-pool").await, 1);
    assert_eq!(relay.metric("relay_limited_total", &[]).await, 0);
    // The one miss was the whole burst: the next question is refused.
    assert_eq!(
        relay
            .get("/get-pool?instance_types=c6a.xlarge")
            .await
            .status,
        429
    );
}

#[tokio::test]
async fn a_view_of_the_ranking_page_counts_once_though_it_fetches_twice() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |s| {
        s.miss_rate_per_client = 0.001;
        s.miss_burst_per_client = 1;
    })
    .await;
    let res = relay
        .client
        .get(format!("{}/?instance_types=c6a.xlarge", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Both fetches went upstream on the one token: the ranking and the chart.
    assert_eq!(upstream.requests_to("/pools").await, 1);
    assert_eq!(upstream.requests_to("/backtest.svg").await, 1);

    // The next view of another question has no token left: the page says so, with Retry-After.
    let res = relay
        .client
        .get(format!("{}/?instance_types=m6a.xlarge", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // The first view again: both parts cached, served at no cost.
    let res = relay
        .client
        .get(format!("{}/?instance_types=c6a.xlarge", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-cache"], "HIT");
}
