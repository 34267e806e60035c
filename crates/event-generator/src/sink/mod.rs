//! Where generated events go.
//!
//! A [`Sink`] takes batches of events and reports what it wrote when finished. The generator only knows
//! this trait; each destination is one module:
//!
//! * [`object`]: hive-partitioned NDJSON objects in a local folder or an S3 prefix.
//! * [`append`]: one NDJSON object every event is appended to (seed 000's `events.json`; the trickle).
//! * [`amqp`]: RabbitMQ (`amqp://`), persistent messages with publisher confirms.

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod append;
pub mod object;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use pool_core::event::Event;
use pool_storage::StorageArgs;
use serde::Serialize;

pub use append::AppendSink;
pub use object::{ObjectSink, ObjectSinkOptions};

/// A destination for generated events.
#[async_trait]
pub trait Sink: Send {
    /// Accept a batch. The sink may buffer; nothing is guaranteed durable before [`Sink::finish`].
    async fn send(&mut self, events: Vec<Event>) -> anyhow::Result<()>;
    /// Write out everything still buffered, wait for it, and say what was written in total.
    async fn finish(&mut self) -> anyhow::Result<SinkReport>;
}

/// What a sink wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SinkReport {
    /// Events written.
    pub events: u64,
    /// Objects (files) or messages written.
    pub objects: u64,
    /// Payload bytes written.
    pub bytes: u64,
}

/// A parsed `--sink` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkUrl {
    /// A local folder (a plain path or `file://DIR`) or an S3 prefix (`s3://bucket/prefix`), opened
    /// through pool-core's storage settings.
    Object(String),
    /// A RabbitMQ broker (`amqp://` or `amqps://`).
    Amqp(String),
}

/// Why a `--sink` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--sink {value:?}: {why}")]
pub struct SinkUrlError {
    pub value: String,
    pub why: String,
}

impl FromStr for SinkUrl {
    type Err = SinkUrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let err = |why: &str| SinkUrlError {
            value: s.to_owned(),
            why: why.to_owned(),
        };
        if s.is_empty() {
            return Err(err(
                "empty; give a folder, file://DIR or s3://bucket/prefix",
            ));
        }
        match s.split_once("://") {
            None => Ok(SinkUrl::Object(s.to_owned())),
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "file" if !rest.is_empty() => Ok(SinkUrl::Object(s.to_owned())),
                "file" => Err(err("file:// needs a folder, e.g. file:///srv/events")),
                "s3" => {
                    let bucket = rest.split('/').next().unwrap_or("");
                    if bucket.is_empty() {
                        Err(err("s3:// needs a bucket, e.g. s3://events/prefix"))
                    } else {
                        Ok(SinkUrl::Object(s.to_owned()))
                    }
                }
                "amqp" | "amqps" => Ok(SinkUrl::Amqp(s.to_owned())),
                other => Err(err(&format!(
                    "unknown scheme {other:?}; use a folder path, file://DIR, s3://bucket/prefix or amqp://host"
                ))),
            },
        }
    }
}

impl fmt::Display for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkUrl::Object(u) => f.write_str(u),
            SinkUrl::Amqp(u) => f.write_str(&pool_service::redact::url(u)),
        }
    }
}

/// Everything a sink may need to open. New sinks add their settings here.
#[derive(Debug, Clone, Default)]
pub struct SinkSettings {
    /// S3 credentials, endpoint and region (also used for local folders, which need none).
    pub storage: StorageArgs,
    /// Buffering and naming of objects.
    pub object: ObjectSinkOptions,
    /// Exchange and queue names and message sizes of an `amqp://` sink (its URL comes from `--sink`);
    /// `None` = from the `AMQP_*` variables.
    #[cfg(feature = "amqp")]
    pub amqp: Option<pool_amqp::AmqpArgs>,
    /// A location that names a single object gets each event appended to it (the trickle) instead of
    /// being refused.
    pub append: bool,
}

/// Open the sink `url` points at.
pub async fn open(url: &SinkUrl, settings: &SinkSettings) -> anyhow::Result<Box<dyn Sink>> {
    match url {
        SinkUrl::Object(u) if settings.append => {
            let storage = pool_storage::Storage::open(u, &settings.storage)
                .map_err(|e| anyhow::anyhow!(e).context(format!("opening sink {u}")))?;
            if storage.single_object {
                Ok(Box::new(AppendSink::new(storage)))
            } else {
                Ok(Box::new(ObjectSink::open(
                    u,
                    &settings.storage,
                    settings.object.clone(),
                )?))
            }
        }
        SinkUrl::Object(u) => Ok(Box::new(ObjectSink::open(
            u,
            &settings.storage,
            settings.object.clone(),
        )?)),
        #[cfg(feature = "amqp")]
        SinkUrl::Amqp(u) => Ok(Box::new(match &settings.amqp {
            Some(args) => {
                let mut args = args.clone();
                args.url = u.clone();
                amqp::AmqpSink::open_with(&args).await?
            }
            None => amqp::AmqpSink::open(u).await?,
        })),
        #[cfg(not(feature = "amqp"))]
        SinkUrl::Amqp(_) => anyhow::bail!(
            "this event-generator was built without the amqp feature (as `make run` builds it); \
             build it with `cargo build --bins -p event-generator` to publish to RabbitMQ"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_urls() {
        assert_eq!(
            "./data/events".parse::<SinkUrl>().unwrap(),
            SinkUrl::Object("./data/events".into())
        );
        assert_eq!(
            "file:///tmp/x".parse::<SinkUrl>().unwrap(),
            SinkUrl::Object("file:///tmp/x".into())
        );
        assert_eq!(
            "s3://b/p/".parse::<SinkUrl>().unwrap(),
            SinkUrl::Object("s3://b/p/".into())
        );
        assert_eq!(
            "amqp://guest:guest@localhost:5672/%2f"
                .parse::<SinkUrl>()
                .unwrap(),
            SinkUrl::Amqp("amqp://guest:guest@localhost:5672/%2f".into())
        );
        for bad in ["", "s3://", "s3:///x", "file://", "ftp://h/x", "kafka://b"] {
            assert!(bad.parse::<SinkUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn amqp_passwords_are_not_shown() {
        let u: SinkUrl = "amqp://guest:hunter2@localhost:5672".parse().unwrap();
        assert!(!u.to_string().contains("hunter2"));
    }

    #[cfg(feature = "amqp")]
    #[tokio::test]
    async fn an_unreachable_broker_is_an_error_at_open() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let u: SinkUrl = format!("amqp://guest:secret@127.0.0.1:{port}/%2f")
            .parse()
            .unwrap();
        let err = format!(
            "{:#}",
            open(&u, &SinkSettings::default())
                .await
                .err()
                .expect("nothing listens there")
        );
        assert!(err.contains("RabbitMQ"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}
