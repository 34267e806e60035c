//! RabbitMQ (`--sink amqp://user:pass@host:port/vhost`): events published to the ingestion exchange
//! through pool-core's [`Publisher`], the same one pool-selector's `POST /events` uses.
//!
//! Messages are persistent NDJSON batches (up to `AMQP_MESSAGE_MAX_EVENTS` events each) published with
//! publisher confirms. Each [`Sink::send`] becomes one publish task; up to [`MAX_IN_FLIGHT`] run at once
//! so the generator keeps drawing events while the broker confirms earlier ones, and [`Sink::finish`]
//! returns only when every message is confirmed. When the broker restarts, each task reconnects with
//! backoff and resends exactly its messages that were not confirmed (a message whose confirm was lost
//! may be stored twice; readers count each event once). Exchange and queue names come from the
//! `AMQP_*` variables (see `pool_amqp::AmqpArgs`); the broker URL from `--sink`.
//!
//! `--rate R` is kept by the generator's clock (sends return as soon as their task is queued);
//! `--rate 0` goes as fast as the broker confirms, since `send` waits once [`MAX_IN_FLIGHT`] batches
//! are unconfirmed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use pool_amqp::{AmqpArgs, Publisher};
use pool_core::event::Event;
use tokio::task::JoinSet;

use super::{Sink, SinkReport};

/// Batches being published at once.
pub const MAX_IN_FLIGHT: usize = 4;
/// How long one batch may keep failing (broker down) before the generator gives up with an error.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// Publishes to RabbitMQ with confirms.
pub struct AmqpSink {
    publisher: Arc<Publisher>,
    in_flight: JoinSet<anyhow::Result<SinkReport>>,
    report: SinkReport,
}

impl AmqpSink {
    /// Connect to `url` (with the `AMQP_*` settings from the environment) and declare the topology.
    /// A broker that cannot be reached at start is an error straight away.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let mut args = AmqpArgs::from_env().context("reading the AMQP_* settings")?;
        args.url = url.to_owned();
        Self::open_with(&args).await
    }

    /// Connect with explicit settings.
    pub async fn open_with(args: &AmqpArgs) -> anyhow::Result<Self> {
        let publisher = Publisher::connect(args, "event-generator")
            .await
            .with_context(|| format!("--sink {}", args.redacted_url()))?;
        Ok(Self {
            publisher: Arc::new(publisher),
            in_flight: JoinSet::new(),
            report: SinkReport::default(),
        })
    }

    async fn reap_one(&mut self) -> anyhow::Result<()> {
        if let Some(done) = self.in_flight.join_next().await {
            let r = done.context("a publish task panicked")??;
            self.report.events += r.events;
            self.report.objects += r.objects;
            self.report.bytes += r.bytes;
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for AmqpSink {
    async fn send(&mut self, events: Vec<Event>) -> anyhow::Result<()> {
        while self.in_flight.len() >= MAX_IN_FLIGHT {
            self.reap_one().await?;
        }
        let publisher = self.publisher.clone();
        self.in_flight.spawn(async move {
            let bodies = publisher.encode(&events);
            let report = SinkReport {
                events: events.len() as u64,
                objects: bodies.len() as u64,
                bytes: bodies.iter().map(|b| b.len() as u64).sum(),
            };
            drop(events);
            publisher
                .publish_encoded_reliably(bodies, Some(GIVE_UP_AFTER))
                .await
                .context("publishing to RabbitMQ")?;
            Ok(report)
        });
        Ok(())
    }

    async fn finish(&mut self) -> anyhow::Result<SinkReport> {
        while !self.in_flight.is_empty() {
            self.reap_one().await?;
        }
        self.publisher.close().await;
        Ok(self.report)
    }
}
