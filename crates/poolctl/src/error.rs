//! What a command can end with, and the exit code scripts see for it.
//!
//! Scripts branch on the code, people read the message: every error says what went wrong and what to
//! do about it (start a service, set a variable, fix a parameter).

use std::fmt;

/// The process exit codes. `clap` exits with 2 on a usage error of its own, which matches [`Usage`].
///
/// [`Usage`]: Exit::Usage
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// An answer was found (0).
    Found = 0,
    /// The services answered, but nothing matched: no events for these filters, no pool, no launch (1).
    NoData = 1,
    /// The command was wrong: a malformed instance type, window, file... (2).
    Usage = 2,
    /// A service could not be reached, refused us, or failed (3).
    Service = 3,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A command that did not succeed: its exit code and a message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    pub fn no_data(message: impl Into<String>) -> Self {
        Self::new(Exit::NoData, message)
    }

    pub fn service(message: impl Into<String>) -> Self {
        Self::new(Exit::Service, message)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// A query the services would refuse, caught before sending it (same grammar, same message).
impl From<pool_core::request::QueryError> for CliError {
    fn from(e: pool_core::request::QueryError) -> Self {
        match e {
            pool_core::request::QueryError::Parameter(p) => CliError::from(p),
            pool_core::request::QueryError::Malformed(m) => CliError::usage(m),
        }
    }
}

impl From<pool_core::EventError> for CliError {
    fn from(e: pool_core::EventError) -> Self {
        if e.message.starts_with(e.field) {
            CliError::usage(e.message)
        } else {
            CliError::usage(format!("{}: {}", e.field, e.message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(
            [Exit::Found, Exit::NoData, Exit::Usage, Exit::Service].map(Exit::code),
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn a_refused_query_is_a_usage_error_with_the_services_message() {
        let e: CliError = pool_core::request::RankingRequest::from_query("window=soon")
            .unwrap_err()
            .into();
        assert_eq!(e.exit, Exit::Usage);
        assert!(e.message.contains("window"), "{e}");
    }
}
