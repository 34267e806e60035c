//! What the API accepts and refuses, and what it lists.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn bad_requests_get_a_400_naming_the_field() {
    let world = World::start().await;
    let app = world.simulated_launcher(&[(POOL_A, 0.0)]).await;

    let cases = [
        (
            json!({"application": "nope", "instance_types": ["c6a.xlarge"]}),
            "application",
        ),
        (
            json!({"application": "astronauts", "instance_types": []}),
            "instance_types",
        ),
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
    // An Idempotency-Key that cannot be one.
    let res = app
        .client
        .post(app.url("/launch"))
        .header("Idempotency-Key", "two words")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["field"], "Idempotency-Key", "{answer}");

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
    let post = &doc["paths"]["/launch"]["post"];
    for code in ["202", "200", "400", "401", "422", "429", "503"] {
        assert!(
            post["responses"][code].is_object(),
            "POST /launch documents {code}"
        );
    }
    assert!(doc["paths"]["/launches/{id}"]["delete"]["responses"]["409"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert_eq!(apps["default_application"], "astronauts");

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
    let (status, _) = cancel(&app, id).await;
    assert_eq!(status, 409);
    assert_eq!(
        app.metric("launcher_launches_total", &[("state", "COMPLETED")])
            .await,
        1.0
    );
    assert_eq!(
        app.metric(
            "launcher_attempt_duration_seconds_count",
            &[("outcome", "succeeded")]
        )
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

#[tokio::test]
async fn the_seeds_bare_post_launches_the_default_job() {
    let world = World::start().await;
    let app = world.simulated_launcher(&[(POOL_A, 0.0)]).await;
    // The seed's `curl -X POST http://localhost:8000/launch`: no body, no content type (and a token).
    let res = app.client.post(app.url("/launch")).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let launched: Value = res.json().await.unwrap();
    assert_eq!(launched["application"], "astronauts", "{launched}");
    assert_eq!(launched["caller"], CALLER);
    // DEFAULT_INSTANCE_TYPES includes c6a.xlarge, whose best pool the ranking knows.
    assert_eq!(launched["pool_id"], POOL_A, "{launched}");
    assert!(
        launched["instance_types"]
            .as_array()
            .unwrap()
            .contains(&json!("c6a.xlarge"))
    );
    let done = wait_finished(
        &app,
        launched["launch_id"].as_str().unwrap(),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    // `curl -d '{}'` (a form content type) is JSON to the launcher too.
    let res = app
        .client
        .post(app.url("/launch"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn callers_need_a_token_and_see_only_their_own_launches() {
    let world = World::start().await;
    let app = world.simulated_launcher(&[(POOL_A, 0.0)]).await;
    let anonymous = reqwest::Client::new();
    let made_up = client_for("not-a-token");
    for (method, path) in [
        (reqwest::Method::POST, "/launch"),
        (reqwest::Method::GET, "/launches"),
        (reqwest::Method::GET, "/launches/x"),
        (reqwest::Method::DELETE, "/launches/x"),
        (reqwest::Method::GET, "/applications"),
    ] {
        for client in [&anonymous, &made_up] {
            let res = client
                .request(method.clone(), app.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401, "{method} {path}");
            assert_eq!(
                res.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .split(' ')
                    .next(),
                Some("Bearer")
            );
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"], "unauthorized", "{body}");
        }
    }
    for path in ["/health", "/ready", "/metrics", "/openapi.json"] {
        let res = anonymous.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path} stays open");
    }

    let (status, launched) = post_launch(&app, &json!({})).await;
    assert_eq!(status, 202, "{launched}");
    let id = launched["launch_id"].as_str().unwrap();
    let bob = client_for(OTHER_TOKEN);
    let admin = client_for(ADMIN_TOKEN);
    let listed = |client: &reqwest::Client| {
        let req = client.get(app.url("/launches"));
        async move {
            let list: Value = req.send().await.unwrap().json().await.unwrap();
            list["launches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["launch_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(&app.client).await, [id]);
    assert_eq!(listed(&admin).await, [id]);
    assert!(listed(&bob).await.is_empty(), "bob sees only his own");
    let path = app.url(&format!("/launches/{id}"));
    assert_eq!(bob.get(&path).send().await.unwrap().status(), 404);
    assert_eq!(bob.delete(&path).send().await.unwrap().status(), 404);
    assert_eq!(admin.get(&path).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn without_launcher_tokens_every_launch_route_is_refused() {
    let world = World::start().await;
    let mut s = world.settings(&repo_templates());
    s.launcher_tokens = vec![];
    s.local.simulate_truth = Some(world.truth(&[(POOL_A, 0.0)]));
    s.local.simulate_only = true;
    let app = spawn_launcher(s).await;
    let res = app.client.post(app.url("/launch")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("LAUNCHER_TOKENS"),
        "{body}"
    );
    let (status, _) = app.get("/launches").await;
    assert_eq!(status, 401);
    let (status, _) = app.get("/health").await;
    assert_eq!(status, 200);
}
