//! The ranking page in a real browser: headless Chromium (Debian's `chromium`), driven over the W3C
//! WebDriver protocol by Debian's `chromedriver` (package `chromium-driver`) with plain HTTP calls, so
//! the test adds no browser-automation crate to the build. A missing Chromium fails the test, loudly.
//!
//! Screenshots are saved as test artifacts in `$CARGO_TARGET_DIR/test-artifacts/` (else
//! `target/test-artifacts/`): `ranking-page.png` (desktop) and `ranking-page-phone.png`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use testkit::process::{ChildProcess, free_port, wait_port};

use crate::helpers::{Upstream, shared_redis, spawn_app};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Deadline for the browser to start, load and re-render (a loaded machine is slow).
const DEADLINE: Duration = Duration::from_secs(60);

/// A chromedriver child process and one headless Chromium session.
struct Browser {
    base: String,
    session: String,
    http: reqwest::Client,
    _driver: ChildProcess,
}

impl Browser {
    async fn start(width: u32, height: u32) -> Self {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: install the Debian package {package} (scripts/install-deps.sh does)"
            );
        }
        let port = free_port();
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut driver = ChildProcess::spawn("chromedriver (Debian package chromium-driver)", cmd);
        wait_port(&mut driver, port, DEADLINE).await;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(DEADLINE)
            .no_proxy()
            .build()
            .unwrap();
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    // --no-sandbox: the tests may run as root (CI containers), where Chromium's
                    // sandbox refuses to start.
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--hide-scrollbars",
                             format!("--window-size={width},{height}")]
                }
            }}}))
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Chromium did not start: {created}"))
            .to_owned();
        Self {
            base,
            session,
            http,
            _driver: driver,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("chromedriver answers");
        let status = res.status();
        let v: Value = res.json().await.expect("a JSON answer");
        assert!(status.is_success(), "{path}: {status} {v}");
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_owned())
            .collect()
    }

    async fn find(&self, css: &str) -> String {
        let mut all = self.find_all(css).await;
        assert!(!all.is_empty(), "no element matches {css}");
        all.swap_remove(0)
    }

    async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn attribute(&self, css: &str, name: &str) -> Value {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::GET,
            &format!("/element/{id}/attribute/{name}"),
            None,
        )
        .await
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// End the session (Chromium exits); chromedriver is killed with its process group on drop, which
    /// also ends a Chromium left behind by a failed test.
    async fn quit(self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(url).send().await;
    }

    /// A PNG of the viewport, saved as a test artifact; returns its path.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .expect("base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir).expect("create the artifacts folder");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }
}

/// `$CARGO_TARGET_DIR/test-artifacts`, or the workspace's `target/test-artifacts`.
fn artifacts_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("test-artifacts")
}

#[tokio::test]
async fn the_ranking_page_renders_in_chromium_and_its_form_changes_the_ranking() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    let browser = Browser::start(1280, 900).await;

    browser.goto(&format!("{}/", relay.base)).await;
    assert_eq!(
        browser.text("#pick-pool").await,
        "pool-r6a.xlarge-us-east-1c"
    );
    assert_eq!(browser.find_all("#pools tbody tr").await.len(), 3);
    assert_eq!(
        browser.attribute("#pools tr.pick", "data-pool").await,
        "pool-r6a.xlarge-us-east-1c"
    );
    // The highlight is drawn: the pick's row has a background of its own.
    let background = browser
        .script("return getComputedStyle(document.querySelector('#pools tr.pick')).backgroundColor")
        .await;
    assert_ne!(
        background, "rgba(0, 0, 0, 0)",
        "the pick's row is highlighted"
    );
    let shot = browser.screenshot("ranking-page.png").await;
    eprintln!("screenshot: {}", shot.display());

    // Submit the form with other instance types: the query changes, and so does the ranking.
    browser
        .type_into("#instance_types", "c6a.xlarge,m6a.xlarge")
        .await;
    browser.type_into("#window", "24h").await;
    browser.click("#filters button[type=submit]").await;
    let url = testkit::eventually("the form's query to load", DEADLINE, || async {
        let url = browser.url().await;
        url.contains("instance_types=c6a.xlarge%2Cm6a.xlarge")
            .then_some(url)
    })
    .await;
    assert!(url.contains("window=24h"), "{url}");
    let pick = testkit::eventually("the new ranking to render", DEADLINE, || async {
        let pick = browser.text("#pick-pool").await;
        (pick != "pool-r6a.xlarge-us-east-1c").then_some(pick)
    })
    .await;
    assert_eq!(pick, "pool-m6a.xlarge-us-east-1b");
    assert_eq!(browser.find_all("#pools tbody tr").await.len(), 2);
    assert_eq!(
        browser.attribute("#instance_types", "value").await,
        "c6a.xlarge,m6a.xlarge",
        "the form keeps what was typed"
    );

    // A bad value shows the error on the page (and the browser got a 400, not a 500).
    browser.type_into("#instance_types", "oops").await;
    browser.click("#filters button[type=submit]").await;
    let message = testkit::eventually("the error to render", DEADLINE, || async {
        let errors = browser.find_all("#error-message").await;
        if errors.is_empty() {
            None
        } else {
            Some(browser.text("#error-message").await)
        }
    })
    .await;
    assert!(message.contains("instance_types"), "{message}");
    browser.quit().await;
}

#[tokio::test]
async fn the_ranking_page_fits_a_phone() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    let browser = Browser::start(390, 844).await;
    browser.goto(&format!("{}/", relay.base)).await;
    assert_eq!(
        browser.text("#pick-pool").await,
        "pool-r6a.xlarge-us-east-1c"
    );
    // Nothing but the table (which scrolls in its own box) is wider than the screen.
    let fits = browser
        .script("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(fits, true, "the page scrolls sideways on a phone");
    browser.screenshot("ranking-page-phone.png").await;
    browser.quit().await;
}
