//! The names `${...}` resolves, in this order: built-ins (ROOT, STATE, BIN, ...), the settings (frozen
//! in STATE/settings at the first `up`, so every later command, from any shell, talks to the same
//! ports), the values (resolved when used: secrets made on first use, passwords written by a hook),
//! and last the manager's own environment (STACK_*_PORT and friends, read as defaults).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::subst::substitute;

#[derive(Debug, Clone)]
pub enum Value {
    Text(String),
    /// The hex of `bytes` random bytes, kept owner-only in `file` (made on first use, then reused).
    SecretFile {
        file: String,
        bytes: usize,
    },
    /// The second word of the `key value` line of `file` whose first word is `key`.
    FileKey {
        file: String,
        key: String,
    },
}

pub struct Vars {
    pub builtins: BTreeMap<String, String>,
    pub settings: Vec<(String, String)>,
    pub values: BTreeMap<String, Value>,
    /// For the checks that print a plan (`show`): an unresolvable FileKey is left as a placeholder.
    pub lenient: bool,
}

impl Vars {
    pub fn get(&self, name: &str) -> Result<Option<String>, String> {
        if let Some(v) = self.builtins.get(name) {
            return Ok(Some(v.clone()));
        }
        if let Some((_, v)) = self.settings.iter().find(|(k, _)| k == name) {
            return Ok(Some(v.clone()));
        }
        if let Some(v) = self.values.get(name) {
            return self.value(name, v).map(Some);
        }
        Ok(std::env::var(name).ok())
    }

    fn value(&self, name: &str, v: &Value) -> Result<String, String> {
        match v {
            Value::Text(t) => self.sub(t),
            Value::SecretFile { file, bytes } => secret_file(Path::new(&self.sub(file)?), *bytes),
            Value::FileKey { file, key } => {
                let (file, key) = (self.sub(file)?, self.sub(key)?);
                let found = std::fs::read_to_string(&file).ok().and_then(|text| {
                    text.lines().find_map(|l| {
                        let mut w = l.split_whitespace();
                        (w.next() == Some(key.as_str())).then(|| w.next().unwrap_or("").to_string())
                    })
                });
                match found {
                    Some(v) => Ok(v),
                    None if self.lenient => Ok(format!("<{name}: {key} in {file}>")),
                    None => Err(format!("{name}: no {key} in {file}")),
                }
            }
        }
    }

    /// `text` with every `${...}` replaced.
    pub fn sub(&self, text: &str) -> Result<String, String> {
        substitute(text, &mut |n| self.get(n))
    }

    pub fn sub_all(&self, items: &[String]) -> Result<Vec<String>, String> {
        items.iter().map(|s| self.sub(s)).collect()
    }

    /// `when` of a component or an export: "NAME" holds when its value is 1, "NAME=VALUE" when equal.
    pub fn holds(&self, cond: &str) -> Result<bool, String> {
        let (name, want) = cond.split_once('=').unwrap_or((cond, "1"));
        Ok(self.get(name.trim())?.unwrap_or_default() == want.trim())
    }
}

pub fn parse_values(t: &toml::Table) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in t {
        let value = match v {
            toml::Value::String(s) => Value::Text(s.clone()),
            toml::Value::Table(t) => {
                let s = |key: &str| t.get(key).and_then(|v| v.as_str()).map(str::to_string);
                if let Some(file) = s("secret_file") {
                    let bytes = t.get("bytes").and_then(|b| b.as_integer()).unwrap_or(32) as usize;
                    Value::SecretFile { file, bytes }
                } else if let (Some(file), Some(key)) = (s("file"), s("key")) {
                    Value::FileKey { file, key }
                } else {
                    return Err(format!(
                        "values.{k}: expected a string, {{ secret_file }} or {{ file, key }}"
                    ));
                }
            }
            _ => return Err(format!("values.{k}: expected a string or a table")),
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}

/// Resolve the settings in the file's order: a recorded value when there is one, otherwise the
/// setting's definition: a string, `{ run = [...] }` (the command's output), `{ when, then, else }`,
/// or `{ free_ports = { from, to, step, count } }` (the first of from, from+step, ... up to `to` whose
/// `count` ports on 127.0.0.1 are all free).
pub fn resolve_settings(
    vars: &mut Vars,
    defs: &toml::Table,
    recorded: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (name, def) in defs {
        let value = match (recorded.get(name), def) {
            (Some(v), _) => v.clone(),
            (None, toml::Value::String(s)) => vars.sub(s)?,
            (None, toml::Value::Integer(i)) => i.to_string(),
            (None, toml::Value::Table(t)) => {
                let str_of = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
                if let Some(run) = t.get("run").and_then(|v| v.as_array()) {
                    let argv: Vec<String> = run
                        .iter()
                        .filter_map(|a| a.as_str().map(str::to_string))
                        .collect();
                    let argv = vars.sub_all(&argv)?;
                    let out = crate::process::run_within(
                        crate::process::command(&argv)
                            .map_err(|e| format!("setting {name}: {e}"))?
                            .stdout(std::process::Stdio::piped())
                            .stderr(std::process::Stdio::inherit()),
                        std::time::Duration::from_secs(60),
                        &format!("setting {name}: running {}", argv.join(" ")),
                    )?;
                    if !out.status.success() {
                        return Err(format!(
                            "setting {name}: {} failed ({})",
                            argv.join(" "),
                            out.status
                        ));
                    }
                    String::from_utf8_lossy(&out.stdout).trim().to_string()
                } else if let Some(f) = t.get("free_ports").and_then(|v| v.as_table()) {
                    let n = |k: &str| f.get(k).and_then(|v| v.as_integer()).unwrap_or(0);
                    let (from, to) = (n("from"), n("to"));
                    let (step, count) = (n("step").max(1), n("count").max(1));
                    let free = |b: i64| {
                        (b..b + count)
                            .all(|p| u16::try_from(p).is_ok_and(|p| !crate::health::port_open(p)))
                    };
                    let base = (from..=to).step_by(step as usize).find(|&b| free(b));
                    let last = to + count - 1;
                    base.ok_or_else(|| {
                        format!("setting {name}: no block of {count} free ports in {from}-{last}")
                    })?
                    .to_string()
                } else if let Some(cond) = str_of("when") {
                    let pick = if vars.holds(&cond)? { "then" } else { "else" };
                    vars.sub(&str_of(pick).unwrap_or_default())?
                } else {
                    return Err(format!(
                        "setting {name}: expected a string, {{ run }} or {{ when, then, else }}"
                    ));
                }
            }
            _ => return Err(format!("setting {name}: expected a string or a table")),
        };
        vars.settings.push((name.clone(), value));
    }
    Ok(())
}

fn secret_file(path: &Path, bytes: usize) -> Result<String, String> {
    if let Ok(s) = std::fs::read_to_string(path)
        && !s.trim().is_empty()
    {
        return Ok(s.trim().to_string());
    }
    let mut raw = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut raw))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(hex.as_bytes()))
        .map_err(|e| format!("could not write {}: {e}", path.display()))?;
    Ok(hex)
}

/// STATE/settings: `NAME=value` lines, values quoted as bash's `printf %q` would for what the stack
/// holds (bare when safe, else single quotes), so shells, the Python checks and `sed` read them.
pub fn format_settings(settings: &[(String, String)]) -> String {
    settings
        .iter()
        .map(|(k, v)| format!("{k}={}\n", shell_quote(v)))
        .collect()
}

pub fn shell_quote(v: &str) -> String {
    if v.is_empty() {
        return "''".into();
    }
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_./:@%+,=-".contains(c))
    {
        return v.to_string();
    }
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// Read STATE/settings (also what the bash supervisors wrote: `printf %q` values, bare words with
/// backslash escapes, single quotes and `$'...'`, and several NAME=value on a line).
pub fn parse_settings(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        for word in shell_words(line) {
            let Some((k, v)) = word.split_once('=') else {
                continue;
            };
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            out.insert(k.to_string(), shell_unquote(v));
        }
    }
    out
}

/// A line split at blanks outside quotes (quotes and escapes kept, for shell_unquote).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' if !in_quotes => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                continue;
            }
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                continue;
            }
            '\'' => in_quotes = !in_quotes,
            _ => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn shell_unquote(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            }
            '$' if chars.peek() == Some(&'\'') => {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\'' => break,
                        '\\' => match chars.next() {
                            Some('n') => out.push('\n'),
                            Some('t') => out.push('\t'),
                            Some(o) => out.push(o),
                            None => {}
                        },
                        _ => out.push(c),
                    }
                }
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            builtins: BTreeMap::new(),
            settings: Vec::new(),
            values: BTreeMap::new(),
            lenient: false,
        }
    }

    #[test]
    fn settings_resolve_in_order_and_prefer_recorded_values() {
        let defs: toml::Table = toml::from_str(
            r#"
A = "${STACK_TEST_UNSET_VAR_A:-1600}"
B = "node${A}@localhost"
C = { when = "CHAOS", then = "${A}", else = "none" }
CHAOS = "0"
D = { when = "B=node1600@localhost", then = "yes", else = "no" }
E = { run = ["echo", "  ran ${A}  "] }
"#,
        )
        .unwrap();
        let mut v = vars();
        resolve_settings(&mut v, &defs, &BTreeMap::new()).unwrap();
        let got: BTreeMap<_, _> = v.settings.iter().cloned().collect();
        assert_eq!(got["A"], "1600");
        assert_eq!(got["B"], "node1600@localhost");
        assert_eq!(got["C"], "none", "CHAOS is not set yet when C resolves");
        assert_eq!(got["D"], "yes");
        assert_eq!(got["E"], "ran 1600");

        let recorded = BTreeMap::from([("A".to_string(), "7".to_string())]);
        let mut v = vars();
        resolve_settings(&mut v, &defs, &recorded).unwrap();
        assert_eq!(v.get("B").unwrap().unwrap(), "node7@localhost");
    }

    #[test]
    fn the_settings_file_round_trips_and_reads_bash_quoting() {
        let s = vec![
            ("P".to_string(), "16080".to_string()),
            ("E".to_string(), String::new()),
            ("Q".to_string(), "it's a /path with spaces".to_string()),
        ];
        let text = format_settings(&s);
        assert!(text.starts_with("P=16080\nE=''\n"));
        let back = parse_settings(&text);
        assert_eq!(back["Q"], "it's a /path with spaces");
        assert_eq!(back["E"], "");
        let bash = parse_settings("RABBIT_DIR=/tmp/a\\ b\nX=$'a\\tb'\n");
        assert_eq!(bash["RABBIT_DIR"], "/tmp/a b");
        assert_eq!(bash["X"], "a\tb");
        let several =
            parse_settings("S3_PORT=17100 AMQP_PORT=17101 Q='a b' Z=x\\ y\nRABBIT_DIR=/d\n");
        assert_eq!(several["S3_PORT"], "17100");
        assert_eq!(several["AMQP_PORT"], "17101");
        assert_eq!(several["Q"], "a b");
        assert_eq!(several["Z"], "x y");
        assert_eq!(several["RABBIT_DIR"], "/d");
    }

    #[test]
    fn free_ports_find_the_first_free_block() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = i64::from(taken.local_addr().unwrap().port());
        let spec = format!(
            "B = {{ free_ports = {{ from = {}, to = {}, step = 3, count = 3 }} }}",
            p - 1,
            p + 8
        );
        let mut v = vars();
        resolve_settings(&mut v, &toml::from_str(&spec).unwrap(), &BTreeMap::new()).unwrap();
        // The block p-1..p+1 holds the taken port: a later one is picked.
        let got: i64 = v.get("B").unwrap().unwrap().parse().unwrap();
        assert!(got >= p + 2, "{got} skips the block holding {p}");
        let spec = format!("B = {{ free_ports = {{ from = {p}, to = {p}, count = 1 }} }}");
        let mut v = vars();
        let e = resolve_settings(&mut v, &toml::from_str(&spec).unwrap(), &BTreeMap::new())
            .unwrap_err();
        assert!(e.contains("no block of 1 free ports"), "{e}");
    }

    #[test]
    fn values_make_secrets_once_and_read_keyed_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = vars();
        v.builtins
            .insert("STATE".into(), dir.path().display().to_string());
        let t: toml::Table = toml::from_str(
            r#"
KEY = { secret_file = "${STATE}/key" }
PW = { file = "${STATE}/users", key = "pool-${WHO}" }
WHO = "producer"
"#,
        )
        .unwrap();
        v.values = parse_values(&t).unwrap();
        let k1 = v.get("KEY").unwrap().unwrap();
        assert_eq!(k1.len(), 64);
        assert_eq!(v.get("KEY").unwrap().unwrap(), k1, "made once, then reused");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(dir.path().join("key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o077,
            0
        );
        assert!(v.get("PW").unwrap_err().contains("no pool-producer in"));
        std::fs::write(
            dir.path().join("users"),
            "pool-worker w1\npool-producer p1\n",
        )
        .unwrap();
        assert_eq!(v.get("PW").unwrap().unwrap(), "p1");
        assert_eq!(
            v.sub("${WHO:-x}/${NOT_A_VAR_ANYWHERE_1234:-d}").unwrap(),
            "producer/d"
        );
    }
}
