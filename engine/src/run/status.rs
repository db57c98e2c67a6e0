//! `status.json`: where a run is now. Written by the engine (and later the
//! daemon) at least once a second while running, atomically, so a reader
//! polling it always sees a whole document.

use crate::config::Config;
use crate::rundir::now_rfc3339;
use crate::summary::RunState;
use serde::{Deserialize, Serialize};

impl Status {
    /// A run's first status: `state` (queued by the daemon, running by the
    /// engine), nothing measured yet.
    pub fn new(state: RunState, run_id: &str, config: &Config, pid: Option<u32>) -> Status {
        let now = now_rfc3339();
        Status {
            state,
            run_id: run_id.to_string(),
            name: config.name.clone(),
            pid,
            started_at: (state == RunState::Running).then(|| now.clone()),
            updated_at: now,
            ended_at: None,
            progress: Progress {
                duration_s: config.duration().as_secs_f64(),
                ..Progress::default()
            },
            exit_code: None,
            error: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Status {
    pub state: RunState,
    pub run_id: String,
    pub name: String,
    /// The engine's process id while it runs.
    pub pid: Option<u32>,
    /// RFC 3339, UTC.
    pub started_at: Option<String>,
    pub updated_at: String,
    pub ended_at: Option<String>,
    pub progress: Progress,
    /// The engine's exit code, once known.
    pub exit_code: Option<i32>,
    /// Why the run failed or stopped early.
    pub error: Option<RunError>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Progress {
    pub elapsed_s: f64,
    /// Length of the load phase (the stages).
    pub duration_s: f64,
    pub requests: u64,
    pub errors: u64,
    /// Requests per second over the last second (per the part of it the
    /// run covered); once the run has ended, over the whole run (the
    /// summary's `totals.rps`).
    pub rps: f64,
    /// p99 latency over the last second, ms; once the run has ended, the
    /// run's (the summary's `totals.latency_ms.p99`).
    pub p99_ms: Option<f64>,
    pub vus: u32,
}

/// Why a run did not end well, and what the message says of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunError {
    /// A stable word for scripts: one of [`RunErrorKind`]'s.
    pub kind: RunErrorKind,
    pub message: String,
}

impl RunError {
    pub fn new(kind: RunErrorKind, message: impl Into<String>) -> RunError {
        RunError {
            kind,
            message: message.into(),
        }
    }
}

/// Every word `status.json`'s `error.kind` can hold (the schema lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunErrorKind {
    /// Stopped before its end: a signal, `userfluxctl run stop`, or a stop
    /// while waiting for the start time or the barrier (state `stopped`).
    Stopped,
    /// Ended at once by a signal without writing a summary (a third
    /// signal, or a second one the run could not honour in time).
    Signal,
    /// The engine panicked: the run failed (its summary, if written, has
    /// what was measured until then).
    Panic,
    /// The run completed and some thresholds failed (exit code 99).
    Thresholds,
    /// The engine could not run the plan, or it was gone (killed, or not
    /// running when the daemon restarted) without a status of its own.
    Engine,
    /// A file of the run directory could not be written.
    Io,
    /// A sharded run on Kubernetes: the pods' start barrier failed.
    Barrier,
    /// A local sharded run (`--shards N`): a shard failed or was lost.
    Shards,
    /// The daemon could not start the engine, or it stopped with the run
    /// still queued.
    Daemon,
}

impl RunErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunErrorKind::Stopped => "stopped",
            RunErrorKind::Signal => "signal",
            RunErrorKind::Panic => "panic",
            RunErrorKind::Thresholds => "thresholds",
            RunErrorKind::Engine => "engine",
            RunErrorKind::Io => "io",
            RunErrorKind::Barrier => "barrier",
            RunErrorKind::Shards => "shards",
            RunErrorKind::Daemon => "daemon",
        }
    }
}

impl std::fmt::Display for RunErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for RunErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
