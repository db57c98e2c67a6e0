//! The lifecycle of one engine process's run around [`super::execute`]:
//! the panic hook that marks the run failed, the signal protocol (first
//! SIGINT/SIGTERM stops, a second aborts, a third exits at once), the wait
//! for a start time, and the exit-code policy with the error `status.json`
//! records. `main.rs` parses flags and calls these; the contract they keep
//! (exit codes 0, 1, 99, 130; a valid `status.json` whatever happens) is
//! docs/engine.md's.

use crate::aggregator::Halt;
use crate::rundir::RunDir;
use crate::status::{RunError, RunErrorKind, Status};
use crate::summary::{EXIT_THRESHOLDS, RunState, Summary};
use crossbeam_channel::Receiver;
use parking_lot::Mutex;
use signal_hook::consts::{SIGINT, SIGTERM};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// The exit code of a run ended by a signal (128 + SIGINT, as shells do).
pub const EXIT_SIGNALLED: i32 = 130;
/// How long a second signal's abort may take to write the summary before
/// the process exits without one.
const ABORT_WAIT: Duration = Duration::from_secs(3);

/// A panic anywhere marks the run failed in `status.json` at once; a
/// worker's panic is then caught and the summary still written (see
/// [`crate::fault`]).
pub fn mark_failed_on_panic(status: &Arc<Mutex<Status>>, dir: &RunDir) {
    let (status, dir) = (Arc::clone(status), dir.clone());
    crate::fault::install(move |why| {
        let Some(mut st) = status.try_lock() else {
            return; // the panicking thread holds it; nothing safe to do
        };
        st.state = RunState::Failed;
        // Rust's exit code for a panic that ends the process; a worker's
        // panic is caught and the final status says 1.
        st.exit_code = Some(101);
        st.error = Some(RunError::new(RunErrorKind::Panic, why.to_string()));
        st.pid = None;
        let _ = dir.write_json("status.json", &*st);
        let _ = dir.log(&format!("engine failure: {why}"));
    });
}

/// What the signal thread tells the run: halts on `stop`, and whether a
/// second signal asked for an abort.
pub struct Signals {
    pub stop: Receiver<Halt>,
    aborted: Arc<AtomicBool>,
}

impl Signals {
    /// A second signal came: the run ends with [`EXIT_SIGNALLED`].
    pub fn aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }
}

/// Installs the SIGINT/SIGTERM handlers and their thread: the first signal
/// stops the run (graceful stop), the second aborts it (what was in flight
/// counted as interrupted; a run too stuck to write its summary within
/// `ABORT_WAIT`, 3 s, exits anyway), a third exits at once. Every path leaves
/// a valid `status.json`.
pub fn watch_signals(status: &Arc<Mutex<Status>>, dir: &RunDir) -> std::io::Result<Signals> {
    let (stop_tx, stop_rx) = crossbeam_channel::unbounded();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let aborted = Arc::new(AtomicBool::new(false));
    let (status, dir, flag) = (Arc::clone(status), dir.clone(), Arc::clone(&aborted));
    std::thread::Builder::new()
        .name("userflux-signals".into())
        .spawn(move || {
            for (n, sig) in signals.forever().enumerate() {
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                match n {
                    0 => {
                        let _ = stop_tx.send(Halt::Stop(format!("received {name}")));
                    }
                    1 => {
                        flag.store(true, Ordering::SeqCst);
                        let _ = stop_tx.send(Halt::Abort(format!("second {name}")));
                        let (status, dir) = (Arc::clone(&status), dir.clone());
                        std::thread::spawn(move || {
                            std::thread::sleep(ABORT_WAIT);
                            exit_without_summary(&status, &dir);
                        });
                    }
                    _ => exit_without_summary(&status, &dir),
                }
            }
        })?;
    Ok(Signals {
        stop: stop_rx,
        aborted,
    })
}

/// Leaves a valid `status.json` (stopped, exit 130) and exits at once: a
/// third signal, or a run that could not write its summary in time.
fn exit_without_summary(status: &Mutex<Status>, dir: &RunDir) -> ! {
    let message = "ended at once by a signal, without a summary";
    let error = RunError::new(RunErrorKind::Signal, message);
    let st = super::finish_status(status, RunState::Stopped, EXIT_SIGNALLED, Some(error));
    let _ = dir.write_json("status.json", &st);
    let _ = dir.log(message);
    std::process::exit(EXIT_SIGNALLED);
}

/// Waits for the start time `t` (`text` as given), unless a signal comes
/// first: then says which (issue #27: the first SIGINT was ignored here,
/// and the run stayed `running` until the start time, up to a day).
pub fn wait_for_start(
    t: SystemTime,
    text: &str,
    dir: &RunDir,
    stop: &Receiver<Halt>,
) -> Option<String> {
    let _ = dir.log(&format!("waiting for the start time {text}"));
    let wait = t.duration_since(SystemTime::now()).unwrap_or_default();
    match stop.recv_timeout(wait) {
        Ok(Halt::Stop(why) | Halt::Abort(why)) => Some(why),
        Err(_) => None,
    }
}

/// A signal came while waiting for `what` (the start time, or the
/// barrier): nothing ran, so there is no summary, and the status says
/// why. Returns the exit code.
pub fn stopped_before_start(
    status: &Mutex<Status>,
    dir: &RunDir,
    why: &str,
    what: &str,
) -> std::io::Result<i32> {
    let message = format!("{why} while waiting for {what}: the run did not start");
    let error = RunError::new(RunErrorKind::Stopped, message.clone());
    let st = super::finish_status(status, RunState::Stopped, EXIT_SIGNALLED, Some(error));
    dir.write_json("status.json", &st)?;
    let _ = dir.log(&message);
    eprintln!("userflux-engine: run {}: {message}", dir.run_id);
    Ok(EXIT_SIGNALLED)
}

/// A run that ended with a summary: its exit code (1 failed, 130 aborted
/// by a second signal, 99 thresholds failed, else 0; in cluster mode
/// [`crate::cluster::exit_code`]'s) and the error `status.json` records.
pub fn verdict(summary: &Summary, aborted: bool, cluster: bool) -> (i32, Option<RunError>) {
    let failed = summary.failed_thresholds();
    let code = if summary.state == RunState::Failed {
        1
    } else if aborted {
        EXIT_SIGNALLED
    } else if failed > 0 {
        EXIT_THRESHOLDS
    } else {
        0
    };
    // a shard's thresholds are judged again on the merge, the run's verdict
    let code = if cluster {
        crate::cluster::exit_code(code)
    } else {
        code
    };
    let reason = |default: &str| {
        summary
            .stop_reason
            .clone()
            .unwrap_or_else(|| default.into())
    };
    let error = if summary.state == RunState::Failed {
        Some(RunError::new(
            RunErrorKind::Panic,
            reason("the engine failed"),
        ))
    } else if failed > 0 {
        Some(RunError::new(
            RunErrorKind::Thresholds,
            format!("{failed} of {} thresholds failed", summary.thresholds.len()),
        ))
    } else {
        (summary.state == RunState::Stopped)
            .then(|| RunError::new(RunErrorKind::Stopped, reason("stopped before the end")))
    };
    (code, error)
}
