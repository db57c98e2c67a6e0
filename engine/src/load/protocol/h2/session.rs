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

use super::error::{ErrorCode, H2Error, ProtocolError};
use super::frame::{self, Frame, MAX_WINDOW, Parsed, setting};
use super::hpack::Decoder;
use super::stream::{BlockEnd, Keep, Response, Stream};
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
    /// say (RFC 9113 says unlimited; 100 is what servers commonly set).
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
    /// The server's first SETTINGS arrived and were applied.
    Settings { max_concurrent_streams: u32 },
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
}

impl Session {
    /// A new connection's session; the preface, our SETTINGS and our
    /// connection WINDOW_UPDATE are queued for writing.
    pub fn new(cfg: Config, now: Instant) -> Session {
        let cfg = Config {
            stream_window: cfg.stream_window.min(MAX_WINDOW),
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
        let _ = now;
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

    // ----- reading

    /// Consumes `input` — all of it: a frame split over reads is kept until
    /// its end arrives. Events go to `on` as frames complete. An `Err` is a
    /// connection error: a GOAWAY is queued, write it and close; the
    /// streams still open are then for [`Session::drain_open`].
    pub fn recv(
        &mut self,
        mut input: &[u8],
        now: Instant,
        on: &mut impl FnMut(Event<'_>),
    ) -> Result<(), ProtocolError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = (|| {
            if !self.partial.is_empty() {
                input = self.finish_partial(input, now, on)?;
            }
            while !input.is_empty() {
                if !self.settings_seen {
                    not_settings(input)?;
                }
                match frame::parse(input, self.cfg.max_frame)? {
                    Parsed::Partial => {
                        self.partial.extend_from_slice(input);
                        break;
                    }
                    Parsed::Frame(f, n) => {
                        self.frame(f, now, on)?;
                        input = &input[n..];
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            self.fail(e);
        }
        r
    }

    /// Completes the frame in `partial` from `input`; returns the input
    /// left after it.
    fn finish_partial<'i>(
        &mut self,
        input: &'i [u8],
        now: Instant,
        on: &mut impl FnMut(Event<'_>),
    ) -> Result<&'i [u8], ProtocolError> {
        let mut input = input;
        if self.partial.len() < frame::HEADER_LEN {
            let take = (frame::HEADER_LEN - self.partial.len()).min(input.len());
            self.partial.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.partial.len() < frame::HEADER_LEN {
                return Ok(input);
            }
        }
        if !self.settings_seen {
            not_settings(&self.partial)?;
        }
        let total = match frame::parse(&self.partial, self.cfg.max_frame)? {
            Parsed::Frame(_, n) => n,
            Parsed::Partial => {
                let head: [u8; frame::HEADER_LEN] = self.partial[..frame::HEADER_LEN]
                    .try_into()
                    .unwrap_or_default();
                frame::HEADER_LEN + frame::Head::read(&head).len as usize
            }
        };
        let take = (total - self.partial.len()).min(input.len());
        self.partial.extend_from_slice(&input[..take]);
        input = &input[take..];
        if self.partial.len() < total {
            return Ok(input);
        }
        let buf = std::mem::take(&mut self.partial);
        let r = match frame::parse(&buf, self.cfg.max_frame) {
            Ok(Parsed::Frame(f, _)) => self.frame(f, now, on),
            Ok(Parsed::Partial) => Ok(()),
            Err(e) => Err(e),
        };
        self.partial = buf;
        self.partial.clear();
        r.map(|()| input)
    }

    fn fail(&mut self, e: ProtocolError) {
        if self.failed.is_none() {
            // We accept no server streams, so the last one we processed is 0.
            frame::write_goaway(&mut self.out, 0, e.code(), b"");
            self.failed = Some(e);
        }
    }

    /// A stream id the server may not use: one of its own (even), or one we
    /// have not opened yet.
    fn idle(&self, id: u32) -> bool {
        id.is_multiple_of(2) || id >= self.next_id
    }

    fn frame(
        &mut self,
        f: Frame<'_>,
        now: Instant,
        on: &mut impl FnMut(Event<'_>),
    ) -> Result<(), ProtocolError> {
        if !self.settings_seen && !matches!(f, Frame::Settings { ack: false, .. }) {
            return Err(ProtocolError::NoSettingsFirst);
        }
        if self.block_stream != 0 && !matches!(f, Frame::Continuation { .. }) {
            return Err(ProtocolError::BadFrame("a frame inside a header block"));
        }
        match f {
            Frame::Data {
                stream,
                data,
                end_stream,
                flow_len,
            } => self.data(stream, data, end_stream, flow_len, now, on)?,
            Frame::Headers {
                stream,
                block,
                end_stream,
                end_headers,
            } => {
                if self.idle(stream) {
                    return Err(ProtocolError::BadFrame(
                        "HEADERS on a stream we did not open",
                    ));
                }
                if end_headers {
                    self.header_block(stream, block, end_stream, now, on)?;
                } else {
                    if block.len() > MAX_HEADER_BLOCK {
                        return Err(ProtocolError::HeaderBlockTooLarge);
                    }
                    self.block.clear();
                    self.block.extend_from_slice(block);
                    self.block_stream = stream;
                    self.block_end_stream = end_stream;
                    self.continuations = 0;
                }
            }
            Frame::Continuation {
                stream,
                block,
                end_headers,
            } => {
                if self.block_stream == 0 || stream != self.block_stream {
                    return Err(ProtocolError::BadFrame("CONTINUATION without its HEADERS"));
                }
                self.continuations += 1;
                if self.continuations > MAX_CONTINUATIONS
                    || self.block.len() + block.len() > MAX_HEADER_BLOCK
                {
                    return Err(ProtocolError::HeaderBlockTooLarge);
                }
                self.block.extend_from_slice(block);
                if end_headers {
                    let whole = std::mem::take(&mut self.block);
                    self.block_stream = 0;
                    let r = self.header_block(stream, &whole, self.block_end_stream, now, on);
                    self.block = whole;
                    self.block.clear();
                    r?;
                }
            }
            Frame::Priority { .. } | Frame::Unknown { .. } => {}
            Frame::RstStream { stream, code } => {
                if self.idle(stream) {
                    return Err(ProtocolError::BadFrame(
                        "RST_STREAM on a stream we did not open",
                    ));
                }
                if let Some(slot) = self.by_id.remove(&stream) {
                    let tag = self.streams[slot].tag;
                    self.release(slot);
                    on(Event::Failed {
                        stream,
                        tag,
                        error: H2Error::Reset(code),
                    });
                }
            }
            Frame::Settings { ack: true, .. } => {}
            Frame::Settings {
                ack: false,
                payload,
            } => {
                self.settings(payload, now)?;
                frame::write_settings_ack(&mut self.out);
                if !self.settings_seen {
                    self.settings_seen = true;
                    on(Event::Settings {
                        max_concurrent_streams: self.max_streams,
                    });
                }
            }
            Frame::PushPromise { .. } => return Err(ProtocolError::PushPromise),
            Frame::Ping { ack: false, data } => frame::write_ping(&mut self.out, true, data),
            Frame::Ping { ack: true, data } => {
                if let Some((sent, at)) = self.ping
                    && sent == data
                {
                    self.ping = None;
                    on(Event::PingRtt(now.saturating_duration_since(at)));
                }
            }
            Frame::GoAway {
                last_stream, code, ..
            } => {
                self.goaway = Some((last_stream, code));
                on(Event::GoAway { last_stream, code });
                let mut above: Vec<(u32, usize)> = self
                    .by_id
                    .iter()
                    .filter(|&(&id, _)| id > last_stream)
                    .map(|(&id, &slot)| (id, slot))
                    .collect();
                above.sort_unstable();
                for (id, slot) in above {
                    self.by_id.remove(&id);
                    let tag = self.streams[slot].tag;
                    self.release(slot);
                    on(Event::Unprocessed { stream: id, tag });
                }
            }
            Frame::WindowUpdate {
                stream: 0,
                increment,
            } => {
                if increment == 0 {
                    return Err(ProtocolError::BadFrame("WINDOW_UPDATE of 0"));
                }
                self.conn_send_window += increment as i64;
                if self.conn_send_window > MAX_WINDOW as i64 {
                    return Err(ProtocolError::FlowControl);
                }
                self.resume_bodies(now);
            }
            Frame::WindowUpdate { stream, increment } => {
                if self.idle(stream) {
                    return Err(ProtocolError::BadFrame(
                        "WINDOW_UPDATE on a stream we did not open",
                    ));
                }
                if let Some(&slot) = self.by_id.get(&stream) {
                    if increment == 0 {
                        self.stream_error(slot, ProtocolError::BadFrame("WINDOW_UPDATE of 0"), on);
                        return Ok(());
                    }
                    let s = &mut self.streams[slot];
                    s.send_window += increment as i64;
                    if s.send_window > MAX_WINDOW as i64 {
                        self.stream_error(slot, ProtocolError::FlowControl, on);
                        return Ok(());
                    }
                    self.resume_bodies(now);
                }
            }
        }
        Ok(())
    }

    fn settings(&mut self, payload: &[u8], now: Instant) -> Result<(), ProtocolError> {
        for (id, v) in frame::settings(payload) {
            match id {
                setting::ENABLE_PUSH if v > 1 => {
                    return Err(ProtocolError::BadFrame("ENABLE_PUSH other than 0 or 1"));
                }
                setting::MAX_CONCURRENT_STREAMS => self.max_streams = v,
                setting::INITIAL_WINDOW_SIZE => {
                    if v > MAX_WINDOW {
                        return Err(ProtocolError::FlowControl);
                    }
                    let delta = v as i64 - self.peer_initial_window;
                    self.peer_initial_window = v as i64;
                    for &slot in self.by_id.values() {
                        let s = &mut self.streams[slot];
                        s.send_window += delta;
                        if s.send_window > MAX_WINDOW as i64 {
                            return Err(ProtocolError::FlowControl);
                        }
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME..(1 << 24)).contains(&v) {
                        return Err(ProtocolError::BadFrame("MAX_FRAME_SIZE out of range"));
                    }
                    self.peer_max_frame = v;
                }
                // HEADER_TABLE_SIZE: our encoder keeps no dynamic table.
                // MAX_HEADER_LIST_SIZE: advisory; our requests are the
                // config's headers. Unknown settings are ignored (§6.5.2).
                _ => {}
            }
        }
        self.resume_bodies(now);
        Ok(())
    }

    fn data(
        &mut self,
        stream: u32,
        data: &[u8],
        end_stream: bool,
        flow_len: u32,
        now: Instant,
        on: &mut impl FnMut(Event<'_>),
    ) -> Result<(), ProtocolError> {
        if self.idle(stream) {
            return Err(ProtocolError::BadFrame("DATA on a stream we did not open"));
        }
        // The connection window counts every DATA frame, even on streams
        // that are gone (§6.9).
        self.conn_recv_window -= flow_len as i64;
        if self.conn_recv_window < 0 {
            return Err(ProtocolError::FlowControl);
        }
        self.conn_unacked += flow_len;
        if self.conn_unacked >= self.cfg.conn_window / 2 {
            frame::write_window_update(&mut self.out, 0, self.conn_unacked);
            self.conn_recv_window += self.conn_unacked as i64;
            self.conn_unacked = 0;
        }
        let Some(&slot) = self.by_id.get(&stream) else {
            return Ok(());
        };
        let s = &mut self.streams[slot];
        s.recv_window -= flow_len as i64;
        if s.recv_window < 0 {
            self.stream_error(slot, ProtocolError::FlowControl, on);
            return Ok(());
        }
        if let Err(e) = s.data(data) {
            self.stream_error(slot, e, on);
            return Ok(());
        }
        if end_stream {
            let end = s.complete();
            self.finish(slot, end, now, on);
            return Ok(());
        }
        s.unacked += flow_len;
        if s.unacked >= self.cfg.stream_window / 2 {
            let inc = s.unacked;
            s.recv_window += inc as i64;
            s.unacked = 0;
            frame::write_window_update(&mut self.out, stream, inc);
        }
        Ok(())
    }

    fn header_block(
        &mut self,
        stream: u32,
        block: &[u8],
        end_stream: bool,
        now: Instant,
        on: &mut impl FnMut(Event<'_>),
    ) -> Result<(), ProtocolError> {
        // Every block is decoded, even for a stream that is gone, or the
        // HPACK table would fall out of step with the server's.
        let slot = self.by_id.get(&stream).copied();
        let Some(slot) = slot else {
            return self
                .decoder
                .decode(block, |_, _| {})
                .map_err(ProtocolError::Hpack);
        };
        let s = &mut self.streams[slot];
        s.begin_block(now);
        self.decoder
            .decode(block, |n, v| s.field(n, v, MAX_HEADER_LIST))
            .map_err(ProtocolError::Hpack)?;
        let end = s.end_block(end_stream);
        self.finish(slot, end, now, on);
        Ok(())
    }

    /// Acts on the end of a header block or of the body.
    fn finish(&mut self, slot: usize, end: BlockEnd, now: Instant, on: &mut impl FnMut(Event<'_>)) {
        match end {
            BlockEnd::More => {}
            BlockEnd::Error(e) => self.stream_error(slot, e, on),
            BlockEnd::Complete => {
                let s = &mut self.streams[slot];
                let id = s.id;
                if !s.local_closed {
                    // The server answered before our body ended (§8.1):
                    // stop sending it.
                    frame::write_rst_stream(&mut self.out, id, ErrorCode::Cancel);
                    self.waiting.retain(|&w| w != id);
                    if let Some(since) = s.waiting_since.take() {
                        s.window_wait += now.saturating_duration_since(since);
                    }
                }
                self.by_id.remove(&id);
                let s = &self.streams[slot];
                on(Event::Response(Response {
                    stream: id,
                    tag: s.tag,
                    status: s.status,
                    body_bytes: s.body_bytes,
                    opened: s.opened,
                    first_byte: s.first_byte.unwrap_or(now),
                    window_wait: s.window_wait,
                    kept: s.kept(),
                    timing: &s.timing,
                }));
                self.release(slot);
            }
        }
    }

    /// Resets one stream for a fault of the server's (§5.4.2).
    fn stream_error(&mut self, slot: usize, e: ProtocolError, on: &mut impl FnMut(Event<'_>)) {
        let id = self.streams[slot].id;
        let tag = self.streams[slot].tag;
        frame::write_rst_stream(&mut self.out, id, e.code());
        self.by_id.remove(&id);
        self.waiting.retain(|&w| w != id);
        self.release(slot);
        on(Event::Failed {
            stream: id,
            tag,
            error: H2Error::Protocol(e),
        });
    }

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

/// The server's first frame must be SETTINGS (§3.4): its type byte tells,
/// before its length (an HTTP/1.1 answer's "HTT" would read as 4.7 MB).
fn not_settings(head: &[u8]) -> Result<(), ProtocolError> {
    match head.get(3) {
        Some(&k) if k != frame::kind::SETTINGS => Err(ProtocolError::NoSettingsFirst),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
