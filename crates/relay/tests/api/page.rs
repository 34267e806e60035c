//! The ranking page at `/`, over HTTP: rendered from a real pool-selector's answers through the
//! relay's own cache, and every bad input a 400 page showing the error (escaped), never a 500.
//! The same page in a real browser: `browser.rs`.

use crate::helpers::{Upstream, dead_port, shared_redis, spawn_app};

#[tokio::test]
async fn the_page_ranks_the_pools_and_highlights_the_pick() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;

    let page = relay.get("/").await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    let html = page.body.as_str().expect("HTML, not JSON");
    assert!(
        html.contains(r#"<strong id="pick-pool">pool-r6a.xlarge-us-east-1c</strong>"#),
        "{html}"
    );
    let pick_row = html
        .lines()
        .find(|l| l.contains(r#"class="pick""#))
        .expect("a highlighted row");
    assert!(
        pick_row.contains("pool-r6a.xlarge-us-east-1c"),
        "{pick_row}"
    );
    for pool in [
        "pool-r6a.xlarge-us-east-1c",
        "pool-m6a.xlarge-us-east-1b",
        "pool-c6a.xlarge-us-east-1a",
    ] {
        assert!(html.contains(&format!(r#"data-pool="{pool}""#)), "{pool}");
    }
    assert_eq!(html.matches(r#"<svg class="bar""#).count(), 3);

    // The form's query narrows the ranking: without r6a, m6a is the pick.
    let page = relay
        .get("/?instance_types=c6a.xlarge%2Cm6a.xlarge&availability_zones=&window=24h&strategy=")
        .await;
    assert_eq!(page.status, 200);
    let html = page.body.as_str().unwrap();
    assert!(html.contains(r#"<strong id="pick-pool">pool-m6a.xlarge-us-east-1b</strong>"#));
    assert!(!html.contains("pool-r6a"), "{html}");
    assert!(
        html.contains(r#"value="c6a.xlarge,m6a.xlarge""#),
        "the form keeps its values"
    );
}

#[tokio::test]
async fn the_page_is_cached_like_the_api_and_shares_its_entries() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;

    let first = relay.get("/?window=24h&instance_types=c6a.xlarge").await;
    assert_eq!((first.status, first.cache.as_str()), (200, "MISS"));
    // Every spelling of the question is one entry, and it is the API's entry.
    let again = relay.get("/?instance_types=C6A.xlarge&window=86400").await;
    assert_eq!((again.status, again.cache.as_str()), (200, "HIT"));
    let api = relay
        .get("/pools?instance_types=c6a.xlarge&window=1d")
        .await;
    assert_eq!((api.status, api.cache.as_str()), (200, "HIT"));
    assert_eq!(upstream.requests_to("/pools").await, 1);
}

#[tokio::test]
async fn bad_input_is_a_400_page_with_the_error_escaped_and_no_upstream_work() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    for (query, field) in [
        ("instance_types=oops", "instance_types"),
        (
            "instance_types=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "instance_types",
        ),
        ("window=%22%3E%3Cimg%20src%3Dx%3E", "window"),
        ("strategy=%3Cb%3Ebest", "strategy"),
        ("bogus=%3Cscript%3E", ""),
        ("instance_types=a&instance_types=b", ""),
    ] {
        let page = relay.get(&format!("/?{query}")).await;
        assert_eq!(page.status, 400, "{query}: {:?}", page.body);
        assert_eq!(page.content_type, "text/html; charset=utf-8", "{query}");
        let html = page.body.as_str().unwrap();
        assert!(html.contains(r#"id="error""#), "{query}: {html}");
        assert!(html.contains(field), "{query}");
        for raw in ["<script", "<img", "<b>"] {
            assert!(
                !html.contains(raw),
                "{query} reflected {raw} unescaped: {html}"
            );
        }
    }
    let long = format!("/?instance_types={}", "a".repeat(5000));
    assert_eq!(relay.get(&long).await.status, 414);
    assert_eq!(upstream.requests().await, 0);
}

#[tokio::test]
async fn no_data_and_a_dead_upstream_are_pages_too_never_a_500() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    let page = relay.get("/?instance_types=x2idn.large").await;
    assert_eq!(page.status, 404);
    let html = page.body.as_str().unwrap();
    assert!(html.contains("No matching data"), "{html}");

    let dead = format!("http://127.0.0.1:{}", dead_port());
    let relay = spawn_app(&dead, &shared_redis(), |_| {}).await;
    let page = relay.get("/").await;
    assert_eq!(page.status, 502, "{:?}", page.body);
    assert!(page.body.as_str().unwrap().contains("unreachable"));
}

#[tokio::test]
async fn the_page_loads_nothing_from_elsewhere_and_says_so() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    let res = relay
        .client
        .get(format!("{}/", relay.base))
        .send()
        .await
        .unwrap();
    let csp = res
        .headers()
        .get("content-security-policy")
        .expect("a CSP")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let post = relay
        .client
        .post(format!("{}/", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
}
