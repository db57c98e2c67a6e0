//! One connection (a VU's): it owns its socket through a [`Transport`] and
//! its [`Session`] of the wire protocol, and does its own I/O — connect,
//! handshake, write a request, read and frame the response, drain between
//! requests. Each call returns what happened (a completed response, a
//! [`Failure`] of a kind, "read on next turn", nothing yet); the worker
//! ([`crate::worker`]) decides the policy: record it, think, back off, send
//! the next request, reconnect, retire.
//!
//! The per-request path is: read until the response is framed, record it,
//! write the next request on the same connection at once. Sockets are
//! registered once for both directions (mio is edge-triggered), so a request
//! costs one `write` and one `read` and no `epoll_ctl`. A read shorter than
//! the buffer means the socket is drained (a TCP receive queue hands over all
//! it has), so the loop stops there instead of paying for an `EAGAIN` read;
//! new data raises a new edge.

use crate::clock::arrival;
use crate::counters::Counters;
use crate::data::Order;
use crate::flow::FlowVu;
use crate::plan::{EndpointPlan, Plan};
use crate::protocol::{Event, ProtocolError, Session, StreamId, Wire};
use crate::stats::{EndpointStats, ErrorKind, micros};
use crate::template::{Ctx, RenderError};
use crate::transport::{Handshake, Sent, Transport, is_tls_failure};
use mio::{Registry, Token};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Full reads one connection may make in one turn of the loop (16 × 64 KiB).
pub const READS_PER_TURN: u32 = 16;
/// A connection with no entry in the timer wheel.
pub const NOT_ARMED: u64 = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
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
pub struct Conn {
    /// The socket and its transport; `None` while not connected.
    pub link: Option<Transport>,
    /// Where `link` is connected (a flow's steps may name other hosts).
    pub addr: Option<SocketAddr>,
    /// The wire protocol over `link`, kept across reconnects (its buffers
    /// are warm).
    pub session: Session,
    /// The request in flight on `session`.
    pub stream: StreamId,
    /// The load unit (an endpoint, or a flow's first step): its pool, its
    /// schedule, its VU count.
    pub ep: usize,
    /// The request row being sent: `ep`, or the flow's current step.
    pub row: usize,
    /// A templated request, rendered for each send (see [`Conn::render`]).
    pub out: Vec<u8>,
    /// This VU's number in this process (see [`crate::vu`]); over a
    /// sharded run it is [`Conn::vu`].
    pub number: u32,
    /// This VU's iteration: requests sent for an endpoint, iterations
    /// ended for a flow (the templates' `iteration`).
    pub iteration: u64,
    /// The current row of each data set (the templates' `data.`).
    pub rows: Box<[u32]>,
    /// A flow VU's iteration state.
    pub flow: Option<Box<FlowVu>>,
    /// When the TCP connection was established (the handshake starts).
    pub connected_at: Instant,
    /// When the first byte of a response that took several reads came.
    pub first_byte: Option<Instant>,
    pub state: State,
    pub sent_at: Instant,
    /// When the current state times out (connect, request) or ends (think, backoff).
    pub deadline: Instant,
    /// Ticks of this connection's entries in the timer wheel ([`NOT_ARMED`] = none).
    pub armed: [u64; 2],
    /// Bytes of the request written so far.
    pub written: usize,
    /// First to last byte of the request written, µs: 0 while it went
    /// whole into the socket at once (no clock read), [`SENDING`] while a
    /// full socket holds the rest back, then the time its last byte went.
    pub sending: u64,
    /// Removed once its in-flight request ends.
    pub retire: bool,
    /// Consecutive failures, for the reconnect backoff.
    pub failures: u32,
    /// Bytes of the current response received so far.
    pub received: u64,
    /// Open model: when the send this connection carries was due.
    pub intended: Option<Instant>,
    /// Holds a ticket of the request budget (see [`crate::budget`]) for a
    /// request not yet counted; without a budget tickets are free and this
    /// only marks a request in progress.
    pub ticket: bool,
    /// HTTP/2: the shared connection (`crate::link::Link`, by its index
    /// in the worker) this VU's requests go out on as streams; its own
    /// `link` stays empty. [`StreamId::NONE`] in `stream` while no stream
    /// is open.
    pub carrier: Option<u32>,
    /// HTTP/2: times this request went out again on a new connection
    /// (above a GOAWAY's last stream id, or REFUSED_STREAM); bounded so a
    /// server that refuses everything cannot make a retry storm.
    pub retries: u8,
    /// HTTP/2: the last response's kept head, body and `Server-Timing`,
    /// copied out of the shared session (whose buffers the next stream
    /// reuses); only for rows that keep something.
    pub held: Option<Box<Held>>,
    /// gRPC: buffers for a templated message (see `MessageTemplate::write`).
    pub scratch: Option<Box<crate::load::grpc::MessageScratch>>,
    /// An error a protocol found in a complete response (a gRPC status
    /// other than OK): the response is recorded as failed with it.
    pub pending: Option<ErrorKind>,
    /// gRPC: the last call's `grpc-status` (none when the answer had no
    /// readable one), for checks, thresholds' `grpc_status` tag, samples.
    pub grpc_status: Option<crate::load::grpc::Code>,
}

/// [`Conn::kept`] from the connection's parts (for a caller that holds
/// another of its fields mutably).
#[inline]
pub fn kept_of<'a>(
    held: &'a Option<Box<Held>>,
    session: &'a Session,
    stream: StreamId,
) -> crate::capture::Kept<'a> {
    match held {
        Some(h) => crate::capture::Kept {
            head: &h.head,
            body: &h.body,
            over: h.over,
        },
        None => session.kept(stream),
    }
}

/// An HTTP/2 response as a VU keeps it (see [`Conn::held`]).
#[derive(Debug, Default)]
pub struct Held {
    pub head: Vec<u8>,
    pub body: Vec<u8>,
    pub over: Option<usize>,
    pub timing: Vec<u8>,
}

impl Held {
    /// Keeps `kept` and `timing` in place of the last response's.
    pub fn keep(&mut self, kept: crate::capture::Kept<'_>, timing: &[u8]) {
        self.head.clear();
        self.head.extend_from_slice(kept.head);
        self.body.clear();
        self.body.extend_from_slice(kept.body);
        self.over = kept.over;
        self.timing.clear();
        self.timing.extend_from_slice(timing);
    }
}

/// [`Conn::sending`] while the request's last byte waits for the socket.
pub const SENDING: u64 = u64::MAX;

/// A request that failed: its error kind, and why (formatted only for the
/// first error of a kind, the one logged: a failing target must not cost
/// an allocation per request).
#[derive(Debug)]
pub struct Failure {
    pub kind: ErrorKind,
    pub why: Why,
}

/// Why a request failed, as the log line says it.
#[derive(Debug)]
pub enum Why {
    Io(io::Error),
    /// A connect to this address failed.
    At(SocketAddr, io::Error),
    Register(io::Error),
    Said(&'static str),
    Text(String),
    Protocol(ProtocolError),
    ConnectTimeout(Duration),
    HandshakeTimeout(Duration),
    RequestTimeout(Duration),
    /// The run ended this long after the request went out.
    Interrupted(Duration),
    /// A flow's var could not be sent (its name, why).
    Unsent(String, &'static str),
    /// An HTTP/2 stream or connection failed.
    H2(crate::protocol::h2::H2Error),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Io(e) => e.fmt(f),
            Why::At(addr, e) => write!(f, "{addr}: {e}"),
            Why::Register(e) => write!(f, "cannot register socket: {e}"),
            Why::Said(s) => f.write_str(s),
            Why::Text(s) => f.write_str(s),
            Why::Protocol(e) => e.fmt(f),
            Why::ConnectTimeout(t) => write!(f, "connect timed out after {t:?}"),
            Why::HandshakeTimeout(t) => write!(f, "no TLS handshake within {t:?} of the connect"),
            Why::RequestTimeout(t) => write!(f, "no complete response within {t:?}"),
            Why::Interrupted(t) => {
                write!(
                    f,
                    "still waiting for its response after {t:?} when the run ended"
                )
            }
            Why::Unsent(name, why) => write!(f, "vars.{name} {why}; the request was not sent"),
            Why::H2(e) => e.fmt(f),
        }
    }
}

impl Failure {
    #[inline]
    pub fn new(kind: ErrorKind, why: Why) -> Failure {
        Failure { kind, why }
    }
}

/// What a connecting socket's readiness meant.
#[derive(Debug)]
pub enum Connected {
    /// A spurious wake-up: still connecting.
    NotYet,
    /// Connected; the connect took this many µs.
    Up(u64),
    Failed(Failure),
}

/// What reading a response came to.
#[derive(Debug)]
pub enum Read {
    /// Drained (or would block): the next edge reads on.
    Pending,
    /// Used its read budget ([`READS_PER_TURN`]) with more to read: the
    /// worker reads it on in its next turn.
    Unread,
    /// The response completed, its last bytes received at `done` (read at
    /// `now`); `reuse` when the connection may carry the next request (if
    /// not, it is closed already).
    Response {
        status: u16,
        reuse: bool,
        done: Instant,
        now: Instant,
    },
    /// The request failed; the connection is unusable.
    Failed(Failure),
}

impl Conn {
    /// A VU for load unit `ep` with VU number `number`, not yet connected.
    pub fn new(
        ep: usize,
        number: u32,
        data_sets: usize,
        flow: Option<Box<FlowVu>>,
        session: Session,
        now: Instant,
        intended: Option<Instant>,
    ) -> Conn {
        Conn {
            link: None,
            addr: None,
            session,
            stream: StreamId::H1,
            ep,
            row: ep,
            number,
            out: Vec::new(),
            iteration: 0,
            rows: vec![0; data_sets].into(),
            flow,
            connected_at: now,
            first_byte: None,
            state: State::Backoff,
            sent_at: now,
            deadline: now,
            armed: [NOT_ARMED; 2],
            written: 0,
            sending: 0,
            retire: false,
            failures: 0,
            received: 0,
            intended,
            // an open-model send was given its ticket by the dispatch
            ticket: intended.is_some(),
            carrier: None,
            retries: 0,
            held: None,
            scratch: None,
            pending: None,
            grpc_status: None,
        }
    }

    /// The VU's number over the whole run (a shard's numbers interleave).
    #[inline]
    pub fn vu(&self, shard: Option<crate::shard::Shard>) -> u64 {
        shard.map_or(u64::from(self.number), |s| s.nth(u64::from(self.number)))
    }

    /// The completed response's kept head and body (for checks, captures
    /// and cookies): HTTP/2's as the VU held it, else the session's.
    #[inline]
    pub fn kept(&self) -> crate::capture::Kept<'_> {
        kept_of(&self.held, &self.session, self.stream)
    }

    /// The completed response's `Server-Timing` values, comma-joined.
    #[inline]
    pub fn timing(&self) -> &[u8] {
        match &self.held {
            Some(h) => &h.timing,
            None => self.session.timing(self.stream),
        }
    }

    /// A flow iteration is under way on this VU: its first step was sent and
    /// its last is not done. Stopping and ramping down let it finish (within
    /// the graceful stop), as k6's gracefulStop and gracefulRampDown do.
    #[inline]
    pub fn mid_iteration(&self) -> bool {
        self.flow.as_ref().is_some_and(|f| f.begun)
    }

    /// Mid-iteration, and (if retired) still within its graceful ramp-down.
    #[inline]
    pub fn may_go_on(&self, now: Instant) -> bool {
        self.flow.as_ref().is_some_and(|f| f.may_go_on(now))
    }

    /// Starts a TCP connect to `addr`, registered once for both directions
    /// under `token`. A connect failure's latency counts from `now`.
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> Result<(), Failure> {
        let sock = crate::transport::dial(addr, registry, token).map_err(|(at, e)| {
            let why = if at {
                Why::At(addr, e)
            } else {
                Why::Register(e)
            };
            Failure::new(ErrorKind::Connect, why)
        })?;
        self.link = Some(Transport::Plain(sock));
        self.addr = Some(addr);
        self.state = State::Connecting;
        self.sent_at = now;
        Ok(())
    }

    /// A connecting socket became ready: connected, failed, or a spurious
    /// wake-up (confirmed with `take_error` and `peer_addr`).
    pub fn finish_connect(&mut self, now: Instant) -> Connected {
        let Some(link) = self.link.as_ref() else {
            return Connected::NotYet;
        };
        match crate::transport::connected(link.socket()) {
            Ok(true) => {
                self.connected_at = now;
                Connected::Up(micros(now.saturating_duration_since(self.sent_at)))
            }
            Ok(false) => Connected::NotYet,
            Err(e) => {
                let addr = self.addr.expect("a connecting socket has an address");
                Connected::Failed(Failure::new(ErrorKind::Connect, Why::At(addr, e)))
            }
        }
    }

    /// TCP is up for an `https` row: its transport becomes TLS, and the
    /// handshake starts (drive it with [`Conn::handshake`]).
    pub fn secure(
        &mut self,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> Result<(), Failure> {
        let tls = rustls::ClientConnection::new(config, name)
            .map_err(|e| Failure::new(ErrorKind::Tls, Why::Text(crate::tls::describe(&e))))?;
        if let Some(link) = self.link.take() {
            self.link = Some(link.secure(tls));
        }
        self.state = State::Handshaking;
        Ok(())
    }

    /// Drives the TLS handshake as far as the socket allows.
    pub fn handshake(&mut self) -> Handshake {
        match self.link.as_mut() {
            Some(link) => link.handshake(),
            None => Handshake::Pending,
        }
    }

    /// A request on `row` goes out at `now`: the session expects its
    /// response, and its timing starts.
    #[inline]
    pub fn begin(&mut self, row: &EndpointPlan, now: Instant) {
        self.stream = self.session.start(row.head, &mut self.out).stream;
        self.sent_at = now;
        self.written = 0;
        self.sending = 0;
        self.received = 0;
        self.first_byte = None;
        self.state = State::Awaiting;
    }

    /// The bytes of the request in flight: the plan's pre-rendered request,
    /// or the one rendered into `out`.
    #[inline]
    fn request<'a>(out: &'a [u8], row: &'a EndpointPlan, wire: Wire) -> &'a [u8] {
        match wire {
            Wire::Rendered if row.template.is_none() => &row.request,
            Wire::Rendered | Wire::Framed => out,
        }
    }

    /// Part of the request (or TLS records) still waits to be written.
    #[inline]
    pub fn wants_write(&self, row: &EndpointPlan) -> bool {
        let pending = self.written < Self::request(&self.out, row, Wire::Rendered).len();
        pending
            || self.link.as_ref().is_some_and(Transport::wants_write)
            || self.session.wants_write()
    }

    /// Writes the request as far as the socket takes it (a writable edge
    /// continues it); counts the bytes in `stats`.
    #[inline]
    pub fn write(&mut self, row: &EndpointPlan, stats: &mut EndpointStats) -> Result<(), Failure> {
        let Some(link) = self.link.as_mut() else {
            return Ok(());
        };
        let request = Self::request(&self.out, row, Wire::Rendered);
        let before = self.written;
        let sent = link.send(request, &mut self.written);
        stats.bytes_out += (self.written - before) as u64;
        match sent {
            Sent::Done => {
                // only a request a full socket held back reads the clock
                if self.sending == SENDING {
                    self.sending = micros(Instant::now().saturating_duration_since(self.sent_at));
                }
                Ok(())
            }
            Sent::Blocked => {
                self.sending = SENDING;
                Ok(())
            }
            Sent::Failed(Some(e)) => Err(Failure::new(ErrorKind::Write, Why::Io(e))),
            Sent::Failed(None) => Err(Failure::new(
                ErrorKind::Write,
                Why::Said(link.took_nothing()),
            )),
        }
    }

    /// Reads until the response is framed, the socket is drained, the read
    /// budget is used, or it fails; counts the bytes in `stats`. `stamped`
    /// reads with receive times (see [`crate::clock`]). `peer_closed` is the
    /// event's read-closed flag: the FIN came with the data, raised no edge
    /// of its own, and must be read now.
    #[inline]
    pub fn read(
        &mut self,
        buf: &mut [u8],
        stamped: bool,
        peer_closed: bool,
        stats: &mut EndpointStats,
    ) -> Read {
        let mut reads = 0;
        loop {
            let Some(link) = self.link.as_mut() else {
                return Read::Pending;
            };
            let (n, stamp) = match link.read(buf, stamped) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Read::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let kind = if is_tls_failure(&e) {
                        ErrorKind::Tls
                    } else {
                        ErrorKind::Read
                    };
                    return Read::Failed(Failure::new(kind, Why::Io(e)));
                }
            };
            stats.bytes_in += n as u64;
            self.received += n as u64;
            if n == 0 {
                self.link = None;
                let now = Instant::now();
                return match self.session.closed() {
                    Ok(Event::Response(r)) => Read::Response {
                        status: r.status,
                        reuse: false,
                        done: now,
                        now,
                    },
                    _ => Read::Failed(Failure::new(
                        ErrorKind::Read,
                        Why::Said("connection closed before the response was complete"),
                    )),
                };
            }
            match self.session.feed(&buf[..n]) {
                Err(e) => return Read::Failed(Failure::new(ErrorKind::Parse, Why::Protocol(e))),
                Ok((_, Event::Partial)) => {
                    if self.first_byte.is_none() {
                        self.first_byte = Some(arrival(stamp, self.sent_at, Instant::now()));
                    }
                }
                Ok((_, Event::Response(r))) => {
                    let now = Instant::now();
                    if !r.reuse {
                        self.link = None;
                    }
                    let done = arrival(stamp, self.sent_at, now);
                    return Read::Response {
                        status: r.status,
                        reuse: r.reuse,
                        done,
                        now,
                    };
                }
                // (HTTP/2's stream and connection events: see `protocol`.)
                Ok((_, Event::Reset { .. } | Event::GoAway { .. })) => {
                    return Read::Failed(Failure::new(
                        ErrorKind::Read,
                        Why::Said("the server reset the stream"),
                    ));
                }
            }
            // A short read drained the socket; new data raises a new edge.
            // But a FIN that arrived with this data already raised its edge:
            // read on to see it (found by tests/hostile.rs: a partial body then
            // a close was counted as a timeout, not a read error).
            // (TLS reads on: records may still wait in rustls or the socket.)
            if n < buf.len() && !peer_closed && link.drained_by_short_read() {
                return Read::Pending;
            }
            // One connection whose server sends faster than the worker
            // reads would hold the loop, and with it every other connection
            // and every timer (issue #27): past its budget for this turn it
            // waits for the next one, where it is read again unasked (its
            // edge has been used).
            reads += 1;
            if reads == READS_PER_TURN {
                return Read::Unread;
            }
        }
    }

    /// A connection between requests became readable: the server closed it
    /// (fine: reconnect before the next request) or sent bytes unasked
    /// (they answer no request: the connection is out of step). Either way
    /// it is dropped; a TLS 1.3 session ticket after the handshake is no
    /// plaintext and reads as nothing.
    pub fn drain(&mut self, buf: &mut [u8]) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        match link.read(buf, false) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Ok(_) | Err(_) => self.link = None,
        }
    }

    /// Before a templated request or a flow step goes out: starts the flow
    /// iteration (its data rows, an empty jar and vars) at its first step,
    /// takes an endpoint's data rows, and renders the request into `out`. A
    /// captured value that cannot be sent fails the request (kind `capture`).
    #[inline]
    pub fn render(
        &mut self,
        plan: &Plan,
        counters: &Counters,
        rng: &mut fastrand::Rng,
        now: Instant,
    ) -> Result<(), Failure> {
        let row = &plan.endpoints[self.row];
        let vu = self.vu(plan.shard);
        let sets = match &row.step {
            Some(step) if self.flow.as_deref_mut().is_some_and(|f| f.begin(now)) => {
                &plan.flows[step.flow].data_sets[..]
            }
            Some(_) => &[][..],
            None => &row.data_sets[..],
        };
        for &set in sets {
            let d = &plan.data[set];
            let n = d.rows as u64;
            let r = match d.order {
                Order::Sequential => {
                    let j = counters.data_next[set].fetch_add(1, Ordering::Relaxed);
                    plan.shard.map_or(j, |s| s.nth(j)) % n
                }
                Order::Random => rng.u64(..n),
                Order::PerVu => vu % n,
            };
            self.rows[set] = r as u32;
        }
        // a templated request, or a gRPC call's templated message
        let message = row.grpc.as_deref().filter(|g| g.message.is_dynamic());
        if row.template.is_none() && message.is_none() {
            return Ok(());
        }
        let cookies = row
            .step
            .as_ref()
            .is_some_and(|s| plan.flows[s.flow].cookies);
        let flow = self.flow.as_deref();
        let mut ctx = Ctx {
            vu,
            iteration: self.iteration,
            seq: None,
            seq_source: &counters.seq,
            shard: plan.shard,
            rng,
            data: &plan.data,
            rows: &self.rows,
            vars: flow.map(|f| &f.vars),
        };
        let rendered = match (message, &row.template) {
            (Some(g), _) => {
                self.out.clear();
                let scratch = self.scratch.get_or_insert_default();
                g.message.write(&mut self.out, &mut ctx, scratch)
            }
            (None, Some(t)) => t
                .render(
                    &mut self.out,
                    &mut ctx,
                    flow.filter(|_| cookies)
                        .map(|f| (&f.jar, row.host.as_str())),
                )
                .map_err(crate::load::grpc::EncodeError::Render),
            (None, None) => unreachable!("returned above"),
        };
        if row.step.is_none() {
            self.iteration += 1;
        }
        rendered.map_err(|e| {
            let crate::load::grpc::EncodeError::Render(e) = e else {
                let why = format!("the message could not be encoded: {e}");
                return Failure::new(ErrorKind::Grpc, Why::Text(why));
            };
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
            Failure::new(ErrorKind::Capture, Why::Unsent(name, why))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    /// A plan with one endpoint `GET /` at `addr`.
    fn plan(addr: SocketAddr) -> Plan {
        let json = format!(
            r#"{{"target": "http://{addr}", "endpoints": [{{"name": "e", "path": "/"}}]}}"#
        );
        crate::run::prepare(&crate::config::Config::parse(&json).unwrap()).unwrap()
    }

    /// Reads on until the response ends or fails (within 5 s).
    fn read(c: &mut Conn, buf: &mut [u8], stats: &mut EndpointStats) -> Read {
        let t0 = Instant::now();
        loop {
            match c.read(buf, false, false, stats) {
                Read::Pending if t0.elapsed().as_secs() < 5 => std::thread::yield_now(),
                r => return r,
            }
        }
    }

    #[test]
    fn a_connection_connects_sends_and_reads_its_responses_without_a_worker() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let plan = plan(listener.local_addr().unwrap());
        let row = &plan.endpoints[0];
        let poll = mio::Poll::new().unwrap();
        let mut stats = EndpointStats::new();
        let mut buf = vec![0u8; 4096];
        let t0 = Instant::now();
        let mut c = Conn::new(0, 7, 0, None, Session::h1(), t0, None);
        assert_eq!((c.vu(None), c.state, c.ticket), (7, State::Backoff, false));
        c.connect(row.addr, poll.registry(), Token(0), t0).unwrap();
        assert_eq!(c.state, State::Connecting);
        let (mut peer, _) = listener.accept().unwrap();
        while let Connected::NotYet = c.finish_connect(Instant::now()) {
            assert!(t0.elapsed().as_secs() < 5, "never connected");
            std::thread::yield_now();
        }

        // The request goes out as the plan rendered it, and is counted.
        c.begin(row, Instant::now());
        assert_eq!(c.state, State::Awaiting);
        c.write(row, &mut stats).unwrap();
        assert!(!c.wants_write(row));
        assert_eq!(stats.bytes_out, row.request.len() as u64);
        let mut got = vec![0u8; row.request.len()];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(got, &row.request[..]);

        // A response in two pieces: the first byte is stamped, the end completes it.
        peer.write_all(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap();
        while c.first_byte.is_none() {
            assert!(matches!(
                c.read(&mut buf, false, false, &mut stats),
                Read::Pending
            ));
            assert!(t0.elapsed().as_secs() < 5, "the first bytes never came");
        }
        peer.write_all(b"ngth: 2\r\n\r\nok").unwrap();
        let Read::Response { status, reuse, .. } = read(&mut c, &mut buf, &mut stats) else {
            panic!("no response");
        };
        assert_eq!((status, reuse), (200, true));
        assert_eq!(c.received, stats.bytes_in);
        assert!(c.link.is_some(), "kept alive");

        // Bytes after a response answer no request: the connection is dropped.
        c.begin(row, Instant::now());
        c.write(row, &mut stats).unwrap();
        peer.read_exact(&mut got).unwrap();
        peer.write_all(b"HTTP/1.1 503 No\r\nContent-Length: 0\r\n\r\nEXTRA")
            .unwrap();
        let Read::Response { status, reuse, .. } = read(&mut c, &mut buf, &mut stats) else {
            panic!("no response");
        };
        assert_eq!((status, reuse), (503, false));
        assert!(c.link.is_none());
    }

    #[test]
    fn a_close_mid_response_is_a_read_failure_and_a_refused_connect_a_connect_one() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let plan = plan(listener.local_addr().unwrap());
        let row = &plan.endpoints[0];
        let poll = mio::Poll::new().unwrap();
        let mut stats = EndpointStats::new();
        let mut buf = vec![0u8; 4096];
        let t0 = Instant::now();
        let mut c = Conn::new(0, 0, 0, None, Session::h1(), t0, None);
        c.connect(row.addr, poll.registry(), Token(0), t0).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        while let Connected::NotYet = c.finish_connect(Instant::now()) {
            std::thread::yield_now();
        }
        c.begin(row, Instant::now());
        c.write(row, &mut stats).unwrap();
        // (read, so that the close is a FIN, not a reset for unread bytes)
        let mut got = vec![0u8; row.request.len()];
        peer.read_exact(&mut got).unwrap();
        peer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort")
            .unwrap();
        drop(peer);
        let Read::Failed(f) = read(&mut c, &mut buf, &mut stats) else {
            panic!("a truncated body completed");
        };
        assert_eq!(f.kind, ErrorKind::Read);
        assert_eq!(
            f.why.to_string(),
            "connection closed before the response was complete"
        );
        assert!(c.link.is_none());

        // Nothing listens on the port any more.
        let addr = row.addr;
        drop(listener);
        let mut c = Conn::new(0, 0, 0, None, Session::h1(), t0, None);
        let failed = match c.connect(addr, poll.registry(), Token(1), t0) {
            Err(f) => f,
            Ok(()) => loop {
                match c.finish_connect(Instant::now()) {
                    Connected::Failed(f) => break f,
                    Connected::NotYet => std::thread::yield_now(),
                    Connected::Up(_) => panic!("connected to a closed port"),
                }
            },
        };
        assert_eq!(failed.kind, ErrorKind::Connect);
        assert!(failed.why.to_string().starts_with(&addr.to_string()));
    }
}
