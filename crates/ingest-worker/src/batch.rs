//! A batch of consumed messages: their events grouped by hourly partition as NDJSON (the same
//! [`Partitioned`] grouping every writer of objects uses, so stored lines are canonical), the messages
//! that must be dead-lettered, and the delivery tag that acknowledges all of them at once.

use std::time::{Duration, Instant};

use lapin::BasicProperties;
use pool_core::event::ndjson::{Partitioned, parse_events};

/// One message as received.
#[derive(Debug, Clone)]
pub struct Message {
    pub delivery_tag: u64,
    pub body: Vec<u8>,
    pub properties: BasicProperties,
    pub exchange: String,
    pub routing_key: String,
    pub redelivered: bool,
}

/// A message that can never be stored, and why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub message: Message,
    pub reason: String,
}

/// When a batch is full, and which messages it refuses.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_events: usize,
    /// Bytes held (event NDJSON plus dead-letter bodies) that make the batch full.
    pub max_bytes: usize,
    pub max_messages: usize,
    pub max_age: Duration,
    /// A message body larger than this is dead-lettered without being parsed (`MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
}

/// What happened to one added message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// The message's events joined the batch.
    Events(usize),
    /// The message will be dead-lettered, for this reason.
    Rejected(String),
    /// The message is larger than `MAX_MESSAGE_BYTES`: it will be dead-lettered, unparsed, for this
    /// reason.
    Oversized(String),
}

/// Messages gathered since the last write.
#[derive(Debug)]
pub struct Batch {
    limits: Limits,
    started: Option<Instant>,
    tags: Vec<u64>,
    messages: usize,
    /// The events' NDJSON per hourly partition; it counts its own events and bytes.
    partitions: Partitioned,
    /// Bodies of the messages to dead-letter, in bytes: they are held too, so they count towards
    /// `max_bytes` with the NDJSON.
    dead_bytes: usize,
    dead: Vec<DeadLetter>,
}

/// A batch taken out for writing.
#[derive(Debug)]
pub struct Sealed {
    /// Acknowledging this tag with `multiple` acknowledges every message of the batch.
    pub last_tag: u64,
    /// The delivery tags of the batch's messages, in the order received (ascending).
    pub tags: Vec<u64>,
    pub started: Instant,
    pub messages: usize,
    pub events: usize,
    /// Bytes held: event NDJSON plus dead-letter bodies.
    pub bytes: usize,
    /// NDJSON (one canonical event line each) per hourly partition.
    pub partitions: Partitioned,
    pub dead: Vec<DeadLetter>,
}

impl Batch {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            started: None,
            tags: Vec::new(),
            messages: 0,
            partitions: Partitioned::default(),
            dead_bytes: 0,
            dead: Vec::new(),
        }
    }

    /// Parse a message and add its events (or, if any line is invalid, the whole message as a dead
    /// letter: a message is stored or rejected as a unit, like it was confirmed as one). A message
    /// larger than [`Limits::max_message_bytes`] is a dead letter without being parsed.
    pub fn add(&mut self, message: Message) -> Added {
        self.started.get_or_insert_with(Instant::now);
        self.tags.push(message.delivery_tag);
        self.messages += 1;
        if message.body.len() > self.limits.max_message_bytes {
            let reason = format!(
                "message body is {} bytes, larger than MAX_MESSAGE_BYTES ({} bytes); not parsed. \
                 Split it into smaller messages (producers: AMQP_MESSAGE_MAX_BYTES)",
                message.body.len(),
                self.limits.max_message_bytes
            );
            self.reject(message, reason.clone());
            return Added::Oversized(reason);
        }
        match parse_events(&message.body) {
            Ok(events) => {
                for event in &events {
                    self.partitions.push(event);
                }
                Added::Events(events.len())
            }
            Err(invalid) => {
                let reason = invalid.to_string();
                self.reject(message, reason.clone());
                Added::Rejected(reason)
            }
        }
    }

    /// Keep `message` for the dead-letter exchange; its body counts towards the batch's bytes.
    fn reject(&mut self, message: Message, reason: String) {
        self.dead_bytes += message.body.len();
        self.dead.push(DeadLetter { message, reason });
    }

    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }

    pub fn events(&self) -> usize {
        self.partitions.events()
    }

    /// Bytes held: event NDJSON plus the bodies of the messages to dead-letter.
    pub fn bytes(&self) -> usize {
        self.partitions.bytes() + self.dead_bytes
    }

    /// True when the batch must be written now (by events, bytes or messages; age is [`Self::deadline`]).
    pub fn is_full(&self) -> bool {
        self.events() >= self.limits.max_events
            || self.bytes() >= self.limits.max_bytes
            || self.messages >= self.limits.max_messages
    }

    /// When the batch must be written at the latest (`None` while empty).
    pub fn deadline(&self) -> Option<Instant> {
        self.started.map(|s| s + self.limits.max_age)
    }

    /// Take everything out, leaving an empty batch. `None` if there was nothing.
    pub fn take(&mut self) -> Option<Sealed> {
        let last_tag = *self.tags.last()?;
        let sealed = Sealed {
            last_tag,
            tags: std::mem::take(&mut self.tags),
            started: self.started.unwrap_or_else(Instant::now),
            messages: self.messages,
            events: self.events(),
            bytes: self.bytes(),
            partitions: std::mem::take(&mut self.partitions),
            dead: std::mem::take(&mut self.dead),
        };
        *self = Batch::new(self.limits);
        Some(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(job: &str, at: &str) -> String {
        format!(
            r#"{{"finished_at":"{at}","job_id":"{job}","pool_id":"pool-c6a.xlarge-us-east-1a","status":"FAILED","reason":"SPOT_INSTANCE_TERMINATION"}}"#
        )
    }

    fn message(tag: u64, body: String) -> Message {
        Message {
            delivery_tag: tag,
            body: body.into_bytes(),
            properties: BasicProperties::default(),
            exchange: "events".into(),
            routing_key: String::new(),
            redelivered: false,
        }
    }

    fn limits() -> Limits {
        Limits {
            max_events: 5,
            max_bytes: 1 << 20,
            max_messages: 10,
            max_age: Duration::from_secs(2),
            max_message_bytes: 4096,
        }
    }

    #[test]
    fn groups_events_by_hour_and_acks_up_to_the_last_tag() {
        let mut b = Batch::new(limits());
        assert!(b.deadline().is_none());
        let body = format!(
            "{}\n{}\n",
            line("a", "2026-11-22T10:59:59.999"),
            line("b", "2026-11-22T11:00:00Z")
        );
        assert_eq!(b.add(message(1, body)), Added::Events(2));
        assert_eq!(
            b.add(message(2, line("c", "2026-11-22T12:30:00+02:00"))),
            Added::Events(1)
        );
        assert!(!b.is_full());
        assert!(b.deadline().is_some());
        let s = b.take().unwrap();
        assert!(b.is_empty() && b.take().is_none());
        assert_eq!(s.last_tag, 2);
        assert_eq!(s.tags, [1, 2]);
        assert_eq!(s.events, 3);
        let paths: Vec<String> = s.partitions.partitions().map(|(p, _)| p.path()).collect();
        assert_eq!(paths, ["dt=2026-11-22/hr=10", "dt=2026-11-22/hr=11"]);
        let bodies: Vec<_> = s.partitions.into_iter().map(|(_, b)| b).collect();
        assert_eq!((bodies[0].events, bodies[1].events), (2, 1));
        // The batch holds exactly its NDJSON: one canonical line and its newline per event.
        assert_eq!(s.bytes, bodies[0].bytes.len() + bodies[1].bytes.len());
        let hr10 = String::from_utf8(bodies[0].bytes.clone()).unwrap();
        let hr11 = String::from_utf8(bodies[1].bytes.clone()).unwrap();
        // 12:30+02:00 is 10:30 UTC: partitions are by the UTC hour.
        assert_eq!(hr10.lines().count(), 2);
        assert_eq!(hr11.lines().count(), 1);
        assert!(hr10.contains(r#""job_id":"c""#) && hr10.contains("2026-11-22T10:30:00.000"));
    }

    #[test]
    fn a_message_with_any_bad_line_is_dead_lettered_whole() {
        let mut b = Batch::new(limits());
        let body = format!("{}\nnot json\n", line("a", "2026-11-22T10:00:00"));
        match b.add(message(7, body)) {
            Added::Rejected(reason) => assert!(reason.contains("line 2"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.events(), 0);
        let s = b.take().unwrap();
        assert_eq!(s.last_tag, 7);
        assert!(s.partitions.is_empty());
        assert_eq!(s.dead.len(), 1);
    }

    #[test]
    fn full_by_events_or_messages() {
        let mut b = Batch::new(limits());
        let five: String = (0..5)
            .map(|i| line(&i.to_string(), "2026-11-22T10:00:00") + "\n")
            .collect();
        b.add(message(1, five));
        assert!(b.is_full());
        let mut b = Batch::new(limits());
        for tag in 0..10 {
            b.add(message(tag, "garbage".into()));
        }
        assert!(b.is_full());
    }

    #[test]
    fn oversized_messages_are_dead_lettered_unparsed() {
        let mut b = Batch::new(limits());
        // Valid events, but too many bytes: rejected whole, without looking inside.
        let big: String = (0..40)
            .map(|i| line(&i.to_string(), "2026-11-22T10:00:00") + "\n")
            .collect();
        assert!(big.len() > 4096);
        match b.add(message(3, big.clone())) {
            Added::Oversized(reason) => {
                assert!(reason.contains("MAX_MESSAGE_BYTES"), "{reason}");
                assert!(reason.contains(&big.len().to_string()), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(b.events(), 0);
        assert_eq!(b.bytes(), big.len());
        // Exactly the limit is accepted.
        let mut exact = line("x", "2026-11-22T10:00:00");
        exact.push_str(&" ".repeat(4096 - exact.len()));
        assert_eq!(b.add(message(4, exact)), Added::Events(1));
        let s = b.take().unwrap();
        assert_eq!(s.dead.len(), 1);
        assert_eq!(s.dead[0].message.delivery_tag, 3);
        assert_eq!(s.tags, [3, 4]);
        assert_eq!(s.events, 1);
    }

    #[test]
    fn dead_letter_bodies_count_towards_the_byte_limit() {
        let mut b = Batch::new(Limits {
            max_bytes: 100,
            ..limits()
        });
        b.add(message(1, "x".repeat(60)));
        assert!(!b.is_full());
        b.add(message(2, "y".repeat(60)));
        assert_eq!(b.bytes(), 120);
        assert!(
            b.is_full(),
            "two dead letters of 60 bytes fill a batch of 100"
        );
        assert_eq!(b.take().unwrap().bytes, 120);
    }
}
