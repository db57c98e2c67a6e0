//! The gateway's event loop and its HTTP/1.1 front door: one mio loop,
//! keep-alive connections (plain or TLS), requests answered in order per
//! connection. The routes themselves run in [`Fanout`] on the same loop's
//! timers; the HTTP/2 door (`http2.rs`) brings its requests here over a
//! channel and a waker, so both protocols share one route table.
//!
//! A new connection that opens with HTTP/2's client preface (`PRI *
//! HTTP/2.0`, h2c with prior knowledge) or whose TLS ClientHello offers
//! ALPN `h2` is handed to the HTTP/2 door before any byte of it is
//! answered here; every other connection is HTTP/1.1 and never leaves the
//! loop, so the HTTP/1.1 path costs what it cost before (one byte compare
//! on a connection's first request; one `MSG_PEEK` per TLS handshake).

use crate::fanout::{self, Answer, Door, Fanout, Origin, ReqId, Request};
use crate::http2::{self, Handoff, Sniff};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Instant;
use userflux_engine::clock::{Alarm, arrival};
use userflux_engine::sys;

const LISTENER: Token = Token(usize::MAX);
const ALARM: Token = Token(usize::MAX - 1);
/// The door thread has messages for the loop (HTTP/2 requests, gRPC calls' ends).
const WAKER: Token = Token(usize::MAX - 2);
/// Largest request head; beyond it the answer is 431 and a close.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

struct Conn {
    sock: TcpStream,
    /// HTTPS: the connection's TLS state.
    tls: Option<Box<rustls::ServerConnection>>,
    generation: u32,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    /// A request is being answered: no next one starts before it is.
    busy: bool,
    /// The request waiting for its calls, abandoned if the connection closes.
    waiting: Option<ReqId>,
    /// Close once `outbuf` is written.
    closing: bool,
    /// Nothing read yet: the connection may still turn out to be HTTP/2.
    sniffing: bool,
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
    tls: Option<Arc<rustls::ServerConfig>>,
    fanout: Fanout,
    /// Each route's whole 200 response, rendered once, and where its head
    /// ends (before the blank line).
    ok: Vec<(Vec<u8>, usize)>,
    /// Where HTTP/2 connections go; `None`: HTTP/1.1 only (`--http1-only`).
    door: Option<http2::Door>,
    /// The door thread's messages: HTTP/2 requests, gRPC calls' ends.
    from_thread: Option<Receiver<http2::ToLoop>>,
    conns: Vec<Option<Conn>>,
    generations: Vec<u32>,
    free: Vec<usize>,
    /// Wakes the loop when the earliest timer is due.
    alarm: Alarm,
}

/// An HTTP/1.1 response: status line, the gateway's headers
/// (`Connection: close` when closing), the body.
fn response(status: u16, body: &[u8], close: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {}\r\nServer: userflux-gateway\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
        fanout::reason(status),
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Where a rendered response's head ends, before its blank line.
fn head_end(r: &[u8]) -> usize {
    r.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("rendered head")
        + 2
}

impl Server {
    /// The loop on `listener`, its routes run by `fanout`; with `door`,
    /// connections that speak HTTP/2 go there; `from_thread` brings the
    /// door thread's messages (its waker was made on `poll`).
    pub fn new(
        listener: TcpListener,
        fanout: Fanout,
        tls: Option<Arc<rustls::ServerConfig>>,
        door: Option<http2::Door>,
        from_thread: Option<Receiver<http2::ToLoop>>,
        poll: Poll,
    ) -> io::Result<Server> {
        let mut listener = listener;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let alarm = Alarm::new(poll.registry(), ALARM)?;
        let ok = fanout
            .route_bodies()
            .map(|body| {
                let r = response(200, body, false);
                let at = head_end(&r);
                (r, at)
            })
            .collect();
        Ok(Server {
            poll,
            listener,
            tls,
            fanout,
            ok,
            door,
            from_thread,
            conns: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            alarm,
        })
    }

    /// A waker for the HTTP/2 door, made before the loop (it needs the poll).
    pub fn waker(poll: &Poll) -> io::Result<mio::Waker> {
        mio::Waker::new(poll.registry(), WAKER)
    }

    /// Serves until the process is killed.
    pub fn serve(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // A "10ms" call takes 10 ms, not up to 11 (see `Alarm`): the
            // gateway is the reference the engine's accuracy is measured
            // against.
            let timeout = self
                .fanout
                .next_timer()
                .and_then(|at| self.alarm.wait_for(at));
            match self.poll.poll(&mut events, timeout) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r?,
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    ALARM => self.alarm.rang(),
                    WAKER => self.thread_messages(),
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
            self.fanout.fire(Instant::now());
            self.deliver();
        }
    }

    /// Hands the answers of finished requests to their doors.
    fn deliver(&mut self) {
        while let Some((origin, answer)) = self.fanout.outbox.pop_front() {
            match origin {
                Origin::H2(reply) => {
                    let _ = reply.send(answer); // the stream may have gone
                }
                Origin::Http1 {
                    conn,
                    generation,
                    close_after,
                } => {
                    let Some(c) = self.conns[conn]
                        .as_mut()
                        .filter(|c| c.generation == generation)
                    else {
                        continue;
                    };
                    c.busy = false;
                    c.waiting = None;
                    let bytes = self.render(&answer, close_after);
                    self.respond(conn, bytes, close_after);
                    self.next_request(conn);
                }
            }
        }
    }

    /// The door thread's messages: HTTP/2 requests (routed, started, or
    /// answered at once) and the ends of gRPC calls.
    fn thread_messages(&mut self) {
        let Some(from) = self.from_thread.as_ref() else {
            return;
        };
        while let Ok(m) = from.try_recv() {
            match m {
                http2::ToLoop::CallDone { ticket, failed } => {
                    self.fanout.grpc_done(ticket, failed, Instant::now());
                }
                http2::ToLoop::Request(r) => {
                    let req = Request {
                        method: &r.method,
                        path: &r.path,
                        token: r.token,
                        door: Door::H2,
                    };
                    match self.fanout.route(&req) {
                        Ok(route) => {
                            self.fanout.start(route, r.arrived, Origin::H2(r.reply));
                        }
                        Err(answer) => {
                            let _ = r.reply.send(answer);
                        }
                    }
                }
            }
        }
        self.deliver(); // routes that call nothing answer at once
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
                        busy: false,
                        waiting: None,
                        closing: false,
                        sniffing: self.door.is_some(),
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

    /// Takes a connection out of the loop: its slot is free again.
    fn remove(&mut self, idx: usize) -> Option<Conn> {
        let c = self.conns[idx].take()?;
        self.generations[idx] = self.generations[idx].wrapping_add(1);
        self.free.push(idx);
        if let Some(id) = c.waiting {
            self.fanout.abandon(id);
        }
        Some(c)
    }

    fn close(&mut self, idx: usize) {
        self.remove(idx);
    }

    /// Gives a connection that speaks HTTP/2 to that door, with the bytes
    /// already read from it (plaintext) or none (TLS, only peeked at).
    fn hand_over(&mut self, idx: usize) {
        let Some(mut c) = self.remove(idx) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut c.sock);
        let sock = std::net::TcpStream::from(c.sock);
        let handoff = if c.tls.is_some() {
            Handoff::Tls(sock)
        } else {
            Handoff::Plain(sock, c.inbuf)
        };
        if let Some(door) = &self.door {
            door.hand_over(handoff);
        }
    }

    /// An HTTPS connection's first bytes, peeked at: a ClientHello offering
    /// ALPN `h2` goes to the HTTP/2 door. `false`: wait for more.
    fn sniff_tls(&mut self, idx: usize, buf: &mut [u8]) -> bool {
        let Some(c) = self.conns[idx].as_mut() else {
            return false;
        };
        let n = match c.sock.peek(buf) {
            Ok(0) => {
                self.close(idx);
                return false;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => {
                self.close(idx);
                return false;
            }
        };
        match http2::client_hello(&buf[..n]) {
            // the rest of the ClientHello comes with the next readable event
            Sniff::NeedMore => false,
            Sniff::H2 => {
                self.hand_over(idx);
                false
            }
            Sniff::Http1 => {
                c.sniffing = false;
                true
            }
        }
    }

    /// An HTTPS connection: TLS records in, plaintext into `inbuf`, the
    /// handshake's answers out. A bad record closes the connection (after
    /// our alert).
    fn read_tls(&mut self, idx: usize, buf: &mut [u8]) {
        if self.conns[idx].as_ref().is_some_and(|c| c.sniffing) && !self.sniff_tls(idx, buf) {
            return;
        }
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

    /// Starts the next buffered request on an idle connection; requests
    /// answered without calls are answered here, in order, and the next
    /// one read.
    fn next_request(&mut self, idx: usize) {
        loop {
            let Some(c) = self.conns[idx].as_mut() else {
                return;
            };
            if c.busy || c.closing || c.inbuf.is_empty() {
                return;
            }
            if c.sniffing && c.tls.is_none() {
                match http2::preface(&c.inbuf) {
                    Sniff::NeedMore => return,
                    Sniff::H2 => return self.hand_over(idx),
                    Sniff::Http1 => c.sniffing = false,
                }
            }
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            let head_len = match req.parse(&c.inbuf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) if c.inbuf.len() <= MAX_HEAD => return,
                Ok(httparse::Status::Partial) => {
                    return self.reject(idx, 431);
                }
                Err(_) => return self.reject(idx, 400),
            };
            let mut body_len = 0usize;
            let mut close_after = req.version == Some(0);
            let mut authorization = None;
            let mut cookies = Vec::new();
            for h in req.headers.iter() {
                if h.name.eq_ignore_ascii_case("authorization") {
                    authorization = Some(h.value);
                } else if h.name.eq_ignore_ascii_case("cookie") {
                    cookies.push(h.value);
                } else if h.name.eq_ignore_ascii_case("content-length") {
                    match std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse().ok())
                    {
                        Some(n) if n <= MAX_BODY => body_len = n,
                        _ => return self.reject(idx, 400),
                    }
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    return self.reject(idx, 501);
                } else if h.name.eq_ignore_ascii_case("connection")
                    && h.value.eq_ignore_ascii_case(b"close")
                {
                    close_after = true;
                }
            }
            if c.inbuf.len() < head_len + body_len {
                return; // the body is still coming
            }
            let token = fanout::session_token(authorization, cookies);
            let routed = self.fanout.route(&Request {
                method: req.method.unwrap_or(""),
                path: req.path.unwrap_or("/"),
                token,
                door: Door::Http1,
            });
            c.inbuf.drain(..head_len + body_len);
            match routed {
                Ok(route) => {
                    // A request pipelined behind another starts when that
                    // one is done (`arrived` is taken by the first), not
                    // when its bytes came.
                    let now = c.arrived.take().unwrap_or_else(Instant::now);
                    c.busy = true;
                    let origin = Origin::Http1 {
                        conn: idx,
                        generation: c.generation,
                        close_after,
                    };
                    let id = self.fanout.start(route, now, origin);
                    if let Some(c) = self.conns[idx].as_mut() {
                        c.waiting = Some(id);
                    }
                    // A route without calls has its answer in the outbox
                    // already; it goes out with the others after this
                    // round of events (a loop, not a recursion, however
                    // many requests are pipelined).
                    return;
                }
                Err(answer) => {
                    let bytes = self.render(&answer, close_after);
                    self.respond(idx, bytes, close_after);
                }
            }
        }
    }

    fn reject(&mut self, idx: usize, status: u16) {
        self.fanout.count(Door::Http1, status);
        self.respond(idx, response(status, b"", true), true);
    }

    /// An answer in HTTP/1.1: the route's response rendered once when it
    /// is the plain 200, else rendered now.
    fn render(&self, a: &Answer, close: bool) -> Vec<u8> {
        if let Some(r) = a.route_ok {
            let (ok, at) = &self.ok[r];
            let mut bytes = Vec::with_capacity(ok.len() + 96);
            bytes.extend_from_slice(&ok[..*at]);
            if close {
                bytes.extend_from_slice(b"Connection: close\r\n");
            }
            if let Some(t) = &a.server_timing {
                bytes.extend_from_slice(b"Server-Timing: ");
                bytes.extend_from_slice(t.as_bytes());
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(&ok[*at..]);
            return bytes;
        }
        let mut head = format!(
            "HTTP/1.1 {}\r\nServer: userflux-gateway\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            fanout::reason(a.status),
            a.body.len()
        );
        if let Some(cookie) = &a.set_cookie {
            head.push_str("Set-Cookie: ");
            head.push_str(cookie);
            head.push_str("\r\n");
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        if let Some(t) = &a.server_timing {
            head.push_str("Server-Timing: ");
            head.push_str(t);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&a.body);
        bytes
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
