//! Logging set-up shared by every binary: `LOG_LEVEL` (the seed's names work: DEBUG, INFO, WARNING,
//! ERROR, CRITICAL, NOTSET; or any `tracing` filter such as `info,pool_selector=debug`) and
//! `LOG_FORMAT` (`text` or `json`, one object per line for log shippers).

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct TelemetryArgs {
    /// Log level or tracing filter (DEBUG, INFO, WARNING, ERROR, CRITICAL, or e.g. info,relay=debug).
    #[arg(long, env = "LOG_LEVEL", default_value = "INFO")]
    pub log_level: String,
    /// Log line format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        ignore_case = true
    )]
    pub log_format: LogFormat,
}

impl Default for TelemetryArgs {
    fn default() -> Self {
        Self {
            log_level: "INFO".into(),
            log_format: LogFormat::Text,
        }
    }
}

/// Translate the seed's Python level names into a `tracing` filter directive.
pub fn filter_directive(level: &str) -> String {
    match level.trim().to_ascii_uppercase().as_str() {
        "NOTSET" | "TRACE" => "trace".into(),
        "DEBUG" => "debug".into(),
        "" | "INFO" => "info".into(),
        "WARNING" | "WARN" => "warn".into(),
        "ERROR" | "CRITICAL" | "FATAL" => "error".into(),
        _ => level.trim().to_owned(),
    }
}

impl TelemetryArgs {
    /// Install the global subscriber. Safe to call more than once (tests): later calls are no-ops.
    pub fn init(&self) {
        let filter = EnvFilter::try_new(filter_directive(&self.log_level))
            .unwrap_or_else(|_| EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        let _ = match self.log_format {
            LogFormat::Json => builder.json().flatten_event(true).try_init(),
            LogFormat::Text => builder.try_init(),
        };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn seed_levels() {
        assert_eq!(super::filter_directive("WARNING"), "warn");
        assert_eq!(super::filter_directive("critical"), "error");
        assert_eq!(
            super::filter_directive("info,relay=debug"),
            "info,relay=debug"
        );
    }
}
