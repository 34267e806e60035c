//! Binaries and servers as child processes of a test. Each runs in a process group of its own, so a
//! signal or a kill reaches what it started too (a broker's Erlang VM, say), and dropping the handle
//! kills the group: a failing test leaves nothing running.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

pub use nix::sys::signal::Signal as Sig;

/// A free TCP port on 127.0.0.1 (bound and released; for a child that must be told its port).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A child process in its own process group.
pub struct ChildProcess {
    name: String,
    child: Child,
}

impl ChildProcess {
    /// Spawn `cmd` as a group leader. `name` appears in failure messages.
    pub fn spawn(name: &str, mut cmd: Command) -> Self {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self {
            name: name.to_owned(),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn nix_pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Send `signal` to the process itself.
    pub fn signal(&self, signal: Signal) {
        kill(self.nix_pid(), signal)
            .unwrap_or_else(|e| panic!("sending {signal} to {} ({}): {e}", self.name, self.pid()));
    }

    /// Send `signal` to its whole process group.
    pub fn signal_group(&self, signal: Signal) {
        let _ = killpg(self.nix_pid(), signal);
    }

    /// Freeze the process group (SIGSTOP): it holds its connections but answers nothing.
    pub fn pause(&self) {
        self.signal_group(Signal::SIGSTOP);
    }

    /// Thaw a paused process group (SIGCONT).
    pub fn resume(&self) {
        self.signal_group(Signal::SIGCONT);
    }

    /// Still running (not exited, whether reaped or not)?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for the process to exit; panics when it has not within `timeout` (a deadline, not a
    /// measurement).
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                started.elapsed() < timeout,
                "{} did not exit within {timeout:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then SIGKILL to the group if it has not exited within `grace`; returns its status.
    pub async fn terminate(&mut self, grace: Duration) -> ExitStatus {
        if !self.is_running() {
            return self.child.wait().expect("wait");
        }
        self.signal(Signal::SIGTERM);
        let started = Instant::now();
        while started.elapsed() < grace {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill();
        self.child.wait().expect("wait")
    }

    /// SIGKILL to the whole group, and reap the process.
    pub fn kill(&mut self) {
        self.signal_group(Signal::SIGCONT);
        self.signal_group(Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.is_running() {
            self.kill();
        } else {
            // The leader is gone; what it started may not be.
            self.signal_group(Signal::SIGKILL);
        }
    }
}

/// Wait until `port` on 127.0.0.1 accepts connections, failing early if `child` exits.
pub async fn wait_port(child: &mut ChildProcess, port: u16, timeout: Duration) {
    let started = Instant::now();
    while !port_open(port) {
        if !child.is_running() {
            let status = child.child.wait().expect("wait");
            panic!(
                "{} exited ({status}) before listening on {port}",
                child.name
            );
        }
        assert!(
            started.elapsed() < timeout,
            "{} did not listen on port {port} within {timeout:?}",
            child.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signals_reach_the_child_and_exits_are_awaited() {
        let mut sleeper = ChildProcess::spawn("sleep", {
            let mut c = Command::new("sleep");
            c.arg("600");
            c
        });
        assert!(sleeper.is_running());
        sleeper.pause();
        sleeper.resume();
        sleeper.signal(Signal::SIGTERM);
        let status = sleeper.wait_exit(Duration::from_secs(30)).await;
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc_sigterm()));
    }

    fn libc_sigterm() -> i32 {
        Signal::SIGTERM as i32
    }
}
