//! The gateway's HTTP/1.1 server: one mio event loop, keep-alive
//! connections, and simulated downstream calls driven by timers.
//!
//! A request on a route starts its calls (all at once, or one after
//! another); each call takes a slot of its service's capacity or waits in
//! that service's queue, and finishes when its latency has passed on a
//! timer, so thousands of slow requests cost no threads. When the last call
//! is done the response is written: 200 with `body_bytes` of body, or 503
//! when any call failed. Requests on one connection are answered in order.
//! Every response says where its time went in a `Server-Timing` header: one
//! entry per call (`<service>;dur=<ms>`, from when the gateway issued the
//! call, its service's queue included, to its end) and `gateway;dur=<ms>`
//! for the whole request.

use crate::routes::{Latency, Mode, RoutesFile};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};
use userflux_engine::clock::{Alarm, arrival};
use userflux_engine::sys;

const LISTENER: Token = Token(usize::MAX);
const ALARM: Token = Token(usize::MAX - 1);
/// Any method: the gateway's own timing, as JSON (see README).
const STATS_PATH: &str = "/__gateway/stats";
/// A timer entry with this "service" releases a response held by a stall.
const STALL_RELEASE: usize = usize::MAX;
/// Largest request head; beyond it the answer is 431 and a close.
const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 1024 * 1024;

struct Service {
    capacity: u32,
    active: u32,
    /// Calls waiting for a slot.
    queue: VecDeque<CallRef>,
}

struct CallSpec {
    service: usize,
    latency: Latency,
    error_rate: f64,
}

struct RouteSpec {
    calls: Vec<CallSpec>,
    sequential: bool,
    /// (every, for): responses wait out these periodic pauses.
    stall: Option<(Duration, Duration)>,
    /// The whole 200 response, rendered once.
    ok: Vec<u8>,
    /// Answers with a session token (see `Route::login`).
    login: bool,
    /// Needs a session token (see `Route::auth`).
    auth: bool,
    /// Answers `{"id": N}` (see `Route::ids`).
    ids: bool,
}

/// A call in flight: which connection (and which of its lives) it serves.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct CallRef {
    conn: usize,
    generation: u32,
    call: usize,
}

/// A request being served.
struct Active {
    route: usize,
    /// Calls not finished yet.
    pending: usize,
    failed: bool,
    close_after: bool,
    /// When the request started (its bytes arrived).
    started: Instant,
    /// Per call: when the gateway issued it, and how long it took once done.
    issued: Vec<Instant>,
    took: Vec<Option<Duration>>,
}

struct Conn {
    sock: TcpStream,
    /// HTTPS: the connection's TLS state.
    tls: Option<Box<rustls::ServerConnection>>,
    generation: u32,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    active: Option<Active>,
    /// Close once `outbuf` is written.
    closing: bool,
    accepted: Instant,
    /// When the bytes of the last read arrived (the kernel's receive time):
    /// a request read then starts its calls from there, so a gateway woken
    /// late does not add its own delay to a route's latency.
    arrived: Option<Instant>,
}

pub struct Server {
    poll: Poll,
    listener: TcpListener,
    /// Serve HTTPS with this configuration.
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    routes: Vec<RouteSpec>,
    /// (method, path) → route index.
    index: HashMap<(String, String), usize>,
    /// Routes with `{name}` segments: method, segments (`None` = any), index.
    patterns: Vec<(String, Vec<Option<String>>, usize)>,
    /// Session tokens are `N.MAC` with MAC a keyed hash of N: checked
    /// without keeping every token issued.
    secret: u64,
    tokens: u64,
    ids: u64,
    services: Vec<Service>,
    /// Service names, for `Server-Timing`.
    service_names: Vec<String>,
    conns: Vec<Option<Conn>>,
    generations: Vec<u32>,
    free: Vec<usize>,
    /// Calls in progress, by when they end, with their service.
    timers: BinaryHeap<Reverse<(Instant, CallRef, usize)>>,
    rng: u64,
    /// Stall windows are counted from here.
    started: Instant,
    /// Wakes the loop when the earliest timer is due.
    alarm: Alarm,
    /// Calls ended, and how late their timers fired, for `GET /__gateway/stats`.
    calls_ended: u64,
    calls_late_1ms: u64,
    max_late: Duration,
}

fn response(status: &str, body: &[u8], close: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nServer: userflux-gateway\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

impl Server {
    pub fn new(
        listener: TcpListener,
        routes: &RoutesFile,
        seed: u64,
        tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    ) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut listener = listener;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let alarm = Alarm::new(poll.registry(), ALARM)?;
        let mut services: Vec<Service> = Vec::new();
        let mut service_names: Vec<String> = Vec::new();
        let mut service_ids: HashMap<String, usize> = HashMap::new();
        let mut specs = Vec::new();
        let mut index = HashMap::new();
        let mut patterns = Vec::new();
        for (i, r) in routes.routes.iter().enumerate() {
            let calls = r
                .calls
                .iter()
                .map(|c| {
                    let service = *service_ids.entry(c.service.clone()).or_insert_with(|| {
                        services.push(Service {
                            capacity: c.capacity,
                            active: 0,
                            queue: VecDeque::new(),
                        });
                        service_names.push(c.service.clone());
                        services.len() - 1
                    });
                    CallSpec {
                        service,
                        latency: c.latency,
                        error_rate: c.error_rate,
                    }
                })
                .collect();
            let mut body = Vec::with_capacity(r.body_bytes);
            body.resize(r.body_bytes, b'x');
            specs.push(RouteSpec {
                calls,
                sequential: r.mode == Mode::Sequential,
                stall: r.stall.map(|s| (s.every.0, s.duration.0)),
                ok: response("200 OK", &body, false),
                login: r.login,
                auth: r.auth,
                ids: r.ids,
            });
            if r.path.contains('{') {
                let segs = r
                    .path
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_string()))
                    .collect();
                patterns.push((r.method.clone(), segs, i));
            } else {
                index.insert((r.method.clone(), r.path.clone()), i);
            }
        }
        Ok(Server {
            poll,
            listener,
            tls,
            routes: specs,
            index,
            patterns,
            secret: mix(seed ^ 0x7075_6e6b_7365_6372),
            tokens: 0,
            ids: 0,
            services,
            service_names,
            conns: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            rng: seed | 1,
            started: Instant::now(),
            alarm,
            calls_ended: 0,
            calls_late_1ms: 0,
            max_late: Duration::ZERO,
        })
    }

    /// Serves until the process is killed.
    pub fn serve(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // A "10ms" call takes 10 ms, not up to 11 (see `Alarm`): the
            // gateway is the reference the engine's accuracy is measured
            // against.
            let timeout = match self.timers.peek() {
                Some(Reverse((at, ..))) => self.alarm.wait_for(*at),
                None => None,
            };
            match self.poll.poll(&mut events, timeout) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r?,
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    ALARM => self.alarm.rang(),
                    Token(idx) => {
                        if ev.is_writable() {
                            self.flush(idx);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.read(idx, &mut buf);
                        }
                    }
                }
            }
            let now = Instant::now();
            while let Some(Reverse((at, call, service))) = self.timers.peek().copied() {
                if at > now {
                    break;
                }
                self.timers.pop();
                if service == STALL_RELEASE {
                    if self.conns[call.conn]
                        .as_ref()
                        .is_some_and(|c| c.generation == call.generation)
                    {
                        self.finish(call.conn);
                    }
                } else {
                    // The gateway is the reference the engine's accuracy is
                    // measured against: it says when it was late itself.
                    let late = now - at;
                    self.calls_ended += 1;
                    self.calls_late_1ms += u64::from(late >= Duration::from_millis(1));
                    self.max_late = self.max_late.max(late);
                    self.call_done(call, service, now);
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    let _ = sys::enable_rx_timestamps(&sock);
                    let idx = self.free.pop().unwrap_or_else(|| {
                        self.conns.push(None);
                        self.generations.push(0);
                        self.conns.len() - 1
                    });
                    if self
                        .poll
                        .registry()
                        .register(
                            &mut sock,
                            Token(idx),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .is_err()
                    {
                        self.free.push(idx);
                        continue;
                    }
                    let generation = self.generations[idx];
                    let tls = match &self.tls {
                        Some(config) => match rustls::ServerConnection::new(config.clone()) {
                            Ok(t) => Some(Box::new(t)),
                            Err(_) => {
                                self.free.push(idx);
                                continue;
                            }
                        },
                        None => None,
                    };
                    self.conns[idx] = Some(Conn {
                        sock,
                        tls,
                        generation,
                        inbuf: Vec::new(),
                        outbuf: Vec::new(),
                        active: None,
                        closing: false,
                        accepted: Instant::now(),
                        arrived: None,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // Out of file descriptors and the like: try again on the next event.
                Err(_) => return,
            }
        }
    }

    fn close(&mut self, idx: usize) {
        if self.conns[idx].take().is_some() {
            self.generations[idx] = self.generations[idx].wrapping_add(1);
            self.free.push(idx);
        }
    }

    /// An HTTPS connection: TLS records in, plaintext into `inbuf`, the
    /// handshake's answers out. A bad record closes the connection (after
    /// our alert).
    fn read_tls(&mut self, idx: usize, buf: &mut [u8]) {
        loop {
            let Some(c) = self.conns[idx].as_mut() else {
                return;
            };
            let tls = c.tls.as_deref_mut().expect("a TLS connection");
            match tls.read_tls(&mut c.sock) {
                Ok(0) => return self.close(idx),
                Ok(_) => {
                    if tls.process_new_packets().is_err() {
                        let _ = tls.write_tls(&mut c.sock);
                        return self.close(idx);
                    }
                    loop {
                        match tls.reader().read(buf) {
                            Ok(0) => return self.close(idx),
                            Ok(n) => {
                                if c.inbuf.len() + n > MAX_HEAD + MAX_BODY {
                                    return self.close(idx);
                                }
                                c.inbuf.extend_from_slice(&buf[..n]);
                                c.arrived = Some(Instant::now());
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => return self.close(idx),
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close(idx),
            }
        }
        self.flush(idx); // the handshake's next messages, if any
        self.next_request(idx);
    }

    fn read(&mut self, idx: usize, buf: &mut [u8]) {
        if self.conns[idx].as_ref().is_some_and(|c| c.tls.is_some()) {
            return self.read_tls(idx, buf);
        }
        loop {
            let Some(c) = self.conns[idx].as_mut() else {
                return;
            };
            match sys::recv_stamped(&c.sock, buf) {
                Ok((0, _)) => return self.close(idx),
                Ok((n, stamp)) => {
                    if c.inbuf.len() + n > MAX_HEAD + MAX_BODY {
                        return self.close(idx);
                    }
                    c.inbuf.extend_from_slice(&buf[..n]);
                    c.arrived = Some(arrival(stamp, c.accepted, Instant::now()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close(idx),
            }
        }
        self.next_request(idx);
    }

    /// Starts the next buffered request on an idle connection.
    fn next_request(&mut self, idx: usize) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        if c.active.is_some() || c.closing || c.inbuf.is_empty() {
            return;
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(&c.inbuf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if c.inbuf.len() <= MAX_HEAD => return,
            Ok(httparse::Status::Partial) => {
                return self.reject(idx, "431 Request Header Fields Too Large");
            }
            Err(_) => return self.reject(idx, "400 Bad Request"),
        };
        let mut body_len = 0usize;
        let mut close_after = req.version == Some(0);
        let mut token: Option<String> = None;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("authorization")
                && let Some(t) = h.value.strip_prefix(b"Bearer ")
            {
                token = Some(String::from_utf8_lossy(t).trim().to_string());
            } else if h.name.eq_ignore_ascii_case("cookie") && token.is_none() {
                token = String::from_utf8_lossy(h.value)
                    .split(';')
                    .filter_map(|kv| kv.trim().split_once('='))
                    .find(|(k, _)| *k == "session")
                    .map(|(_, v)| v.to_string());
            }
            if h.name.eq_ignore_ascii_case("content-length") {
                match std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                {
                    Some(n) if n <= MAX_BODY => body_len = n,
                    _ => return self.reject(idx, "400 Bad Request"),
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return self.reject(idx, "501 Not Implemented");
            } else if h.name.eq_ignore_ascii_case("connection")
                && h.value.eq_ignore_ascii_case(b"close")
            {
                close_after = true;
            }
        }
        if c.inbuf.len() < head_len + body_len {
            return; // the body is still coming
        }
        let method = req.method.unwrap_or("").to_string();
        let path = req
            .path
            .unwrap_or("/")
            .split('?')
            .next()
            .unwrap_or("/")
            .to_string();
        c.inbuf.drain(..head_len + body_len);
        if path == STATS_PATH {
            let body = format!(
                "{{\"calls_ended\":{},\"calls_late_1ms\":{},\"max_late_us\":{}}}",
                self.calls_ended,
                self.calls_late_1ms,
                self.max_late.as_micros()
            );
            self.respond(
                idx,
                response("200 OK", body.as_bytes(), close_after),
                close_after,
            );
            return self.next_request(idx);
        }
        let Some(route) = self.lookup(&method, &path) else {
            let known = self.index.keys().any(|(_, p)| *p == path)
                || self
                    .patterns
                    .iter()
                    .any(|(_, segs, _)| matches(segs, &path));
            let status = if known {
                "405 Method Not Allowed"
            } else {
                "404 Not Found"
            };
            self.respond(
                idx,
                response(status, b"{\"error\":\"no such route\"}", close_after),
                close_after,
            );
            return self.next_request(idx);
        };
        if self.routes[route].auth && !token.as_deref().is_some_and(|t| self.valid(t)) {
            self.respond(
                idx,
                response(
                    "401 Unauthorized",
                    b"{\"error\":\"log in first: Authorization: Bearer TOKEN or the session cookie\"}",
                    close_after,
                ),
                close_after,
            );
            return self.next_request(idx);
        }
        let n_calls = self.routes[route].calls.len();
        let sequential = self.routes[route].sequential;
        let c = self.conns[idx].as_mut().expect("read above");
        let generation = c.generation;
        // A request pipelined behind another starts when that one is done
        // (`arrived` is taken by the first), not when its bytes came.
        let now = c.arrived.take().unwrap_or_else(Instant::now);
        c.active = Some(Active {
            route,
            pending: if sequential { n_calls.min(1) } else { n_calls },
            failed: false,
            close_after,
            started: now,
            issued: vec![now; n_calls],
            took: vec![None; n_calls],
        });
        if n_calls == 0 {
            return self.done(idx, Instant::now());
        }
        let starts = if sequential { 1 } else { n_calls };
        for call in 0..starts {
            self.start_call(
                CallRef {
                    conn: idx,
                    generation,
                    call,
                },
                now,
            );
        }
    }

    fn reject(&mut self, idx: usize, status: &str) {
        self.respond(idx, response(status, b"", true), true);
    }

    /// Takes a slot of the call's service, or queues for one.
    fn start_call(&mut self, call: CallRef, now: Instant) {
        let Some(a) = self.conns[call.conn]
            .as_mut()
            .and_then(|c| c.active.as_mut())
        else {
            return;
        };
        let route = a.route;
        let spec = &self.routes[route].calls[call.call];
        let svc = &mut self.services[spec.service];
        if svc.active < svc.capacity {
            svc.active += 1;
            let rng = &mut self.rng;
            let latency = spec.latency.sample(|| normal(rng));
            self.timers
                .push(Reverse((now + latency, call, spec.service)));
        } else {
            // issued now; its time in the queue is part of the call's
            a.issued[call.call] = now;
            svc.queue.push_back(call);
        }
    }

    fn call_done(&mut self, call: CallRef, service: usize, now: Instant) {
        // The slot frees up even when the connection has gone meanwhile.
        self.release(service, now);
        let Some(c) = self.conns[call.conn]
            .as_mut()
            .filter(|c| c.generation == call.generation)
        else {
            return;
        };
        let a = c
            .active
            .as_mut()
            .expect("a call belongs to an active request");
        let route = &self.routes[a.route];
        a.took[call.call] = Some(now.saturating_duration_since(a.issued[call.call]));
        let error_rate = route.calls[call.call].error_rate;
        let failed = error_rate > 0.0 && next_f64(&mut self.rng) < error_rate;
        a.failed |= failed;
        // Sequential calls stop at the first failure, as a real chain would.
        if route.sequential && !failed && call.call + 1 < route.calls.len() {
            a.issued[call.call + 1] = now;
            return self.start_call(
                CallRef {
                    call: call.call + 1,
                    ..call
                },
                now,
            );
        }
        a.pending -= 1;
        if a.pending == 0 {
            self.done(call.conn, now);
        }
    }

    /// Frees a slot of `service` and starts the next queued call, skipping
    /// calls whose connection has gone.
    fn release(&mut self, service: usize, now: Instant) {
        self.services[service].active -= 1;
        while let Some(next) = self.services[service].queue.pop_front() {
            let alive = self.conns[next.conn]
                .as_ref()
                .is_some_and(|c| c.generation == next.generation);
            if alive {
                self.start_call(next, now);
                return;
            }
        }
    }

    /// A request's calls are done: answer now, or when its route's stall ends.
    fn done(&mut self, idx: usize, now: Instant) {
        let Some(c) = self.conns[idx].as_ref() else {
            return;
        };
        let Some(a) = c.active.as_ref() else { return };
        if let Some((every, pause)) = self.routes[a.route].stall {
            let into = now.duration_since(self.started).as_nanos() % every.as_nanos();
            if into < pause.as_nanos() {
                let release = now + Duration::from_nanos((pause.as_nanos() - into) as u64);
                let call = CallRef {
                    conn: idx,
                    generation: c.generation,
                    call: 0,
                };
                return self.timers.push(Reverse((release, call, STALL_RELEASE)));
            }
        }
        self.finish(idx);
    }

    fn finish(&mut self, idx: usize) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        let Some(a) = c.active.take() else { return };
        let timing = self.server_timing(&a, Instant::now());
        let spec = &self.routes[a.route];
        let mut bytes = if a.failed {
            response(
                "503 Service Unavailable",
                b"{\"error\":\"a downstream call failed\"}",
                a.close_after,
            )
        } else {
            let mut r = if spec.login {
                self.tokens += 1;
                let t = token_for(self.secret, self.tokens);
                let mut r = response("200 OK", format!("{{\"token\":\"{t}\"}}").as_bytes(), false);
                let at = head_end(&r);
                let cookie = format!("Set-Cookie: session={t}; Path=/; HttpOnly\r\n");
                r.splice(at..at, cookie.into_bytes());
                r
            } else if spec.ids {
                self.ids += 1;
                response(
                    "200 OK",
                    format!("{{\"id\":{}}}", self.ids).as_bytes(),
                    false,
                )
            } else {
                spec.ok.clone()
            };
            if a.close_after {
                let at = head_end(&r);
                r.splice(at..at, b"Connection: close\r\n".iter().copied());
            }
            r
        };
        let at = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("rendered head")
            + 2;
        bytes.splice(at..at, timing.into_bytes());
        self.respond(idx, bytes, a.close_after);
        self.next_request(idx);
    }

    /// The route for a request: an exact path, else a pattern.
    fn lookup(&self, method: &str, path: &str) -> Option<usize> {
        if let Some(&r) = self.index.get(&(method.to_string(), path.to_string())) {
            return Some(r);
        }
        self.patterns
            .iter()
            .find(|(m, segs, _)| m == method && matches(segs, path))
            .map(|(_, _, r)| *r)
    }

    /// Whether a token came from this gateway's logins.
    fn valid(&self, token: &str) -> bool {
        token
            .split_once('.')
            .and_then(|(n, _)| u64::from_str_radix(n, 16).ok())
            .is_some_and(|n| n >= 1 && n <= self.tokens && token_for(self.secret, n) == token)
    }

    /// `Server-Timing: users;dur=2.013, gateway;dur=2.101\r\n` for a
    /// finished request: each call that ran, then the whole request.
    fn server_timing(&self, a: &Active, now: Instant) -> String {
        use std::fmt::Write as _;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut h = String::from("Server-Timing: ");
        for (spec, took) in self.routes[a.route].calls.iter().zip(&a.took) {
            if let Some(d) = took {
                let _ = write!(
                    h,
                    "{};dur={:.3}, ",
                    self.service_names[spec.service],
                    ms(*d)
                );
            }
        }
        let _ = write!(
            h,
            "gateway;dur={:.3}\r\n",
            ms(now.saturating_duration_since(a.started))
        );
        h
    }

    fn respond(&mut self, idx: usize, bytes: Vec<u8>, close: bool) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        c.outbuf.extend_from_slice(&bytes);
        c.closing |= close;
        self.flush(idx);
    }

    fn flush(&mut self, idx: usize) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        if let Some(tls) = c.tls.as_deref_mut() {
            loop {
                while tls.wants_write() {
                    match tls.write_tls(&mut c.sock) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return self.close(idx),
                    }
                }
                if c.outbuf.is_empty() {
                    break;
                }
                match tls.writer().write(&c.outbuf) {
                    Ok(0) => return,
                    Ok(n) => {
                        c.outbuf.drain(..n);
                    }
                    Err(_) => return self.close(idx),
                }
            }
            if c.closing {
                tls.send_close_notify();
                let _ = tls.write_tls(&mut c.sock);
                self.close(idx);
            }
            return;
        }
        while !c.outbuf.is_empty() {
            match c.sock.write(&c.outbuf) {
                Ok(0) => return self.close(idx),
                Ok(n) => {
                    c.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(idx),
            }
        }
        if c.closing {
            self.close(idx);
        }
    }
}

/// Where a rendered response's head ends, before its blank line.
fn head_end(r: &[u8]) -> usize {
    r.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("rendered head")
        + 2
}

/// Whether `path` fits a route pattern's segments (`None` matches any
/// non-empty segment).
fn matches(segs: &[Option<String>], path: &str) -> bool {
    let mut parts = path.split('/');
    for s in segs {
        match (s, parts.next()) {
            (Some(lit), Some(p)) if lit == p => {}
            (None, Some(p)) if !p.is_empty() => {}
            _ => return false,
        }
    }
    parts.next().is_none()
}

/// A login's `n`-th token: `n` and a keyed hash of it.
fn token_for(secret: u64, n: u64) -> String {
    format!("{n:x}.{:016x}", mix(n ^ secret))
}

/// splitmix64's finalizer: a cheap keyed mix, enough to tell a token the
/// gateway issued from one a client made up.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A standard normal number (Box-Muller), for log-normal latencies.
fn normal(state: &mut u64) -> f64 {
    let u = next_f64(state).max(f64::MIN_POSITIVE);
    let v = next_f64(state);
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// xorshift64*: a fast, seedable generator for simulated failures.
fn next_f64(state: &mut u64) -> f64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_numbers_are_uniform_enough() {
        let mut s = 42;
        let n = 100_000;
        let below = (0..n).filter(|_| next_f64(&mut s) < 0.3).count();
        assert!((below as f64 / n as f64 - 0.3).abs() < 0.01, "{below}");
    }
}
