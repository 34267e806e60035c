//! The exchanges and queues of the ingestion path: declaring them (an admin identity, once) and
//! checking passively that what a service needs exists (every service, on connect). Separate from the
//! publisher because consumers and the `pool-amqp declare` command use it without publishing.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::AMQPSoftError;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ExchangeKind};

use crate::AmqpArgs;
use crate::errors::{AmqpError, is_soft, refuses_quorum};

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

/// How many messages wait ready in `queue`, through a passive declaration: it never creates the queue
/// (an absent one is the broker's NOT_FOUND, which also closes the channel).
pub async fn ready_messages(channel: &Channel, queue: &str) -> Result<u32, lapin::Error> {
    Ok(channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?
        .message_count())
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
            ready_messages(&channel, queue)
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
