//! The local backend: each attempt is a `spark-submit --master local[*]` in a process group of its own,
//! watched through files in its run folder, so a launcher restarted mid-run picks its runs up again.
//!
//! A run folder (`SPARK_WORK_DIR/<run name>/`) holds `log` (the job's output), `pid` (the group's
//! leader, a shell wrapping spark-submit), `exit` (spark-submit's exit code, written by the wrapper when
//! it ends), and markers: `reclaimed` (a simulated spot reclaim stopped the run), `cancelled`,
//! `simulated` (`SIMULATE_ONLY`: no process at all).
//!
//! With `SIMULATE_TRUTH`, an attempt drawn as reclaimed ([`Truth::reclaimed`]) is stopped with SIGTERM
//! as soon as it is seen running, as a spot reclaim's node shutdown would; one that finished before it
//! was seen is still reported as reclaimed (its instance went away before the result was kept), so the
//! reclaim rate is the pool's probability whatever the job's speed.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use pool_core::event::Outcome;

use super::{Backend, BackendError, Run, RunStatus};
use crate::simulate::Truth;

/// Why a local run failed when it was not a reclaim.
pub const EXECUTION_ERROR: &str = "SPARK_EXECUTION_ERROR";
/// The run's process vanished without an exit code (killed from outside, machine restarted): how it
/// ended is unknown, so nothing is published for it.
pub use crate::launch::RUN_LOST;

pub struct LocalBackend {
    spark_submit: String,
    work_dir: PathBuf,
    truth: Option<Truth>,
    simulate_only: bool,
}

fn io(e: std::io::Error, what: &str) -> BackendError {
    BackendError::Unavailable(format!("{what}: {e}"))
}

impl LocalBackend {
    pub fn new(
        spark_submit: String,
        work_dir: PathBuf,
        truth: Option<Truth>,
        simulate_only: bool,
    ) -> Self {
        Self {
            spark_submit,
            work_dir,
            truth,
            simulate_only,
        }
    }

    /// PATH for a run: spark-submit's own folder first. PySpark's `spark-submit` in a virtualenv finds
    /// its Spark through the `python` beside it; with the system's first on PATH it does not.
    fn path(&self) -> std::ffi::OsString {
        let current = std::env::var_os("PATH").unwrap_or_default();
        let Some(folder) = Path::new(&self.spark_submit)
            .parent()
            .filter(|f| !f.as_os_str().is_empty())
        else {
            return current;
        };
        let mut paths = vec![folder.to_path_buf()];
        paths.extend(std::env::split_paths(&current));
        std::env::join_paths(paths).unwrap_or(current)
    }

    fn dir(&self, run: &Run<'_>) -> PathBuf {
        self.work_dir.join(&run.attempt.run_name)
    }

    fn reclaimed(&self, run: &Run<'_>) -> bool {
        self.truth
            .as_ref()
            .is_some_and(|t| t.reclaimed(&run.attempt.pool_id, &run.attempt.job_id))
    }

    fn spawn(&self, run: &Run<'_>, dir: &Path) -> Result<(), BackendError> {
        let file = &run.template.local_file;
        if !file.is_file() {
            return Err(BackendError::Refused(format!(
                "the job file {} of template {:?} does not exist",
                file.display(),
                run.template.name
            )));
        }
        // The wrapper records spark-submit's exit code atomically once it ends; its pid leads the group.
        let script = r#"echo $$ > "$RUN_DIR/pid"; "$@" > "$RUN_DIR/log" 2>&1; echo $? > "$RUN_DIR/exit.tmp"; mv "$RUN_DIR/exit.tmp" "$RUN_DIR/exit""#;
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&self.spark_submit)
            .args(["--master", "local[*]", "--name", &run.attempt.run_name])
            .args(["--conf", "spark.ui.enabled=false"])
            .arg(file)
            .args(run.template.arguments(&run.launch.arguments))
            .env("RUN_DIR", dir)
            .env("PATH", self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group: a launcher stopped (or killed with its group) leaves the run going, and a
            // reclaim or cancel stops spark-submit with every process it started.
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn().map_err(|e| {
            BackendError::Refused(format!("cannot start {}: {e}", self.spark_submit))
        })?;
        // Reap it when it ends (after a launcher restart, init does).
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(())
    }

    fn outcome_after_exit(&self, run: &Run<'_>, dir: &Path, code: Option<i32>) -> Outcome {
        if dir.join("reclaimed").exists() || self.reclaimed(run) {
            return Outcome::SpotTermination;
        }
        match code {
            Some(0) => Outcome::Succeeded,
            Some(_) => Outcome::OtherFailure(EXECUTION_ERROR.into()),
            None => Outcome::OtherFailure(RUN_LOST.into()),
        }
    }
}

fn read_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: i32) -> bool {
    // Signal 0 checks existence; a zombie (ended, not reaped yet) counts as alive until reaped, and the
    // wrapper writes `exit` before it ends, so that case is read from the file first.
    nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
}

#[async_trait]
impl Backend for LocalBackend {
    async fn submit(&self, run: Run<'_>) -> Result<(), BackendError> {
        let dir = self.dir(&run);
        if dir.join("pid").exists() || dir.join("simulated").exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&dir).map_err(|e| io(e, "cannot create the run folder"))?;
        if self.simulate_only {
            std::fs::write(dir.join("simulated"), b"")
                .map_err(|e| io(e, "cannot write the run folder"))?;
            return Ok(());
        }
        // `started` claims the run: of two submissions racing (the API and the reconciler after a
        // restart), only the one that creates it spawns.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join("started"))
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(io(e, "cannot write the run folder")),
        }
        let spawned = self.spawn(&run, &dir);
        if spawned.is_err() {
            // Nothing runs: the next poll sees no run, and a resubmission fails the same way, visibly.
            let _ = std::fs::remove_file(dir.join("started"));
        }
        spawned
    }

    async fn poll(&self, run: Run<'_>) -> Result<RunStatus, BackendError> {
        let dir = self.dir(&run);
        if dir.join("simulated").exists() {
            let outcome = if self.reclaimed(&run) {
                Outcome::SpotTermination
            } else {
                Outcome::Succeeded
            };
            return Ok(RunStatus::Finished(outcome));
        }
        if let Ok(code) = std::fs::read_to_string(dir.join("exit")) {
            let code = code.trim().parse::<i32>().ok();
            return Ok(RunStatus::Finished(
                self.outcome_after_exit(&run, &dir, code),
            ));
        }
        let Some(pid) = read_pid(&dir) else {
            // Started but the wrapper has not written its pid yet; or never started.
            return Ok(if dir.join("started").exists() {
                RunStatus::Pending
            } else {
                RunStatus::NotFound
            });
        };
        if !alive(pid) {
            // One more look: the wrapper may have written `exit` and ended since the first read.
            if let Ok(code) = std::fs::read_to_string(dir.join("exit")) {
                let code = code.trim().parse::<i32>().ok();
                return Ok(RunStatus::Finished(
                    self.outcome_after_exit(&run, &dir, code),
                ));
            }
            return Ok(RunStatus::Finished(
                self.outcome_after_exit(&run, &dir, None),
            ));
        }
        if self.reclaimed(&run) && !dir.join("reclaimed").exists() {
            tracing::info!(run = %run.attempt.run_name, pool = %run.attempt.pool_id, "simulated spot reclaim: stopping the run");
            std::fs::write(dir.join("reclaimed"), b"")
                .map_err(|e| io(e, "cannot write the run folder"))?;
            let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        }
        Ok(RunStatus::Running)
    }

    async fn cancel(&self, run: Run<'_>) -> Result<(), BackendError> {
        let dir = self.dir(&run);
        if dir.exists() {
            std::fs::write(dir.join("cancelled"), b"")
                .map_err(|e| io(e, "cannot write the run folder"))?;
        }
        if let Some(pid) = read_pid(&dir).filter(|p| alive(*p)) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        }
        Ok(())
    }

    async fn ready(&self) -> Result<(), BackendError> {
        std::fs::create_dir_all(&self.work_dir)
            .map_err(|e| io(e, "SPARK_WORK_DIR cannot be created"))
    }

    fn name(&self) -> &'static str {
        "local"
    }
}
