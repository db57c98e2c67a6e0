//! HTTP/1.1 as a protocol session: one request at a time on a keep-alive
//! connection. The request's wire form is the rendered request itself
//! (pre-rendered per endpoint, or a template rendered into the connection's
//! buffer, see [`crate::request`]), so starting one writes nothing; the
//! response is framed by [`framing`] (httparse for the head, our own body
//! framing), bytes in, a completed response out.

pub mod framing;

use super::{Event, Started, StreamId, Wire};
use crate::capture::Kept;
use framing::{FrameError, Framed, Framer};

/// An HTTP/1.1 session: the framer of the response in flight.
#[derive(Debug, Default)]
pub struct H1 {
    framer: Framer,
}

impl H1 {
    pub fn new() -> H1 {
        H1 {
            framer: Framer::new(),
        }
    }

    #[inline]
    pub fn keep(&mut self, head: bool, body: Option<usize>) {
        self.framer.keep(head, body);
    }

    #[inline]
    pub fn collect_timing(&mut self, on: bool) {
        self.framer.collect_timing(on);
    }

    /// A request goes out: the rendered bytes as they are.
    #[inline]
    pub fn start(&mut self, head_request: bool, _out: &mut Vec<u8>) -> Started {
        self.framer.start(head_request);
        Started {
            stream: StreamId::H1,
            wire: Wire::Rendered,
        }
    }

    /// Frames bytes of the response. Bytes after a complete response
    /// answer no request: the stream is out of step, so the response comes
    /// with `reuse: false` and the rest is not used.
    #[inline]
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, Event), FrameError> {
        match self.framer.feed(input)? {
            (used, Framed::Partial) => Ok((used, Event::Partial)),
            (used, Framed::Complete(resp)) => Ok((
                used,
                Event::Response(super::Completed {
                    stream: StreamId::H1,
                    status: resp.status,
                    reuse: resp.keep_alive && used == input.len(),
                }),
            )),
        }
    }

    /// The peer closed: a close-delimited body completes; anything else
    /// (nothing of the response yet included) is [`FrameError::UnexpectedEof`].
    pub fn closed(&mut self) -> Result<Event, FrameError> {
        if self.framer.is_idle() {
            return Err(FrameError::UnexpectedEof);
        }
        let resp = self.framer.eof()?;
        Ok(Event::Response(super::Completed {
            stream: StreamId::H1,
            status: resp.status,
            reuse: false,
        }))
    }

    #[inline]
    pub fn is_idle(&self) -> bool {
        self.framer.is_idle()
    }

    #[inline]
    pub fn kept(&self, _stream: StreamId) -> Kept<'_> {
        self.framer.kept()
    }

    #[inline]
    pub fn timing(&self, _stream: StreamId) -> &[u8] {
        self.framer.timing()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Completed, Session};
    use super::*;

    /// Feeds `pieces` in order the way a connection does (stopping at the
    /// first event other than `Partial`); returns that event, or the
    /// close's when `eof`.
    fn run(s: &mut Session, pieces: &[&[u8]], eof: bool) -> Result<Event, String> {
        for p in pieces {
            let (used, ev) = s.feed(p).map_err(|e| e.to_string())?;
            if ev != Event::Partial {
                return Ok(ev);
            }
            assert_eq!(used, p.len(), "a partial feed uses every byte");
        }
        if eof {
            return s.closed().map_err(|e| e.to_string());
        }
        Ok(Event::Partial)
    }

    fn response(status: u16, reuse: bool) -> Event {
        Event::Response(Completed {
            stream: StreamId::H1,
            status,
            reuse,
        })
    }

    /// A response's text, whether the peer closes after it, and the
    /// (status, reuse) it completes with or the error it fails with.
    type Case = (&'static str, bool, Result<(u16, bool), &'static str>);

    const CASES: &[Case] = &[
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer-Timing: db;dur=2\r\n\r\nabc",
            false,
            Ok((200, true)),
        ),
        (
            "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nT: 1\r\n\r\n",
            false,
            Ok((404, true)),
        ),
        (
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            false,
            Ok((201, true)),
        ),
        (
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            false,
            Ok((200, false)),
        ),
        (
            "HTTP/1.1 200 OK\r\n\r\nuntil the close",
            true,
            Ok((200, false)),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
            true,
            Err("connection closed before the response was complete"),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
            false,
            Ok((200, false)),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            false,
            Err("invalid Content-Length"),
        ),
    ];

    #[test]
    fn a_response_split_at_every_boundary_gives_the_same_event() {
        for &(text, eof, want) in CASES {
            let want = want
                .map(|(status, reuse)| response(status, reuse))
                .map_err(String::from);
            let bytes = text.as_bytes();
            let mut s = Session::h1();
            s.collect_timing(true);
            s.keep(true, Some(64));
            assert_eq!(s.start(false, &mut Vec::new()).wire, Wire::Rendered);
            assert_eq!(run(&mut s, &[bytes], eof), want, "{text:?} in one piece");
            // Bytes after a response in the same read make it unreusable; in a
            // later read they are the idle connection's (see `Conn::drain`).
            let extra = text.find("EXTRA");
            for cut in 0..=extra.map_or(bytes.len(), |at| at - 1) {
                let mut s = Session::h1();
                s.collect_timing(true);
                s.start(false, &mut Vec::new());
                let got = run(&mut s, &[&bytes[..cut], &bytes[cut..]], eof);
                assert_eq!(got, want, "{text:?} cut at {cut}");
            }
            for size in [1, 2, 3, 7].into_iter().filter(|_| extra.is_none()) {
                let mut s = Session::h1();
                s.start(false, &mut Vec::new());
                let pieces: Vec<&[u8]> = bytes.chunks(size).collect();
                assert_eq!(
                    run(&mut s, &pieces, eof),
                    want,
                    "{text:?} in pieces of {size}"
                );
            }
        }
    }

    #[test]
    fn a_completed_response_leaves_its_timing_and_kept_bytes() {
        let mut s = Session::h1();
        s.collect_timing(true);
        s.keep(true, Some(16));
        s.start(false, &mut Vec::new());
        let text = b"HTTP/1.1 200 OK\r\nServer-Timing: db;dur=2\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(s.feed(text), Ok((text.len(), response(200, true))));
        assert_eq!(s.timing(StreamId::H1), b"db;dur=2");
        let kept = s.kept(StreamId::H1);
        assert_eq!(kept.body, b"abc");
        assert!(kept.head.starts_with(b"HTTP/1.1 200 OK"));
        // the next request starts clean, on the same connection
        s.start(false, &mut Vec::new());
        assert!(s.is_idle());
        assert!(s.timing(StreamId::H1).is_empty());
        assert!(!s.wants_write());
    }

    #[test]
    fn a_head_request_has_no_body_and_a_close_before_any_byte_is_no_response() {
        let mut s = Session::h1();
        s.start(true, &mut Vec::new());
        let text = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        assert_eq!(s.feed(text), Ok((text.len(), response(200, true))));
        s.start(false, &mut Vec::new());
        assert_eq!(
            s.closed(),
            Err(super::super::ProtocolError::H1(FrameError::UnexpectedEof))
        );
    }
}
