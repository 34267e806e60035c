//! The publisher: events in, confirmed messages out. It owns the connection state (lazy connect, a
//! cool-down after a failed attempt, reconnect after a broker restart) because confirms are per
//! channel: resending exactly the unconfirmed messages needs the link and the outcomes in one place.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Channel, Confirmation, Connection};

use pool_core::event::Event;
use pool_core::event::ndjson::encode_messages;

use crate::{AmqpArgs, AmqpError, Needs, PublishError, Topology, connect, message};

/// A live connection with a confirm channel.
#[derive(Clone)]
struct Link {
    conn: Arc<Connection>,
    channel: Channel,
}

impl Link {
    fn usable(&self) -> bool {
        self.conn.status().connected() && self.channel.status().connected()
    }
}

enum LinkState {
    Idle,
    Up(Link),
    /// The last connection attempt failed at this instant: fail fast until the cool-down has passed,
    /// so a burst of requests against a dead broker does not become a burst of connection attempts.
    Down(Instant, String),
}

/// How long after a failed connection attempt callers fail fast without trying again.
const CONNECT_COOL_DOWN: Duration = Duration::from_millis(500);

/// Publishes events with publisher confirms, persistently, connecting lazily and reconnecting after a
/// broker restart. Shared by every request handler of a service (`Arc<Publisher>` or `web::Data`):
/// publishes from concurrent callers are pipelined on one confirm channel.
pub struct Publisher {
    args: AmqpArgs,
    topology: Topology,
    name: String,
    state: tokio::sync::Mutex<LinkState>,
    connects: AtomicU64,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("url", &self.args.redacted_url())
            .field("exchange", &self.topology.exchange)
            .finish()
    }
}

impl Publisher {
    /// A publisher that connects on first use (so a service can start while the broker is down).
    /// `name` labels the connection in the broker's management UI.
    pub fn new(args: &AmqpArgs, name: &str) -> Self {
        Self {
            args: args.clone(),
            topology: Topology::new(args),
            name: name.to_owned(),
            state: tokio::sync::Mutex::new(LinkState::Idle),
            connects: AtomicU64::new(0),
        }
    }

    /// A publisher that is connected (and has declared the topology) before it is returned.
    pub async fn connect(args: &AmqpArgs, name: &str) -> Result<Self, PublishError> {
        let publisher = Self::new(args, name);
        publisher.link().await?;
        Ok(publisher)
    }

    /// The settings this publisher was made with.
    pub fn args(&self) -> &AmqpArgs {
        &self.args
    }

    /// How many connections were opened so far (1 + reconnects).
    pub fn connections_opened(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// True when a connection is up right now (does not try to connect).
    pub async fn is_connected(&self) -> bool {
        matches!(&*self.state.lock().await, LinkState::Up(l) if l.usable())
    }

    /// Make sure a usable connection is up, opening one if needed, and give up after the connect
    /// timeout whatever holds the connection lock: for readiness probes, which must answer promptly.
    /// Cheap while connected (a status check); during the cool-down after a failed attempt it fails
    /// at once, so frequent probes against a dead broker do not become a stream of connection attempts.
    pub async fn ensure_connected(&self) -> Result<(), PublishError> {
        match tokio::time::timeout(self.args.connect_timeout, self.link()).await {
            Ok(link) => link.map(|_| ()),
            Err(_) => Err(PublishError::Unavailable(format!(
                "no usable connection within {:?}",
                self.args.connect_timeout
            ))),
        }
    }

    async fn link(&self) -> Result<Link, PublishError> {
        let mut state = self.state.lock().await;
        match &*state {
            LinkState::Up(link) if link.usable() => return Ok(link.clone()),
            LinkState::Down(at, why) if at.elapsed() < CONNECT_COOL_DOWN => {
                return Err(PublishError::Unavailable(why.clone()));
            }
            _ => {}
        }
        match self.open().await {
            Ok(link) => {
                self.connects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(url = %self.args.redacted_url(), exchange = %self.topology.exchange, "connected to RabbitMQ");
                *state = LinkState::Up(link.clone());
                Ok(link)
            }
            Err(e) => {
                let why = e.to_string();
                *state = LinkState::Down(Instant::now(), why.clone());
                Err(PublishError::Unavailable(why))
            }
        }
    }

    async fn open(&self) -> Result<Link, AmqpError> {
        let conn = connect(&self.args, &self.name).await?;
        self.topology
            .prepare(&conn, self.args.declare_topology, Needs::Exchange)
            .await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Link {
            conn: Arc::new(conn),
            channel,
        })
    }

    /// Forget `link` if it is still the current one, so the next call reconnects.
    async fn drop_link(&self, link: &Link) {
        let mut state = self.state.lock().await;
        if let LinkState::Up(current) = &*state
            && Arc::ptr_eq(&current.conn, &link.conn)
        {
            *state = LinkState::Idle;
        }
    }

    /// Encode `events` into messages (see "Message format" in the crate docs).
    pub fn encode(&self, events: &[Event]) -> Vec<Vec<u8>> {
        encode_messages(
            events,
            self.args.message_max_events as usize,
            self.args.message_max_bytes,
        )
    }

    /// Publish `events` and wait until the broker confirmed every message. Returns the number of events
    /// accepted (all of them), or an error if any message was not confirmed: then none is reported as
    /// accepted, although some may have been stored (a retry may store those twice; readers count each
    /// event once). One attempt: a dead connection is reopened once, no retries.
    pub async fn publish_confirmed(&self, events: &[Event]) -> Result<usize, PublishError> {
        if events.is_empty() {
            return Ok(0);
        }
        let bodies = self.encode(events);
        let outcomes = self.publish_bodies(&bodies).await?;
        match outcomes.into_iter().find_map(Result::err) {
            Some(e) => Err(e),
            None => Ok(events.len()),
        }
    }

    /// Publish `events`, reconnecting with exponential backoff (100 ms doubling to 5 s) and resending
    /// exactly the messages not yet confirmed, until all are confirmed or `give_up_after` has passed
    /// (`None`: keep trying for ever, as a generator feeding a restarting broker should).
    pub async fn publish_reliably(
        &self,
        events: &[Event],
        give_up_after: Option<Duration>,
    ) -> Result<usize, PublishError> {
        self.publish_encoded_reliably(self.encode(events), give_up_after)
            .await?;
        Ok(events.len())
    }

    /// [`Publisher::publish_reliably`] for bodies already made by [`Publisher::encode`] (callers that
    /// report message counts and sizes encode once).
    pub async fn publish_encoded_reliably(
        &self,
        bodies: Vec<Vec<u8>>,
        give_up_after: Option<Duration>,
    ) -> Result<(), PublishError> {
        if bodies.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut pending = bodies;
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            let error = match self.publish_bodies(&pending).await {
                Ok(outcomes) => {
                    let mut first_error = None;
                    let mut still = Vec::new();
                    for (body, outcome) in pending.into_iter().zip(outcomes) {
                        if let Err(e) = outcome {
                            first_error.get_or_insert(e);
                            still.push(body);
                        }
                    }
                    pending = still;
                    match first_error {
                        None => return Ok(()),
                        Some(e) => e,
                    }
                }
                Err(e) => e,
            };
            if give_up_after.is_some_and(|limit| started.elapsed() >= limit) {
                return Err(error);
            }
            let delay = backoff.next().unwrap_or(Duration::from_secs(5));
            tracing::warn!(error = %error, unconfirmed_messages = pending.len(), retry_in = ?delay,
                "publish not confirmed; will reconnect and resend");
            tokio::time::sleep(delay).await;
        }
    }

    /// Publish raw NDJSON bodies on the current link. `Err` when no link could be had (nothing was
    /// sent); otherwise one outcome per body, in order.
    async fn publish_bodies(
        &self,
        bodies: &[Vec<u8>],
    ) -> Result<Vec<Result<(), PublishError>>, PublishError> {
        let link = self.link().await?;
        let mut confirms = Vec::with_capacity(bodies.len());
        let mut broken = false;
        for body in bodies {
            if broken {
                confirms.push(None);
                continue;
            }
            let events = body.iter().filter(|b| **b == b'\n').count();
            match link
                .channel
                .basic_publish(
                    self.topology.exchange.as_str().into(),
                    "".into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    body,
                    message::properties(&self.name, events),
                )
                .await
            {
                Ok(confirm) => confirms.push(Some(confirm)),
                Err(e) => {
                    tracing::warn!(error = %e, "basic.publish failed");
                    broken = true;
                    confirms.push(None);
                }
            }
        }
        let waited = tokio::time::timeout(
            self.args.confirm_timeout,
            futures::future::join_all(confirms.into_iter().map(|c| async move {
                match c {
                    None => None,
                    Some(c) => Some(c.await),
                }
            })),
        )
        .await;
        let Ok(results) = waited else {
            // A broker that does not confirm in time may be wedged: start afresh next time.
            self.drop_link(&link).await;
            return Ok(bodies
                .iter()
                .map(|_| Err(PublishError::ConfirmTimeout(self.args.confirm_timeout)))
                .collect());
        };
        let mut outcomes = Vec::with_capacity(results.len());
        for r in results {
            outcomes.push(match r {
                None => {
                    broken = true;
                    Err(PublishError::ConnectionLost(
                        "the channel closed before the message was sent".into(),
                    ))
                }
                Some(Ok(Confirmation::Ack(None))) => Ok(()),
                Some(Ok(Confirmation::Ack(Some(returned)))) => Err(PublishError::Unroutable {
                    exchange: self.topology.exchange.clone(),
                    reply: returned.reply_text.to_string(),
                }),
                Some(Ok(Confirmation::Nack(_))) => Err(PublishError::Nacked),
                Some(Ok(Confirmation::NotRequested)) => {
                    // Cannot happen on a confirm channel; never count an unconfirmed message as stored.
                    broken = true;
                    Err(PublishError::ConnectionLost(
                        "the channel is not in confirm mode".into(),
                    ))
                }
                Some(Err(e)) => {
                    broken = true;
                    Err(PublishError::ConnectionLost(e.to_string()))
                }
            });
        }
        if broken || !link.usable() {
            self.drop_link(&link).await;
        }
        Ok(outcomes)
    }

    /// Close the connection (pending confirms are awaited by their callers first).
    pub async fn close(&self) {
        let mut state = self.state.lock().await;
        if let LinkState::Up(link) = &*state {
            let _ = link.channel.close(200, "bye".into()).await;
            let _ = link.conn.close(200, "bye".into()).await;
        }
        *state = LinkState::Idle;
    }
}
