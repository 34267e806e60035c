//! Who may do what on the broker: one RabbitMQ user per role, each with exactly the permissions its
//! service uses, derived from the topology's names (so a test's suffixed topology gets its own users
//! with the same rules).
//!
//! RabbitMQ grants per virtual host three regular expressions over resource names: `configure`
//! (declare, delete, purge, bind as the configuring side), `write` (publish to an exchange, bind a queue
//! to it) and `read` (consume or get from a queue, bind from an exchange). No service needs
//! `configure`: the topology is declared once by the admin identity ([`crate::Topology::declare`]) and
//! services only check it with passive declarations, which need no permission.
//!
//! | role | configure | write | read | tags |
//! | --- | --- | --- | --- | --- |
//! | `producer` (intake, event-generator) | nothing | the exchange `events` | nothing | |
//! | `worker` (ingest-worker) | nothing | the dead-letter exchange `events.dlx` | the queue `events.ingest` | |
//! | `replay` (`poolctl dlq replay`, an operator) | nothing | the exchange `events` | the queue `events.dead` | |
//! | `monitor` | nothing | nothing | nothing | `monitoring` (read-only management API) |
//! | `admin` (declares the topology) | everything | everything | everything | `administrator` |
//!
//! RabbitMQ grants `queue.purge` with `read`: the worker's user can purge its own queue and the replay
//! identity the dead letters (each can consume them anyway); nothing narrower exists.
//!
//! `deploy/rabbitmq/permissions.tsv` writes the same table out for the default names; the scripts
//! that create users read it, and a unit test below checks that it says what [`Role::permissions`] does.

use crate::Topology;

/// A broker identity's purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Publishes events to the exchange (the intake, the event-generator).
    Producer,
    /// Consumes the ingest queue and dead-letters what cannot be stored (the ingest-worker).
    Worker,
    /// Moves dead letters back to the exchange (`poolctl dlq replay`).
    Replay,
    /// Reads queue statistics from the management API (the monitor).
    Monitor,
    /// Declares the topology; not used by any service.
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Producer,
        Role::Worker,
        Role::Replay,
        Role::Monitor,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Worker => "worker",
            Role::Replay => "replay",
            Role::Monitor => "monitor",
            Role::Admin => "admin",
        }
    }

    /// The management tags of the role's user (`monitoring`: the read-only management API).
    pub fn tags(self) -> &'static str {
        match self {
            Role::Monitor => "monitoring",
            Role::Admin => "administrator",
            _ => "",
        }
    }

    /// The role's permissions on the names of `topology`. The monitor gets access to the vhost (the
    /// management API shows a vhost's queues to the users of that vhost) with permission on nothing:
    /// it reads statistics and can do nothing on the broker.
    pub fn permissions(self, topology: &Topology) -> Permissions {
        let only = |name: &str| format!("^{}$", escape(name));
        match self {
            Role::Producer => Permissions::new(NOTHING, only(&topology.exchange), NOTHING),
            Role::Worker => Permissions::new(
                NOTHING,
                only(&topology.dead_letter_exchange),
                only(&topology.queue),
            ),
            Role::Replay => Permissions::new(
                NOTHING,
                only(&topology.exchange),
                only(&topology.dead_letter_queue),
            ),
            Role::Monitor => Permissions::new(NOTHING, NOTHING, NOTHING),
            Role::Admin => Permissions::new(".*", ".*", ".*"),
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("{s:?} is not a role (producer, worker, replay, monitor, admin)")
            })
    }
}

/// The regular expression that matches no resource name (RabbitMQ's "no permission").
pub const NOTHING: &str = "^$";

/// RabbitMQ's three permission patterns of a user in a virtual host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub configure: String,
    pub write: String,
    pub read: String,
}

impl Permissions {
    fn new(
        configure: impl Into<String>,
        write: impl Into<String>,
        read: impl Into<String>,
    ) -> Self {
        Self {
            configure: configure.into(),
            write: write.into(),
            read: read.into(),
        }
    }
}

/// `name` with every regular-expression metacharacter escaped (queue names hold dots).
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AmqpArgs;

    #[test]
    fn no_service_role_may_configure_and_each_names_only_its_resources() {
        let t = AmqpArgs::default().topology();
        let p = Role::Producer.permissions(&t);
        assert_eq!(
            (p.configure.as_str(), p.write.as_str(), p.read.as_str()),
            ("^$", "^events$", "^$")
        );
        let w = Role::Worker.permissions(&t);
        assert_eq!(
            (w.configure.as_str(), w.write.as_str(), w.read.as_str()),
            ("^$", r"^events\.dlx$", r"^events\.ingest$")
        );
        for role in [Role::Producer, Role::Worker, Role::Replay, Role::Monitor] {
            assert_eq!(role.permissions(&t).configure, NOTHING, "{role:?}");
        }
        let m = Role::Monitor.permissions(&t);
        assert_eq!((m.write.as_str(), m.read.as_str()), (NOTHING, NOTHING));
        assert_eq!(escape("a.b*c"), r"a\.b\*c");
        assert_eq!("worker".parse::<Role>(), Ok(Role::Worker));
        assert!("root".parse::<Role>().is_err());
    }

    /// The file the scripts create users from says what the code says.
    #[test]
    fn the_permissions_file_matches_the_roles() {
        let file = include_str!("../../../deploy/rabbitmq/permissions.tsv");
        let t = AmqpArgs::default().topology();
        let mut seen = vec![];
        for line in file.lines() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            assert!(
                fields.len() == 5 || fields.len() == 4,
                "role, configure, write, read[, tags]: {line:?}"
            );
            let role: Role = fields[0].parse().unwrap();
            let p = role.permissions(&t);
            assert_eq!(
                (fields[1], fields[2], fields[3]),
                (p.configure.as_str(), p.write.as_str(), p.read.as_str()),
                "{line:?}"
            );
            assert_eq!(
                fields.get(4).copied().unwrap_or(""),
                role.tags(),
                "{line:?}"
            );
            seen.push(role);
        }
        assert_eq!(seen.len(), Role::ALL.len(), "every role, once: {seen:?}");
    }
}
