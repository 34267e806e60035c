//! `dlq replay`: dead letters back to the events exchange, with confirms, as the `replay` identity
//! (read the dead-letter queue, write the exchange, nothing else); `--dry-run` lists and leaves them.

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use pool_amqp::AmqpArgs;
use pool_amqp::access::Role;
use testkit::queues::{declare_topology, delete_topology, drain, ready_messages, test_amqp};
use testkit::users::TestUser;
use testkit::{ndjson, pool_events};

use crate::helpers::{poolctl, run};

/// `poolctl dlq replay ARGS` against `amqp`'s broker and names.
fn replay(amqp: &AmqpArgs, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = poolctl();
    cmd.env("AMQP_URL", &amqp.url)
        .env("AMQP_EXCHANGE", &amqp.exchange)
        .env("AMQP_QUEUE", &amqp.queue)
        .env("AMQP_DEAD_LETTER_EXCHANGE", &amqp.dead_letter_exchange)
        .env("AMQP_DEAD_LETTER_QUEUE", &amqp.dead_letter_queue)
        .env_remove("AMQP_DECLARE_TOPOLOGY")
        .args(["dlq", "replay"])
        .args(args);
    cmd
}

/// Three dead letters, as the worker leaves them: NDJSON events and a reason.
async fn dead_letters(amqp: &AmqpArgs) {
    let conn = pool_amqp::connect(amqp, "test").await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for i in 0..3 {
        let events = pool_events(
            "pool-c6a.xlarge-us-east-1a",
            2,
            0,
            chrono::Duration::minutes(5 + i),
        );
        let mut headers = FieldTable::default();
        headers.insert(
            "x-rejection-reason".into(),
            AMQPValue::LongString(format!("storage refused the write: outage {i}").into()),
        );
        channel
            .basic_publish(
                amqp.dead_letter_exchange.as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                ndjson(&events).as_bytes(),
                BasicProperties::default()
                    .with_message_id(format!("dead-{i}").into())
                    .with_headers(headers),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn dead_letters_are_replayed_to_the_exchange_with_confirms() {
    let amqp = test_amqp("dlq");
    declare_topology(&amqp).await;
    dead_letters(&amqp).await;
    // The replay identity: read the dead letters, write the exchange, nothing else.
    let user = TestUser::create(Role::Replay, &amqp).await;

    // A dry run lists them and leaves them.
    let out = run(replay(&user.amqp, &["--dry-run", "-o", "json"]))
        .await
        .expect(0);
    let report = out.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        (report["waiting"].as_u64(), report["replayed"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(report["messages"][0]["events"], 2);
    assert_eq!(
        report["messages"][0]["reason"],
        "storage refused the write: outage 0"
    );
    testkit::eventually(
        "the dry run's messages back in the queue",
        Duration::from_secs(30),
        || async { (ready_messages(&amqp, &amqp.dead_letter_queue).await == 3).then_some(()) },
    )
    .await;
    assert_eq!(ready_messages(&amqp, &amqp.queue).await, 0);

    // Two replayed.
    let out = run(replay(&user.amqp, &["--limit", "2"])).await.expect(0);
    assert!(
        out.stdout().ends_with(&format!(
            "replayed 2 of 3 messages from {} to exchange {}\n",
            amqp.dead_letter_queue, amqp.exchange
        )),
        "{}",
        out.stdout()
    );
    assert_eq!(ready_messages(&amqp, &amqp.dead_letter_queue).await, 1);
    let ingest = drain(&amqp, &amqp.queue).await;
    assert_eq!(ingest.len(), 2);
    for (headers, body) in &ingest {
        assert!(headers.inner().contains_key("x-replayed-at"));
        assert_eq!(
            pool_core::event::ndjson::parse_events(body).unwrap().len(),
            2
        );
    }

    // The rest, then nothing left: exit 1 (no data).
    run(replay(&user.amqp, &[])).await.expect(0);
    assert_eq!(ready_messages(&amqp, &amqp.dead_letter_queue).await, 0);
    assert_eq!(ready_messages(&amqp, &amqp.queue).await, 1);
    let out = run(replay(&user.amqp, &[])).await.expect(1);
    assert!(out.stderr().contains("no message"), "{}", out.stderr());
    delete_topology(&amqp).await;
}

#[tokio::test]
async fn a_broker_that_cannot_be_reached_is_a_service_error() {
    let amqp = testkit::queues::amqp_on(
        &format!(
            "amqp://guest:guest@127.0.0.1:{}/%2f",
            testkit::process::free_port()
        ),
        "dlq-down",
    );
    let out = run(replay(&amqp, &[])).await.expect(3);
    assert!(out.stderr().contains("RabbitMQ"), "{}", out.stderr());
}
