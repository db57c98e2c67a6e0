//! The gateway's routes at work, whichever protocol asked: one route table,
//! two front doors. The HTTP/1.1 door (`server.rs`, in the event loop) and
//! the HTTP/2 door (`http2.rs`, on its own thread, its requests brought to the
//! event loop over a channel) both hand a [`Request`] to [`Fanout::route`]
//! and [`Fanout::start`], and both get an [`Answer`] back; the services'
//! capacity and queues, the timers, the logins' tokens, the ids and the
//! counters are shared, so a route behaves the same over either protocol
//! and under both at once.
//!
//! A request on a route starts its calls (all at once, or one after
//! another); each call takes a slot of its service's capacity or waits in
//! that service's queue, and finishes when its latency has passed on a
//! timer, so thousands of slow requests cost no threads. When the last call
//! is done the answer is 200 with `body_bytes` of body, or 503 when any call
//! failed. Every answer of a route says where its time went in a
//! `Server-Timing` value: one entry per call (`<service>;dur=<ms>`, from
//! when the gateway issued the call, its service's queue included, to its
//! end) and `gateway;dur=<ms>` for the whole request.

use crate::routes::{Latency, Mode, RoutesFile};
use bytes::Bytes;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Any method: the gateway's own timing and counts, as JSON (see README).
pub const STATS_PATH: &str = "/__gateway/stats";
/// A timer entry with this "service" releases an answer held by a stall.
const STALL_RELEASE: usize = usize::MAX;

/// The protocol a request came in by, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Http1,
    H2,
}

/// A request as a front door hands it over (its body already read).
pub struct Request<'a> {
    pub method: &'a str,
    /// The path, with or without a query string (ignored when matching).
    pub path: &'a str,
    /// A session token it carries (see [`session_token`]).
    pub token: Option<String>,
    pub door: Door,
}

/// Who waits for an answer.
pub enum Origin {
    /// An HTTP/1.1 connection of the event loop: its slot, the generation of
    /// that slot's life, and whether to close after answering.
    Http1 {
        conn: usize,
        generation: u32,
        close_after: bool,
    },
    /// An HTTP/2 stream, served on the h2 thread, waiting on this channel.
    H2(tokio::sync::oneshot::Sender<Answer>),
}

/// What a request is answered, for a front door to put in its protocol's
/// terms.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
    /// `Some(r)`: the plain 200 answer of route `r`, whose HTTP/1.1 bytes
    /// the door rendered once.
    pub route_ok: Option<usize>,
    /// A `Set-Cookie` value (a login's session).
    pub set_cookie: Option<String>,
    /// The `Server-Timing` value (answers of a route).
    pub server_timing: Option<String>,
}

impl Answer {
    pub fn plain(status: u16, body: &'static [u8]) -> Answer {
        Answer {
            status,
            body: Bytes::from_static(body),
            route_ok: None,
            set_cookie: None,
            server_timing: None,
        }
    }
}

/// The reason phrase of the statuses the gateway answers.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "200 OK",
        400 => "400 Bad Request",
        401 => "401 Unauthorized",
        404 => "404 Not Found",
        405 => "405 Method Not Allowed",
        413 => "413 Content Too Large",
        431 => "431 Request Header Fields Too Large",
        501 => "501 Not Implemented",
        503 => "503 Service Unavailable",
        _ => "500 Internal Server Error",
    }
}

/// The session token of a request: `Authorization: Bearer TOKEN`, else the
/// cookie `session` (from any of its `Cookie` headers; HTTP/2 may split
/// them).
pub fn session_token<'h>(
    authorization: Option<&[u8]>,
    cookies: impl IntoIterator<Item = &'h [u8]>,
) -> Option<String> {
    if let Some(t) = authorization.and_then(|v| v.strip_prefix(b"Bearer ")) {
        return Some(String::from_utf8_lossy(t).trim().to_string());
    }
    cookies.into_iter().find_map(|v| {
        String::from_utf8_lossy(v)
            .split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == "session")
            .map(|(_, v)| v.to_string())
    })
}

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
    /// (every, for): answers wait out these periodic pauses.
    stall: Option<(Duration, Duration)>,
    /// The 200 answer's body.
    body: Bytes,
    /// Answers with a session token (see `Route::login`).
    login: bool,
    /// Needs a session token (see `Route::auth`).
    auth: bool,
    /// Answers `{"id": N}` (see `Route::ids`).
    ids: bool,
}

/// A request waiting for its calls: its slot and the generation of that
/// slot's life (a front door that gives up on it abandons it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReqId {
    slot: usize,
    generation: u32,
}

/// A gRPC call in flight (`--grpc`): what the event loop needs to end it.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    call: CallRef,
}

/// A call in flight: which request (and which life of its slot) it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct CallRef {
    req: usize,
    generation: u32,
    call: usize,
}

/// A request being served.
struct Active {
    origin: Origin,
    route: usize,
    /// Calls not finished yet.
    pending: usize,
    failed: bool,
    /// When the request started (its bytes arrived).
    started: Instant,
    /// Per call: when the gateway issued it, and how long it took once done.
    issued: Vec<Instant>,
    took: Vec<Option<Duration>>,
}

pub struct Fanout {
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
    /// Requests waiting for their calls, by slot.
    reqs: Vec<Option<Active>>,
    generations: Vec<u32>,
    free: Vec<usize>,
    /// Calls in progress, by when they end, with their service.
    timers: BinaryHeap<Reverse<(Instant, CallRef, usize)>>,
    rng: u64,
    /// Stall windows are counted from here.
    started: Instant,
    /// Calls ended, and how late their timers fired, for `GET /__gateway/stats`.
    calls_ended: u64,
    calls_late_1ms: u64,
    max_late: Duration,
    /// Requests answered by door (HTTP/1.1, h2) and by status, the stats
    /// requests left out: the count a client's own count is checked against.
    answered: [u64; 2],
    statuses: BTreeMap<u16, u64>,
    /// The most requests waiting for their calls at once (many streams of
    /// one connection show here).
    max_in_flight: usize,
    /// Answers of requests whose calls ended, for their front doors.
    pub outbox: VecDeque<(Origin, Answer)>,
    /// `--grpc`: calls go to the real services, and each of our services'
    /// index in `grpc::SERVICES`; `None`: calls are simulated here.
    grpc: Option<(crate::grpc::Calls, Vec<usize>)>,
}

impl Fanout {
    pub fn new(routes: &RoutesFile, seed: u64) -> Fanout {
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
            specs.push(RouteSpec {
                calls,
                sequential: r.mode == Mode::Sequential,
                stall: r.stall.map(|s| (s.every.0, s.duration.0)),
                body: Bytes::from(vec![b'x'; r.body_bytes]),
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
        Fanout {
            routes: specs,
            index,
            patterns,
            secret: mix(seed ^ 0x7075_6e6b_7365_6372),
            tokens: 0,
            ids: 0,
            services,
            service_names,
            reqs: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            rng: seed | 1,
            started: Instant::now(),
            calls_ended: 0,
            calls_late_1ms: 0,
            max_late: Duration::ZERO,
            answered: [0; 2],
            statuses: BTreeMap::new(),
            max_in_flight: 0,
            outbox: VecDeque::new(),
            grpc: None,
        }
    }

    /// Makes every call a gRPC call to the demo's services (`--grpc`): each
    /// service the routes name must be one of them.
    pub fn use_grpc(&mut self, calls: crate::grpc::Calls) -> Result<(), String> {
        let services = crate::grpc::SERVICES;
        let map = self
            .service_names
            .iter()
            .map(|name| {
                services.iter().position(|s| s == name).ok_or_else(|| {
                    format!(
                        "service \"{name}\" is not one of the gRPC services ({})",
                        services.join(", ")
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        self.grpc = Some((calls, map));
        Ok(())
    }

    /// A gRPC call ended (`failed`: any status but OK, the deadline
    /// included).
    pub fn grpc_done(&mut self, ticket: Ticket, failed: bool, now: Instant) {
        self.calls_ended += 1;
        self.ended(ticket.call, failed, now);
    }

    /// Each route's 200 body, in route order (for a door to render once).
    pub fn route_bodies(&self) -> impl Iterator<Item = &Bytes> {
        self.routes.iter().map(|r| &r.body)
    }

    /// Counts an answer a door sent of its own (a malformed request).
    pub fn count(&mut self, door: Door, status: u16) {
        self.answered[door as usize] += 1;
        *self.statuses.entry(status).or_default() += 1;
    }

    /// The route a request takes, or its answer when it calls nothing on
    /// the way: the stats, 404, 405, 401.
    pub fn route(&mut self, req: &Request) -> Result<usize, Answer> {
        let path = req.path.split('?').next().unwrap_or("/");
        if path == STATS_PATH {
            return Err(self.stats());
        }
        let answer = match self.lookup(req.method, path) {
            Some(route)
                if self.routes[route].auth
                    && !req.token.as_deref().is_some_and(|t| self.valid(t)) =>
            {
                Answer::plain(
                    401,
                    b"{\"error\":\"log in first: Authorization: Bearer TOKEN or the session cookie\"}",
                )
            }
            Some(route) => return Ok(route),
            None => {
                let known = self.index.keys().any(|(_, p)| *p == path)
                    || self.patterns.iter().any(|(_, segs, _)| matches(segs, path));
                let status = if known { 405 } else { 404 };
                Answer::plain(status, b"{\"error\":\"no such route\"}")
            }
        };
        self.count(req.door, answer.status);
        Err(answer)
    }

    /// Starts `route`'s calls for a request that arrived at `arrived`; its
    /// answer comes out of [`Fanout::outbox`] once they end.
    pub fn start(&mut self, route: usize, arrived: Instant, origin: Origin) -> ReqId {
        let n_calls = self.routes[route].calls.len();
        let sequential = self.routes[route].sequential;
        let slot = self.free.pop().unwrap_or_else(|| {
            self.reqs.push(None);
            self.generations.push(0);
            self.reqs.len() - 1
        });
        let generation = self.generations[slot];
        self.max_in_flight = self.max_in_flight.max(self.reqs.len() - self.free.len());
        self.reqs[slot] = Some(Active {
            origin,
            route,
            pending: if sequential { n_calls.min(1) } else { n_calls },
            failed: false,
            started: arrived,
            issued: vec![arrived; n_calls],
            took: vec![None; n_calls],
        });
        if n_calls == 0 {
            self.done(slot, Instant::now());
        } else {
            let starts = if sequential { 1 } else { n_calls };
            for call in 0..starts {
                let call = CallRef {
                    req: slot,
                    generation,
                    call,
                };
                self.start_call(call, arrived);
            }
        }
        ReqId { slot, generation }
    }

    /// The front door gave up on a request (its connection closed): its
    /// calls still hold their slots until they end, then nothing is answered.
    pub fn abandon(&mut self, id: ReqId) {
        if self.generations[id.slot] == id.generation && self.reqs[id.slot].is_some() {
            self.free_slot(id.slot);
        }
    }

    fn free_slot(&mut self, slot: usize) -> Option<Active> {
        let a = self.reqs[slot].take();
        self.generations[slot] = self.generations[slot].wrapping_add(1);
        self.free.push(slot);
        a
    }

    /// When the earliest call or stall ends.
    pub fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, ..))| *at)
    }

    /// Ends the calls and stalls due by `now`; answers go to the outbox.
    pub fn fire(&mut self, now: Instant) {
        while let Some(Reverse((at, call, service))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if service == STALL_RELEASE {
                if self.generations[call.req] == call.generation {
                    self.finish(call.req);
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

    /// Whether a queued call's request still waits for it; a request whose
    /// HTTP/2 stream has gone (reset, or its connection closed) is dropped
    /// here, so its queued calls do not take a service's slots.
    fn wanted(&mut self, call: CallRef) -> bool {
        if self.generations[call.req] != call.generation {
            return false;
        }
        let gone = self.reqs[call.req]
            .as_ref()
            .is_some_and(|a| matches!(&a.origin, Origin::H2(reply) if reply.is_closed()));
        if gone {
            self.free_slot(call.req);
        }
        !gone
    }

    /// Takes a slot of the call's service, or queues for one.
    fn start_call(&mut self, call: CallRef, now: Instant) {
        let Some(a) = self.reqs[call.req].as_mut() else {
            return;
        };
        let spec = &self.routes[a.route].calls[call.call];
        if let Some((calls, map)) = self.grpc.as_mut() {
            // the service has the capacity, the latency and the errors
            return calls.issue(Ticket { call }, map[spec.service]);
        }
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

    /// A simulated call's timer fired: its slot frees up, and it fails at
    /// its error rate.
    fn call_done(&mut self, call: CallRef, service: usize, now: Instant) {
        // The slot frees up even when the request has gone meanwhile.
        self.release(service, now);
        if self.generations[call.req] != call.generation {
            return;
        }
        let Some(a) = self.reqs[call.req].as_ref() else {
            return;
        };
        let error_rate = self.routes[a.route].calls[call.call].error_rate;
        let failed = error_rate > 0.0 && next_f64(&mut self.rng) < error_rate;
        self.ended(call, failed, now);
    }

    /// A call ended: the next of a sequence starts, or the request is done
    /// when it was the last.
    fn ended(&mut self, call: CallRef, failed: bool, now: Instant) {
        if self.generations[call.req] != call.generation {
            return;
        }
        let Some(a) = self.reqs[call.req].as_mut() else {
            return;
        };
        let route = &self.routes[a.route];
        a.took[call.call] = Some(now.saturating_duration_since(a.issued[call.call]));
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
            self.done(call.req, now);
        }
    }

    /// Frees a slot of `service` and starts the next queued call, skipping
    /// calls whose request has gone.
    fn release(&mut self, service: usize, now: Instant) {
        self.services[service].active -= 1;
        while let Some(next) = self.services[service].queue.pop_front() {
            if self.wanted(next) {
                self.start_call(next, now);
                return;
            }
        }
    }

    /// A request's calls are done: answer now, or when its route's stall ends.
    fn done(&mut self, slot: usize, now: Instant) {
        let Some(a) = self.reqs[slot].as_ref() else {
            return;
        };
        if let Some((every, pause)) = self.routes[a.route].stall {
            let into = now.duration_since(self.started).as_nanos() % every.as_nanos();
            if into < pause.as_nanos() {
                let release = now + Duration::from_nanos((pause.as_nanos() - into) as u64);
                let call = CallRef {
                    req: slot,
                    generation: self.generations[slot],
                    call: 0,
                };
                return self.timers.push(Reverse((release, call, STALL_RELEASE)));
            }
        }
        self.finish(slot);
    }

    fn finish(&mut self, slot: usize) {
        let Some(a) = self.free_slot(slot) else {
            return;
        };
        let server_timing = Some(self.server_timing(&a, Instant::now()));
        let spec = &self.routes[a.route];
        let answer = if a.failed {
            Answer {
                server_timing,
                ..Answer::plain(503, b"{\"error\":\"a downstream call failed\"}")
            }
        } else if spec.login {
            self.tokens += 1;
            let t = token_for(self.secret, self.tokens);
            Answer {
                status: 200,
                body: Bytes::from(format!("{{\"token\":\"{t}\"}}")),
                route_ok: None,
                set_cookie: Some(format!("session={t}; Path=/; HttpOnly")),
                server_timing,
            }
        } else if spec.ids {
            self.ids += 1;
            Answer {
                status: 200,
                body: Bytes::from(format!("{{\"id\":{}}}", self.ids)),
                route_ok: None,
                set_cookie: None,
                server_timing,
            }
        } else {
            Answer {
                status: 200,
                body: spec.body.clone(),
                route_ok: Some(a.route),
                set_cookie: None,
                server_timing,
            }
        };
        let door = match a.origin {
            Origin::Http1 { .. } => Door::Http1,
            Origin::H2(_) => Door::H2,
        };
        self.count(door, answer.status);
        self.outbox.push_back((a.origin, answer));
    }

    /// `GET /__gateway/stats`: the gateway's own lateness and counts.
    fn stats(&self) -> Answer {
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("\"{s}\":{n}"))
            .collect();
        let body = format!(
            "{{\"calls_ended\":{},\"calls_late_1ms\":{},\"max_late_us\":{},\"max_in_flight\":{},\"requests\":{{\"http/1.1\":{},\"h2\":{}}},\"status_codes\":{{{}}}}}",
            self.calls_ended,
            self.calls_late_1ms,
            self.max_late.as_micros(),
            self.max_in_flight,
            self.answered[Door::Http1 as usize],
            self.answered[Door::H2 as usize],
            statuses.join(",")
        );
        Answer {
            body: Bytes::from(body),
            ..Answer::plain(200, b"")
        }
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

    /// `users;dur=2.013, gateway;dur=2.101` for a finished request: each
    /// call that ran, then the whole request.
    fn server_timing(&self, a: &Active, now: Instant) -> String {
        use std::fmt::Write as _;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut h = String::new();
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
            "gateway;dur={:.3}",
            ms(now.saturating_duration_since(a.started))
        );
        h
    }
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
pub(crate) fn normal(state: &mut u64) -> f64 {
    let u = next_f64(state).max(f64::MIN_POSITIVE);
    let v = next_f64(state);
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// xorshift64*: a fast, seedable generator for simulated failures.
pub(crate) fn next_f64(state: &mut u64) -> f64 {
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

    #[test]
    fn a_bearer_token_wins_over_a_cookie_and_split_cookies_are_searched() {
        let c1: &[u8] = b"a=1";
        let c2: &[u8] = b"b=2; session=s.2";
        assert_eq!(session_token(None, [c1, c2]).as_deref(), Some("s.2"));
        assert_eq!(
            session_token(Some(b"Bearer t.1 "), [c2]).as_deref(),
            Some("t.1")
        );
        assert_eq!(session_token(Some(b"Basic x"), [c1]), None);
    }

    fn request<'a>(method: &'a str, path: &'a str, token: Option<String>) -> Request<'a> {
        Request {
            method,
            path,
            token,
            door: Door::H2,
        }
    }

    #[test]
    fn routes_answer_404_405_401_and_count_by_door() {
        let mut f = Fanout::new(&RoutesFile::default_routes(), 1);
        let status = |f: &mut Fanout, m, p| f.route(&request(m, p, None)).map_err(|a| a.status);
        assert_eq!(status(&mut f, "GET", "/nope"), Err(404));
        assert_eq!(status(&mut f, "DELETE", "/api/users?x=1"), Err(405));
        assert_eq!(status(&mut f, "POST", "/api/cart"), Err(401));
        assert!(status(&mut f, "GET", "/api/users").is_ok());
        let stats = f.route(&request("GET", STATS_PATH, None)).unwrap_err();
        let v: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
        assert_eq!(v["requests"]["h2"], 3, "{v}");
        assert_eq!(v["requests"]["http/1.1"], 0, "{v}");
        assert_eq!(v["status_codes"]["404"], 1, "{v}");
    }

    #[test]
    fn a_login_token_opens_auth_routes_and_answers_come_out_of_the_outbox() {
        let mut f = Fanout::new(&RoutesFile::default_routes(), 1);
        let login = f.route(&request("POST", "/api/login", None)).unwrap();
        let (tx, _rx) = tokio::sync::oneshot::channel();
        let t0 = Instant::now();
        f.start(login, t0, Origin::H2(tx));
        while f.outbox.is_empty() {
            let at = f.next_timer().expect("the auth call is pending");
            f.fire(at.max(Instant::now()));
        }
        let (_, answer) = f.outbox.pop_front().unwrap();
        assert_eq!(answer.status, 200);
        let cookie = answer.set_cookie.unwrap();
        assert!(cookie.starts_with("session="), "{cookie}");
        assert!(answer.server_timing.unwrap().starts_with("auth;dur="));
        let token = cookie["session=".len()..].split(';').next().unwrap();
        let cart = request("POST", "/api/cart", Some(token.into()));
        assert!(f.route(&cart).is_ok());
        let forged = request("POST", "/api/cart", Some("1.0000000000000000".into()));
        assert_eq!(f.route(&forged).unwrap_err().status, 401);
    }
}
