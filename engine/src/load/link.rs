//! An HTTP/2 connection shared by VUs: one socket and one
//! [`h2::Session`](crate::protocol::h2::Session) carrying up to `streams`
//! VUs' requests at once, each VU a stream slot. An HTTP/1.1 VU owns its
//! connection ([`crate::conn::Conn`]); an HTTP/2 VU is attached to a
//! `Link` (its `carrier`), and the worker ([`crate::worker`], `h2.rs`)
//! hands the link's events to the VUs whose streams they name.
//!
//! The link does its own I/O like a `Conn` does — connect, TLS handshake
//! (with ALPN), write what the session queued, read and feed the session —
//! and returns what happened; the worker decides the policy.

use crate::plan::EndpointPlan;
use crate::protocol::h2::Session;
use crate::stats::EndpointStats;
use crate::transport::{Handshake, Sent, Transport, is_tls_failure};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// TCP connect in progress.
    Connecting,
    /// TLS handshake in progress.
    Handshaking,
    /// The session is up: streams open on it.
    Open,
}

/// One HTTP/2 connection (see the module doc).
pub struct Link {
    /// The socket (always there: an `Option` only so TLS can wrap it).
    pub transport: Option<Transport>,
    pub addr: SocketAddr,
    /// The load unit whose VUs it carries (an endpoint, or a flow's first
    /// step): its connection phases and socket bytes are counted there.
    pub unit: usize,
    pub state: LinkState,
    /// Created when the connection is up (and TLS agreed on `h2`).
    pub session: Option<Session>,
    /// Bytes going out: what the session queued, written from `written`.
    pub out: Vec<u8>,
    pub written: usize,
    /// VUs attached (at most the row's `streams`).
    pub vus: u32,
    /// Attached VUs waiting for a stream slot (the connection is not up
    /// yet, or the server's MAX_CONCURRENT_STREAMS is reached), oldest
    /// first.
    pub queue: VecDeque<usize>,
    /// When the connect started, and when TCP was up.
    pub started: Instant,
    pub connected_at: Instant,
    /// When the current state times out (connect, handshake, SETTINGS).
    pub deadline: Instant,
    /// In the worker's list of links to flush before it polls.
    pub dirty: bool,
}

/// What reading a link came to.
#[derive(Debug)]
pub enum LinkRead {
    /// Drained (or would block): the next edge reads on.
    Pending,
    /// Used its read budget with more to read: read on next turn.
    Unread,
    /// The server closed the connection.
    Closed,
    /// Reading failed (`true`: a bad TLS record).
    Failed(io::Error, bool),
}

impl Link {
    pub fn new(transport: Transport, addr: SocketAddr, unit: usize, now: Instant) -> Link {
        Link {
            transport: Some(transport),
            addr,
            unit,
            state: LinkState::Connecting,
            session: None,
            out: Vec::new(),
            written: 0,
            vus: 0,
            queue: VecDeque::new(),
            started: now,
            connected_at: now,
            deadline: now,
            dirty: false,
        }
    }

    /// Whether a VU going to `addr` may use this link: same server, and
    /// no GOAWAY (or failure) stops new streams on it.
    pub fn usable(&self, addr: SocketAddr) -> bool {
        self.addr == addr
            && self
                .session
                .as_ref()
                .is_none_or(|s| s.goaway().is_none() && s.failed().is_none())
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.session.as_ref().map_or(0, Session::open_streams)
    }

    /// TCP is up for an `https` row: TLS starts (ALPN offers `h2`).
    pub fn secure(
        &mut self,
        config: std::sync::Arc<rustls::ClientConfig>,
        row: &EndpointPlan,
    ) -> Result<(), String> {
        let name = row.tls_name.clone().expect("an https row has a TLS name");
        let tls =
            rustls::ClientConnection::new(config, name).map_err(|e| crate::tls::describe(&e))?;
        self.transport = self.transport.take().map(|t| t.secure(tls));
        self.state = LinkState::Handshaking;
        Ok(())
    }

    /// Drives the TLS handshake as far as the socket allows.
    pub fn handshake(&mut self) -> Handshake {
        match self.transport.as_mut() {
            Some(t) => t.handshake(),
            None => Handshake::Pending,
        }
    }

    /// The socket's transport.
    pub fn io(&self) -> &Transport {
        self.transport.as_ref().expect("a link has its socket")
    }

    /// Writes what the session queued, as far as the socket takes it;
    /// counts the bytes on `stats`. `Err` when the socket failed.
    pub fn flush(&mut self, stats: &mut EndpointStats) -> Result<(), io::Error> {
        if let Some(s) = self.session.as_mut()
            && s.wants_write()
        {
            s.write_into(&mut self.out);
        }
        let before = self.written;
        let t = self.transport.as_mut().expect("a link has its socket");
        let sent = t.send(&self.out, &mut self.written);
        stats.bytes_out += (self.written - before) as u64;
        match sent {
            Sent::Done => {
                self.out.clear();
                self.written = 0;
                Ok(())
            }
            Sent::Blocked => Ok(()),
            Sent::Failed(Some(e)) => Err(e),
            Sent::Failed(None) => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                self.io().took_nothing(),
            )),
        }
    }

    /// Bytes wait to be written (the session's, or TLS records).
    pub fn wants_write(&self) -> bool {
        self.written < self.out.len()
            || self.io().wants_write()
            || self.session.as_ref().is_some_and(Session::wants_write)
    }

    /// Reads what arrived into `buf` and hands each read to `feed` (with
    /// its receive stamp) until the socket is drained, `budget` reads are
    /// used, or it ends; counts the bytes on `stats`. `feed` returns false
    /// to stop (the session failed).
    pub fn read(
        &mut self,
        buf: &mut [u8],
        stamped: bool,
        peer_closed: bool,
        budget: u32,
        stats: &mut EndpointStats,
        mut feed: impl FnMut(&[u8], Option<Duration>) -> bool,
    ) -> LinkRead {
        let mut reads = 0;
        let t = self.transport.as_mut().expect("a link has its socket");
        loop {
            let (n, stamp) = match t.read(buf, stamped) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return LinkRead::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let tls = is_tls_failure(&e);
                    return LinkRead::Failed(e, tls);
                }
            };
            if n == 0 {
                return LinkRead::Closed;
            }
            stats.bytes_in += n as u64;
            if !feed(&buf[..n], stamp) {
                return LinkRead::Pending;
            }
            if n < buf.len() && !peer_closed && t.drained_by_short_read() {
                return LinkRead::Pending;
            }
            reads += 1;
            if reads == budget {
                return LinkRead::Unread;
            }
        }
    }
}
