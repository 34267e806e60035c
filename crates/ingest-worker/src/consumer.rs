//! The consuming loop: one broker session at a time, reconnecting with backoff after a broker restart.
//!
//! # Bounds
//!
//! * **Bytes in flight.** The prefetch the worker asks for is already bounded by bytes (see
//!   [`crate::settings::Settings::effective_prefetch`]); a message larger than `MAX_MESSAGE_BYTES` is
//!   dead-lettered without being parsed ([`crate::batch::Batch::add`]).
//! * **A store that refuses a write** for good: after `WRITE_MAX_ATTEMPTS` the writer gives the
//!   partition up, and its events (valid, canonical NDJSON) are published to the dead-letter exchange
//!   with the storage error in `x-rejection-reason` and the partition in `x-partition`; the messages
//!   are acknowledged only once the broker confirmed every such copy. Nothing accepted is lost.
//! * **A message that cannot be dead-lettered** (the dead-letter exchange is missing, routes it
//!   nowhere, refuses it or does not confirm it): the message is rejected with `requeue` and tried
//!   again when it comes back, while the rest of its batch goes on. Failures are counted per message
//!   across redeliveries (by a hash of its body and headers, in a bounded cache; a quorum queue's
//!   `x-delivery-count` header stands in when the cache forgot it). After `DEAD_LETTER_MAX_ATTEMPTS`
//!   failures the message is rejected *without* requeue — the ingest queue's own dead-lettering
//!   (`x-dead-letter-exchange`) takes it, or drops it if that cannot route it either — with an error
//!   logged and `dead_letter_given_up_total` counted, and the queue moves on.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, Consumer};
use pool_amqp::{
    AmqpArgs, AmqpError, EVENT_COUNT_HEADER, Needs, REJECTION_REASON_HEADER, Topology,
};
use pool_core::event::ndjson::CONTENT_TYPE_NDJSON;
use tokio::sync::watch;

use crate::batch::{Added, Batch, DeadLetter, Limits, Message};
use crate::metrics::WorkerMetrics;
use crate::writer::{GivenUp, Writer};

/// Longest rejection reason put into a header (the header table has to fit in a frame).
const MAX_REASON_BYTES: usize = 4096;
/// Header naming the hourly partition of events dead-lettered because the store refused them.
pub const PARTITION_HEADER: &str = "x-partition";
/// Header a quorum queue sets on a redelivered message: how many times it was delivered before.
const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";
/// Messages whose dead-lettering failed that are remembered (with their failure count).
const FAILURE_CACHE_CAPACITY: u64 = 10_000;
/// How long a failure count is remembered without the message coming back.
const FAILURE_CACHE_IDLE: Duration = Duration::from_secs(3600);

/// Why a broker session ended (the worker logs it, backs off and reconnects).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Amqp(#[from] AmqpError),
    #[error("RabbitMQ: {0}")]
    Lapin(#[from] lapin::Error),
    #[error("the broker cancelled the consumer")]
    ConsumerCancelled,
    #[error("dead-letter publish not confirmed: {0}")]
    DeadLetter(String),
}

impl SessionError {
    /// True when reconnecting cannot help (see [`AmqpError::is_fatal`]): the worker stops with it.
    pub fn is_fatal(&self) -> bool {
        matches!(self, SessionError::Amqp(e) if e.is_fatal())
    }
}

/// Consumes the ingest queue and writes batches through a [`Writer`].
pub struct Worker {
    amqp: AmqpArgs,
    topology: Topology,
    limits: Limits,
    prefetch: u16,
    dead_letter_max_attempts: u32,
    writer: Writer,
    metrics: WorkerMetrics,
    /// Failed dead-letter attempts per message (see [`message_key`]), across redeliveries and
    /// sessions.
    failures: moka::sync::Cache<u64, u32>,
    /// Simulated work per message (`SIMULATE_WORKLOAD_DURATION_IN_SEC`); zero = off.
    simulated_work: Duration,
}

fn new_backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}

/// The broker connection of one session and its two channels.
struct Session {
    conn: Connection,
    /// Consumes, acknowledges and rejects.
    consume: Channel,
    /// Publishes dead letters, in confirm mode. Reopened when the broker closed it (a publish to a
    /// missing exchange does that) or a confirm did not come in time.
    dead_letters: Channel,
}

impl Session {
    async fn dead_letter_channel(&mut self) -> Result<Channel, SessionError> {
        if !self.dead_letters.status().connected() {
            let channel = self.conn.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            tracing::info!("dead-letter channel reopened");
            self.dead_letters = channel;
        }
        Ok(self.dead_letters.clone())
    }
}

/// One message for the dead-letter exchange.
struct Letter<'a> {
    body: &'a [u8],
    routing_key: &'a str,
    properties: BasicProperties,
}

impl Worker {
    /// `prefetch` is the basic.qos prefetch to ask for (already bounded by bytes, see
    /// [`crate::settings::Settings::effective_prefetch`]).
    pub fn new(
        amqp: AmqpArgs,
        limits: Limits,
        prefetch: u16,
        writer: Writer,
        metrics: WorkerMetrics,
    ) -> Self {
        Self {
            topology: amqp.topology(),
            amqp,
            limits,
            prefetch,
            dead_letter_max_attempts: crate::settings::DEFAULT_DEAD_LETTER_MAX_ATTEMPTS,
            writer,
            metrics,
            failures: moka::sync::Cache::builder()
                .max_capacity(FAILURE_CACHE_CAPACITY)
                .time_to_idle(FAILURE_CACHE_IDLE)
                .build(),
            simulated_work: Duration::ZERO,
        }
    }

    /// Hold every message `work` before storing and acknowledging it on its own, as a worker busy
    /// with each message would (`SIMULATE_WORKLOAD_DURATION_IN_SEC`; zero = off). A stop during the
    /// simulated work leaves that message unacknowledged: the broker delivers it again.
    pub fn with_simulated_work(mut self, work: Duration) -> Self {
        self.simulated_work = work;
        self
    }

    /// Failed attempts at dead-lettering one message before it is rejected without requeue
    /// (`DEAD_LETTER_MAX_ATTEMPTS`, at least 1).
    pub fn with_dead_letter_max_attempts(mut self, attempts: u32) -> Self {
        self.dead_letter_max_attempts = attempts.max(1);
        self
    }

    /// Consume until `stop` turns true, then stop consuming, write and acknowledge the open batch, and
    /// return. Broker failures do not end this loop: they are logged, counted, and followed by a
    /// reconnect with exponential backoff (200 ms doubling to 10 s); a missing topology too (the step
    /// that declares it may run later). Messages left unacknowledged by a lost session are redelivered
    /// by the broker. Only a fatal error ([`SessionError::is_fatal`]: the broker refused the ingest
    /// queue as a quorum queue) ends it, returned.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Result<(), SessionError> {
        let mut backoff = new_backoff();
        let mut sessions = 0u64;
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            match self.session(&mut stop, &mut sessions, &mut backoff).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_fatal() => {
                    self.metrics.consuming.set(0);
                    tracing::error!(error = %e, "cannot consume; stopping");
                    return Err(e);
                }
                Err(e) => {
                    self.metrics.consuming.set(0);
                    self.metrics.errors.with_label_values(&["broker"]).inc();
                    let delay = backoff.next().unwrap_or(Duration::from_secs(10));
                    tracing::warn!(error = %e, retry_in = ?delay, "broker session ended; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => return Ok(()),
                    }
                }
            }
        }
    }

    async fn session(
        &self,
        stop: &mut watch::Receiver<bool>,
        sessions: &mut u64,
        backoff: &mut ExponentialBackoff,
    ) -> Result<(), SessionError> {
        let (mut link, mut consumer, tag) = self.open_link().await?;
        *sessions += 1;
        if *sessions > 1 {
            self.metrics.reconnects.inc();
        }
        *backoff = new_backoff();
        self.metrics.consuming.set(1);
        tracing::info!(url = %self.amqp.redacted_url(), queue = %self.topology.queue,
            prefetch = self.prefetch, max_message_bytes = self.limits.max_message_bytes, "consuming");

        let mut batch = Batch::new(self.limits);
        self.consume(stop, &mut link, &mut consumer, &mut batch)
            .await?;
        self.shut_down(link, &tag, batch).await
    }

    /// Connect, check (or declare) the topology, and start consuming the ingest queue: a channel
    /// that consumes (with the prefetch), one in confirm mode for dead letters, and the consumer
    /// with its tag.
    async fn open_link(&self) -> Result<(Session, Consumer, String), SessionError> {
        let conn = pool_amqp::connect(&self.amqp, "ingest-worker").await?;
        self.topology
            .prepare(&conn, self.amqp.declare_topology, Needs::Consumer)
            .await?;
        let channel = conn.create_channel().await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let dead_letters = conn.create_channel().await?;
        dead_letters
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let tag = format!("ingest-worker-{}", uuid::Uuid::new_v4().simple());
        let consumer = channel
            .basic_consume(
                self.topology.queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let link = Session {
            conn,
            consume: channel,
            dead_letters,
        };
        Ok((link, consumer, tag))
    }

    /// Batch deliveries until `stop` turns true (or the simulated work is stopped), writing and
    /// acknowledging a batch when it is full or its deadline passes. A consumer error or
    /// cancellation ends the session with an error.
    async fn consume(
        &self,
        stop: &mut watch::Receiver<bool>,
        link: &mut Session,
        consumer: &mut Consumer,
        batch: &mut Batch,
    ) -> Result<(), SessionError> {
        loop {
            let deadline = batch.deadline();
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now).into()), if deadline.is_some() => {
                    self.flush(link, batch).await?;
                }
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        self.metrics.messages_consumed.inc();
                        if !self.simulated_work.is_zero() && !self.simulate_work(stop).await {
                            // Stopped mid-work: this message stays unacknowledged.
                            return Ok(());
                        }
                        self.add_to_batch(batch, delivery);
                        // A simulated message is worked on and acknowledged on its own.
                        if batch.is_full() || !self.simulated_work.is_zero() {
                            self.flush(link, batch).await?;
                        }
                    }
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(SessionError::ConsumerCancelled),
                },
            }
        }
    }

    /// Add one delivery to the batch: its events counted, or the reason it will be dead-lettered
    /// logged.
    fn add_to_batch(&self, batch: &mut Batch, delivery: Delivery) {
        let message = Message {
            delivery_tag: delivery.delivery_tag,
            body: delivery.data,
            properties: delivery.properties,
            exchange: delivery.exchange.to_string(),
            routing_key: delivery.routing_key.to_string(),
            redelivered: delivery.redelivered,
        };
        match batch.add(message) {
            Added::Events(n) => self.metrics.events_consumed.inc_by(n as u64),
            Added::Rejected(reason) => {
                tracing::warn!(reason = %reason, "message is not valid events; it will be dead-lettered");
            }
            Added::Oversized(reason) => {
                self.metrics.oversized.inc();
                tracing::warn!(reason = %reason, "message is too large; it will be dead-lettered");
            }
        }
    }

    /// Shutdown: no new deliveries; what was delivered but is not in the batch stays unacknowledged
    /// and goes back to the queue when the channel closes. The open batch is written and
    /// acknowledged, then the channels and the connection are closed.
    async fn shut_down(
        &self,
        mut link: Session,
        tag: &str,
        mut batch: Batch,
    ) -> Result<(), SessionError> {
        tracing::info!(
            events = batch.events(),
            "stopping: cancelling the consumer and writing the open batch"
        );
        if let Err(e) = link
            .consume
            .basic_cancel(tag.into(), BasicCancelOptions::default())
            .await
        {
            tracing::warn!(error = %e, "basic.cancel failed");
        }
        self.metrics.consuming.set(0);
        self.flush(&mut link, &mut batch).await?;
        let _ = link.consume.close(200, "shutdown".into()).await;
        if link.dead_letters.status().connected() {
            let _ = link.dead_letters.close(200, "shutdown".into()).await;
        }
        let _ = link.conn.close(200, "shutdown".into()).await;
        Ok(())
    }

    /// Hold the message just received for the simulated work. False when `stop` came first.
    async fn simulate_work(&self, stop: &mut watch::Receiver<bool>) -> bool {
        self.metrics.simulating.set(1);
        let finished = tokio::select! {
            _ = stop.changed() => false,
            _ = tokio::time::sleep(self.simulated_work) => true,
        };
        self.metrics.simulating.set(0);
        if finished {
            self.metrics
                .simulated_work_seconds
                .inc_by(self.simulated_work.as_secs_f64());
        }
        finished
    }

    /// Dead-letter the batch's poison messages (confirmed; one that cannot be is rejected on its own,
    /// see the module docs), write its objects (durably), dead-letter the events of any write given up
    /// (confirmed), then acknowledge every other message of the batch at once.
    async fn flush(&self, link: &mut Session, batch: &mut Batch) -> Result<(), SessionError> {
        let Some(sealed) = batch.take() else {
            return Ok(());
        };
        // Messages rejected one by one: the batch's ack must not cover them.
        let mut settled = HashSet::new();
        if !sealed.dead.is_empty() {
            let letters: Vec<Letter> = sealed.dead.iter().map(|d| self.poison_letter(d)).collect();
            let outcomes = self.publish_dead_letters(link, &letters).await?;
            for (dead, outcome) in sealed.dead.iter().zip(outcomes) {
                match outcome {
                    Ok(()) => {
                        self.metrics.dead_lettered.inc();
                        self.failures.invalidate(&message_key(&dead.message));
                    }
                    Err(why) => {
                        self.dead_letter_failed(&link.consume, dead, &why).await?;
                        settled.insert(dead.message.delivery_tag);
                    }
                }
            }
        }

        let started = Instant::now();
        let written = self.writer.write_all(sealed.partitions).await;
        self.metrics
            .write_latency
            .observe(started.elapsed().as_secs_f64());
        let given_up_events: usize = written.given_up.iter().map(|g| g.events).sum();
        if !written.given_up.is_empty() {
            self.dead_letter_given_up(link, &written.given_up).await?;
        }

        if let Some(tag) = sealed.tags.iter().rev().find(|t| !settled.contains(*t)) {
            link.consume
                .basic_ack(*tag, BasicAckOptions { multiple: true })
                .await?;
        }
        self.metrics
            .events_written
            .inc_by(sealed.events.saturating_sub(given_up_events) as u64);
        self.metrics.objects_written.inc_by(written.objects as u64);
        self.metrics.bytes_written.inc_by(written.bytes as u64);
        self.metrics.batches.inc();
        self.metrics
            .batch_latency
            .observe(sealed.started.elapsed().as_secs_f64());
        tracing::debug!(messages = sealed.messages, events = sealed.events, objects = written.objects,
            bytes = written.bytes, given_up = written.given_up.len(), rejected = settled.len(),
            took = ?sealed.started.elapsed(), "batch stored and acknowledged");
        Ok(())
    }

    /// A poison message's copy for the dead-letter exchange: its body and properties, plus the reason
    /// and where it came from.
    fn poison_letter<'a>(&self, d: &'a DeadLetter) -> Letter<'a> {
        let mut headers = d.message.properties.headers().clone().unwrap_or_default();
        headers.insert(
            REJECTION_REASON_HEADER.into(),
            text(&truncate(&d.reason, MAX_REASON_BYTES)),
        );
        headers.insert("x-original-exchange".into(), text(&d.message.exchange));
        headers.insert(
            "x-original-routing-key".into(),
            text(&d.message.routing_key),
        );
        headers.insert("x-original-queue".into(), text(&self.topology.queue));
        headers.insert("x-rejected-at".into(), AMQPValue::Timestamp(unix_now()));
        Letter {
            body: &d.message.body,
            routing_key: &d.message.routing_key,
            properties: d
                .message
                .properties
                .clone()
                .with_delivery_mode(2)
                .with_headers(headers),
        }
    }

    /// A poison message could not be dead-lettered: count the failure; reject it with requeue to try
    /// again on redelivery, or — after `DEAD_LETTER_MAX_ATTEMPTS` failures — without requeue, so the
    /// queue's own dead-lettering takes it and the queue moves on.
    async fn dead_letter_failed(
        &self,
        channel: &Channel,
        dead: &DeadLetter,
        why: &str,
    ) -> Result<(), SessionError> {
        self.metrics
            .errors
            .with_label_values(&["dead_letter"])
            .inc();
        let message = &dead.message;
        let key = message_key(message);
        let failures = self.failures.get(&key).unwrap_or(0).saturating_add(1);
        // A quorum queue counts the earlier deliveries: evidence of earlier failures that this
        // worker's cache may not have seen (another replica, a restart).
        let delivered_before = delivery_count(&message.properties).unwrap_or(0);
        let attempts = failures.max(delivered_before.saturating_add(1));
        let message_id = message
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string())
            .unwrap_or_default();
        if attempts >= self.dead_letter_max_attempts {
            self.failures.invalidate(&key);
            tracing::error!(error = %why, reason = %dead.reason, attempts, message_id,
                bytes = message.body.len(), queue = %self.topology.queue,
                dead_letter_exchange = %self.topology.dead_letter_exchange,
                "dead-lettering failed {attempts} times (DEAD_LETTER_MAX_ATTEMPTS); rejecting the \
                 message without requeue: the queue's own x-dead-letter-exchange takes it, or the \
                 broker drops it if that cannot route it either");
            channel
                .basic_reject(message.delivery_tag, BasicRejectOptions { requeue: false })
                .await?;
            self.metrics.dead_letter_given_up.inc();
        } else {
            self.failures.insert(key, failures);
            tracing::warn!(error = %why, reason = %dead.reason, attempts,
                max_attempts = self.dead_letter_max_attempts, message_id,
                "dead-lettering failed; the message goes back to the queue to be tried again");
            channel
                .basic_reject(message.delivery_tag, BasicRejectOptions { requeue: true })
                .await?;
        }
        Ok(())
    }

    /// Publish the events of writes given up to the dead-letter exchange, in messages of at most
    /// `MAX_MESSAGE_BYTES` (a broker whose `max_message_size` is set to it accepts them), and wait for
    /// every confirm. Any failure ends the session without acknowledging: the messages are redelivered
    /// and nothing accepted is lost.
    async fn dead_letter_given_up(
        &self,
        link: &mut Session,
        given_up: &[GivenUp],
    ) -> Result<(), SessionError> {
        let mut letters = Vec::new();
        for g in given_up {
            let reason = truncate(
                &format!("storage refused the write: {}", g.error),
                MAX_REASON_BYTES,
            );
            for chunk in ndjson_chunks(&g.body, self.limits.max_message_bytes) {
                let events = chunk.iter().filter(|b| **b == b'\n').count();
                let mut headers = FieldTable::default();
                headers.insert(REJECTION_REASON_HEADER.into(), text(&reason));
                headers.insert(PARTITION_HEADER.into(), text(&g.partition.path()));
                headers.insert(
                    EVENT_COUNT_HEADER.into(),
                    AMQPValue::LongLongInt(events as i64),
                );
                headers.insert("x-original-queue".into(), text(&self.topology.queue));
                headers.insert("x-rejected-at".into(), AMQPValue::Timestamp(unix_now()));
                letters.push(Letter {
                    body: chunk,
                    routing_key: "",
                    properties: BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_content_type(CONTENT_TYPE_NDJSON.into())
                        .with_message_id(uuid::Uuid::now_v7().to_string().into())
                        .with_timestamp(unix_now())
                        .with_app_id("ingest-worker".into())
                        .with_headers(headers),
                });
            }
        }
        let outcomes = self.publish_dead_letters(link, &letters).await?;
        let failed: Vec<String> = outcomes.into_iter().filter_map(Result::err).collect();
        self.metrics
            .dead_lettered
            .inc_by((letters.len() - failed.len()) as u64);
        if let Some(first) = failed.first() {
            self.metrics
                .errors
                .with_label_values(&["dead_letter"])
                .inc_by(failed.len() as u64);
            return Err(SessionError::DeadLetter(format!(
                "{} of {} messages holding the events of a write given up: {first}; the batch stays \
                 unacknowledged and will be redelivered",
                failed.len(),
                letters.len()
            )));
        }
        Ok(())
    }

    /// Publish `letters` to the dead-letter exchange (persistent, `mandatory`, on the confirm channel)
    /// and wait for each confirm until the confirm timeout. One outcome per letter, in order: `Err`
    /// says why that one is not known to be stored (unroutable, nacked, unconfirmed, channel closed).
    /// `Err` overall only when no dead-letter channel could be opened.
    async fn publish_dead_letters(
        &self,
        link: &mut Session,
        letters: &[Letter<'_>],
    ) -> Result<Vec<Result<(), String>>, SessionError> {
        let channel = link.dead_letter_channel().await?;
        let exchange = &self.topology.dead_letter_exchange;
        let mut pending = Vec::with_capacity(letters.len());
        let mut broken: Option<String> = None;
        for letter in letters {
            if let Some(why) = &broken {
                pending.push(Err(why.clone()));
                continue;
            }
            match channel
                .basic_publish(
                    exchange.as_str().into(),
                    letter.routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    letter.body,
                    letter.properties.clone(),
                )
                .await
            {
                Ok(confirm) => pending.push(Ok(confirm)),
                Err(e) => {
                    let why = format!("publishing to exchange {exchange:?} failed: {e}");
                    broken = Some(why.clone());
                    pending.push(Err(why));
                }
            }
        }
        let timeout = self.amqp.confirm_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let outcomes = futures::future::join_all(pending.into_iter().map(|p| async move {
            let confirm = p?;
            match tokio::time::timeout_at(deadline, confirm).await {
                Err(_) => Err(format!("no confirm within {timeout:?}")),
                Ok(Err(e)) => Err(format!("the channel failed: {e}")),
                Ok(Ok(Confirmation::Ack(None))) => Ok(()),
                Ok(Ok(Confirmation::Ack(Some(returned)))) => Err(format!(
                    "exchange {exchange:?} routed it to no queue (returned: {} {})",
                    returned.reply_code, returned.reply_text
                )),
                Ok(Ok(Confirmation::Nack(_))) => Err(format!(
                    "exchange {exchange:?}: the broker refused it (nack)"
                )),
                Ok(Ok(Confirmation::NotRequested)) => {
                    Err("not confirmed: the channel is not in confirm mode".to_owned())
                }
            }
        }))
        .await;
        let timed_out = outcomes
            .iter()
            .any(|o| matches!(o, Err(why) if why.starts_with("no confirm")));
        if timed_out && channel.status().connected() {
            // Late confirms must not be taken for new ones: start the next attempt on a new channel.
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                channel.close(200, "confirm timeout".into()),
            )
            .await;
        }
        Ok(outcomes)
    }
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate(s: &str, max: usize) -> String {
    let mut cut = max.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s[..cut].to_owned()
}

/// Identifies a message across redeliveries: a hash of its body and headers, except the headers the
/// broker changes on redelivery.
pub fn message_key(message: &Message) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    message.body.hash(&mut h);
    if let Some(headers) = message.properties.headers() {
        for (name, value) in headers.inner() {
            if name.as_str() == DELIVERY_COUNT_HEADER {
                continue;
            }
            name.as_str().hash(&mut h);
            format!("{value:?}").hash(&mut h);
        }
    }
    h.finish()
}

/// The `x-delivery-count` header of a redelivered quorum-queue message.
fn delivery_count(properties: &BasicProperties) -> Option<u32> {
    let value = properties
        .headers()
        .as_ref()?
        .inner()
        .get(DELIVERY_COUNT_HEADER)?;
    let n: i128 = match value {
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        _ => return None,
    };
    Some(n.clamp(0, u32::MAX as i128) as u32)
}

/// Split NDJSON into pieces of at most `max` bytes, each ending at a line end (a single longer line
/// is a piece of its own).
fn ndjson_chunks(body: &[u8], max: usize) -> Vec<&[u8]> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut end = 0; // end of the last whole line that fits
    let mut pos = 0;
    while pos < body.len() {
        let line_end = body[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(body.len(), |i| pos + i + 1);
        if line_end - start > max && end > start {
            out.push(&body[start..end]);
            start = end;
        }
        end = line_end;
        pos = line_end;
    }
    if end > start {
        out.push(&body[start..end]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str, headers: &[(&str, AMQPValue)]) -> Message {
        let mut table = FieldTable::default();
        for (k, v) in headers {
            table.insert((*k).into(), v.clone());
        }
        Message {
            delivery_tag: 1,
            body: body.as_bytes().to_vec(),
            properties: BasicProperties::default().with_headers(table),
            exchange: "events".into(),
            routing_key: String::new(),
            redelivered: false,
        }
    }

    #[test]
    fn a_message_keeps_its_key_across_redeliveries() {
        let first = message("garbage", &[("x-custom", text("a"))]);
        let again = message(
            "garbage",
            &[
                ("x-custom", text("a")),
                (DELIVERY_COUNT_HEADER, AMQPValue::LongLongInt(3)),
            ],
        );
        assert_eq!(message_key(&first), message_key(&again));
        assert_ne!(
            message_key(&first),
            message_key(&message("garbage", &[("x-custom", text("b"))]))
        );
        assert_ne!(
            message_key(&first),
            message_key(&message("other", &[("x-custom", text("a"))]))
        );
        assert_eq!(delivery_count(&again.properties), Some(3));
        assert_eq!(delivery_count(&first.properties), None);
        let long = message("x", &[(DELIVERY_COUNT_HEADER, AMQPValue::LongInt(7))]);
        assert_eq!(delivery_count(&long.properties), Some(7));
    }

    #[test]
    fn ndjson_is_split_at_line_ends() {
        let body = b"aaaa\nbbbb\ncccc\ndddddddddddd\ne\n";
        let chunks = ndjson_chunks(body, 10);
        assert_eq!(
            chunks,
            [&b"aaaa\nbbbb\n"[..], b"cccc\n", b"dddddddddddd\n", b"e\n"]
        );
        assert_eq!(chunks.concat(), body);
        assert_eq!(ndjson_chunks(body, 1 << 20), [&body[..]]);
        assert!(ndjson_chunks(b"", 10).is_empty());
        assert_eq!(ndjson_chunks(b"ab\ncd", 3), [&b"ab\n"[..], b"cd"]);
    }

    #[test]
    fn reasons_are_cut_on_character_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
