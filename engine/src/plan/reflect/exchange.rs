//! One connection to a gRPC server for its reflection service, blocking,
//! at run start: a std `TcpStream` (h2c, or rustls with ALPN `h2`), the
//! engine's own HTTP/2 session (`protocol::h2`) and gRPC reading
//! (`UnaryReader`, through the session's `Keep::grpc`). No async runtime,
//! no second HTTP/2 stack; the load's hot paths are not touched.
//!
//! The bidirectional `ServerReflectionInfo` method is used as a unary
//! call: each request is its own stream (one message, END_STREAM), and
//! its answer is one message and trailers. Several go out at once when
//! the server's MAX_CONCURRENT_STREAMS allows (the dependencies of a
//! round).
//!
//! Bounded against a server that is down, silent, slow or hostile: the
//! connection and TLS handshake within the config's connect timeout, the
//! whole exchange within its request timeout (every read and write waits
//! at most what is left of it), at most [`MAX_READ`] bytes read, and the
//! session's own limits (frame sizes, header lists, 4 MiB per message).

use crate::load::grpc::reflection::MAX_DESCRIPTOR_BYTES;
use crate::load::grpc::{CallError, Code};
use crate::load::protocol::h2::{self, Event, Keep, RequestHead, Session};
use rustls::pki_types::ServerName;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Most bytes read from one server in one exchange: the descriptors' cap
/// and room for framing, headers and control frames around them.
pub const MAX_READ: usize = MAX_DESCRIPTOR_BYTES + (1 << 20);

/// Why the exchange failed; each reads after the server's address
/// (`127.0.0.1:50051 does not serve reflection (UNIMPLEMENTED)`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExchangeError {
    #[error("cannot be reached ({0})")]
    Connect(String),
    #[error("refused the TLS handshake ({0})")]
    Tls(String),
    #[error("did not choose h2 by ALPN ({0}); gRPC runs over HTTP/2")]
    NotH2(String),
    #[error("sent no answer within {0}")]
    Timeout(crate::duration::Dur),
    #[error("closed the connection before answering")]
    Closed,
    #[error("broke HTTP/2 ({0})")]
    Protocol(String),
    #[error("sent more than {MAX_READ} bytes")]
    TooMuch,
    #[error("does not serve reflection ({0})")]
    NoReflection(String),
    #[error("answered the reflection call with {0}")]
    Status(String),
    #[error("sent an answer that is not gRPC ({0})")]
    NotGrpc(CallError),
}

/// How to reach one server.
pub struct Dial {
    pub addr: SocketAddr,
    /// `host:port`, the `:authority`.
    pub authority: String,
    /// `https`: the name verified and the TLS config (its ALPN is set here).
    pub tls: Option<(ServerName<'static>, Arc<rustls::ClientConfig>)>,
    pub connect_timeout: Duration,
    /// The whole exchange's bound, from when the connection is up.
    pub timeout: Duration,
}

/// An open connection: the socket, TLS if any, the HTTP/2 session.
pub struct Exchange {
    sock: TcpStream,
    tls: Option<rustls::ClientConnection>,
    session: Session,
    head_scheme: &'static str,
    authority: String,
    clock: Clock,
    read: usize,
    buf: Vec<u8>,
}

/// The exchange's deadline, and the timeout it came from (for the error).
#[derive(Debug, Clone, Copy)]
struct Clock {
    deadline: Instant,
    timeout: Duration,
}

impl Clock {
    /// What is left before the deadline, or the timeout error.
    fn left(self) -> Result<Duration, ExchangeError> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(ExchangeError::Timeout(crate::duration::Dur(self.timeout)))
    }

    fn io(self, e: std::io::Error) -> ExchangeError {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                ExchangeError::Timeout(crate::duration::Dur(self.timeout))
            }
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe => ExchangeError::Closed,
            _ => ExchangeError::Connect(e.to_string()),
        }
    }
}

/// A call's answer: its status (OK with its one message, else the code).
pub type Answer = Result<Vec<u8>, Code>;

impl Exchange {
    /// Connects (and shakes hands, offering only `h2`) within the connect
    /// timeout.
    pub fn open(d: &Dial) -> Result<Exchange, ExchangeError> {
        let connected = Instant::now() + d.connect_timeout;
        let sock = TcpStream::connect_timeout(&d.addr, d.connect_timeout)
            .map_err(|e| ExchangeError::Connect(e.to_string()))?;
        let _ = sock.set_nodelay(true);
        let mut x = Exchange {
            sock,
            tls: None,
            session: Session::new(
                h2::Config {
                    // one stream until the server's SETTINGS say more, as
                    // the workers do (a stream over its limit is refused)
                    initial_max_streams: 1,
                    ..h2::Config::default()
                },
                Instant::now(),
            ),
            head_scheme: if d.tls.is_some() { "https" } else { "http" },
            authority: d.authority.clone(),
            clock: Clock {
                deadline: connected,
                timeout: d.connect_timeout,
            },
            read: 0,
            buf: vec![0; 64 << 10],
        };
        if let Some((name, config)) = &d.tls {
            let mut c = (**config).clone();
            c.alpn_protocols = vec![b"h2".to_vec()];
            c.resumption = rustls::client::Resumption::disabled();
            let tls = rustls::ClientConnection::new(Arc::new(c), name.clone())
                .map_err(|e| ExchangeError::Tls(crate::tls::describe(&e)))?;
            x.tls = Some(tls);
            x.handshake()?;
        }
        x.clock = Clock {
            deadline: Instant::now() + d.timeout,
            timeout: d.timeout,
        };
        Ok(x)
    }

    /// The TLS handshake, record by record (as `plan::alpn`'s probe: a
    /// server dripping bytes cannot hold it past the deadline).
    fn handshake(&mut self) -> Result<(), ExchangeError> {
        let clock = self.clock;
        loop {
            let Some(tls) = self.tls.as_mut() else {
                return Ok(());
            };
            if !tls.is_handshaking() {
                break;
            }
            let left = clock.left()?;
            if tls.wants_write() {
                self.sock.set_write_timeout(Some(left)).ok();
                tls.write_tls(&mut self.sock).map_err(|e| clock.io(e))?;
                continue;
            }
            self.sock.set_read_timeout(Some(left)).ok();
            let n = tls.read_tls(&mut self.sock).map_err(|e| clock.io(e))?;
            if n == 0 {
                return Err(ExchangeError::Tls(
                    "the server closed the connection in the handshake".into(),
                ));
            }
            tls.process_new_packets()
                .map_err(|e| ExchangeError::Tls(crate::tls::describe(&e)))?;
        }
        let tls = self.tls.as_ref().expect("TLS");
        match tls.alpn_protocol() {
            Some(b"h2") => Ok(()),
            Some(p) => Err(ExchangeError::NotH2(format!(
                "it chose {}",
                String::from_utf8_lossy(p)
            ))),
            None => Err(ExchangeError::NotH2("it chose none".into())),
        }
    }

    /// Writes what the session queued.
    fn flush(&mut self) -> Result<(), ExchangeError> {
        if !self.session.wants_write() {
            return Ok(());
        }
        let mut out = Vec::new();
        self.session.write_into(&mut out);
        let clock = self.clock;
        self.sock.set_write_timeout(Some(clock.left()?)).ok();
        match self.tls.as_mut() {
            None => self.sock.write_all(&out).map_err(|e| clock.io(e)),
            Some(tls) => {
                tls.writer()
                    .write_all(&out)
                    .map_err(|e| ExchangeError::Tls(e.to_string()))?;
                while tls.wants_write() {
                    self.sock.set_write_timeout(Some(clock.left()?)).ok();
                    tls.write_tls(&mut self.sock).map_err(|e| clock.io(e))?;
                }
                Ok(())
            }
        }
    }

    /// Reads some bytes (decrypted), waiting at most what is left; they
    /// are in `self.buf[..n]`.
    fn fill(&mut self) -> Result<usize, ExchangeError> {
        let clock = self.clock;
        loop {
            self.sock.set_read_timeout(Some(clock.left()?)).ok();
            let n = match self.tls.as_mut() {
                None => self.sock.read(&mut self.buf).map_err(|e| clock.io(e))?,
                Some(tls) => match tls.reader().read(&mut self.buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        let got = tls.read_tls(&mut self.sock).map_err(|e| clock.io(e))?;
                        if got == 0 {
                            return Err(ExchangeError::Closed);
                        }
                        self.read += got;
                        if self.read > MAX_READ {
                            return Err(ExchangeError::TooMuch);
                        }
                        tls.process_new_packets()
                            .map_err(|e| ExchangeError::Tls(crate::tls::describe(&e)))?;
                        continue;
                    }
                    Err(_) => return Err(ExchangeError::Closed),
                },
            };
            if n == 0 {
                return Err(ExchangeError::Closed);
            }
            if self.tls.is_none() {
                self.read += n;
                if self.read > MAX_READ {
                    return Err(ExchangeError::TooMuch);
                }
            }
            return Ok(n);
        }
    }

    /// Calls `path` once per request (each its own stream, as many at once
    /// as the server allows) and returns the answers in request order.
    pub fn call(&mut self, path: &str, requests: &[Vec<u8>]) -> Result<Vec<Answer>, ExchangeError> {
        let head = RequestHead::new(
            "POST",
            self.head_scheme,
            &self.authority,
            path,
            [("content-type", "application/grpc"), ("te", "trailers")],
        );
        let keep = Keep {
            grpc: true,
            body: Some(MAX_DESCRIPTOR_BYTES),
            ..Keep::default()
        };
        let mut answers: Vec<Option<Answer>> = vec![None; requests.len()];
        let mut next = 0;
        let mut done = 0;
        while done < requests.len() {
            while next < requests.len() && self.session.can_open() {
                let mut body = Vec::with_capacity(requests[next].len() + 5);
                crate::load::grpc::frame::write_message(&mut body, &requests[next]);
                self.session
                    .open(head.block(), Some(&body), keep, next as u64, Instant::now())
                    .map_err(|e| ExchangeError::Protocol(format!("cannot open a stream: {e:?}")))?;
                next += 1;
            }
            self.flush()?;
            let n = self.fill()?;
            let mut failed = None;
            let input = std::mem::take(&mut self.buf);
            let r = self
                .session
                .recv(&input[..n], Instant::now(), &mut |ev| match ev {
                    Event::Response(r) => {
                        let answer = match r.grpc {
                            Some(Ok(Code::Ok)) => Ok(r.grpc_message.to_vec()),
                            Some(Ok(code)) => Err(code),
                            Some(Err(e)) => {
                                failed.get_or_insert(ExchangeError::NotGrpc(e));
                                return;
                            }
                            // (a gRPC stream always has an outcome)
                            None => {
                                let e = ExchangeError::Protocol("no gRPC outcome".into());
                                failed.get_or_insert(e);
                                return;
                            }
                        };
                        if let Some(slot) = answers.get_mut(r.tag as usize)
                            && slot.is_none()
                        {
                            *slot = Some(answer);
                            done += 1;
                        }
                    }
                    Event::Failed { error, .. } => {
                        failed.get_or_insert(ExchangeError::Protocol(error.to_string()));
                    }
                    Event::GoAway { code, .. } => {
                        failed.get_or_insert(ExchangeError::Protocol(format!("GOAWAY {code:?}")));
                    }
                    Event::Unprocessed { .. } => {
                        failed.get_or_insert(ExchangeError::Closed);
                    }
                    Event::Settings { .. } | Event::PingRtt(_) => {}
                });
            self.buf = input;
            if let Err(e) = r {
                let _ = self.flush();
                return Err(ExchangeError::Protocol(e.to_string()));
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(answers.into_iter().flatten().collect())
    }

    /// Says goodbye (GOAWAY, TLS close_notify); errors are of no interest.
    pub fn close(mut self) {
        self.session.close();
        let _ = self.flush();
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
            let _ = tls.write_tls(&mut self.sock);
        }
    }
}
