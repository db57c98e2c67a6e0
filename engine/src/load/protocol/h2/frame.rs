//! HTTP/2 frames (RFC 9113 §4 and §6): the 9-byte frame header, each frame
//! type's payload checked and parsed, and the writers for the frames a
//! client sends.
//!
//! [`parse`] looks at one frame at the start of a buffer. An incomplete
//! frame is [`Parsed::Partial`] — the normal state of a read that ended
//! mid-frame, not an error (httparse's habit); a frame longer than our
//! SETTINGS_MAX_FRAME_SIZE is refused from its header alone, before its
//! payload arrives. Payloads are borrowed from the buffer, never copied.
//! PRIORITY is parsed and ignored by the session; unknown frame types are
//! [`Frame::Unknown`] and ignored (§5.5).

use super::error::{ErrorCode, ProtocolError};

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 9;
/// The client connection preface (§3.4), sent before our SETTINGS.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The smallest SETTINGS_MAX_FRAME_SIZE, which every peer accepts.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
/// Largest window (and window increment), 2^31-1.
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS identifiers (§6.5.2).
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// One parsed frame; payloads borrow the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    Data {
        stream: u32,
        /// The data without padding.
        data: &'a [u8],
        end_stream: bool,
        /// The whole payload, padding included: what flow control counts.
        flow_len: u32,
    },
    Headers {
        stream: u32,
        /// The header block fragment (padding and priority removed).
        block: &'a [u8],
        end_stream: bool,
        end_headers: bool,
    },
    Priority {
        stream: u32,
    },
    RstStream {
        stream: u32,
        code: ErrorCode,
    },
    Settings {
        ack: bool,
        /// Six bytes per setting; read with [`settings`].
        payload: &'a [u8],
    },
    PushPromise {
        stream: u32,
    },
    Ping {
        ack: bool,
        data: [u8; 8],
    },
    GoAway {
        last_stream: u32,
        code: ErrorCode,
        debug: &'a [u8],
    },
    WindowUpdate {
        stream: u32,
        /// Zero is a protocol error the session decides about (its scope
        /// depends on the stream).
        increment: u32,
    },
    Continuation {
        stream: u32,
        block: &'a [u8],
        end_headers: bool,
    },
    /// A frame type this side does not know: ignored (§5.5).
    Unknown {
        kind: u8,
    },
}

/// What the start of a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Not a whole frame yet; nothing consumed.
    Partial,
    /// A frame and the bytes it took.
    Frame(Frame<'a>, usize),
}

/// The frame header: payload length, type, flags, stream id (the reserved
/// bit dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    pub fn read(b: &[u8; HEADER_LEN]) -> Head {
        Head {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & MAX_WINDOW,
        }
    }
}

/// Parses the frame at the start of `buf`; `max_frame` is the
/// SETTINGS_MAX_FRAME_SIZE we advertised.
pub fn parse(buf: &[u8], max_frame: u32) -> Result<Parsed<'_>, ProtocolError> {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(Parsed::Partial);
    };
    let h = Head::read(head);
    if h.len > max_frame {
        return Err(ProtocolError::FrameSize(
            "longer than SETTINGS_MAX_FRAME_SIZE",
        ));
    }
    let total = HEADER_LEN + h.len as usize;
    if buf.len() < total {
        return Ok(Parsed::Partial);
    }
    let p = &buf[HEADER_LEN..total];
    Ok(Parsed::Frame(payload(h, p)?, total))
}

fn payload(h: Head, p: &[u8]) -> Result<Frame<'_>, ProtocolError> {
    use ProtocolError::{BadFrame, FrameSize};
    let on_stream = |what| {
        if h.stream == 0 {
            Err(BadFrame(what))
        } else {
            Ok(())
        }
    };
    let on_conn = |what| {
        if h.stream != 0 {
            Err(BadFrame(what))
        } else {
            Ok(())
        }
    };
    Ok(match h.kind {
        kind::DATA => {
            on_stream("DATA on stream 0")?;
            Frame::Data {
                stream: h.stream,
                data: unpad(h.flags, p)?,
                end_stream: h.flags & flag::END_STREAM != 0,
                flow_len: h.len,
            }
        }
        kind::HEADERS => {
            on_stream("HEADERS on stream 0")?;
            let mut block = unpad(h.flags, p)?;
            if h.flags & flag::PRIORITY != 0 {
                block = block
                    .get(5..)
                    .ok_or(FrameSize("HEADERS too short for its priority"))?;
            }
            Frame::Headers {
                stream: h.stream,
                block,
                end_stream: h.flags & flag::END_STREAM != 0,
                end_headers: h.flags & flag::END_HEADERS != 0,
            }
        }
        kind::PRIORITY => {
            on_stream("PRIORITY on stream 0")?;
            if p.len() != 5 {
                return Err(FrameSize("PRIORITY is not 5 bytes"));
            }
            Frame::Priority { stream: h.stream }
        }
        kind::RST_STREAM => {
            on_stream("RST_STREAM on stream 0")?;
            let code: [u8; 4] = p
                .try_into()
                .map_err(|_| FrameSize("RST_STREAM is not 4 bytes"))?;
            Frame::RstStream {
                stream: h.stream,
                code: ErrorCode::from_u32(u32::from_be_bytes(code)),
            }
        }
        kind::SETTINGS => {
            on_conn("SETTINGS on a stream")?;
            let ack = h.flags & flag::ACK != 0;
            if ack && !p.is_empty() {
                return Err(FrameSize("SETTINGS ACK with a payload"));
            }
            if !p.len().is_multiple_of(6) {
                return Err(FrameSize("SETTINGS not a multiple of 6 bytes"));
            }
            Frame::Settings { ack, payload: p }
        }
        kind::PUSH_PROMISE => Frame::PushPromise { stream: h.stream },
        kind::PING => {
            on_conn("PING on a stream")?;
            let data: [u8; 8] = p.try_into().map_err(|_| FrameSize("PING is not 8 bytes"))?;
            Frame::Ping {
                ack: h.flags & flag::ACK != 0,
                data,
            }
        }
        kind::GOAWAY => {
            on_conn("GOAWAY on a stream")?;
            if p.len() < 8 {
                return Err(FrameSize("GOAWAY shorter than 8 bytes"));
            }
            Frame::GoAway {
                last_stream: u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & MAX_WINDOW,
                code: ErrorCode::from_u32(u32::from_be_bytes([p[4], p[5], p[6], p[7]])),
                debug: &p[8..],
            }
        }
        kind::WINDOW_UPDATE => {
            let inc: [u8; 4] = p
                .try_into()
                .map_err(|_| FrameSize("WINDOW_UPDATE is not 4 bytes"))?;
            Frame::WindowUpdate {
                stream: h.stream,
                increment: u32::from_be_bytes(inc) & MAX_WINDOW,
            }
        }
        kind::CONTINUATION => {
            on_stream("CONTINUATION on stream 0")?;
            Frame::Continuation {
                stream: h.stream,
                block: p,
                end_headers: h.flags & flag::END_HEADERS != 0,
            }
        }
        k => Frame::Unknown { kind: k },
    })
}

/// Strips the padding of a PADDED frame (§6.1): a length byte, then the
/// padding at the end, which must fit.
fn unpad(flags: u8, p: &[u8]) -> Result<&[u8], ProtocolError> {
    if flags & flag::PADDED == 0 {
        return Ok(p);
    }
    let (&pad, rest) = p.split_first().ok_or(ProtocolError::FrameSize(
        "PADDED frame without a pad length",
    ))?;
    let keep = rest
        .len()
        .checked_sub(pad as usize)
        .ok_or(ProtocolError::BadFrame("padding longer than the payload"))?;
    Ok(&rest[..keep])
}

/// The settings in a SETTINGS payload, in order.
pub fn settings(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    payload.chunks_exact(6).map(|s| {
        (
            u16::from_be_bytes([s[0], s[1]]),
            u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
        )
    })
}

/// Writes a frame header.
pub fn write_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len < 1 << 24);
    let l = (len as u32).to_be_bytes();
    out.extend_from_slice(&[l[1], l[2], l[3], kind, flags]);
    out.extend_from_slice(&(stream & MAX_WINDOW).to_be_bytes());
}

pub fn write_settings(out: &mut Vec<u8>, values: &[(u16, u32)]) {
    write_head(out, values.len() * 6, kind::SETTINGS, 0, 0);
    for &(id, v) in values {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&v.to_be_bytes());
    }
}

pub fn write_settings_ack(out: &mut Vec<u8>) {
    write_head(out, 0, kind::SETTINGS, flag::ACK, 0);
}

pub fn write_ping(out: &mut Vec<u8>, ack: bool, data: [u8; 8]) {
    write_head(out, 8, kind::PING, if ack { flag::ACK } else { 0 }, 0);
    out.extend_from_slice(&data);
}

pub fn write_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    write_head(out, 4, kind::WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&(increment & MAX_WINDOW).to_be_bytes());
}

pub fn write_rst_stream(out: &mut Vec<u8>, stream: u32, code: ErrorCode) {
    write_head(out, 4, kind::RST_STREAM, 0, stream);
    out.extend_from_slice(&code.to_u32().to_be_bytes());
}

pub fn write_goaway(out: &mut Vec<u8>, last_stream: u32, code: ErrorCode, debug: &[u8]) {
    write_head(out, 8 + debug.len(), kind::GOAWAY, 0, 0);
    out.extend_from_slice(&(last_stream & MAX_WINDOW).to_be_bytes());
    out.extend_from_slice(&code.to_u32().to_be_bytes());
    out.extend_from_slice(debug);
}

/// Writes a header block as HEADERS and, past `max_frame` bytes, as
/// CONTINUATION frames.
pub fn write_headers(
    out: &mut Vec<u8>,
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame: u32,
) {
    let max = max_frame.max(1) as usize;
    let mut pieces = block.chunks(max);
    let first = pieces.next().unwrap_or(&[]);
    let only = block.len() <= max;
    let mut flags = if end_stream { flag::END_STREAM } else { 0 };
    if only {
        flags |= flag::END_HEADERS;
    }
    write_head(out, first.len(), kind::HEADERS, flags, stream);
    out.extend_from_slice(first);
    let mut rest = pieces.peekable();
    while let Some(piece) = rest.next() {
        let last = rest.peek().is_none();
        let flags = if last { flag::END_HEADERS } else { 0 };
        write_head(out, piece.len(), kind::CONTINUATION, flags, stream);
        out.extend_from_slice(piece);
    }
}

pub fn write_data(out: &mut Vec<u8>, stream: u32, data: &[u8], end_stream: bool) {
    let flags = if end_stream { flag::END_STREAM } else { 0 };
    write_head(out, data.len(), kind::DATA, flags, stream);
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        write_head(&mut v, payload.len(), kind, flags, stream);
        v.extend_from_slice(payload);
        v
    }

    type Case = (&'static str, Vec<u8>, Result<Frame<'static>, ProtocolError>);

    fn cases() -> Vec<Case> {
        use ProtocolError::{BadFrame, FrameSize};
        vec![
            (
                "data",
                frame(0, 1, 1, b"hello"),
                Ok(Frame::Data {
                    stream: 1,
                    data: b"hello",
                    end_stream: true,
                    flow_len: 5,
                }),
            ),
            (
                "data padded",
                frame(0, 0x8, 3, b"\x02hi\0\0"),
                Ok(Frame::Data {
                    stream: 3,
                    data: b"hi",
                    end_stream: false,
                    flow_len: 5,
                }),
            ),
            (
                "data all padding",
                frame(0, 0x8, 3, b"\x02\0\0"),
                Ok(Frame::Data {
                    stream: 3,
                    data: b"",
                    end_stream: false,
                    flow_len: 3,
                }),
            ),
            (
                "data pad too long",
                frame(0, 0x8, 3, b"\x05hi"),
                Err(BadFrame("padding longer than the payload")),
            ),
            (
                "data pad missing",
                frame(0, 0x8, 3, b""),
                Err(FrameSize("PADDED frame without a pad length")),
            ),
            (
                "data on 0",
                frame(0, 0, 0, b"x"),
                Err(BadFrame("DATA on stream 0")),
            ),
            (
                "reserved bit dropped",
                {
                    let mut f = frame(0, 0, 1, b"");
                    f[5] |= 0x80;
                    f
                },
                Ok(Frame::Data {
                    stream: 1,
                    data: b"",
                    end_stream: false,
                    flow_len: 0,
                }),
            ),
            (
                "headers",
                frame(1, 0x5, 1, b"\x88"),
                Ok(Frame::Headers {
                    stream: 1,
                    block: b"\x88",
                    end_stream: true,
                    end_headers: true,
                }),
            ),
            (
                "headers padded priority",
                frame(1, 0x28, 5, b"\x01\x80\0\0\x03\x10\x88\x89\0"),
                Ok(Frame::Headers {
                    stream: 5,
                    block: b"\x88\x89",
                    end_stream: false,
                    end_headers: false,
                }),
            ),
            (
                "headers priority short",
                frame(1, 0x20, 5, b"\0\0\0"),
                Err(FrameSize("HEADERS too short for its priority")),
            ),
            (
                "priority",
                frame(2, 0, 7, b"\0\0\0\x01\x10"),
                Ok(Frame::Priority { stream: 7 }),
            ),
            (
                "priority bad len",
                frame(2, 0, 7, b"\0\0\0\x01"),
                Err(FrameSize("PRIORITY is not 5 bytes")),
            ),
            (
                "rst",
                frame(3, 0, 9, b"\0\0\0\x07"),
                Ok(Frame::RstStream {
                    stream: 9,
                    code: ErrorCode::RefusedStream,
                }),
            ),
            (
                "rst bad len",
                frame(3, 0, 9, b"\0\0\x07"),
                Err(FrameSize("RST_STREAM is not 4 bytes")),
            ),
            (
                "rst on 0",
                frame(3, 0, 0, b"\0\0\0\x07"),
                Err(BadFrame("RST_STREAM on stream 0")),
            ),
            (
                "settings",
                frame(4, 0, 0, b"\0\x03\0\0\0\x64"),
                Ok(Frame::Settings {
                    ack: false,
                    payload: b"\0\x03\0\0\0\x64",
                }),
            ),
            (
                "settings ack",
                frame(4, 1, 0, b""),
                Ok(Frame::Settings {
                    ack: true,
                    payload: b"",
                }),
            ),
            (
                "settings ack payload",
                frame(4, 1, 0, b"\0\x03\0\0\0\x64"),
                Err(FrameSize("SETTINGS ACK with a payload")),
            ),
            (
                "settings odd",
                frame(4, 0, 0, b"\0\x03\0\0\0"),
                Err(FrameSize("SETTINGS not a multiple of 6 bytes")),
            ),
            (
                "settings on stream",
                frame(4, 0, 1, b""),
                Err(BadFrame("SETTINGS on a stream")),
            ),
            (
                "push promise",
                frame(5, 4, 1, b"\0\0\0\x02\x82"),
                Ok(Frame::PushPromise { stream: 1 }),
            ),
            (
                "ping",
                frame(6, 0, 0, b"12345678"),
                Ok(Frame::Ping {
                    ack: false,
                    data: *b"12345678",
                }),
            ),
            (
                "ping ack",
                frame(6, 1, 0, b"12345678"),
                Ok(Frame::Ping {
                    ack: true,
                    data: *b"12345678",
                }),
            ),
            (
                "ping short",
                frame(6, 0, 0, b"1234567"),
                Err(FrameSize("PING is not 8 bytes")),
            ),
            (
                "ping on stream",
                frame(6, 0, 3, b"12345678"),
                Err(BadFrame("PING on a stream")),
            ),
            (
                "goaway",
                frame(7, 0, 0, b"\0\0\0\x05\0\0\0\x0bcalm"),
                Ok(Frame::GoAway {
                    last_stream: 5,
                    code: ErrorCode::EnhanceYourCalm,
                    debug: b"calm",
                }),
            ),
            (
                "goaway short",
                frame(7, 0, 0, b"\0\0\0\x05\0\0"),
                Err(FrameSize("GOAWAY shorter than 8 bytes")),
            ),
            (
                "window update",
                frame(8, 0, 3, b"\x80\0\x10\0"),
                Ok(Frame::WindowUpdate {
                    stream: 3,
                    increment: 4096,
                }),
            ),
            (
                "window update zero",
                frame(8, 0, 0, b"\0\0\0\0"),
                Ok(Frame::WindowUpdate {
                    stream: 0,
                    increment: 0,
                }),
            ),
            (
                "window update long",
                frame(8, 0, 0, b"\0\0\0\0\0"),
                Err(FrameSize("WINDOW_UPDATE is not 4 bytes")),
            ),
            (
                "continuation",
                frame(9, 4, 1, b"\x89"),
                Ok(Frame::Continuation {
                    stream: 1,
                    block: b"\x89",
                    end_headers: true,
                }),
            ),
            (
                "continuation on 0",
                frame(9, 4, 0, b"\x89"),
                Err(BadFrame("CONTINUATION on stream 0")),
            ),
            (
                "unknown",
                frame(0xfa, 0xff, 9, b"whatever"),
                Ok(Frame::Unknown { kind: 0xfa }),
            ),
        ]
    }

    #[test]
    fn parses_every_case_whole_and_partial_at_every_byte() {
        for (name, wire, want) in cases() {
            // whole, with bytes of a next frame after it
            let mut more = wire.clone();
            more.extend_from_slice(b"\0\0");
            let got = parse(&more, DEFAULT_MAX_FRAME);
            match (&got, &want) {
                (Ok(Parsed::Frame(f, n)), Ok(w)) => {
                    assert_eq!(f, w, "{name}");
                    assert_eq!(*n, wire.len(), "{name}: consumed");
                }
                (Err(e), Err(w)) => assert_eq!(e, w, "{name}"),
                _ => panic!("{name}: got {got:?}, want {want:?}"),
            }
            // every shorter prefix is Partial, never an error or a frame
            for cut in 0..wire.len() {
                assert_eq!(
                    parse(&wire[..cut], DEFAULT_MAX_FRAME),
                    Ok(Parsed::Partial),
                    "{name} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn refuses_an_oversized_frame_from_its_header_alone() {
        let head = {
            let mut v = Vec::new();
            write_head(&mut v, 16 * 1024 * 1024 - 1, kind::HEADERS, 0, 1);
            v
        };
        assert_eq!(
            parse(&head, DEFAULT_MAX_FRAME),
            Err(ProtocolError::FrameSize(
                "longer than SETTINGS_MAX_FRAME_SIZE"
            ))
        );
        let ok = frame(0, 0, 1, &[0; 16_384]);
        assert!(matches!(
            parse(&ok, DEFAULT_MAX_FRAME),
            Ok(Parsed::Frame(_, 16_393))
        ));
    }

    #[test]
    fn writers_round_trip_through_the_parser() {
        let mut out = Vec::new();
        write_settings(
            &mut out,
            &[
                (setting::ENABLE_PUSH, 0),
                (setting::INITIAL_WINDOW_SIZE, 1 << 20),
            ],
        );
        write_settings_ack(&mut out);
        write_ping(&mut out, true, *b"abcdefgh");
        write_window_update(&mut out, 0, 1 << 30);
        write_rst_stream(&mut out, 3, ErrorCode::Cancel);
        write_goaway(&mut out, 7, ErrorCode::NoError, b"bye");
        write_data(&mut out, 5, b"body", true);
        let mut frames = Vec::new();
        let mut at = 0;
        while let Ok(Parsed::Frame(f, n)) = parse(&out[at..], DEFAULT_MAX_FRAME) {
            frames.push(f);
            at += n;
        }
        assert_eq!(at, out.len());
        let Frame::Settings {
            payload,
            ack: false,
        } = frames[0]
        else {
            panic!("{:?}", frames[0])
        };
        assert_eq!(
            settings(payload).collect::<Vec<_>>(),
            [(2, 0), (4, 1 << 20)]
        );
        assert_eq!(
            frames[1],
            Frame::Settings {
                ack: true,
                payload: b""
            }
        );
        assert_eq!(
            frames[2],
            Frame::Ping {
                ack: true,
                data: *b"abcdefgh"
            }
        );
        assert_eq!(
            frames[3],
            Frame::WindowUpdate {
                stream: 0,
                increment: 1 << 30
            }
        );
        assert_eq!(
            frames[4],
            Frame::RstStream {
                stream: 3,
                code: ErrorCode::Cancel
            }
        );
        assert_eq!(
            frames[5],
            Frame::GoAway {
                last_stream: 7,
                code: ErrorCode::NoError,
                debug: b"bye"
            }
        );
        assert_eq!(
            frames[6],
            Frame::Data {
                stream: 5,
                data: b"body",
                end_stream: true,
                flow_len: 4
            }
        );
    }

    #[test]
    fn a_long_header_block_is_split_into_continuations() {
        let block: Vec<u8> = (0..40u8).collect();
        let mut out = Vec::new();
        write_headers(&mut out, 1, &block, true, 16);
        let mut at = 0;
        let mut got = Vec::new();
        let mut kinds = Vec::new();
        while let Ok(Parsed::Frame(f, n)) = parse(&out[at..], 16) {
            at += n;
            match f {
                Frame::Headers {
                    block,
                    end_stream,
                    end_headers,
                    ..
                } => {
                    assert!(end_stream && !end_headers);
                    kinds.push("H");
                    got.extend_from_slice(block);
                }
                Frame::Continuation {
                    block, end_headers, ..
                } => {
                    kinds.push(if end_headers { "C." } else { "C" });
                    got.extend_from_slice(block);
                }
                f => panic!("{f:?}"),
            }
        }
        assert_eq!(kinds, ["H", "C", "C."]);
        assert_eq!(got, block);
    }
}
