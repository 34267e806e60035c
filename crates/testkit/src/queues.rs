//! Queues of a test's own on a RabbitMQ, and what is in them: every test names its exchanges and
//! queues with a unique suffix, so tests share one broker without seeing each other's messages.

use std::time::Duration;

use lapin::options::{BasicGetOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use pool_amqp::AmqpArgs;
use pool_core::Event;

/// Settings naming exchanges and queues of their own on the broker at `url`, with timeouts generous
/// enough for a loaded machine. The URL's user is the test broker's admin, and services declare the
/// topology on connect (`AMQP_DECLARE_TOPOLOGY=true`, a single-user development broker), so each test
/// gets its own topology without a declaring step; the least-privilege tests use
/// [`crate::users::TestUser`] instead, which turns that off.
pub fn amqp_on(url: &str, tag: &str) -> AmqpArgs {
    let mut args = AmqpArgs::for_url(url).with_suffix(&crate::servers::unique(tag));
    args.connect_timeout = Duration::from_secs(5);
    args.confirm_timeout = Duration::from_secs(20);
    args.declare_topology = true;
    args
}

/// [`amqp_on`] the test broker (`TEST_AMQP_URL`).
pub fn test_amqp(tag: &str) -> AmqpArgs {
    amqp_on(&crate::servers::amqp_url(), tag)
}

/// Declare the exchanges and queues `args` names (as producers and the worker do), so the queue exists
/// and holds what is published from now on.
pub async fn declare_topology(args: &AmqpArgs) {
    let conn = pool_amqp::connect(args, "test-declare")
        .await
        .expect("the test RabbitMQ answers");
    args.topology()
        .declare(&conn)
        .await
        .expect("declaring the topology");
    let _ = conn.close(200, "bye".into()).await;
}

/// Messages ready in `queue` (quorum queues do not count unacknowledged ones here).
pub async fn ready_messages(args: &AmqpArgs, queue: &str) -> u32 {
    let conn = pool_amqp::connect(args, "test-inspect")
        .await
        .expect("connect");
    let channel = conn.create_channel().await.expect("channel");
    let ready = pool_amqp::ready_messages(&channel, queue)
        .await
        .expect("the queue exists");
    let _ = conn.close(200, "bye".into()).await;
    ready
}

/// Wait until `queue` holds no ready message.
pub async fn wait_drained(args: &AmqpArgs, queue: &str) {
    crate::eventually(
        &format!("queue {queue} to be drained"),
        Duration::from_secs(60),
        || async { (ready_messages(args, queue).await == 0).then_some(()) },
    )
    .await;
}

/// Take every message from `queue` (acknowledged, so they are gone): (headers, body), in order.
pub async fn drain(args: &AmqpArgs, queue: &str) -> Vec<(FieldTable, Vec<u8>)> {
    let conn = pool_amqp::connect(args, "test-drain")
        .await
        .expect("connect");
    let channel = conn.create_channel().await.expect("channel");
    let mut out = Vec::new();
    while let Some(m) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get")
    {
        out.push((
            m.delivery.properties.headers().clone().unwrap_or_default(),
            m.delivery.data.clone(),
        ));
    }
    let _ = conn.close(200, "bye".into()).await;
    out
}

/// [`drain`] the ingest queue and decode its messages' events, in order.
pub async fn drain_events(args: &AmqpArgs) -> Vec<Event> {
    drain(args, &args.queue)
        .await
        .into_iter()
        .flat_map(|(_, body)| {
            pool_core::event::ndjson::parse_events(&body).expect("messages hold valid NDJSON")
        })
        .collect()
}

/// Delete the test's exchanges and queues (best effort: the names are unique anyway).
pub async fn delete_topology(args: &AmqpArgs) {
    let Ok(conn) = pool_amqp::connect(args, "test-cleanup").await else {
        return;
    };
    if let Ok(channel) = conn.create_channel().await {
        for q in [&args.queue, &args.dead_letter_queue] {
            let _ = channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for x in [&args.exchange, &args.dead_letter_exchange] {
            let _ = channel
                .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
    let _ = conn.close(200, "bye".into()).await;
}
