//! Detached processes that outlive the manager: each component runs as the leader of a session of its
//! own (no terminal; its pid is its session id, so a stop reaches whatever it forked, a broker's
//! Erlang VM say), with stdin from /dev/null, stdout and stderr appended to its log, and its pid in a
//! pid file that every later command (and other tools: chaos, load tests) reads. The same idioms as
//! testkit::process (own group, signal the group, wait with a deadline), but for processes the
//! manager does not keep as children: testkit owns a `Child` for the life of a test, the manager
//! exits while its components run, so only nix is shared, not the module (nor testkit's lapin).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// What to run: argv, environment on top of the manager's, working folder.
pub struct Launch<'a> {
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: Option<&'a Path>,
}

/// `argv` as a command: an empty one is an error in the stack file, said as such (not a panic).
pub fn command(argv: &[String]) -> Result<Command, String> {
    let (program, args) = argv
        .split_first()
        .ok_or("an empty command in the stack file")?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    Ok(cmd)
}

/// Run `cmd` to its end within `limit`. One that takes longer is killed and is an error, so a hook, a
/// check or a setting's command that hangs cannot hang `up`. Piped output is read once it has exited
/// (a few lines; one that fills its pipe cannot exit and ends at the limit).
pub fn run_within(cmd: &mut Command, limit: Duration, what: &str) -> Result<Output, String> {
    let mut child = cmd.spawn().map_err(|e| format!("{what}: {e}"))?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().map_err(|e| format!("{what}: {e}")),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{what}: still running after {}s; stopped",
                    limit.as_secs()
                ));
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
}

/// Start `launch` detached (see the module), returning its pid, written to `pidfile`.
pub fn spawn(launch: &Launch, pidfile: &Path, logfile: &Path) -> Result<u32, String> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(logfile)
        .map_err(|e| format!("opening {}: {e}", logfile.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = command(launch.argv)?;
    cmd.stdin(Stdio::null()).stdout(log).stderr(err);
    cmd.envs(launch.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = launch.cwd {
        cmd.current_dir(dir);
    }
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("starting {}: {e}", launch.argv[0]))?;
    let pid = child.id();
    // Not waited for: it outlives the manager (init reaps it). Until the manager exits an early exit
    // shows as a zombie, which `running` counts as gone.
    drop(child);
    std::fs::write(pidfile, format!("{pid}\n"))
        .map_err(|e| format!("writing {}: {e}", pidfile.display()))?;
    Ok(pid)
}

/// (state, session) of a process from /proc, None when there is no such process.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    Some((
        fields.first()?.chars().next()?,
        fields.get(3)?.parse().ok()?,
    ))
}

/// The process runs. One that has exited but not been reaped (a zombie) counts as gone.
pub fn running(pid: u32) -> bool {
    pid > 0 && matches!(stat(pid), Some((s, _)) if s != 'Z')
}

pub fn read_pid(pidfile: &Path) -> Option<u32> {
    std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()
}

/// The process runs as the leader of its own session, as every component is started ([`spawn`]). A
/// pid file that survived a reboot may name a pid the system gave to something else since: that
/// process is not ours, and is never reported as the component nor signalled.
pub fn ours(pid: u32) -> bool {
    pid > 0 && matches!(stat(pid), Some((s, sess)) if s != 'Z' && sess == pid)
}

/// The process runs in the session led by `sid` (a component's child, such as a broker's VM).
pub fn in_session(pid: u32, sid: u32) -> bool {
    pid > 0 && matches!(stat(pid), Some((s, sess)) if s != 'Z' && sess == sid)
}

/// The pid file exists and its process is the component it was written for.
pub fn alive(pidfile: &Path) -> bool {
    read_pid(pidfile).is_some_and(ours)
}

/// Every live process of the session led by `sid`.
pub fn session_members(sid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| matches!(stat(p), Some((s, sess)) if sess == sid && s != 'Z'))
        .collect()
}

/// Wait until `pid` is gone or `grace` has passed; whether it is gone.
pub fn wait_gone(pid: u32, grace: Duration) -> bool {
    let deadline = Instant::now() + grace;
    while running(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

pub fn signal(pid: u32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), sig);
}

pub fn signal_group(pgid: u32, sig: Signal) {
    let _ = killpg(Pid::from_raw(pgid as i32), sig);
}

/// Stop the process of `pidfile`: SIGTERM, SIGKILL when it still runs after `grace`, then SIGKILL
/// whatever is left in its session (children that outlived it), and delete the pid file. Quiet when
/// nothing runs. `log` gets one line per thing done.
pub fn stop(what: &str, pidfile: &Path, grace: Duration, log: &dyn Fn(String)) {
    let Some(pid) = read_pid(pidfile) else {
        let _ = std::fs::remove_file(pidfile);
        return;
    };
    if running(pid) && !ours(pid) {
        // A stale pid file (the machine restarted): the pid belongs to another program now. While
        // that process runs no session `pid` can exist, so there is nothing of ours to sweep either.
        log(format!(
            "{what}: pid {pid} from {} is not ours any more (a stale pid file); left alone",
            pidfile.display()
        ));
        let _ = std::fs::remove_file(pidfile);
        return;
    }
    if running(pid) {
        signal(pid, Signal::SIGTERM);
        if !wait_gone(pid, grace) {
            log(format!(
                "{what} did not stop within {}s; killing it",
                grace.as_secs()
            ));
            signal(pid, Signal::SIGKILL);
            wait_gone(pid, Duration::from_secs(5));
        }
        log(format!("stopped {what} (pid {pid})"));
    }
    let left = session_members(pid);
    if !left.is_empty() {
        for &p in &left {
            signal(p, Signal::SIGKILL);
        }
        let list: Vec<String> = left.iter().map(u32::to_string).collect();
        log(format!(
            "killed what {what} left behind: {}",
            list.join(" ")
        ));
    }
    let _ = std::fs::remove_file(pidfile);
}

/// The last `n` lines of a file (for a failed start).
pub fn tail(path: &Path, n: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_session_leader_the_manager_started_is_ours_and_stop_leaves_a_stranger_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (pidfile, logfile) = (dir.path().join("c.pid"), dir.path().join("c.log"));
        let argv = ["sleep".to_owned(), "60".to_owned()];
        let launch = Launch {
            argv: &argv,
            env: &[],
            cwd: None,
        };
        let pid = spawn(&launch, &pidfile, &logfile).unwrap();
        assert!(ours(pid) && alive(&pidfile));

        // A process in this test's session, as a pid reused after a reboot would be: not ours.
        let mut stranger = Command::new("sleep").arg("60").spawn().unwrap();
        let stranger_pid = stranger.id();
        assert!(running(stranger_pid) && !ours(stranger_pid));
        let stale = dir.path().join("stale.pid");
        std::fs::write(&stale, format!("{stranger_pid}\n")).unwrap();
        assert!(!alive(&stale));
        let lines = std::cell::RefCell::new(vec![]);
        stop("stale", &stale, Duration::from_secs(1), &|l| {
            lines.borrow_mut().push(l)
        });
        assert!(running(stranger_pid), "a stranger is never signalled");
        assert!(
            lines.borrow()[0].contains("stale pid file"),
            "{:?}",
            lines.borrow()
        );
        assert!(!stale.exists());

        stop("c", &pidfile, Duration::from_secs(5), &|_| {});
        assert!(!ours(pid) && !pidfile.exists());
        stranger.kill().unwrap();
        stranger.wait().unwrap();
    }

    #[test]
    fn a_command_past_its_limit_is_stopped_and_an_empty_one_is_an_error() {
        let argv = ["sleep".to_owned(), "60".to_owned()];
        let err = run_within(
            &mut command(&argv).unwrap(),
            Duration::from_millis(200),
            "sleep",
        )
        .unwrap_err();
        assert!(err.contains("still running after"), "{err}");
        let ok = run_within(
            command(&["echo".to_owned(), "hi".to_owned()])
                .unwrap()
                .stdout(Stdio::piped()),
            Duration::from_secs(30),
            "echo",
        )
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&ok.stdout), "hi\n");
        assert!(command(&[]).unwrap_err().contains("empty command"));
    }
}
