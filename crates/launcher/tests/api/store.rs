//! The durable store over `rediss://`: the launcher reaches Redis through `pool-redis`, so a Redis whose
//! certificate is signed by a private CA (`TLS_CA_FILE`) works here as it does for the relay.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn launches_are_kept_in_redis_over_tls_with_the_harness_ca() {
    let world = World::start().await;
    let rediss = testkit::require_env("TEST_REDISS_URL");
    let ca = testkit::require_env("TEST_TLS_CA_FILE");

    let mut s = world.settings(&repo_templates());
    s.local.simulate_truth = Some(world.truth(&[(POOL_A, 0.0)]));
    s.local.simulate_only = true;
    s.redis_url = Some(rediss.clone());
    s.redis_ca_file = Some(ca.into());
    let app = spawn_launcher(s.clone()).await;
    assert_eq!(app.get("/ready").await.0, 200);
    let (status, launched) = post_launch(
        &app,
        &json!({"application": "astronauts", "instance_types": ["c6a.xlarge"]}),
    )
    .await;
    assert_eq!(status, 202, "{launched}");
    let id = launched["launch_id"].as_str().unwrap().to_owned();
    let done = wait_finished(&app, &id, Duration::from_secs(60)).await;
    assert_eq!(done["state"], "COMPLETED", "{done}");

    // A second launcher on the same keys reads the launch back from Redis.
    let again = spawn_launcher(s.clone()).await;
    let (status, read) = again.get(&format!("/launches/{id}")).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["state"], "COMPLETED");

    // Without the CA the server's certificate is not trusted: the store is unavailable, and /ready says so.
    s.redis_ca_file = None;
    let untrusted = spawn_launcher(s).await;
    let (status, ready) = untrusted.get("/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["error"], "store_unavailable");
}
