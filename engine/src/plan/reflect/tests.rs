//! Reflection resolved against peers on 127.0.0.1 that misbehave: nothing
//! listening, silence, garbage, an endless stream. Each ends in a bounded
//! error naming what went wrong, never a hang or a panic. (A real grpcio
//! server with and without reflection is tests/grpc_reflection.rs'.)

use super::*;
use crate::config::Config;
use prost::Message as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// How the peer answers.
#[derive(Clone)]
enum Peer {
    /// A reflection service giving one file per answer (never its
    /// imports): `symbol` is in `files[0]`.
    Files {
        symbol: String,
        files: Vec<(String, Vec<u8>)>,
    },
    /// Bytes that are not HTTP/2 at all.
    Garbage,
    /// A call's answer that never ends: DATA after DATA.
    Endless,
    /// An answer that is gRPC but not a reflection response.
    BadAnswer,
    /// `grpc-status` NOT_FOUND to every call (a server with no such method
    /// that says so wrongly).
    NotFound,
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A literal header field without indexing, new name (RFC 7541 6.2.2).
fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
}

/// A raw h2c peer on 127.0.0.1; what it was asked (`symbol:…`,
/// `file:…`) is recorded.
fn peer(kind: Peer) -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&asked);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let (kind, log) = (kind.clone(), Arc::clone(&log));
            std::thread::spawn(move || {
                let _ = serve(s, &kind, &log);
            });
        }
    });
    (port, asked)
}

fn serve(mut s: TcpStream, kind: &Peer, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut preface = [0u8; 24];
    s.read_exact(&mut preface)?;
    if let Peer::Garbage = kind {
        return s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
    }
    let mut out = Vec::new();
    frame(&mut out, 4, 0, 0, &[]);
    s.write_all(&out)?;
    let mut bodies: HashMap<u32, Vec<u8>> = HashMap::new();
    loop {
        let mut head = [0u8; 9];
        s.read_exact(&mut head)?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind_byte, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload)?;
        let mut out = Vec::new();
        match kind_byte {
            4 if flags & 1 == 0 => frame(&mut out, 4, 1, 0, &[]),
            0 => {
                bodies
                    .entry(stream)
                    .or_default()
                    .extend_from_slice(&payload);
                if flags & 1 != 0 {
                    let body = bodies.remove(&stream).unwrap_or_default();
                    answer(&mut s, stream, &body[5.min(body.len())..], kind, log)?;
                }
            }
            _ => {}
        }
        s.write_all(&out)?;
    }
}

/// Answers one reflection request (`req`: the message, unframed).
fn answer(
    s: &mut TcpStream,
    stream: u32,
    req: &[u8],
    kind: &Peer,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut out = Vec::new();
    let mut fields = vec![0x88]; // :status 200
    literal(&mut fields, "content-type", "application/grpc");
    if let Peer::NotFound = kind {
        literal(&mut fields, "grpc-status", "5");
        frame(&mut out, 1, 4 | 1, stream, &fields);
        return s.write_all(&out);
    }
    frame(&mut out, 1, 4, stream, &fields);
    // the request: field 3 (file) or 4 (symbol), a string
    let (field, text) = (
        req.first().map_or(0, |k| k >> 3),
        req.get(2..).unwrap_or_default(),
    );
    let text = String::from_utf8_lossy(text).into_owned();
    let what = if field == 4 { "symbol" } else { "file" };
    log.lock().unwrap().push(format!("{what}:{text}"));
    let mut response = Vec::new();
    match kind {
        Peer::Files { symbol, files } => {
            let name = if field == 4 && text == *symbol {
                Some(&files[0].0)
            } else {
                files.iter().map(|(n, _)| n).find(|n| **n == text)
            };
            let mut inner = Vec::new();
            match name.and_then(|n| files.iter().find(|(f, _)| f == n)) {
                Some((_, bytes)) => {
                    crate::load::grpc::field::varint(&mut inner, 1 << 3 | 2);
                    crate::load::grpc::field::varint(&mut inner, bytes.len() as u64);
                    inner.extend_from_slice(bytes);
                    response.push(4 << 3 | 2);
                }
                None => {
                    inner.extend_from_slice(&[0x08, 5]);
                    response.push(7 << 3 | 2);
                }
            }
            crate::load::grpc::field::varint(&mut response, inner.len() as u64);
            response.extend_from_slice(&inner);
        }
        // a file list holding one "file" that is no protobuf
        Peer::BadAnswer => response.extend_from_slice(b"\x22\x05\x0a\x03\xff\xff\xff"),
        Peer::Endless => {
            // a 4 MiB message that never ends, 16 KiB at a time
            let mut first = vec![0, 0, 0x40, 0, 0];
            first.resize(16 << 10, 0);
            frame(&mut out, 0, 0, stream, &first);
            s.write_all(&out)?;
            let mut more = Vec::new();
            frame(&mut more, 0, 0, stream, &vec![0u8; 16 << 10]);
            loop {
                s.write_all(&more)?;
            }
        }
        Peer::Garbage | Peer::NotFound => unreachable!(),
    }
    let mut data = Vec::new();
    crate::load::grpc::frame::write_message(&mut data, &response);
    frame(&mut out, 0, 0, stream, &data);
    let mut t = Vec::new();
    literal(&mut t, "grpc-status", "0");
    frame(&mut out, 1, 4 | 1, stream, &t);
    s.write_all(&out)
}

fn plan(port: u16, endpoints: &str) -> Plan {
    let c = Config::from_json(&format!(
        r#"{{"target": "http://127.0.0.1:{port}", "stages": [{{"duration": "1s", "target": 1}}],
            "timeouts": {{"connect": "1s", "request": "2s"}}, "endpoints": [{endpoints}]}}"#
    ))
    .unwrap();
    crate::plan::build::prepare(&c).unwrap()
}

const ONE: &str = r#"{"name": "a", "grpc": {"reflection": true, "method": "s.Svc/Get",
    "message": {"value": 7}}}"#;

/// svc.proto imports common.proto and a well-known type; the peer gives
/// one file per answer, so the import is asked by name and the
/// well-known type is taken from the built-in pool, never asked.
fn files() -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("common.proto"),
        "syntax = \"proto3\";\npackage common;\nmessage Id { int64 value = 1; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("svc.proto"),
        "syntax = \"proto3\";\npackage s;\nimport \"common.proto\";\nimport \"google/protobuf/empty.proto\";\n\
         service Svc { rpc Get(common.Id) returns (common.Id); rpc Nothing(google.protobuf.Empty) returns (common.Id); }\n",
    )
    .unwrap();
    let pool =
        crate::load::grpc::compile::compile_pool(&[dir.path().join("svc.proto")], &[]).unwrap();
    ["svc.proto", "common.proto"]
        .iter()
        .map(|n| {
            let f = pool.get_file_by_name(n).unwrap();
            (n.to_string(), f.file_descriptor_proto().encode_to_vec())
        })
        .collect()
}

#[test]
fn imports_are_asked_by_name_once_per_server_and_service() {
    let (port, asked) = peer(Peer::Files {
        symbol: "s.Svc".into(),
        files: files(),
    });
    let two = format!("{ONE}, {}", ONE.replace(r#""name": "a""#, r#""name": "b""#));
    let mut p = plan(port, &two);
    let lines = resolve(&mut p).unwrap();
    assert_eq!(
        lines.len(),
        1,
        "one exchange for one server and service: {lines:?}"
    );
    assert!(
        lines[0].contains(&format!("127.0.0.1:{port} described s.Svc in 2 file(s)"))
            && lines[0].contains("grpc.reflection.v1,"),
        "{lines:?}"
    );
    assert_eq!(
        *asked.lock().unwrap(),
        ["symbol:s.Svc", "file:common.proto"],
        "the well-known type is never asked"
    );
    for row in &p.endpoints {
        let g = row.grpc.as_ref().expect("resolved");
        assert_eq!(g.method.path, "/s.Svc/Get");
        assert!(row.reflect.is_none());
        // {"value": 7}: field 1, varint 7, framed once
        assert_eq!(
            &row.h2.as_ref().unwrap().body[..],
            &[0, 0, 0, 0, 2, 0x08, 7]
        );
    }
}

/// What the peer does wrong, and the problem that names it.
#[test]
fn a_broken_or_hostile_peer_is_a_bounded_error() {
    let cases = [
        (Peer::Garbage, "broke HTTP/2"),
        (
            Peer::BadAnswer,
            "sent a reflection answer that does not decode (a varint",
        ),
        (
            Peer::NotFound,
            "answered the reflection call with NOT_FOUND",
        ),
        (Peer::Endless, "sent more than 5242880 bytes"),
    ];
    for (kind, want) in cases {
        let (port, _) = peer(kind);
        let mut p = plan(port, ONE);
        let t0 = std::time::Instant::now();
        let problems = resolve(&mut p).unwrap_err();
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "{want}: bounded"
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        let line = format!("endpoints[0].grpc.reflection: 127.0.0.1:{port} {want}");
        assert!(problems[0].starts_with(&line), "{line:?} in {problems:?}");
    }
    // nothing listening
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let problems = resolve(&mut plan(port, ONE)).unwrap_err();
    assert!(
        problems[0].contains(&format!("127.0.0.1:{port} cannot be reached (")),
        "{problems:?}"
    );
}
