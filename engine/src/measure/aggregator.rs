//! The aggregator: the one thread that sees the whole run.
//!
//! It merges the workers' per-second reports into the timeline and the
//! whole-run totals, returns the emptied statistics to their worker for
//! reuse, refreshes `status.json` and the live progress line every second,
//! appends each second to `live.ndjson` and applies the steering read from
//! `control.ndjson` (see [`crate::live`]), and passes a stop request on to
//! the workers. It is off the per-request
//! path: workers only ever `send` to it.
//!
//! One job past 800 lines: the run's second-by-second state (pending
//! reports, totals, timeline, peak VUs) and what acts on each closed
//! second (autoscale, aborting thresholds, steering) share that state;
//! the acting parts are already rooms of their own (`scaler`, `live`,
//! `thresholds`) and are called from here.

use crate::live::{Ask, ControlReader, LiveSecond, LiveWriter, Target};
use crate::plan::{Plan, RateStage, switch_rate};
use crate::rundir::{RunDir, now_rfc3339};
use crate::scaler::Scaler;
use crate::stats::{EndpointStats, FlowStats, Hist};
use crate::status::{Progress, Status};
use crate::summary::{
    EndpointSecondHistograms, MetricSecond, RateChange, ScalingEvent, Second, SecondEndpoint,
    SecondFlow, SecondHistograms, encode_hist, percentile_ms,
};
use crate::thresholds::{EndpointView, FlowView, RunView, evaluate};
use crate::worker::{Control, Msg, Report, WorkerHandle};
use crossbeam_channel::{Receiver, Sender, select};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How far ahead of now a live rate change takes effect, so every worker
/// has it before then and all switch at the same instant (a worker reads its
/// control channel at each turn of its loop, woken at once by the message).
const RATE_LEAD: Duration = Duration::from_millis(100);
/// How often a non-terminal stderr gets a progress line.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// A request from outside the engine (a signal) to end the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Halt {
    /// Stop sending; requests in flight get the graceful stop. Says why.
    Stop(String),
    /// End now: requests in flight are `interrupted`. Says why.
    Abort(String),
}

/// What a run produced, for the summary.
pub struct Outcome {
    /// Whole-run counts per endpoint.
    pub endpoints: Vec<EndpointStats>,
    /// Whole-run iterations per flow.
    pub flows: Vec<FlowStats>,
    pub timeline: Vec<Second>,
    /// VUs per endpoint at the end of the load phase.
    pub final_vus: Vec<u32>,
    /// The most VUs per endpoint at once: each second's per-worker peaks
    /// summed, the highest second (an upper bound when workers peak at
    /// different moments of a second).
    pub peak_vus: Vec<u32>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// Seconds of load (stages run, up to a stop), the denominator of rps.
    pub load_seconds: f64,
    /// Seconds until the last worker ended (graceful stop included).
    pub elapsed_seconds: f64,
    pub scaling_events: Vec<ScalingEvent>,
    /// Index (in the plan) of the threshold whose failure stopped the run.
    pub aborted_by: Option<usize>,
    /// Why the run was ended at once (a second signal), if it was.
    pub halted: Option<String>,
    /// The engine failed during the run (a worker panicked): why.
    pub failed: Option<String>,
}

/// Where the aggregator sends what it learns, besides the outcome.
pub struct Sinks<'a> {
    pub dir: &'a RunDir,
    /// The last status written; shared with the signal handler, which
    /// writes it as `stopped` if the process must exit at once.
    pub status: &'a Mutex<Status>,
    /// Live progress on stderr.
    pub progress: bool,
}

struct Pending {
    stats: Vec<EndpointStats>,
    flows: Vec<FlowStats>,
    vus: Vec<u32>,
    peak_vus: Vec<u32>,
    /// A worker's last report is in this second: it may be shorter than 1 s.
    partial: bool,
}

pub struct Aggregator<'a> {
    plan: &'a Plan,
    workers: &'a [WorkerHandle],
    recycle: Vec<Sender<Vec<EndpointStats>>>,
    start: Instant,
    sinks: Sinks<'a>,
    /// Per worker: the last second it reported, and whether it has ended.
    reported: Vec<u64>,
    finished: Vec<bool>,
    pending: BTreeMap<u64, Pending>,
    totals: Vec<EndpointStats>,
    flow_totals: Vec<FlowStats>,
    /// The seconds so far, each endpoint's by plan index; named maps are
    /// built once at the end. A map per second cost ~1.3 KB and grew RSS 9 %
    /// over 10 minutes (scripts/soak.sh); a Vec is ~80 B per endpoint.
    timeline: Vec<(Second, Vec<SecondEndpoint>)>,
    final_vus: Vec<u32>,
    peak_vus: Vec<u32>,
    stop_at: Option<Instant>,
    stopped: Option<String>,
    aborted_by: Option<usize>,
    halted: Option<String>,
    failed: Option<String>,
    /// When a worker found the request budget spent (all told at once).
    spent_at: Option<Instant>,
    scaler: Scaler,
    tty: bool,
    last_plain: Instant,
    /// A shard writes each second's histograms here, for an exact merge.
    second_histograms: Option<std::io::BufWriter<std::fs::File>>,
    /// `live.ndjson` and `control.ndjson` (see [`crate::live`]).
    live: LiveWriter,
    control: ControlReader,
    /// Per open-model endpoint, its send schedule as it now stands (the
    /// plan's, until a `set_rate` changes it).
    schedules: Vec<Option<Arc<[RateStage]>>>,
}

impl<'a> Aggregator<'a> {
    pub fn new(
        plan: &'a Plan,
        workers: &'a [WorkerHandle],
        recycle: Vec<Sender<Vec<EndpointStats>>>,
        start: Instant,
        sinks: Sinks<'a>,
    ) -> Aggregator<'a> {
        let n = plan.endpoints.len();
        let (live, live_error) = LiveWriter::create(sinks.dir.file(crate::live::LIVE_FILE));
        if let Some(e) = live_error {
            let _ = sinks.dir.log(&e);
        }
        let control = ControlReader::new(sinks.dir.file(crate::live::CONTROL_FILE));
        Aggregator {
            plan,
            workers,
            recycle,
            start,
            reported: vec![0; workers.len()],
            finished: vec![false; workers.len()],
            pending: BTreeMap::new(),
            totals: (0..n).map(|_| EndpointStats::new()).collect(),
            flow_totals: plan.flows.iter().map(|_| FlowStats::default()).collect(),
            timeline: Vec::new(),
            final_vus: vec![0; n],
            peak_vus: vec![0; n],
            stop_at: None,
            stopped: None,
            aborted_by: None,
            halted: None,
            failed: None,
            spent_at: None,
            scaler: Scaler::new(plan),
            tty: sinks.progress && std::io::stderr().is_terminal(),
            last_plain: start,
            second_histograms: None,
            live,
            control,
            schedules: plan
                .endpoints
                .iter()
                .map(|e| e.open.as_ref().map(|o| o.stages.clone().into()))
                .collect(),
            sinks,
        }
        .with_second_histograms()
    }

    /// A shard's run keeps each second's histograms (`timeline-histograms.ndjson`).
    fn with_second_histograms(mut self) -> Self {
        if self.plan.shard.is_some() {
            let path = self.sinks.dir.file(crate::run::TIMELINE_HISTOGRAMS_FILE);
            match std::fs::File::create(&path) {
                Ok(f) => self.second_histograms = Some(std::io::BufWriter::new(f)),
                Err(e) => self.lose_second_histograms("create", &e),
            }
        }
        self
    }

    /// The histograms file cannot be written: it goes (half a file would be
    /// worse than none: merge falls back for the whole shard), and the log says so.
    fn lose_second_histograms(&mut self, what: &str, e: &std::io::Error) {
        self.second_histograms = None;
        let _ = std::fs::remove_file(self.sinks.dir.file(crate::run::TIMELINE_HISTOGRAMS_FILE));
        self.log(&format!(
            "cannot {what} {}: {e}; a merge of this shard gives per-second percentiles as requests-weighted means",
            crate::run::TIMELINE_HISTOGRAMS_FILE
        ));
    }

    /// Writes second `t`'s histograms (a shard's run); `endpoints` has each
    /// endpoint's, encoded as [`Aggregator::push_second`] built them.
    fn write_second_histograms(
        &mut self,
        t: u64,
        endpoints: BTreeMap<String, EndpointSecondHistograms>,
        p: &Pending,
    ) {
        let Some(w) = self.second_histograms.as_mut() else {
            return;
        };
        let mut line = SecondHistograms {
            t,
            endpoints,
            ..Default::default()
        };
        for (f, fs) in self.plan.flows.iter().zip(&p.flows) {
            if !fs.duration.is_empty() {
                line.flows.insert(f.name.clone(), encode_hist(&fs.duration));
            }
        }
        let written = serde_json::to_writer(&mut *w, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| w.write_all(b"\n"));
        if let Err(e) = written {
            self.lose_second_histograms("write", &e);
        }
    }

    /// Runs until every worker has sent its last report.
    pub fn run(mut self, reports: Receiver<Msg>, stop: Receiver<Halt>) -> Outcome {
        let mut next_status = self.start;
        while self.finished.iter().any(|f| !f) {
            let timeout = next_status.saturating_duration_since(Instant::now());
            select! {
                recv(reports) -> msg => match msg {
                    Ok(Msg::Report(r)) => self.on_report(r),
                    Ok(Msg::Log(line)) => self.log(&line),
                    Ok(Msg::Spent) => self.spent(),
                    Ok(Msg::Failed(why)) => self.failed(why),
                    Err(_) => break, // every worker is gone
                },
                recv(stop) -> halt => match halt {
                    Ok(Halt::Stop(reason)) => self.stop(reason),
                    Ok(Halt::Abort(reason)) => self.abort(reason),
                    Err(_) => {}
                },
                default(timeout) => {}
            }
            if Instant::now() >= next_status {
                self.steer();
                self.refresh_status();
                next_status += Duration::from_secs(1);
            }
        }
        let end = Instant::now();
        self.flush_pending(true, end);
        if let Some(mut w) = self.second_histograms.take()
            && let Err(e) = w.flush()
        {
            self.lose_second_histograms("write", &e);
        }
        if self.tty {
            eprintln!();
        }
        let mut load_end = self.load_end();
        if self.spent_at.is_some() {
            // the workers ended early, once the budget's last request ended
            load_end = load_end.min(end);
        }
        Outcome {
            endpoints: self.totals,
            flows: self.flow_totals,
            timeline: self
                .timeline
                .into_iter()
                .map(|(mut second, per_endpoint)| {
                    let names = self.plan.endpoints.iter().map(|e| e.name.clone());
                    second.endpoints = names.zip(per_endpoint).collect();
                    second
                })
                .collect(),
            final_vus: self.final_vus,
            peak_vus: self.peak_vus,
            stopped: self.stopped,
            load_seconds: (load_end - self.start).as_secs_f64().max(1e-3),
            elapsed_seconds: (end - self.start).as_secs_f64(),
            scaling_events: self.scaler.events,
            aborted_by: self.aborted_by,
            halted: self.halted,
            failed: self.failed,
        }
    }

    /// A worker panicked: what it measured is in its last report; the run
    /// stops and ends `failed`.
    fn failed(&mut self, why: String) {
        self.log(&format!("engine failure: {why}"));
        self.failed.get_or_insert_with(|| why.clone());
        self.stop(format!("engine failure: {why}"));
    }

    /// When the load ends (or ended): at the stages' end, or at a stop. A
    /// spent request budget ends it when the workers end.
    fn load_end(&self) -> Instant {
        let planned = self.start + self.plan.duration;
        self.stop_at.unwrap_or(planned).min(planned)
    }

    /// Ends the run at once: workers count what is in flight as interrupted.
    fn abort(&mut self, reason: String) {
        if self.halted.is_some() {
            return;
        }
        self.log(&format!("ending at once: {reason}"));
        if self.stop_at.is_none() {
            self.stop_at = Some(Instant::now());
            self.stopped = Some(reason.clone());
        }
        self.halted = Some(reason);
        for w in self.workers {
            w.send(Control::Abort);
        }
    }

    /// A worker found the request budget spent: every worker finishes with
    /// the tickets it holds, so one with none left (or no VUs) ends now.
    fn spent(&mut self) {
        if self.spent_at.is_some() {
            return;
        }
        self.spent_at = Some(Instant::now());
        if let Some(n) = self.plan.requests {
            self.log(&format!(
                "all {n} requests started by {:.2}s; finishing those in flight",
                self.start.elapsed().as_secs_f64()
            ));
        }
        for w in self.workers {
            w.send(Control::Spent);
        }
    }

    fn stop(&mut self, reason: String) {
        if self.stop_at.is_some() {
            return;
        }
        self.log(&format!("stopping: {reason}"));
        self.stop_at = Some(Instant::now());
        self.stopped = Some(reason);
        for w in self.workers {
            w.send(Control::Stop);
        }
    }

    fn log(&self, line: &str) {
        if let Err(e) = self.sinks.dir.log(line) {
            eprintln!("userflux-engine: cannot write logs.txt: {e}");
        }
    }

    fn on_report(&mut self, mut r: Report) {
        let n = self.plan.endpoints.len();
        let flows = self.plan.flows.len();
        let p = self.pending.entry(r.second).or_insert_with(|| Pending {
            stats: (0..n).map(|_| EndpointStats::new()).collect(),
            flows: (0..flows).map(|_| FlowStats::default()).collect(),
            vus: vec![0; n],
            peak_vus: vec![0; n],
            partial: false,
        });
        for (acc, s) in p.stats.iter_mut().zip(&r.stats) {
            acc.add(s);
        }
        for (acc, f) in p.flows.iter_mut().zip(&r.flows) {
            acc.add(f);
        }
        if !r.last {
            for (acc, v) in p.vus.iter_mut().zip(&r.vus) {
                *acc += v;
            }
        }
        for (acc, v) in p.peak_vus.iter_mut().zip(&r.peak_vus) {
            *acc += v;
        }
        p.partial |= r.last;
        self.reported[r.worker] = r.second;
        if r.last {
            self.finished[r.worker] = true;
        }
        for s in &mut r.stats {
            s.reset();
        }
        // The worker may have ended; then its statistics are simply dropped.
        let _ = self.recycle[r.worker].try_send(r.stats);
        self.flush_pending(false, Instant::now());
    }

    /// Moves every second that all workers have reported into the timeline
    /// (all of them when `all`).
    fn flush_pending(&mut self, all: bool, now: Instant) {
        while let Some((&second, _)) = self.pending.first_key_value() {
            let complete = self
                .reported
                .iter()
                .zip(&self.finished)
                .all(|(&r, &f)| f || r >= second);
            if !(all || complete) {
                break;
            }
            let p = self.pending.remove(&second).expect("present");
            for (peak, v) in self.peak_vus.iter_mut().zip(&p.peak_vus) {
                *peak = (*peak).max(*v);
            }
            // The stub after the last whole second, when nothing completed in it.
            if p.partial && p.stats.iter().all(|s| s.requests == 0) {
                for (acc, s) in self.totals.iter_mut().zip(&p.stats) {
                    acc.add(s); // bytes may still have moved
                }
                for (acc, f) in self.flow_totals.iter_mut().zip(&p.flows) {
                    acc.add(f); // iterations cut off at the end
                }
                continue;
            }
            let start = second.saturating_sub(1);
            // A partial second (cut by a stop, the load's end, or the graceful
            // stop's tail after it) is a rate over the part the run covered,
            // and says how much that was (`covered`): a chart marks it rather
            // than draw a collapse or a spike that did not happen (issue #28).
            let span = if p.partial {
                (now - self.start)
                    .as_secs_f64()
                    .clamp(start as f64 + 1e-3, second as f64)
                    - start as f64
            } else {
                1.0
            };
            self.push_second(start, span, p);
        }
    }

    fn push_second(&mut self, t: u64, span: f64, p: Pending) {
        let shard = self.second_histograms.is_some();
        let mut encoded = BTreeMap::new();
        let mut all = Hist::new();
        let mut endpoints = Vec::with_capacity(p.stats.len());
        let mut extras = Vec::with_capacity(p.stats.len());
        let (mut requests, mut errors) = (0, 0);
        for (i, s) in p.stats.iter().enumerate() {
            let latency = s.latency.view();
            all.add(&s.latency);
            requests += s.requests;
            errors += s.errors;
            let vus = if p.partial && p.vus[i] == 0 {
                self.final_vus[i]
            } else {
                p.vus[i]
            };
            let mut server_timing = BTreeMap::new();
            let mut st_encoded = BTreeMap::new();
            for (name, h) in s.server_timing.iter() {
                server_timing.insert(name.to_string(), MetricSecond::of(&h.view()));
                if shard {
                    st_encoded.insert(name.to_string(), encode_hist(h));
                }
            }
            if shard && (!s.latency.is_empty() || !st_encoded.is_empty()) {
                let h = EndpointSecondHistograms {
                    latency: (!s.latency.is_empty()).then(|| encode_hist(&s.latency)),
                    server_timing: st_encoded,
                };
                encoded.insert(self.plan.endpoints[i].name.clone(), h);
            }
            endpoints.push(SecondEndpoint {
                requests: s.requests,
                errors: s.errors,
                rps: s.requests as f64 / span,
                p50: percentile_ms(&latency, 50.0),
                p95: percentile_ms(&latency, 95.0),
                p99: percentile_ms(&latency, 99.0),
                vus,
                server_timing,
            });
            drop(latency);
            self.totals[i].add(s);
            extras.push(crate::live::endpoint_extras(
                self.plan,
                i,
                t,
                s,
                &self.totals[i],
                self.schedules[i].as_deref(),
            ));
        }
        self.write_second_histograms(t, encoded, &p);
        let all = all.view();
        if !p.partial {
            if self.plan.fault == Some(crate::fault::Fault::AggregatorPanic) && t + 1 == 2 {
                panic!("injected by {}=aggregator-panic", crate::fault::FAULT_ENV);
            }
            self.final_vus.clone_from(&p.vus);
            self.autoscale(t + 1, &p.stats, &p.flows);
            self.check_aborts(t + 1);
        }
        let vus = endpoints.iter().map(|e| e.vus).sum();
        // A flow's VUs are its first step's; every step of it shows them.
        let mut flows = BTreeMap::new();
        for (f, fs) in self.plan.flows.iter().zip(&p.flows) {
            let flow_vus = endpoints[f.first].vus;
            for e in &mut endpoints[f.first..f.first + f.steps] {
                e.vus = flow_vus;
            }
            flows.insert(
                f.name.clone(),
                SecondFlow {
                    iterations: fs.iterations,
                    failed: fs.failed,
                    rate: fs.iterations as f64 / span,
                    p50: percentile_ms(&fs.duration.view(), 50.0),
                    p99: percentile_ms(&fs.duration.view(), 99.0),
                    vus: flow_vus,
                },
            );
        }
        for (acc, f) in self.flow_totals.iter_mut().zip(&p.flows) {
            acc.add(f);
        }
        let second = Second {
            t,
            covered: (span < 1.0).then_some(span),
            requests,
            errors,
            rps: requests as f64 / span,
            p50: percentile_ms(&all, 50.0),
            p95: percentile_ms(&all, 95.0),
            p99: percentile_ms(&all, 99.0),
            vus,
            endpoints: BTreeMap::new(),
            flows,
        };
        self.write_live(&second, &endpoints, extras);
        self.timeline.push((second, endpoints));
    }

    /// Appends second `second` to `live.ndjson`, endpoints named.
    fn write_live(
        &mut self,
        second: &Second,
        endpoints: &[SecondEndpoint],
        extras: Vec<crate::live::LiveEndpoint>,
    ) {
        let names = || self.plan.endpoints.iter().map(|e| e.name.clone());
        let mut vus = Vec::new();
        if !self.plan.thresholds.is_empty() {
            vus.extend(self.timeline.iter().map(|(s, _)| s.vus));
            vus.push(second.vus);
        }
        let line = LiveSecond {
            second: Second {
                endpoints: names().zip(endpoints.iter().cloned()).collect(),
                ..second.clone()
            },
            live: names().zip(extras).collect(),
            total_requests: self.totals.iter().map(|s| s.requests).sum(),
            total_errors: self.totals.iter().map(|s| s.errors).sum(),
            scaling_events: self.live.new_events(&self.scaler.events),
            thresholds: crate::live::judge(
                self.plan,
                &self.totals,
                &self.flow_totals,
                &vus,
                second.t + 1,
            ),
        };
        if let Some(e) = self.live.write(&line) {
            self.log(&e);
        }
    }

    /// Applies the steering lines appended to `control.ndjson` since the
    /// last second: a VU change goes to the workers like an autoscale
    /// decision and is recorded as a scaling event with reason `manual`.
    fn steer(&mut self) {
        for line in self.control.poll() {
            let applied = line.and_then(|l| {
                let running = self.stop_at.is_none() && self.start.elapsed() < self.plan.duration;
                if !running {
                    return Err(format!("{l:?}: the load has ended; not applied"));
                }
                crate::live::resolve(self.plan, &l)
            });
            let (target, ask) = match applied {
                Ok(x) => x,
                Err(why) => {
                    self.log(&format!("steering refused: {why}"));
                    continue;
                }
            };
            let e = match ask {
                Ask::Vus(to) => {
                    let from = self
                        .scaler
                        .workers(target.endpoint)
                        .unwrap_or(self.final_vus[target.endpoint]);
                    let t = self.start.elapsed().as_secs_f64();
                    let e = self
                        .scaler
                        .manual(target.endpoint, target.name, from, to, t);
                    for w in self.workers {
                        w.send(Control::SetVus {
                            endpoint: target.endpoint,
                            total: to,
                        });
                    }
                    e
                }
                Ask::Rate(to) => match self.set_rate(target, to) {
                    Ok(e) => e,
                    Err(why) => {
                        self.log(&format!("steering refused: {why}"));
                        continue;
                    }
                },
            };
            let line = match e.rate {
                Some(r) => format!(
                    "scaling {} {:.1} → {:.1} req/s at {:.1}s: {}",
                    e.endpoint, r.from, r.to, e.t, e.reason
                ),
                None => format!(
                    "scaling {} {} → {} at {:.1}s: {}",
                    e.endpoint, e.from, e.to, e.t, e.reason
                ),
            };
            self.log(&line);
            if self.tty {
                eprint!("\r\x1b[2K{line}\n");
            } else if self.sinks.progress {
                eprintln!("{line}");
            }
        }
    }

    /// A live rate change: the new schedule takes effect [`RATE_LEAD`] from
    /// now, the same instant on every worker (each has its copy by then, the
    /// control channel wakes it at once); sends before it keep their times.
    fn set_rate(&mut self, target: Target, to: f64) -> Result<ScalingEvent, String> {
        let Some(current) = self.schedules[target.endpoint].clone() else {
            return Err(format!("set_rate {}: not an open-model unit", target.name));
        };
        let at = self.start.elapsed() + RATE_LEAD;
        if at >= self.plan.duration {
            return Err(format!(
                "set_rate {}: the load ends before the change could take effect",
                target.name
            ));
        }
        // mid-ramp the rate it had reached, to the thousandth (as the log shows it)
        let from = (crate::live::rate_at(&current, at).unwrap_or(0.0) * 1000.0).round() / 1000.0;
        let stages: Arc<[RateStage]> = switch_rate(&current, at, to, self.plan.duration).into();
        self.schedules[target.endpoint] = Some(stages.clone());
        for w in self.workers {
            w.send(Control::SetRate {
                endpoint: target.endpoint,
                stages: stages.clone(),
            });
        }
        let vus = self.final_vus[target.endpoint];
        Ok(self
            .scaler
            .manual_rate(target.name, vus, RateChange { from, to }, at.as_secs_f64()))
    }

    /// Stops the run when a threshold with `abort_on_fail` fails, past its
    /// `delay_abort_eval`, on the totals so far.
    fn check_aborts(&mut self, end: u64) {
        if self.stop_at.is_some() {
            return;
        }
        let now = Duration::from_secs(end);
        let views: Vec<EndpointView<'_>> = (0..self.totals.len())
            .map(|i| EndpointView::in_plan(self.plan, i, &self.totals[i]))
            .collect();
        let flows: Vec<FlowView<'_>> = self
            .plan
            .flows
            .iter()
            .zip(&self.flow_totals)
            .map(|(f, stats)| FlowView {
                name: &f.name,
                stats,
            })
            .collect();
        let failed = self.plan.thresholds.iter().enumerate().find_map(|(i, t)| {
            if !t.abort_on_fail || now < t.delay_abort_eval {
                return None;
            }
            let vus: Vec<u32> = self.timeline.iter().map(|(s, _)| s.vus).collect();
            let run = RunView {
                seconds: end as f64,
                vus: &vus,
                vus_max: self.plan.vus_max,
                flows: &flows,
            };
            let r = evaluate(t, &views, &run);
            (!r.ok).then(|| {
                (
                    i,
                    format!(
                        "threshold {t} failed at {end}s (observed {})",
                        fmt_observed(r.observed)
                    ),
                )
            })
        });
        drop((views, flows));
        if let Some((i, reason)) = failed {
            self.aborted_by = Some(i);
            self.stop(reason);
        }
    }

    /// Runs the autoscaler at the end of second `end` while load is running.
    fn autoscale(&mut self, end: u64, stats: &[EndpointStats], flows: &[FlowStats]) {
        let running = self.stop_at.is_none() && Duration::from_secs(end) < self.plan.duration;
        if !running || !self.scaler.is_active() {
            return;
        }
        for change in self.scaler.on_second(self.plan, end, stats, flows) {
            for w in self.workers {
                w.send(Control::SetVus {
                    endpoint: change.endpoint,
                    total: change.total,
                });
            }
            let e = &change.event;
            let line = format!(
                "scaling {} {} → {} at {}s: {}",
                e.endpoint, e.from, e.to, e.t, e.reason
            );
            self.log(&line);
            if self.tty {
                eprint!("\r\x1b[2K{line}\n");
            } else if self.sinks.progress {
                eprintln!("{line}");
            }
        }
    }

    fn refresh_status(&mut self) {
        let elapsed = self.start.elapsed().as_secs_f64();
        let requests: u64 = self.totals.iter().map(|s| s.requests).sum();
        let errors: u64 = self.totals.iter().map(|s| s.errors).sum();
        let last = self.timeline.last().map(|(s, _)| s);
        let progress = Progress {
            elapsed_s: elapsed,
            duration_s: self.plan.duration.as_secs_f64(),
            requests,
            errors,
            rps: last.map_or(0.0, |s| s.rps),
            p99_ms: last.and_then(|s| s.p99),
            vus: last.map_or(0, |s| s.vus),
        };
        let line = progress_line(&progress);
        let snapshot = {
            let mut st = self.sinks.status.lock();
            st.progress = progress;
            st.updated_at = now_rfc3339();
            st.clone()
        };
        if let Err(e) = self.sinks.dir.write_json("status.json", &snapshot) {
            eprintln!("userflux-engine: cannot write status.json: {e}");
        }
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        } else if self.sinks.progress && self.last_plain.elapsed() >= PLAIN_PROGRESS_EVERY {
            self.last_plain = Instant::now();
            eprintln!("{line}");
        }
    }
}

fn fmt_observed(v: Option<f64>) -> String {
    v.map_or("nothing".into(), crate::report::number)
}

/// `[ 12s / 25s] 45123 req/s  p99 3.21 ms  errors 12 (0.03%)  VUs 32`
pub fn progress_line(p: &Progress) -> String {
    let rate = if p.requests == 0 {
        0.0
    } else {
        100.0 * p.errors as f64 / p.requests as f64
    };
    let p99 = p.p99_ms.map_or("-".to_string(), |v| format!("{v:.2} ms"));
    format!(
        "[{:>5.0}s / {:.0}s] {:>9.0} req/s  p99 {p99}  requests {}  errors {} ({rate:.2}%)  VUs {}",
        p.elapsed_s, p.duration_s, p.rps, p.requests, p.errors, p.vus
    )
}
