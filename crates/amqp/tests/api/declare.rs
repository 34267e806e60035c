//! `pool-amqp declare`, the one step that declares the topology, as a child process: the admin may,
//! a service's user may not, and a queue the broker will not make a quorum queue fails it.

use std::process::Command;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use pool_amqp::AmqpArgs;
use pool_amqp::access::Role;
use testkit::queues::{delete_topology, ready_messages, test_amqp};
use testkit::users::TestUser;

/// `pool-amqp declare` with `amqp`'s URL and names; (success, stderr).
fn declare(amqp: &AmqpArgs) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pool-amqp"))
        .arg("declare")
        .env("AMQP_URL", &amqp.url)
        .env("AMQP_EXCHANGE", &amqp.exchange)
        .env("AMQP_QUEUE", &amqp.queue)
        .env("AMQP_DEAD_LETTER_EXCHANGE", &amqp.dead_letter_exchange)
        .env("AMQP_DEAD_LETTER_QUEUE", &amqp.dead_letter_queue)
        .output()
        .expect("pool-amqp runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_admin_declares_the_topology_and_a_service_user_cannot() {
    let amqp = test_amqp("declare");
    // A producer's user (no configure right) cannot declare it.
    let producer = TestUser::create(Role::Producer, &amqp).await;
    let (ok, stderr) = declare(&producer.amqp);
    assert!(!ok, "a producer declared the topology: {stderr}");
    assert!(
        stderr.contains("ACCESS_REFUSED") || stderr.contains("access"),
        "{stderr}"
    );

    // The admin can, twice (idempotent), and the queue is then there for a producer to fill.
    let (ok, stderr) = declare(&amqp);
    assert!(ok, "{stderr}");
    let (ok, stderr) = declare(&amqp);
    assert!(ok, "declaring again: {stderr}");
    assert_eq!(ready_messages(&amqp, &amqp.queue).await, 0);
    delete_topology(&amqp).await;
}

#[tokio::test]
async fn a_queue_that_cannot_be_a_quorum_queue_fails_the_declaration() {
    let amqp = test_amqp("not-quorum");
    // An older deployment left a classic dead-letter queue of that name.
    let conn = pool_amqp::connect(&amqp, "test").await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare(
            amqp.dead_letter_queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = conn.close(200, "bye".into()).await;
    let (ok, stderr) = declare(&amqp);
    assert!(!ok, "a classic queue was accepted: {stderr}");
    assert!(
        stderr.contains("quorum") && stderr.contains(&amqp.dead_letter_queue),
        "{stderr}"
    );
    delete_topology(&amqp).await;
}
