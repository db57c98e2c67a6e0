//! The gateway's HTTP/2 front door: h2c with prior knowledge and h2 over
//! TLS (ALPN `h2`), on the port the HTTP/1.1 door listens on.
//!
//! The event loop (`server.rs`) tells a connection's protocol from its
//! first bytes ([`preface`], [`client_hello`]) and hands an HTTP/2 one over
//! ([`Door::hand_over`]) to this door's thread, where the `h2` crate
//! (hyperium's, under tokio) speaks the protocol: frames, HPACK, flow
//! control, many streams per connection. Each stream's request goes back to
//! the event loop over a channel (and its waker) to be routed by the same
//! [`crate::fanout::Fanout`] as HTTP/1.1 requests; the answer comes back on
//! a oneshot channel and leaves as HEADERS and DATA. So the routes, their
//! services' capacity, the logins and the counters are one, whichever
//! protocol asked. The gateway is the system under test, not the engine: a
//! mature HTTP/2 stack is the right peer for the engine's own codec.

use crate::fanout::{self, Answer};
use crate::server::{MAX_BODY, MAX_HEAD};
use bytes::Bytes;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What an HTTP/2 client sends first (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Streams a client may have open at once on one connection: the
/// engine's `streams` bound (issue #30), above h2load's and nginx's
/// defaults (1 and 128).
const MAX_STREAMS: u32 = 1000;

/// A connection's protocol, as far as its first bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    NeedMore,
    Http1,
    H2,
}

/// Plaintext: HTTP/2 with prior knowledge opens with [`PREFACE`].
pub fn preface(buf: &[u8]) -> Sniff {
    let n = buf.len().min(PREFACE.len());
    if buf[..n] != PREFACE[..n] {
        Sniff::Http1
    } else if n < PREFACE.len() {
        Sniff::NeedMore
    } else {
        Sniff::H2
    }
}

/// TLS: a ClientHello (peeked at, not consumed) that offers ALPN `h2`.
/// Anything that is not a ClientHello stays with the HTTP/1.1 door, whose
/// TLS answers it with an alert.
pub fn client_hello(buf: &[u8]) -> Sniff {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut rd = buf;
    loop {
        match acceptor.read_tls(&mut rd) {
            Ok(0) => return Sniff::NeedMore,
            Ok(_) => {}
            Err(_) => return Sniff::Http1,
        }
        match acceptor.accept() {
            Ok(None) => {}
            Ok(Some(accepted)) => {
                let h2 = accepted
                    .client_hello()
                    .alpn()
                    .is_some_and(|mut protocols| protocols.any(|p| p == b"h2"));
                return if h2 { Sniff::H2 } else { Sniff::Http1 };
            }
            Err(_) => return Sniff::Http1,
        }
    }
}

/// A connection the event loop hands over: plaintext with the bytes it
/// read already, or TLS untouched (only peeked at).
pub enum Handoff {
    Plain(std::net::TcpStream, Vec<u8>),
    Tls(std::net::TcpStream),
}

/// A stream's request, for the event loop to route.
pub struct H2Request {
    pub method: String,
    /// The `:path`, query string included.
    pub path: String,
    pub token: Option<String>,
    /// When its last byte arrived; its calls start from here.
    pub arrived: Instant,
    pub reply: tokio::sync::oneshot::Sender<Answer>,
}

/// What the door's thread sends the event loop: a stream's request, or
/// the end of a gRPC call to a service (`--grpc`, see `grpc.rs`).
pub enum ToLoop {
    Request(H2Request),
    CallDone {
        ticket: crate::fanout::Ticket,
        failed: bool,
    },
}

/// The door, as the event loop holds it.
pub struct Door {
    connections: tokio::sync::mpsc::UnboundedSender<Handoff>,
}

impl Door {
    pub fn hand_over(&self, h: Handoff) {
        let _ = self.connections.send(h); // the door's thread lives as long as the process
    }
}

/// The door's thread, as the tasks on it and the event loop reach it: its
/// runtime, and the way to the event loop (a channel and its waker).
#[derive(Clone)]
pub struct Bridge {
    pub handle: tokio::runtime::Handle,
    to_loop: mpsc::Sender<ToLoop>,
    waker: Arc<mio::Waker>,
}

impl Bridge {
    /// Sends the event loop a message and wakes it.
    pub fn send(&self, m: ToLoop) {
        if self.to_loop.send(m).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// Starts the door's thread (a tokio runtime on one thread). `tls`: the
/// HTTPS configuration (ALPN `h2` is set here); `waker` wakes the event
/// loop when a message is sent to it. Returns the door, the messages'
/// receiving end (for the loop), and the bridge (for gRPC calls).
pub fn start(
    tls: Option<Arc<rustls::ServerConfig>>,
    waker: mio::Waker,
) -> io::Result<(Door, mpsc::Receiver<ToLoop>, Bridge)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (connections, mut handoffs) = tokio::sync::mpsc::unbounded_channel();
    let (to_loop, from_thread) = mpsc::channel();
    let bridge = Bridge {
        handle: runtime.handle().clone(),
        to_loop,
        waker: Arc::new(waker),
    };
    let ctx = bridge.clone();
    let acceptor = tls.map(|config| {
        let mut config = (*config).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    std::thread::Builder::new()
        .name("h2".into())
        .spawn(move || {
            runtime.block_on(async move {
                while let Some(h) = handoffs.recv().await {
                    // a connection that fails (bad TLS, a protocol error)
                    // ends alone; h2 has sent its GOAWAY
                    tokio::spawn(connection(h, acceptor.clone(), ctx.clone()));
                }
            })
        })?;
    Ok((Door { connections }, from_thread, bridge))
}

async fn connection(h: Handoff, acceptor: Option<tokio_rustls::TlsAcceptor>, ctx: Bridge) {
    match h {
        Handoff::Plain(sock, read) => {
            if let Ok(sock) = tokio::net::TcpStream::from_std(sock) {
                serve(Rewind { read, at: 0, sock }, ctx).await;
            }
        }
        Handoff::Tls(sock) => {
            let Some(acceptor) = acceptor else { return };
            let Ok(sock) = tokio::net::TcpStream::from_std(sock) else {
                return;
            };
            if let Ok(tls) = acceptor.accept(sock).await {
                serve(tls, ctx).await;
            }
        }
    }
}

/// One HTTP/2 connection: its streams, each answered by its own task.
async fn serve<T: AsyncRead + AsyncWrite + Unpin>(io: T, ctx: Bridge) {
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEAD as u32)
        .handshake::<_, Bytes>(io)
        .await;
    let Ok(mut conn) = handshake else { return };
    while let Some(Ok((req, respond))) = conn.accept().await {
        tokio::spawn(stream(req, respond, ctx.clone()));
    }
}

/// One stream: its body read (and its window given back), its request
/// routed by the event loop, its answer sent.
async fn stream(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    ctx: Bridge,
) {
    let (parts, mut body) = req.into_parts();
    let mut len = 0usize;
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else { return }; // reset by the client
        len += chunk.len();
        let _ = body.flow_control().release_capacity(chunk.len());
        if len > MAX_BODY {
            return send(respond, Answer::plain(413, b""));
        }
    }
    let token = fanout::session_token(
        parts
            .headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
        parts
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .map(|v| v.as_bytes()),
    );
    let (reply, mut answer) = tokio::sync::oneshot::channel();
    let request = H2Request {
        method: parts.method.as_str().to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string(),
        token,
        arrived: Instant::now(),
        reply,
    };
    ctx.send(ToLoop::Request(request));
    // The answer, unless the client resets the stream first: then the
    // receiver is dropped, and the loop drops the request's queued calls.
    let answer = std::future::poll_fn(|cx| {
        if let Poll::Ready(a) = Pin::new(&mut answer).poll(cx) {
            return Poll::Ready(a.ok());
        }
        match respond.poll_reset(cx) {
            Poll::Ready(_) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
    if let Some(a) = answer {
        send(respond, a);
    }
}

/// An answer as HEADERS (and DATA when it has a body); h2 queues the data
/// and sends it as the client's window allows.
fn send(mut respond: h2::server::SendResponse<Bytes>, a: Answer) {
    let mut head = http::Response::builder()
        .status(a.status)
        .header(http::header::SERVER, "userflux-gateway")
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, a.body.len());
    if let Some(cookie) = &a.set_cookie {
        head = head.header(http::header::SET_COOKIE, cookie);
    }
    if let Some(t) = &a.server_timing {
        head = head.header("server-timing", t);
    }
    let Ok(head) = head.body(()) else { return };
    let end = a.body.is_empty();
    if let Ok(mut data) = respond.send_response(head, end)
        && !end
    {
        let _ = data.send_data(a.body, true);
    }
}

/// A plaintext connection with the bytes the event loop read from it
/// first (the preface and whatever followed it), then the socket.
struct Rewind {
    read: Vec<u8>,
    at: usize,
    sock: tokio::net::TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.read.len() {
            let n = buf.remaining().min(this.read.len() - this.at);
            buf.put_slice(&this.read[this.at..this.at + n]);
            this.at += n;
            if this.at == this.read.len() {
                this.read = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.sock).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().sock).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().sock).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.sock.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().sock).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().sock).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preface_is_told_from_http1_at_its_first_differing_byte() {
        assert_eq!(preface(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0"), Sniff::H2);
        assert_eq!(preface(b"PRI * HTTP/2"), Sniff::NeedMore);
        assert_eq!(preface(b"P"), Sniff::NeedMore);
        assert_eq!(preface(b"POST / HTTP/1.1\r\n"), Sniff::Http1);
        assert_eq!(preface(b"GET"), Sniff::Http1);
        assert_eq!(preface(b"PRI * HTTP/1.1\r\n\r\n"), Sniff::Http1);
    }

    /// A real ClientHello, made by rustls's client with the given ALPN.
    fn hello(alpn: &[&[u8]]) -> Vec<u8> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        client.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn a_client_hello_offering_h2_goes_to_the_h2_door() {
        assert_eq!(client_hello(&hello(&[b"h2", b"http/1.1"])), Sniff::H2);
        assert_eq!(client_hello(&hello(&[b"http/1.1"])), Sniff::Http1);
        assert_eq!(client_hello(&hello(&[])), Sniff::Http1);
        let whole = hello(&[b"h2"]);
        assert_eq!(client_hello(&whole[..whole.len() / 2]), Sniff::NeedMore);
        assert_eq!(client_hello(b"GET / HTTP/1.1\r\n\r\n"), Sniff::Http1);
    }
}
