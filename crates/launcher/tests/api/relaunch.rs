//! Spot terminations (simulated from a truth file): the outcome is published, and the launch runs
//! again on the next best pool, never on one it already tried, until it succeeds or runs out of attempts.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_spot_termination_is_relaunched_on_the_next_best_pool() {
    let world = World::start().await;
    // The ranking's favourite is always reclaimed; the next best never is.
    let app = world
        .simulated_launcher(&[(POOL_A, 1.0), (POOL_B, 0.0), (POOL_C, 0.0)])
        .await;

    let (status, launched) = post_launch(
        &app,
        &json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "max_attempts": 3}),
    )
    .await;
    assert_eq!(status, 202, "{launched}");
    let done = wait_finished(
        &app,
        launched["launch_id"].as_str().unwrap(),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    let attempts = done["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{done}");
    assert_eq!(attempts[0]["pool_id"], POOL_A);
    assert_eq!(attempts[0]["status"], "FAILED");
    assert_eq!(attempts[0]["reason"], "SPOT_INSTANCE_TERMINATION");
    assert_eq!(
        attempts[1]["pool_id"], POOL_B,
        "the next best pool, A excluded"
    );
    assert_eq!(attempts[1]["status"], "SUCCEEDED");
    assert_eq!(done["pool_id"], POOL_B);

    // Exactly one event per attempt, with the attempt's job id, pool and outcome.
    let events = wait_outcomes(&world, 2).await;
    assert_eq!(events.len(), 2, "{events:?}");
    for (e, a) in events.iter().zip(attempts) {
        assert_eq!(e.job_id.as_str(), a["job_id"].as_str().unwrap());
        assert_eq!(e.pool_id.as_str(), a["pool_id"].as_str().unwrap());
        assert_eq!(e.outcome.status(), a["status"].as_str().unwrap());
        assert_eq!(e.outcome.reason(), a["reason"].as_str().unwrap());
    }
    assert_eq!(
        app.metric(
            "launcher_attempts_total",
            &[("outcome", "spot_termination")]
        )
        .await,
        1.0
    );
    assert_eq!(
        app.metric("launcher_attempts_total", &[("outcome", "succeeded")])
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_launch_reclaimed_everywhere_fails_after_its_attempts() {
    let world = World::start().await;
    let app = world
        .simulated_launcher(&[(POOL_A, 1.0), (POOL_B, 1.0), (POOL_C, 1.0)])
        .await;

    for (max, want_attempts) in [(2, 2), (5, 3)] {
        let (status, launched) = post_launch(
            &app,
            &json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "max_attempts": max}),
        )
        .await;
        assert_eq!(status, 202, "{launched}");
        let done = wait_finished(
            &app,
            launched["launch_id"].as_str().unwrap(),
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(done["state"], "FAILED", "{done}");
        let attempts = done["attempts"].as_array().unwrap();
        // max_attempts, or fewer when every pool was tried (three pools of c6a.xlarge).
        assert_eq!(attempts.len(), want_attempts, "{done}");
        let pools: BTreeSet<&str> = attempts
            .iter()
            .map(|a| a["pool_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            pools.len(),
            attempts.len(),
            "never the same pool twice: {done}"
        );
        assert!(
            attempts
                .iter()
                .all(|a| a["reason"] == "SPOT_INSTANCE_TERMINATION")
        );
    }
    let events = wait_outcomes(&world, 5).await;
    assert_eq!(events.len(), 5);
    assert!(events.iter().all(|e| e.outcome.is_spot_termination()));
}
