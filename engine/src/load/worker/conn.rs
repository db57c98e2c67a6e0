//! One connection's life, the worker's per-connection state machine:
//! connect, write the request, read and frame the response, then complete
//! it or count its failure, and what a connection does when its timer fires.
//! The worker (`mod.rs`) keeps the loop, control messages, the VU pool and
//! the reports; TLS and templated requests grow here.
//!
//! The per-request path is: read until the response is framed, record it,
//! write the next request on the same connection at once. Sockets are
//! registered once for both directions (mio is edge-triggered), so a request
//! costs one `write` and one `read` and no `epoll_ctl`. A read shorter than
//! the buffer means the socket is drained (a TCP receive queue hands over all
//! it has), so the loop stops there instead of paying for an `EAGAIN` read;
//! new data raises a new edge.

use super::Worker;
use crate::capture::{Reader, headers};
use crate::clock::arrival;
use crate::cookies::Jar;
use crate::data::Order;
use crate::framing::{FrameError, Framed, Framer};
use crate::open::LATE;
use crate::samples::Sample;
use crate::stats::{EndpointStats, ErrorKind, micros};
use crate::sys;
use crate::template::{Ctx, RenderError, Vars};
use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Full reads one connection may make in one turn of the loop (16 × 64 KiB).
const READS_PER_TURN: u32 = 16;
/// Reconnect delay after consecutive failures: 0, then 10 ms doubling to this.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
pub(super) const NOT_ARMED: u64 = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// TCP connect in progress.
    Connecting,
    /// TLS handshake in progress (an `https` row).
    Handshaking,
    /// Request sent (or being sent); waiting for the response.
    Awaiting,
    /// Between a response and the next request (think time).
    Thinking,
    /// Waiting to reconnect after a failure; no socket.
    Backoff,
    /// Open model: waiting for the schedule to hand it a send.
    Idle,
}

/// A VU: one keep-alive connection looping request → response.
pub(super) struct Conn {
    pub(super) sock: Option<TcpStream>,
    /// Where `sock` is connected (a flow's steps may name other hosts).
    pub(super) addr: Option<SocketAddr>,
    /// The load unit (an endpoint, or a flow's first step): its pool, its
    /// schedule, its VU count.
    pub(super) ep: usize,
    /// The request row being sent: `ep`, or the flow's current step.
    pub(super) row: usize,
    /// A templated request, rendered for each send (see `Worker::render`).
    pub(super) out: Vec<u8>,
    /// This VU's number in this process (see [`crate::vu`]); over a
    /// sharded run it is [`Conn::vu`].
    pub(super) number: u32,
    /// This VU's iteration: requests sent for an endpoint, iterations
    /// ended for a flow (the templates' `iteration`).
    pub(super) iteration: u64,
    /// The current row of each data set (the templates' `data.`).
    pub(super) rows: Box<[u32]>,
    /// A flow VU's iteration state.
    pub(super) flow: Option<Box<FlowConn>>,
    /// An `https` connection's TLS state (see [`crate::tls`]); plain
    /// connections have none and keep their own path.
    pub(super) tls: Option<Box<rustls::ClientConnection>>,
    /// When the TCP connection was established (the handshake starts).
    pub(super) connected_at: Instant,
    /// When the first byte of a response that took several reads came.
    pub(super) first_byte: Option<Instant>,
    pub(super) state: State,
    pub(super) framer: Framer,
    pub(super) sent_at: Instant,
    /// When the current state times out (connect, request) or ends (think, backoff).
    pub(super) deadline: Instant,
    /// Ticks of this connection's entries in the timer wheel ([`NOT_ARMED`] = none).
    pub(super) armed: [u64; 2],
    /// Bytes of the request written so far.
    pub(super) written: usize,
    /// Removed once its in-flight request ends.
    pub(super) retire: bool,
    /// Consecutive failures, for the reconnect backoff.
    pub(super) failures: u32,
    /// Bytes of the current response received so far.
    pub(super) received: u64,
    /// Open model: when the send this connection carries was due.
    pub(super) intended: Option<Instant>,
    /// Holds a ticket of the request budget (see [`crate::budget`]) for a
    /// request not yet counted; without a budget tickets are free and this
    /// only marks a request in progress.
    pub(super) ticket: bool,
}

impl Conn {
    /// The VU's number over the whole run (a shard's numbers interleave).
    #[inline]
    pub(super) fn vu(&self, shard: Option<crate::shard::Shard>) -> u64 {
        shard.map_or(u64::from(self.number), |s| s.nth(u64::from(self.number)))
    }

    /// A flow iteration is under way on this VU: its first step was sent and
    /// its last is not done. Stopping and ramping down let it finish (within
    /// the graceful stop), as k6's gracefulStop and gracefulRampDown do.
    #[inline]
    pub(super) fn mid_iteration(&self) -> bool {
        self.flow.as_ref().is_some_and(|f| f.begun)
    }

    /// Mid-iteration, and (if retired) still within its graceful ramp-down.
    #[inline]
    fn may_go_on(&self, now: Instant) -> bool {
        (self.flow.as_ref()).is_some_and(|f| f.begun && f.leave_by.is_none_or(|t| now < t))
    }
}

/// How a flow iteration ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IterationEnd {
    Completed,
    /// A step failed (an error, an unexpected status, a capture).
    Failed,
    /// The end of the run cut off a step's request.
    Interrupted,
}

/// What a flow VU carries through one iteration.
pub(super) struct FlowConn {
    pub(super) vars: Vars,
    pub(super) jar: Jar,
    /// When the iteration's first step was sent.
    pub(super) started: Instant,
    /// An iteration is under way (its first step was sent, its last not done).
    pub(super) begun: bool,
    /// Retired mid-iteration: no step starts after this (`graceful_ramp_down`).
    pub(super) leave_by: Option<Instant>,
}

impl FlowConn {
    pub(super) fn new(vars: usize, now: Instant) -> FlowConn {
        FlowConn {
            vars: Vars::new(vars),
            jar: Jar::default(),
            started: now,
            begun: false,
            leave_by: None,
        }
    }
}

/// `now + d`, saturating: a user's duration (think time, timeouts) can
/// never overflow an `Instant` (a flow's think time of 2^64 s panicked the
/// worker, issue #27). A year is "never" for a run.
#[inline]
pub(super) fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let ms = 10u64.saturating_mul(1 << (failures - 2).min(20));
    Duration::from_millis(ms).min(MAX_BACKOFF)
}

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
        let slot = if c.armed[0] == NOT_ARMED || c.armed[0] > c.armed[1] {
            0
        } else {
            1
        };
        c.armed[slot] = self.wheel.insert(at, key);
    }

    pub(super) fn on_timer(&mut self, tick: u64, key: u64, now: Instant) {
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
        c.armed[slot] = NOT_ARMED;
        if now < c.deadline {
            let at = c.deadline;
            return self.set_deadline(idx, at);
        }
        match c.state {
            State::Connecting => {
                let t = self.plan.connect_timeout;
                self.fail(
                    idx,
                    ErrorKind::Connect,
                    move || format!("connect timed out after {t:?}"),
                    now,
                )
            }
            State::Handshaking => {
                let t = self.plan.connect_timeout;
                self.fail(
                    idx,
                    ErrorKind::Tls,
                    move || format!("no TLS handshake within {t:?} of the connect"),
                    now,
                )
            }
            State::Awaiting => {
                let t = self.plan.request_timeout;
                self.fail(
                    idx,
                    ErrorKind::Timeout,
                    move || format!("no complete response within {t:?}"),
                    now,
                )
            }
            State::Thinking => {
                let c = self.conn(idx);
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
        let Some(c) = self.conns.get(idx).and_then(Option::as_ref) else {
            return;
        };
        match c.state {
            State::Connecting => self.finish_connect(idx),
            State::Handshaking => self.handshake(idx),
            State::Awaiting => {
                let row = &self.plan.endpoints[c.row];
                let request_len = if row.template.is_some() {
                    c.out.len()
                } else {
                    row.request.len()
                };
                let pending =
                    c.written < request_len || c.tls.as_ref().is_some_and(|t| t.wants_write());
                if ev.is_writable() && pending {
                    self.write_request(idx);
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.read_response(idx, buf, ev.is_read_closed() || ev.is_error());
                }
            }
            State::Thinking | State::Idle => self.drain_idle(idx, buf),
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
        let row = self.conn(idx).row;
        let addr = self.plan.endpoints[row].addr;
        let mut sock = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                return self.fail(idx, ErrorKind::Connect, move || format!("{addr}: {e}"), now);
            }
        };
        // Without receive times latency falls back to when the worker read
        // the response, which adds its own wake-up delay (see [`arrival`]).
        let _ = sys::enable_rx_timestamps(&sock);
        if let Err(e) = self.poll.registry().register(
            &mut sock,
            Token(idx),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            return self.fail(
                idx,
                ErrorKind::Connect,
                move || format!("cannot register socket: {e}"),
                now,
            );
        }
        let c = self.conn(idx);
        c.sock = Some(sock);
        c.tls = None;
        c.addr = Some(addr);
        c.state = State::Connecting;
        c.sent_at = now; // a connect failure's latency counts from here
        let at = later(now, self.plan.connect_timeout);
        self.set_deadline(idx, at);
    }

    /// A connecting socket became ready: connected, failed, or a spurious wake-up.
    fn finish_connect(&mut self, idx: usize) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        let Some(sock) = c.sock.as_ref() else { return };
        let result = match sock.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => sock.peer_addr().map(|_| ()),
        };
        let now = Instant::now();
        match result {
            Ok(()) => {
                let _ = sock.set_nodelay(true);
                let row = c.row;
                let connecting = micros(now.saturating_duration_since(c.sent_at));
                EndpointStats::record_phase(&mut self.stats[row].connecting, connecting);
                c.connected_at = now;
                if let Some(name) = &self.plan.endpoints[row].tls_name {
                    let config = self.plan.tls.clone().expect("https rows have a TLS config");
                    match rustls::ClientConnection::new(config, name.clone()) {
                        Ok(t) => {
                            c.tls = Some(Box::new(t));
                            c.state = State::Handshaking;
                            return self.handshake(idx);
                        }
                        Err(e) => {
                            let why = crate::tls::describe(&e);
                            return self.fail(idx, ErrorKind::Tls, move || why, now);
                        }
                    }
                }
                self.ready(idx, now);
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {} // not yet
            Err(e) => {
                let addr = self.plan.endpoints[c.row].addr;
                self.fail(idx, ErrorKind::Connect, move || format!("{addr}: {e}"), now);
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

    /// Drives a TLS handshake as far as the socket allows; when it is done,
    /// the connection is ready. A failure is a `tls` error saying why.
    fn handshake(&mut self, idx: usize) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        let (Some(sock), Some(tls)) = (c.sock.as_mut(), c.tls.as_deref_mut()) else {
            return;
        };
        let failure = loop {
            if tls.wants_write() {
                match tls.write_tls(sock) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => break Some(format!("writing the handshake: {e}")),
                }
            }
            if !tls.is_handshaking() {
                if tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                    self.stats[c.row].tls_resumed += 1;
                }
                break None;
            }
            match tls.read_tls(sock) {
                Ok(0) => {
                    break Some("the server closed the connection during the handshake".into());
                }
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        let _ = tls.write_tls(sock); // our alert, if any
                        break Some(crate::tls::describe(&e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(format!("reading the handshake: {e}")),
            }
        };
        let now = Instant::now();
        if let Some(why) = failure {
            return self.fail(idx, ErrorKind::Tls, move || why, now);
        }
        let c = self.conns[idx].as_mut().expect("a live connection");
        let took = micros(now.saturating_duration_since(c.connected_at));
        EndpointStats::record_phase(&mut self.stats[c.row].tls_handshaking, took);
        self.ready(idx, now)
    }

    pub(super) fn send_request(&mut self, idx: usize, now: Instant) {
        if !self.ticket(idx) {
            return self.out_of_tickets(idx, now);
        }
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = &self.plan.endpoints[c.row];
        if row.step.is_some() {
            // a step on another host than the last one reconnects
            if c.sock.is_some() && c.addr != Some(row.addr) {
                c.sock = None;
            }
            let body = row.keep_body.then_some(self.plan.max_capture_body);
            c.framer.keep(row.keep_head, body);
            c.framer.collect_timing(row.server_timing);
        }
        if c.sock.is_none() {
            return self.connect(idx, now);
        }
        c.framer.start(row.head);
        if c.intended
            .is_some_and(|at| now.saturating_duration_since(at) >= LATE)
        {
            self.stats[c.row].late += 1;
        }
        c.sent_at = now;
        c.written = 0;
        c.received = 0;
        c.first_byte = None;
        c.state = State::Awaiting;
        let dynamic = row.template.is_some() || row.step.is_some();
        self.set_deadline(idx, later(now, self.plan.request_timeout));
        if dynamic && !self.render(idx, now) {
            return;
        }
        self.write_request(idx);
    }

    /// Before a templated request or a flow step goes out: starts the flow
    /// iteration (its data rows, an empty jar and vars) at its first step,
    /// takes an endpoint's data rows, and renders the request into the
    /// connection's buffer. A captured value that cannot be sent fails the
    /// request (kind `capture`); then this returns false.
    fn render(&mut self, idx: usize, now: Instant) -> bool {
        let plan = &*self.plan;
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = &plan.endpoints[c.row];
        let vu = c.vu(plan.shard);
        let sets = match (&row.step, c.flow.as_deref_mut()) {
            (Some(step), Some(f)) if !f.begun => {
                f.begun = true;
                f.started = now;
                f.vars.clear();
                f.jar.clear();
                &plan.flows[step.flow].data_sets[..]
            }
            (Some(_), _) => &[][..],
            (None, _) => &row.data_sets[..],
        };
        for &set in sets {
            let d = &plan.data[set];
            let n = d.rows as u64;
            let r = match d.order {
                Order::Sequential => {
                    let j = plan.data_next[set].fetch_add(1, Ordering::Relaxed);
                    plan.shard.map_or(j, |s| s.nth(j)) % n
                }
                Order::Random => self.rng.u64(..n),
                Order::PerVu => vu % n,
            };
            c.rows[set] = r as u32;
        }
        let Some(t) = &row.template else {
            return true;
        };
        let cookies = row
            .step
            .as_ref()
            .is_some_and(|s| plan.flows[s.flow].cookies);
        let flow = c.flow.as_deref();
        let mut ctx = Ctx {
            vu,
            iteration: c.iteration,
            seq: None,
            seq_source: &plan.seq,
            shard: plan.shard,
            rng: &mut self.rng,
            data: &plan.data,
            rows: &c.rows,
            vars: flow.map(|f| &f.vars),
        };
        let rendered = t.render(
            &mut c.out,
            &mut ctx,
            flow.filter(|_| cookies)
                .map(|f| (&f.jar, row.host.as_str())),
        );
        if row.step.is_none() {
            c.iteration += 1;
        }
        match rendered {
            Ok(()) => true,
            Err(e) => {
                let (RenderError::Unsafe(n) | RenderError::Missing(n)) = e;
                let name = row
                    .step
                    .as_ref()
                    .and_then(|s| plan.flows[s.flow].vars.get(n))
                    .cloned()
                    .unwrap_or_default();
                let why = match e {
                    RenderError::Unsafe(_) => {
                        "holds a byte a request line or header cannot carry (CR, LF, NUL; a space in a path)"
                    }
                    RenderError::Missing(_) => "was not captured in this iteration",
                };
                self.fail(
                    idx,
                    ErrorKind::Capture,
                    move || format!("vars.{name} {why}; the request was not sent"),
                    now,
                );
                false
            }
        }
    }

    fn write_request(&mut self, idx: usize) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = &self.plan.endpoints[c.row];
        let request: &[u8] = if row.template.is_some() {
            &c.out
        } else {
            &row.request
        };
        let Some(sock) = c.sock.as_mut() else { return };
        if let Some(tls) = c.tls.as_deref_mut() {
            // into rustls as plaintext, out of it as records, as far as
            // the socket takes them
            let failure = loop {
                while tls.wants_write() {
                    match tls.write_tls(sock) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            return self.fail(
                                idx,
                                ErrorKind::Write,
                                move || e.to_string(),
                                Instant::now(),
                            );
                        }
                    }
                }
                if c.written == request.len() {
                    return;
                }
                match tls.writer().write(&request[c.written..]) {
                    Ok(0) => break None,
                    Ok(n) => {
                        c.written += n;
                        self.stats[c.row].bytes_out += n as u64;
                    }
                    Err(e) => break Some(e),
                }
            };
            let detail =
                move || failure.map_or_else(|| "TLS accepted no bytes".into(), |e| e.to_string());
            return self.fail(idx, ErrorKind::Write, detail, Instant::now());
        }
        let failure = loop {
            if c.written == request.len() {
                return;
            }
            match sock.write(&request[c.written..]) {
                Ok(0) => break None,
                Ok(n) => {
                    c.written += n;
                    self.stats[c.row].bytes_out += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(e),
            }
        };
        let detail = move || {
            failure.map_or_else(|| "the socket accepted no bytes".into(), |e| e.to_string())
        };
        self.fail(idx, ErrorKind::Write, detail, Instant::now());
    }

    /// Reads until the response is framed, the socket is drained, or it
    /// fails. `peer_closed` is the event's read-closed flag: the FIN came with
    /// the data, raised no edge of its own, and must be read now.
    pub(super) fn read_response(&mut self, idx: usize, buf: &mut [u8], peer_closed: bool) {
        let mut reads = 0;
        loop {
            let Some(c) = self.conns[idx].as_mut() else {
                return;
            };
            let Some(sock) = c.sock.as_mut() else { return };
            let read = if let Some(tls) = c.tls.as_deref_mut() {
                tls_read(tls, sock, buf).map(|n| (n, None))
            } else if self.stamped {
                sys::recv_stamped(sock, buf)
            } else {
                sock.read(buf).map(|n| (n, None))
            };
            let (n, stamp) = match read {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let kind = if TlsFailure::is(&e) {
                        ErrorKind::Tls
                    } else {
                        ErrorKind::Read
                    };
                    return self.fail(idx, kind, move || e.to_string(), Instant::now());
                }
            };
            self.stats[c.row].bytes_in += n as u64;
            c.received += n as u64;
            if n == 0 {
                c.sock = None;
                let now = Instant::now();
                let ended = if c.framer.is_idle() {
                    Err(FrameError::UnexpectedEof)
                } else {
                    c.framer.eof()
                };
                return match ended {
                    Ok(resp) => self.complete(idx, resp.status, false, now, now),
                    Err(_) => self.fail(
                        idx,
                        ErrorKind::Read,
                        || "connection closed before the response was complete".into(),
                        now,
                    ),
                };
            }
            match c.framer.feed(&buf[..n]) {
                Err(e) => {
                    return self.fail(idx, ErrorKind::Parse, move || e.to_string(), Instant::now());
                }
                Ok((_, Framed::Partial)) => {
                    if c.first_byte.is_none() {
                        c.first_byte = Some(arrival(stamp, c.sent_at, Instant::now()));
                    }
                }
                Ok((used, Framed::Complete(resp))) => {
                    let now = Instant::now();
                    // Bytes after a response answer no request: the stream is
                    // out of step, so the connection is not reused.
                    let reuse = resp.keep_alive && used == n;
                    if !reuse {
                        c.sock = None;
                    }
                    let done = arrival(stamp, c.sent_at, now);
                    return self.complete(idx, resp.status, reuse, done, now);
                }
            }
            // A short read drained the socket; new data raises a new edge.
            // But a FIN that arrived with this data already raised its edge:
            // read on to see it (found by tests/hostile.rs: a partial body then
            // a close was counted as a timeout, not a read error).
            // (TLS reads on: records may still wait in rustls or the socket.)
            if n < buf.len() && !peer_closed && c.tls.is_none() {
                return;
            }
            // One connection whose server sends faster than the worker
            // reads would hold the loop, and with it every other connection
            // and every timer (issue #27): past its budget for this turn it
            // waits for the next one, where it is read again unasked (its
            // edge has been used).
            reads += 1;
            if reads == READS_PER_TURN {
                self.unread.push((idx, self.gens[idx], peer_closed));
                return;
            }
        }
    }

    /// A connection between requests became readable: the server closed it
    /// (fine: reconnect before the next request) or sent bytes unasked.
    fn drain_idle(&mut self, idx: usize, buf: &mut [u8]) {
        let c = self.conn(idx);
        let Some(sock) = c.sock.as_mut() else { return };
        let read = match c.tls.as_deref_mut() {
            // (a TLS 1.3 session ticket after the handshake is no plaintext)
            Some(tls) => tls_read(tls, sock, buf),
            None => sock.read(buf),
        };
        match read {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Ok(0) | Err(_) => c.sock = None,
            Ok(_) => c.sock = None,
        }
    }

    /// A complete response, its last bytes received at `done`: record it,
    /// then the VU's next step.
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
        let first = c.first_byte.take().unwrap_or(done);
        let waiting = micros(first.saturating_duration_since(c.sent_at));
        let mut error = (!row.accept.contains(status)).then_some(ErrorKind::Status);
        if row.step.is_some() {
            error = error.or_else(|| self.take_captures(idx));
        }
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = &self.plan.endpoints[c.row];
        if !row.checks.is_empty() {
            let mut reader = Reader::new(c.framer.kept());
            for (i, (_, check)) in row.checks.iter().enumerate() {
                let ok = check.passes(status, latency, &mut reader, &mut self.value);
                self.stats[c.row].record_check(i, ok);
            }
        }
        self.stats[c.row].record_response(latency, corrected, status, error);
        EndpointStats::record_phase(&mut self.stats[c.row].waiting, waiting);
        if !c.framer.timing().is_empty() {
            self.stats[c.row].server_timing.record(c.framer.timing());
        }
        c.ticket = false;
        if let Some(s) = self.samples.as_mut()
            && s.wants()
        {
            s.write(&Sample {
                t_us: micros(c.sent_at.saturating_duration_since(self.start)),
                endpoint: &row.json_name,
                status: Some(status),
                error,
                latency_us: Some(latency),
                corrected_us: corrected,
                bytes: c.received,
                worker: self.id as u32,
                vu: c.vu(self.plan.shard),
            });
        }
        if row.step.is_none() {
            // a response came: the connection works (a flow's count resets
            // only when a whole iteration succeeds, below)
            c.failures = 0;
        }
        if !reuse || row.close {
            c.sock = None;
        }
        let mut think = row.think;
        let step = row
            .step
            .as_ref()
            .map(|s| (s.last, self.plan.flows[s.flow].think));
        if let Some((last, flow_think)) = step {
            if error.is_some() || last {
                let end = if error.is_none() {
                    IterationEnd::Completed
                } else {
                    IterationEnd::Failed
                };
                self.end_iteration(idx, end, now);
                think = think.saturating_add(flow_think);
                // A failed iteration is paced like a failed request: think
                // time, then the consecutive-failure back-off (issue #27: a
                // step answered by an error restarted at once, a retry storm
                // on the first step).
                let c = self.conn(idx);
                if error.is_none() {
                    c.failures = 0;
                } else {
                    c.failures = c.failures.saturating_add(1);
                    think = think.saturating_add(backoff(c.failures));
                }
            } else {
                self.conn(idx).row += 1;
                return self.next_request(idx, think, now);
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

    /// A flow step's response was accepted: reads its captures into the
    /// iteration's vars and its `Set-Cookie`s into the jar. A capture that
    /// finds nothing is the request's error (kind `capture`).
    fn take_captures(&mut self, idx: usize) -> Option<ErrorKind> {
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = &self.plan.endpoints[c.row];
        let step = row.step.as_ref()?;
        let flow = &self.plan.flows[step.flow];
        let f = c.flow.as_deref_mut()?;
        let kept = c.framer.kept();
        if flow.cookies {
            let now = std::time::SystemTime::now();
            // a cookie's default Path is the directory of the path the
            // request went to: a templated one as rendered (issue #27)
            let path = match &row.template {
                Some(_) => sent_path(&c.out).unwrap_or(&row.path),
                None => &row.path,
            };
            for v in headers(kept.head, "set-cookie") {
                f.jar.store(&row.host, v, path, now);
            }
        }
        let mut reader = Reader::new(kept);
        for (n, sel) in &step.captures {
            self.value.clear();
            if let Err(miss) = reader.select(sel, &mut self.value) {
                if !self.logged[ErrorKind::Capture as usize] {
                    self.logged[ErrorKind::Capture as usize] = true;
                    let line = format!(
                        "worker {}: endpoint {}: first capture error: {} ({}) {miss}",
                        self.id,
                        row.name,
                        flow.vars[*n],
                        sel.describe()
                    );
                    let _ = self.to_aggregator.send(super::Msg::Log(line));
                }
                return Some(ErrorKind::Capture);
            }
            f.vars.set(*n, &self.value);
        }
        None
    }

    /// A flow iteration ended at the current step: counts it as it ended;
    /// the VU's next request is the first step.
    fn end_iteration(&mut self, idx: usize, end: IterationEnd, now: Instant) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        let Some(step) = &self.plan.endpoints[c.row].step else {
            return;
        };
        let flow = &self.plan.flows[step.flow];
        let stats = &mut self.flow_stats[step.flow];
        if let Some(f) = c.flow.as_deref_mut()
            && f.begun
        {
            f.begun = false;
            match end {
                IterationEnd::Completed => {
                    stats.iterations += 1;
                    stats
                        .duration
                        .record(micros(now.saturating_duration_since(f.started)));
                }
                IterationEnd::Failed => stats.failed += 1,
                IterationEnd::Interrupted => stats.interrupted += 1,
            }
        }
        c.iteration += 1;
        c.row = flow.first;
    }

    /// A request failed: count it, drop the socket, reconnect after a backoff.
    /// `detail` is only formatted for the first error of a kind (the one
    /// logged): a failing target must not cost an allocation per request.
    pub(super) fn fail(
        &mut self,
        idx: usize,
        kind: ErrorKind,
        detail: impl FnOnce() -> String,
        now: Instant,
    ) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        let (ep, row) = (c.ep, c.row);
        self.stats[row].record_failure(kind);
        // without a response every check of the request fails (as k6's
        // would on a response with status 0)
        for i in 0..self.plan.endpoints[row].checks.len() {
            self.stats[row].record_check(i, false);
        }
        c.ticket = false;
        if let Some(s) = self.samples.as_mut()
            && s.wants()
        {
            s.write(&Sample {
                t_us: micros(c.sent_at.saturating_duration_since(self.start)),
                endpoint: &self.plan.endpoints[row].json_name,
                status: None,
                error: Some(kind),
                latency_us: (kind != ErrorKind::Interrupted)
                    .then(|| micros(now.saturating_duration_since(c.sent_at))),
                corrected_us: None,
                bytes: c.received,
                worker: self.id as u32,
                vu: c.vu(self.plan.shard),
            });
        }
        c.sock = None;
        c.failures = c.failures.saturating_add(1);
        // The VU's pause, as after a response (an endpoint's think time, a
        // flow's after its iteration, which this failure ends), then the
        // back-off: a failing target is never retried faster than it is
        // loaded when it works (issue #27: a flow step failing on the
        // connection restarted its iteration at once, 516 iterations in 2 s
        // for a 100 ms think time).
        let think = match &self.plan.endpoints[row].step {
            Some(s) => self.plan.flows[s.flow].think,
            None => self.plan.endpoints[row].think,
        };
        let delay = think.saturating_add(backoff(c.failures));
        let retire = c.retire || self.stopping.is_some() || self.spent;
        if !self.logged[kind as usize] {
            self.logged[kind as usize] = true;
            let name = &self.plan.endpoints[row].name;
            self.log(format!(
                "worker {}: endpoint {name}: first {} error: {}",
                self.id,
                kind.as_str(),
                detail()
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

/// The request-target of a rendered HTTP/1.1 request (`GET /a/b?c HTTP/1.1`
/// gives `/a/b?c`).
fn sent_path(out: &[u8]) -> Option<&str> {
    let line = out.split(|&b| b == b'\r').next()?;
    let mut parts = line.splitn(3, |&b| b == b' ');
    parts.next()?;
    std::str::from_utf8(parts.next()?).ok()
}

/// A TLS connection's plaintext, read like a socket: `Ok(0)` is the end
/// (a close_notify, or the socket closing without one), `WouldBlock` that
/// nothing more is there yet. A bad record is an error [`TlsFailure::is`]
/// tells from a socket's.
fn tls_read(
    tls: &mut rustls::ClientConnection,
    sock: &mut TcpStream,
    buf: &mut [u8],
) -> io::Result<usize> {
    loop {
        match tls.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e),
        }
        match tls.read_tls(sock) {
            Ok(0) => return Ok(0),
            Ok(_) => {
                if let Err(e) = tls.process_new_packets() {
                    let _ = tls.write_tls(sock); // our alert, if any
                    return Err(io::Error::other(TlsFailure(crate::tls::describe(&e))));
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// A TLS record that could not be read, as an `io::Error`'s inner error.
#[derive(Debug)]
struct TlsFailure(String);

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsFailure {}

impl TlsFailure {
    fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|i| i.is::<TlsFailure>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sent_path_is_the_request_target() {
        assert_eq!(
            sent_path(b"GET /a/b?c=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some("/a/b?c=1")
        );
        assert_eq!(sent_path(b"POST / HTTP/1.1\r\n"), Some("/"));
        assert_eq!(sent_path(b""), None);
    }

    #[test]
    fn later_saturates() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now);
        assert_eq!(
            later(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }

    #[test]
    fn backoff_starts_at_zero_and_is_capped() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(10));
        assert_eq!(backoff(3), Duration::from_millis(20));
        assert_eq!(backoff(8), Duration::from_millis(640));
        assert_eq!(backoff(9), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
