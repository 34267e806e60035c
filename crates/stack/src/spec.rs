//! The stack file (deploy/stack.toml): what runs, how it is checked and stopped, and the settings it
//! is wired with. Declarative on purpose: the manager knows nothing about RabbitMQ or S3; everything
//! particular to a component is in its entry (commands, environment, checks, files, hooks).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The prefix of every message (`stack: ...`).
    pub name: String,
    /// The repository, relative to the stack file's folder; `${ROOT}`.
    pub root: String,
    /// The state folder (pid files in run/, logs in logs/, settings, env); `${STATE}`.
    pub state_dir: String,
    /// The state layout, relative to STATE: pid files, logs ("" for STATE itself), the recorded
    /// settings and the exports.
    #[serde(default = "default_run_dir")]
    pub run_dir: String,
    #[serde(default = "default_log_dir")]
    pub log_dir: String,
    #[serde(default = "default_settings_file")]
    pub settings_file: String,
    #[serde(default = "default_env_file")]
    pub env_file: String,
    /// What errors say when a command needs the stack up and it is not, and how to start it.
    #[serde(default = "default_not_up")]
    pub not_up: String,
    #[serde(default = "default_start_hint")]
    pub start_hint: String,
    /// Appended to "port … is taken" errors.
    #[serde(default)]
    pub port_hint: String,
    #[serde(default)]
    pub build: Option<Build>,
    /// Commands (on PATH) or paths that `up` needs; when one is missing, `install` runs first.
    #[serde(default)]
    pub requires: Vec<String>,
    #[serde(default)]
    pub install: Vec<String>,
    /// Resolved at the first `up`, recorded in STATE/settings and reused until `down`: NAME = value.
    #[serde(default)]
    pub settings: toml::Table,
    /// Resolved when used and never recorded: plain strings, secrets kept in a file, `key value` lines.
    #[serde(default)]
    pub values: toml::Table,
    /// The `export NAME='value'` lines written to STATE/env (`env` prints them).
    #[serde(default)]
    pub exports: toml::Table,
    /// Generated files, by name (`render NAME` prints one).
    #[serde(default)]
    pub files: BTreeMap<String, FileSpec>,
    /// Other names for subcommands, e.g. prometheus-config = ["render", "prometheus"].
    #[serde(default)]
    pub aliases: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub up: Up,
    #[serde(default)]
    pub down: Down,
    #[serde(rename = "component", default)]
    pub components: Vec<Component>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// Binaries expected in ${BIN} (STACK_BUILD: missing, always, never).
    pub binaries: Vec<String>,
    /// The build command, run in ROOT; `release_args` are added for the release profile.
    pub command: Vec<String>,
    #[serde(default)]
    pub release_args: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Up {
    /// Printed on stdout once everything is ready.
    #[serde(default)]
    pub banner: String,
    /// Checked after every component is ready (e.g. a ranking answers through the relay).
    #[serde(default)]
    pub final_check: Option<Check>,
    /// Logged when `up` fails with something still running.
    #[serde(default)]
    pub failed_hint: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Down {
    /// Deleted once everything is stopped.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Deleted when empty (a folder made for the state outside it).
    #[serde(default)]
    pub remove_if_empty: Vec<String>,
    /// Logged at the end of `down`.
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Where `up` writes it (before starting a component that lists it).
    #[serde(default)]
    pub path: Option<String>,
    /// A file of the repository to start from (not substituted: its own `$` stay), or inline content
    /// (substituted).
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    /// [from, to] pairs, `to` substituted.
    #[serde(default)]
    pub replace: Vec<[String; 2]>,
    /// Lines holding any of these are dropped.
    #[serde(default)]
    pub drop_lines: Vec<String>,
    /// Comment (#) and blank lines are dropped.
    #[serde(default)]
    pub strip_comments: bool,
}

/// One readiness check. Exactly one of tcp, http, command, alive_for.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// A port on 127.0.0.1 accepting connections; with `send`/`expect`, a line exchanged.
    pub tcp: Option<String>,
    pub send: Option<String>,
    pub expect: Option<String>,
    /// An http:// URL (user:password@ for basic auth) answering GET with 2xx.
    pub http: Option<String>,
    /// A command exiting 0 (run with the component's environment).
    pub command: Option<Vec<String>>,
    /// The process has kept running this many seconds (for a component with no port).
    pub alive_for: Option<f64>,
    /// The deadline for the whole wait, seconds (for `final_check`; components use ready_timeout).
    pub timeout: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub name: String,
    /// Run only when this setting is "1" (or NAME=VALUE holds).
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    pub command: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    /// On top of the manager's own environment.
    #[serde(default)]
    pub env: toml::Table,
    /// Set only when not empty.
    #[serde(default)]
    pub env_if_set: toml::Table,
    /// Must be free before it starts.
    #[serde(default)]
    pub ports: Vec<String>,
    /// What `status` shows for it.
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub ready: Vec<Check>,
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout: u64,
    /// Folders made before it starts.
    #[serde(default)]
    pub dirs: Vec<String>,
    /// Names of `files` written before it starts.
    #[serde(default)]
    pub files: Vec<String>,
    /// Commands run before it starts, and once it is ready (output to its log; failing stops `up`).
    #[serde(default)]
    pub prepare: Vec<Vec<String>>,
    #[serde(default)]
    pub after_ready: Vec<Vec<String>>,
    /// Seconds between SIGTERM and SIGKILL.
    #[serde(default = "default_stop_grace")]
    pub stop_grace: u64,
    /// `down` only: a pid file whose process is SIGKILLed before the SIGTERM (its data is deleted next).
    #[serde(default)]
    pub down_kill_first: Option<String>,
    /// `down` only: DIR/*/FILE pid files of process groups it left running on purpose, SIGTERMed.
    #[serde(default)]
    pub down_stop_groups: Option<String>,
    /// May be stopped and restarted on its own (`stop`, `restart`).
    #[serde(default)]
    pub service: bool,
}

fn default_not_up() -> String {
    "the stack is not up".into()
}
fn default_start_hint() -> String {
    "make up".into()
}
fn default_run_dir() -> String {
    "run".into()
}
fn default_log_dir() -> String {
    "logs".into()
}
fn default_settings_file() -> String {
    "settings".into()
}
fn default_env_file() -> String {
    "env".into()
}
fn default_ready_timeout() -> u64 {
    60
}
fn default_stop_grace() -> u64 {
    10
}

impl Spec {
    pub fn load(path: &Path) -> Result<Spec, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Spec::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Spec, String> {
        let spec: Spec = toml::from_str(text).map_err(|e| e.to_string())?;
        spec.validate()?;
        Ok(spec)
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for c in &self.components {
            if !seen.insert(c.name.as_str()) {
                return Err(format!("component {} is defined twice", c.name));
            }
            if c.command.is_empty() {
                return Err(format!("component {}: empty command", c.name));
            }
            for f in &c.files {
                if !self.files.contains_key(f) {
                    return Err(format!("component {}: no file {f} in [files]", c.name));
                }
            }
            for check in &c.ready {
                check
                    .validate()
                    .map_err(|e| format!("component {}: {e}", c.name))?;
            }
        }
        if let Some(c) = &self.up.final_check {
            c.validate().map_err(|e| format!("up.final_check: {e}"))?;
        }
        for (name, f) in &self.files {
            if f.template.is_some() == f.content.is_some() {
                return Err(format!("file {name}: give one of template and content"));
            }
        }
        let names: Vec<String> = self.components.iter().map(|c| c.name.clone()).collect();
        let deps: Vec<Vec<String>> = self
            .components
            .iter()
            .map(|c| c.depends_on.clone())
            .collect();
        crate::order::start_order(&names, &deps)?;
        Ok(())
    }

    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }
}

impl Check {
    fn validate(&self) -> Result<(), String> {
        let kinds = [
            self.tcp.is_some(),
            self.http.is_some(),
            self.command.is_some(),
            self.alive_for.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err("a check has exactly one of tcp, http, command, alive_for".into());
        }
        if (self.send.is_some() || self.expect.is_some()) && self.tcp.is_none() {
            return Err("send/expect go with tcp".into());
        }
        Ok(())
    }
}

/// A table's values as strings, in the file's order.
pub fn string_table(t: &toml::Table, what: &str) -> Result<Vec<(String, String)>, String> {
    t.iter()
        .map(|(k, v)| match v {
            toml::Value::String(s) => Ok((k.clone(), s.clone())),
            toml::Value::Integer(i) => Ok((k.clone(), i.to_string())),
            _ => Err(format!("{what}.{k}: expected a string")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
name = "demo"
root = ".."
state_dir = "${STATE_DIR:-/tmp/x}"

[settings]
PORT = "${DEMO_PORT:-8000}"
DIR = { run = ["echo", "/d"] }
MODE = { when = "CHAOS", then = "a", else = "b" }

[values]
KEY = { secret_file = "${STATE}/key" }

[[component]]
name = "web"
command = ["python3", "-m", "http.server", "${PORT}"]
ready = [{ http = "http://127.0.0.1:${PORT}/" }]
[component.env]
A = "1"

[[component]]
name = "api"
depends_on = ["web"]
command = ["true"]
ready = [{ tcp = "${PORT}", send = "PING\r\n", expect = "+PONG" }, { alive_for = 2 }]
stop_grace = 3
"#;

    #[test]
    fn a_stack_file_parses_with_defaults() {
        let s = Spec::parse(SMALL).unwrap();
        assert_eq!(s.components.len(), 2);
        let api = s.component("api").unwrap();
        assert_eq!(api.depends_on, ["web"]);
        assert_eq!((api.stop_grace, api.ready_timeout), (3, 60));
        assert_eq!(api.ready[0].send.as_deref(), Some("PING\r\n"));
        let web = s.component("web").unwrap();
        assert_eq!(
            string_table(&web.env, "env").unwrap(),
            [("A".to_string(), "1".to_string())]
        );
        let keys: Vec<&String> = s.settings.keys().collect();
        assert_eq!(
            keys,
            ["PORT", "DIR", "MODE"],
            "settings keep the file's order"
        );
    }

    #[test]
    fn mistakes_are_reported() {
        let cycle = SMALL.replace("name = \"web\"", "name = \"web\"\ndepends_on = [\"api\"]");
        assert!(
            Spec::parse(&cycle)
                .unwrap_err()
                .contains("dependency cycle among: web, api")
        );
        let typo = SMALL.replace("stop_grace = 3", "stop_grase = 3");
        assert!(Spec::parse(&typo).unwrap_err().contains("stop_grase"));
        let two = SMALL.replace("alive_for = 2 }", "alive_for = 2, tcp = \"1\" }");
        assert!(Spec::parse(&two).unwrap_err().contains("exactly one of"));
        let twice = SMALL.replace("name = \"api\"", "name = \"web\"");
        assert!(Spec::parse(&twice).unwrap_err().contains("defined twice"));
    }

    #[test]
    fn the_repository_stack_files_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        for f in ["stack.toml", "test-services.toml"] {
            Spec::load(&root.join(f)).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
