//! A connection's transport: plain TCP or TLS over one mio socket, one enum
//! decided once per connection (when its TCP connect completes, by whether
//! the request row is `https`), so the connection's state machine reads,
//! writes, flushes and handshakes without a TLS branch of its own.
//!
//! Reads return plaintext: a TLS record is decrypted by rustls and handed
//! over like a socket's bytes. Writes take plaintext as far as the socket
//! takes it: plain bytes go straight to the socket; TLS bytes go into
//! rustls, and its records to the socket before more are taken ([`send`]).
//! Neither ever blocks: `WouldBlock` is the expected "later", not an error
//! (mio is edge-triggered; a new edge comes when the socket has room or data).
//!
//! The rustls client configuration (trust, pinning, resumption) is
//! [`crate::tls`]; this room is only the bytes of one connection.
//!
//! [`send`]: Transport::send

use mio::net::TcpStream;
use std::io::{self, Read, Write};
use std::time::Duration;

/// Starts a TCP connect to `addr`, registered once for both directions
/// under `token` (mio is edge-triggered: no `epoll_ctl` per request).
/// Errors say which step failed: `Err((true, e))` the connect itself.
pub fn dial(
    addr: std::net::SocketAddr,
    registry: &mio::Registry,
    token: mio::Token,
) -> Result<TcpStream, (bool, io::Error)> {
    let mut sock = TcpStream::connect(addr).map_err(|e| (true, e))?;
    // Without receive times latency falls back to when the worker read
    // the response, which adds its own wake-up delay (see `clock::arrival`).
    let _ = crate::sys::enable_rx_timestamps(&sock);
    registry
        .register(
            &mut sock,
            token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )
        .map_err(|e| (false, e))?;
    Ok(sock)
}

/// Whether a connecting socket that became ready is connected: `Ok(true)`
/// yes (and `TCP_NODELAY` is set), `Ok(false)` a spurious wake-up, `Err`
/// the connect failed (confirmed with `take_error` and `peer_addr`).
pub fn connected(sock: &TcpStream) -> io::Result<bool> {
    let result = match sock.take_error() {
        Ok(Some(e)) | Err(e) => Err(e),
        Ok(None) => sock.peer_addr().map(|_| ()),
    };
    match result {
        Ok(()) => {
            let _ = sock.set_nodelay(true);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

/// The bytes of one connection: plain, or TLS (the session boxed: it is
/// large, and plain connections should not carry its size).
pub enum Transport {
    Plain(TcpStream),
    Tls(TcpStream, Box<rustls::ClientConnection>),
}

/// How far a TLS handshake got.
#[derive(Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Done: the connection carries requests now. `resumed` when the
    /// server took the session ticket of an earlier connection.
    Done { resumed: bool },
    /// Waiting for the server; the next readable edge goes on.
    Pending,
    /// Failed, and why (counted as a `tls` error).
    Failed(String),
}

/// How far [`Transport::send`] got.
#[derive(Debug)]
pub enum Sent {
    /// Every byte given was taken (and for TLS, every record flushed).
    Done,
    /// The socket is full: a writable edge continues.
    Blocked,
    /// The socket (or TLS) failed; `None` when it accepted no bytes.
    Failed(Option<io::Error>),
}

impl Transport {
    /// The socket, for registering and for connect checks.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) | Transport::Tls(s, _) => s,
        }
    }

    pub fn socket_mut(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) | Transport::Tls(s, _) => s,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(..))
    }

    /// The protocol the server chose by ALPN (`h2`, `http/1.1`), once the
    /// handshake is done; none over plain TCP or when it chose nothing.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(_, tls) => tls.alpn_protocol(),
        }
    }

    /// Starts TLS over this (connected, plain) socket; the handshake's
    /// first flight is queued in `tls` and goes out with [`Transport::handshake`].
    pub fn secure(self, tls: rustls::ClientConnection) -> Transport {
        match self {
            Transport::Plain(s) | Transport::Tls(s, _) => Transport::Tls(s, Box::new(tls)),
        }
    }

    /// Drives a TLS handshake as far as the socket allows (a plain
    /// transport has none: done at once).
    pub fn handshake(&mut self) -> Handshake {
        let Transport::Tls(sock, tls) = self else {
            return Handshake::Done { resumed: false };
        };
        loop {
            if tls.wants_write() {
                match tls.write_tls(sock) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Handshake::Failed(format!("writing the handshake: {e}")),
                }
            }
            if !tls.is_handshaking() {
                let resumed = tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                return Handshake::Done { resumed };
            }
            match tls.read_tls(sock) {
                Ok(0) => {
                    return Handshake::Failed(
                        "the server closed the connection during the handshake".into(),
                    );
                }
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        let _ = tls.write_tls(sock); // our alert, if any
                        return Handshake::Failed(crate::tls::describe(&e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Handshake::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Handshake::Failed(format!("reading the handshake: {e}")),
            }
        }
    }

    /// Reads plaintext into `buf`: `Ok((0, _))` is the end (a FIN, or a
    /// TLS close_notify), `WouldBlock` that nothing more is there yet. With
    /// `stamped`, a plain read also returns when the kernel received the
    /// bytes (see [`crate::clock`]); TLS reads are not stamped. A bad TLS
    /// record is an error [`is_tls_failure`] tells from a socket's.
    // (always: with HTTP/2's link as a second caller LLVM stopped inlining
    // this and `send` into the HTTP/1.1 read path, ~80 instructions a
    // request more there, callgrind against the floor server)
    #[inline(always)]
    pub fn read(&mut self, buf: &mut [u8], stamped: bool) -> io::Result<(usize, Option<Duration>)> {
        match self {
            Transport::Plain(sock) if stamped => crate::sys::recv_stamped(sock, buf),
            Transport::Plain(sock) => sock.read(buf).map(|n| (n, None)),
            Transport::Tls(sock, tls) => tls_read(tls, sock, buf).map(|n| (n, None)),
        }
    }

    /// Whether a read shorter than the buffer means the socket is drained
    /// (a TCP receive queue hands over all it has). Not for TLS: decrypted
    /// records may still wait in rustls, or more of a record in the socket.
    #[inline]
    pub fn drained_by_short_read(&self) -> bool {
        matches!(self, Transport::Plain(_))
    }

    /// TLS records (a handshake message, a request) wait to go out.
    #[inline]
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(_, tls) => tls.wants_write(),
        }
    }

    /// Sends `bytes[*written..]` as far as the socket takes it, advancing
    /// `written`. TLS: records already queued go out first; plaintext goes
    /// into rustls, and its records out, until all is sent or the socket is
    /// full. Call again on the next writable edge while [`Sent::Blocked`].
    #[inline(always)]
    pub fn send(&mut self, bytes: &[u8], written: &mut usize) -> Sent {
        match self {
            Transport::Plain(sock) => loop {
                if *written == bytes.len() {
                    return Sent::Done;
                }
                match sock.write(&bytes[*written..]) {
                    Ok(0) => return Sent::Failed(None),
                    Ok(n) => *written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Sent::Blocked,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Sent::Failed(Some(e)),
                }
            },
            Transport::Tls(sock, tls) => loop {
                while tls.wants_write() {
                    match tls.write_tls(sock) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Sent::Blocked,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Sent::Failed(Some(e)),
                    }
                }
                if *written == bytes.len() {
                    return Sent::Done;
                }
                match tls.writer().write(&bytes[*written..]) {
                    Ok(0) => return Sent::Failed(None),
                    Ok(n) => *written += n,
                    Err(e) => return Sent::Failed(Some(e)),
                }
            },
        }
    }

    /// What a send that failed with [`Sent::Failed`]`(None)` says.
    pub fn took_nothing(&self) -> &'static str {
        match self {
            Transport::Plain(_) => "the socket accepted no bytes",
            Transport::Tls(..) => "TLS accepted no bytes",
        }
    }
}

/// A TLS connection's plaintext, read like a socket: `Ok(0)` is the end
/// (a close_notify, or the socket closing without one), `WouldBlock` that
/// nothing more is there yet. A bad record is an error [`is_tls_failure`]
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

/// Whether a read error is a TLS record that could not be read (a `tls`
/// error) rather than the socket's (a `read` error).
pub fn is_tls_failure(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<TlsFailure>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected mio socket and the std socket of its peer.
    fn pair() -> (TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        (TcpStream::from_std(client), server)
    }

    #[test]
    fn plain_sends_and_reads_bytes_as_they_are() {
        let (sock, mut peer) = pair();
        let mut t = Transport::Plain(sock);
        assert!(!t.is_tls() && !t.wants_write() && t.drained_by_short_read());
        assert_eq!(t.handshake(), Handshake::Done { resumed: false });
        let mut written = 0;
        assert!(matches!(
            t.send(b"GET / HTTP/1.1\r\n\r\n", &mut written),
            Sent::Done
        ));
        assert_eq!(written, 18);
        let mut got = [0u8; 18];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\n\r\n");

        let mut buf = [0u8; 64];
        let e = t.read(&mut buf, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(!is_tls_failure(&e));
        peer.write_all(b"HTTP/1.1 200 OK\r\n").unwrap();
        let n = loop {
            match t.read(&mut buf, true) {
                Ok((n, _)) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&buf[..n], b"HTTP/1.1 200 OK\r\n");
        drop(peer);
        let end = loop {
            match t.read(&mut buf, false) {
                Ok((n, _)) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(end, 0, "the peer's close reads as the end");
    }

    #[test]
    fn a_full_socket_blocks_and_the_send_goes_on_later() {
        let (sock, mut peer) = pair();
        let mut t = Transport::Plain(sock);
        let big = vec![b'x'; 16 << 20];
        let mut written = 0;
        assert!(matches!(t.send(&big, &mut written), Sent::Blocked));
        assert!(written > 0 && written < big.len());
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            peer.read_to_end(&mut all).unwrap();
            all.len()
        });
        while !matches!(t.send(&big, &mut written), Sent::Done) {
            std::thread::yield_now();
        }
        drop(t);
        assert_eq!(reader.join().unwrap(), big.len());
    }

    #[test]
    fn tls_queues_its_first_flight_and_fails_on_a_plain_server() {
        let (sock, mut peer) = pair();
        let config = crate::tls::TlsSpec {
            insecure: true,
            ..Default::default()
        }
        .client_config(None)
        .unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = rustls::ClientConnection::new(config, name).unwrap();
        let mut t = Transport::Plain(sock).secure(tls);
        assert!(t.is_tls() && t.wants_write() && !t.drained_by_short_read());
        assert_eq!(t.took_nothing(), "TLS accepted no bytes");
        // The ClientHello goes out; a server answering in plaintext is no TLS.
        assert_eq!(t.handshake(), Handshake::Pending);
        let mut hello = [0u8; 5];
        peer.read_exact(&mut hello).unwrap();
        assert_eq!(hello[0], 0x16, "a TLS handshake record");
        peer.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
        let why = loop {
            match t.handshake() {
                Handshake::Pending => std::thread::yield_now(),
                Handshake::Failed(why) => break why,
                Handshake::Done { .. } => panic!("a plaintext server completed a handshake"),
            }
        };
        assert!(!why.is_empty());
    }
}
