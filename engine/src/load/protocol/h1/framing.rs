//! Response framing: where one HTTP/1.1 response ends on a keep-alive
//! connection.
//!
//! `httparse` reads the status line and headers; the body is framed here by
//! `Content-Length`, `chunked` (extensions and trailers included), the close
//! of the connection, or not at all (HEAD, 1xx, 204, 304). Bodies are
//! counted and skipped, never kept. Input arrives in arbitrary pieces: an
//! incomplete piece is the normal state ([`Framed::Partial`]), not an error.
//! Only a split response head is copied, into a buffer that is kept per
//! connection and bounded by [`MAX_HEAD`].

use std::fmt;

/// Largest response head (status line + headers) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one response head.
pub const MAX_HEADERS: usize = 64;
/// Most interim (1xx) responses before the final one.
pub const MAX_INTERIM: u32 = 16;
/// Longest chunk-size line (size plus extensions).
const MAX_CHUNK_LINE: u32 = 4096;
/// Most trailer bytes after the last chunk.
const MAX_TRAILERS: u32 = 64 * 1024;

/// Why a response could not be framed; each is counted as a `parse` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The status line or a header is not HTTP/1.x.
    Malformed(&'static str),
    HeadTooLarge,
    TooManyInterim,
    /// `101 Switching Protocols`: the engine does not upgrade connections.
    Upgrade,
    BadContentLength,
    ConflictingContentLength,
    BadChunk(&'static str),
    ChunkSizeOverflow,
    /// The connection closed before the response was complete.
    UnexpectedEof,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Malformed(why) => write!(f, "malformed response head: {why}"),
            FrameError::HeadTooLarge => write!(f, "response head over {MAX_HEAD} bytes"),
            FrameError::TooManyInterim => {
                write!(f, "more than {MAX_INTERIM} interim (1xx) responses")
            }
            FrameError::Upgrade => write!(f, "101 Switching Protocols is not supported"),
            FrameError::BadContentLength => write!(f, "invalid Content-Length"),
            FrameError::ConflictingContentLength => write!(f, "conflicting Content-Length headers"),
            FrameError::BadChunk(why) => write!(f, "invalid chunked body: {why}"),
            FrameError::ChunkSizeOverflow => write!(f, "chunk size overflows 64 bits"),
            FrameError::UnexpectedEof => {
                write!(f, "connection closed before the response was complete")
            }
        }
    }
}

/// A complete response as far as the engine cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Whether the connection may carry the next request.
    pub keep_alive: bool,
}

/// The outcome of feeding bytes: `consumed` bytes were used; the response is
/// complete or more input is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed {
    Partial,
    Complete(Response),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    /// The response is complete; reported once, then back to `Head`.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// In the hex size; `digits` seen so far.
    Size {
        value: u64,
        digits: u8,
    },
    /// In `;ext` after the size, until the line ends.
    Ext {
        value: u64,
    },
    /// Saw CR at the end of a size line.
    SizeLf {
        value: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerLine,
    FinalLf,
}

/// Frames consecutive responses on one connection.
#[derive(Debug)]
pub struct Framer {
    state: State,
    /// The part of a response head split over reads; empty on the fast path.
    head: Vec<u8>,
    /// The request was HEAD: the response has no body whatever it says.
    head_request: bool,
    interim: u32,
    /// Bytes of the current chunk-size line, or of trailers.
    line_bytes: u32,
    resp: Response,
    /// Whether `Server-Timing` values are kept (see [`Framer::collect_timing`]).
    collect_timing: bool,
    /// The current response's `Server-Timing` values, comma-joined; the
    /// buffer is kept, so a connection stops allocating once warm.
    timing: Vec<u8>,
    /// Keep the response head / the body up to this many bytes, for a
    /// flow step's captures and cookies (see [`Framer::keep`]).
    keep_head: bool,
    keep_body: Option<usize>,
    kept_head: Vec<u8>,
    kept_body: Vec<u8>,
    /// The body went past `keep_body`'s limit (then it is not kept).
    kept_over: bool,
}

impl Default for Framer {
    fn default() -> Framer {
        Framer::new()
    }
}

impl Framer {
    pub fn new() -> Framer {
        Framer {
            state: State::Head,
            head: Vec::new(),
            head_request: false,
            interim: 0,
            line_bytes: 0,
            resp: Response {
                status: 0,
                keep_alive: true,
            },
            collect_timing: false,
            timing: Vec::new(),
            keep_head: false,
            keep_body: None,
            kept_head: Vec::new(),
            kept_body: Vec::new(),
            kept_over: false,
        }
    }

    /// Keep the next responses' head, and their body up to `body` bytes
    /// (de-chunked), for [`Framer::kept`]. Off by default: bodies are
    /// counted, not kept.
    pub fn keep(&mut self, head: bool, body: Option<usize>) {
        self.keep_head = head;
        self.keep_body = body;
    }

    /// The last response's kept head and body.
    pub fn kept(&self) -> crate::capture::Kept<'_> {
        crate::capture::Kept {
            head: &self.kept_head,
            body: &self.kept_body,
            over: self.kept_over.then_some(self.keep_body.unwrap_or(0)),
        }
    }

    fn keep_bytes(&mut self, b: &[u8]) {
        if let Some(limit) = self.keep_body
            && !self.kept_over
        {
            if self.kept_body.len() + b.len() > limit {
                self.kept_over = true;
                self.kept_body.clear();
            } else {
                self.kept_body.extend_from_slice(b);
            }
        }
    }

    /// Keep the `Server-Timing` header values of each response (for
    /// [`Framer::timing`]); off, the framer only compares header names.
    pub fn collect_timing(&mut self, on: bool) {
        self.collect_timing = on;
    }

    /// The last response's `Server-Timing` values (several headers joined
    /// by commas); empty when it had none or collection is off.
    pub fn timing(&self) -> &[u8] {
        &self.timing
    }

    /// Prepares for the response to a new request.
    pub fn start(&mut self, head_request: bool) {
        self.state = State::Head;
        self.head.clear();
        self.timing.clear();
        if self.keep_head || self.keep_body.is_some() {
            self.kept_head.clear();
            self.kept_body.clear();
            self.kept_over = false;
        }
        self.head_request = head_request;
        self.interim = 0;
        self.line_bytes = 0;
    }

    /// True when no byte of a response has been seen since [`Framer::start`].
    pub fn is_idle(&self) -> bool {
        self.state == State::Head && self.head.is_empty() && self.interim == 0
    }

    /// Consumes bytes of the current response. Returns how many bytes were
    /// used and whether the response is complete; bytes after a complete
    /// response are left unconsumed.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, Framed), FrameError> {
        let mut used = 0;
        while used < input.len() {
            let rest = &input[used..];
            match self.state {
                // An interim (1xx) response leaves the state at `Head`: the final one follows.
                State::Head => used += self.feed_head(rest)?,
                State::Length(left) => {
                    let n = (left.min(rest.len() as u64)) as usize;
                    if self.keep_body.is_some() {
                        self.keep_bytes(&rest[..n]);
                    }
                    used += n;
                    self.state = State::Length(left - n as u64);
                }
                State::Chunked(_) => used += self.feed_chunked(rest)?,
                State::UntilClose => {
                    if self.keep_body.is_some() {
                        self.keep_bytes(rest);
                    }
                    used = input.len()
                }
                State::Done => {}
            }
            if let Some(done) = self.take_complete() {
                return Ok((used, done));
            }
        }
        Ok((used, Framed::Partial))
    }

    /// The connection closed: completes a close-delimited body, otherwise an
    /// error (a close before any byte of a response is also an error here;
    /// callers that sent nothing need not ask).
    pub fn eof(&mut self) -> Result<Response, FrameError> {
        if self.state == State::UntilClose {
            self.state = State::Head;
            return Ok(Response {
                keep_alive: false,
                ..self.resp
            });
        }
        Err(FrameError::UnexpectedEof)
    }

    fn take_complete(&mut self) -> Option<Framed> {
        if matches!(self.state, State::Length(0) | State::Done) {
            self.state = State::Head;
            return Some(Framed::Complete(self.resp));
        }
        None
    }

    /// Reads head bytes; returns how many bytes of `input` were used.
    fn feed_head(&mut self, input: &[u8]) -> Result<usize, FrameError> {
        if self.head.is_empty() {
            let timing = self.collect_timing.then_some(&mut self.timing);
            return match parse_head(input, self.head_request, timing)? {
                Some((n, head)) => {
                    if self.keep_head {
                        self.kept_head.clear();
                        self.kept_head.extend_from_slice(&input[..n]);
                    }
                    self.begin_body(head)?;
                    Ok(n)
                }
                None if input.len() > MAX_HEAD => Err(FrameError::HeadTooLarge),
                None => {
                    self.head.extend_from_slice(input);
                    Ok(input.len())
                }
            };
        }
        let prev = self.head.len();
        let take = input.len().min(MAX_HEAD + 1 - prev);
        self.head.extend_from_slice(&input[..take]);
        let timing = self.collect_timing.then_some(&mut self.timing);
        match parse_head(&self.head, self.head_request, timing)? {
            Some((n, head)) => {
                if self.keep_head {
                    self.kept_head.clear();
                    self.kept_head.extend_from_slice(&self.head[..n]);
                }
                self.head.clear();
                self.begin_body(head)?;
                Ok(n - prev)
            }
            None if self.head.len() > MAX_HEAD => Err(FrameError::HeadTooLarge),
            None => Ok(take),
        }
    }

    fn begin_body(&mut self, head: Head) -> Result<(), FrameError> {
        if (100..200).contains(&head.status) {
            if head.status == 101 {
                return Err(FrameError::Upgrade);
            }
            self.interim += 1;
            if self.interim > MAX_INTERIM {
                return Err(FrameError::TooManyInterim);
            }
            self.state = State::Head;
            return Ok(());
        }
        self.resp = Response {
            status: head.status,
            keep_alive: head.keep_alive,
        };
        self.state = match head.body {
            Body::None => State::Length(0),
            Body::Length(n) => State::Length(n),
            Body::Chunked => {
                self.line_bytes = 0;
                State::Chunked(Chunk::Size {
                    value: 0,
                    digits: 0,
                })
            }
            Body::UntilClose => {
                self.resp.keep_alive = false;
                State::UntilClose
            }
        };
        Ok(())
    }

    /// Walks the chunked encoding; data is skipped in bulk, the framing lines
    /// byte by byte. Sets the state to `Done` after the last trailer line.
    fn feed_chunked(&mut self, input: &[u8]) -> Result<usize, FrameError> {
        let State::Chunked(mut c) = self.state else {
            unreachable!("not chunked")
        };
        let mut i = 0;
        while i < input.len() {
            if let Chunk::Data(left) = c {
                let n = left.min((input.len() - i) as u64);
                if self.keep_body.is_some() {
                    self.keep_bytes(&input[i..i + n as usize]);
                }
                i += n as usize;
                c = if left == n {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left - n)
                };
                continue;
            }
            let b = input[i];
            i += 1;
            self.line_bytes += 1;
            c = match c {
                Chunk::Size { value, digits } => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if value > (u64::MAX >> 4) {
                            return Err(FrameError::ChunkSizeOverflow);
                        }
                        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                        Chunk::Size {
                            value: value << 4 | d,
                            digits: digits.saturating_add(1),
                        }
                    }
                    _ if digits == 0 => return Err(FrameError::BadChunk("missing chunk size")),
                    b';' | b' ' | b'\t' => Chunk::Ext { value },
                    b'\r' => Chunk::SizeLf { value },
                    b'\n' => self.size_line_done(value),
                    _ => return Err(FrameError::BadChunk("invalid byte in chunk size")),
                },
                Chunk::Ext { value } => match b {
                    b'\r' => Chunk::SizeLf { value },
                    b'\n' => self.size_line_done(value),
                    _ if self.line_bytes > MAX_CHUNK_LINE => {
                        return Err(FrameError::BadChunk("chunk extension too long"));
                    }
                    _ => Chunk::Ext { value },
                },
                Chunk::SizeLf { value } => match b {
                    b'\n' => self.size_line_done(value),
                    _ => return Err(FrameError::BadChunk("CR without LF after chunk size")),
                },
                Chunk::Data(_) => unreachable!("handled above"),
                Chunk::DataCr => match b {
                    b'\r' => Chunk::DataLf,
                    b'\n' => self.next_size(),
                    _ => return Err(FrameError::BadChunk("chunk data longer than its size")),
                },
                Chunk::DataLf => match b {
                    b'\n' => self.next_size(),
                    _ => return Err(FrameError::BadChunk("CR without LF after chunk data")),
                },
                Chunk::TrailerStart => match b {
                    b'\r' => Chunk::FinalLf,
                    b'\n' => {
                        self.state = State::Done;
                        return Ok(i);
                    }
                    _ => Chunk::TrailerLine,
                },
                Chunk::TrailerLine => match b {
                    _ if self.line_bytes > MAX_TRAILERS => {
                        return Err(FrameError::BadChunk("trailers too long"));
                    }
                    b'\n' => Chunk::TrailerStart,
                    _ => Chunk::TrailerLine,
                },
                Chunk::FinalLf => match b {
                    b'\n' => {
                        self.state = State::Done;
                        return Ok(i);
                    }
                    _ => return Err(FrameError::BadChunk("CR without LF at the end of trailers")),
                },
            };
        }
        self.state = State::Chunked(c);
        Ok(i)
    }

    fn size_line_done(&mut self, value: u64) -> Chunk {
        self.line_bytes = 0;
        if value == 0 {
            Chunk::TrailerStart
        } else {
            Chunk::Data(value)
        }
    }

    fn next_size(&mut self) -> Chunk {
        self.line_bytes = 0;
        Chunk::Size {
            value: 0,
            digits: 0,
        }
    }
}

enum Body {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

struct Head {
    status: u16,
    keep_alive: bool,
    body: Body,
}

/// Parses a response head; `None` when more bytes are needed. With
/// `timing`, appends the values of its `Server-Timing` headers.
fn parse_head(
    buf: &[u8],
    head_request: bool,
    mut timing: Option<&mut Vec<u8>>,
) -> Result<Option<(usize, Head)>, FrameError> {
    // Uninitialized header slots: zeroing 64 of them (2 KiB) for every
    // response cost more than parsing a small one (see the commit).
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let n = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(FrameError::Malformed(httparse_reason(e))),
    };
    let status = resp.code.unwrap_or(0);
    let http11 = resp.version == Some(1);
    let mut keep_alive = http11;
    let mut length: Option<u64> = None;
    let mut chunked = None;
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let v = parse_content_length(h.value)?;
            if length.is_some_and(|old| old != v) {
                return Err(FrameError::ConflictingContentLength);
            }
            length = Some(v);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The last coding decides: chunked frames the body; anything else
            // is read until the close (RFC 9112 §6.3).
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&b| b == b',') {
                let t = token.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                }
            }
        } else if let Some(out) = timing.as_deref_mut()
            && name.eq_ignore_ascii_case(b"server-timing")
        {
            if !out.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(h.value);
        }
    }
    // HTTP/1.0 answers always reconnect (DESIGN §2): keep-alive there is opt-in
    // and rare, and a fresh connection is always correct.
    let body = if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        Body::None
    } else if let Some(chunked) = chunked {
        if chunked {
            Body::Chunked
        } else {
            Body::UntilClose
        }
    } else if let Some(n) = length {
        Body::Length(n)
    } else {
        Body::UntilClose
    };
    Ok(Some((
        n,
        Head {
            status,
            keep_alive,
            body,
        },
    )))
}

fn parse_content_length(v: &[u8]) -> Result<u64, FrameError> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(FrameError::BadContentLength);
    }
    Ok(v.iter().fold(0u64, |acc, &d| acc * 10 + (d - b'0') as u64))
}

fn httparse_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "not HTTP/1.x",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces cut at `cuts`; returns the completed responses
    /// and the bytes left after the last one, or the first error.
    fn run(
        wire: &[u8],
        cuts: &[usize],
        head_request: bool,
        close: bool,
    ) -> Result<(Vec<Response>, usize), FrameError> {
        let mut f = Framer::new();
        f.start(head_request);
        let mut out = Vec::new();
        let mut bounds = cuts.to_vec();
        bounds.push(wire.len());
        let mut pos = 0;
        let mut leftover = 0;
        for end in bounds {
            let mut piece = &wire[pos..end];
            pos = end;
            while !piece.is_empty() {
                let (n, framed) = f.feed(piece)?;
                piece = &piece[n..];
                match framed {
                    Framed::Complete(r) => {
                        out.push(r);
                        f.start(head_request);
                    }
                    Framed::Partial => assert!(piece.is_empty(), "partial must use all input"),
                }
            }
            leftover = piece.len();
        }
        if close && !f.is_idle() {
            out.push(f.eof()?);
        }
        Ok((out, leftover))
    }

    fn ok(status: u16, keep_alive: bool) -> Response {
        Response { status, keep_alive }
    }

    /// (name, wire bytes, HEAD request?, connection closes after?, expected responses or error)
    #[allow(clippy::type_complexity)]
    fn cases() -> Vec<(
        &'static str,
        &'static [u8],
        bool,
        bool,
        Result<Vec<Response>, FrameError>,
    )> {
        vec![
            ("content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, false, Ok(vec![ok(200, true)])),
            ("zero length", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, false, Ok(vec![ok(200, true)])),
            ("two in a row", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 NF\r\ncontent-length: 2\r\n\r\nbb", false, false, Ok(vec![ok(200, true), ok(404, true)])),
            ("chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n", false, false, Ok(vec![ok(200, true)])),
            ("chunked ext + trailers", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;name=val\r\nhello\r\n0;x\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\n", false, false, Ok(vec![ok(200, true)])),
            ("chunked bare LF", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n", false, false, Ok(vec![ok(200, true)])),
            ("chunked wins over length", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false, false, Ok(vec![ok(200, true)])),
            ("until close", b"HTTP/1.1 200 OK\r\n\r\nsome body bytes", false, true, Ok(vec![ok(200, false)])),
            ("unknown coding until close", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz", false, true, Ok(vec![ok(200, false)])),
            ("head request ignores length", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", true, false, Ok(vec![ok(200, true)])),
            ("204 no body", b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", false, false, Ok(vec![ok(204, true)])),
            ("304 no body", b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false, false, Ok(vec![ok(304, true)])),
            ("100 continue then 200", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", false, false, Ok(vec![ok(201, true)])),
            ("connection close", b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok", false, false, Ok(vec![ok(200, false)])),
            ("http/1.0 reconnects", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", false, false, Ok(vec![ok(200, false)])),
            ("same length twice", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", false, false, Ok(vec![ok(200, true)])),
            ("conflicting length", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", false, false, Err(FrameError::ConflictingContentLength)),
            ("bad length", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, false, Err(FrameError::BadContentLength)),
            ("huge length", b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", false, false, Err(FrameError::BadContentLength)),
            ("garbage status", b"HTTX/1.1 200 OK\r\n\r\n", false, false, Err(FrameError::Malformed("not HTTP/1.x"))),
            ("http/0.9", b"<html>hello</html>\n", false, false, Err(FrameError::Malformed("not HTTP/1.x"))),
            ("bad header byte", b"HTTP/1.1 200 OK\r\nX-A\x01: 1\r\n\r\n", false, false, Err(FrameError::Malformed("invalid header name"))),
            ("switching protocols", b"HTTP/1.1 101 Switching Protocols\r\n\r\n", false, false, Err(FrameError::Upgrade)),
            ("chunk size garbage", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, false, Err(FrameError::BadChunk("missing chunk size"))),
            ("chunk size overflow", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n", false, false, Err(FrameError::ChunkSizeOverflow)),
            ("chunk data too long", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n", false, false, Err(FrameError::BadChunk("chunk data longer than its size"))),
            ("length then close", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false, true, Err(FrameError::UnexpectedEof)),
            ("chunked then close", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", false, true, Err(FrameError::UnexpectedEof)),
            ("head then close", b"HTTP/1.1 200 OK\r\nContent-Le", false, true, Err(FrameError::UnexpectedEof)),
        ]
    }

    #[test]
    fn frames_every_case_whole() {
        for (name, wire, head, close, want) in cases() {
            let got = run(wire, &[], head, close).map(|(r, left)| {
                assert_eq!(left, 0, "{name}: leftover bytes");
                r
            });
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn frames_every_case_split_at_every_byte() {
        for (name, wire, head, close, want) in cases() {
            for cut in 0..=wire.len() {
                let got = run(wire, &[cut], head, close).map(|(r, _)| r);
                assert_eq!(got, want, "{name} split at {cut}");
            }
            // and one byte at a time
            let cuts: Vec<usize> = (1..wire.len()).collect();
            assert_eq!(
                run(wire, &cuts, head, close).map(|(r, _)| r),
                want,
                "{name} byte by byte"
            );
        }
    }

    #[test]
    fn keeps_server_timing_values_split_at_every_byte() {
        let wire: &[u8] = b"HTTP/1.1 200 OK\r\nServer-Timing: db;dur=5.5\r\nContent-Length: 2\r\nserver-timing: cache;desc=\"hit, warm\", app;dur=1\r\n\r\nok";
        for cut in 0..=wire.len() {
            let mut f = Framer::new();
            f.collect_timing(true);
            f.start(false);
            let (a, b) = wire.split_at(cut);
            let mut done = None;
            for piece in [a, b] {
                if let (_, Framed::Complete(r)) = f.feed(piece).unwrap() {
                    done = Some(r);
                }
            }
            assert_eq!(done, Some(ok(200, true)), "split at {cut}");
            assert_eq!(
                f.timing(),
                b"db;dur=5.5,cache;desc=\"hit, warm\", app;dur=1",
                "split at {cut}"
            );
            // the next response starts empty
            f.start(false);
            f.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            assert!(f.timing().is_empty());
        }
        // off by default: nothing kept
        let mut f = Framer::new();
        f.start(false);
        f.feed(wire).unwrap();
        assert!(f.timing().is_empty());
    }

    #[test]
    fn leaves_bytes_after_a_response_unconsumed() {
        let mut f = Framer::new();
        f.start(false);
        let (n, framed) = f
            .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naXYZ")
            .unwrap();
        assert_eq!(n, 39);
        assert_eq!(framed, Framed::Complete(ok(200, true)));
    }

    #[test]
    fn limits_head_size_and_interim_count() {
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        while big.len() <= MAX_HEAD {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let mut f = Framer::new();
        f.start(false);
        // fed in small pieces, it must stop at the limit, not grow without bound
        let mut err = None;
        for piece in big.chunks(1000) {
            if let Err(e) = f.feed(piece) {
                err = Some(e);
                break;
            }
        }
        assert!(
            matches!(
                err,
                Some(FrameError::HeadTooLarge | FrameError::Malformed(_))
            ),
            "{err:?}"
        );
        assert!(f.head.len() <= MAX_HEAD + 1);

        let flood = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INTERIM as usize + 1);
        assert_eq!(
            run(&flood, &[], false, false).map(|(r, _)| r),
            Err(FrameError::TooManyInterim)
        );
    }

    #[test]
    fn kept_bodies_are_de_chunked_in_any_split_and_bounded() {
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        for split in 1..resp.len() {
            let mut f = Framer::new();
            f.keep(true, Some(64));
            f.start(false);
            let (a, b) = resp.split_at(split);
            let mut done = matches!(f.feed(a).unwrap().1, Framed::Complete(_));
            if !done {
                done = matches!(f.feed(b).unwrap().1, Framed::Complete(_));
            }
            assert!(done, "split {split}");
            let k = f.kept();
            assert_eq!(k.body, b"hello world", "split {split}");
            assert!(
                k.head.starts_with(b"HTTP/1.1 200 OK\r\nX-A: 1"),
                "split {split}"
            );
            assert_eq!(k.over, None);
        }
        let mut f = Framer::new();
        f.keep(false, Some(4));
        f.start(false);
        let r = f
            .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
            .unwrap();
        assert!(matches!(r.1, Framed::Complete(_)));
        assert_eq!(f.kept().over, Some(4));
        assert!(f.kept().body.is_empty() && f.kept().head.is_empty());
        // the next response starts clean
        f.start(false);
        f.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
        assert_eq!((f.kept().body, f.kept().over), (&b"ok"[..], None));
    }
}
