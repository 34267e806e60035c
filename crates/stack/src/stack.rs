//! The subcommands over one stack file: `up`, `down`, `status`, `logs`, `restart`, `stop`, `env`,
//! `render`, `show`. State lives in STATE: run/NAME.pid, logs/NAME.log, settings (the values in force
//! until `down`), env (the exports). Other tools read that layout (chaos, load tests, the stack test),
//! so it is the bash supervisor's, unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::health;
use crate::order::{start_order, stop_order};
use crate::process::{self, Launch};
use crate::spec::{Check, Component, Spec, string_table};
use crate::vars::{
    Vars, format_settings, parse_settings, parse_values, resolve_settings, shell_quote,
};

pub type Result<T> = std::result::Result<T, String>;

pub struct Stack {
    spec: Spec,
    root: PathBuf,
    state: PathBuf,
    vars: Vars,
}

/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(200);

impl Stack {
    /// Load the stack file and set the built-ins: ROOT, STATE, TARGET (CARGO_TARGET_DIR), PROFILE
    /// (STACK_PROFILE), BIN (TARGET/PROFILE), UID, SELF (this binary), STACK_FILE.
    pub fn open(file: &Path) -> Result<Stack> {
        let spec = Spec::load(file)?;
        let file = file
            .canonicalize()
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let root = file.parent().unwrap_or(Path::new("/")).join(&spec.root);
        let root = root
            .canonicalize()
            .map_err(|e| format!("root {}: {e}", root.display()))?;
        let mut builtins = BTreeMap::new();
        let root_s = root.display().to_string();
        builtins.insert("ROOT".to_string(), root_s.clone());
        let profile = std::env::var("STACK_PROFILE").unwrap_or_else(|_| "release".into());
        if profile != "release" && profile != "debug" {
            return Err(format!(
                "STACK_PROFILE must be release or debug (got {profile})"
            ));
        }
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        let target = if target.starts_with('/') {
            target
        } else {
            format!("{root_s}/{target}")
        };
        builtins.insert("BIN".into(), format!("{target}/{profile}"));
        builtins.insert("TARGET".into(), target);
        builtins.insert("PROFILE".into(), profile);
        builtins.insert("UID".into(), nix::unistd::getuid().to_string());
        builtins.insert("STACK_FILE".into(), file.display().to_string());
        if let Ok(exe) = std::env::current_exe() {
            builtins.insert("SELF".into(), exe.display().to_string());
        }
        let mut vars = Vars {
            builtins,
            settings: Vec::new(),
            values: parse_values(&spec.values)?,
            lenient: false,
        };
        let state = PathBuf::from(vars.sub(&spec.state_dir)?);
        let state = if state.is_absolute() {
            state
        } else {
            root.join(state)
        };
        std::fs::create_dir_all(&state).map_err(|e| format!("{}: {e}", state.display()))?;
        let state = state.canonicalize().unwrap_or(state);
        vars.builtins
            .insert("STATE".into(), state.display().to_string());
        Ok(Stack {
            spec,
            root,
            state,
            vars,
        })
    }

    fn log(&self, msg: impl AsRef<str>) {
        eprintln!("{}: {}", self.spec.name, msg.as_ref());
    }

    fn pidfile(&self, name: &str) -> PathBuf {
        self.state
            .join(&self.spec.run_dir)
            .join(format!("{name}.pid"))
    }
    fn logfile(&self, name: &str) -> PathBuf {
        self.state
            .join(&self.spec.log_dir)
            .join(format!("{name}.log"))
    }
    fn settings_file(&self) -> PathBuf {
        self.state.join(&self.spec.settings_file)
    }
    fn env_file(&self) -> PathBuf {
        self.state.join(&self.spec.env_file)
    }
    /// Make the folders of pid files and logs.
    fn make_dirs(&self) -> Result<()> {
        for d in [&self.spec.run_dir, &self.spec.log_dir] {
            std::fs::create_dir_all(self.state.join(d)).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
    fn started(&self) -> bool {
        self.settings_file().is_file()
    }
    fn alive(&self, name: &str) -> bool {
        process::alive(&self.pidfile(name))
    }

    /// The settings in force: those recorded at `up` (STATE/settings), the rest from the stack file.
    fn load_settings(&mut self) -> Result<()> {
        let recorded = std::fs::read_to_string(self.settings_file())
            .map(|t| parse_settings(&t))
            .unwrap_or_default();
        self.vars.settings.clear();
        resolve_settings(&mut self.vars, &self.spec.settings, &recorded)
    }

    fn enabled(&self, c: &Component) -> Result<bool> {
        c.when.as_deref().map_or(Ok(true), |w| self.vars.holds(w))
    }

    /// The components that run (their `when` holds), in the file's order.
    fn enabled_names(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for c in &self.spec.components {
            if self.enabled(c)? {
                out.push(c.name.clone());
            }
        }
        Ok(out)
    }

    /// `names` in start order (dependencies on components outside `names` are taken as met).
    fn in_start_order(&self, names: &[String]) -> Result<Vec<String>> {
        let deps: Vec<Vec<String>> = names
            .iter()
            .map(|n| {
                self.comp(n)
                    .depends_on
                    .iter()
                    .filter(|d| names.contains(d))
                    .cloned()
                    .collect()
            })
            .collect();
        Ok(start_order(names, &deps)?
            .into_iter()
            .map(|i| names[i].clone())
            .collect())
    }

    fn comp(&self, name: &str) -> &Component {
        self.spec.component(name).expect("a known component")
    }

    fn env_of(&self, c: &Component) -> Result<Vec<(String, String)>> {
        let mut env = Vec::new();
        for (k, v) in string_table(&c.env, &format!("{}.env", c.name))? {
            env.push((k, self.vars.sub(&v)?));
        }
        for (k, v) in string_table(&c.env_if_set, &format!("{}.env_if_set", c.name))? {
            let v = self.vars.sub(&v)?;
            if !v.is_empty() {
                env.push((k, v));
            }
        }
        Ok(env)
    }

    /// Run a hook (prepare, after_ready) with the component's environment, output to its log.
    fn hook(&self, c: &Component, argv: &[String], what: &str) -> Result<()> {
        let argv = self.vars.sub_all(argv)?;
        let log = self.logfile(&c.name);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        // As long as the component may take to be ready: a hook that hangs fails `up`, named.
        let status = process::run_within(
            process::command(&argv)?
                .envs(self.env_of(c)?)
                .current_dir(&self.root)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err),
            Duration::from_secs(c.ready_timeout),
            &format!("{}: {what} {}", c.name, argv[0]),
        )?
        .status;
        if !status.success() {
            eprintln!("{}", process::tail(&log, 15));
            return Err(format!(
                "{}: {what} `{}` failed ({status}; log: {})",
                c.name,
                argv.join(" "),
                log.display()
            ));
        }
        Ok(())
    }

    fn need_free_port(&self, port: &str, what: &str) -> Result<()> {
        let p = health::parse_port(port)?;
        if health::port_open(p) {
            return Err(format!(
                "port {p} ({what}) is taken by another program{}",
                self.spec.port_hint
            ));
        }
        Ok(())
    }

    /// Render a [files] entry.
    pub fn render_file(&self, name: &str) -> Result<String> {
        let f = self
            .spec
            .files
            .get(name)
            .ok_or_else(|| format!("no file {name} in the stack file"))?;
        let mut text = match (&f.template, &f.content) {
            (Some(t), _) => {
                let p = self.root.join(self.vars.sub(t)?);
                std::fs::read_to_string(&p)
                    .map_err(|e| format!("{} is missing: {e}", p.display()))?
            }
            (None, Some(c)) => self.vars.sub(c)?,
            (None, None) => String::new(),
        };
        for [from, to] in &f.replace {
            text = text.replace(from.as_str(), &self.vars.sub(to)?);
        }
        let keep = |l: &&str| {
            !f.drop_lines.iter().any(|d| l.contains(d.as_str()))
                && !(f.strip_comments && (l.trim().is_empty() || l.trim_start().starts_with('#')))
        };
        let mut out: String = text.lines().filter(keep).collect::<Vec<_>>().join("\n");
        out.push('\n');
        Ok(out)
    }

    fn write_file(&self, name: &str) -> Result<()> {
        let f = &self.spec.files[name];
        let Some(path) = &f.path else { return Ok(()) };
        let path = PathBuf::from(self.vars.sub(path)?);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, self.render_file(name)?)
            .map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// Start a component that is not running: free ports, folders, files, prepare hooks, spawn.
    fn start_one(&self, c: &Component) -> Result<()> {
        for p in &c.ports {
            self.need_free_port(&self.vars.sub(p)?, &c.name)?;
        }
        for d in &c.dirs {
            let d = self.vars.sub(d)?;
            std::fs::create_dir_all(&d).map_err(|e| format!("{d}: {e}"))?;
        }
        for f in &c.files {
            self.write_file(f)?;
        }
        for h in &c.prepare {
            self.hook(c, h, "prepare")?;
        }
        let argv = self.vars.sub_all(&c.command)?;
        let cwd = c
            .cwd
            .as_deref()
            .map(|d| self.vars.sub(d))
            .transpose()?
            .map(PathBuf::from);
        let env = self.env_of(c)?;
        let launch = Launch {
            argv: &argv,
            env: &env,
            cwd: cwd.as_deref(),
        };
        process::spawn(&launch, &self.pidfile(&c.name), &self.logfile(&c.name))?;
        Ok(())
    }

    /// One attempt at a check; Err says why it is not ready.
    fn check(&self, check: &Check, c: Option<&Component>, since: Option<Instant>) -> Result<()> {
        if let Some(port) = &check.tcp {
            let port = health::parse_port(&self.vars.sub(port)?)?;
            let send = check
                .send
                .as_deref()
                .map(|s| self.vars.sub(s))
                .transpose()?;
            return health::tcp(port, send.as_deref(), check.expect.as_deref());
        }
        if let Some(url) = &check.http {
            // A component's own check answers fast or not at all; `up`'s final check goes through
            // the whole stack (a ranking through the relay), so each attempt may take longer.
            let secs = if c.is_some() { 2 } else { 5 };
            return health::http(&self.vars.sub(url)?, Duration::from_secs(secs));
        }
        if let Some(argv) = &check.command {
            let argv = self.vars.sub_all(argv)?;
            let env = c.map(|c| self.env_of(c)).transpose()?.unwrap_or_default();
            // One attempt at most 10 s; the component's ready_timeout bounds them all.
            let out = process::run_within(
                process::command(&argv)?
                    .envs(env)
                    .current_dir(&self.root)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped()),
                Duration::from_secs(10),
                &argv[0],
            )?;
            if out.status.success() {
                return Ok(());
            }
            let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(format!(
                "`{}` failed ({}) {said}",
                argv.join(" "),
                out.status
            ));
        }
        if let Some(secs) = check.alive_for {
            return match since {
                Some(t) if t.elapsed() < Duration::from_secs_f64(secs) => {
                    Err(format!("not yet running for {secs}s"))
                }
                _ => Ok(()),
            };
        }
        Ok(())
    }

    fn ready(&self, c: &Component, since: Option<Instant>) -> Result<()> {
        c.ready
            .iter()
            .try_for_each(|k| self.check(k, Some(c), since))
    }

    /// Start `names` (those not running) in dependency order, each once what it depends on is ready,
    /// and wait until every one is ready (its checks pass, then its after_ready hooks ran).
    fn start_all(&self, names: &[String], t0: Instant) -> Result<()> {
        #[derive(PartialEq)]
        enum St {
            Waiting,
            Starting { at: Instant, spawned: bool },
            Ready,
        }
        let order = self.in_start_order(names)?;
        let mut st: Vec<St> = order.iter().map(|_| St::Waiting).collect();
        loop {
            for (i, name) in order.iter().enumerate() {
                let c = self.comp(name);
                let deps_ready = c.depends_on.iter().all(|d| {
                    order
                        .iter()
                        .position(|n| n == d)
                        .is_none_or(|j| st[j] == St::Ready)
                });
                if st[i] == St::Waiting && deps_ready {
                    let spawned = !self.alive(name);
                    if spawned {
                        self.start_one(c)?;
                    }
                    st[i] = St::Starting {
                        at: Instant::now(),
                        spawned,
                    };
                }
            }
            for (i, name) in order.iter().enumerate() {
                let St::Starting { at, spawned } = st[i] else {
                    continue;
                };
                let c = self.comp(name);
                match self.ready(c, spawned.then_some(at)) {
                    Ok(()) => {
                        for h in &c.after_ready {
                            self.hook(c, h, "after_ready")?;
                        }
                        if spawned {
                            self.log(format!("{name} ready ({}s)", t0.elapsed().as_secs()));
                        }
                        st[i] = St::Ready;
                    }
                    Err(why) => {
                        let log = self.logfile(name);
                        if !self.alive(name) {
                            eprintln!("{}", process::tail(&log, 30));
                            return Err(format!(
                                "{name} exited during start-up (log: {})",
                                log.display()
                            ));
                        }
                        if at.elapsed() >= Duration::from_secs(c.ready_timeout) {
                            eprintln!("{}", process::tail(&log, 30));
                            self.log(format!("the readiness check says: {why}"));
                            return Err(format!(
                                "{name} not ready after {}s (log: {})",
                                c.ready_timeout,
                                log.display()
                            ));
                        }
                    }
                }
            }
            if st.iter().all(|s| *s == St::Ready) {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
    }

    fn check_requires(&self) -> Result<()> {
        let mut missing = Vec::new();
        for r in &self.spec.requires {
            let r = self.vars.sub(r)?;
            if !executable_found(&r) {
                missing.push(r);
            }
        }
        if missing.is_empty() || self.spec.install.is_empty() {
            return if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("missing: {}", missing.join(" ")))
            };
        }
        let install = self.vars.sub_all(&self.spec.install)?;
        self.log(format!(
            "missing: {}; running {}",
            missing.join(" "),
            install.join(" ")
        ));
        let ok = process::command(&install)?
            .stdout(Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!(
                "{} failed (as a user other than root it prints the apt-get command to run)",
                install.join(" ")
            ));
        }
        Ok(())
    }

    /// STACK_BUILD: `missing` (default: build when a binary is missing), `always`, `never`.
    fn build(&self) -> Result<()> {
        let Some(b) = &self.spec.build else {
            return Ok(());
        };
        let bin = PathBuf::from(&self.vars.builtins["BIN"]);
        let profile = &self.vars.builtins["PROFILE"];
        let missing: Vec<&String> = b
            .binaries
            .iter()
            .filter(|n| !executable_found(&bin.join(n).display().to_string()))
            .collect();
        let mode = std::env::var("STACK_BUILD").unwrap_or_else(|_| "missing".into());
        match mode.as_str() {
            "always" => {}
            "missing" if missing.is_empty() => return Ok(()),
            "missing" => {}
            "never" if missing.is_empty() => return Ok(()),
            "never" => {
                let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                return Err(format!(
                    "{profile} binaries missing in {}: {} (STACK_BUILD=never)",
                    bin.display(),
                    list.join(" ")
                ));
            }
            _ => {
                return Err(format!(
                    "STACK_BUILD must be missing, always or never (got {mode})"
                ));
            }
        }
        let mut argv = self.vars.sub_all(&b.command)?;
        if profile == "release" {
            argv.extend(self.vars.sub_all(&b.release_args)?);
        }
        self.log(format!(
            "building {profile} binaries into {} ({})",
            bin.display(),
            argv.join(" ")
        ));
        // The build's output goes to stderr: stdout is for what the subcommand prints.
        let status = process::command(&argv)?
            .current_dir(&self.root)
            .env("CARGO_TARGET_DIR", &self.vars.builtins["TARGET"])
            .stdout(std::io::stderr())
            .status()
            .map_err(|e| format!("{}: {e}", argv[0]))?;
        if !status.success() {
            return Err("cargo build failed".into());
        }
        for n in &b.binaries {
            if !executable_found(&bin.join(n).display().to_string()) {
                return Err(format!(
                    "cargo build did not produce {}",
                    bin.join(n).display()
                ));
            }
        }
        Ok(())
    }

    fn exports(&self) -> Result<String> {
        let mut out = String::new();
        for (k, v) in &self.spec.exports {
            let value = match v {
                toml::Value::String(s) => Some(s.clone()),
                toml::Value::Table(t) => {
                    let when = t.get("when").and_then(|w| w.as_str());
                    let holds = when.map_or(Ok(true), |w| self.vars.holds(w))?;
                    holds.then(|| {
                        t.get("value")
                            .and_then(|v| v.as_str())
                            .unwrap_or("")
                            .to_string()
                    })
                }
                _ => {
                    return Err(format!(
                        "exports.{k}: expected a string or {{ value, when }}"
                    ));
                }
            };
            if let Some(v) = value {
                out.push_str(&format!(
                    "export {k}='{}'\n",
                    self.vars.sub(&v)?.replace('\'', r"'\''")
                ));
            }
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------------------
    // Subcommands

    pub fn up(&mut self) -> Result<()> {
        let t0 = Instant::now();
        self.check_requires()?;
        self.build()?;
        if !self.started() {
            // A fresh start: the previous run's logs and stale pid files go (when they have folders of
            // their own).
            for d in [&self.spec.log_dir, &self.spec.run_dir] {
                if !d.is_empty() {
                    let _ = std::fs::remove_dir_all(self.state.join(d));
                }
            }
        }
        self.make_dirs()?;
        self.load_settings()?;
        let names = self.enabled_names()?;
        let already: Vec<&str> = names
            .iter()
            .filter(|n| self.alive(n))
            .map(|s| s.as_str())
            .collect();
        if already.len() == names.len() {
            self.log(format!(
                "already running (nothing started): {}",
                already.join(" ")
            ));
        } else if !already.is_empty() {
            self.log(format!(
                "already running, left alone: {}",
                already.join(" ")
            ));
        }
        // Every port of what is not running must be free before anything starts, so a clash stops
        // `up` with nothing half started.
        for n in &names {
            if !self.alive(n) {
                for p in &self.comp(n).ports {
                    self.need_free_port(&self.vars.sub(p)?, n)?;
                }
            }
        }
        std::fs::write(self.settings_file(), format_settings(&self.vars.settings))
            .map_err(|e| e.to_string())?;
        let result = self.up_rest(&names, t0);
        if result.is_err()
            && names.iter().any(|n| self.alive(n))
            && !self.spec.up.failed_hint.is_empty()
        {
            self.log(&self.spec.up.failed_hint);
        }
        result
    }

    fn up_rest(&self, names: &[String], t0: Instant) -> Result<()> {
        self.start_all(names, t0)?;
        let env = self.env_file();
        let tmp = env.with_extension("tmp");
        std::fs::write(&tmp, self.exports()?).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &env).map_err(|e| e.to_string())?;
        if let Some(check) = &self.spec.up.final_check {
            let timeout = Duration::from_secs(check.timeout.unwrap_or(90));
            let started = Instant::now();
            while let Err(why) = self.check(check, None, None) {
                if started.elapsed() >= timeout {
                    return Err(format!(
                        "not ready after {}s: {why}; see {}/logs/",
                        timeout.as_secs(),
                        self.state.display()
                    ));
                }
                for n in names {
                    if !self.alive(n) {
                        return Err(format!("{n} stopped; see {}", self.logfile(n).display()));
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        self.log(format!("up in {}s", t0.elapsed().as_secs()));
        print!("{}", self.vars.sub(&self.spec.up.banner)?);
        Ok(())
    }

    pub fn down(&mut self) -> Result<()> {
        if !self.started() {
            self.log(format!("nothing to stop in {}", self.state.display()));
            return Ok(());
        }
        self.load_settings()?;
        // Every component, enabled or not: whatever has a pid file is stopped.
        let names: Vec<String> = self
            .spec
            .components
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let deps: Vec<Vec<String>> = self
            .spec
            .components
            .iter()
            .map(|c| c.depends_on.clone())
            .collect();
        for i in stop_order(&names, &deps)? {
            let c = &self.spec.components[i];
            // Only a process of this component's own session: a stale pid file names someone else's.
            let leader = process::read_pid(&self.pidfile(&c.name)).filter(|&p| process::ours(p));
            let first = match (&c.down_kill_first, leader) {
                (Some(f), Some(sid)) => process::read_pid(Path::new(&self.vars.sub(f)?))
                    .filter(|&p| process::in_session(p, sid)),
                _ => None,
            };
            if let Some(pid) = first {
                process::signal(pid, nix::sys::signal::Signal::SIGKILL);
                self.log(format!(
                    "killed {}'s process {pid} first (its data is deleted next)",
                    c.name
                ));
            }
            self.stop_component(c);
            if let (Some(pid), Some(sid)) = (first, leader)
                && process::in_session(pid, sid)
            {
                process::signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
            if let Some(pattern) = &c.down_stop_groups {
                for pid in pid_files(&self.vars.sub(pattern)?) {
                    process::signal_group(pid, nix::sys::signal::Signal::SIGTERM);
                }
            }
        }
        for p in &self.spec.down.remove {
            let p = self.vars.sub(p)?;
            if removable(&p) {
                let path = Path::new(&p);
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                };
            }
        }
        for p in &self.spec.down.remove_if_empty {
            let p = self.vars.sub(p)?;
            if removable(&p) {
                let _ = std::fs::remove_dir(&p);
            }
        }
        let _ = std::fs::remove_file(self.settings_file());
        let _ = std::fs::remove_file(self.env_file());
        if !self.spec.down.message.is_empty() {
            self.log(self.vars.sub(&self.spec.down.message)?);
        }
        Ok(())
    }

    fn stop_component(&self, c: &Component) {
        process::stop(
            &c.name,
            &self.pidfile(&c.name),
            Duration::from_secs(c.stop_grace),
            &|m| self.log(m),
        );
    }

    /// One line per component; 0 when all run, 1 when some do, 3 when none does or nothing started.
    pub fn status(&mut self) -> Result<i32> {
        if !self.started() {
            println!("{}: not started ({})", self.spec.name, self.state.display());
            return Ok(3);
        }
        self.load_settings()?;
        let names = self.enabled_names()?;
        let mut up = 0;
        for n in &names {
            let pidfile = self.pidfile(n);
            if process::alive(&pidfile) {
                let pid = process::read_pid(&pidfile).unwrap_or(0);
                println!(
                    "{n:<16} running  pid {pid:<8} {}",
                    self.vars.sub(&self.comp(n).url)?
                );
                up += 1;
            } else {
                println!(
                    "{n:<16} STOPPED  {:<12} log: {}",
                    "",
                    self.logfile(n).display()
                );
            }
        }
        Ok(if up == names.len() {
            0
        } else if up == 0 {
            3
        } else {
            1
        })
    }

    fn check_services(&self, verb: &str, names: &[String]) -> Result<()> {
        let services: Vec<&str> = self
            .spec
            .components
            .iter()
            .filter(|c| c.service)
            .map(|c| c.name.as_str())
            .collect();
        if names.is_empty() {
            return Err(format!(
                "{verb}: name the services ({})",
                services.join(" ")
            ));
        }
        if !self.started() {
            return Err(format!(
                "{} ({}): {}",
                self.spec.not_up,
                self.state.display(),
                self.spec.start_hint
            ));
        }
        for n in names {
            if !services.contains(&n.as_str()) {
                return Err(format!(
                    "{verb}: {n} is not a service of the stack ({})",
                    services.join(" ")
                ));
            }
        }
        Ok(())
    }

    pub fn stop(&mut self, names: &[String]) -> Result<()> {
        self.check_services("stop", names)?;
        self.load_settings()?;
        for n in names {
            self.stop_component(self.comp(n));
        }
        Ok(())
    }

    /// Stop SERVICEs and start them again with the caller's environment under their own, each from
    /// the binary it ran (so a shell with another CARGO_TARGET_DIR restarts the same build).
    pub fn restart(&mut self, names: &[String]) -> Result<()> {
        self.check_services("restart", names)?;
        self.load_settings()?;
        let mut bins = BTreeMap::new();
        for n in names {
            let pid = process::read_pid(&self.pidfile(n)).filter(|&p| process::ours(p));
            if let Some(exe) = pid.and_then(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok()) {
                let dir = exe.parent().unwrap_or(Path::new("/"));
                bins.insert(n.clone(), dir.display().to_string());
            }
            self.stop_component(self.comp(n));
        }
        self.make_dirs()?;
        let default_bin = self.vars.builtins["BIN"].clone();
        for n in names {
            let bin = bins.get(n).cloned().unwrap_or_else(|| default_bin.clone());
            self.vars.builtins.insert("BIN".into(), bin);
            let r = self.start_all(std::slice::from_ref(n), Instant::now());
            self.vars.builtins.insert("BIN".into(), default_bin.clone());
            r?;
        }
        self.log(format!("restarted: {}", names.join(" ")));
        Ok(())
    }

    /// Start SERVICEs that are not running, with what they depend on that is not running either, and
    /// wait until they are ready.
    pub fn start(&mut self, names: &[String]) -> Result<()> {
        self.check_services("start", names)?;
        self.load_settings()?;
        self.make_dirs()?;
        let mut set = names.to_vec();
        let mut i = 0;
        while i < set.len() {
            for d in &self.comp(&set[i]).depends_on {
                let dc = self
                    .spec
                    .component(d)
                    .ok_or_else(|| format!("no component {d}"))?;
                if self.enabled(dc)? && !self.alive(d) && !set.contains(d) {
                    set.push(d.clone());
                }
            }
            i += 1;
        }
        self.start_all(&set, Instant::now())
    }

    /// Run a command with COMPONENT's environment (e.g. a broker's control tool against it).
    pub fn run(&mut self, name: &str, argv: &[String]) -> Result<i32> {
        if !self.started() {
            return Err(format!("{} ({})", self.spec.not_up, self.state.display()));
        }
        self.load_settings()?;
        let c = self
            .spec
            .component(name)
            .ok_or_else(|| format!("no component {name}"))?;
        if argv.is_empty() {
            return Err(format!("run {name}: name a command"));
        }
        let env = self.env_of(c)?;
        use std::os::unix::process::CommandExt;
        let e = Command::new(&argv[0]).args(&argv[1..]).envs(env).exec();
        Err(format!("{}: {e}", argv[0]))
    }

    pub fn logs(&mut self, names: &[String]) -> Result<()> {
        let names = if !names.is_empty() {
            names.to_vec()
        } else if self.started() {
            self.load_settings()?;
            self.enabled_names()?
        } else {
            self.spec
                .components
                .iter()
                .filter(|c| c.when.is_none())
                .map(|c| c.name.clone())
                .collect()
        };
        let files: Vec<PathBuf> = names
            .iter()
            .map(|n| self.logfile(n))
            .filter(|f| f.is_file())
            .collect();
        if files.is_empty() {
            let all: Vec<&str> = self
                .spec
                .components
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(format!(
                "no logs in {}/logs (components: {})",
                self.state.display(),
                all.join(" ")
            ));
        }
        crate::logs::follow(files, 20)
    }

    pub fn env(&self) -> Result<()> {
        let text = std::fs::read_to_string(self.env_file())
            .map_err(|_| format!("{} ({})", self.spec.not_up, self.state.display()))?;
        print!("{text}");
        Ok(())
    }

    pub fn render(&mut self, name: &str) -> Result<()> {
        self.load_settings()?;
        print!("{}", self.render_file(name)?);
        Ok(())
    }

    /// What `up` would run, resolved (for checks and for reading): per component its command and the
    /// environment it adds. Values a hook has not written yet show as <NAME: ...>.
    pub fn show(&mut self, names: &[String]) -> Result<()> {
        self.load_settings()?;
        self.vars.lenient = true;
        let names = if names.is_empty() {
            self.enabled_names()?
        } else {
            if let Some(n) = names.iter().find(|n| self.spec.component(n).is_none()) {
                return Err(format!("no component {n} (`stack show` lists them all)"));
            }
            names.to_vec()
        };
        for n in self.in_start_order(&names)? {
            let c = self.comp(&n);
            println!("[{n}]");
            let argv: Vec<String> = self
                .vars
                .sub_all(&c.command)?
                .iter()
                .map(|a| shell_quote(a))
                .collect();
            println!("command {}", argv.join(" "));
            for (k, v) in self.env_of(c)? {
                println!("env {k}={v}");
            }
            println!();
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn alias(&self, name: &str) -> Option<Vec<String>> {
        self.spec.aliases.get(name).cloned()
    }
}

/// A path (with a `/`) that is an executable file, or a command found on PATH.
fn executable_found(cmd: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let is_exe = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if cmd.contains('/') {
        return is_exe(Path::new(cmd));
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| is_exe(&Path::new(d).join(cmd)))
}

/// A path `down` may delete: absolute, at least two levels deep.
fn removable(p: &str) -> bool {
    Path::new(p).is_absolute() && Path::new(p).components().count() >= 3
}

/// The pids in the files matching DIR/*/FILE.
fn pid_files(pattern: &str) -> Vec<u32> {
    let Some((dir, file)) = pattern.split_once("/*/") else {
        return process::read_pid(Path::new(pattern)).into_iter().collect();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| process::read_pid(&e.ok()?.path().join(file)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_deep_absolute_paths_are_removed() {
        assert!(removable("/tmp/x"));
        assert!(!removable("/tmp"));
        assert!(!removable("/"));
        assert!(!removable(""));
        assert!(!removable("relative/dir"));
    }

    #[test]
    fn pid_files_are_read_through_one_wildcard() {
        let d = tempfile::tempdir().unwrap();
        for (run, pid) in [("a", "11"), ("b", "12\n")] {
            std::fs::create_dir_all(d.path().join(run)).unwrap();
            std::fs::write(d.path().join(run).join("pid"), pid).unwrap();
        }
        std::fs::create_dir_all(d.path().join("c")).unwrap();
        let mut got = pid_files(&format!("{}/*/pid", d.path().display()));
        got.sort();
        assert_eq!(got, [11, 12]);
        assert!(pid_files("/nonexistent/*/pid").is_empty());
    }
}
