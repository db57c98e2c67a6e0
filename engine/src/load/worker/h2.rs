//! The worker's HTTP/2 policy: VUs of an `h2` row share connections
//! ([`Link`]s), each VU a stream slot. A VU's send attaches it to a link
//! of its unit to the same server with room (fewer than `streams` VUs),
//! or opens a new one — so a closed-model unit's N VUs use
//! `ceil(N / streams)` connections — and opens a stream; a VU finds no
//! stream slot (the link is still connecting, or the server's
//! MAX_CONCURRENT_STREAMS is reached) waits in the link's queue, and that
//! wait is part of its latency. The link's events go to the VUs their
//! streams name (a stream's tag is its VU's slot and generation), and
//! each response is recorded as an HTTP/1.1 one is (`drive.rs`'s
//! `complete`): checks, captures, cookies, Server-Timing, samples.
//!
//! Failures: a reset stream fails its VU (`h2_reset`, its code counted),
//! except REFUSED_STREAM, which was never processed and goes out again;
//! a stream above a GOAWAY's last stream id goes out again on another
//! connection (both at most [`MAX_RETRIES`] times per request, so a
//! server that refuses everything makes no retry storm); a broken
//! connection fails every request on it (`protocol`, `h2_goaway` when the
//! server had said GOAWAY, else `read`/`tls`), and the VUs back off as
//! after any failure. Writes are batched: what a turn of the loop queued
//! on a link goes out in one write before the worker polls
//! ([`Worker::h2_flush`]).
//!
//! One room past 800 lines on purpose: attaching VUs, opening streams,
//! reading a link and failing it are one policy over one set of fields
//! (`links`, their generations, queues and carriers); split, each part
//! would reach into the others' invariants (a slot freed while its
//! events are handled, a VU queued on a link that failed).

use super::Worker;
use crate::clock::Clocks;
use crate::conn::{Failure, Held, State, Why};
use crate::link::{Link, LinkRead, LinkState};
use crate::load::grpc::response::{DecodeError, to_json};
use crate::load::grpc::{CallError, Code};
use crate::open::LATE;
use crate::protocol::StreamId;
use crate::protocol::h2::{self, ErrorCode, H2Error, OpenError};
use crate::stats::{EndpointStats, ErrorKind, micros};
use crate::timer::later;
use crate::transport::Handshake;
use mio::Token;
use mio::event::Event;
use std::time::{Duration, Instant};

/// The bit that marks a link's mio token (VUs' tokens are their slots).
pub(super) const LINK_TOKEN: usize = 1 << (usize::BITS - 2);
/// The bit that marks a link's timer key.
pub(super) const LINK_KEY: u64 = 1 << 63;
/// Times one request may go out again (GOAWAY, REFUSED_STREAM).
pub const MAX_RETRIES: u8 = 2;

/// What a link's read reported, gathered while the session is borrowed
/// and handled after.
#[derive(Debug, Clone, Copy)]
pub(super) enum LinkEvent {
    Response {
        idx: usize,
        status: u16,
        first_byte: Instant,
        window_wait: Duration,
        body_bytes: u64,
        stamp: Option<Duration>,
        grpc: Option<Result<Code, CallError>>,
    },
    Failed {
        idx: usize,
        error: H2Error,
    },
    Unprocessed {
        idx: usize,
    },
    GoAway,
    Settings(Duration),
    Ping(Duration),
}

/// The VU slot and generation a stream's tag names.
#[inline]
fn tag(idx: usize, generation: u32) -> u64 {
    (idx as u64) << 32 | u64::from(generation)
}

impl Worker {
    /// An HTTP/2 VU's next request: its timing starts, a templated one is
    /// rendered, and it goes out on a link (see the module doc).
    pub(super) fn h2_send(&mut self, idx: usize, now: Instant) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = &self.plan.endpoints[c.row];
        if c.intended
            .is_some_and(|at| now.saturating_duration_since(at) >= LATE)
        {
            self.stats[c.row].late += 1;
        }
        c.sent_at = now;
        c.first_byte = None;
        c.sending = 0;
        c.received = 0;
        c.retries = 0;
        c.stream = StreamId::NONE;
        c.state = State::Awaiting;
        // (a gRPC call's templated message is written per request too)
        let dynamic = row.template.is_some()
            || row.step.is_some()
            || row.grpc.as_ref().is_some_and(|g| g.message.is_dynamic());
        self.set_deadline(idx, later(now, self.plan.request_timeout));
        if dynamic {
            let c = self.conns[idx].as_mut().expect("a live connection");
            if let Err(f) = c.render(&self.plan, &self.counters, &mut self.rng, now) {
                return self.fail(idx, f, now);
            }
        }
        self.h2_dispatch(idx, now);
    }

    /// Puts VU `idx`'s request on a link: a stream opens now, or it waits
    /// in the link's queue.
    fn h2_dispatch(&mut self, idx: usize, now: Instant) {
        let j = match self.h2_attach(idx, now) {
            Ok(j) => j,
            Err(f) => return self.fail(idx, f, now),
        };
        let link = self.links[j].as_mut().expect("attached");
        if link.state == LinkState::Open && link.queue.is_empty() {
            self.h2_open(j, idx, now);
        } else {
            link.queue.push_back(idx);
        }
    }

    /// The link VU `idx` sends on: the one it is attached to while it
    /// serves the row's server, else one of its unit's with room, else a
    /// new one (connecting).
    fn h2_attach(&mut self, idx: usize, now: Instant) -> Result<usize, Failure> {
        let c = self.conns[idx].as_ref().expect("a live connection");
        let row = &self.plan.endpoints[c.row];
        let (addr, unit) = (row.addr, c.ep);
        if let Some(j) = c.carrier {
            if self.links[j as usize]
                .as_ref()
                .is_some_and(|l| l.usable(addr))
            {
                return Ok(j as usize);
            }
            self.h2_detach(idx);
        }
        let streams = self.plan.endpoints[unit].streams.max(1);
        let found = self.links.iter().position(|l| {
            l.as_ref()
                .is_some_and(|l| l.unit == unit && l.vus < streams && l.usable(addr))
        });
        let j = match found {
            Some(j) => j,
            None => self.h2_connect_link(unit, addr, now)?,
        };
        self.links[j].as_mut().expect("a live link").vus += 1;
        self.conn(idx).carrier = Some(j as u32);
        Ok(j)
    }

    /// Opens a new link for `unit` to `addr` (its TCP connect starts).
    fn h2_connect_link(
        &mut self,
        unit: usize,
        addr: std::net::SocketAddr,
        now: Instant,
    ) -> Result<usize, Failure> {
        let j = self.link_free.pop().unwrap_or_else(|| {
            self.links.push(None);
            self.link_gens.push(0);
            self.links.len() - 1
        });
        let token = Token(LINK_TOKEN | j);
        let sock = match crate::transport::dial(addr, self.poll.registry(), token) {
            Ok(s) => s,
            Err((at, e)) => {
                self.link_free.push(j);
                let why = if at {
                    Why::At(addr, e)
                } else {
                    Why::Register(e)
                };
                return Err(Failure::new(ErrorKind::Connect, why));
            }
        };
        let mut link = Link::new(crate::transport::Transport::Plain(sock), addr, unit, now);
        link.deadline = later(now, self.plan.connect_timeout);
        self.links[j] = Some(link);
        self.h2_arm(j);
        Ok(j)
    }

    /// A timer entry for link `j`'s deadline.
    fn h2_arm(&mut self, j: usize) {
        let link = self.links[j].as_ref().expect("a live link");
        let key = LINK_KEY | (j as u64) << 32 | u64::from(self.link_gens[j]);
        self.wheel.insert(link.deadline, key);
    }

    /// A request of VU `idx` failed with `kind`: a failure of its stream
    /// alone (reset by the server, a malformed response, a gRPC status, an
    /// unsendable capture) cancels the stream and keeps the connection, as
    /// h2load and browsers do (leaving it made a connection per reset:
    /// 199 connections for 591 requests against a server resetting every
    /// other stream); any other (a timeout: the connection may be stuck;
    /// the end of the run) leaves the link.
    pub(super) fn h2_failed(&mut self, idx: usize, kind: ErrorKind) {
        let stream_only = matches!(
            kind,
            ErrorKind::H2Reset
                | ErrorKind::Protocol
                | ErrorKind::Grpc
                | ErrorKind::Capture
                | ErrorKind::Status
        );
        let c = self.conns[idx].as_mut().expect("a live connection");
        let Some(j) = c.carrier.filter(|_| stream_only) else {
            return self.h2_detach(idx);
        };
        let stream = std::mem::replace(&mut c.stream, StreamId::NONE);
        let j = j as usize;
        let Some(link) = self.links[j].as_mut() else {
            return;
        };
        link.queue.retain(|&q| q != idx);
        if stream != StreamId::NONE
            && let Some(s) = link.session.as_mut()
            && s.cancel(stream.0)
        {
            self.h2_dirty(j);
        }
    }

    /// VU `idx` leaves its link: its open stream (if any) is cancelled,
    /// and a link left with no VU and no stream closes.
    pub(super) fn h2_detach(&mut self, idx: usize) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        let Some(j) = c.carrier.take() else {
            return;
        };
        let stream = std::mem::replace(&mut c.stream, StreamId::NONE);
        let j = j as usize;
        let Some(link) = self.links[j].as_mut() else {
            return;
        };
        link.vus -= 1;
        link.queue.retain(|&q| q != idx);
        if stream != StreamId::NONE
            && let Some(s) = link.session.as_mut()
            && s.cancel(stream.0)
        {
            self.h2_dirty(j);
        }
        let link = self.links[j].as_ref().expect("a live link");
        if link.vus == 0 && link.open_streams() == 0 {
            self.h2_close(j);
        }
    }

    /// Closes link `j`: a GOAWAY goes out if the session is up (as far as
    /// the socket takes it), and the socket closes.
    fn h2_close(&mut self, j: usize) {
        let Some(mut link) = self.links[j].take() else {
            return;
        };
        if let Some(s) = link.session.as_mut() {
            s.close();
            let _ = link.flush(&mut self.stats[link.unit]);
        }
        self.h2_free_slot(j);
    }

    /// Link `j` is gone: VUs still attached find another link at their
    /// next send (none has a stream open on it any more), its timers and
    /// queued reads go stale, and its slot is free.
    fn h2_free_slot(&mut self, j: usize) {
        for c in self.conns.iter_mut().flatten() {
            if c.carrier == Some(j as u32) {
                c.carrier = None;
                c.stream = StreamId::NONE;
            }
        }
        self.link_gens[j] = self.link_gens[j].wrapping_add(1);
        self.link_free.push(j);
    }

    /// Marks link `j` to be flushed before the worker polls.
    #[inline]
    fn h2_dirty(&mut self, j: usize) {
        let link = self.links[j].as_mut().expect("a live link");
        if !link.dirty {
            link.dirty = true;
            self.link_dirty.push(j);
        }
    }

    /// Writes what this turn queued on each link, one write per link.
    pub(super) fn h2_flush(&mut self) {
        if self.link_dirty.is_empty() {
            return;
        }
        // (a failed flush fails its requests, whose VUs may send on other
        // links: those are marked during the loop and flushed in a next
        // round — found by tests/h2_hostile.rs, a link left marked but
        // never flushed)
        loop {
            let mut dirty = std::mem::take(&mut self.link_dirty);
            for &j in &dirty {
                let Some(link) = self.links[j].as_mut() else {
                    continue;
                };
                link.dirty = false;
                if link.state != LinkState::Open {
                    continue;
                }
                if let Err(e) = link.flush(&mut self.stats[link.unit]) {
                    let f = Failure::new(ErrorKind::Write, Why::Io(e));
                    self.h2_fail_link(j, f, Instant::now());
                }
            }
            dirty.clear();
            let added = std::mem::replace(&mut self.link_dirty, dirty);
            if added.is_empty() {
                return;
            }
            self.link_dirty.extend(added);
        }
    }

    /// Opens VU `idx`'s stream on open link `j` (queued if the server's
    /// stream limit is reached; moved to another link if this one is
    /// going away).
    fn h2_open(&mut self, j: usize, idx: usize, now: Instant) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = &self.plan.endpoints[c.row];
        let link = self.links[j].as_mut().expect("a live link");
        let session = link.session.as_mut().expect("an open link has a session");
        let (block, body): (&[u8], &[u8]) = match &row.h2 {
            // a gRPC call's templated message was written into `out`
            Some(r) if row.grpc.as_ref().is_some_and(|g| g.message.is_dynamic()) => {
                (&r.block, &c.out)
            }
            Some(r) => (&r.block, &r.body),
            None => {
                self.h2_block.clear();
                let scheme = if row.tls_name.is_some() {
                    "https"
                } else {
                    "http"
                };
                match h2::encode::from_h1(&c.out, scheme, &mut self.h2_block) {
                    Ok(at) => (&self.h2_block, &c.out[at..]),
                    Err(why) => {
                        let f = Failure::new(ErrorKind::Protocol, Why::Said(why));
                        return self.fail(idx, f, now);
                    }
                }
            }
        };
        let keep = h2::Keep {
            head: row.keep_head,
            body: row.keep_body.then_some(self.plan.max_capture_body),
            timing: row.server_timing,
            head_request: row.head,
            grpc: row.grpc.is_some(),
        };
        let body = (!body.is_empty()).then_some(body);
        match session.open(block, body, keep, tag(idx, self.gens[idx]), now) {
            Ok(id) => {
                c.stream = StreamId(id);
                // A request that waited for its link to connect or for a
                // stream slot: k6's blocked, and its latency starts now, as
                // an HTTP/1.1 request's starts after its connect and as
                // h2load's starts when the stream opens (it had counted the
                // wait twice, in blocked and in the latency: 416 ms for a
                // 50 ms call behind a server's 2-stream limit, found by a
                // first-user try). A retried request keeps its first send.
                if c.retries == 0 {
                    let waited = micros(now.saturating_duration_since(c.sent_at));
                    if waited > 0 {
                        EndpointStats::record_phase(&mut self.stats[c.row].blocked, waited);
                        c.sent_at = now;
                    }
                }
                self.h2_dirty(j);
            }
            Err(OpenError::Full) => link.queue.push_front(idx),
            Err(OpenError::GoingAway | OpenError::IdsExhausted) => {
                self.h2_detach(idx);
                self.h2_dispatch(idx, now);
            }
        }
    }

    /// Opens streams for the link's waiting VUs while it has room.
    fn h2_pump(&mut self, j: usize, now: Instant) {
        loop {
            let Some(link) = self.links[j].as_mut() else {
                return;
            };
            let can = link.session.as_ref().is_some_and(|s| s.can_open());
            if link.state != LinkState::Open || !can {
                return;
            }
            let Some(idx) = link.queue.pop_front() else {
                return;
            };
            self.h2_open(j, idx, now);
        }
    }

    /// A link's timer: its connect, handshake or SETTINGS wait ran out.
    pub(super) fn h2_timer(&mut self, key: u64, now: Instant) {
        let j = ((key & !LINK_KEY) >> 32) as usize;
        if self.link_gens.get(j) != Some(&(key as u32)) {
            return;
        }
        let Some(link) = self.links[j].as_ref() else {
            return;
        };
        if now < link.deadline {
            return; // a later deadline has its own entry
        }
        let t = self.plan.connect_timeout;
        let f = match link.state {
            LinkState::Connecting => Failure::new(ErrorKind::Connect, Why::ConnectTimeout(t)),
            LinkState::Handshaking => Failure::new(ErrorKind::Tls, Why::HandshakeTimeout(t)),
            LinkState::Open if !link.session.as_ref().is_some_and(|s| s.settings_received()) => {
                Failure::new(
                    ErrorKind::Protocol,
                    Why::Said("no SETTINGS from the server within the connect timeout"),
                )
            }
            LinkState::Open => return,
        };
        self.h2_fail_link(j, f, now);
    }

    /// A readiness event on link `j`.
    pub(super) fn h2_event(&mut self, j: usize, ev: &Event, buf: &mut [u8]) {
        let Some(link) = self.links[j].as_mut() else {
            return;
        };
        let now = Instant::now();
        match link.state {
            LinkState::Connecting => match crate::transport::connected(link.io().socket()) {
                Ok(false) => {}
                Err(e) => {
                    let f = Failure::new(ErrorKind::Connect, Why::At(link.addr, e));
                    self.h2_fail_link(j, f, now);
                }
                Ok(true) => {
                    link.connected_at = now;
                    let took = micros(now.saturating_duration_since(link.started));
                    let unit = link.unit;
                    EndpointStats::record_phase(&mut self.stats[unit].connecting, took);
                    let row = &self.plan.endpoints[unit];
                    if row.tls_name.is_some() {
                        let config = self.plan.tls_h2.clone().expect("https rows have TLS");
                        if let Err(why) = link.secure(config, row) {
                            let f = Failure::new(ErrorKind::Tls, Why::Text(why));
                            return self.h2_fail_link(j, f, now);
                        }
                        return self.h2_handshake(j, now);
                    }
                    self.h2_up(j, now);
                }
            },
            LinkState::Handshaking => self.h2_handshake(j, now),
            LinkState::Open => {
                if ev.is_writable() && link.wants_write() {
                    self.h2_dirty(j);
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.h2_read(j, buf, ev.is_read_closed() || ev.is_error());
                }
            }
        }
    }

    fn h2_handshake(&mut self, j: usize, now: Instant) {
        let link = self.links[j].as_mut().expect("a live link");
        match link.handshake() {
            Handshake::Pending => {}
            Handshake::Failed(why) => {
                self.h2_fail_link(j, Failure::new(ErrorKind::Tls, Why::Text(why)), now)
            }
            Handshake::Done { resumed } => {
                let stats = &mut self.stats[link.unit];
                if resumed {
                    stats.tls_resumed += 1;
                }
                let took = micros(now.saturating_duration_since(link.connected_at));
                EndpointStats::record_phase(&mut stats.tls_handshaking, took);
                if link.io().alpn() != Some(b"h2") {
                    let why = match link.io().alpn() {
                        Some(p) => format!(
                            "the server chose {} by ALPN, not h2 (the row's http is \"2\")",
                            String::from_utf8_lossy(p)
                        ),
                        None => "the server agreed on no protocol by ALPN, not h2 (the row's http is \"2\")".into(),
                    };
                    let f = Failure::new(ErrorKind::Protocol, Why::Text(why));
                    return self.h2_fail_link(j, f, now);
                }
                self.h2_up(j, now);
            }
        }
    }

    /// The connection is up: the session starts (its preface and SETTINGS
    /// go out with the first requests, and a PING to measure the round
    /// trip), and waiting VUs open their streams.
    fn h2_up(&mut self, j: usize, now: Instant) {
        let link = self.links[j].as_mut().expect("a live link");
        // One stream until the server's SETTINGS say how many it takes:
        // assuming 100 made a server that allows 4 refuse the rest of the
        // first flight (REFUSED_STREAM, retried on new connections that
        // were refused again: 29,808 resets in 2 s at --streams 1000
        // against nginx's 4, found by a first-user try). The wait is one
        // round trip, once per connection.
        let cfg = h2::Config {
            initial_max_streams: 1,
            ..h2::Config::default()
        };
        let mut session = h2::Session::new(cfg, now);
        session.send_ping(now);
        link.session = Some(session);
        link.state = LinkState::Open;
        link.deadline = later(now, self.plan.connect_timeout);
        self.h2_arm(j);
        self.h2_dirty(j);
        self.h2_pump(j, now);
    }

    /// Reads link `j` and hands what completed to its VUs.
    pub(super) fn h2_read(&mut self, j: usize, buf: &mut [u8], peer_closed: bool) {
        let Some(mut link) = self.links[j].take() else {
            return;
        };
        let generation = self.link_gens[j];
        let now = Instant::now();
        let mut events = std::mem::take(&mut self.h2_events);
        let mut broken = None;
        let (conns, gens, plan) = (&mut self.conns, &self.gens, &self.plan);
        // the first failed call's grpc-message, for its log line
        let logged = self.logged[ErrorKind::Grpc as usize];
        let grpc_why = &mut self.grpc_why;
        // the first reply that does not decode as its method's output
        let undecodable = &mut self.undecodable;
        let logged_undecodable = self.logged_undecodable;
        let mut session = link.session.take().expect("an open link has a session");
        let read = link.read(
            buf,
            self.stamped,
            peer_closed,
            crate::conn::READS_PER_TURN,
            &mut self.stats[link.unit],
            |bytes, stamp| {
                let r = session.recv(bytes, now, &mut |ev| {
                    let vu = |t: u64| {
                        let idx = (t >> 32) as usize;
                        (gens.get(idx) == Some(&(t as u32))).then_some(idx)
                    };
                    let e = match ev {
                        h2::Event::Response(r) => {
                            let Some(idx) = vu(r.tag) else { return };
                            let Some(c) = conns[idx].as_mut() else { return };
                            let row = &plan.endpoints[c.row];
                            // (only a gRPC call that failed: an HTTP/2
                            // response has no outcome to look at)
                            if !logged
                                && grpc_why.is_empty()
                                && r.grpc.is_some_and(|g| g != Ok(Code::Ok))
                            {
                                grpc_why.push_str(&String::from_utf8_lossy(r.grpc_why));
                            }
                            if row.keep_head || row.keep_body || row.server_timing {
                                let held = c.held.get_or_insert_with(Box::<Held>::default);
                                held.keep(r.kept, r.timing);
                                // checks and captures read a gRPC answer as JSON
                                // (an OK call's empty message is one whose
                                // every field is at its default: decoded
                                // too; a failed call's has no reply)
                                if let (Some(g), Some(Ok(Code::Ok))) = (&row.grpc, r.grpc)
                                    && row.keep_body
                                {
                                    let output = g.method.output();
                                    let max = plan.max_capture_body;
                                    match to_json(&output, r.grpc_message, max, &mut held.body) {
                                        Ok(()) => {}
                                        Err(DecodeError::TooLarge(_)) => {
                                            held.body.clear();
                                            held.over = Some(max);
                                        }
                                        // not "over max_capture_body": its
                                        // checks and captures find nothing
                                        Err(e) => {
                                            held.body.clear();
                                            if !logged_undecodable && undecodable.is_empty() {
                                                *undecodable =
                                                    format!("endpoint {}: {e}", row.name);
                                            }
                                        }
                                    }
                                }
                            }
                            LinkEvent::Response {
                                idx,
                                status: r.status,
                                first_byte: r.first_byte,
                                window_wait: r.window_wait,
                                body_bytes: r.body_bytes,
                                stamp,
                                grpc: r.grpc,
                            }
                        }
                        h2::Event::Failed { tag, error, .. } => {
                            let Some(idx) = vu(tag) else { return };
                            LinkEvent::Failed { idx, error }
                        }
                        h2::Event::Unprocessed { tag, .. } => {
                            let Some(idx) = vu(tag) else { return };
                            LinkEvent::Unprocessed { idx }
                        }
                        h2::Event::GoAway { .. } => LinkEvent::GoAway,
                        h2::Event::Settings { after, .. } => LinkEvent::Settings(after),
                        h2::Event::PingRtt(rtt) => LinkEvent::Ping(rtt),
                    };
                    events.push(e);
                });
                match r {
                    Ok(()) => true,
                    Err(e) => {
                        broken = Some(e);
                        false
                    }
                }
            },
        );
        link.session = Some(session);
        let unit = link.unit;
        self.links[j] = Some(link);
        if !self.undecodable.is_empty() && !self.logged_undecodable {
            self.logged_undecodable = true;
            let why = std::mem::take(&mut self.undecodable);
            self.log(format!(
                "worker {}: {why} (its checks and captures find nothing)",
                self.id
            ));
        }
        // the read's stamps placed on the clocks as they are after it
        let clocks = Clocks::now();
        for e in events.drain(..) {
            // an event may close the link (its last VU retried elsewhere)
            // and a new one take its slot: link-level steps skip it then
            let live = self.link_gens[j] == generation;
            self.h2_on(j, live, unit, e, now, &clocks);
        }
        self.h2_events = events;
        if self.link_gens[j] != generation {
            return; // closed while its events were handled (see above)
        }
        if let Some(e) = broken {
            let f = Failure::new(ErrorKind::Protocol, Why::H2(H2Error::Protocol(e)));
            return self.h2_fail_link(j, f, now);
        }
        match read {
            LinkRead::Pending => {}
            LinkRead::Unread => self.link_unread.push((j, self.link_gens[j], peer_closed)),
            LinkRead::Closed => {
                let goaway = self.links[j]
                    .as_ref()
                    .and_then(|l| l.session.as_ref())
                    .and_then(|s| s.goaway());
                let f = match goaway {
                    Some((_, code)) => {
                        Failure::new(ErrorKind::H2Goaway, Why::H2(H2Error::GoAway(code)))
                    }
                    None => Failure::new(
                        ErrorKind::Read,
                        Why::Said("connection closed before the response was complete"),
                    ),
                };
                return self.h2_fail_link(j, f, now);
            }
            LinkRead::Failed(e, tls) => {
                let kind = if tls { ErrorKind::Tls } else { ErrorKind::Read };
                return self.h2_fail_link(j, Failure::new(kind, Why::Io(e)), now);
            }
        }
        // what reading queued (SETTINGS and PING acks, WINDOW_UPDATEs,
        // request bodies a WINDOW_UPDATE let go on) goes out this turn: a
        // body over 65,535 bytes otherwise waited for the next request's
        // write, and with none coming it never completed (found by a
        // first-user try: a 1 MB POST timed out where curl got 200)
        if self.links[j]
            .as_ref()
            .and_then(|l| l.session.as_ref())
            .is_some_and(h2::Session::wants_write)
        {
            self.h2_dirty(j);
        }
        // a link going away closes once its last stream ends
        let Some(link) = self.links[j].as_ref() else {
            return;
        };
        let away = link.session.as_ref().is_some_and(|s| s.goaway().is_some());
        if away && link.open_streams() == 0 {
            self.h2_close(j);
        } else if !link.queue.is_empty() {
            self.h2_pump(j, now);
        }
    }

    /// Handles one event of link `j` (of load unit `unit`).
    fn h2_on(
        &mut self,
        j: usize,
        live: bool,
        unit: usize,
        e: LinkEvent,
        now: Instant,
        clocks: &Clocks,
    ) {
        fn h2s(w: &mut Worker, unit: usize) -> &mut crate::h2_stats::H2Stats {
            w.stats[unit].h2.get_or_insert_default()
        }
        match e {
            LinkEvent::Response {
                idx,
                status,
                first_byte,
                window_wait,
                body_bytes,
                stamp,
                grpc,
            } => {
                // a freed slot goes to the oldest waiting VU first
                if live {
                    self.h2_pump(j, now);
                }
                let row = self.conn(idx).row;
                if self.plan.endpoints[row].grpc.is_some() {
                    self.grpc_outcome(idx, grpc);
                }
                let c = self.conn(idx);
                c.stream = StreamId::NONE;
                // the end from the kernel's receive stamp; the first byte
                // from the read's time, which can be later: never past the
                // end (waiting read longer than the whole call; found by a
                // first-user try)
                let done = clocks.arrival(stamp, c.sent_at);
                c.first_byte = Some(first_byte.max(c.sent_at).min(done));
                c.sending = micros(window_wait);
                c.received = body_bytes;
                self.complete(idx, status, true, done, now);
            }
            LinkEvent::Failed { idx, error } => {
                self.conn(idx).stream = StreamId::NONE;
                let kind = match error {
                    H2Error::Reset(code) => {
                        let row = self.conn(idx).row;
                        self.stats[row]
                            .h2
                            .get_or_insert_default()
                            .record_reset(code.to_u32());
                        if code == ErrorCode::RefusedStream {
                            return self.h2_retry(idx, now);
                        }
                        ErrorKind::H2Reset
                    }
                    H2Error::GoAway(_) => ErrorKind::H2Goaway,
                    H2Error::Protocol(_) => ErrorKind::Protocol,
                };
                self.fail(idx, Failure::new(kind, Why::H2(error)), now);
                if live {
                    self.h2_pump(j, now);
                }
            }
            LinkEvent::Unprocessed { idx } => {
                self.conn(idx).stream = StreamId::NONE;
                self.h2_retry(idx, now);
            }
            LinkEvent::GoAway => {
                h2s(self, unit).goaways += 1;
                if !live {
                    return;
                }
                // VUs waiting for a stream here go elsewhere
                let queued: Vec<usize> = self.links[j]
                    .as_mut()
                    .map(|l| l.queue.drain(..).collect())
                    .unwrap_or_default();
                for idx in queued {
                    self.h2_detach(idx);
                    self.h2_dispatch(idx, now);
                }
            }
            LinkEvent::Settings(after) => {
                EndpointStats::record_phase(&mut h2s(self, unit).settings, micros(after));
            }
            LinkEvent::Ping(rtt) => {
                EndpointStats::record_phase(&mut h2s(self, unit).ping_rtt, micros(rtt));
            }
        }
    }

    /// A gRPC call's outcome: its `grpc-status` counted; a status other
    /// than OK, or a response that is no valid gRPC answer, fails the
    /// request as `grpc` (its first one logged with the reason).
    fn grpc_outcome(&mut self, idx: usize, outcome: Option<Result<Code, CallError>>) {
        let c = self.conn(idx);
        let row = c.row;
        c.grpc_status = outcome.as_ref().and_then(|o| o.as_ref().ok()).copied();
        let failed = match outcome {
            Some(Ok(code)) => {
                self.stats[row].record_grpc_status(code as usize);
                (code != Code::Ok).then(|| format!("grpc-status {}", code.name()))
            }
            Some(Err(e)) => Some(format!("not a valid gRPC answer: {e}")),
            None => Some("not a valid gRPC answer: no grpc-status".to_string()),
        };
        let Some(why) = failed else { return };
        self.conn(idx).pending = Some(ErrorKind::Grpc);
        if !self.logged[ErrorKind::Grpc as usize] {
            self.logged[ErrorKind::Grpc as usize] = true;
            let name = &self.plan.endpoints[row].name;
            // what the server said of it (grpc-message), as ghz shows it
            let said = match std::mem::take(&mut self.grpc_why) {
                m if m.is_empty() => String::new(),
                m => format!(" (grpc-message: {m:?})"),
            };
            self.log(format!(
                "worker {}: endpoint {name}: first grpc error: {why}{said}",
                self.id
            ));
        }
    }

    /// A request the server did not process goes out again on another
    /// connection (its latency still counts from its first send), at most
    /// [`MAX_RETRIES`] times; then it fails as `h2_goaway`.
    fn h2_retry(&mut self, idx: usize, now: Instant) {
        let c = self.conn(idx);
        let row = c.row;
        c.retries += 1;
        if c.retries > MAX_RETRIES {
            let f = Failure::new(
                ErrorKind::H2Goaway,
                Why::Said("not processed by the server after 2 retries (GOAWAY or REFUSED_STREAM)"),
            );
            return self.fail(idx, f, now);
        }
        self.stats[row].h2.get_or_insert_default().retried += 1;
        self.h2_detach(idx);
        self.h2_dispatch(idx, now);
    }

    /// Link `j` failed: every request on it (in flight or waiting for a
    /// stream) fails with `failure`'s kind; its VUs back off and reconnect
    /// as after any failure.
    pub(super) fn h2_fail_link(&mut self, j: usize, failure: Failure, now: Instant) {
        let Some(mut link) = self.links[j].take() else {
            return;
        };
        let mut hit: Vec<usize> = link.queue.drain(..).collect();
        if link.session.is_some() {
            let _ = link.flush(&mut self.stats[link.unit]); // its GOAWAY, if any
            let s = link.session.as_mut().expect("checked");
            s.drain_open(|_, t| {
                let idx = (t >> 32) as usize;
                if self.gens.get(idx) == Some(&(t as u32)) {
                    hit.push(idx);
                }
            });
        }
        self.h2_free_slot(j);
        let mut first = Some(failure);
        let kind = first.as_ref().expect("set").kind;
        for idx in hit {
            if self.conns[idx]
                .as_ref()
                .is_none_or(|c| c.state != State::Awaiting)
            {
                continue;
            }
            // the reason is logged once: the first request carries it
            let f = first
                .take()
                .unwrap_or_else(|| Failure::new(kind, Why::Said("the connection failed")));
            self.fail(idx, f, now);
        }
    }

    /// Reads on from links that used their read budget last turn.
    pub(super) fn h2_read_on(&mut self, buf: &mut [u8]) {
        if self.link_unread.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.link_unread);
        for &(j, generation, peer_closed) in &waiting {
            if self.link_gens[j] == generation && self.links[j].is_some() {
                self.h2_read(j, buf, peer_closed);
            }
        }
    }
}
