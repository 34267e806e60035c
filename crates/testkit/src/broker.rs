//! A RabbitMQ node of the test's own (own ports, data folder and epmd), for tests that stop or restart
//! the broker without disturbing anyone else's tests. Data survives [`PrivateBroker::restart`];
//! everything is killed and deleted on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{ChildProcess, free_port, port_open, wait_port};

const RABBIT_BIN: &str = "/usr/lib/rabbitmq/bin";

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

pub struct PrivateBroker {
    dir: tempfile::TempDir,
    pub amqp_port: u16,
    dist_port: u16,
    epmd_port: u16,
    node: String,
    _epmd: ChildProcess,
    server: Option<ChildProcess>,
}

impl PrivateBroker {
    pub async fn start() -> Self {
        assert!(
            Path::new(RABBIT_BIN).join("rabbitmq-server").exists(),
            "rabbitmq-server is not installed ({RABBIT_BIN}); run scripts/install-deps.sh"
        );
        let dir = tempfile::Builder::new()
            .prefix("test-broker-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            "log.console = false\nlog.file.level = warning\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("rabbitmq-env.conf"), "").unwrap();
        if is_root() {
            // The node runs as the rabbitmq user, which must own its folders.
            let ok = Command::new("chown")
                .args(["-R", "rabbitmq:rabbitmq"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the broker folder to the rabbitmq user");
        }
        let epmd_port = free_port();
        let mut epmd = ChildProcess::spawn("epmd", {
            let mut c = Command::new("epmd");
            c.args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            c
        });
        wait_port(&mut epmd, epmd_port, Duration::from_secs(30)).await;
        let mut broker = Self {
            dir,
            amqp_port: free_port(),
            dist_port: free_port(),
            epmd_port,
            node: crate::servers::unique("test-broker").replace('-', "") + "@localhost",
            _epmd: epmd,
            server: None,
        };
        broker.launch().await;
        broker
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }

    fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    async fn launch(&mut self) {
        let d = self.dir();
        let mut cmd = if is_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=rabbitmq",
                "--regid=rabbitmq",
                "--init-groups",
                "env",
            ]);
            c
        } else {
            Command::new("env")
        };
        let path = |name: &str| d.join(name).display().to_string();
        cmd.arg("LANG=C.UTF-8")
            .arg(format!("HOME={}", path("home")))
            .arg(format!("RABBITMQ_NODENAME={}", self.node))
            .arg("RABBITMQ_NODE_IP_ADDRESS=127.0.0.1")
            .arg(format!("RABBITMQ_NODE_PORT={}", self.amqp_port))
            .arg(format!("RABBITMQ_DIST_PORT={}", self.dist_port))
            .arg(format!("ERL_EPMD_PORT={}", self.epmd_port))
            .arg(format!(
                "RABBITMQ_CONF_ENV_FILE={}",
                path("rabbitmq-env.conf")
            ))
            .arg(format!("RABBITMQ_CONFIG_FILE={}", path("rabbitmq.conf")))
            .arg(format!(
                "RABBITMQ_ENABLED_PLUGINS_FILE={}",
                path("enabled_plugins")
            ))
            .arg(format!("RABBITMQ_MNESIA_BASE={}", path("mnesia")))
            .arg(format!("RABBITMQ_LOG_BASE={}", path("log")))
            .arg(format!("RABBITMQ_PID_FILE={}", path("beam.pid")))
            .arg(format!("{RABBIT_BIN}/rabbitmq-server"))
            .current_dir(&d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut server = ChildProcess::spawn("the private RabbitMQ node", cmd);
        // The AMQP listener opens at the end of the boot, once the node can take connections.
        wait_port(&mut server, self.amqp_port, Duration::from_secs(120)).await;
        self.server = Some(server);
    }

    /// Stop the node gracefully (SIGTERM: durable queues and persistent messages survive), and wait
    /// until its port is closed.
    pub async fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.terminate(Duration::from_secs(60)).await;
            // The VM may outlive the start script for a moment: kill what is left of the group.
            server.kill();
            crate::eventually(
                "the private broker's port to close",
                Duration::from_secs(30),
                || async { (!port_open(self.amqp_port)).then_some(()) },
            )
            .await;
        }
    }

    /// Stop and start again on the same ports with the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }
}
