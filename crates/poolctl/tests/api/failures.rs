//! Exit codes scripts can rely on, and errors that say what to do: 1 no data, 2 usage, 3 service.

use crate::helpers::{dead_url, poolctl, run, spawn_app, spawn_relay};

#[tokio::test]
async fn no_matching_data_exits_1_with_the_services_message() {
    let app = spawn_app().await;
    for args in [
        &["get-pool", "-t", "x2idn.large"][..],
        &["pools", "-z", "eu-west-1a"][..],
    ] {
        let mut cmd = poolctl();
        cmd.env("POOL_SELECTOR_URL", &app.relay.base).args(args);
        let out = run(cmd).await.expect(1);
        assert!(out.stdout().is_empty(), "{args:?}: {}", out.stdout());
        assert!(
            out.stderr().starts_with("error: no job events matching"),
            "{args:?}: {}",
            out.stderr()
        );
    }
}

#[tokio::test]
async fn usage_errors_exit_2_before_any_request() {
    // Nothing listens at the default URLs the helper sets: these fail before asking anything.
    for (args, says) in [
        (&["get-pool", "-t", "oops"][..], "instance_types"),
        (&["pools", "--window", "soon"][..], "window"),
        (&["get-pool", "--strategy", "best"][..], "unknown strategy"),
        (&["get-pool", "-k", "99"][..], "k"),
        (&["launch", "astronauts", "-t", "c6a"][..], "instance_types"),
        (&["launches", "../metrics"][..], "not a launch id"),
        (&["get-pool", "--no-such-flag"][..], "--no-such-flag"),
        (&["pools", "-o", "yaml"][..], "yaml"),
        (&["frobnicate"][..], "frobnicate"),
    ] {
        let out = run({
            let mut c = poolctl();
            c.args(args);
            c
        })
        .await
        .expect(2);
        assert!(out.stderr().contains(says), "{args:?}: {}", out.stderr());
    }
    let mut cmd = poolctl();
    cmd.args(["events", "send", "/no/such/file.ndjson"]);
    let out = run(cmd).await.expect(2);
    assert!(
        out.stderr().contains("cannot read /no/such/file.ndjson"),
        "{}",
        out.stderr()
    );
}

#[tokio::test]
async fn an_unreachable_service_exits_3_and_says_how_to_fix_it() {
    let dead = dead_url();
    let mut cmd = poolctl();
    cmd.env("POOL_SELECTOR_URL", &dead).arg("pools");
    let out = run(cmd).await.expect(3);
    let err = out.stderr();
    assert!(
        err.contains(&format!("cannot reach the relay at {dead}")),
        "{err}"
    );
    assert!(err.contains("make up"), "{err}");
    assert!(err.contains("POOL_SELECTOR_URL"), "{err}");

    for (args, setting) in [
        (&["scale"][..], "MONITOR_URL"),
        (&["launches"][..], "LAUNCHER_URL"),
    ] {
        let mut cmd = poolctl();
        cmd.args(args);
        let out = run(cmd).await.expect(3);
        assert!(out.stderr().contains("cannot reach"), "{}", out.stderr());
        assert!(out.stderr().contains(setting), "{}", out.stderr());
    }
}

#[tokio::test]
async fn a_relay_whose_upstream_is_down_exits_3() {
    let relay = spawn_relay(&dead_url()).await;
    let mut cmd = poolctl();
    cmd.env("POOL_SELECTOR_URL", &relay.base).arg("get-pool");
    let out = run(cmd).await.expect(3);
    assert!(
        out.stderr().contains("failed (502 Bad Gateway)"),
        "{}",
        out.stderr()
    );
    assert!(out.stderr().contains("retry"), "{}", out.stderr());
}

#[tokio::test]
async fn completions_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef poolctl"),
        ("fish", "complete -c poolctl"),
    ] {
        let mut cmd = poolctl();
        cmd.args(["completions", shell]);
        let out = run(cmd).await.expect(0);
        assert!(out.stdout().contains(marker), "{shell}");
        assert!(out.stdout().contains("get-pool"), "{shell}");
    }
    let mut cmd = poolctl();
    cmd.args(["completions", "tcsh"]);
    run(cmd).await.expect(2);
}
