//! Session tests: a scripted server's bytes (built with our own frame
//! writers and HPACK encoder) fed to the session, whole and split, and the
//! client's bytes parsed back.

use super::*;
use crate::load::protocol::h2::encode::write_field;
use crate::load::protocol::h2::frame::{flag, kind};

mod flow;

/// An owned copy of an event, for comparing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Settings(u32),
    Response {
        stream: u32,
        tag: u64,
        status: u16,
        body: u64,
        wait: Duration,
        head: Vec<u8>,
        kept: Vec<u8>,
        over: Option<usize>,
        timing: Vec<u8>,
    },
    Failed(u32, u64, H2Error),
    GoAway(u32, ErrorCode),
    Unprocessed(u32, u64),
    Rtt(Duration),
}

fn own(e: Event<'_>) -> Ev {
    match e {
        Event::Settings {
            max_concurrent_streams,
            ..
        } => Ev::Settings(max_concurrent_streams),
        Event::Response(r) => Ev::Response {
            stream: r.stream,
            tag: r.tag,
            status: r.status,
            body: r.body_bytes,
            wait: r.window_wait,
            head: r.kept.head.to_vec(),
            kept: r.kept.body.to_vec(),
            over: r.kept.over,
            timing: r.timing.to_vec(),
        },
        Event::Failed { stream, tag, error } => Ev::Failed(stream, tag, error),
        Event::GoAway { last_stream, code } => Ev::GoAway(last_stream, code),
        Event::Unprocessed { stream, tag } => Ev::Unprocessed(stream, tag),
        Event::PingRtt(d) => Ev::Rtt(d),
    }
}

fn ok(stream: u32, tag: u64, status: u16, body: u64) -> Ev {
    Ev::Response {
        stream,
        tag,
        status,
        body,
        wait: Duration::ZERO,
        head: vec![],
        kept: vec![],
        over: None,
        timing: vec![],
    }
}

/// A server's side of the wire, written frame by frame.
#[derive(Default)]
struct Server(Vec<u8>);

impl Server {
    fn settings(mut self, values: &[(u16, u32)]) -> Server {
        frame::write_settings(&mut self.0, values);
        self
    }
    fn headers(mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Server {
        let mut block = Vec::new();
        for (n, v) in fields {
            write_field(&mut block, n.as_bytes(), v.as_bytes());
        }
        frame::write_headers(&mut self.0, stream, &block, end_stream, 16_384);
        self
    }
    fn data(mut self, stream: u32, data: &[u8], end_stream: bool) -> Server {
        frame::write_data(&mut self.0, stream, data, end_stream);
        self
    }
    fn raw(mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Server {
        frame::write_head(&mut self.0, payload.len(), kind, flags, stream);
        self.0.extend_from_slice(payload);
        self
    }
    fn rst(mut self, stream: u32, code: ErrorCode) -> Server {
        frame::write_rst_stream(&mut self.0, stream, code);
        self
    }
    fn goaway(mut self, last: u32, code: ErrorCode) -> Server {
        frame::write_goaway(&mut self.0, last, code, b"debug");
        self
    }
    fn window(mut self, stream: u32, inc: u32) -> Server {
        frame::write_window_update(&mut self.0, stream, inc);
        self
    }
    /// SETTINGS first, as every server must.
    fn hello() -> Server {
        Server::default().settings(&[(setting::MAX_CONCURRENT_STREAMS, 100)])
    }
}

/// A frame the client wrote, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Out {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// Takes what the client queued and splits it into frames (after the
/// preface, which must come first if `preface`).
fn written(s: &mut Session) -> Vec<Out> {
    let mut buf = Vec::new();
    s.write_into(&mut buf);
    let mut at = 0;
    if buf.starts_with(frame::PREFACE) {
        at = frame::PREFACE.len();
    }
    let mut out = Vec::new();
    while at < buf.len() {
        let head: [u8; 9] = buf[at..at + 9].try_into().unwrap();
        let h = frame::Head::read(&head);
        let end = at + 9 + h.len as usize;
        out.push(Out {
            kind: h.kind,
            flags: h.flags,
            stream: h.stream,
            payload: buf[at + 9..end].to_vec(),
        });
        at = end;
    }
    out
}

fn feed(s: &mut Session, bytes: &[u8], now: Instant) -> Result<Vec<Ev>, ProtocolError> {
    let mut evs = Vec::new();
    s.recv(bytes, now, &mut |e| evs.push(own(e)))?;
    Ok(evs)
}

/// A session past the SETTINGS exchange, its writes drained.
fn ready(cfg: Config, now: Instant) -> Session {
    let mut s = Session::new(cfg, now);
    assert_eq!(
        feed(&mut s, &Server::hello().0, now),
        Ok(vec![Ev::Settings(100)])
    );
    written(&mut s);
    s
}

fn get(i: usize) -> Vec<u8> {
    super::super::RequestHead::new("GET", "http", "127.0.0.1:1", &format!("/{i}"), [])
        .block()
        .to_vec()
}

#[test]
fn opens_with_the_preface_our_settings_and_a_connection_window() {
    let now = Instant::now();
    let mut s = Session::new(Config::default(), now);
    let mut buf = Vec::new();
    s.write_into(&mut buf);
    assert!(buf.starts_with(frame::PREFACE));
    let out = written_from(&buf);
    assert_eq!(out[0].kind, kind::SETTINGS);
    let settings: Vec<(u16, u32)> = frame::settings(&out[0].payload).collect();
    assert_eq!(
        settings,
        [
            (setting::ENABLE_PUSH, 0),
            (setting::INITIAL_WINDOW_SIZE, 16 << 20),
            (setting::MAX_FRAME_SIZE, 16_384),
            (setting::MAX_HEADER_LIST_SIZE, 65_536),
        ]
    );
    assert_eq!(out[1].kind, kind::WINDOW_UPDATE);
    assert_eq!(out[1].stream, 0);
    assert_eq!(
        u32::from_be_bytes(out[1].payload[..].try_into().unwrap()) as i64 + 65_535,
        (MAX_WINDOW >> 1) as i64
    );
    // The server's SETTINGS are applied and acknowledged.
    let server = Server::default().settings(&[
        (setting::MAX_CONCURRENT_STREAMS, 10),
        (setting::INITIAL_WINDOW_SIZE, 1000),
        (setting::MAX_FRAME_SIZE, 20_000),
        (0x99, 7), // unknown: ignored
    ]);
    let mut after = None;
    s.recv(&server.0, now + Duration::from_millis(3), &mut |e| {
        if let Event::Settings {
            max_concurrent_streams,
            after: a,
        } = e
        {
            assert_eq!(max_concurrent_streams, 10);
            after = Some(a);
        }
    })
    .unwrap();
    assert_eq!(after, Some(Duration::from_millis(3)));
    assert!(s.settings_received());
    assert_eq!(s.max_streams(), 10);
    let out = written(&mut s);
    assert_eq!(
        out,
        [Out {
            kind: kind::SETTINGS,
            flags: flag::ACK,
            stream: 0,
            payload: vec![]
        }]
    );
    // Our SETTINGS' ACK is taken silently; later SETTINGS apply again.
    let more = Server::default()
        .raw(kind::SETTINGS, flag::ACK, 0, b"")
        .settings(&[(setting::MAX_CONCURRENT_STREAMS, 3)]);
    assert_eq!(feed(&mut s, &more.0, now), Ok(vec![]));
    assert_eq!(s.max_streams(), 3);
}

fn written_from(buf: &[u8]) -> Vec<Out> {
    let mut s = Session::new(Config::default(), Instant::now());
    s.out.clear();
    s.out.extend_from_slice(buf);
    written(&mut s)
}

#[test]
fn a_server_that_does_not_start_with_settings_is_a_protocol_error() {
    let now = Instant::now();
    let mut s = Session::new(Config::default(), now);
    written(&mut s);
    let e = feed(&mut s, b"HTTP/1.1 400 Bad Request\r\n\r\n", now);
    assert_eq!(e, Err(ProtocolError::NoSettingsFirst));
    let out = written(&mut s);
    assert_eq!(out[0].kind, kind::GOAWAY);
    assert_eq!(
        &out[0].payload[4..8],
        &ErrorCode::ProtocolError.to_u32().to_be_bytes()
    );
    // it stays failed
    assert_eq!(
        feed(&mut s, &Server::hello().0, now),
        Err(ProtocolError::NoSettingsFirst)
    );
    assert_eq!(
        s.open(&get(0), None, Keep::default(), 0, now),
        Err(OpenError::GoingAway)
    );
}

#[test]
fn a_hundred_concurrent_streams_complete_out_of_order_in_any_split() {
    let now = Instant::now();
    let mut s = ready(Config::default(), now);
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(
            s.open(&get(i), None, Keep::default(), 1000 + i as u64, now)
                .unwrap(),
        );
    }
    assert_eq!(s.open_streams(), 100);
    assert_eq!(
        s.open(&get(0), None, Keep::default(), 0, now),
        Err(OpenError::Full)
    );
    assert!(!s.can_open());
    let out = written(&mut s);
    assert_eq!(out.len(), 100);
    assert!(
        out.iter()
            .all(|f| f.kind == kind::HEADERS && f.flags == flag::END_STREAM | flag::END_HEADERS)
    );
    assert_eq!(out.iter().map(|f| f.stream).collect::<Vec<_>>(), ids);

    // The server answers in reverse, heads first, then bodies interleaved.
    let mut server = Server::default();
    for (i, &id) in ids.iter().enumerate().rev() {
        let status = if i % 7 == 0 { "404" } else { "200" };
        server = server.headers(
            id,
            &[(":status", status), ("content-length", &i.to_string())],
            false,
        );
    }
    for (i, &id) in ids.iter().enumerate().rev() {
        let body = vec![b'x'; i];
        let (a, b) = body.split_at(i / 2);
        server = server.data(id, a, false);
        server = server.data(id, b, true);
    }
    let want: Vec<Ev> = ids
        .iter()
        .enumerate()
        .rev()
        .map(|(i, &id)| {
            ok(
                id,
                1000 + i as u64,
                if i % 7 == 0 { 404 } else { 200 },
                i as u64,
            )
        })
        .collect();
    // whole, and in pieces of every size from 1 to 40 bytes
    for piece in [server.0.len(), 1, 2, 3, 7, 13, 40] {
        let mut t = s.clone_for_test();
        let mut got = Vec::new();
        for chunk in server.0.chunks(piece) {
            got.extend(feed(&mut t, chunk, now).unwrap());
        }
        assert_eq!(got, want, "pieces of {piece}");
        assert_eq!(t.open_streams(), 0);
        assert!(t.can_open());
    }
}

#[test]
fn a_response_split_at_every_byte_gives_the_same_events() {
    let now = Instant::now();
    let keep = Keep {
        head: true,
        body: Some(100),
        timing: true,
        head_request: false,
        grpc: false,
    };
    let server = Server::hello()
        .headers(1, &[(":status", "100")], false)
        .headers(
            1,
            &[
                (":status", "201"),
                ("server-timing", "db;dur=2"),
                ("set-cookie", "s=1"),
            ],
            false,
        )
        .raw(kind::DATA, flag::PADDED, 1, b"\x03hel\0\0\0")
        .raw(kind::PRIORITY, 0, 1, b"\0\0\0\0\x10")
        .raw(0xee, 0, 0, b"unknown frame")
        .data(1, b"lo", false)
        .headers(1, &[("server-timing", "app;dur=1")], true);
    let want = vec![
        Ev::Settings(100),
        Ev::Response {
            stream: 1,
            tag: 9,
            status: 201,
            body: 5,
            wait: Duration::ZERO,
            head: b"HTTP/1.1 201 \r\nserver-timing: db;dur=2\r\nset-cookie: s=1\r\n\r\n".to_vec(),
            kept: b"hello".to_vec(),
            over: None,
            timing: b"db;dur=2,app;dur=1".to_vec(),
        },
    ];
    for cut in 0..=server.0.len() {
        for cut2 in [cut, (cut + 10).min(server.0.len())] {
            let mut s = Session::new(Config::default(), now);
            s.open(&get(0), None, keep, 9, now).unwrap();
            let mut got = feed(&mut s, &server.0[..cut], now).unwrap();
            got.extend(feed(&mut s, &server.0[cut..cut2], now).unwrap());
            got.extend(feed(&mut s, &server.0[cut2..], now).unwrap());
            assert_eq!(got, want, "cut at {cut}, {cut2}");
        }
    }
}

#[test]
fn goaway_reports_the_streams_above_its_last_stream_id_for_a_retry() {
    let now = Instant::now();
    let mut s = ready(Config::default(), now);
    let ids: Vec<u32> = (0..5)
        .map(|i| {
            s.open(&get(i), None, Keep::default(), i as u64, now)
                .unwrap()
        })
        .collect();
    assert_eq!(ids, [1, 3, 5, 7, 9]);
    let server = Server::default().goaway(5, ErrorCode::NoError);
    assert_eq!(
        feed(&mut s, &server.0, now),
        Ok(vec![
            Ev::GoAway(5, ErrorCode::NoError),
            Ev::Unprocessed(7, 3),
            Ev::Unprocessed(9, 4),
        ])
    );
    assert_eq!(s.goaway(), Some((5, ErrorCode::NoError)));
    assert_eq!(
        s.open(&get(9), None, Keep::default(), 0, now),
        Err(OpenError::GoingAway)
    );
    // streams up to 5 still complete
    let server = Server::default().headers(3, &[(":status", "200")], true);
    assert_eq!(feed(&mut s, &server.0, now), Ok(vec![ok(3, 1, 200, 0)]));
    // the connection closes: the rest are the caller's to count (h2_goaway)
    let mut left = Vec::new();
    s.drain_open(|id, tag| left.push((id, tag)));
    assert_eq!(left, [(1, 0), (5, 2)]);
    assert_eq!(s.open_streams(), 0);
}

#[test]
fn rst_stream_fails_one_stream_with_its_code() {
    let now = Instant::now();
    let mut s = ready(Config::default(), now);
    for i in 0..4 {
        s.open(&get(i), None, Keep::default(), i as u64, now)
            .unwrap();
    }
    let server = Server::default()
        .rst(1, ErrorCode::RefusedStream)
        .rst(3, ErrorCode::Cancel)
        .rst(5, ErrorCode::from_u32(0x99))
        .headers(7, &[(":status", "200")], true)
        .rst(7, ErrorCode::NoError); // after the response: ignored
    let got = feed(&mut s, &server.0, now).unwrap();
    assert_eq!(
        got,
        [
            Ev::Failed(1, 0, H2Error::Reset(ErrorCode::RefusedStream)),
            Ev::Failed(3, 1, H2Error::Reset(ErrorCode::Cancel)),
            Ev::Failed(5, 2, H2Error::Reset(ErrorCode::Other(0x99))),
            ok(7, 3, 200, 0),
        ]
    );
    let Ev::Failed(_, _, e) = &got[0] else {
        unreachable!()
    };
    assert_eq!(
        (e.kind(), e.to_string().as_str()),
        ("h2_reset", "stream reset by the server: REFUSED_STREAM")
    );
    // a reset of a stream never opened is a connection error
    assert_eq!(
        feed(&mut s, &Server::default().rst(99, ErrorCode::Cancel).0, now),
        Err(ProtocolError::BadFrame(
            "RST_STREAM on a stream we did not open"
        ))
    );
}

#[test]
fn ping_is_answered_and_our_ping_measures_the_round_trip() {
    let t0 = Instant::now();
    let mut s = ready(Config::default(), t0);
    let server = Server::default().raw(kind::PING, 0, 0, b"12345678");
    assert_eq!(feed(&mut s, &server.0, t0), Ok(vec![]));
    assert_eq!(
        written(&mut s),
        [Out {
            kind: kind::PING,
            flags: flag::ACK,
            stream: 0,
            payload: b"12345678".to_vec()
        }]
    );
    assert!(s.send_ping(t0));
    assert!(!s.send_ping(t0), "one at a time");
    let out = written(&mut s);
    assert_eq!((out[0].kind, out[0].flags), (kind::PING, 0));
    // an ACK with other data is not ours
    let other = Server::default().raw(kind::PING, flag::ACK, 0, b"87654321");
    assert_eq!(feed(&mut s, &other.0, t0), Ok(vec![]));
    let ack = Server::default().raw(kind::PING, flag::ACK, 0, &out[0].payload);
    let t1 = t0 + Duration::from_micros(1234);
    assert_eq!(
        feed(&mut s, &ack.0, t1),
        Ok(vec![Ev::Rtt(Duration::from_micros(1234))])
    );
    assert!(s.send_ping(t1));
}

#[test]
fn connection_errors_queue_a_goaway_with_their_code() {
    let now = Instant::now();
    let promise =
        Server::default().raw(kind::PUSH_PROMISE, flag::END_HEADERS, 1, b"\0\0\0\x02\x82");
    let bad_hpack = Server::default().raw(kind::HEADERS, flag::END_HEADERS, 1, b"\xbe");
    let even_stream = Server::default().headers(2, &[(":status", "200")], true);
    let zero_window = Server::default().window(0, 0);
    let interrupted = Server::default()
        .raw(kind::HEADERS, 0, 1, b"\x88")
        .data(1, b"x", true);
    let bad_frame_size = Server::default().settings(&[(setting::MAX_FRAME_SIZE, 100)]);
    let big_window = Server::default().window(0, MAX_WINDOW);
    let cases: Vec<(&str, Server, ProtocolError, ErrorCode)> = vec![
        (
            "push promise",
            promise,
            ProtocolError::PushPromise,
            ErrorCode::ProtocolError,
        ),
        (
            "bad hpack",
            bad_hpack,
            ProtocolError::Hpack(super::super::hpack::HpackError::BadIndex(62)),
            ErrorCode::CompressionError,
        ),
        (
            "server stream",
            even_stream,
            ProtocolError::BadFrame("HEADERS on a stream we did not open"),
            ErrorCode::ProtocolError,
        ),
        (
            "zero window",
            zero_window,
            ProtocolError::BadFrame("WINDOW_UPDATE of 0"),
            ErrorCode::ProtocolError,
        ),
        (
            "frame inside a block",
            interrupted,
            ProtocolError::BadFrame("a frame inside a header block"),
            ErrorCode::ProtocolError,
        ),
        (
            "max frame size",
            bad_frame_size,
            ProtocolError::BadFrame("MAX_FRAME_SIZE out of range"),
            ErrorCode::ProtocolError,
        ),
        (
            "window overflow",
            big_window,
            ProtocolError::FlowControl,
            ErrorCode::FlowControlError,
        ),
    ];
    for (name, server, want, code) in cases {
        let mut s = ready(Config::default(), now);
        s.open(&get(0), None, Keep::default(), 0, now).unwrap();
        written(&mut s);
        assert_eq!(feed(&mut s, &server.0, now), Err(want), "{name}");
        assert_eq!(s.failed(), Some(want));
        let out = written(&mut s);
        assert_eq!(out.len(), 1, "{name}");
        assert_eq!(out[0].kind, kind::GOAWAY, "{name}");
        assert_eq!(
            &out[0].payload[4..8],
            &code.to_u32().to_be_bytes(),
            "{name}"
        );
        assert_eq!(H2Error::Protocol(want).kind(), "protocol");
        let mut left = Vec::new();
        s.drain_open(|id, _| left.push(id));
        assert_eq!(left, [1], "{name}");
    }
}

#[test]
fn a_malformed_response_resets_its_stream_and_the_hpack_table_stays_in_step() {
    let now = Instant::now();
    let mut s = ready(Config::default(), now);
    s.open(&get(0), None, Keep::default(), 0, now).unwrap();
    s.open(&get(1), None, Keep::default(), 1, now).unwrap();
    written(&mut s);
    // stream 1: no :status, but it indexes "x-id: 42" in the table
    let mut block = vec![0x40, 4];
    block.extend_from_slice(b"x-id");
    block.push(2);
    block.extend_from_slice(b"42");
    let server = Server::default()
        .raw(kind::HEADERS, flag::END_HEADERS, 1, &block)
        // more for stream 1, now closed: decoded and ignored
        .raw(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            1,
            &[0x88, 0xbe],
        )
        .data(1, b"late", true)
        // stream 3 uses the table entry at 62
        .raw(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            3,
            &[0x88, 0xbe],
        );
    let mut keep3 = Vec::new();
    s.recv(&server.0, now, &mut |e| match e {
        Event::Failed { stream, error, .. } => {
            assert_eq!(stream, 1);
            assert_eq!(
                error,
                H2Error::Protocol(ProtocolError::Malformed("no :status"))
            );
        }
        Event::Response(r) => {
            keep3.push(r.stream);
            assert_eq!(r.status, 200);
        }
        e => panic!("{e:?}"),
    })
    .unwrap();
    assert_eq!(keep3, [3]);
    assert_eq!(s.decoder.table().get(62), Some((&b"x-id"[..], &b"42"[..])));
    let out = written(&mut s);
    assert_eq!((out[0].kind, out[0].stream), (kind::RST_STREAM, 1));
}

#[test]
fn a_warm_connection_reuses_its_stream_slots() {
    let now = Instant::now();
    let mut s = ready(Config::default(), now);
    let keep = Keep {
        head: true,
        body: Some(64),
        timing: true,
        head_request: false,
        grpc: false,
    };
    for round in 0..50u32 {
        let mut server = Server::default();
        for i in 0..10 {
            let id = s.open(&get(i), Some(b"body"), keep, i as u64, now).unwrap();
            server = server
                .headers(
                    id,
                    &[(":status", "200"), ("server-timing", "a;dur=1")],
                    false,
                )
                .data(id, b"ok", true);
        }
        written(&mut s);
        let got = feed(&mut s, &server.0, now).unwrap();
        assert_eq!(got.len(), 10, "round {round}");
    }
    assert_eq!(s.streams.len(), 10, "slots are reused, not added");
    assert_eq!(s.next_id, 1 + 2 * 500);
}

impl Session {
    /// A copy of a session's state for replaying one script several ways.
    fn clone_for_test(&self) -> Session {
        let mut s = Session::new(self.cfg, Instant::now());
        s.out.clear();
        s.settings_seen = self.settings_seen;
        s.max_streams = self.max_streams;
        s.next_id = 1;
        let now = Instant::now();
        for slot in &self.streams {
            if slot.id != 0 {
                let id = s.open(b"", None, slot.keep, slot.tag, now).unwrap();
                assert_eq!(id, slot.id);
            }
        }
        s.out.clear();
        s
    }
}
