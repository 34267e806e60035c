//! `pool-redis`: the one way a Pool Selector service reaches Redis (the relay's shared cache, the
//! launcher's durable launches).
//!
//! Both services used to build their client apart, and only the relay's trusted a private CA for
//! `rediss://`; here the URL, TLS, timeouts and redaction are decided once:
//!
//! * [`RedisOptions`]: the URL, the optional CA bundle (`TLS_CA_FILE`), and the connection manager's
//!   timeouts and reconnection backoff.
//! * [`connect_lazy`]: a [`ConnectionManager`] that does not connect yet, so a service starts (and says
//!   so on `/ready`) while Redis is down.
//! * [`bounded`]: one command under a deadline, so a stalled Redis costs a request at most that long.
//!
//! Errors name the URL only through [`pool_service::redact::url`]: it may hold a password.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

pub use redis::aio::ConnectionManager;
use redis::aio::ConnectionManagerConfig;

/// Why Redis cannot be used at all (at start-up: a malformed URL or CA bundle). A Redis that is merely
/// down is not an error here: the connection is lazy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("REDIS_URL {shown} cannot be used: {category}")]
    Url { shown: String, category: String },
    #[error(transparent)]
    Tls(#[from] pool_service::tls::TlsError),
}

/// Why one command did not answer.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Where Redis is and how patiently to talk to it.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://` or `rediss://` (TLS), possibly with a password.
    pub url: String,
    /// PEM bundle of the CA that signs a `rediss://` server's certificate; `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long the manager waits for one answer before it gives the connection up.
    pub response_timeout: Duration,
    /// Reconnection attempts per failure, and the backoff between them; `None`: the redis crate's.
    pub reconnect: Option<Reconnect>,
}

/// The manager's reconnection policy.
#[derive(Debug, Clone, Copy)]
pub struct Reconnect {
    pub retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl RedisOptions {
    /// `url` with the system's roots, a 2 s connect and a 5 s response timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca_file: None,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            reconnect: None,
        }
    }

    /// The URL as logs and errors may show it (the password hidden).
    pub fn shown_url(&self) -> String {
        pool_service::redact::url(&self.url)
    }
}

/// A client for `options.url`. With a CA file, a `rediss://` server's certificate must chain to that CA;
/// without it, to the system's roots.
pub fn client(options: &RedisOptions) -> Result<redis::Client, Error> {
    pool_service::tls::install_crypto_provider();
    let client = match &options.ca_file {
        Some(path) if options.url.starts_with("rediss://") => redis::Client::build_with_tls(
            options.url.as_str(),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pool_service::tls::read_ca_pem(path)?),
            },
        ),
        _ => redis::Client::open(options.url.as_str()),
    };
    client.map_err(|e| Error::Url {
        shown: options.shown_url(),
        category: e.category().to_owned(),
    })
}

/// A connection manager that connects on first use and reconnects after a failure. Must be called inside
/// a Tokio runtime (the manager's reconnection task lives there).
pub fn connect_lazy(options: &RedisOptions) -> Result<ConnectionManager, Error> {
    let mut config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(Some(options.response_timeout));
    if let Some(r) = options.reconnect {
        config = config
            .set_number_of_retries(r.retries)
            .set_min_delay(r.min_delay)
            .set_max_delay(r.max_delay);
    }
    ConnectionManager::new_lazy_with_config(client(options)?, config).map_err(|e| Error::Url {
        shown: options.shown_url(),
        category: e.category().to_owned(),
    })
}

/// Run one Redis future with a deadline.
pub async fn bounded<T>(
    timeout: Duration,
    f: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, CommandError> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(CommandError::Timeout(timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PING through a connection made from `options`, within 10 s.
    async fn ping(options: &RedisOptions) -> Result<String, CommandError> {
        let mut conn = connect_lazy(options).unwrap();
        bounded(
            Duration::from_secs(10),
            redis::cmd("PING").query_async(&mut conn),
        )
        .await
    }

    /// No reconnection attempts: a failed connection fails the command at once.
    const NO_RETRY: Option<Reconnect> = Some(Reconnect {
        retries: 0,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    });

    #[test]
    fn a_malformed_url_is_refused_without_showing_its_password() {
        let err = client(&RedisOptions::new("redis://:hunter2@cache:notaport")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("REDIS_URL"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn a_missing_ca_file_is_refused_for_rediss() {
        let mut options = RedisOptions::new("rediss://cache:6380");
        options.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(matches!(client(&options), Err(Error::Tls(_))));
        // Over plain redis:// the CA file does not matter.
        options.url = "redis://cache:6379".into();
        assert!(client(&options).is_ok());
    }

    #[tokio::test]
    async fn a_command_against_a_real_redis_answers_and_a_closed_port_fails_in_time() {
        let up = RedisOptions::new(testkit::servers::redis_url());
        assert_eq!(ping(&up).await.unwrap(), "PONG");

        let mut down = RedisOptions::new(format!(
            "redis://127.0.0.1:{}",
            testkit::process::free_port()
        ));
        down.connect_timeout = Duration::from_millis(200);
        down.response_timeout = Duration::from_millis(200);
        down.reconnect = NO_RETRY;
        assert!(ping(&down).await.is_err());
    }

    #[tokio::test]
    async fn rediss_is_trusted_with_the_harness_ca_and_only_with_it() {
        let mut options = RedisOptions::new(testkit::require_env("TEST_REDISS_URL"));
        options.ca_file = Some(testkit::require_env("TEST_TLS_CA_FILE").into());
        assert_eq!(ping(&options).await.unwrap(), "PONG");

        options.ca_file = None;
        options.reconnect = NO_RETRY;
        assert!(
            ping(&options).await.is_err(),
            "a certificate from an unknown CA must not be trusted"
        );
    }
}
