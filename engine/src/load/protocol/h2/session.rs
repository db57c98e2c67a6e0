//! One HTTP/2 client connection as a sans-IO session (RFC 9113): the
//! caller feeds it the bytes that arrived ([`Session::recv`]) and gets
//! events through a callback — completed responses, failed streams,
//! GOAWAY, PING round trips — and takes the bytes to write
//! ([`Session::write_into`]). It never touches a socket or a clock.
//!
//! At creation it queues the client preface, our SETTINGS (ENABLE_PUSH=0,
//! a large INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE) and a
//! WINDOW_UPDATE that opens the connection's receive window; requests may
//! follow at once. The server's SETTINGS are applied and acknowledged;
//! MAX_CONCURRENT_STREAMS bounds [`Session::open`]. Our receive windows
//! are refilled as DATA is read (a WINDOW_UPDATE once half a window is
//! used), so a server is never stalled by us; request bodies respect the
//! server's windows and wait, timed, for its WINDOW_UPDATEs.
//!
//! Errors: a connection error (a bad frame, bad HPACK, PUSH_PROMISE, an
//! oversized header block, a flow-control violation) queues a GOAWAY and
//! makes `recv` return it — the connection is done; a malformed response
//! or a stream-level violation resets that stream only
//! ([`Event::Failed`] with [`H2Error::Protocol`]).
//!
//! Memory is bounded per connection: a partial frame up to our
//! MAX_FRAME_SIZE, a header block up to [`MAX_HEADER_BLOCK`] bytes in at
//! most [`MAX_CONTINUATIONS`] CONTINUATION frames, a decoded header list
//! up to [`MAX_HEADER_LIST`], the HPACK table at 4 KiB. Stream slots and
//! their buffers are reused, so a warm connection allocates nothing per
//! request (bodies are kept only when asked, and bounded).
//!
//! This file holds the connection's state, what the caller asks of it and
//! the sending of request bodies; `session/recv.rs` applies the server's
//! frames.

use super::error::{ErrorCode, H2Error, ProtocolError};
use super::frame::{self, MAX_WINDOW, setting};
use super::hpack::Decoder;
use super::stream::{Keep, Response, Stream};

mod recv;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

/// Largest decoded response header list (SETTINGS_MAX_HEADER_LIST_SIZE we
/// advertise): the HTTP/1.1 framer's `MAX_HEAD`.
pub const MAX_HEADER_LIST: usize = crate::framing::MAX_HEAD;
/// Largest header block (HEADERS + CONTINUATION fragments) we buffer:
/// a block this size decodes to at least as many bytes of fields, so
/// anything longer breaks the list limit anyway.
pub const MAX_HEADER_BLOCK: usize = MAX_HEADER_LIST;
/// Most CONTINUATION frames after one HEADERS: even at 1 byte each a
/// block of this many is absurd, and empty ones would otherwise be free.
pub const MAX_CONTINUATIONS: u32 = 128;
/// What RFC 9113 assumes of a server before its SETTINGS arrive.
const DEFAULT_WINDOW: i64 = 65_535;

/// Our side's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Our SETTINGS_INITIAL_WINDOW_SIZE: what the server may send on one
    /// stream before our WINDOW_UPDATE.
    pub stream_window: u32,
    /// Our connection receive window (opened by a WINDOW_UPDATE at start).
    pub conn_window: u32,
    /// Our SETTINGS_MAX_FRAME_SIZE (16,384 - 16,777,215). Larger frames
    /// cost fewer headers and a larger partial-frame buffer.
    pub max_frame: u32,
    /// How many streams we assume the server allows before its SETTINGS
    /// arrive (RFC 9113 says unlimited; 100 is what servers commonly set;
    /// the worker uses 1 so no stream is refused); once they arrive the
    /// limit is theirs, unlimited when they set none.
    pub initial_max_streams: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            // h2load's defaults are 2^30-1 for both; a stream window of
            // 16 MiB keeps WINDOW_UPDATEs rare for any body a load test
            // fetches, and costs nothing: bodies are counted, not held.
            stream_window: 16 << 20,
            conn_window: MAX_WINDOW >> 1,
            max_frame: frame::DEFAULT_MAX_FRAME,
            initial_max_streams: 100,
        }
    }
}

/// What happened on the connection, reported through `recv`'s callback.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The server's first SETTINGS arrived and were applied, `after` the
    /// session was created (the connection's "SETTINGS received" time).
    Settings {
        max_concurrent_streams: u32,
        after: Duration,
    },
    /// A stream's response is complete.
    Response(Response<'a>),
    /// A stream ended without a response: reset by the server
    /// ([`H2Error::Reset`]; `REFUSED_STREAM` means it was not processed
    /// and is safe to retry) or malformed ([`H2Error::Protocol`], which
    /// this side reset).
    Failed {
        stream: u32,
        tag: u64,
        error: H2Error,
    },
    /// The server is going away: streams up to `last_stream` may still
    /// complete; no new stream may open on this connection.
    GoAway { last_stream: u32, code: ErrorCode },
    /// A stream above a GOAWAY's last-stream-id: the server did not
    /// process it; retry it on a new connection. Follows its `GoAway`.
    Unprocessed { stream: u32, tag: u64 },
    /// The answer to our [`Session::send_ping`].
    PingRtt(Duration),
}

/// Why [`Session::open`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// As many streams are open as the server allows: wait for one to end.
    Full,
    /// The server sent GOAWAY, or the connection failed: use another.
    GoingAway,
    /// All 2^30 client stream ids are used: use another connection.
    IdsExhausted,
}

/// Stream ids are small distinct integers: a multiply spreads them
/// (SipHash per frame would cost more than the frame's parse).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// One HTTP/2 client connection's protocol state.
pub struct Session {
    cfg: Config,
    /// Bytes queued for the socket.
    out: Vec<u8>,
    /// A frame split over reads, up to 9 + our MAX_FRAME_SIZE bytes.
    partial: Vec<u8>,
    decoder: Decoder,
    /// A header block split over HEADERS + CONTINUATION.
    block: Vec<u8>,
    /// The stream whose block is in `block` (0: none expected).
    block_stream: u32,
    block_end_stream: bool,
    continuations: u32,
    /// Slots (free ones have id 0) and where each open stream is.
    streams: Vec<Stream>,
    free: Vec<usize>,
    by_id: HashMap<u32, usize, BuildHasherDefault<IdHasher>>,
    /// Streams whose body waits for a window, oldest first.
    waiting: Vec<u32>,
    next_id: u32,
    // --- the server's settings and our send windows
    settings_seen: bool,
    max_streams: u32,
    peer_initial_window: i64,
    peer_max_frame: u32,
    conn_send_window: i64,
    // --- our receive window
    conn_recv_window: i64,
    conn_unacked: u32,
    // --- connection state
    goaway: Option<(u32, ErrorCode)>,
    failed: Option<ProtocolError>,
    /// This side sent GOAWAY ([`Session::close`]).
    closing: bool,
    ping: Option<([u8; 8], Instant)>,
    pings: u64,
    /// When the session was created, for [`Event::Settings`].
    created: Instant,
}

impl Session {
    /// A new connection's session; the preface, our SETTINGS and our
    /// connection WINDOW_UPDATE are queued for writing.
    pub fn new(cfg: Config, now: Instant) -> Session {
        let cfg = Config {
            stream_window: cfg.stream_window.clamp(1, MAX_WINDOW),
            conn_window: cfg.conn_window.clamp(DEFAULT_WINDOW as u32, MAX_WINDOW),
            max_frame: cfg.max_frame.clamp(frame::DEFAULT_MAX_FRAME, (1 << 24) - 1),
            initial_max_streams: cfg.initial_max_streams,
        };
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(frame::PREFACE);
        frame::write_settings(
            &mut out,
            &[
                (setting::ENABLE_PUSH, 0),
                (setting::INITIAL_WINDOW_SIZE, cfg.stream_window),
                (setting::MAX_FRAME_SIZE, cfg.max_frame),
                (setting::MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST as u32),
            ],
        );
        let open = cfg.conn_window - DEFAULT_WINDOW as u32;
        if open > 0 {
            frame::write_window_update(&mut out, 0, open);
        }
        Session {
            cfg,
            out,
            partial: Vec::new(),
            decoder: Decoder::new(),
            block: Vec::new(),
            block_stream: 0,
            block_end_stream: false,
            continuations: 0,
            streams: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::default(),
            waiting: Vec::new(),
            next_id: 1,
            settings_seen: false,
            max_streams: cfg.initial_max_streams,
            peer_initial_window: DEFAULT_WINDOW,
            peer_max_frame: frame::DEFAULT_MAX_FRAME,
            conn_send_window: DEFAULT_WINDOW,
            conn_recv_window: cfg.conn_window as i64,
            conn_unacked: 0,
            goaway: None,
            failed: None,
            closing: false,
            ping: None,
            pings: 0,
            created: now,
        }
    }

    // ----- what the caller asks

    /// Whether bytes wait to be written.
    pub fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    /// Moves the queued bytes to the end of `out` (the connection's write
    /// buffer).
    pub fn write_into(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            std::mem::swap(out, &mut self.out);
        } else {
            out.extend_from_slice(&self.out);
            self.out.clear();
        }
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.by_id.len()
    }

    /// The server's MAX_CONCURRENT_STREAMS (or our assumption before its
    /// SETTINGS).
    pub fn max_streams(&self) -> u32 {
        self.max_streams
    }

    /// Whether [`Session::open`] would succeed now.
    pub fn can_open(&self) -> bool {
        self.open_check().is_ok()
    }

    /// Whether the server's SETTINGS have arrived.
    pub fn settings_received(&self) -> bool {
        self.settings_seen
    }

    /// The GOAWAY received, if any: (last-stream-id, code).
    pub fn goaway(&self) -> Option<(u32, ErrorCode)> {
        self.goaway
    }

    /// Bytes held for frames not yet whole (a partial frame, a header
    /// block awaiting CONTINUATION): bounded by our MAX_FRAME_SIZE + 9 +
    /// [`MAX_HEADER_BLOCK`].
    pub fn buffered(&self) -> usize {
        self.partial.len() + self.block.len()
    }

    /// The connection error this side found, if any.
    pub fn failed(&self) -> Option<ProtocolError> {
        self.failed
    }

    fn open_check(&self) -> Result<(), OpenError> {
        if self.goaway.is_some() || self.failed.is_some() || self.closing {
            return Err(OpenError::GoingAway);
        }
        if self.next_id > MAX_WINDOW {
            return Err(OpenError::IdsExhausted);
        }
        if self.by_id.len() >= self.max_streams as usize {
            return Err(OpenError::Full);
        }
        Ok(())
    }

    /// Opens a request stream: its header `block` (encoded once, see
    /// [`super::RequestHead`]) is queued, then as much of `body` as the
    /// server's windows allow; the rest waits for WINDOW_UPDATE. `tag` is
    /// the caller's, returned in the stream's events.
    pub fn open(
        &mut self,
        block: &[u8],
        body: Option<&[u8]>,
        keep: Keep,
        tag: u64,
        now: Instant,
    ) -> Result<u32, OpenError> {
        self.open_check()?;
        let id = self.next_id;
        self.next_id += 2;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.streams.push(Stream::free(now));
                self.streams.len() - 1
            }
        };
        let body = body.filter(|b| !b.is_empty());
        let s = &mut self.streams[slot];
        s.start(
            id,
            tag,
            keep,
            now,
            self.peer_initial_window,
            self.cfg.stream_window as i64,
        );
        self.by_id.insert(id, slot);
        frame::write_headers(
            &mut self.out,
            id,
            block,
            body.is_none(),
            self.peer_max_frame,
        );
        match body {
            None => s.local_closed = true,
            Some(b) => {
                s.body.extend_from_slice(b);
                self.send_body(slot, now);
            }
        }
        Ok(id)
    }

    /// Sends a PING to measure the round trip ([`Event::PingRtt`]); false
    /// while one is unanswered.
    pub fn send_ping(&mut self, now: Instant) -> bool {
        if self.ping.is_some() || self.failed.is_some() {
            return false;
        }
        self.pings += 1;
        let data = self.pings.to_be_bytes();
        frame::write_ping(&mut self.out, false, data);
        self.ping = Some((data, now));
        true
    }

    /// Queues a GOAWAY (NO_ERROR) before this side closes the connection
    /// (the run is ending); no stream opens after it.
    pub fn close(&mut self) {
        if self.failed.is_none() && !self.closing {
            frame::write_goaway(&mut self.out, 0, ErrorCode::NoError, b"");
        }
        self.closing = true;
    }

    /// Cancels an open stream (its request timed out, or the run ended):
    /// a RST_STREAM(CANCEL) is queued and its slot freed; frames the
    /// server still sends for it are read (for flow control and HPACK)
    /// and dropped. False when no such stream is open.
    pub fn cancel(&mut self, id: u32) -> bool {
        let Some(slot) = self.by_id.remove(&id) else {
            return false;
        };
        frame::write_rst_stream(&mut self.out, id, ErrorCode::Cancel);
        self.waiting.retain(|&w| w != id);
        self.release(slot);
        true
    }

    /// Ends every open stream (the connection is closing): calls `on` with
    /// each one's id and tag; the caller counts them (as `h2_goaway` when
    /// [`Session::goaway`] says the server was going away, else as its own
    /// read error or [`Session::failed`]).
    pub fn drain_open(&mut self, mut on: impl FnMut(u32, u64)) {
        let mut ids: Vec<(u32, usize)> = self.by_id.drain().collect();
        ids.sort_unstable();
        for (id, slot) in ids {
            on(id, self.streams[slot].tag);
            self.release(slot);
        }
        self.waiting.clear();
    }

    /// Frees a stream's slot; its buffers stay for the next stream.
    fn release(&mut self, slot: usize) {
        let s = &mut self.streams[slot];
        if s.id != 0 {
            s.id = 0;
            // A slot whose kept buffers grew past the list limit gives
            // the memory back rather than holding it per slot.
            if s.kept_body.capacity() > MAX_HEADER_LIST {
                s.kept_body = Vec::new();
            }
            if s.body.capacity() > MAX_HEADER_LIST {
                s.body = Vec::new();
            }
            self.free.push(slot);
        }
    }

    // ----- sending bodies

    /// Sends what the windows allow of one stream's body.
    fn send_body(&mut self, slot: usize, now: Instant) {
        let s = &mut self.streams[slot];
        loop {
            let left = s.body.len() - s.body_at;
            let room = self.conn_send_window.min(s.send_window).max(0) as usize;
            let n = left.min(room).min(self.peer_max_frame as usize);
            if n == 0 && left > 0 {
                s.waiting_since.get_or_insert(now);
                if !self.waiting.contains(&s.id) {
                    self.waiting.push(s.id);
                }
                return;
            }
            if let Some(since) = s.waiting_since.take() {
                s.window_wait += now.saturating_duration_since(since);
            }
            let last = n == left;
            frame::write_data(&mut self.out, s.id, &s.body[s.body_at..s.body_at + n], last);
            s.body_at += n;
            self.conn_send_window -= n as i64;
            s.send_window -= n as i64;
            if last {
                s.local_closed = true;
                s.body.clear();
                s.body_at = 0;
                return;
            }
        }
    }

    /// A window opened: bodies waiting go on, oldest first.
    fn resume_bodies(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.waiting.len() && self.conn_send_window > 0 {
            let id = self.waiting[i];
            let Some(&slot) = self.by_id.get(&id) else {
                self.waiting.remove(i);
                continue;
            };
            if self.streams[slot].send_window <= 0 {
                i += 1;
                continue;
            }
            self.waiting.remove(i);
            // send_body counts the wait, and queues the stream again if
            // it stalls again.
            self.send_body(slot, now);
        }
    }
}

#[cfg(test)]
mod tests;
