//! The run manager: the queue, the one active run, the engine child
//! process, and what the run directory says about each of them.
//!
//! One run at a time (runs compete for the same cores); later ones wait
//! `queued` in order. A supervisor thread takes the next run, launches
//! `userflux-engine run --config config.json --run-dir DIR` with its output
//! appended to `logs.txt`, waits for it, and writes the final state from the
//! engine's exit. On start the daemon reconciles `runs/`: a run left
//! `running` whose engine is alive is adopted (watched until it ends), one
//! whose engine is gone — or left `queued` — becomes `failed` with the
//! reason. Nothing in a run directory is ever deleted.

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use userflux_engine::config::Config;
use userflux_engine::rundir::{RunDir, is_run_id, now_rfc3339, write_json_atomic};
use userflux_engine::status::{RunError, RunErrorKind, Status};
use userflux_engine::summary::RunState;
use userflux_engine::sys;

/// Added to a run's `graceful_stop` before a stop turns into SIGKILL.
const KILL_MARGIN: Duration = Duration::from_secs(5);

pub struct Manager {
    pub runs_dir: PathBuf,
    /// The dashboard's URL when `--http` is on, for `/v1/health`.
    pub dashboard: std::sync::OnceLock<String>,
    engine: PathBuf,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    /// Queued runs to be run as N local shards (`?shards=N`), by run id.
    shards: std::collections::HashMap<String, u32>,
    active: Option<Active>,
    shutting_down: bool,
    /// Adopted at start: engines still running from before a restart.
    adopted: Vec<(String, u32)>,
}

struct Active {
    run_id: String,
    pid: u32,
    /// When a stop was asked for (SIGTERM sent).
    stopping: Option<Instant>,
}

/// What a stop request found.
pub enum Stopped {
    /// It was queued and will never run.
    Dequeued,
    /// Its engine was told to stop (SIGTERM; SIGKILL after the grace period).
    Stopping,
    /// It had already ended in this state.
    AlreadyOver(RunState),
    NotFound,
}

fn status_path(dir: &Path) -> PathBuf {
    dir.join("status.json")
}

pub fn read_status(dir: &Path) -> Option<Status> {
    let text = std::fs::read_to_string(status_path(dir)).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn is_final(s: RunState) -> bool {
    matches!(s, RunState::Finished | RunState::Stopped | RunState::Failed)
}

/// Appends a daemon line to a run's `logs.txt`.
pub fn log(dir: &Path, line: &str) {
    if let Ok(mut f) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("logs.txt"))
    {
        let _ = f.write_all(format!("{} daemon: {line}\n", now_rfc3339()).as_bytes());
    }
}

/// Whether `pid` is alive and is a Userflux engine (not a reused pid).
fn is_engine(pid: u32) -> bool {
    sys::alive(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("userflux-engine"))
            .unwrap_or(false)
}

impl Manager {
    pub fn new(runs_dir: PathBuf, engine: PathBuf) -> Arc<Manager> {
        Arc::new(Manager {
            runs_dir,
            dashboard: std::sync::OnceLock::new(),
            engine,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        })
    }

    pub fn dir(&self, run_id: &str) -> PathBuf {
        self.runs_dir.join(run_id)
    }

    /// Run ids on disk, oldest first.
    pub fn run_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.runs_dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| is_run_id(n))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Reconciles `runs/` after a start; returns what it changed, for the log.
    pub fn recover(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for id in self.run_ids() {
            let dir = self.dir(&id);
            let Some(mut st) = read_status(&dir) else {
                continue;
            };
            match st.state {
                RunState::Running => match st.pid.filter(|&p| is_engine(p)) {
                    Some(pid) => {
                        log(&dir, &format!("daemon restarted: adopting engine {pid}"));
                        notes.push(format!("{id}: adopted running engine {pid}"));
                        self.state.lock().adopted.push((id.clone(), pid));
                    }
                    None => {
                        let why = format!(
                            "the engine{} was gone when the daemon started; the run did not finish",
                            st.pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                        );
                        self.fail(&dir, &mut st, RunErrorKind::Engine, &why);
                        notes.push(format!("{id}: failed ({why})"));
                    }
                },
                RunState::Queued => {
                    let why = "it was queued when the daemon stopped and never ran";
                    self.fail(&dir, &mut st, RunErrorKind::Daemon, why);
                    notes.push(format!("{id}: failed ({why})"));
                }
                _ => {}
            }
        }
        self.wake.notify_all();
        notes
    }

    fn fail(&self, dir: &Path, st: &mut Status, kind: RunErrorKind, why: &str) {
        st.state = RunState::Failed;
        st.pid = None;
        st.error = Some(RunError {
            kind,
            message: why.into(),
        });
        st.exit_code = st.exit_code.or(Some(1));
        st.ended_at = Some(now_rfc3339());
        st.updated_at = now_rfc3339();
        let _ = write_json_atomic(&status_path(dir), &*st);
        log(dir, &format!("run failed: {why}"));
    }

    /// Creates the run directory for a validated config and queues it.
    pub fn submit(
        &self,
        config: &Config,
        warnings: &[String],
        shards: Option<u32>,
    ) -> std::io::Result<(String, usize)> {
        let dir = RunDir::create_in(&self.runs_dir)?;
        dir.write_json("config.json", config)?;
        let status = Status::new(RunState::Queued, &dir.run_id, config, None);
        dir.write_json("status.json", &status)?;
        for w in warnings {
            log(&dir.path, &format!("config converted: {w}"));
        }
        let mut st = self.state.lock();
        let ahead = st.queue.len() + usize::from(st.active.is_some()) + st.adopted.len();
        log(&dir.path, &format!("queued ({ahead} run(s) ahead)"));
        st.queue.push_back(dir.run_id.clone());
        if let Some(n) = shards {
            log(&dir.path, &format!("to run as {n} local shard(s)"));
            st.shards.insert(dir.run_id.clone(), n);
        }
        self.wake.notify_all();
        Ok((dir.run_id, ahead))
    }

    /// The active run and the queue, for `/v1/health`.
    pub fn overview(&self) -> (Option<String>, Vec<String>) {
        let st = self.state.lock();
        let active = st
            .active
            .as_ref()
            .map(|a| a.run_id.clone())
            .or_else(|| st.adopted.first().map(|a| a.0.clone()));
        (active, st.queue.iter().cloned().collect())
    }

    /// Whether `run_id`'s engine is running now (started here or adopted).
    pub fn is_running(&self, run_id: &str) -> bool {
        let st = self.state.lock();
        st.active.as_ref().is_some_and(|a| a.run_id == run_id)
            || st.adopted.iter().any(|a| a.0 == run_id)
    }

    pub fn stop(self: &Arc<Self>, run_id: &str) -> Stopped {
        let dir = self.dir(run_id);
        let mut st = self.state.lock();
        if let Some(pos) = st.queue.iter().position(|q| q == run_id) {
            st.queue.remove(pos);
            st.shards.remove(run_id);
            drop(st);
            if let Some(mut s) = read_status(&dir) {
                s.state = RunState::Stopped;
                s.error = Some(RunError {
                    kind: RunErrorKind::Stopped,
                    message: "stopped while queued; it never ran".into(),
                });
                s.exit_code = Some(0);
                s.ended_at = Some(now_rfc3339());
                s.updated_at = now_rfc3339();
                let _ = write_json_atomic(&status_path(&dir), &s);
            }
            log(&dir, "stopped while queued");
            return Stopped::Dequeued;
        }
        let pid = match st.active.as_mut().filter(|a| a.run_id == run_id) {
            Some(a) => {
                if a.stopping.is_none() {
                    a.stopping = Some(Instant::now());
                }
                Some(a.pid)
            }
            None => st.adopted.iter().find(|a| a.0 == run_id).map(|a| a.1),
        };
        drop(st);
        if let Some(pid) = pid {
            log(&dir, &format!("stop requested: SIGTERM to engine {pid}"));
            let _ = sys::kill(pid, libc::SIGTERM);
            self.kill_later(run_id.to_string(), pid);
            return Stopped::Stopping;
        }
        match read_status(&dir) {
            Some(s) => Stopped::AlreadyOver(s.state),
            None => Stopped::NotFound,
        }
    }

    /// SIGKILL if the engine is still there after its graceful stop and a margin.
    fn kill_later(self: &Arc<Self>, run_id: String, pid: u32) {
        let grace = Config::load(&self.dir(&run_id).join("config.json"))
            .map_or(Duration::from_secs(5), |c| c.graceful_stop.0);
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            std::thread::sleep(grace + KILL_MARGIN);
            let still = {
                let st = me.state.lock();
                st.active.as_ref().is_some_and(|a| a.pid == pid)
                    || st.adopted.iter().any(|a| a.1 == pid)
            };
            if still && is_engine(pid) {
                log(
                    &me.dir(&run_id),
                    &format!("engine {pid} still running after the grace period: SIGKILL"),
                );
                let _ = sys::kill(pid, libc::SIGKILL);
            }
        });
    }

    /// Stops taking runs: the active one is stopped, queued ones never run.
    pub fn shutdown(self: &Arc<Self>) {
        let (active, queued) = {
            let mut st = self.state.lock();
            st.shutting_down = true;
            let active: Vec<String> = st
                .active
                .iter()
                .map(|a| a.run_id.clone())
                .chain(st.adopted.iter().map(|a| a.0.clone()))
                .collect();
            (active, st.queue.iter().cloned().collect::<Vec<_>>())
        };
        for id in queued.iter().chain(&active) {
            self.stop(id);
        }
        self.wake.notify_all();
    }

    /// The supervisor: runs queued runs one at a time until shutdown.
    pub fn supervise(self: Arc<Self>) {
        loop {
            // Engines adopted after a restart finish before anything new starts.
            let adopted = self.state.lock().adopted.first().cloned();
            if let Some((run_id, pid)) = adopted {
                while is_engine(pid) {
                    std::thread::sleep(Duration::from_millis(200));
                }
                self.finalize(&run_id, None, false);
                self.state.lock().adopted.retain(|a| a.1 != pid);
                continue;
            }
            let next = {
                let mut st = self.state.lock();
                loop {
                    if let Some(id) = st.queue.pop_front() {
                        break Some(id);
                    }
                    if st.shutting_down {
                        break None;
                    }
                    self.wake.wait(&mut st);
                }
            };
            let Some(run_id) = next else { return };
            self.run(&run_id);
        }
    }

    fn run(&self, run_id: &str) {
        let dir = self.dir(run_id);
        let logs = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("logs.txt"));
        // one engine either way: with --shards it runs and merges the shards
        let shards = self.state.lock().shards.remove(run_id);
        let spawned = logs.and_then(|f| {
            let err = f.try_clone()?;
            Command::new(&self.engine)
                .arg("run")
                .args(shards.map(|n| format!("--shards={n}")))
                .arg("--config")
                .arg(dir.join("config.json"))
                .arg("--run-dir")
                .arg(&dir)
                // the daemon wrote this run's config, status and logs there
                .arg("--prepared")
                .stdin(Stdio::null())
                .stdout(Stdio::from(f))
                .stderr(Stdio::from(err))
                // Its own process group: a terminal's Ctrl-C aimed at the
                // daemon does not reach it, and it outlives a killed daemon.
                .process_group(0)
                .spawn()
        });
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                if let Some(mut st) = read_status(&dir) {
                    self.fail(
                        &dir,
                        &mut st,
                        RunErrorKind::Daemon,
                        &format!("cannot start {}: {e}", self.engine.display()),
                    );
                }
                return;
            }
        };
        let pid = child.id();
        log(&dir, &format!("started engine {pid}"));
        if let Some(mut st) = read_status(&dir)
            && st.state == RunState::Queued
        {
            st.state = RunState::Running;
            st.pid = Some(pid);
            st.started_at = Some(now_rfc3339());
            st.updated_at = now_rfc3339();
            let _ = write_json_atomic(&status_path(&dir), &st);
        }
        self.state.lock().active = Some(Active {
            run_id: run_id.to_string(),
            pid,
            stopping: None,
        });
        let exit = child.wait().ok();
        let stopping = self
            .state
            .lock()
            .active
            .take()
            .and_then(|a| a.stopping)
            .is_some();
        self.finalize(run_id, exit, stopping);
    }

    /// Writes the final state from the engine's exit (`None`: unknown, adopted).
    fn finalize(&self, run_id: &str, exit: Option<ExitStatus>, stop_requested: bool) {
        let dir = self.dir(run_id);
        let Some(mut st) = read_status(&dir) else {
            return;
        };
        let code = exit.and_then(|e| e.code());
        let signal = exit.and_then(|e| e.signal());
        if is_final(st.state) && signal.is_none() {
            // The engine wrote its own final status.
            st.exit_code = code.or(st.exit_code);
            st.pid = None;
            let _ = write_json_atomic(&status_path(&dir), &st);
            log(
                &dir,
                &format!(
                    "engine exited with code {}: run {}",
                    code.map_or("unknown".into(), |c| c.to_string()),
                    st.state.as_str()
                ),
            );
            return;
        }
        match (signal, stop_requested) {
            (Some(sig), true) => {
                st.state = RunState::Stopped;
                st.pid = None;
                st.exit_code = Some(128 + sig);
                st.error = Some(RunError {
                    kind: RunErrorKind::Stopped,
                    message: format!(
                        "stopped; the engine was killed (signal {sig}) after the grace period"
                    ),
                });
                st.ended_at = Some(now_rfc3339());
                let _ = write_json_atomic(&status_path(&dir), &st);
                log(
                    &dir,
                    &format!("engine killed by signal {sig} after a stop request"),
                );
            }
            (Some(sig), false) => {
                st.exit_code = Some(128 + sig);
                self.fail(
                    &dir,
                    &mut st,
                    RunErrorKind::Engine,
                    &format!("the engine was killed by signal {sig}"),
                );
            }
            (None, _) => {
                let why = match code {
                    Some(c) => format!("the engine exited with code {c} without finishing the run"),
                    None => "the engine ended without finishing the run".into(),
                };
                st.exit_code = code.or(Some(1));
                self.fail(&dir, &mut st, RunErrorKind::Engine, &why);
            }
        }
    }
}

/// Creates `dir` (and parents) readable only by this user.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// An exclusive lock on `runs_dir/userfluxd.lock`, held while the daemon lives.
pub fn lock_runs_dir(runs_dir: &Path) -> std::io::Result<Option<File>> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(runs_dir.join("userfluxd.lock"))?;
    Ok(sys::try_lock(&f)?.then_some(f))
}
