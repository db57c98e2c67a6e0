//! The wire protocol of a connection, as a sans-IO session: a session never
//! touches the socket. The connection ([`crate::load::conn`]) reads bytes
//! through its transport and feeds them to the session, which says what
//! completed; when a request goes out, the session says where its wire
//! bytes are. HTTP/1.1 ([`h1`]) is the one-stream case; HTTP/2 (`h2/`,
//! frames, HPACK, streams and flow control) plugs in as a second variant of
//! [`Session`] — an enum, not a trait object, so the per-request path has
//! one predictable `match` and no indirect call.
//!
//! # The contract a session keeps
//!
//! - **Requests in.** [`Session::start`] opens a request on the connection
//!   and returns its [`StreamId`]: HTTP/1.1 always [`StreamId::H1`] (one
//!   request at a time); HTTP/2 the next odd stream id, up to the peer's
//!   `MAX_CONCURRENT_STREAMS` (the connection's `streams` VU slots). Its
//!   [`Wire`] says where the bytes to send are: [`Wire::Rendered`] — the
//!   rendered request as it is (HTTP/1.1: the plan's pre-rendered bytes or
//!   the connection's render buffer, never copied); [`Wire::Framed`] — the
//!   session wrote frames into the buffer it was given (HTTP/2: HEADERS from
//!   a pre-encoded header block, DATA; a connection carries no per-request
//!   allocation once warm).
//! - **Bytes in.** [`Session::feed`] takes bytes that arrived and returns
//!   how many it used and the first [`Event`]. [`Event::Partial`] is the
//!   normal state (more bytes needed), never an error. After any other
//!   event the connection handles it and feeds the bytes not used
//!   (`input[used..]`) again, unless the event ends the connection
//!   (`reuse: false`, a GOAWAY with nothing left). HTTP/1.1 stops at the
//!   end of a response: bytes after it answer no request, so it reports the
//!   response with `reuse: false`. HTTP/2 completes streams in any order,
//!   several per read, each event naming its stream.
//! - **Connection events** (HTTP/2): [`Event::Reset`] (a stream refused or
//!   cancelled, with its error code: the request failed, the connection
//!   lives on), [`Event::GoAway`] (streams above `last` were never processed
//!   and may be retried on a new connection; no stream starts on this one).
//!   A PING is answered by the session itself: it queues the ACK and
//!   [`Session::wants_write`] says so; the connection flushes it with
//!   [`Session::write_pending`].
//! - **What a response leaves.** Until the next `feed`, [`Session::kept`]
//!   is the completed response's kept head and body (for checks, captures
//!   and cookies, when [`Session::keep`] asked for them) and
//!   [`Session::timing`] its `Server-Timing` values (when
//!   [`Session::collect_timing`] is on), by stream.
//! - **The end.** [`Session::closed`]: the peer closed the connection; a
//!   response delimited by the close completes, anything else in flight
//!   fails ([`ProtocolError`], counted as a `parse` error, or the caller's
//!   `read` error when no byte of a response had come, see
//!   [`Session::is_idle`]).
//!
//! Timing stays per request and is the connection's: when the request was
//! due (open model), sent, its first byte and its last byte came.
//!
//! # Plugging in HTTP/2
//!
//! 1. `pub mod h2;` here and a variant `Session::H2(h2::Session)`; every
//!    method of [`Session`] gains its arm (the compiler lists them).
//! 2. The worker's pool (`worker/pool.rs`, `add`) makes the session a
//!    connection starts with: today always [`Session::h1`]; then by the
//!    row's protocol (a plan field to come), with the client preface and
//!    SETTINGS queued for [`Session::write_pending`].
//! 3. [`Wire::Framed`]: [`crate::conn::Conn::write`] sends the rendered
//!    request today; a framed one is sent from the buffer the session wrote
//!    (a second buffer beside the template's `out`, so a templated request
//!    can be rendered, then framed).
//! 4. [`crate::conn::Conn`] carries one request in flight (`stream`,
//!    `sent_at`, `first_byte`, `written`, `intended`, `ticket`); with
//!    streams these become per slot (a VU is a stream slot, up to
//!    `streams` per connection) and `conn::Read::Response` names the
//!    stream. [`Event::Reset`] and [`Event::GoAway`] end today's read as a
//!    `read` failure (HTTP/1.1 never reports them); with streams they fail
//!    one slot, or every slot above `last` (to be retried).

pub mod h1;
pub mod h2;

use crate::capture::Kept;
use h1::framing::FrameError;
use std::fmt;

/// A request in flight on one connection: HTTP/1.1 has one at a time
/// ([`StreamId::H1`]); an HTTP/2 session names its streams' ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId(pub u32);

impl StreamId {
    /// HTTP/1.1's only stream (the number HTTP/2 gives an upgraded one).
    pub const H1: StreamId = StreamId(1);
    /// No stream open (an HTTP/2 VU between requests, or waiting for a
    /// stream slot).
    pub const NONE: StreamId = StreamId(0);
}

/// Where a started request's bytes are (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// The rendered HTTP/1.1 request, sent as it is.
    Rendered,
    /// Frames the session wrote into the buffer [`Session::start`] was given.
    Framed,
}

/// A request opened by [`Session::start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub stream: StreamId,
    pub wire: Wire,
}

/// A response that completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    pub stream: StreamId,
    pub status: u16,
    /// Whether the connection may carry the next request.
    pub reuse: bool,
}

/// What a session reports after taking bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The bytes were taken and nothing completed: more are needed.
    Partial,
    Response(Completed),
    /// HTTP/2: the server reset `stream` with `code`; that request failed.
    Reset {
        stream: StreamId,
        code: u32,
    },
    /// HTTP/2: the server is going away; streams above `last` may be retried.
    GoAway {
        last: StreamId,
        code: u32,
    },
}

/// Bytes that break the protocol; the request fails as a `parse` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    H1(FrameError),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::H1(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// A connection's protocol session.
#[derive(Debug)]
pub enum Session {
    H1(h1::H1),
    // H2(h2::Session): several streams, see the module doc.
}

impl Session {
    /// An HTTP/1.1 session.
    pub fn h1() -> Session {
        Session::H1(h1::H1::new())
    }

    /// Keep the next responses' head, and body up to `body` bytes, for
    /// [`Session::kept`] (a flow step's captures and cookies, checks).
    #[inline]
    pub fn keep(&mut self, head: bool, body: Option<usize>) {
        match self {
            Session::H1(s) => s.keep(head, body),
        }
    }

    /// Collect the next responses' `Server-Timing` values.
    #[inline]
    pub fn collect_timing(&mut self, on: bool) {
        match self {
            Session::H1(s) => s.collect_timing(on),
        }
    }

    /// Opens a request (see the module doc); `head_request` when it is a
    /// HEAD (its response has no body whatever it says). A session that
    /// writes frames writes them into `out`.
    #[inline]
    pub fn start(&mut self, head_request: bool, out: &mut Vec<u8>) -> Started {
        match self {
            Session::H1(s) => s.start(head_request, out),
        }
    }

    /// Takes bytes that arrived: how many were used, and the first event.
    #[inline]
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, Event), ProtocolError> {
        match self {
            Session::H1(s) => s.feed(input).map_err(ProtocolError::H1),
        }
    }

    /// The peer closed the connection: what that completes.
    pub fn closed(&mut self) -> Result<Event, ProtocolError> {
        match self {
            Session::H1(s) => s.closed().map_err(ProtocolError::H1),
        }
    }

    /// No byte of a response has come since the last request started.
    #[inline]
    pub fn is_idle(&self) -> bool {
        match self {
            Session::H1(s) => s.is_idle(),
        }
    }

    /// The completed response's kept head and body.
    #[inline]
    pub fn kept(&self, stream: StreamId) -> Kept<'_> {
        match self {
            Session::H1(s) => s.kept(stream),
        }
    }

    /// The completed response's `Server-Timing` values, comma-joined.
    #[inline]
    pub fn timing(&self, stream: StreamId) -> &[u8] {
        match self {
            Session::H1(s) => s.timing(stream),
        }
    }

    /// The session has bytes of its own to send (an HTTP/2 PING's ACK, a
    /// WINDOW_UPDATE, SETTINGS); HTTP/1.1 never has.
    #[inline]
    pub fn wants_write(&self) -> bool {
        match self {
            Session::H1(_) => false,
        }
    }

    /// Appends the session's own pending bytes to `out`.
    pub fn write_pending(&mut self, _out: &mut Vec<u8>) {
        match self {
            Session::H1(_) => {}
        }
    }
}
