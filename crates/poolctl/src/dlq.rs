//! `poolctl dlq replay`: move dead letters (`events.dead`) back to the `events` exchange once their
//! cause is fixed (a storage outage given up on, a policy that refused writes, a worker bug).
//!
//! Each message is taken from the dead-letter queue unacknowledged, published to the exchange
//! (persistent, `mandatory`, on a confirm channel) with its body and properties and an
//! `x-replayed-at` header, and acknowledged in the dead-letter queue only once the broker confirmed the
//! copy: a crash between the two leaves the message in both places (the ranking counts each event
//! once), never in neither. At most the messages present when the command started are replayed (a
//! message that fails again and comes back is not looped over), and at most `--limit`.
//!
//! `--dry-run` reads the same messages without acknowledging them and lists them (id, events, reason);
//! they return to the queue when the command ends (on a quorum queue that counts as one delivery).
//!
//! The identity needs read on `events.dead` and write on `events` only: the `replay` role of
//! `pool_amqp::access`.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, BasicRejectOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Confirmation, Connection};
use pool_amqp::{AmqpArgs, EVENT_COUNT_HEADER, Needs, REJECTION_REASON_HEADER};
use serde::Serialize;

use crate::commands::Outcome;
use crate::error::{CliError, Exit};
use crate::output::Format;

/// Header a replayed copy carries: when it was replayed (seconds since the epoch).
pub const REPLAYED_AT_HEADER: &str = "x-replayed-at";

#[derive(Subcommand, Debug, Clone)]
pub enum DlqCommand {
    /// Move dead letters back to the events exchange, each acknowledged only once its copy is
    /// confirmed (AMQP_URL: an identity that may read the dead-letter queue and write the exchange).
    Replay(ReplayArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// At most this many messages (default: every message present when the command starts).
    #[arg(long)]
    pub limit: Option<u64>,
    /// List the messages that would be replayed, and leave them where they are.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub amqp: AmqpArgs,
}

/// One message seen in the dead-letter queue.
#[derive(Debug, Clone, Serialize)]
pub struct Letter {
    pub message_id: Option<String>,
    /// Events in it (its `x-event-count` header, else its lines).
    pub events: u64,
    pub bytes: usize,
    /// Why it was dead-lettered (`x-rejection-reason`).
    pub reason: Option<String>,
}

/// What a replay did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub queue: String,
    pub exchange: String,
    /// Messages in the dead-letter queue when the command started.
    pub waiting: u64,
    /// Messages replayed (confirmed by the broker and removed from the dead-letter queue), or in a
    /// dry run those that would be.
    pub replayed: u64,
    pub messages: Vec<Letter>,
}

pub async fn run(command: DlqCommand, format: Format) -> Result<Outcome, CliError> {
    match command {
        DlqCommand::Replay(args) => {
            let report = replay(&args).await?;
            Ok(Outcome {
                stdout: render(&report, format),
                exit: if report.waiting == 0 {
                    Exit::NoData
                } else {
                    Exit::Found
                },
                note: (report.waiting == 0).then(|| format!("no message in {}", report.queue)),
            })
        }
    }
}

fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(report).expect("serialisable") + "\n",
        Format::Ndjson => report
            .messages
            .iter()
            .map(|m| serde_json::to_string(m).expect("serialisable") + "\n")
            .collect(),
        Format::Table => {
            let mut out = String::new();
            for m in &report.messages {
                out.push_str(&format!(
                    "{}  {} events  {}\n",
                    m.message_id.as_deref().unwrap_or("-"),
                    m.events,
                    m.reason.as_deref().unwrap_or("(no reason)")
                ));
            }
            let verb = if report.dry_run {
                "would replay"
            } else {
                "replayed"
            };
            out.push_str(&format!(
                "{verb} {} of {} messages from {} to exchange {}\n",
                report.replayed, report.waiting, report.queue, report.exchange
            ));
            out
        }
    }
}

fn service(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::service(format!("{what}: {e}"))
}

fn header_text(headers: &FieldTable, name: &str) -> Option<String> {
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn header_count(headers: &FieldTable, name: &str) -> Option<u64> {
    match headers.inner().get(name)? {
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        _ => None,
    }
}

/// Replay (or list) the dead letters `args` names.
pub async fn replay(args: &ReplayArgs) -> Result<Report, CliError> {
    let amqp = &args.amqp;
    let topology = amqp.topology();
    let conn = pool_amqp::connect(amqp, "poolctl dlq replay")
        .await
        .map_err(|e| service("RabbitMQ", e))?;
    let result = replay_on(&conn, args).await;
    let _ = conn.close(200, "bye".into()).await;
    let mut report = result?;
    report.queue = topology.dead_letter_queue;
    report.exchange = topology.exchange;
    Ok(report)
}

async fn replay_on(conn: &Connection, args: &ReplayArgs) -> Result<Report, CliError> {
    let topology = args.amqp.topology();
    topology
        .prepare(conn, args.amqp.declare_topology, Needs::Replay)
        .await
        .map_err(|e| service("RabbitMQ", e))?;
    let (get, waiting) = open_dead_letters(conn, &topology.dead_letter_queue).await?;
    let publish = conn
        .create_channel()
        .await
        .map_err(|e| service("RabbitMQ channel", e))?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| service("RabbitMQ confirm mode", e))?;

    let budget = args.limit.unwrap_or(waiting).min(waiting);
    let mut report = Report {
        dry_run: args.dry_run,
        queue: String::new(),
        exchange: String::new(),
        waiting,
        replayed: 0,
        messages: vec![],
    };
    while report.replayed < budget {
        let Some(message) = get
            .basic_get(
                topology.dead_letter_queue.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
            .map_err(|e| service("reading the dead-letter queue", e))?
        else {
            break;
        };
        let delivery = message.delivery;
        let letter = letter_of(&delivery);
        if !args.dry_run
            && let Err(refused) = republish(&publish, &topology.exchange, &delivery).await?
        {
            return Err(CliError::new(
                Exit::Service,
                format!(
                    "the exchange {:?} did not take a replayed message ({refused}); {} of {} were \
                     replayed, the rest stay in {}",
                    topology.exchange, report.replayed, waiting, topology.dead_letter_queue
                ),
            ));
        }
        // In a dry run the message stays unacknowledged on `get` (so the next basic.get returns the
        // next one) and goes back to the queue when the channel closes.
        report.replayed += 1;
        report.messages.push(letter);
    }
    let _ = get.close(200, "done".into()).await;
    let _ = publish.close(200, "done".into()).await;
    Ok(report)
}

/// A channel to read the dead-letter queue `queue` from, and how many messages wait in it (declared
/// passively: a replay never creates the queue).
async fn open_dead_letters(conn: &Connection, queue: &str) -> Result<(Channel, u64), CliError> {
    let get = conn
        .create_channel()
        .await
        .map_err(|e| service("RabbitMQ channel", e))?;
    let waiting = pool_amqp::ready_messages(&get, queue)
        .await
        .map_err(|e| service("the dead-letter queue", e))? as u64;
    Ok((get, waiting))
}

/// What the report lists of a dead letter: its id, events (the header, else its lines), size and
/// the reason it was rejected.
fn letter_of(delivery: &Delivery) -> Letter {
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    Letter {
        message_id: delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string()),
        events: header_count(&headers, EVENT_COUNT_HEADER)
            .unwrap_or_else(|| delivery.data.iter().filter(|b| **b == b'\n').count() as u64),
        bytes: delivery.data.len(),
        reason: header_text(&headers, REJECTION_REASON_HEADER),
    }
}

/// Publish a dead letter again to `exchange`, persistent and stamped with the replay time, and take
/// it off the dead-letter queue once the broker confirms it. A message the exchange does not take
/// goes back to the dead-letter queue: `Ok(Err(what the broker answered))`.
async fn republish(
    publish: &Channel,
    exchange: &str,
    delivery: &Delivery,
) -> Result<Result<(), String>, CliError> {
    let mut replayed_headers = delivery.properties.headers().clone().unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    replayed_headers.insert(REPLAYED_AT_HEADER.into(), AMQPValue::Timestamp(now));
    let properties = delivery
        .properties
        .clone()
        .with_delivery_mode(2)
        .with_headers(replayed_headers);
    let confirmed = async {
        publish
            .basic_publish(
                exchange.into(),
                "".into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &delivery.data,
                properties,
            )
            .await?
            .await
    }
    .await;
    match confirmed {
        Ok(Confirmation::Ack(None)) => {
            delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .map_err(|e| service("acknowledging the dead letter", e))?;
            Ok(Ok(()))
        }
        other => {
            let _ = delivery
                .acker
                .reject(BasicRejectOptions { requeue: true })
                .await;
            Ok(Err(match other {
                Ok(c) => format!("{c:?}"),
                Err(e) => e.to_string(),
            }))
        }
    }
}
