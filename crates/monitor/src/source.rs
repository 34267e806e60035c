//! The RabbitMQ management HTTP API as a source of queue statistics.
//!
//! Credentials may be written into `RABBITMQ_MANAGEMENT_URL` (`http://user:pass@host:15672`) because
//! that is how operators are used to giving them, but they are taken out of the URL at start-up and
//! sent only as an HTTP basic-auth header. Every URL this module shows — in logs, errors, metrics and
//! JSON — is the redacted one.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::decision::QueueStats;

/// Only the fields the decision needs, so the broker serialises a few hundred bytes, not the
/// queue's full description.
const COLUMNS: &str = "name,messages_ready,messages_unacknowledged,consumers,\
message_stats.publish_details.rate,message_stats.ack_details.rate,\
message_stats.deliver_get_details.rate";

/// Rates over the last `RATE_AGE_SECONDS`, in steps of `RATE_INCREMENT_SECONDS`. Without these the
/// management API (3.x, whose sample buckets are 5 s wide) answers the rate of the last sampling
/// interval only in the poll right after a sample and `0.0` in the polls between: measured on the
/// local stack's broker at a steady 50 messages/s, four polls in five read `publish_details.rate = 0.0`,
/// so a monitor polling every second saw no arrivals and kept the scale at 1 under a growing backlog.
/// With an age window every poll reads the rate of the newest full 5 s step.
const RATE_AGE_SECONDS: u32 = 30;
/// The management agent's default sample granularity for the last minute (`basic` retention policy).
const RATE_INCREMENT_SECONDS: u32 = 5;

/// Why a management URL was refused at start-up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("RABBITMQ_MANAGEMENT_URL {url} is not a URL: {why}")]
    Malformed { url: String, why: String },
    #[error(
        "RABBITMQ_MANAGEMENT_URL {url:?} has scheme {scheme:?}: use http:// or https:// (with TLS_CA_FILE for a private CA)"
    )]
    Scheme { url: String, scheme: String },
    #[error("RABBITMQ_MANAGEMENT_URL {url:?} has no host")]
    NoHost { url: String },
}

/// Why one poll of one queue failed. Messages name the redacted URL, never credentials.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SourceError {
    #[error("management API at {url} unreachable: {why}")]
    Unreachable { url: String, why: String },
    #[error(
        "management API at {url} refused the credentials (401): check the user in RABBITMQ_MANAGEMENT_URL"
    )]
    Unauthorized { url: String },
    #[error("queue {queue:?} not found in vhost {vhost:?} at {url}")]
    QueueNotFound {
        url: String,
        vhost: String,
        queue: String,
    },
    #[error("management API at {url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("management API at {url} answered with an unexpected body: {why}")]
    Decode { url: String, why: String },
}

/// A URL without its password, for logs and errors.
pub fn redact(url: &Url) -> String {
    pool_service::redact::url(url.as_str())
}

/// A validated, credential-free management API location plus the credentials to send.
#[derive(Clone)]
pub struct ManagementUrl {
    base: Url,
    credentials: Option<(String, String)>,
}

impl fmt::Debug for ManagementUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementUrl")
            .field("base", &self.base.as_str())
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl fmt::Display for ManagementUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base.as_str())
    }
}

impl ManagementUrl {
    /// Parse and validate; errors show the URL redacted.
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let mut url = Url::parse(raw.trim()).map_err(|e| UrlError::Malformed {
            // An unparseable string is never echoed: it may be a password with a typo.
            url: "(not shown)".into(),
            why: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlError::Scheme {
                url: redact(&url),
                scheme: url.scheme().to_owned(),
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::NoHost { url: redact(&url) });
        }
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let decode = |s: &str| {
                // Userinfo is percent-encoded; form decoding would also turn '+' into a space.
                url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Some((decode(url.username()), decode(url.password().unwrap_or(""))))
        };
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        // A trailing slash makes `join`-style path building predictable behind a path prefix.
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        Ok(Self {
            base: url,
            credentials,
        })
    }

    /// The URL without credentials, for logs and errors.
    pub fn redacted(&self) -> &str {
        self.base.as_str()
    }

    /// `{base}api/queues/{vhost}/{queue}`, each segment percent-encoded (`/` → `%2F`).
    fn queue_url(&self, vhost: &str, queue: &str) -> Url {
        let mut u = self.base.clone();
        {
            let mut segs = u.path_segments_mut().expect("an http URL can be a base");
            segs.pop_if_empty().extend(["api", "queues", vhost, queue]);
        }
        u.query_pairs_mut()
            .append_pair("columns", COLUMNS)
            .append_pair("msg_rates_age", &RATE_AGE_SECONDS.to_string())
            .append_pair("msg_rates_incr", &RATE_INCREMENT_SECONDS.to_string());
        u
    }
}

#[derive(Deserialize, Default)]
struct RateDetails {
    #[serde(default)]
    rate: f64,
}

#[derive(Deserialize, Default)]
struct MessageStats {
    #[serde(default)]
    publish_details: RateDetails,
    #[serde(default)]
    ack_details: RateDetails,
    #[serde(default)]
    deliver_get_details: RateDetails,
}

/// The subset of `GET /api/queues/{vhost}/{name}` we read. Fields are absent on a queue that never
/// saw traffic (no `message_stats`) and, briefly, on a queue the stats database has not sampled yet.
#[derive(Deserialize)]
struct QueueBody {
    #[serde(default)]
    messages_ready: u64,
    #[serde(default)]
    messages_unacknowledged: u64,
    #[serde(default)]
    consumers: u64,
    #[serde(default)]
    message_stats: Option<MessageStats>,
}

/// An HTTP client for the management API.
#[derive(Clone, Debug)]
pub struct ManagementApi {
    url: ManagementUrl,
    client: reqwest::Client,
}

impl ManagementApi {
    /// `ca_pem`: a PEM bundle of private CAs trusted for an `https://` URL, besides the system roots.
    pub fn new(url: ManagementUrl, timeout: Duration, ca_pem: Option<&[u8]>) -> Self {
        pool_service::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // The broker is reached directly (in-cluster or loopback); an ambient HTTP_PROXY must
            // not receive the basic-auth header.
            .no_proxy();
        for cert in ca_pem
            .map(reqwest::Certificate::from_pem_bundle)
            .transpose()
            .ok()
            .flatten()
            .unwrap_or_default()
        {
            builder = builder.add_root_certificate(cert);
        }
        let client = builder.build().expect("the HTTP client builds");
        Self { url, client }
    }

    pub fn url(&self) -> &ManagementUrl {
        &self.url
    }

    /// Read one queue's depth, consumers and rates.
    pub async fn queue_stats(&self, vhost: &str, queue: &str) -> Result<QueueStats, SourceError> {
        let url = self.url.queue_url(vhost, queue);
        let shown = self.url.redacted().to_owned();
        let mut req = self.client.get(url);
        if let Some((user, pass)) = &self.url.credentials {
            req = req.basic_auth(user, Some(pass));
        }
        let res = req.send().await.map_err(|e| SourceError::Unreachable {
            url: shown.clone(),
            why: describe(&e),
        })?;
        match res.status().as_u16() {
            200 => {}
            401 => return Err(SourceError::Unauthorized { url: shown }),
            404 => {
                return Err(SourceError::QueueNotFound {
                    url: shown,
                    vhost: vhost.to_owned(),
                    queue: queue.to_owned(),
                });
            }
            status => return Err(SourceError::Status { url: shown, status }),
        }
        let body: QueueBody = res.json().await.map_err(|e| SourceError::Decode {
            url: shown.clone(),
            why: describe(&e),
        })?;
        let ms = body.message_stats.unwrap_or_default();
        Ok(QueueStats {
            messages_ready: body.messages_ready,
            messages_unacknowledged: body.messages_unacknowledged,
            consumers: body.consumers,
            publish_rate: ms.publish_details.rate.max(0.0),
            ack_rate: ms.ack_details.rate.max(0.0),
            deliver_get_rate: ms.deliver_get_details.rate.max(0.0),
        })
    }
}

/// A reqwest error with its cause chain but without the URL (ours is already in the message).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "could not decode"
    } else {
        "request failed"
    };
    let mut out = kind.to_owned();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_the_url() {
        let u = ManagementUrl::parse("http://ops:s3cr%40t@rabbit.example:15672").unwrap();
        assert_eq!(u.redacted(), "http://rabbit.example:15672/");
        assert_eq!(u.credentials, Some(("ops".to_owned(), "s3cr@t".to_owned())));
        let shown = format!("{u} {u:?}");
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(!shown.contains("ops"), "{shown}");
    }

    #[test]
    fn queue_url_encodes_vhost_and_keeps_a_path_prefix() {
        let u = ManagementUrl::parse("http://h:15672").unwrap();
        let q = u.queue_url("/", "events.ingest");
        assert!(
            q.as_str()
                .starts_with("http://h:15672/api/queues/%2F/events.ingest?columns="),
            "{q}"
        );
        assert!(
            q.as_str().ends_with("&msg_rates_age=30&msg_rates_incr=5"),
            "rates over an age window, or most polls read 0.0: {q}"
        );
        let u = ManagementUrl::parse("http://h/rabbitmq").unwrap();
        let q = u.queue_url("prod", "a b");
        assert!(
            q.as_str()
                .starts_with("http://h/rabbitmq/api/queues/prod/a%20b?"),
            "{q}"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_showing_secrets() {
        assert!(matches!(
            ManagementUrl::parse("not a url"),
            Err(UrlError::Malformed { .. })
        ));
        assert!(ManagementUrl::parse("https://u:topsecret@h:15671").is_ok());
        let e = ManagementUrl::parse("ftp://u:topsecret@h:15671").unwrap_err();
        assert!(matches!(e, UrlError::Scheme { .. }));
        assert!(!e.to_string().contains("topsecret"), "{e}");
        let e = ManagementUrl::parse("http://u:topsecret@[::1").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
        assert!(matches!(
            ManagementUrl::parse("file:///tmp/x"),
            Err(UrlError::Scheme { .. })
        ));
    }

    #[test]
    fn queue_body_without_message_stats_is_all_zero_rates() {
        let b: QueueBody =
            serde_json::from_str(r#"{"name":"q","messages_ready":3,"consumers":0}"#).unwrap();
        assert_eq!(b.messages_ready, 3);
        assert!(b.message_stats.is_none());
    }
}
