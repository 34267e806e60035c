//! What each role's user may and may not do. Every refusal is checked on a channel of its own (the
//! broker closes a channel on ACCESS_REFUSED), and the queues are read back as the admin afterwards, so
//! a refusal that only looked like one would show.

use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ExchangeKind};
use pool_amqp::access::Role;
use pool_amqp::{AmqpArgs, Publisher, is_access_refused};
use testkit::queues::{declare_topology, delete_topology, ready_messages, test_amqp};
use testkit::users::TestUser;

fn events(n: usize) -> Vec<pool_core::Event> {
    testkit::pool_events(
        "pool-c6a.xlarge-us-east-1a",
        n,
        0,
        chrono::Duration::minutes(5),
    )
}

/// An admin-declared topology of the test's own.
async fn topology(tag: &str) -> AmqpArgs {
    let amqp = test_amqp(tag);
    declare_topology(&amqp).await;
    amqp
}

async fn channel(conn: &Connection) -> Channel {
    conn.create_channel().await.expect("a channel")
}

/// An operation a service must not do (each on a fresh channel) was refused with ACCESS_REFUSED.
fn refused(what: &str, result: Result<(), lapin::Error>) {
    match result {
        Ok(()) => panic!("{what} was allowed"),
        Err(e) => assert!(is_access_refused(&e), "{what}: not ACCESS_REFUSED but {e}"),
    }
}

async fn declare_queue(c: &Channel, name: &str) -> Result<(), lapin::Error> {
    c.queue_declare(
        name.into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .map(|_| ())
}

async fn declare_exchange(c: &Channel, name: &str) -> Result<(), lapin::Error> {
    c.exchange_declare(
        name.into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
}

async fn delete_queue(c: &Channel, name: &str) -> Result<(), lapin::Error> {
    c.queue_delete(name.into(), QueueDeleteOptions::default())
        .await
        .map(|_| ())
}

async fn purge(c: &Channel, name: &str) -> Result<(), lapin::Error> {
    c.queue_purge(name.into(), QueuePurgeOptions::default())
        .await
        .map(|_| ())
}

async fn get(c: &Channel, name: &str) -> Result<(), lapin::Error> {
    c.basic_get(name.into(), BasicGetOptions { no_ack: false })
        .await
        .map(|_| ())
}

async fn consume(c: &Channel, name: &str) -> Result<(), lapin::Error> {
    c.basic_consume(
        name.into(),
        "test".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
    .map(|_| ())
}

async fn bind(c: &Channel, queue: &str, exchange: &str) -> Result<(), lapin::Error> {
    c.queue_bind(
        queue.into(),
        exchange.into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
}

/// Publish one message to `exchange` on a confirm channel: `Ok` only when the broker acknowledged it.
async fn publish(conn: &Connection, exchange: &str) -> Result<(), String> {
    let c = channel(conn).await;
    c.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let confirm = c
        .basic_publish(
            exchange.into(),
            "".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"{}\n",
            BasicProperties::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    match confirm.await {
        Ok(Confirmation::Ack(None)) => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test]
async fn the_producer_may_publish_to_the_exchange_and_nothing_else() {
    let amqp = topology("producer").await;
    let user = TestUser::create(Role::Producer, &amqp).await;

    // Its work: the publisher (which only checks the exchange exists) gets every message confirmed.
    let publisher = Publisher::connect(&user.amqp, "test-producer")
        .await
        .expect("the producer connects without configure rights");
    assert_eq!(publisher.publish_confirmed(&events(3)).await.unwrap(), 3);
    publisher.close().await;
    assert_eq!(ready_messages(&amqp, &amqp.queue).await, 1);

    let conn = pool_amqp::connect(&user.amqp, "test-producer")
        .await
        .unwrap();
    let c = || channel(&conn);
    let q = &amqp.queue;
    refused(
        "declaring a queue",
        declare_queue(&c().await, &format!("{q}.mine")).await,
    );
    refused(
        "redeclaring the ingest queue",
        declare_queue(&c().await, q).await,
    );
    refused(
        "declaring an exchange",
        declare_exchange(&c().await, &format!("{q}.x")).await,
    );
    refused(
        "deleting the ingest queue",
        delete_queue(&c().await, q).await,
    );
    refused("purging the ingest queue", purge(&c().await, q).await);
    refused("getting from the ingest queue", get(&c().await, q).await);
    refused("consuming the ingest queue", consume(&c().await, q).await);
    refused(
        "reading the dead letters",
        get(&c().await, &amqp.dead_letter_queue).await,
    );
    refused(
        "binding a queue to the exchange",
        bind(&c().await, &amqp.dead_letter_queue, &amqp.exchange).await,
    );
    refused(
        "deleting the exchange",
        c().await
            .exchange_delete(
                amqp.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await,
    );
    assert!(
        publish(&conn, &amqp.dead_letter_exchange).await.is_err(),
        "publishing to the dead-letter exchange is refused"
    );
    assert!(
        publish(&conn, "").await.is_err(),
        "publishing through the default exchange is refused"
    );
    let _ = conn.close(200, "bye".into()).await;

    // Nothing it was refused happened: its message is still there, nothing reached the dead letters.
    assert_eq!(ready_messages(&amqp, &amqp.queue).await, 1);
    assert_eq!(ready_messages(&amqp, &amqp.dead_letter_queue).await, 0);
    delete_topology(&amqp).await;
}

#[tokio::test]
async fn the_worker_may_read_its_queue_and_dead_letter_and_nothing_else() {
    let amqp = topology("worker").await;
    let producer = Publisher::connect(&amqp, "test-admin").await.unwrap();
    producer.publish_confirmed(&events(2)).await.unwrap();
    producer.close().await;
    let user = TestUser::create(Role::Worker, &amqp).await;
    let conn = pool_amqp::connect(&user.amqp, "test-worker").await.unwrap();

    // Its work: the topology check, reading the ingest queue, publishing dead letters.
    user.amqp
        .topology()
        .check(&conn, pool_amqp::Needs::Consumer)
        .await
        .expect("passive declarations need no permission");
    let c = channel(&conn).await;
    let got = c
        .basic_get(amqp.queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .expect("the worker reads its queue");
    assert!(got.is_some(), "a message was there");
    consume(&channel(&conn).await, &amqp.queue)
        .await
        .expect("the worker consumes its queue");
    publish(&conn, &amqp.dead_letter_exchange)
        .await
        .expect("the worker dead-letters");

    let c = || channel(&conn);
    let q = &amqp.queue;
    assert!(
        publish(&conn, &amqp.exchange).await.is_err(),
        "publishing to the events exchange is refused"
    );
    refused(
        "declaring a queue",
        declare_queue(&c().await, &format!("{q}.mine")).await,
    );
    refused(
        "deleting the ingest queue",
        delete_queue(&c().await, q).await,
    );
    refused(
        "reading the dead letters",
        get(&c().await, &amqp.dead_letter_queue).await,
    );
    refused(
        "purging the dead letters",
        purge(&c().await, &amqp.dead_letter_queue).await,
    );
    // (Purging its own queue cannot be refused: RabbitMQ grants queue.purge with `read`.)
    let _ = conn.close(200, "bye".into()).await;
    assert_eq!(ready_messages(&amqp, &amqp.dead_letter_queue).await, 1);
    delete_topology(&amqp).await;
}

#[tokio::test]
async fn the_replay_identity_may_read_dead_letters_and_publish_events_only() {
    let amqp = topology("replay").await;
    let user = TestUser::create(Role::Replay, &amqp).await;
    let conn = pool_amqp::connect(&user.amqp, "test-replay").await.unwrap();
    get(&channel(&conn).await, &amqp.dead_letter_queue)
        .await
        .expect("reads the dead letters");
    publish(&conn, &amqp.exchange)
        .await
        .expect("publishes to the events exchange");
    refused(
        "reading the ingest queue",
        get(&channel(&conn).await, &amqp.queue).await,
    );
    refused(
        "purging the ingest queue",
        purge(&channel(&conn).await, &amqp.queue).await,
    );
    refused(
        "declaring a queue",
        declare_queue(&channel(&conn).await, &format!("{}.mine", amqp.queue)).await,
    );
    assert!(publish(&conn, &amqp.dead_letter_exchange).await.is_err());
    let _ = conn.close(200, "bye".into()).await;
    delete_topology(&amqp).await;
}

#[tokio::test]
async fn the_monitor_reads_the_management_api_and_can_do_nothing_on_the_broker() {
    let amqp = topology("monitor").await;
    let user = TestUser::create(Role::Monitor, &amqp).await;

    // On the broker it may do nothing: no resource matches its permissions.
    let conn = pool_amqp::connect(&user.amqp, "test-monitor")
        .await
        .unwrap();
    let q = &amqp.queue;
    refused(
        "declaring a queue",
        declare_queue(&channel(&conn).await, &format!("{q}.mine")).await,
    );
    refused(
        "getting from the ingest queue",
        get(&channel(&conn).await, q).await,
    );
    refused(
        "purging the ingest queue",
        purge(&channel(&conn).await, q).await,
    );
    assert!(
        publish(&conn, &amqp.exchange).await.is_err(),
        "publishing is refused"
    );
    let _ = conn.close(200, "bye".into()).await;

    let client = reqwest::Client::new();
    let base = url::Url::parse(&user.management_url).unwrap();
    let (name, password) = (
        base.username().to_owned(),
        base.password().unwrap().to_owned(),
    );
    let mut plain = base.clone();
    plain.set_username("").unwrap();
    plain.set_password(None).unwrap();
    let queue_url = plain
        .join(&format!("api/queues/%2f/{}", amqp.queue))
        .unwrap();
    let res = client
        .get(queue_url.clone())
        .basic_auth(&name, Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the monitor reads queue statistics");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["name"], amqp.queue.as_str());

    // Writes through the management API are refused: declaring, deleting, purging, publishing (the
    // API answers a publish the broker refused with a 400 carrying the broker's ACCESS_REFUSED).
    async fn refused_http(r: reqwest::Response) {
        let s = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        assert!(
            s == 401 || s == 403 || (s == 400 && body.contains("ACCESS_REFUSED")),
            "a write answered {s} {body}"
        );
    }
    refused_http(
        client
            .put(
                plain
                    .join(&format!("api/queues/%2f/{}.mine", amqp.queue))
                    .unwrap(),
            )
            .basic_auth(&name, Some(&password))
            .json(&serde_json::json!({"durable": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused_http(
        client
            .delete(queue_url.clone())
            .basic_auth(&name, Some(&password))
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused_http(
        client
            .delete(queue_url.join(&format!("{}/contents", amqp.queue)).unwrap())
            .basic_auth(&name, Some(&password))
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused_http(
        client
            .post(
                plain
                    .join(&format!("api/exchanges/%2f/{}/publish", amqp.exchange))
                    .unwrap(),
            )
            .basic_auth(&name, Some(&password))
            .json(&serde_json::json!({"properties": {}, "routing_key": "", "payload": "{}", "payload_encoding": "string"}))
            .send()
            .await
            .unwrap(),
    ).await;
    refused_http(
        client
            .get(plain.join("api/users").unwrap())
            .basic_auth(&name, Some(&password))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ready_messages(&amqp, &amqp.queue).await, 0);
    delete_topology(&amqp).await;
}

#[tokio::test]
async fn services_need_the_topology_declared_and_say_how() {
    // Nothing declared, and a producer without configure rights: a clear error, not a channel error.
    let amqp = test_amqp("missing");
    let user = TestUser::create(Role::Producer, &amqp).await;
    let err = Publisher::connect(&user.amqp, "test").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("pool-amqp declare"), "{text}");
    assert!(text.contains(&amqp.exchange), "{text}");
}
