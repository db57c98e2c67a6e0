//! The live view of a running run and the steering that comes back: what a
//! watcher (the daemon's dashboard, `tail -f`, `curl -N` on the daemon's
//! event stream) reads while the run is going, and what it may ask.
//!
//! - `live.ndjson`: the aggregator appends one [`LiveSecond`] per timeline
//!   second as it completes — the summary's timeline line (endpoints named)
//!   plus what the dashboard shows beside it: the open model's target rate
//!   and corrected percentiles, errors by kind, checks so far, the scaling
//!   events of that second and every threshold judged on the totals so far.
//!   The summary's timeline comes only at the end; this file is the same
//!   data a second at a time.
//! - `control.ndjson`: a steering message per line ([`ControlLine`]),
//!   appended by whoever may steer (the daemon, after its token and origin
//!   checks); the aggregator reads the new lines once a second and applies a
//!   VU or rate change like an autoscale decision, recorded as a scaling
//!   event with reason `manual`. A rate change is a new send schedule the
//!   workers all switch to at one instant ([`crate::plan::switch_rate`]).
//!
//! Why files rather than a pipe or a socket: the engine and the daemon are
//! separate processes, a restarted daemon adopts an engine already running
//! (a pipe would be gone with the old daemon), and a file is one `open` away
//! for any other tool. A line a second costs the aggregator one small write
//! (measured in benches/dashboard.sh: the engine's rate with a dashboard
//! watching is within the noise of the rate without).

use crate::plan::{Plan, RateStage};
use crate::stats::{EndpointStats, ErrorKind, FlowStats};
use crate::summary::{ScalingEvent, Second, percentile_ms};
use crate::thresholds::{EndpointView, FlowView, RunView, ThresholdResult, evaluate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

/// The live timeline, in the run directory.
pub const LIVE_FILE: &str = "live.ndjson";
/// Steering messages, in the run directory.
pub const CONTROL_FILE: &str = "control.ndjson";
/// Most VUs a manual change may ask for one unit (a typo's `1000000` is
/// refused rather than opening a million sockets).
pub const MAX_MANUAL_VUS: u32 = 100_000;
/// Most bytes of control lines read in one poll; the rest waits a second.
const CONTROL_CHUNK: u64 = 64 * 1024;

/// One line of `live.ndjson`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LiveSecond {
    /// The summary's timeline entry for this second, endpoints by name.
    #[serde(flatten)]
    pub second: Second,
    /// Per endpoint (by name): what the timeline line does not carry.
    pub live: BTreeMap<String, LiveEndpoint>,
    /// Requests and errors since the start (whole run so far).
    pub total_requests: u64,
    pub total_errors: u64,
    /// The scaling events decided in this second (autoscale or `manual`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scaling_events: Vec<ScalingEvent>,
    /// Every threshold judged on the totals so far (the final verdict is the summary's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<ThresholdResult>,
}

/// One endpoint's extras in a [`LiveSecond`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LiveEndpoint {
    /// Open model: the schedule's rate at this second's end, requests/s
    /// (after a `set_rate`, the rate set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rps: Option<f64>,
    /// Open model: this second's latency from the intended send time, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected: Option<Percentiles>,
    /// This second's failed requests by kind (`connect`, `status`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_kinds: BTreeMap<String, u64>,
    /// Each check's `[passes, fails]` since the start.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, [u64; 2]>,
    /// Open model: sends dropped and late in this second.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// One line of `control.ndjson`: a steering message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlLine {
    /// Set a load unit's VUs (an endpoint, or a flow by its name) over the
    /// whole run from now on; an open-model unit's most connections.
    SetVus { unit: String, vus: u32 },
    /// Set an open-model unit's rate (requests, or a flow's iterations, per
    /// second) from now to the end of the load: a constant rate, its
    /// `rate_stages` no longer move it.
    SetRate { unit: String, rate: f64 },
}

/// What a control line asks of its unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ask {
    Vus(u32),
    Rate(f64),
}

/// Where a manual change goes: the plan row and the name events use.
pub struct Target {
    pub endpoint: usize,
    pub name: String,
}

/// Finds the load unit a control line names, or says why it cannot apply.
pub fn resolve(plan: &Plan, line: &ControlLine) -> Result<(Target, Ask), String> {
    let (op, unit) = match line {
        ControlLine::SetVus { unit, .. } => ("set_vus", unit),
        ControlLine::SetRate { unit, .. } => ("set_rate", unit),
    };
    let row = plan
        .flows
        .iter()
        .find(|f| &f.name == unit)
        .map(|f| f.first)
        .or_else(|| {
            plan.endpoints
                .iter()
                .position(|e| e.unit && e.step.is_none() && &e.name == unit)
        });
    let Some(endpoint) = row else {
        return Err(format!(
            "{op} {unit}: no endpoint or flow of that name in this run"
        ));
    };
    let target = Target {
        endpoint,
        name: unit.clone(),
    };
    match *line {
        ControlLine::SetVus { vus, .. } => {
            if vus > MAX_MANUAL_VUS {
                return Err(format!(
                    "set_vus {unit}: {vus} VUs is over the {MAX_MANUAL_VUS} a manual change may ask"
                ));
            }
            if let Some(max) = plan.max_workers_here()
                && vus > max
            {
                return Err(format!(
                    "set_vus {unit}: {vus} VUs is over the run's max_workers ({max})"
                ));
            }
            Ok((target, Ask::Vus(vus)))
        }
        ControlLine::SetRate { rate, .. } => {
            check_rate(rate).map_err(|why| format!("set_rate {unit}: {why}"))?;
            if plan.endpoints[endpoint].open.is_none() {
                return Err(format!(
                    "set_rate {unit}: a closed-model unit (VUs, no rate); change its VUs instead"
                ));
            }
            Ok((target, Ask::Rate(rate)))
        }
    }
}

/// Why a rate asked live cannot be (the config's bounds for `rate`).
pub fn check_rate(rate: f64) -> Result<(), String> {
    use crate::config::limits::MAX_RATE;
    if !rate.is_finite() || rate <= 0.0 {
        return Err(format!("rate {rate}: must be a number above 0"));
    }
    if rate > MAX_RATE {
        return Err(format!(
            "rate {rate}: at most {MAX_RATE} requests per second"
        ));
    }
    Ok(())
}

/// Appends [`LiveSecond`]s to `live.ndjson`. A write that fails drops the
/// file (the log says so): the run goes on, the dashboard falls back to
/// `status.json`.
pub struct LiveWriter {
    out: Option<std::io::LineWriter<std::fs::File>>,
    /// Scaling events already written.
    events: usize,
}

impl LiveWriter {
    pub fn create(path: PathBuf) -> (LiveWriter, Option<String>) {
        match std::fs::File::create(&path) {
            Ok(f) => (
                LiveWriter {
                    out: Some(std::io::LineWriter::new(f)),
                    events: 0,
                },
                None,
            ),
            Err(e) => (
                LiveWriter {
                    out: None,
                    events: 0,
                },
                Some(format!("cannot create {}: {e}", path.display())),
            ),
        }
    }

    /// Writes one second; returns a line for the log if the file failed.
    pub fn write(&mut self, line: &LiveSecond) -> Option<String> {
        let w = self.out.as_mut()?;
        let r = serde_json::to_writer(&mut *w, line)
            .map_err(std::io::Error::from)
            .and_then(|()| w.write_all(b"\n"));
        match r {
            Ok(()) => None,
            Err(e) => {
                self.out = None;
                Some(format!(
                    "cannot write {LIVE_FILE}: {e}; the live view stops"
                ))
            }
        }
    }

    /// The events not yet written (and marks them written).
    pub fn new_events(&mut self, all: &[ScalingEvent]) -> Vec<ScalingEvent> {
        let fresh = all.get(self.events..).unwrap_or_default().to_vec();
        self.events = all.len();
        fresh
    }
}

/// Reads control lines appended since the last poll.
pub struct ControlReader {
    path: PathBuf,
    offset: u64,
}

impl ControlReader {
    pub fn new(path: PathBuf) -> ControlReader {
        ControlReader { path, offset: 0 }
    }

    /// The complete lines appended since the last poll, each parsed or the
    /// reason it could not be. No file yet is no lines.
    pub fn poll(&mut self) -> Vec<Result<ControlLine, String>> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return vec![];
        };
        let len = f.metadata().map_or(0, |m| m.len());
        if len <= self.offset || f.seek(SeekFrom::Start(self.offset)).is_err() {
            return vec![];
        }
        let mut buf = Vec::new();
        if f.take(CONTROL_CHUNK).read_to_end(&mut buf).is_err() {
            return vec![];
        }
        // Only whole lines; a line being written waits for the next poll.
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            if buf.len() as u64 >= CONTROL_CHUNK {
                self.offset += buf.len() as u64; // one over-long line: skipped
                return vec![Err(format!(
                    "{CONTROL_FILE}: a line over {CONTROL_CHUNK} bytes, skipped"
                ))];
            }
            return vec![];
        };
        self.offset += end as u64 + 1;
        buf[..end]
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(|l| {
                serde_json::from_slice(l).map_err(|e| {
                    format!(
                        "{CONTROL_FILE}: cannot apply {}: {e}",
                        String::from_utf8_lossy(l)
                    )
                })
            })
            .collect()
    }
}

/// An open-model schedule's rate at `t` (stages ramp linearly from the
/// previous target, starting from 0; `None` past the end).
pub fn rate_at(stages: &[RateStage], t: Duration) -> Option<f64> {
    let (mut from, mut start) = (0.0, Duration::ZERO);
    for s in stages {
        let end = start + s.duration;
        if t < end {
            let f = (t - start).as_secs_f64() / s.duration.as_secs_f64();
            return Some(from + (s.target - from) * f);
        }
        from = s.target;
        start = end;
    }
    (t == start && !stages.is_empty()).then_some(from)
}

/// One endpoint's extras for second `t` (from 0): `second` is what it did
/// in that second, `total` since the start.
pub fn endpoint_extras(
    plan: &Plan,
    i: usize,
    t: u64,
    second: &EndpointStats,
    total: &EndpointStats,
    schedule: Option<&[RateStage]>,
) -> LiveEndpoint {
    let e = &plan.endpoints[i];
    let mut error_kinds = BTreeMap::new();
    for (k, &n) in ErrorKind::ALL.iter().zip(&second.error_kinds) {
        if n > 0 {
            error_kinds.insert(k.as_str().to_string(), n);
        }
    }
    let checks = e
        .checks
        .iter()
        .zip(&total.checks)
        .map(|((name, _), &pf)| (name.clone(), pf))
        .collect();
    let corrected = second
        .corrected
        .as_ref()
        .filter(|h| !h.is_empty())
        .map(|h| {
            let v = h.view();
            Percentiles {
                p50: percentile_ms(&v, 50.0),
                p95: percentile_ms(&v, 95.0),
                p99: percentile_ms(&v, 99.0),
            }
        });
    LiveEndpoint {
        target_rps: schedule.and_then(|s| rate_at(s, Duration::from_secs(t + 1))),
        corrected,
        error_kinds,
        checks,
        dropped: second.dropped,
        late: second.late,
    }
}

/// Every threshold judged on the totals so far, at `end` seconds.
pub fn judge(
    plan: &Plan,
    totals: &[EndpointStats],
    flow_totals: &[FlowStats],
    vus: &[u32],
    end: u64,
) -> Vec<ThresholdResult> {
    if plan.thresholds.is_empty() {
        return vec![];
    }
    let views: Vec<EndpointView<'_>> = (0..totals.len())
        .map(|i| EndpointView::in_plan(plan, i, &totals[i]))
        .collect();
    let flows: Vec<FlowView<'_>> = plan
        .flows
        .iter()
        .zip(flow_totals)
        .map(|(f, stats)| FlowView {
            name: &f.name,
            stats,
        })
        .collect();
    let run = RunView {
        seconds: end as f64,
        vus,
        vus_max: plan.vus_max,
        flows: &flows,
    };
    plan.thresholds
        .iter()
        .map(|t| evaluate(t, &views, &run))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_ramps_from_the_previous_target() {
        let stages = [
            RateStage {
                duration: Duration::from_secs(10),
                target: 100.0,
            },
            RateStage {
                duration: Duration::ZERO,
                target: 50.0,
            },
            RateStage {
                duration: Duration::from_secs(10),
                target: 50.0,
            },
        ];
        assert_eq!(rate_at(&stages, Duration::from_secs(0)), Some(0.0));
        assert_eq!(rate_at(&stages, Duration::from_secs(5)), Some(50.0));
        assert_eq!(rate_at(&stages, Duration::from_secs(10)), Some(50.0));
        assert_eq!(rate_at(&stages, Duration::from_secs(20)), Some(50.0));
        assert_eq!(rate_at(&stages, Duration::from_secs(21)), None);
    }

    /// What the engine refuses itself (the daemon checks first, but any
    /// tool may append to `control.ndjson`): a rate for a closed-model
    /// unit, a rate not above 0 or over the config's bound.
    #[test]
    fn a_rate_is_asked_only_of_an_open_model_unit_within_bounds() {
        let c = crate::config::Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "duration": "10s",
                "stages": [{"duration": "10s", "target": 2}],
                "endpoints": [{"name": "open", "path": "/a", "rate": 50},
                              {"name": "closed", "path": "/b"}],
                "flows": [{"name": "shop", "rate_stages": [{"duration": "10s", "target": 5}],
                           "steps": [{"name": "s1", "path": "/c"}, {"name": "s2", "path": "/d"}]},
                          {"name": "browse", "steps": [{"name": "b1", "path": "/e"}]}]}"#,
        )
        .unwrap();
        let plan = crate::run::prepare_with(&c, false).unwrap();
        let ask = |unit: &str, rate: f64| {
            resolve(
                &plan,
                &ControlLine::SetRate {
                    unit: unit.into(),
                    rate,
                },
            )
            .map(|(t, a)| (t.endpoint, a))
        };
        assert_eq!(ask("open", 200.0), Ok((0, Ask::Rate(200.0))));
        // a flow is steered on its first step's row, where its schedule is
        assert_eq!(ask("shop", 7.5), Ok((2, Ask::Rate(7.5))));
        assert!(plan.endpoints[2].open.is_some());
        let refused = [
            ("closed", 10.0, "closed-model"),
            ("browse", 10.0, "closed-model"),
            ("open", 0.0, "above 0"),
            ("open", -1.0, "above 0"),
            ("open", f64::NAN, "above 0"),
            ("open", 2e7, "at most"),
            ("nope", 10.0, "no endpoint or flow"),
        ];
        for (unit, rate, want) in refused {
            let why = ask(unit, rate).unwrap_err();
            assert!(
                why.starts_with("set_rate ") && why.contains(want),
                "{unit} {rate}: {why}"
            );
        }
    }

    #[test]
    fn control_lines_are_read_whole_and_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONTROL_FILE);
        let mut r = ControlReader::new(path.clone());
        assert!(r.poll().is_empty(), "no file is no lines");
        std::fs::write(
            &path,
            "{\"op\":\"set_vus\",\"unit\":\"a\",\"vus\":3}\n{\"op\":\"set_vus\",\"un",
        )
        .unwrap();
        let got = r.poll();
        assert_eq!(
            got,
            vec![Ok(ControlLine::SetVus {
                unit: "a".into(),
                vus: 3
            })]
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"it\":\"b\",\"vus\":1}\n{\"op\":\"set_rate\"}\n")
            .unwrap();
        let got = r.poll();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            Ok(ControlLine::SetVus {
                unit: "b".into(),
                vus: 1
            })
        );
        assert!(got[1].as_ref().unwrap_err().contains("set_rate"));
        assert!(r.poll().is_empty());
    }
}
