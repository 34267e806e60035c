//! What the API accepts and refuses, and what it lists.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn bad_requests_get_a_400_naming_the_field() {
    let world = World::start().await;
    let app = world.simulated_launcher(&[(POOL_A, 0.0)]).await;

    let cases = [
        (json!({"instance_types": ["c6a.xlarge"]}), "application"),
        (
            json!({"application": "nope", "instance_types": ["c6a.xlarge"]}),
            "application",
        ),
        (json!({"application": "astronauts"}), "instance_types"),
        (
            json!({"application": "astronauts", "instance_types": ["c6a xlarge; DROP TABLE"]}),
            "instance_types",
        ),
        (
            json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "size": "huge"}),
            "size",
        ),
        (
            json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "max_attempts": 50}),
            "max_attempts",
        ),
        (
            json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "availability_zones": ["moon-1a"]}),
            "availability_zones",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = post_launch(&app, &body).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["field"], field, "{body} → {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    // Not JSON, and an unknown field: 400 JSON too.
    let res = app
        .client
        .post(app.url("/launch"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.json::<serde_json::Value>().await.unwrap()["message"].is_string());
    let (status, answer) = post_launch(
        &app,
        &json!({"application": "astronauts", "instance_type": ["c6a.xlarge"]}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");

    // Instance types the ranking knows nothing about: 422, said so.
    let (status, answer) = post_launch(
        &app,
        &json!({"application": "astronauts", "instance_types": ["x9z.metal"]}),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"], "no_pool");

    let (status, answer) = app.get("/launches/does-not-exist").await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = app.get("/launches?state=DONE").await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("state")),
        "{answer}"
    );
    let (status, answer) = app.get("/launches?limit=0").await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("limit")),
        "{answer}"
    );
    // Nothing was launched by any of it.
    let (_, list) = app.get("/launches").await;
    assert_eq!(list["launches"].as_array().unwrap().len(), 0, "{list}");
}

#[tokio::test]
async fn applications_launches_and_operations_are_listed() {
    let world = World::start().await;
    let app = world.simulated_launcher(&[(POOL_A, 0.0)]).await;

    let (status, apps) = app.get("/applications").await;
    assert_eq!(status, 200);
    assert_eq!(apps["applications"][0]["name"], "astronauts");
    assert_eq!(apps["applications"][0]["type"], "Python");
    let (status, ready) = app.get("/ready").await;
    assert_eq!(
        (status, ready["backend"].as_str()),
        (200, Some("local")),
        "{ready}"
    );
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/launch"]["post"].is_object());

    let (status, launched) = post_launch(
        &app,
        &json!({"application": "astronauts", "instance_types": ["c6a.xlarge"]}),
    )
    .await;
    assert_eq!(status, 202, "{launched}");
    assert_eq!(launched["pool_id"], POOL_A, "the ranking's best pool");
    assert_eq!(launched["attempts"][0]["state"], "SUBMITTED");
    let id = launched["launch_id"].as_str().unwrap();
    let done = wait_finished(&app, id, Duration::from_secs(60)).await;
    assert_eq!(done["state"], "COMPLETED", "{done}");

    let (_, list) = app.get("/launches?state=COMPLETED").await;
    assert_eq!(list["launches"][0]["launch_id"], id);
    let (_, list) = app.get("/launches?state=RUNNING").await;
    assert_eq!(list["launches"].as_array().unwrap().len(), 0);
    // A finished launch cannot be cancelled.
    let res = app
        .client
        .delete(app.url(&format!("/launches/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(
        app.metric("launcher_launches_total", &[("state", "COMPLETED")])
            .await,
        1.0
    );
    assert_eq!(
        app.metric("launcher_outcomes_published_total", &[]).await,
        1.0
    );
    let events = wait_outcomes(&world, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].job_id.as_str(),
        done["attempts"][0]["job_id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn active_launches_are_bounded_and_cancelled_runs_stop() {
    let world = World::start().await;
    let mut s = world.settings(&repo_templates());
    // A "spark-submit" that runs until stopped: the launches stay active.
    let fake = world.dir.path().join("spark-submit-forever");
    std::fs::write(&fake, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    s.local.spark_submit = fake.to_str().unwrap().into();
    s.max_active_launches = 2;
    let app = spawn_launcher(s).await;

    let body = json!({"application": "astronauts", "instance_types": ["c6a.xlarge"]});
    let (a, first) = post_launch(&app, &body).await;
    let (b, _) = post_launch(&app, &body).await;
    let (c, answer) = post_launch(&app, &body).await;
    assert_eq!((a, b), (202, 202));
    assert_eq!(c, 429, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("MAX_ACTIVE_LAUNCHES"),
        "{answer}"
    );

    // Running, then cancelled: the run's process group is stopped, nothing is published.
    let id = first["launch_id"].as_str().unwrap();
    let run_dir = world
        .dir
        .path()
        .join("runs")
        .join(first["attempts"][0]["run_name"].as_str().unwrap());
    let pid: i32 = testkit::eventually("the run to start", Duration::from_secs(30), || async {
        let (_, l) = app.get(&format!("/launches/{id}")).await;
        let pid = std::fs::read_to_string(run_dir.join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        (l["state"] == "RUNNING").then_some(pid)
    })
    .await;
    let res = app
        .client
        .delete(app.url(&format!("/launches/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let cancelled: serde_json::Value = res.json().await.unwrap();
    assert_eq!(cancelled["state"], "CANCELLED", "{cancelled}");
    testkit::eventually(
        "the cancelled run to stop",
        Duration::from_secs(30),
        || async {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                .is_err()
                .then_some(())
        },
    )
    .await;
    // A slot is free again.
    let (status, second) = post_launch(&app, &body).await;
    assert_eq!(status, 202, "{second}");
    for l in app.get("/launches?state=RUNNING").await.1["launches"]
        .as_array()
        .unwrap()
        .iter()
        .chain(
            app.get("/launches?state=SUBMITTED").await.1["launches"]
                .as_array()
                .unwrap(),
        )
    {
        let id = l["launch_id"].as_str().unwrap();
        let _ = app
            .client
            .delete(app.url(&format!("/launches/{id}")))
            .send()
            .await;
    }
    assert!(
        world.outcomes().await.is_empty(),
        "a cancelled launch publishes nothing"
    );
}

#[tokio::test]
async fn a_run_that_cannot_start_fails_its_launch_and_publishes_nothing() {
    let world = World::start().await;
    // A template whose job file is missing: the launch is refused at submission, visibly.
    let templates = world.dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("ghost.yaml"),
        "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nmetadata:\n  name: ghost\nspec:\n  type: Python\n  mainApplicationFile: local:///opt/spark/jobs/ghost.py\n",
    )
    .unwrap();
    let app = spawn_launcher(world.settings(&templates)).await;
    let (status, answer) = post_launch(
        &app,
        &json!({"application": "ghost", "instance_types": ["c6a.xlarge"]}),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"], "submission_failed");
    assert!(
        answer["message"].as_str().unwrap().contains("ghost.py"),
        "{answer}"
    );
    let (_, list) = app.get("/launches?state=FAILED").await;
    let failed = &list["launches"][0];
    assert_eq!(
        failed["attempts"][0]["reason"], "SUBMISSION_FAILED",
        "{list}"
    );
    assert_eq!(failed["attempts"][0]["outcome_published"], false);
    assert!(
        world.outcomes().await.is_empty(),
        "a run that never started publishes nothing"
    );
}
