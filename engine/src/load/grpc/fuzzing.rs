//! The entry points of the gRPC fuzz targets (and of the corpus replay in
//! tests/fuzz_corpus.rs). `grpc_response`: a hostile server's DATA bytes
//! through the message decoder, cut into two reads where the first byte
//! says, and every whole message decoded as the test service's reply and
//! turned into JSON. It must never panic, must stay within its limits, and
//! must not report a message larger than the limit. `grpc_reflection`: a
//! hostile server's reflection answer (see [`grpc_reflection`]).

use super::frame::Decoder;
use super::response::to_json;
use prost_reflect::MessageDescriptor;
use std::sync::OnceLock;

/// The embedded echo.proto, as a file resolver.
struct Embedded;

impl protox::file::FileResolver for Embedded {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        match name {
            "echo.proto" => protox::file::File::from_source(
                name,
                include_str!("../../../../tests/grpc/echo.proto"),
            ),
            _ => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// The test service's reply type, compiled once from the proto text
/// embedded here (the fuzz binary may run from any directory).
fn reply() -> &'static MessageDescriptor {
    static DESC: OnceLock<MessageDescriptor> = OnceLock::new();
    DESC.get_or_init(|| {
        let mut c = protox::Compiler::with_file_resolver(Embedded);
        c.open_file("echo.proto").expect("echo.proto compiles");
        c.descriptor_pool()
            .get_message_by_name("echo.SayReply")
            .expect("SayReply is there")
    })
}

/// Longest message the fuzzed decoder accepts.
const MAX: usize = 64 * 1024;

pub fn grpc_response(data: &[u8]) {
    let Some((&ctl, wire)) = data.split_first() else {
        return;
    };
    let cut = if wire.is_empty() {
        0
    } else {
        ctl as usize % (wire.len() + 1)
    };
    let mut d = Decoder::new(MAX);
    d.start(ctl & 0x80 != 0);
    let desc = reply();
    let mut json = Vec::new();
    for piece in [&wire[..cut], &wire[cut..]] {
        let r = d.feed(piece, |m| {
            assert!(m.len() <= MAX, "a message over the limit");
            if to_json(desc, m, 1 << 20, &mut json).is_ok() {
                assert!(json.len() <= 1 << 20);
                serde_json::from_slice::<serde_json::Value>(&json).expect("valid JSON");
            }
        });
        if r.is_err() {
            return;
        }
    }
    let _ = d.finish();
}

/// The `grpc_reflection` target: a hostile server's reflection answer
/// decoded, its files collected within the caps and built into a pool,
/// and each file's head read. It must never panic; what it collects stays
/// within [`super::reflection::MAX_DESCRIPTOR_BYTES`] and
/// [`super::reflection::MAX_FILES`].
pub fn grpc_reflection(data: &[u8]) {
    use super::reflection::{self, Collected, MAX_DESCRIPTOR_BYTES, MAX_FILES, Response};
    let _ = reflection::file_head(data);
    let Ok(r) = reflection::decode_response(data) else {
        return;
    };
    if let Response::Files(files) = r {
        let mut c = Collected::default();
        if c.add(&files).is_ok() {
            assert!(c.bytes() <= MAX_DESCRIPTOR_BYTES && c.files() <= MAX_FILES);
            let _ = c.next_wanted();
            let _ = c.pool();
        }
    }
}
