//! A worker: one thread pinned to a core, one `mio::Poll`, the connections
//! (VUs) it owns and its statistics. It shares nothing mutable; it hears
//! from the aggregator over a channel (woken by a `mio::Waker`) and sends it
//! a [`Report`] every second.
//!
//! This file is the loop, the control messages and the reports; `pool.rs`
//! is the VU pool (connections added, retired, parked for the open model)
//! and the request budget; `drive.rs` the policy over each connection's
//! events and timers (the connection's own I/O is [`crate::conn`]);
//! `record.rs` what a request is recorded as.

mod drive;
mod h2;
mod pool;
mod record;

use pool::{open_share, open_stride};

use crate::budget::{Budget, Tickets};
use crate::clock::Alarm;
use crate::conn::{Conn, Failure, State, Why};
use crate::open::OpenState;
use crate::plan::{Plan, RateStage};
use crate::plan::{steady_until, vus_at, worker_share};
use crate::samples::{SampleFile, SampleWriter};
use crate::stats::{EndpointStats, ErrorKind, FlowStats};
use crate::timer::TimerWheel;
use crate::timer::later;
use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Poll, Token, Waker};
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often VU targets are re-read while a stage ramps.
const CONTROL_TICK: Duration = Duration::from_millis(10);
/// One read buffer per worker, shared by its connections (bodies are not kept).
const READ_BUF: usize = 64 * 1024;
const WAKER: Token = Token(usize::MAX);
const ALARM: Token = Token(usize::MAX - 1);
/// How often a worker decides whether it is saturated (see [`Worker::stamped`]).
const LOAD_WINDOW: Duration = Duration::from_millis(10);

/// Aggregator → worker.
#[derive(Debug)]
pub enum Control {
    /// Stop sending; let in-flight requests finish within the graceful stop.
    Stop,
    /// End now: requests in flight are counted as `interrupted`.
    Abort,
    /// The run's request budget is spent: finish once this worker's own
    /// tickets are used.
    Spent,
    /// The autoscaler's VU count for an endpoint, over all workers.
    SetVus { endpoint: usize, total: u32 },
    /// An open-model endpoint's new send schedule (a live rate change, see
    /// [`crate::plan::switch_rate`]): the same as the old one up to the
    /// instant it takes effect, so every worker switches then, whenever it
    /// reads this.
    SetRate {
        endpoint: usize,
        stages: Arc<[RateStage]>,
    },
}

/// Worker → aggregator.
#[derive(Debug)]
pub enum Msg {
    Report(Report),
    /// A line for `logs.txt` (the first error of each kind, per worker).
    Log(String),
    /// This worker found the request budget empty.
    Spent,
    /// This worker panicked (the message says where); its last report follows.
    Failed(String),
}

/// A worker's counts for one interval.
#[derive(Debug)]
pub struct Report {
    pub worker: usize,
    /// The report for second `n` covers `[n-1, n)` of the run; the last one
    /// runs from `n-1` to the worker's end.
    pub second: u64,
    pub last: bool,
    pub stats: Vec<EndpointStats>,
    /// Per flow, its iterations in the interval.
    pub flows: Vec<FlowStats>,
    /// Active VUs per endpoint at the end of the interval.
    pub vus: Vec<u32>,
    /// The most VUs per endpoint this worker held at once in the interval.
    pub peak_vus: Vec<u32>,
}

/// The aggregator's handle on a running worker.
pub struct WorkerHandle {
    pub thread: JoinHandle<WorkerEnd>,
    pub control: Sender<Control>,
    pub waker: Arc<Waker>,
}

impl WorkerHandle {
    pub fn send(&self, c: Control) {
        // A worker that already ended has dropped its receiver; nothing to tell it.
        if self.control.send(c).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// What a worker hands back when its thread ends.
pub struct WorkerEnd {
    /// Samples written and the chunks of the samples file they are in.
    pub samples: Option<(u64, Vec<(u64, usize)>)>,
}

/// What every worker of a run writes into or takes from, besides its own state.
#[derive(Clone, Default)]
pub struct Shared {
    /// `samples.ndjson`, when sampling is on.
    pub samples: Option<Arc<SampleFile>>,
    /// The request budget, when the run has `requests`.
    pub budget: Option<Arc<Budget>>,
    /// `{{seq}}`, data set cursors and VU numbers.
    pub counters: Arc<crate::counters::Counters>,
}

/// Starts worker `id`, pinned to `core` when given.
pub fn spawn(
    id: usize,
    core: Option<core_affinity::CoreId>,
    plan: Arc<Plan>,
    start: Instant,
    to_aggregator: Sender<Msg>,
    recycled: Receiver<Vec<EndpointStats>>,
    shared: Shared,
) -> io::Result<WorkerHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let alarm = Alarm::new(poll.registry(), ALARM)?;
    let (control_tx, control_rx) = crossbeam_channel::unbounded();
    let thread = std::thread::Builder::new()
        .name(format!("userflux-worker-{id}"))
        .spawn(move || {
            if let Some(core) = core {
                core_affinity::set_for_current(core);
            }
            let endpoints = plan.endpoints.len();
            let mut w = Worker {
                id,
                poll,
                alarm,
                stamped: true,
                wheel: TimerWheel::new(start),
                start,
                conns: Vec::new(),
                gens: Vec::new(),
                free: Vec::new(),
                live: 0,
                active: vec![0; endpoints],
                peak: vec![0; endpoints],
                stats: (0..endpoints).map(|_| EndpointStats::new()).collect(),
                flow_stats: plan.flows.iter().map(|_| FlowStats::default()).collect(),
                rng: fastrand::Rng::with_seed(seed(id)),
                value: Vec::new(),
                scaled: plan
                    .endpoints
                    .iter()
                    .map(|e| e.autoscale.map(|_| e.initial_workers))
                    .collect(),
                logged: [false; ErrorKind::ALL.len()],
                grpc_why: String::new(),
                stopping: None,
                second: 1,
                open: plan
                    .endpoints
                    .iter()
                    .enumerate()
                    .map(|(ep, e)| open_share(&plan, e, id, ep))
                    .collect(),
                samples: shared.samples.map(|f| SampleWriter::new(f, seed(id))),
                tickets: shared.budget.map(Tickets::new),
                counters: shared.counters,
                spent: false,
                unread: Vec::new(),
                links: Vec::new(),
                link_gens: Vec::new(),
                link_free: Vec::new(),
                link_dirty: Vec::new(),
                link_unread: Vec::new(),
                h2_block: Vec::new(),
                h2_events: Vec::new(),
                plan,
                to_aggregator,
                recycled,
                control: control_rx,
            };
            // A panic must not lose the run: report what was measured, say
            // why, and let the aggregator stop the others (see `fault`).
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.run()));
            if ran.is_err() {
                let why = crate::fault::first().unwrap_or_else(|| "a worker panicked".into());
                let _ = w.to_aggregator.send(Msg::Failed(why));
                w.conns.clear();
                w.report(w.second, true);
            }
            WorkerEnd {
                samples: w.samples.take().map(SampleWriter::finish),
            }
        })?;
    Ok(WorkerHandle {
        thread,
        control: control_tx,
        waker,
    })
}

struct Worker {
    id: usize,
    poll: Poll,
    /// Wakes the loop for the next open-model send.
    alarm: Alarm,
    /// Whether the worker has room: it spent under 90 % of the last load
    /// window handling events. Then it reads with `recvmsg` and a response
    /// ends at its receive time, so neither its wake-up nor the time its loop
    /// takes to reach the socket counts as latency (both ~0.1 ms here,
    /// measured at 32 connections × 100 req/s). A saturated worker reads with
    /// plain `read` — recvmsg and its control message cost ~5 % of
    /// throughput — and, like every load generator, counts its own loop.
    stamped: bool,
    wheel: TimerWheel,
    start: Instant,
    /// A slab: the index is the connection's mio token.
    conns: Vec<Option<Conn>>,
    /// Per slot, bumped when a connection leaves it, so stale timers are ignored.
    gens: Vec<u32>,
    free: Vec<usize>,
    live: usize,
    /// Non-retiring connections per endpoint.
    active: Vec<u32>,
    /// The most of `active` per endpoint since the last report.
    peak: Vec<u32>,
    /// Per autoscaled endpoint, its VUs over all workers as last set.
    scaled: Vec<Option<u32>>,
    stats: Vec<EndpointStats>,
    flow_stats: Vec<FlowStats>,
    /// For templates' random values and `random` data rows.
    rng: fastrand::Rng,
    /// Scratch for a captured value.
    value: Vec<u8>,
    logged: [bool; ErrorKind::ALL.len()],
    /// The first failed gRPC call's `grpc-message`, until it is logged.
    grpc_why: String,
    /// Set once stopping: the deadline for in-flight requests.
    stopping: Option<Instant>,
    /// The second of the run the next report covers.
    second: u64,
    /// Per open-model endpoint, this worker's share of its schedule.
    open: Vec<Option<OpenState>>,
    samples: Option<SampleWriter>,
    /// This worker's share of the run's request budget, if it has one.
    tickets: Option<Tickets>,
    /// The budget is spent: no new request starts on this worker.
    spent: bool,
    /// Connections that used their read budget in the last turn and have
    /// more to read: (slot, generation, the peer had closed).
    unread: Vec<(usize, u32, bool)>,
    /// HTTP/2 connections shared by VUs (see `h2.rs`): a slab whose index
    /// is the link's mio token (with `h2::LINK_TOKEN` set), generations
    /// for stale timers, free slots, links with bytes to write before the
    /// next poll, links with more to read next turn.
    links: Vec<Option<crate::link::Link>>,
    link_gens: Vec<u32>,
    link_free: Vec<usize>,
    link_dirty: Vec<usize>,
    link_unread: Vec<(usize, u32, bool)>,
    /// Scratch: a templated request's HTTP/2 header block.
    h2_block: Vec<u8>,
    /// Scratch: a link read's events.
    h2_events: Vec<h2::LinkEvent>,
    plan: Arc<Plan>,
    /// The run's counters (`{{seq}}`, data cursors, VU numbers).
    counters: Arc<crate::counters::Counters>,
    to_aggregator: Sender<Msg>,
    recycled: Receiver<Vec<EndpointStats>>,
    control: Receiver<Control>,
}

/// A per-worker seed for sampling decisions, different on every run.
fn seed(id: usize) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(id);
    h.finish()
}

/// Whether a worker has room, judged every [`LOAD_WINDOW`] from the share
/// of the window it spent handling events (from a poll's return to the
/// next poll), the rest being spent waiting in `epoll_wait`.
struct Load {
    window: Instant,
    busy: Duration,
    /// When the last poll returned, if it returned events.
    handling: Option<Instant>,
}

impl Load {
    fn new(now: Instant) -> Load {
        Load {
            window: now,
            busy: Duration::ZERO,
            handling: None,
        }
    }

    /// A poll starts at `before`.
    fn polling(&mut self, before: Instant) {
        if let Some(t) = self.handling.take() {
            self.busy += before.saturating_duration_since(t);
        }
    }

    /// The poll returned at `after`, with events or not. When a window
    /// closes: whether the worker has room (busy under 90 % of it).
    fn polled(&mut self, after: Instant, events: bool) -> Option<bool> {
        if events {
            self.handling = Some(after);
        }
        let span = after.saturating_duration_since(self.window);
        if span < LOAD_WINDOW {
            return None;
        }
        let room = self.busy * 10 < span * 9;
        (self.window, self.busy) = (after, Duration::ZERO);
        Some(room)
    }
}

impl Worker {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut fired = Vec::new();
        let mut buf = vec![0u8; READ_BUF];
        let end = self.start + self.plan.duration;
        let mut next_control = self.start;
        let mut last_total = u32::MAX;
        self.preallocate(Instant::now());
        let mut load = Load::new(Instant::now());
        let mut waiter = crate::wait::Waiter::default();
        loop {
            let now = Instant::now();
            while let Ok(msg) = self.control.try_recv() {
                match msg {
                    Control::Stop => self.stop(now),
                    Control::Abort => {
                        self.stop(now);
                        self.stopping = Some(now);
                    }
                    Control::Spent => {
                        if self.tickets.as_ref().is_some_and(|t| t.held() == 0) {
                            self.spend(now);
                        }
                    }
                    Control::SetVus { endpoint, total } => {
                        self.scaled[endpoint] = Some(total);
                        let e = &self.plan.endpoints[endpoint];
                        let stride = open_stride(&self.plan, e) as usize;
                        let position = (self.id + self.plan.workers - endpoint % self.plan.workers)
                            % self.plan.workers;
                        if let Some(open) = self.open[endpoint].as_mut() {
                            open.cap = worker_share(total, stride, position, 0).max(1);
                        }
                        last_total = u32::MAX; // re-split at the next control step
                        next_control = now;
                    }
                    Control::SetRate { endpoint, stages } => {
                        // read before this turn's pump_open, which times the
                        // next send; a stopping worker sends nothing more
                        if self.stopping.is_none()
                            && let Some(open) = self.open[endpoint].as_mut()
                        {
                            open.reschedule(stages.to_vec());
                        }
                    }
                }
            }
            if self.stopping.is_none() && now >= next_control {
                let elapsed = now - self.start;
                let total = vus_at(&self.plan.stages, elapsed);
                if total != last_total {
                    self.adjust(total, now);
                    last_total = total;
                }
                let steady = steady_until(&self.plan.stages, elapsed);
                next_control =
                    self.start + steady.max(elapsed + CONTROL_TICK).min(self.plan.duration);
            }
            self.wheel.advance(now, &mut fired);
            for (tick, key) in fired.drain(..) {
                self.on_timer(tick, key, now);
            }
            self.read_on(&mut buf);
            self.h2_read_on(&mut buf);
            // Sends due before the end go out before it stops the load (a
            // wake-up just past the end dropped the schedule's last send).
            let next_send = if self.stopping.is_none() && !self.spent {
                self.pump_open(now)
            } else {
                None
            };
            if self.stopping.is_none() && now >= end {
                self.stop(now);
            }
            while now >= self.start + Duration::from_secs(self.second) {
                self.report(self.second, false);
                self.second += 1;
            }
            if let Some(deadline) = self.stopping
                && (self.live == 0 || now >= deadline)
            {
                break;
            }
            let mut until = self.start + Duration::from_secs(self.second);
            match self.stopping {
                Some(deadline) => until = until.min(deadline),
                None => until = until.min(next_control).min(end),
            }
            if let Some(t) = self.wheel.next_deadline() {
                until = until.min(t);
            }
            // what this turn queued on HTTP/2 links goes out, one write each
            self.h2_flush();
            let before = Instant::now();
            load.polling(before);
            let mut timeout = until.saturating_duration_since(before);
            if !self.unread.is_empty() {
                timeout = Duration::ZERO; // they read on in the next turn
            }
            if let Some(at) = next_send
                && let Some(t) = self.alarm.wait_for(at)
            {
                // Sends go out on time, not up to 1 ms late as with an epoll
                // timeout (measured with that: 179 of 2000 late at 500
                // req/s, corrected p50 0.5 ms above measured).
                timeout = timeout.min(t);
            }
            if let Err(e) = waiter.poll(&mut self.poll, &mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                self.log(format!("worker {}: poll failed: {e}; stopping", self.id));
                break;
            }
            if let Some(room) = load.polled(Instant::now(), !events.is_empty()) {
                self.stamped = room;
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {}
                    ALARM => self.alarm.rang(),
                    t if t.0 & h2::LINK_TOKEN != 0 => {
                        self.h2_event(t.0 & !h2::LINK_TOKEN, ev, &mut buf)
                    }
                    t => self.on_event(t.0, ev, &mut buf),
                }
            }
        }
        // A request still waiting for its response has no latency, but it
        // was sent: it counts as failed, so a stuck target is never reported
        // as a quiet one (a run against a server that never answers used to
        // end with "0 requests").
        let now = Instant::now();
        for idx in 0..self.conns.len() {
            if self.conns[idx]
                .as_ref()
                .is_some_and(|c| c.state == State::Awaiting)
            {
                let waited = now.saturating_duration_since(self.conn(idx).sent_at);
                let why = Why::Interrupted(waited);
                self.fail(idx, Failure::new(ErrorKind::Interrupted, why), now);
            }
        }
        // and a flow VU between its steps when the graceful stop ran out: its iteration was cut off
        for idx in 0..self.conns.len() {
            self.remove(idx);
        }
        self.conns.clear();
        self.links.clear();
        self.report(self.second, true);
    }

    /// Reads on from the connections that used their read budget in the
    /// last turn (see `READS_PER_TURN`), each within a new budget.
    fn read_on(&mut self, buf: &mut [u8]) {
        if self.unread.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.unread);
        for &(idx, generation, peer_closed) in &waiting {
            let awaiting = self.gens[idx] == generation
                && (self.conns[idx].as_ref()).is_some_and(|c| c.state == State::Awaiting);
            if awaiting {
                self.read_response(idx, buf, peer_closed);
            }
        }
    }

    fn report(&mut self, second: u64, last: bool) {
        if self.plan.fault == Some(crate::fault::Fault::WorkerPanic)
            && self.id == 0
            && second == 2
            && !last
        {
            panic!("injected by {}=worker-panic", crate::fault::FAULT_ENV);
        }
        let fresh = self.recycled.try_recv().unwrap_or_else(|_| {
            self.plan
                .endpoints
                .iter()
                .map(|_| EndpointStats::new())
                .collect()
        });
        let stats = std::mem::replace(&mut self.stats, fresh);
        let flows = self.flow_stats.iter_mut().map(std::mem::take).collect();
        let report = Report {
            worker: self.id,
            second,
            last,
            stats,
            flows,
            vus: self.active.clone(),
            peak_vus: std::mem::replace(&mut self.peak, self.active.clone()),
        };
        // The aggregator outlives the workers; if it is gone the run is over anyway.
        let _ = self.to_aggregator.send(Msg::Report(report));
    }

    fn log(&self, line: String) {
        let _ = self.to_aggregator.send(Msg::Log(line));
    }

    /// Stops sending: idle connections close now, in-flight ones when their
    /// response ends, a flow VU when its iteration ends, or all when the
    /// graceful stop runs out.
    fn stop(&mut self, now: Instant) {
        if self.stopping.is_some() {
            return;
        }
        self.stopping = Some(later(now, self.plan.graceful_stop));
        // Sends due but never started are dropped; later ones are not due.
        // Past a spent budget they are no sends of this run at all.
        for (ep, open) in self.open.iter_mut().enumerate() {
            if let Some(open) = open
                && !self.spent
            {
                open.advance(now.saturating_duration_since(self.start));
                self.stats[ep].dropped += open.drop_all();
            }
        }
        for idx in 0..self.conns.len() {
            let Some(c) = self.conns[idx].as_ref() else {
                continue;
            };
            if c.state != State::Awaiting && !c.mid_iteration() {
                // A send still connecting never left: dropped, like those above.
                if c.intended.is_some() {
                    self.stats[c.ep].dropped += 1;
                }
                self.remove(idx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `load` rounds of `handle` handling events then `wait` in
    /// epoll_wait until a window closes; returns its verdict.
    fn verdict(handle: Duration, wait: Duration) -> bool {
        let t0 = Instant::now();
        let mut load = Load::new(t0);
        let mut t = t0;
        loop {
            t += handle;
            load.polling(t);
            t += wait;
            if let Some(room) = load.polled(t, true) {
                return room;
            }
        }
    }

    #[test]
    fn a_worker_that_waits_has_room_and_a_saturated_one_not() {
        let us = Duration::from_micros;
        // Saturated: 300 us of events, 1 us polls that return at once.
        assert!(!verdict(us(300), us(1)));
        // Moderate load: a few us of work per 300 us.
        assert!(verdict(us(5), us(300)));
        // 80 % busy still has room; 95 % does not.
        assert!(verdict(us(80), us(20)));
        assert!(!verdict(us(95), us(5)));
        // Polls that return nothing (an idle open-model spin) are not busy.
        let t0 = Instant::now();
        let mut load = Load::new(t0);
        let mut t = t0;
        let room = loop {
            load.polling(t);
            t += us(1);
            if let Some(room) = load.polled(t, false) {
                break room;
            }
        };
        assert!(room);
    }
}
