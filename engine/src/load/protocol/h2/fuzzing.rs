//! Entry points for the `hpack_decode` and `h2_session` fuzz targets
//! (fuzz/fuzz_targets/) and for the test that replays their corpora
//! (tests/fuzz_corpus.rs): whatever a server sends, no panic, and the
//! bounds hold.

use super::encode::write_field;
use super::hpack::{Decoder, TABLE_SIZE};
use super::session::{Config, Event, MAX_HEADER_BLOCK, Session};
use super::stream::Keep;
use std::time::{Duration, Instant};

/// HPACK: the input after its first byte is cut into header blocks (of
/// 1-64 bytes as the first byte says, or one block) decoded in order on
/// one connection's decoder. Whatever decodes must
/// re-encode (as literals) and decode again to the same fields, and the
/// table stays within its size.
pub fn hpack_decode(data: &[u8]) {
    let Some((&ctl, wire)) = data.split_first() else {
        return;
    };
    let piece = (ctl as usize % 64) + 1;
    let mut d = Decoder::new();
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for block in wire.chunks(if ctl & 0x80 != 0 {
        wire.len().max(1)
    } else {
        piece
    }) {
        fields.clear();
        let r = d.decode(block, |n, v| fields.push((n.to_vec(), v.to_vec())));
        assert!(d.table().size() <= d.table().max());
        assert!(d.table().max() <= TABLE_SIZE);
        if r.is_err() {
            return; // a COMPRESSION_ERROR ends the connection
        }
        let mut again = Vec::new();
        for (n, v) in &fields {
            write_field(&mut again, n, v);
        }
        let mut back = Vec::new();
        Decoder::new()
            .decode(&again, |n, v| back.push((n.to_vec(), v.to_vec())))
            .expect("our own encoding decodes");
        assert_eq!(back, fields);
    }
}

/// A session fed arbitrary server bytes: the first byte picks where reads
/// end (pieces of 1-128 bytes, or all at once) and whether requests carry
/// a body; the session opens requests whenever it may, answers as it must,
/// and its buffers stay bounded whatever arrives.
pub fn h2_session(data: &[u8]) {
    let Some((&ctl, wire)) = data.split_first() else {
        return;
    };
    let piece = if ctl & 0x80 != 0 {
        wire.len().max(1)
    } else {
        (ctl as usize & 0x7f) + 1
    };
    let body = vec![b'b'; if ctl & 0x40 != 0 { 3_000 } else { 0 }];
    let keep = Keep {
        head: true,
        body: Some(1024),
        timing: true,
        head_request: ctl & 0x20 != 0,
        grpc: ctl & 0x40 != 0,
    };
    let t0 = Instant::now();
    let cfg = Config {
        stream_window: 4096,
        ..Config::default()
    };
    let mut s = Session::new(cfg, t0);
    let mut out = Vec::new();
    let block = super::RequestHead::new("POST", "http", "127.0.0.1", "/", [("x", "1")]);
    let mut opened = 0u64;
    for (i, read) in wire.chunks(piece).enumerate() {
        let now = t0 + Duration::from_micros(i as u64);
        while opened < 16 && s.can_open() {
            let b = (!body.is_empty()).then_some(&body[..]);
            s.open(block.block(), b, keep, opened, now)
                .expect("can_open said yes");
            opened += 1;
        }
        if i % 3 == 0 {
            s.send_ping(now);
        }
        let mut done = 0u64;
        let r = s.recv(read, now, &mut |e| match e {
            Event::Response(r) => {
                assert!(r.tag < opened);
                assert!(r.kept.body.len() <= 1024);
                assert!(r.kept.head.len() <= super::session::MAX_HEADER_LIST + 64);
                done += 1;
            }
            Event::Failed { tag, .. } | Event::Unprocessed { tag, .. } => assert!(tag < opened),
            _ => {}
        });
        assert!(s.open_streams() <= opened as usize);
        assert!(s.buffered() <= cfg.max_frame as usize + 9 + MAX_HEADER_BLOCK);
        out.clear();
        s.write_into(&mut out);
        if r.is_err() {
            let mut left = 0;
            s.drain_open(|_, _| left += 1);
            assert_eq!(s.open_streams(), 0);
            return;
        }
    }
}
