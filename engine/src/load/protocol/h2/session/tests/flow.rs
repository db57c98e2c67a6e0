//! Session tests of flow control both ways and of the bounds on what a
//! server can make us hold (header blocks, CONTINUATION floods, header
//! lists).

use super::*;

/// Bytes fed before the session refused, and its buffers' capacity then.
fn flood(s: &mut Session, stream: impl Iterator<Item = Vec<u8>>) -> (ProtocolError, usize) {
    let now = Instant::now();
    let mut fed = 0;
    for chunk in stream {
        fed += chunk.len();
        if let Err(e) = feed(s, &chunk, now) {
            return (e, fed);
        }
        assert!(fed < 64 << 20, "never refused");
    }
    panic!("the flood ended without an error")
}

#[test]
fn a_body_larger_than_the_windows_waits_for_window_updates_and_reports_the_wait() {
    let t0 = Instant::now();
    let mut s = Session::new(Config::default(), t0);
    // stream window 1 MiB, but the connection's stays at 65,535
    let hello = Server::default().settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 20)]);
    feed(&mut s, &hello.0, t0).unwrap();
    written(&mut s);
    let body = vec![7u8; 100_000];
    let id = s
        .open(&get(0), Some(&body), Keep::default(), 5, t0)
        .unwrap();
    let out = written(&mut s);
    assert_eq!(out[0].kind, kind::HEADERS);
    assert_eq!(
        out[0].flags,
        flag::END_HEADERS,
        "no END_STREAM: a body follows"
    );
    let sent: usize = out[1..].iter().map(|f| f.payload.len()).sum();
    assert_eq!(sent, 65_535);
    assert!(
        out[1..]
            .iter()
            .all(|f| f.kind == kind::DATA && f.flags == 0 && f.payload.len() <= 16_384)
    );
    // 10 ms later the server opens the connection window by 20,000
    let t1 = t0 + Duration::from_millis(10);
    feed(&mut s, &Server::default().window(0, 20_000).0, t1).unwrap();
    let out = written(&mut s);
    assert_eq!(out.iter().map(|f| f.payload.len()).sum::<usize>(), 20_000);
    assert!(out.iter().all(|f| f.flags == 0));
    // then a stream WINDOW_UPDATE alone does not help (the connection's is 0)
    let t2 = t0 + Duration::from_millis(25);
    feed(&mut s, &Server::default().window(id, 1_000_000).0, t2).unwrap();
    assert!(written(&mut s).is_empty());
    // the rest goes when the connection window opens again, END_STREAM last
    let t3 = t0 + Duration::from_millis(40);
    feed(&mut s, &Server::default().window(0, 1 << 20).0, t3).unwrap();
    let out = written(&mut s);
    assert_eq!(
        out.iter().map(|f| f.payload.len()).sum::<usize>(),
        100_000 - 85_535
    );
    assert_eq!(out.last().unwrap().flags, flag::END_STREAM);
    let got = feed(
        &mut s,
        &Server::default().headers(id, &[(":status", "200")], true).0,
        t3,
    )
    .unwrap();
    let Ev::Response { wait, .. } = &got[0] else {
        panic!("{got:?}")
    };
    // waited from t0 to t1, and from t1 to t3
    assert_eq!(*wait, Duration::from_millis(40));
}

#[test]
fn a_smaller_initial_window_from_settings_shrinks_open_streams_windows() {
    let t0 = Instant::now();
    let body = vec![1u8; 3000];
    // The server lowers the initial window to 1000 before the stream opens.
    let mut s2 = ready(Config::default(), t0);
    let lower = Server::default().settings(&[(setting::INITIAL_WINDOW_SIZE, 1000)]);
    feed(&mut s2, &lower.0, t0).unwrap();
    written(&mut s2);
    s2.open(&get(0), Some(&body), Keep::default(), 0, t0)
        .unwrap();
    let out = written(&mut s2);
    assert_eq!(
        out.iter()
            .filter(|f| f.kind == kind::DATA)
            .map(|f| f.payload.len())
            .sum::<usize>(),
        1000
    );
    // raising it again by 5000 lets the rest go
    let raise = Server::default().settings(&[(setting::INITIAL_WINDOW_SIZE, 6000)]);
    feed(&mut s2, &raise.0, t0).unwrap();
    let out = written(&mut s2);
    let data: Vec<&Out> = out.iter().filter(|f| f.kind == kind::DATA).collect();
    assert_eq!(data.iter().map(|f| f.payload.len()).sum::<usize>(), 2000);
    assert_eq!(data.last().unwrap().flags, flag::END_STREAM);
}

#[test]
fn receive_windows_are_refilled_and_enforced() {
    let now = Instant::now();
    let cfg = Config {
        stream_window: 1000,
        ..Config::default()
    };
    let mut s = ready(cfg, now);
    s.open(&get(0), None, Keep::default(), 0, now).unwrap();
    written(&mut s);
    let server = Server::default()
        .headers(1, &[(":status", "200")], false)
        .data(1, &[0; 400], false)
        .data(1, &[0; 400], false);
    feed(&mut s, &server.0, now).unwrap();
    // past half the window (500): the 800 bytes are given back
    let out = written(&mut s);
    assert_eq!(
        out,
        [Out {
            kind: kind::WINDOW_UPDATE,
            flags: 0,
            stream: 1,
            payload: 800u32.to_be_bytes().to_vec()
        }]
    );
    // 1000 more fit; 1001 do not: the stream is reset, the connection lives
    let over = Server::default().data(1, &[0; 1001], false);
    assert_eq!(
        feed(&mut s, &over.0, now),
        Ok(vec![Ev::Failed(
            1,
            0,
            H2Error::Protocol(ProtocolError::FlowControl)
        )])
    );
    let out = written(&mut s);
    assert_eq!((out[0].kind, out[0].stream), (kind::RST_STREAM, 1));
    assert_eq!(
        out[0].payload,
        ErrorCode::FlowControlError.to_u32().to_be_bytes()
    );
    // DATA for the closed stream still counts against the connection window
    let late = Server::default().data(1, &[0; 100], true);
    assert_eq!(feed(&mut s, &late.0, now), Ok(vec![]));
}

#[test]
fn a_continuation_flood_ends_in_a_protocol_error_with_bounded_memory() {
    let now = Instant::now();
    // endless 1-byte CONTINUATIONs
    let mut s = ready(Config::default(), now);
    s.open(&get(0), None, Keep::default(), 0, now).unwrap();
    let start = Server::default().raw(kind::HEADERS, 0, 1, b"\x88").0;
    let frames = std::iter::once(start).chain(std::iter::repeat_with(|| {
        Server::default().raw(kind::CONTINUATION, 0, 1, b"\x88").0
    }));
    let (e, fed) = flood(&mut s, frames);
    assert_eq!(e, ProtocolError::HeaderBlockTooLarge);
    assert!(fed <= 10 * (MAX_CONTINUATIONS as usize + 2), "{fed}");
    let out = written(&mut s);
    assert_eq!(out.last().unwrap().kind, kind::GOAWAY);
    assert_eq!(
        &out.last().unwrap().payload[4..8],
        &ErrorCode::EnhanceYourCalm.to_u32().to_be_bytes()
    );

    // a 16 MB header block in full-size CONTINUATIONs
    let mut s = ready(Config::default(), now);
    s.open(&get(0), None, Keep::default(), 0, now).unwrap();
    let piece = vec![0x88u8; 16_384];
    let start = Server::default().raw(kind::HEADERS, 0, 1, &piece).0;
    let frames = std::iter::once(start)
        .chain(std::iter::repeat_with(|| {
            Server::default().raw(kind::CONTINUATION, 0, 1, &piece).0
        }))
        .take(1024);
    let (e, fed) = flood(&mut s, frames);
    assert_eq!(e, ProtocolError::HeaderBlockTooLarge);
    assert!(fed <= MAX_HEADER_BLOCK + 2 * 16_393, "{fed}");
    assert!(
        s.block.capacity() <= 2 * MAX_HEADER_BLOCK,
        "{}",
        s.block.capacity()
    );

    // one HEADERS frame declaring 16 MB: refused from its 9-byte header
    let mut s = ready(Config::default(), now);
    s.open(&get(0), None, Keep::default(), 0, now).unwrap();
    let mut head = Vec::new();
    frame::write_head(&mut head, (16 << 20) - 1, kind::HEADERS, 0, 1);
    assert_eq!(
        feed(&mut s, &head, now),
        Err(ProtocolError::FrameSize(
            "longer than SETTINGS_MAX_FRAME_SIZE"
        ))
    );
    assert!(s.partial.capacity() <= 64);

    // a small block that decodes to a huge list: one 4 KB table entry
    // indexed again and again — that stream fails, the connection lives
    let mut s = ready(Config::default(), now);
    s.open(&get(0), None, Keep::default(), 0, now).unwrap();
    s.open(&get(1), None, Keep::default(), 1, now).unwrap();
    written(&mut s);
    let mut block = vec![0x88, 0x40, 0x01, b'x', 0x7f, 0xa1, 0x1e]; // x: 4000 bytes, indexed
    block.extend(std::iter::repeat_n(b'v', 4000));
    block.extend(std::iter::repeat_n(0xbe, 40)); // 40 × 4 KB
    let server = Server::default()
        .raw(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            1,
            &block,
        )
        .headers(3, &[(":status", "200")], true);
    let got = feed(&mut s, &server.0, now).unwrap();
    assert_eq!(
        got,
        [
            Ev::Failed(1, 0, H2Error::Protocol(ProtocolError::HeaderListTooLarge)),
            ok(3, 1, 200, 0)
        ]
    );
    let out = written(&mut s);
    assert_eq!(out[0].kind, kind::RST_STREAM);
}
