//! The manager on a tiny stack of real processes: two `python3 -m http.server`s on free ports, `api`
//! depending on `web` (its prepare hook fails unless `web` already answers), through `up`, `status`,
//! `stop`, `restart`, `down`. Waits are on conditions with deadlines; nothing asserts on durations.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use testkit::eventually;
use testkit::process::free_port;

const STACK: &str = r#"
name = "mini"
root = "."
state_dir = "${MINI_DIR}"

[settings]
WEB_PORT = "${MINI_WEB_PORT}"
API_PORT = "${MINI_API_PORT}"

[exports]
MINI_WEB_URL = "http://127.0.0.1:${WEB_PORT}"

[files.page]
path = "${STATE}/www/index.html"
content = "hello from ${WEB_PORT}"

[up]
banner = "web on ${WEB_PORT}, api on ${API_PORT}\n"
final_check = { http = "http://127.0.0.1:${API_PORT}/", timeout = 30 }

[down]
remove = ["${STATE}/www"]
message = "down"

[[component]]
name = "api"
service = true
depends_on = ["web"]
command = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "${API_PORT}"]
ports = ["${API_PORT}"]
url = "http://127.0.0.1:${API_PORT}"
prepare = [["python3", "-c", "import urllib.request, os; urllib.request.urlopen(os.environ['UPSTREAM']).read()"]]
ready = [{ http = "http://127.0.0.1:${API_PORT}/" }]
ready_timeout = 30
stop_grace = 5
[component.env]
UPSTREAM = "http://127.0.0.1:${WEB_PORT}/"

[[component]]
name = "web"
command = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", "${STATE}/www", "${WEB_PORT}"]
files = ["page"]
ports = ["${WEB_PORT}"]
url = "http://127.0.0.1:${WEB_PORT}"
ready = [{ http = "http://127.0.0.1:${WEB_PORT}/" }, { tcp = "${WEB_PORT}" }]
ready_timeout = 30
stop_grace = 5
"#;

struct Mini {
    dir: tempfile::TempDir,
    web: u16,
    api: u16,
}

impl Mini {
    fn new(stack: &str) -> Mini {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stack.toml"), stack).unwrap();
        Mini {
            dir,
            web: free_port(),
            api: free_port(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_stack"))
            .arg("--file")
            .arg(self.dir.path().join("stack.toml"))
            .args(args)
            .env("MINI_DIR", self.dir.path().join("state"))
            .env("MINI_WEB_PORT", self.web.to_string())
            .env("MINI_API_PORT", self.api.to_string())
            .output()
            .unwrap()
    }

    fn pid(&self, name: &str) -> u32 {
        let f = self
            .dir
            .path()
            .join("state/run")
            .join(format!("{name}.pid"));
        std::fs::read_to_string(f).unwrap().trim().parse().unwrap()
    }
}

impl Drop for Mini {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Running, zombies excepted (the manager that spawned it has exited; init reaps it when it likes).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Wait (30 s at most) until `pid` has stopped.
async fn wait_stopped(what: &str, pids: &[u32]) {
    eventually(what, Duration::from_secs(30), || async {
        pids.iter().all(|p| !running(*p)).then_some(())
    })
    .await
}

#[tokio::test]
async fn up_status_stop_restart_down_on_real_processes() {
    let m = Mini::new(STACK);
    let state = m.dir.path().join("state");

    let unknown = m.run(&["show", "nope"]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("no component nope"),
        "{}",
        text(&unknown.stderr)
    );

    let status = m.run(&["status"]);
    assert_eq!(
        status.status.code(),
        Some(3),
        "before up: {}",
        text(&status.stdout)
    );
    assert!(text(&status.stdout).contains("mini: not started"));

    let up = m.run(&["up"]);
    assert!(up.status.success(), "up failed: {}", text(&up.stderr));
    assert_eq!(
        text(&up.stdout),
        format!("web on {}, api on {}\n", m.web, m.api)
    );
    let err = text(&up.stderr);
    let (web_ready, api_ready) = (
        err.find("web ready").unwrap(),
        err.find("api ready").unwrap(),
    );
    assert!(web_ready < api_ready, "web first: {err}");
    let (web, api) = (m.pid("web"), m.pid("api"));
    assert!(running(web) && running(api));
    let env = std::fs::read_to_string(state.join("env")).unwrap();
    assert_eq!(
        env,
        format!("export MINI_WEB_URL='http://127.0.0.1:{}'\n", m.web)
    );
    assert!(
        std::fs::read_to_string(state.join("settings"))
            .unwrap()
            .contains(&format!("WEB_PORT={}\n", m.web))
    );
    assert!(
        std::fs::read_to_string(state.join("logs/web.log"))
            .unwrap()
            .contains("GET /")
    );

    let status = m.run(&["status"]);
    assert_eq!(status.status.code(), Some(0));
    let lines: Vec<String> = text(&status.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("api              running  pid "),
        "{lines:?}"
    );
    assert!(
        lines[1].ends_with(&format!("http://127.0.0.1:{}", m.web)),
        "{lines:?}"
    );

    let again = m.run(&["up"]);
    assert!(again.status.success());
    assert!(text(&again.stderr).contains("already running (nothing started): api web"));
    assert_eq!((m.pid("web"), m.pid("api")), (web, api));

    assert_eq!(
        m.run(&["stop", "web"]).status.code(),
        Some(1),
        "web is not a service"
    );
    let stop = m.run(&["stop", "api"]);
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    wait_stopped("api stopped", &[api]).await;
    assert_eq!(m.run(&["status"]).status.code(), Some(1));
    let restart = m.run(&["restart", "api"]);
    assert!(restart.status.success(), "{}", text(&restart.stderr));
    let api2 = m.pid("api");
    assert!(api2 != api && running(api2));

    let down = m.run(&["down"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    let err = text(&down.stderr);
    assert!(
        err.find("stopped api").unwrap() < err.find("stopped web").unwrap(),
        "api (the dependent) first: {err}"
    );
    wait_stopped("everything stopped", &[web, api2]).await;
    assert!(
        !state.join("www").exists()
            && !state.join("settings").exists()
            && !state.join("run/web.pid").exists()
    );
    assert!(state.join("logs/web.log").exists(), "logs are kept");
    assert_eq!(m.run(&["status"]).status.code(), Some(3));
}

#[tokio::test]
async fn a_component_that_exits_fails_up_with_its_log() {
    let broken = STACK.replace(
        r#"command = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "${API_PORT}"]"#,
        r#"command = ["python3", "-c", "import sys; print('api: no config'); sys.exit(3)"]"#,
    );
    let m = Mini::new(&broken);
    let up = m.run(&["up"]);
    assert_eq!(up.status.code(), Some(1));
    let err = text(&up.stderr);
    assert!(err.contains("api: no config"), "the log's tail: {err}");
    assert!(
        err.contains("mini: error: api exited during start-up"),
        "{err}"
    );
    let web = m.pid("web");
    assert!(running(web), "what started keeps running");
    assert!(m.run(&["down"]).status.success());
    wait_stopped("web stopped", &[web]).await;
}

#[tokio::test]
async fn a_taken_port_stops_up_before_anything_starts() {
    let m = Mini::new(STACK);
    let _taken = TcpListener::bind(("127.0.0.1", m.api)).unwrap();
    let up = m.run(&["up"]);
    assert_eq!(up.status.code(), Some(1));
    assert!(
        text(&up.stderr).contains(&format!("port {} (api) is taken by another program", m.api))
    );
    assert!(
        !Path::new(&m.dir.path().join("state/run/web.pid")).exists(),
        "nothing started"
    );
}
