//! RabbitMQ: the one topology of the ingestion path, who may do what on it, the message format, and a
//! publisher that reports an event as accepted only once the broker has confirmed it.
//!
//! # Topology
//!
//! ```text
//!  producers ──► exchange `events` (fanout, durable)
//!                    │
//!                    ▼
//!               queue `events.ingest` (quorum, durable, x-dead-letter-exchange = events.dlx)
//!                    │ ingest-worker
//!                    ▼ (a message that can never be stored is republished with a reason header)
//!               exchange `events.dlx` (fanout, durable) ──► queue `events.dead` (quorum, durable)
//! ```
//!
//! Every name comes from [`AmqpArgs`] (flags or `AMQP_*` variables), so tests and parallel stacks use
//! their own. The topology is declared once, by an identity allowed to configure it ([`Topology::declare`],
//! the `pool-amqp declare` command); services only check on connect that what they use exists
//! ([`Topology::check`], passive declarations, which need no permission), so each service's user needs
//! exactly the rights of its role and no `configure` right ([`access`]). On a single-user development
//! broker `AMQP_DECLARE_TOPOLOGY=true` lets services declare it themselves. Queues are *quorum* queues
//! (replicated Raft log, fsync before the publisher confirm); a broker that refuses one is an error,
//! never a silent fall back to a classic queue.
//!
//! # Message format
//!
//! One message carries a small batch of events as NDJSON (`application/x-ndjson`, one event per line,
//! at most [`AmqpArgs::message_max_events`] events and [`AmqpArgs::message_max_bytes`] bytes). Why not
//! one event per message: an event is ~150 bytes, while a message costs the broker a routing decision,
//! a Raft log entry, a confirm and an ack, and the consumer a delivery frame and a tag. At 50,000
//! events/s one event per message would be 50,000 quorum-queue messages/s plus as many confirms on a
//! 2-core machine; batching a few hundred events per message cuts that to a few hundred messages/s
//! with the same guarantees (a message is confirmed, stored and acknowledged as a unit). Consumers also
//! accept a JSON array or a single JSON object per message (`application/json`), so a foreign producer
//! sending one event per message still works. See [`pool_core::event::ndjson`].
//!
//! # Guarantees
//!
//! Messages are persistent (`delivery_mode` 2) and published with `mandatory` on a confirm channel:
//! [`Publisher::publish_confirmed`] returns only after the broker acknowledged every message, and any
//! nack, return, timeout or lost connection is an error, so nothing half published is reported as
//! accepted. [`Publisher::publish_reliably`] reconnects with exponential backoff and resends exactly the
//! messages that were not confirmed (a message whose confirm was lost in a broker restart may be stored
//! twice; readers count each event once).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backon::{BackoffBuilder, ExponentialBuilder};
use clap::Args;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};

use pool_core::duration::parse_arg as parse_duration_flag;
use pool_core::event::Event;
use pool_core::event::ndjson::{CONTENT_TYPE_NDJSON, encode_messages};

/// Default broker URL: the local broker's default vhost as `guest` (who may only log in from loopback).
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub mod access;

pub use pool_service::config::{
    DEFAULT_DEAD_LETTER_EXCHANGE, DEFAULT_DEAD_LETTER_QUEUE, DEFAULT_EXCHANGE, DEFAULT_QUEUE,
};

/// Header on a dead-lettered message saying why it was rejected.
pub const REJECTION_REASON_HEADER: &str = "x-rejection-reason";
/// Header with the number of events in a message (informational; consumers count lines themselves).
pub const EVENT_COUNT_HEADER: &str = "x-event-count";

/// RabbitMQ settings, flattened into every binary that publishes or consumes events.
#[derive(Args, Debug, Clone)]
pub struct AmqpArgs {
    /// Broker URL, `amqp://user:password@host:port/vhost` (`%2f` is the default vhost `/`).
    #[arg(long = "amqp-url", env = "AMQP_URL", default_value = DEFAULT_AMQP_URL, hide_env_values = true)]
    pub url: String,
    /// Exchange producers publish events to (durable fanout).
    #[arg(long = "amqp-exchange", env = "AMQP_EXCHANGE", default_value = DEFAULT_EXCHANGE)]
    pub exchange: String,
    /// Queue the ingest worker consumes (durable quorum queue bound to the exchange).
    #[arg(long = "amqp-queue", env = "AMQP_QUEUE", default_value = DEFAULT_QUEUE)]
    pub queue: String,
    /// Exchange that receives messages which can never be stored (durable fanout).
    #[arg(
        long = "amqp-dead-letter-exchange",
        env = "AMQP_DEAD_LETTER_EXCHANGE",
        default_value = DEFAULT_DEAD_LETTER_EXCHANGE
    )]
    pub dead_letter_exchange: String,
    /// Queue bound to the dead-letter exchange, where rejected messages wait for a human.
    #[arg(
        long = "amqp-dead-letter-queue",
        env = "AMQP_DEAD_LETTER_QUEUE",
        default_value = DEFAULT_DEAD_LETTER_QUEUE
    )]
    pub dead_letter_queue: String,
    /// Most events a producer puts into one message.
    #[arg(long = "amqp-message-max-events", env = "AMQP_MESSAGE_MAX_EVENTS", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub message_max_events: u32,
    /// Most bytes a producer puts into one message (a single larger event still travels alone).
    #[arg(long = "amqp-message-max-bytes", env = "AMQP_MESSAGE_MAX_BYTES", default_value_t = 256 * 1024)]
    pub message_max_bytes: usize,
    /// How long to wait for the broker to confirm published messages (e.g. 30s, 500ms).
    #[arg(long = "amqp-confirm-timeout", env = "AMQP_CONFIRM_TIMEOUT", default_value = "30s",
          value_parser = parse_duration_flag)]
    pub confirm_timeout: Duration,
    /// How long to wait for a connection to the broker (e.g. 5s).
    #[arg(long = "amqp-connect-timeout", env = "AMQP_CONNECT_TIMEOUT", default_value = "5s",
          value_parser = parse_duration_flag)]
    pub connect_timeout: Duration,
    /// PEM bundle of the CA that signs an `amqps://` broker's certificate, when it is not a public
    /// one (in addition to the system's roots).
    #[arg(long = "amqp-ca-file", env = "TLS_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Declare the exchanges and queues on connect, which needs `configure` permission on them: for a
    /// single-user development broker. Off by default: the topology is declared once by an admin
    /// identity (`pool-amqp declare`) and services only check that it exists (passive declarations,
    /// which need no permission), so their users need no configure right.
    #[arg(long = "amqp-declare-topology", env = "AMQP_DECLARE_TOPOLOGY", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub declare_topology: bool,
}

impl Default for AmqpArgs {
    fn default() -> Self {
        Self::for_url(DEFAULT_AMQP_URL)
    }
}

impl AmqpArgs {
    /// The defaults, talking to `url`.
    pub fn for_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            exchange: DEFAULT_EXCHANGE.into(),
            queue: DEFAULT_QUEUE.into(),
            dead_letter_exchange: DEFAULT_DEAD_LETTER_EXCHANGE.into(),
            dead_letter_queue: DEFAULT_DEAD_LETTER_QUEUE.into(),
            message_max_events: 1000,
            message_max_bytes: 256 * 1024,
            confirm_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            ca_file: None,
            declare_topology: false,
        }
    }

    /// The same settings with `.<suffix>` appended to every exchange and queue name, so tests (or two
    /// stacks on one broker) do not see each other's messages.
    pub fn with_suffix(mut self, suffix: &str) -> Self {
        for name in [
            &mut self.exchange,
            &mut self.queue,
            &mut self.dead_letter_exchange,
            &mut self.dead_letter_queue,
        ] {
            name.push('.');
            name.push_str(suffix);
        }
        self
    }

    /// The settings from the environment (`AMQP_*` variables) and the documented defaults, for
    /// programs that do not take these flags on their command line.
    pub fn from_env() -> Result<Self, clap::Error> {
        #[derive(clap::Parser)]
        struct EnvOnly {
            #[command(flatten)]
            amqp: AmqpArgs,
        }
        <EnvOnly as clap::Parser>::try_parse_from(["amqp"]).map(|e| e.amqp)
    }

    /// The broker URL without its password, for logs and error messages.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    /// The exchanges and queues these settings name.
    pub fn topology(&self) -> Topology {
        Topology::new(self)
    }
}

fn redact(url: &str) -> String {
    pool_service::redact::url(url)
}

/// What went wrong talking to the broker (other than publishing, see [`PublishError`]).
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("cannot connect to RabbitMQ at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("declaring {what} on RabbitMQ failed: {source}")]
    Declare {
        what: String,
        #[source]
        source: lapin::Error,
    },
    #[error(
        "RabbitMQ has no {what}: declare the topology first, once, as an identity allowed to configure \
         it (`pool-amqp declare`), or set AMQP_DECLARE_TOPOLOGY=true on a single-user development broker"
    )]
    Missing { what: String },
    #[error(
        "RabbitMQ refused queue {queue:?} as a quorum queue ({reason}): a classic queue of that name \
         exists, or the broker has no quorum queues; the queue must be a quorum queue (delete or migrate \
         the classic one), it is never silently declared as another type"
    )]
    QueueTypeRefused { queue: String, reason: String },
    #[error("RabbitMQ channel error: {0}")]
    Channel(#[from] lapin::Error),
}

impl AmqpError {
    /// True for errors that retrying cannot fix: the configuration or the broker's state must change
    /// (a queue of the wrong type). A missing topology is not one: the declaring step may run later.
    pub fn is_fatal(&self) -> bool {
        matches!(self, AmqpError::QueueTypeRefused { .. })
    }
}

/// Open a connection named `name` (shown in the management UI) within the connect timeout.
pub async fn connect(args: &AmqpArgs, name: &str) -> Result<Connection, AmqpError> {
    let props = ConnectionProperties::default().with_connection_name(name.to_owned().into());
    let failed = |message: String| AmqpError::Connect {
        url: args.redacted_url(),
        message,
    };
    pool_service::tls::install_crypto_provider();
    let mut builder = lapin::DefaultConnectionBuilder::new()
        .map_err(|e| failed(e.to_string()))?
        .with_uri_str(args.url.clone())
        .with_properties(props);
    if let Some(path) = &args.ca_file {
        let pem = pool_service::tls::read_ca_pem(path).map_err(|e| failed(e.to_string()))?;
        builder = builder.with_tls_config(lapin::tcp::OwnedTLSConfig {
            identity: None,
            cert_chain: Some(String::from_utf8_lossy(&pem).into_owned()),
        });
    }
    match tokio::time::timeout(args.connect_timeout, builder.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed(format!(
            "no answer within {:?}",
            args.connect_timeout
        ))),
    }
}

/// The exchanges and queues of the ingestion path. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Topology {
    pub exchange: String,
    pub queue: String,
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
}

/// What a service needs of the topology, checked on connect by [`Topology::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// A producer: the exchange it publishes to.
    Exchange,
    /// The ingest-worker: the queue it consumes and the dead-letter exchange it publishes to.
    Consumer,
    /// The dead-letter replay: the dead-letter queue it reads and the exchange it publishes to.
    Replay,
}

impl Topology {
    pub fn new(args: &AmqpArgs) -> Self {
        Self {
            exchange: args.exchange.clone(),
            queue: args.queue.clone(),
            dead_letter_exchange: args.dead_letter_exchange.clone(),
            dead_letter_queue: args.dead_letter_queue.clone(),
        }
    }

    /// Declare everything, idempotently: the exchange, the dead-letter exchange, the dead-letter queue
    /// and the ingest queue (with `x-dead-letter-exchange`), and their bindings. Needs `configure`
    /// permission on all of them: run once by an admin identity (`pool-amqp declare`), or by services
    /// on a single-user development broker (`AMQP_DECLARE_TOPOLOGY=true`).
    ///
    /// Both queues are quorum queues. A broker that refuses one (a classic queue of that name already
    /// exists, or the broker has no quorum queues) is an error, [`AmqpError::QueueTypeRefused`]: the
    /// guarantees (a confirm only once the message is replicated and fsynced) depend on it, so the queue
    /// never silently becomes a classic one.
    pub async fn declare(&self, conn: &Connection) -> Result<(), AmqpError> {
        let channel = conn.create_channel().await?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        for exchange in [&self.exchange, &self.dead_letter_exchange] {
            channel
                .exchange_declare(
                    exchange.as_str().into(),
                    ExchangeKind::Fanout,
                    durable,
                    FieldTable::default(),
                )
                .await
                .map_err(|source| AmqpError::Declare {
                    what: format!("exchange {exchange:?}"),
                    source,
                })?;
        }
        self.declare_queue(&channel, &self.dead_letter_queue, FieldTable::default())
            .await?;
        self.bind(
            &channel,
            &self.dead_letter_queue,
            &self.dead_letter_exchange,
        )
        .await?;
        let mut args = FieldTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_letter_exchange.as_str().into()),
        );
        self.declare_queue(&channel, &self.queue, args).await?;
        self.bind(&channel, &self.queue, &self.exchange).await?;
        let _ = channel.close(200, "declared".into()).await;
        Ok(())
    }

    /// Check that what a service `needs` exists, with passive declarations only: they need no
    /// permission at all, so a service whose user may only publish (or only consume) can tell a missing
    /// topology ([`AmqpError::Missing`], naming how to declare it) from a broker that is down.
    pub async fn check(&self, conn: &Connection, needs: Needs) -> Result<(), AmqpError> {
        let channel = conn.create_channel().await?;
        let (exchanges, queues): (Vec<&String>, Vec<&String>) = match needs {
            Needs::Exchange => (vec![&self.exchange], vec![]),
            Needs::Consumer => (vec![&self.dead_letter_exchange], vec![&self.queue]),
            Needs::Replay => (vec![&self.exchange], vec![&self.dead_letter_queue]),
        };
        let missing = |what: String, source: lapin::Error| {
            if is_soft(&source, AMQPSoftError::NOTFOUND) {
                AmqpError::Missing { what }
            } else {
                AmqpError::Declare { what, source }
            }
        };
        for exchange in exchanges {
            channel
                .exchange_declare(
                    exchange.as_str().into(),
                    ExchangeKind::Fanout,
                    ExchangeDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|e| missing(format!("exchange {exchange:?}"), e))?;
        }
        for queue in queues {
            channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|e| missing(format!("queue {queue:?}"), e))?;
        }
        let _ = channel.close(200, "checked".into()).await;
        Ok(())
    }

    /// Declare (`declare`: AMQP_DECLARE_TOPOLOGY) or only [`check`](Self::check) what `needs` names.
    pub async fn prepare(
        &self,
        conn: &Connection,
        declare: bool,
        needs: Needs,
    ) -> Result<(), AmqpError> {
        if declare {
            self.declare(conn).await
        } else {
            self.check(conn, needs).await
        }
    }

    async fn bind(&self, channel: &Channel, queue: &str, exchange: &str) -> Result<(), AmqpError> {
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|source| AmqpError::Declare {
                what: format!("binding of queue {queue:?} to exchange {exchange:?}"),
                source,
            })
    }

    /// Declare a durable quorum queue; a refusal of the queue type is [`AmqpError::QueueTypeRefused`].
    async fn declare_queue(
        &self,
        channel: &Channel,
        queue: &str,
        mut args: FieldTable,
    ) -> Result<(), AmqpError> {
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        match channel.queue_declare(queue.into(), durable, args).await {
            Ok(_) => Ok(()),
            Err(e) if refuses_quorum(&e) => Err(AmqpError::QueueTypeRefused {
                queue: queue.to_owned(),
                reason: e.to_string(),
            }),
            Err(source) => Err(AmqpError::Declare {
                what: format!("queue {queue:?}"),
                source,
            }),
        }
    }
}

fn protocol_kind(e: &lapin::Error) -> Option<&AMQPErrorKind> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(p) => Some(p.kind()),
        _ => None,
    }
}

fn is_soft(e: &lapin::Error, code: AMQPSoftError) -> bool {
    matches!(protocol_kind(e), Some(AMQPErrorKind::Soft(c)) if *c == code)
}

/// True when `e` is the broker refusing a quorum queue: PRECONDITION_FAILED (a queue of that name exists
/// with another type or other arguments) or NOT_IMPLEMENTED/COMMAND_INVALID (no quorum queues).
fn refuses_quorum(e: &lapin::Error) -> bool {
    matches!(
        protocol_kind(e),
        Some(AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
            | Some(AMQPErrorKind::Hard(AMQPHardError::NOTIMPLEMENTED))
            | Some(AMQPErrorKind::Hard(AMQPHardError::COMMANDINVALID))
    )
}

/// True when `e` is the broker refusing an operation for want of permission (ACCESS_REFUSED), or a
/// login (the connection closed with ACCESS_REFUSED / NOT_ALLOWED for the vhost).
pub fn is_access_refused(e: &lapin::Error) -> bool {
    matches!(
        protocol_kind(e),
        Some(AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED))
            | Some(AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED))
    )
}

// ---------------------------------------------------------------------------------------------------
// Publisher
// ---------------------------------------------------------------------------------------------------

/// Why events were not accepted. Every variant means "not stored, try again later": an HTTP front
/// end answers 503.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("RabbitMQ is unavailable: {0}")]
    Unavailable(String),
    #[error("the connection to RabbitMQ was lost while publishing: {0}")]
    ConnectionLost(String),
    #[error("RabbitMQ did not confirm the messages within {0:?}")]
    ConfirmTimeout(Duration),
    #[error("RabbitMQ refused (nack) a message")]
    Nacked,
    #[error(
        "RabbitMQ returned a message as unroutable: exchange {exchange:?} has no bound queue ({reply})"
    )]
    Unroutable { exchange: String, reply: String },
}

impl PublishError {
    /// A stable short code for JSON errors and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::Unavailable(_) => "broker_unavailable",
            PublishError::ConnectionLost(_) => "broker_connection_lost",
            PublishError::ConfirmTimeout(_) => "broker_confirm_timeout",
            PublishError::Nacked => "broker_nack",
            PublishError::Unroutable { .. } => "broker_unroutable",
        }
    }
}

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

    fn properties(&self, events_in_message: usize) -> BasicProperties {
        let mut headers = FieldTable::default();
        headers.insert(
            EVENT_COUNT_HEADER.into(),
            AMQPValue::LongLongInt(events_in_message as i64),
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(CONTENT_TYPE_NDJSON.into())
            .with_message_id(uuid::Uuid::now_v7().to_string().into())
            .with_timestamp(now)
            .with_app_id(
                ShortString::try_new(self.name.clone()).unwrap_or_else(|_| "pool-selector".into()),
            )
            .with_headers(headers)
    }

    /// Encode `events` into messages (see the module docs).
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
                    self.properties(events),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_a_suffix_and_urls_hide_passwords() {
        let args = AmqpArgs::default().with_suffix("t1");
        assert_eq!(args.exchange, "events.t1");
        assert_eq!(args.queue, "events.ingest.t1");
        assert_eq!(args.dead_letter_exchange, "events.dlx.t1");
        assert_eq!(args.dead_letter_queue, "events.dead.t1");
        assert_eq!(args.redacted_url(), "amqp://guest:***@127.0.0.1:5672/%2f");
        assert_eq!(
            parse_duration_flag("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_duration_flag("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration_flag("soon").is_err());
    }

    #[test]
    fn clap_defaults_match_the_documented_ones() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            amqp: AmqpArgs,
        }
        let cli = Cli::try_parse_from(["x"]).unwrap();
        let d = AmqpArgs::default();
        assert_eq!(cli.amqp.url, d.url);
        assert_eq!(cli.amqp.exchange, d.exchange);
        assert_eq!(cli.amqp.queue, d.queue);
        assert_eq!(cli.amqp.dead_letter_exchange, d.dead_letter_exchange);
        assert_eq!(cli.amqp.dead_letter_queue, d.dead_letter_queue);
        assert_eq!(cli.amqp.message_max_events, d.message_max_events);
        assert_eq!(cli.amqp.message_max_bytes, d.message_max_bytes);
        assert_eq!(cli.amqp.confirm_timeout, d.confirm_timeout);
        assert_eq!(cli.amqp.connect_timeout, d.connect_timeout);
        assert_eq!(cli.amqp.declare_topology, d.declare_topology);
        assert!(
            !d.declare_topology,
            "services declare nothing unless told to"
        );
    }
}
