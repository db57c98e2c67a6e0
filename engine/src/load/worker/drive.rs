//! The worker's policy over its connections: it turns readiness events and
//! timers into calls on a [`Conn`] (which does the I/O and says what
//! happened), and decides what follows — record the response, think, back
//! off, the next request or flow step, reconnect, retire. The pool of
//! connections is `pool.rs`; what a request is recorded as, `record.rs`.

use super::Worker;
use super::record::Outcome;
use crate::conn::{Connected, Failure, Read, State, Why};
use crate::flow::{AfterStep, IterationEnd, pause_after_failure, sent_path};
use crate::open::LATE;
use crate::plan::Http;
use crate::stats::{EndpointStats, ErrorKind, micros};
use crate::timer::later;
use crate::transport::Handshake;
use mio::Token;
use mio::event::Event;
use std::time::{Duration, Instant};

impl Worker {
    /// Sets the connection's deadline and makes sure a timer entry fires by then.
    pub(super) fn set_deadline(&mut self, idx: usize, at: Instant) {
        let key = (idx as u64) << 32 | self.gens[idx] as u64;
        let tick = self.wheel.tick_of(at);
        let c = self.conns[idx].as_mut().expect("a live connection");
        c.deadline = at;
        // An entry due no later than `at` re-arms itself when it fires early.
        if c.armed.iter().any(|&t| t <= tick) {
            return;
        }
        // Reuse a free slot, else forget the later entry (it fires as stale).
        let slot = if c.armed[0] == crate::conn::NOT_ARMED || c.armed[0] > c.armed[1] {
            0
        } else {
            1
        };
        c.armed[slot] = self.wheel.insert(at, key);
    }

    pub(super) fn on_timer(&mut self, tick: u64, key: u64, now: Instant) {
        if key & super::h2::LINK_KEY != 0 {
            return self.h2_timer(key, now);
        }
        let idx = (key >> 32) as usize;
        if self.gens.get(idx) != Some(&(key as u32)) {
            return;
        }
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        let Some(slot) = c.armed.iter().position(|&t| t == tick) else {
            return;
        };
        c.armed[slot] = crate::conn::NOT_ARMED;
        if now < c.deadline {
            let at = c.deadline;
            return self.set_deadline(idx, at);
        }
        let (connect, request) = (self.plan.connect_timeout, self.plan.request_timeout);
        match c.state {
            State::Connecting => {
                let f = Failure::new(ErrorKind::Connect, Why::ConnectTimeout(connect));
                self.fail(idx, f, now)
            }
            State::Handshaking => {
                let f = Failure::new(ErrorKind::Tls, Why::HandshakeTimeout(connect));
                self.fail(idx, f, now)
            }
            State::Awaiting => {
                let f = Failure::new(ErrorKind::Timeout, Why::RequestTimeout(request));
                self.fail(idx, f, now)
            }
            State::Thinking => {
                if c.retire && !c.may_go_on(now) {
                    // retired mid-iteration and the graceful ramp-down ran out
                    self.remove(idx);
                    return self.end_if_spent(now);
                }
                self.send_request(idx, now)
            }
            State::Backoff => self.connect(idx, now),
            State::Idle => {}
        }
    }

    pub(super) fn on_event(&mut self, idx: usize, ev: &Event, buf: &mut [u8]) {
        let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        match c.state {
            State::Connecting => self.finish_connect(idx),
            State::Handshaking => self.handshake(idx),
            State::Awaiting => {
                if ev.is_writable() && c.wants_write(&self.plan.endpoints[c.row]) {
                    self.write_request(idx);
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.read_response(idx, buf, ev.is_read_closed() || ev.is_error());
                }
            }
            State::Thinking | State::Idle => c.drain(buf),
            State::Backoff => {}
        }
    }

    pub(super) fn connect(&mut self, idx: usize, now: Instant) {
        let ep = self.conn(idx).ep;
        // A closed-model VU's request starts with its connection (a failed
        // connect is a failed request); an open-model one with its send.
        if self.open[ep].is_none() && !self.ticket(idx) {
            return self.out_of_tickets(idx, now);
        }
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = &self.plan.endpoints[c.row];
        if row.http == Http::H2 {
            // its connection is a shared link, made at its send
            if self.open[ep].is_some() && c.intended.is_none() && !c.mid_iteration() {
                self.park(idx);
                return self.dispatch(ep, now);
            }
            return self.send_request(idx, now);
        }
        let addr = row.addr;
        match c.connect(addr, self.poll.registry(), Token(idx), now) {
            Ok(()) => self.set_deadline(idx, later(now, self.plan.connect_timeout)),
            Err(f) => self.fail(idx, f, now),
        }
    }

    /// A connecting socket became ready: an `https` row's handshake starts,
    /// a plain one is ready.
    fn finish_connect(&mut self, idx: usize) {
        let now = Instant::now();
        let c = self.conns[idx].as_mut().expect("a live connection");
        match c.finish_connect(now) {
            Connected::NotYet => {}
            Connected::Failed(f) => self.fail(idx, f, now),
            Connected::Up(took) => {
                let row = &self.plan.endpoints[c.row];
                EndpointStats::record_phase(&mut self.stats[c.row].connecting, took);
                if let Some(name) = &row.tls_name {
                    let config = self.plan.tls.clone().expect("https rows have a TLS config");
                    if let Err(f) = c.secure(config, name.clone()) {
                        return self.fail(idx, f, now);
                    }
                    return self.handshake(idx);
                }
                self.ready(idx, now);
            }
        }
    }

    /// The connection is up (and its TLS handshake done): the VU's request
    /// goes out, or an open-model connection waits for its send.
    fn ready(&mut self, idx: usize, now: Instant) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        if self.open[c.ep].is_some() && c.intended.is_none() && !c.mid_iteration() {
            let ep = c.ep;
            self.park(idx); // pre-allocated: wait for a send
            self.dispatch(ep, now);
        } else {
            self.send_request(idx, now);
        }
    }

    /// Drives a TLS handshake; when it is done, the connection is ready. A
    /// failure is a `tls` error saying why.
    fn handshake(&mut self, idx: usize) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        let result = c.handshake();
        let now = Instant::now();
        match result {
            Handshake::Pending => {}
            Handshake::Failed(why) => {
                self.fail(idx, Failure::new(ErrorKind::Tls, Why::Text(why)), now)
            }
            Handshake::Done { resumed } => {
                let stats = &mut self.stats[c.row];
                if resumed {
                    stats.tls_resumed += 1;
                }
                let took = micros(now.saturating_duration_since(c.connected_at));
                EndpointStats::record_phase(&mut stats.tls_handshaking, took);
                self.ready(idx, now)
            }
        }
    }

    pub(super) fn send_request(&mut self, idx: usize, now: Instant) {
        if !self.ticket(idx) {
            return self.out_of_tickets(idx, now);
        }
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = &self.plan.endpoints[c.row];
        if row.http == Http::H2 {
            return self.h2_send(idx, now);
        }
        if row.step.is_some() {
            // a step on another host than the last one reconnects
            if c.link.is_some() && c.addr != Some(row.addr) {
                c.link = None;
            }
            let body = row.keep_body.then_some(self.plan.max_capture_body);
            c.session.keep(row.keep_head, body);
            c.session.collect_timing(row.server_timing);
        }
        if c.link.is_none() {
            return self.connect(idx, now);
        }
        if c.intended
            .is_some_and(|at| now.saturating_duration_since(at) >= LATE)
        {
            self.stats[c.row].late += 1;
        }
        c.begin(row, now);
        let dynamic = row.template.is_some() || row.step.is_some();
        self.set_deadline(idx, later(now, self.plan.request_timeout));
        if dynamic {
            let c = self.conns[idx].as_mut().expect("a live connection");
            if let Err(f) = c.render(&self.plan, &self.counters, &mut self.rng, now) {
                return self.fail(idx, f, now);
            }
        }
        self.write_request(idx);
    }

    fn write_request(&mut self, idx: usize) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = c.row;
        if let Err(f) = c.write(&self.plan.endpoints[row], &mut self.stats[row]) {
            self.fail(idx, f, Instant::now());
        }
    }

    /// Reads the response on; what it came to decides what follows.
    pub(super) fn read_response(&mut self, idx: usize, buf: &mut [u8], peer_closed: bool) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        let row = c.row;
        match c.read(buf, self.stamped, peer_closed, &mut self.stats[row]) {
            Read::Pending => {}
            Read::Unread => self.unread.push((idx, self.gens[idx], peer_closed)),
            Read::Response {
                status,
                reuse,
                done,
                now,
            } => self.complete(idx, status, reuse, done, now),
            Read::Failed(f) => self.fail(idx, f, Instant::now()),
        }
    }

    /// A complete response, its last bytes received at `done`: record it,
    /// then the VU's next step.
    // Inlined into HTTP/1.1's read_response as when it had that one
    // caller: out of line (it has HTTP/2's too) the plaintext path cost
    // ~58 instructions a request more (callgrind, read_response inclusive,
    // 5,000 vs 25,000 requests against the floor server: 2,435 vs 2,377).
    #[inline(always)]
    pub(super) fn complete(
        &mut self,
        idx: usize,
        status: u16,
        reuse: bool,
        done: Instant,
        now: Instant,
    ) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = &self.plan.endpoints[c.row];
        let latency = micros(done.saturating_duration_since(c.sent_at));
        let corrected = c
            .intended
            .take()
            .map(|at| micros(done.saturating_duration_since(at)));
        // from the stamps the connection took: no clock read of their own
        let (waiting, receiving) = match c.first_byte.take() {
            Some(first) => (
                micros(first.saturating_duration_since(c.sent_at)),
                micros(done.saturating_duration_since(first)),
            ),
            None => (latency, 0), // one read: nothing to receive after the first byte
        };
        let sending = match c.sending {
            // answered before its last byte went out
            crate::conn::SENDING => latency,
            us => us,
        };
        let mut error = (!row.accept.contains(status)).then_some(ErrorKind::Status);
        // (a gRPC status other than OK, see `h2.rs`)
        if let Some(kind) = c.pending.take() {
            error = Some(kind);
        }
        if row.step.is_some() && error.is_none() {
            error = self.take_captures(idx);
        }
        self.record(
            idx,
            Outcome::Response {
                status,
                latency,
                corrected,
                waiting,
                sending,
                receiving,
                error,
            },
        );
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = &self.plan.endpoints[c.row];
        if row.step.is_none() {
            // a response came: the connection works (a flow's count resets
            // only when a whole iteration succeeds, see `flow::after_step`)
            c.failures = 0;
        }
        if !reuse || row.close {
            c.link = None;
        }
        let mut think = row.think;
        if let Some(step) = &row.step {
            let flow_think = self.plan.flows[step.flow].think;
            match crate::flow::after_step(
                step.last,
                error.is_some(),
                think,
                flow_think,
                &mut c.failures,
            ) {
                AfterStep::Next(pause) => {
                    c.row += 1;
                    return self.next_request(idx, pause, now);
                }
                AfterStep::End(end, pause) => {
                    self.end_iteration(idx, end, now);
                    think = pause;
                }
            }
        }
        let c = self.conns[idx].as_mut().expect("a live connection");
        if c.retire || self.stopping.is_some() || self.spent {
            self.remove(idx);
            return self.end_if_spent(now);
        }
        if self.open[c.ep].is_some() {
            let ep = c.ep;
            self.park(idx);
            return self.dispatch(ep, now);
        }
        self.next_request(idx, think, now)
    }

    /// The VU's next request, after `think`. A VU told to stop or to leave
    /// between a flow's steps goes on to finish its iteration (the graceful
    /// stop, or for a retired VU the graceful ramp-down, bounds that); past
    /// a spent request budget it stops there (its iteration counts as
    /// interrupted).
    fn next_request(&mut self, idx: usize, think: Duration, now: Instant) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        if self.spent || ((c.retire || self.stopping.is_some()) && !c.may_go_on(now)) {
            self.remove(idx);
            return self.end_if_spent(now);
        }
        if !think.is_zero() {
            c.state = State::Thinking;
            return self.set_deadline(idx, later(now, think));
        }
        self.send_request(idx, now)
    }

    /// A flow step's response was accepted: its captures and cookies (see
    /// [`crate::flow::FlowVu::take`]); a capture that finds nothing is the
    /// request's error, the first one logged.
    fn take_captures(&mut self, idx: usize) -> Option<ErrorKind> {
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = &self.plan.endpoints[c.row];
        let step = row.step.as_ref()?;
        let flow = &self.plan.flows[step.flow];
        let f = c.flow.as_deref_mut()?;
        // a cookie's default Path is the directory of the path the request
        // went to: a templated one as rendered (issue #27)
        let path = match &row.template {
            Some(_) => sent_path(&c.out).unwrap_or(&row.path),
            None => &row.path,
        };
        let kept = crate::conn::kept_of(&c.held, &c.session, c.stream);
        let missed = f.take(row, step, flow, kept, path, &mut self.value).err()?;
        if !self.logged[ErrorKind::Capture as usize] {
            self.logged[ErrorKind::Capture as usize] = true;
            let (var, sel) = &step.captures[missed.capture];
            let line = format!(
                "worker {}: endpoint {}: first capture error: {} ({}) {}",
                self.id,
                row.name,
                flow.vars[*var],
                sel.describe(),
                missed.miss
            );
            let _ = self.to_aggregator.send(super::Msg::Log(line));
        }
        Some(ErrorKind::Capture)
    }

    /// A flow iteration ended at the current step: counts it as it ended;
    /// the VU's next request is the first step.
    fn end_iteration(&mut self, idx: usize, end: IterationEnd, now: Instant) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        let Some(step) = &self.plan.endpoints[c.row].step else {
            return;
        };
        if let Some(f) = c.flow.as_deref_mut() {
            f.end(end, now, &mut self.flow_stats[step.flow]);
        }
        c.iteration += 1;
        c.row = self.plan.flows[step.flow].first;
    }

    /// A request failed: count it, drop the socket, reconnect after a
    /// backoff. Its reason is formatted only for the first error of a kind
    /// (the one logged).
    pub(super) fn fail(&mut self, idx: usize, failure: Failure, now: Instant) {
        let kind = failure.kind;
        // an HTTP/2 VU's open stream is cancelled; it may leave its link
        self.h2_failed(idx, kind);
        let c = self.conns[idx].as_ref().expect("a live connection");
        let latency = (kind != ErrorKind::Interrupted)
            .then(|| micros(now.saturating_duration_since(c.sent_at)));
        self.record(idx, Outcome::Failed { kind, latency });
        let c = self.conns[idx].as_mut().expect("a live connection");
        let (ep, row) = (c.ep, c.row);
        c.link = None;
        c.failures = c.failures.saturating_add(1);
        // The VU's pause, as after a response (an endpoint's think time, a
        // flow's after its iteration, which this failure ends), then the
        // back-off (see `flow::pause_after_failure`).
        let think = match &self.plan.endpoints[row].step {
            Some(s) => self.plan.flows[s.flow].think,
            None => self.plan.endpoints[row].think,
        };
        let delay = pause_after_failure(think, c.failures);
        let retire = c.retire || self.stopping.is_some() || self.spent;
        if !self.logged[kind as usize] {
            self.logged[kind as usize] = true;
            let name = &self.plan.endpoints[row].name;
            self.log(format!(
                "worker {}: endpoint {name}: first {} error: {}",
                self.id,
                kind.as_str(),
                failure.why
            ));
        }
        // a failed step ends its flow's iteration
        // (a request the end of the run cut off cuts off its iteration)
        let end = if kind == ErrorKind::Interrupted {
            IterationEnd::Interrupted
        } else {
            IterationEnd::Failed
        };
        self.end_iteration(idx, end, now);
        if retire {
            self.remove(idx);
            return self.end_if_spent(now);
        }
        if self.open[ep].is_some() {
            // The schedule paces reconnects: the next send on this connection
            // reconnects it.
            self.park(idx);
            return self.dispatch(ep, now);
        }
        let c = self.conn(idx);
        c.state = State::Backoff;
        self.set_deadline(idx, later(now, delay));
    }
}
