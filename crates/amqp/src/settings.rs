//! The broker settings every producer and consumer flattens into its command line: the URL, the names
//! of the four exchanges and queues, the message size limits and the timeouts. Kept on their own
//! because they are the one thing every user of the crate needs, including those that never connect
//! (`pool-amqp permissions` prints each role's rights on these names; tests derive suffixed copies).

use std::time::Duration;

use clap::Args;

use pool_core::duration::parse_arg as parse_duration_flag;
use pool_service::config::{
    DEFAULT_DEAD_LETTER_EXCHANGE, DEFAULT_DEAD_LETTER_QUEUE, DEFAULT_EXCHANGE, DEFAULT_QUEUE,
};

use crate::Topology;

/// Default broker URL: the local broker's default vhost as `guest` (who may only log in from loopback).
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

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
