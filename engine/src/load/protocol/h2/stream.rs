//! One request stream's state: the request body still to send (waiting for
//! a send window), and the response as it arrives — header fields checked
//! against RFC 9113 §8 (a malformed response is the stream's `protocol`
//! error), the status, the body counted, and what the engine keeps of it.
//!
//! What is kept matches the HTTP/1.1 framer's `keep` / `collect_timing`
//! (load/framing.rs): the head for checks, captures and cookies, the body
//! up to a limit, and the `Server-Timing` values comma-joined. The head is
//! kept in HTTP/1.1 text form (`HTTP/1.1 200 \r\nname: value\r\n…\r\n\r\n`)
//! so `capture::headers` and the cookie jar read it unchanged; a field
//! value with CR, LF or NUL is malformed in HTTP/2 (§8.2.1), so the text
//! form cannot be forged. A slot's buffers are kept when its stream ends:
//! a connection stops allocating once warm.

use super::error::ProtocolError;
use crate::capture::Kept;
use crate::load::grpc::{CallError, Code, UnaryReader};
use std::time::{Duration, Instant};

/// What to keep of one response (see `Framer::keep`, `collect_timing`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    /// Keep the head (status and fields) for checks, captures, cookies.
    pub head: bool,
    /// Keep the body up to this many bytes (past it, `Kept::over`).
    pub body: Option<usize>,
    /// Collect the `Server-Timing` values.
    pub timing: bool,
    /// The request was HEAD: its response has no body whatever
    /// `content-length` says.
    pub head_request: bool,
    /// A gRPC call: the response's fields and DATA go through a
    /// [`UnaryReader`] too, and its outcome is [`Response::grpc`].
    pub grpc: bool,
}

/// A complete response, as [`super::Event::Response`] reports it; the
/// slices are valid until the callback returns.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    pub stream: u32,
    /// The caller's tag given to [`super::Session::open`].
    pub tag: u64,
    pub status: u16,
    /// DATA bytes received (padding not counted).
    pub body_bytes: u64,
    /// When the stream's HEADERS were queued for writing.
    pub opened: Instant,
    /// When the response's first HEADERS frame was read.
    pub first_byte: Instant,
    /// How long the request body waited for the server's flow-control
    /// window (connection or stream); zero when it never waited.
    pub window_wait: Duration,
    pub kept: Kept<'a>,
    /// The `Server-Timing` values (trailers included), comma-joined;
    /// empty unless [`Keep::timing`].
    pub timing: &'a [u8],
    /// A gRPC call's outcome ([`Keep::grpc`]): its `grpc-status`, or why
    /// the response is no valid gRPC answer.
    pub grpc: Option<Result<Code, CallError>>,
    /// A gRPC call's response message (protobuf), when the body is kept.
    pub grpc_message: &'a [u8],
    /// A gRPC call's `grpc-message` (percent-decoded, bounded): what the
    /// server said of a status other than OK.
    pub grpc_why: &'a [u8],
}

/// Most interim (1xx) responses before the final one, as for HTTP/1.1.
const MAX_INTERIM: u32 = crate::framing::MAX_INTERIM;

/// Where the response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for the (final) response HEADERS.
    Head,
    /// Final headers read; DATA and trailers may follow.
    Body,
}

/// What a finished header block means for the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BlockEnd {
    /// More frames follow (an interim response, or headers before DATA).
    More,
    /// END_STREAM: the response is complete.
    Complete,
    /// The response is malformed: a stream error.
    Error(ProtocolError),
}

/// One slot: a stream while it is open, its buffers kept while free.
#[derive(Debug)]
pub(super) struct Stream {
    /// 0 while the slot is free.
    pub id: u32,
    pub tag: u64,
    pub keep: Keep,
    pub opened: Instant,
    pub first_byte: Option<Instant>,
    // --- sending
    /// The request body not yet sent.
    pub body: Vec<u8>,
    pub body_at: usize,
    /// We sent END_STREAM.
    pub local_closed: bool,
    /// What the server still lets us send on this stream.
    pub send_window: i64,
    /// Since when the body has been waiting for a window.
    pub waiting_since: Option<Instant>,
    pub window_wait: Duration,
    // --- receiving
    /// What the server may still send before our next WINDOW_UPDATE.
    pub recv_window: i64,
    /// DATA bytes read since our last stream WINDOW_UPDATE.
    pub unacked: u32,
    pub phase: Phase,
    pub status: u16,
    pub interim: u32,
    pub body_bytes: u64,
    pub content_length: Option<u64>,
    // --- the header block being read
    block_status: Option<u16>,
    block_regular: bool,
    block_size: usize,
    block_error: Option<ProtocolError>,
    in_trailers: bool,
    // --- kept
    pub kept_head: Vec<u8>,
    pub kept_body: Vec<u8>,
    pub kept_over: bool,
    pub timing: Vec<u8>,
    // --- gRPC (see `Keep::grpc`): the reader, kept with the slot
    pub grpc: Option<Box<UnaryReader>>,
    grpc_error: Option<CallError>,
    pub grpc_result: Option<Result<Code, CallError>>,
}

/// Fields HTTP/2 forbids (§8.2.2).
const CONNECTION_SPECIFIC: [&[u8]; 5] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
];

impl Stream {
    pub fn free(now: Instant) -> Stream {
        Stream {
            id: 0,
            tag: 0,
            keep: Keep::default(),
            opened: now,
            first_byte: None,
            body: Vec::new(),
            body_at: 0,
            local_closed: false,
            send_window: 0,
            waiting_since: None,
            window_wait: Duration::ZERO,
            recv_window: 0,
            unacked: 0,
            phase: Phase::Head,
            status: 0,
            interim: 0,
            body_bytes: 0,
            content_length: None,
            block_status: None,
            block_regular: false,
            block_size: 0,
            block_error: None,
            in_trailers: false,
            kept_head: Vec::new(),
            kept_body: Vec::new(),
            kept_over: false,
            timing: Vec::new(),
            grpc: None,
            grpc_error: None,
            grpc_result: None,
        }
    }

    /// Makes a free slot the stream `id`; its buffers are kept.
    pub fn start(&mut self, id: u32, tag: u64, keep: Keep, now: Instant, send: i64, recv: i64) {
        self.id = id;
        self.tag = tag;
        self.keep = keep;
        self.opened = now;
        self.first_byte = None;
        self.body.clear();
        self.body_at = 0;
        self.local_closed = false;
        self.send_window = send;
        self.waiting_since = None;
        self.window_wait = Duration::ZERO;
        self.recv_window = recv;
        self.unacked = 0;
        self.phase = Phase::Head;
        self.status = 0;
        self.interim = 0;
        self.body_bytes = 0;
        self.content_length = None;
        self.in_trailers = false;
        self.kept_head.clear();
        self.kept_body.clear();
        self.kept_over = false;
        self.timing.clear();
        self.grpc_error = None;
        self.grpc_result = None;
        if keep.grpc {
            let max = crate::load::grpc::DEFAULT_MAX_MESSAGE;
            let r = self
                .grpc
                .get_or_insert_with(|| Box::new(UnaryReader::new(max)));
            r.start(keep.body.is_some());
        }
    }

    /// A header block starts (HEADERS arrived for this stream).
    pub fn begin_block(&mut self, now: Instant) {
        self.first_byte.get_or_insert(now);
        self.block_status = None;
        self.block_regular = false;
        self.block_size = 0;
        self.block_error = None;
        self.in_trailers = self.phase == Phase::Body;
        if !self.in_trailers && self.keep.head {
            self.kept_head.clear();
        }
    }

    fn malformed(&mut self, why: &'static str) {
        self.block_error
            .get_or_insert(ProtocolError::Malformed(why));
    }

    /// One decoded field of the block.
    pub fn field(&mut self, name: &[u8], value: &[u8], max_list: usize) {
        if self.block_error.is_some() {
            return;
        }
        self.block_size += name.len() + value.len() + 32;
        if self.block_size > max_list {
            self.block_error = Some(ProtocolError::HeaderListTooLarge);
            return;
        }
        if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
            return self.malformed("CR, LF or NUL in a field value");
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            if self.block_regular {
                return self.malformed("pseudo-header after a regular field");
            }
            if pseudo != b"status" {
                return self.malformed("a pseudo-header other than :status");
            }
            if self.in_trailers {
                return self.malformed(":status in trailers");
            }
            if self.block_status.is_some() {
                return self.malformed("two :status fields");
            }
            let Some(status) = parse_status(value) else {
                return self.malformed(":status is not three digits");
            };
            self.block_status = Some(status);
            if self.keep.head {
                self.kept_head.extend_from_slice(b"HTTP/1.1 ");
                self.kept_head.extend_from_slice(value);
                self.kept_head.extend_from_slice(b" \r\n");
            }
            return;
        }
        self.block_regular = true;
        if name.is_empty() || !name.iter().all(|&b| is_name_byte(b)) {
            return self.malformed("a field name that is empty, upper-case or not a token");
        }
        if CONNECTION_SPECIFIC.contains(&name) {
            return self.malformed("a connection-specific field");
        }
        if !self.in_trailers && name == b"content-length" {
            let Some(n) = parse_length(value) else {
                return self.malformed("content-length is not a number");
            };
            if self.content_length.is_some_and(|c| c != n) {
                return self.malformed("two different content-length values");
            }
            self.content_length = Some(n);
        }
        if self.keep.grpc
            && let Some(r) = self.grpc.as_mut()
        {
            r.field(name, value);
        }
        if self.keep.timing && name == b"server-timing" {
            if !self.timing.is_empty() {
                self.timing.push(b',');
            }
            self.timing.extend_from_slice(value);
        }
        if self.keep.head && !self.in_trailers && self.block_status.is_some() {
            self.kept_head.extend_from_slice(name);
            self.kept_head.extend_from_slice(b": ");
            self.kept_head.extend_from_slice(value);
            self.kept_head.extend_from_slice(b"\r\n");
        }
    }

    /// The block ended (END_HEADERS); `end_stream` was on its HEADERS.
    pub fn end_block(&mut self, end_stream: bool) -> BlockEnd {
        if let Some(e) = self.block_error {
            return BlockEnd::Error(e);
        }
        if self.in_trailers {
            if !end_stream {
                return BlockEnd::Error(ProtocolError::Malformed("trailers without END_STREAM"));
            }
            return self.complete();
        }
        let Some(status) = self.block_status else {
            return BlockEnd::Error(ProtocolError::Malformed("no :status"));
        };
        if (100..200).contains(&status) {
            if status == 101 {
                return BlockEnd::Error(ProtocolError::Malformed("101 is not allowed in HTTP/2"));
            }
            if end_stream {
                return BlockEnd::Error(ProtocolError::Malformed(
                    "an interim response with END_STREAM",
                ));
            }
            self.interim += 1;
            if self.interim > MAX_INTERIM {
                return BlockEnd::Error(ProtocolError::Malformed(
                    "too many interim (1xx) responses",
                ));
            }
            self.content_length = None;
            return BlockEnd::More;
        }
        self.status = status;
        self.phase = Phase::Body;
        if self.keep.head {
            self.kept_head.extend_from_slice(b"\r\n");
        }
        if end_stream {
            return self.complete();
        }
        BlockEnd::More
    }

    /// DATA arrived for this stream: counted, and kept when asked.
    pub fn data(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        if self.phase != Phase::Body || self.in_trailers {
            return Err(ProtocolError::Malformed(
                "DATA before the response headers or after trailers",
            ));
        }
        self.body_bytes += data.len() as u64;
        if self.keep.grpc {
            // the decoded message is what is kept (see `UnaryReader`)
            if self.grpc_error.is_none()
                && let Some(r) = self.grpc.as_mut()
                && let Err(e) = r.data(data)
            {
                self.grpc_error = Some(e);
            }
            return Ok(());
        }
        if let Some(limit) = self.keep.body
            && !self.kept_over
        {
            if self.kept_body.len() + data.len() > limit {
                self.kept_over = true;
                self.kept_body.clear();
            } else {
                self.kept_body.extend_from_slice(data);
            }
        }
        Ok(())
    }

    /// END_STREAM arrived: the response is complete unless its length is
    /// wrong (§8.1.1).
    pub fn complete(&mut self) -> BlockEnd {
        let no_body = self.keep.head_request || self.status == 204 || self.status == 304;
        if let Some(n) = self.content_length
            && !no_body
            && n != self.body_bytes
        {
            return BlockEnd::Error(ProtocolError::Malformed(
                "DATA does not add up to content-length",
            ));
        }
        if self.keep.grpc
            && let Some(r) = self.grpc.as_mut()
        {
            self.grpc_result = Some(match self.grpc_error.take() {
                Some(e) => Err(e),
                None => r.finish(self.status),
            });
        }
        BlockEnd::Complete
    }

    /// The gRPC response message, when kept.
    pub fn grpc_message(&self) -> &[u8] {
        self.grpc.as_ref().map_or(&[], |r| r.message())
    }

    /// The call's `grpc-message`.
    pub fn grpc_why(&self) -> &[u8] {
        self.grpc.as_ref().map_or(&[], |r| r.grpc_message())
    }

    pub fn kept(&self) -> Kept<'_> {
        Kept {
            head: &self.kept_head,
            body: &self.kept_body,
            over: self.kept_over.then_some(self.keep.body.unwrap_or(0)),
        }
    }
}

/// Lower-case token bytes (RFC 9110 tchar; §8.2.1 forbids upper case).
fn is_name_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

fn parse_status(v: &[u8]) -> Option<u16> {
    match v {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some((a - b'0') as u16 * 100 + (b - b'0') as u16 * 10 + (c - b'0') as u16)
        }
        _ => None,
    }
}

fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |acc, &d| acc * 10 + (d - b'0') as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(s: &mut Stream, fields: &[(&str, &str)], end_stream: bool) -> BlockEnd {
        s.begin_block(Instant::now());
        for (n, v) in fields {
            s.field(n.as_bytes(), v.as_bytes(), 64 * 1024);
        }
        s.end_block(end_stream)
    }

    fn stream(keep: Keep) -> Stream {
        let mut s = Stream::free(Instant::now());
        s.start(1, 7, keep, Instant::now(), 65_535, 65_535);
        s
    }

    /// (name, fields, END_STREAM, what the block means)
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        bool,
        BlockEnd,
    );

    #[test]
    fn checks_response_fields_as_rfc_9113_section_8_asks() {
        use BlockEnd::*;
        let m = |why| Error(ProtocolError::Malformed(why));
        let cases: &[Case] = &[
            (
                "ok",
                &[(":status", "200"), ("content-type", "text/plain")],
                false,
                More,
            ),
            ("ok end", &[(":status", "204")], true, Complete),
            ("no status", &[("content-type", "x")], true, m("no :status")),
            (
                "bad status",
                &[(":status", "20")],
                true,
                m(":status is not three digits"),
            ),
            (
                "two status",
                &[(":status", "200"), (":status", "200")],
                true,
                m("two :status fields"),
            ),
            (
                "request pseudo",
                &[(":status", "200"), (":path", "/")],
                true,
                m("a pseudo-header other than :status"),
            ),
            (
                "pseudo late",
                &[("a", "1"), (":status", "200")],
                true,
                m("pseudo-header after a regular field"),
            ),
            (
                "upper case",
                &[(":status", "200"), ("Content-Type", "x")],
                true,
                m("a field name that is empty, upper-case or not a token"),
            ),
            (
                "connection",
                &[(":status", "200"), ("connection", "close")],
                true,
                m("a connection-specific field"),
            ),
            (
                "crlf value",
                &[(":status", "200"), ("x", "a\r\nb: c")],
                true,
                m("CR, LF or NUL in a field value"),
            ),
            (
                "bad length",
                &[(":status", "200"), ("content-length", "-1")],
                true,
                m("content-length is not a number"),
            ),
            (
                "length mismatch",
                &[(":status", "200"), ("content-length", "5")],
                true,
                m("DATA does not add up to content-length"),
            ),
            (
                "interim end",
                &[(":status", "100")],
                true,
                m("an interim response with END_STREAM"),
            ),
            (
                "101",
                &[(":status", "101")],
                false,
                m("101 is not allowed in HTTP/2"),
            ),
        ];
        for (name, fields, end, want) in cases {
            let mut s = stream(Keep::default());
            assert_eq!(block(&mut s, fields, *end), *want, "{name}");
        }
    }

    #[test]
    fn keeps_the_head_as_http_1_text_the_body_bounded_and_server_timing() {
        let keep = Keep {
            head: true,
            body: Some(8),
            timing: true,
            head_request: false,
            grpc: false,
        };
        let mut s = stream(keep);
        assert_eq!(
            block(&mut s, &[(":status", "103"), ("link", "</a>")], false),
            BlockEnd::More
        );
        let head = [
            (":status", "200"),
            ("set-cookie", "a=1"),
            ("server-timing", "db;dur=5"),
            ("set-cookie", "b=2"),
            ("content-length", "5"),
        ];
        assert_eq!(block(&mut s, &head, false), BlockEnd::More);
        s.data(b"hel").unwrap();
        s.data(b"lo").unwrap();
        assert_eq!(
            block(&mut s, &[("server-timing", "app;dur=1")], true),
            BlockEnd::Complete
        );
        let k = s.kept();
        assert_eq!(
            k.head,
            b"HTTP/1.1 200 \r\nset-cookie: a=1\r\nserver-timing: db;dur=5\r\nset-cookie: b=2\r\ncontent-length: 5\r\n\r\n"
        );
        assert_eq!(
            crate::capture::headers(k.head, "set-cookie"),
            [&b"a=1"[..], b"b=2"]
        );
        assert_eq!((k.body, k.over), (&b"hello"[..], None));
        assert_eq!(s.timing, b"db;dur=5,app;dur=1");
        assert_eq!((s.status, s.body_bytes), (200, 5));
        // over the limit: counted, not kept
        let mut s = stream(keep);
        block(&mut s, &[(":status", "200")], false);
        s.data(b"0123456789").unwrap();
        assert_eq!(s.complete(), BlockEnd::Complete);
        assert_eq!((s.kept().body, s.kept().over), (&b""[..], Some(8)));
        // trailers must end the stream
        let mut s = stream(keep);
        block(&mut s, &[(":status", "200")], false);
        assert_eq!(
            block(&mut s, &[("x", "1")], false),
            BlockEnd::Error(ProtocolError::Malformed("trailers without END_STREAM"))
        );
        // a HEAD request's content-length is not its body
        let mut s = stream(Keep {
            head_request: true,
            ..Keep::default()
        });
        assert_eq!(
            block(
                &mut s,
                &[(":status", "200"), ("content-length", "100")],
                true
            ),
            BlockEnd::Complete
        );
    }

    #[test]
    fn bounds_the_header_list() {
        let mut s = stream(Keep::default());
        s.begin_block(Instant::now());
        s.field(b":status", b"200", 100);
        s.field(b"x", &[b'a'; 70], 100);
        assert_eq!(
            s.end_block(true),
            BlockEnd::Error(ProtocolError::HeaderListTooLarge)
        );
    }
}
