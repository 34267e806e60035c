//! The consuming loop: one broker session at a time, reconnecting with backoff after a broker restart.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Confirmation};
use pool_core::amqp::{self, AmqpArgs, AmqpError, REJECTION_REASON_HEADER, Topology};
use tokio::sync::watch;

use crate::batch::{Added, Batch, DeadLetter, Limits, Message};
use crate::metrics::WorkerMetrics;
use crate::writer::Writer;

/// Longest rejection reason put into a header (the header table has to fit in a frame).
const MAX_REASON_BYTES: usize = 4096;

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

/// Consumes the ingest queue and writes batches through a [`Writer`].
pub struct Worker {
    amqp: AmqpArgs,
    topology: Topology,
    limits: Limits,
    prefetch: u16,
    writer: Writer,
    metrics: WorkerMetrics,
}

fn new_backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}

impl Worker {
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
            writer,
            metrics,
        }
    }

    /// Consume until `stop` turns true, then stop consuming, write and acknowledge the open batch, and
    /// return. Broker failures never end this loop: they are logged, counted, and followed by a
    /// reconnect with exponential backoff (200 ms doubling to 10 s). Messages left unacknowledged by a
    /// lost session are redelivered by the broker.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        let mut backoff = new_backoff();
        let mut sessions = 0u64;
        loop {
            if *stop.borrow() {
                return;
            }
            match self.session(&mut stop, &mut sessions, &mut backoff).await {
                Ok(()) => return,
                Err(e) => {
                    self.metrics.consuming.set(0);
                    self.metrics.errors.with_label_values(&["broker"]).inc();
                    let delay = backoff.next().unwrap_or(Duration::from_secs(10));
                    tracing::warn!(error = %e, retry_in = ?delay, "broker session ended; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => return,
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
        let conn = amqp::connect(&self.amqp, "ingest-worker").await?;
        let kind = self.topology.declare(&conn).await?;
        let channel = conn.create_channel().await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let dead_letters = conn.create_channel().await?;
        dead_letters
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let tag = format!("ingest-worker-{}", uuid::Uuid::new_v4().simple());
        let mut consumer = channel
            .basic_consume(
                self.topology.queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        *sessions += 1;
        if *sessions > 1 {
            self.metrics.reconnects.inc();
        }
        *backoff = new_backoff();
        self.metrics.consuming.set(1);
        tracing::info!(url = %self.amqp.redacted_url(), queue = %self.topology.queue, ?kind,
            prefetch = self.prefetch, "consuming");

        let mut batch = Batch::new(self.limits);
        loop {
            let deadline = batch.deadline();
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now).into()), if deadline.is_some() => {
                    self.flush(&channel, &dead_letters, &mut batch).await?;
                }
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        self.metrics.messages_consumed.inc();
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
                        }
                        if batch.is_full() {
                            self.flush(&channel, &dead_letters, &mut batch).await?;
                        }
                    }
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(SessionError::ConsumerCancelled),
                },
            }
        }

        // Shutdown: no new deliveries; what was delivered but is not in the batch stays unacknowledged
        // and goes back to the queue when the channel closes.
        tracing::info!(
            events = batch.events(),
            "stopping: cancelling the consumer and writing the open batch"
        );
        if let Err(e) = channel
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await
        {
            tracing::warn!(error = %e, "basic.cancel failed");
        }
        self.metrics.consuming.set(0);
        self.flush(&channel, &dead_letters, &mut batch).await?;
        let _ = channel.close(200, "shutdown".into()).await;
        let _ = dead_letters.close(200, "shutdown".into()).await;
        let _ = conn.close(200, "shutdown".into()).await;
        Ok(())
    }

    /// Dead-letter the batch's poison messages (confirmed), write its objects (durably), then
    /// acknowledge every message of the batch at once.
    async fn flush(
        &self,
        channel: &Channel,
        dead_letters: &Channel,
        batch: &mut Batch,
    ) -> Result<(), SessionError> {
        let Some(sealed) = batch.take() else {
            return Ok(());
        };
        if !sealed.dead.is_empty() {
            self.dead_letter(dead_letters, &sealed.dead).await?;
        }
        let started = Instant::now();
        let written = self.writer.write_all(sealed.partitions).await;
        self.metrics
            .write_latency
            .observe(started.elapsed().as_secs_f64());
        channel
            .basic_ack(sealed.last_tag, BasicAckOptions { multiple: true })
            .await?;
        self.metrics.events_written.inc_by(sealed.events as u64);
        self.metrics.objects_written.inc_by(written.objects as u64);
        self.metrics.bytes_written.inc_by(written.bytes as u64);
        self.metrics.batches.inc();
        self.metrics
            .batch_latency
            .observe(sealed.started.elapsed().as_secs_f64());
        tracing::debug!(messages = sealed.messages, events = sealed.events, objects = written.objects,
            bytes = written.bytes, took = ?sealed.started.elapsed(), "batch stored and acknowledged");
        Ok(())
    }

    /// Republish poison messages to the dead-letter exchange with the reason in a header, and wait for
    /// the broker to confirm every copy (only then may the originals be acknowledged).
    async fn dead_letter(
        &self,
        channel: &Channel,
        dead: &[DeadLetter],
    ) -> Result<(), SessionError> {
        let mut confirms = Vec::with_capacity(dead.len());
        for d in dead {
            let mut headers = d.message.properties.headers().clone().unwrap_or_default();
            let mut reason = d.reason.clone();
            if reason.len() > MAX_REASON_BYTES {
                let mut cut = MAX_REASON_BYTES;
                while !reason.is_char_boundary(cut) {
                    cut -= 1;
                }
                reason.truncate(cut);
            }
            let text = |s: &str| AMQPValue::LongString(LongString::from(s));
            headers.insert(REJECTION_REASON_HEADER.into(), text(&reason));
            headers.insert("x-original-exchange".into(), text(&d.message.exchange));
            headers.insert(
                "x-original-routing-key".into(),
                text(&d.message.routing_key),
            );
            headers.insert("x-original-queue".into(), text(&self.topology.queue));
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            headers.insert("x-rejected-at".into(), AMQPValue::Timestamp(now));
            let properties = d
                .message
                .properties
                .clone()
                .with_delivery_mode(2)
                .with_headers(headers);
            let confirm = channel
                .basic_publish(
                    self.topology.dead_letter_exchange.as_str().into(),
                    d.message.routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &d.message.body,
                    properties,
                )
                .await?;
            confirms.push(confirm);
        }
        let results = tokio::time::timeout(
            self.amqp.confirm_timeout,
            futures::future::join_all(confirms),
        )
        .await
        .map_err(|_| {
            self.metrics
                .errors
                .with_label_values(&["dead_letter"])
                .inc();
            SessionError::DeadLetter(format!("no confirm within {:?}", self.amqp.confirm_timeout))
        })?;
        for r in results {
            match r? {
                Confirmation::Ack(None) => self.metrics.dead_lettered.inc(),
                other => {
                    self.metrics
                        .errors
                        .with_label_values(&["dead_letter"])
                        .inc();
                    return Err(SessionError::DeadLetter(format!(
                        "exchange {:?} answered {other:?}",
                        self.topology.dead_letter_exchange
                    )));
                }
            }
        }
        Ok(())
    }
}
