//! The ranking that learns, over HTTP: the new parameters and their errors, answers that explain
//! themselves (alternatives, probability of being best, staleness, degraded pools), Thompson draws, and
//! the backtest on a history with a known answer.

use chrono::Duration;
use testkit::pool_events;

use crate::helpers::{folder_with, spawn_app, url};
use chrono::{TimeDelta, Utc};
use pool_core::event::Partition;
use serde_json::Value;
use testkit::event;

/// `jobs` jobs of `pool`, the first `spot` lost to spot terminations, finishing inside the hour that
/// starts `hours_ago` hours before the current one.
fn in_hour(pool: &str, hours_ago: i64, jobs: usize, spot: usize) -> Vec<pool_core::Event> {
    let hour = Partition::of(&Utc::now()).start() - TimeDelta::hours(hours_ago);
    (0..jobs)
        .map(|i| {
            event(
                hour + TimeDelta::seconds(60 + i as i64),
                &format!("{pool}-{hours_ago}-{i}"),
                pool,
                if i < spot { "spot" } else { "ok" },
            )
        })
        .collect()
}

/// A small fleet: three pools of one instance type in three zones, and neighbours that inform the
/// priors.
fn fleet() -> Vec<pool_core::Event> {
    let age = Duration::minutes(90);
    testkit::fleet_events(&[
        ("pool-c6a.large-us-east-1a", 400, 4, age),
        ("pool-c6a.large-us-east-1b", 400, 6, age),
        ("pool-c6a.large-us-east-1c", 400, 40, age),
        ("pool-m6a.large-us-east-1a", 400, 8, age),
        ("pool-m6a.large-us-east-1b", 400, 12, age),
        ("pool-r6a.large-us-east-1c", 400, 20, age),
    ])
}

fn pools_of(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p["pool_id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_ranking_and_backtest_parameters_are_400s_naming_them() {
    let (dir, _) = folder_with(&fleet()).await;
    let app = spawn_app(url(&dir)).await;
    for (path, field) in [
        ("/get-pool?strategy=wilson&risk=0.9", "risk"),
        ("/get-pool?risk=1.5", "risk"),
        ("/get-pool?strategy=pooled&seed=3", "seed"),
        // The default strategy (pooled) does not read a seed either: the server says so.
        ("/get-pool?seed=3", "seed"),
        ("/get-pool?k=0", "k"),
        ("/get-pool?k=21", "k"),
        ("/get-pool?exclude_pools=c6a.large", "exclude_pools"),
        ("/pools?strategy=thompson&seed=x", "seed"),
        ("/backtest?step=0", "step"),
        ("/backtest?window=2h&step=3h", "step"),
        ("/backtest?window=90m", "window"),
        ("/backtest?strategies=best", "strategies"),
        ("/backtest?train_window=40d", "train_window"),
        ("/backtest.svg?min_jobs=0", "min_jobs"),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["field"], field, "{path}: {body}");
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }
    let (status, body) = app.get("/backtest?k=3").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn an_answer_explains_its_pick_and_offers_diverse_alternatives() {
    let (dir, _) = folder_with(&fleet()).await;
    let app = spawn_app(url(&dir)).await;

    let (status, body) = app.get("/get-pool?instance_types=c6a.large&k=3").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["strategy"], "pooled");
    assert_eq!(body["pool_id"], "pool-c6a.large-us-east-1a");
    assert_eq!(body["candidates"], 3);
    // Two alternatives, in the other two zones, second best first.
    assert_eq!(
        pools_of(&body, "alternatives"),
        ["pool-c6a.large-us-east-1b", "pool-c6a.large-us-east-1c"]
    );
    let p = body["probability_best"].as_f64().unwrap();
    assert!(p > 0.5 && p <= 1.0, "{body}");
    let margin = body["margin"].as_f64().unwrap();
    let second = body["alternatives"][0]["score"].as_f64().unwrap();
    assert!((margin - (second - body["score"].as_f64().unwrap())).abs() < 1e-12);
    // The posterior sits between the pool's own rate (1 %) and its neighbours'.
    let posterior = body["posterior_mean"].as_f64().unwrap();
    assert!(posterior > 0.01 && posterior < body["prior_mean"].as_f64().unwrap());
    assert!(body["prior_strength"].as_f64().unwrap() > 0.0);
    assert_eq!(body["degraded"], false);
    assert!(body["change"].is_null(), "{body}");
    let regret = body["expected_regret"].as_f64().unwrap();
    assert!((0.0..0.01).contains(&regret), "{body}");
    assert!(body["data_age_seconds"].as_u64().unwrap() >= 90 * 60 - 120);
    assert_eq!(body["stale"], true, "90 minutes old with STALE_AFTER=1h");
    // Without k there are no alternatives.
    let (_, body) = app.get("/get-pool?instance_types=c6a.large").await;
    assert!(body.get("alternatives").is_none(), "{body}");

    // A retry after a termination goes elsewhere.
    let (status, body) = app
        .get("/get-pool?instance_types=c6a.large&exclude_pools=pool-c6a.large-us-east-1a")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pool_id"], "pool-c6a.large-us-east-1b");
    assert_eq!(body["candidates"], 2);
    let (status, body) = app
        .get("/get-pool?availability_zones=us-east-1a&instance_types=c6a.large&exclude_pools=pool-c6a.large-us-east-1a")
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("excluded"),
        "{body}"
    );

    // /pools carries the same explanations.
    let (_, body) = app.get("/pools?instance_types=c6a.large").await;
    assert_eq!(
        pools_of(&body, "pools"),
        [
            "pool-c6a.large-us-east-1a",
            "pool-c6a.large-us-east-1b",
            "pool-c6a.large-us-east-1c"
        ]
    );
    assert_eq!(body["stale"], true);
    assert!(body["pools"][0]["posterior_mean"].is_number());
}

#[tokio::test]
async fn fresh_data_is_not_stale() {
    let events = pool_events("pool-c6a.large-us-east-1a", 50, 1, Duration::seconds(5));
    let (dir, _) = folder_with(&events).await;
    let app = spawn_app(url(&dir)).await;
    let (status, body) = app.get("/get-pool").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stale"], false, "{body}");
    assert!(body["data_age_seconds"].as_u64().unwrap() < 3600);
    assert_eq!(
        body["margin"],
        Value::Null,
        "a single candidate has no runner-up"
    );
    assert_eq!(body["probability_best"], 1.0);
    assert_eq!(body["expected_regret"], 0.0);
}

#[tokio::test]
async fn stale_is_about_the_pick_not_the_freshest_candidate() {
    // The pick (1 % over 3,000 jobs) last ran three hours ago; a fresh but bad pool ran a minute ago.
    let mut events = pool_events("pool-c6a.large-us-east-1a", 3000, 30, Duration::hours(3));
    events.extend(pool_events(
        "pool-m6a.large-us-east-1b",
        200,
        40,
        Duration::minutes(1),
    ));
    let (dir, _) = folder_with(&events).await;
    let app = spawn_app(url(&dir)).await;
    let (status, body) = app.get("/get-pool").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pool_id"], "pool-c6a.large-us-east-1a", "{body}");
    assert!(
        body["data_age_seconds"].as_u64().unwrap() >= 3 * 3600 - 120,
        "{body}"
    );
    assert_eq!(body["stale"], true, "{body}");
}

/// `probability_best` and `expected_regret` by Monte Carlo over the candidates' posteriors as `/pools`
/// reports them (`posterior_alpha`, `posterior_beta`).
fn monte_carlo(pools: &[Value], pick: &str) -> (f64, f64) {
    use rand::SeedableRng;
    use rand_distr::Distribution;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let dists: Vec<(bool, rand_distr::Beta<f64>)> = pools
        .iter()
        .map(|p| {
            let (a, b) = (
                p["posterior_alpha"].as_f64().unwrap(),
                p["posterior_beta"].as_f64().unwrap(),
            );
            (p["pool_id"] == pick, rand_distr::Beta::new(a, b).unwrap())
        })
        .collect();
    let draws = 200_000;
    let (mut wins, mut loss) = (0usize, 0.0);
    for _ in 0..draws {
        let mut mine = 0.0;
        let mut best = f64::INFINITY;
        for (is_pick, d) in &dists {
            let x = d.sample(&mut rng);
            if *is_pick {
                mine = x;
            }
            best = best.min(x);
        }
        wins += usize::from(mine == best);
        loss += mine - best;
    }
    (wins as f64 / draws as f64, loss / draws as f64)
}

#[tokio::test]
async fn the_pick_s_confidence_matches_its_definitions() {
    let (dir, _) = folder_with(&fleet()).await;
    let app = spawn_app(url(&dir)).await;
    for q in [
        "instance_types=c6a.large",
        "",
        "instance_types=c6a.large&strategy=naive",
    ] {
        let (_, pools) = app.get(&format!("/pools?{q}")).await;
        let (_, pick) = app.get(&format!("/get-pool?{q}")).await;
        let pool_list = pools["pools"].as_array().unwrap();
        let (p, l) = monte_carlo(pool_list, pick["pool_id"].as_str().unwrap());
        let best = pick["probability_best"].as_f64().unwrap();
        let regret = pick["expected_regret"].as_f64().unwrap();
        // Monte Carlo standard errors: ≤ 0.0011 and a few percent of the regret.
        assert!((best - p).abs() < 0.006, "{q}: {best} vs {p}");
        assert!((regret - l).abs() < 0.05 * l + 2e-5, "{q}: {regret} vs {l}");
    }
}

#[tokio::test]
async fn a_pool_that_turns_bad_is_flagged_and_loses_the_pick_within_hours() {
    // Two pools at 2 % for two days; in the last two hours pool a loses 12 of 40 jobs.
    let mut events = vec![];
    for h in 2..50 {
        events.extend(in_hour(
            "pool-c6a.large-us-east-1a",
            h,
            20,
            usize::from(h % 3 == 0),
        ));
        events.extend(in_hour(
            "pool-m6a.large-us-east-1b",
            h,
            20,
            usize::from(h % 2 == 0),
        ));
    }
    events.extend(in_hour("pool-c6a.large-us-east-1a", 1, 20, 6));
    events.extend(in_hour("pool-c6a.large-us-east-1a", 0, 20, 6));
    events.extend(in_hour("pool-m6a.large-us-east-1b", 1, 20, 0));
    events.extend(in_hour("pool-m6a.large-us-east-1b", 0, 20, 1));
    let (dir, _) = folder_with(&events).await;
    let app = spawn_app(url(&dir)).await;

    let (_, body) = app.get("/pools").await;
    let bad = body["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pool_id"] == "pool-c6a.large-us-east-1a")
        .unwrap()
        .clone();
    assert_eq!(bad["degraded"], true, "{bad}");
    assert!(
        bad["degraded_probability"].as_f64().unwrap() > 0.99,
        "{bad}"
    );
    assert_eq!(bad["change"]["scope"], "pool", "{bad}");
    assert!(bad["change"]["hours"].as_u64().unwrap() <= 8, "{bad}");
    let p = bad["change"]["probability"].as_f64().unwrap();
    assert!(
        p >= 0.5 && p == bad["change_probability"].as_f64().unwrap(),
        "{bad}"
    );
    // Every pool: `degraded` is its posterior's probability against the one threshold, and `change`
    // is reported exactly when it is more likely than not.
    for pool in body["pools"].as_array().unwrap() {
        let worse = pool["degraded_probability"].as_f64().unwrap();
        assert_eq!(pool["degraded"], worse > 0.99, "{pool}");
        let changed = pool["change_probability"].as_f64().unwrap();
        assert_eq!(pool["change"].is_null(), changed < 0.5, "{pool}");
    }
    let (_, body) = app.get("/get-pool").await;
    assert_eq!(body["pool_id"], "pool-m6a.large-us-east-1b", "{body}");
    // The whole window still vouches for pool a under a strategy that does not adapt: over 50 hours it
    // lost 16 + 12 = 28 of 1,000 jobs, against pool b's 25.
    let (_, body) = app.get("/get-pool?strategy=naive").await;
    assert_eq!(
        body["degraded"],
        body["pool_id"] == "pool-c6a.large-us-east-1a"
    );
}

#[tokio::test]
async fn thompson_is_reproducible_with_a_seed_and_spreads_traffic_without() {
    // Two pools with identical records: each is best with probability ½.
    let mut events = pool_events("pool-c6a.large-us-east-1a", 200, 10, Duration::minutes(5));
    events.extend(pool_events(
        "pool-m6a.large-us-east-1b",
        200,
        10,
        Duration::minutes(5),
    ));
    let (dir, _) = folder_with(&events).await;
    let app = spawn_app(url(&dir)).await;

    // The same seed, the same draw, every time (the scan's order of pools varies; the draw must not).
    let (_, a) = app.get("/get-pool?strategy=thompson&seed=7").await;
    for _ in 0..10 {
        let (_, b) = app.get("/get-pool?strategy=thompson&seed=7").await;
        assert_eq!(a["pool_id"], b["pool_id"]);
        assert_eq!(a["score"], b["score"]);
    }
    assert_eq!(a["seed"], 7);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..60 {
        let (status, body) = app.get("/get-pool?strategy=thompson").await;
        assert_eq!(status, 200, "{body}");
        seen.insert(body["pool_id"].as_str().unwrap().to_owned());
    }
    // Both pools get traffic (each is missed 60 times in a row with probability 2⁻⁶⁰).
    assert_eq!(seen.len(), 2, "{seen:?}");
}

#[tokio::test]
async fn the_backtest_replays_a_history_with_a_known_answer() {
    // Pool a: 10 jobs an hour, 1 terminated (10 %). Pool b: 10 jobs an hour, clean until 12 hours
    // before the last full hour, then 5 an hour. 48 hours of history before the current hour.
    let mut events = vec![];
    for h in 1..=48 {
        events.extend(in_hour("pool-c6a.large-us-east-1a", h, 10, 1));
        events.extend(in_hour(
            "pool-m6a.large-us-east-1b",
            h,
            10,
            if h <= 12 { 5 } else { 0 },
        ));
    }
    let (dir, _) = folder_with(&events).await;
    let app = spawn_app(url(&dir)).await;

    let (status, body) = app
        .get("/backtest?strategies=naive,pooled&window=24h&train_window=24h&step=1h")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["steps"], 24);
    assert_eq!(body["candidates"], 2);
    // Over the last 24 full hours: a 24 of 240 (10 %), b 60 of 240 (25 %).
    assert_eq!(
        body["hindsight"]["pool_id"], "pool-c6a.large-us-east-1a",
        "{body}"
    );
    assert_eq!(body["hindsight"]["jobs"], 240);
    assert_eq!(body["hindsight"]["spot_terminations"], 24);
    let by_name = |name: &str| {
        body["strategies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["strategy"] == name)
            .unwrap()
            .clone()
    };
    let naive = by_name("naive");
    let pooled = by_name("pooled");
    // Both pick b while it is clean (12 hours, no termination); naive stays on b while its window
    // rate is under a's 10 % (5t/240 < 0.1 for t < 5 bad hours), pooled leaves after the first bad hour.
    assert_eq!(naive["jobs"], 240);
    assert_eq!(naive["spot_terminations"], 5 * 5 + 7, "{naive}");
    assert_eq!(pooled["spot_terminations"], 5 + 11, "{pooled}");
    assert!(pooled["regret"].as_f64().unwrap() < naive["regret"].as_f64().unwrap());
    assert_eq!(pooled["cumulative_rate"].as_array().unwrap().len(), 24);

    // A seeded replay is reproducible, Thompson included.
    let q = "/backtest?strategies=thompson&window=24h&train_window=24h&seed=5";
    let (_, first) = app.get(q).await;
    for _ in 0..3 {
        let (_, again) = app.get(q).await;
        assert_eq!(first["strategies"], again["strategies"]);
    }

    let res = reqwest::get(format!(
        "{}/backtest.svg?strategies=naive,pooled&window=24h&train_window=24h",
        app.base
    ))
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let svg = res.text().await.unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("pooled") && svg.contains("best in hindsight"));
}
