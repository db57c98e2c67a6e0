//! gRPC server reflection (`grpc.reflection.v1.ServerReflection`, and its
//! older twin `v1alpha`, same wire form), the sans-IO part: the requests
//! the engine sends, the answers decoded, and the files collected into a
//! descriptor pool. A unit with `"reflection": true` gets its method's
//! descriptors this way instead of from `.proto` files; the exchange
//! itself (a socket, an HTTP/2 session) is `plan::reflect`'s.
//!
//! The server is not trusted: what it sends is decoded by hand from the
//! slice it arrived in (a few fields of four small messages), nothing is
//! allocated beyond the bytes received, a field that runs past its message
//! is an error, and the collected files are capped in bytes
//! ([`MAX_DESCRIPTOR_BYTES`], as a `.proto` file is capped) and in number
//! ([`MAX_FILES`]). Descriptors that do not build (a type missing, a file
//! lying about its name) are an error from `prost-reflect`, never a panic.
//!
//! What is asked: `file_containing_symbol` for the service, then each
//! dependency not yet received by `file_by_filename` (grpc-go sends a file
//! with its dependencies; grpcio's Python service sends the one file).
//! The well-known types (`google/protobuf/*.proto`) come from
//! `prost-reflect`'s built-in pool when the server does not send them.

use prost_reflect::DescriptorPool;
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// The reflection service's method, v1 (grpc-go, grpc-java, grpcio since
/// 1.60) and the v1alpha one older servers have.
pub const V1: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
pub const V1ALPHA: &str = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

/// Most descriptor bytes taken from one server for one service: a `.proto`
/// file's cap ([`super::compile::MAX_PROTO_FILE`]); Google's
/// descriptor.proto compiles to 10 KiB.
pub const MAX_DESCRIPTOR_BYTES: usize = 4 << 20;
/// Most files taken (the service's and its dependencies').
pub const MAX_FILES: usize = 256;

/// One request (`ServerReflectionRequest`'s `message_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    FileByFilename(&'a str),
    FileContainingSymbol(&'a str),
    ListServices,
}

impl Request<'_> {
    /// The encoded `ServerReflectionRequest` (not length-prefixed).
    pub fn encode(self) -> Vec<u8> {
        let (field, text) = match self {
            Request::FileByFilename(f) => (3, f),
            Request::FileContainingSymbol(s) => (4, s),
            // `list_services` is a string whose content is ignored
            Request::ListServices => (7, ""),
        };
        let mut out = Vec::with_capacity(text.len() + 4);
        super::field::varint(&mut out, (field << 3 | 2) as u64);
        super::field::varint(&mut out, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
        out
    }
}

/// A `ServerReflectionResponse`, what the engine reads of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// `file_descriptor_response`: serialized `FileDescriptorProto`s.
    Files(Vec<&'a [u8]>),
    /// `list_services_response`: the services' full names.
    Services(Vec<String>),
    /// `error_response`: a gRPC status code and its message.
    Error { code: i32, message: String },
    /// Nothing the engine asked for (no `message_response`, or another).
    Other,
}

/// Bytes that are not the protobuf message they should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("a varint runs past the end or over 10 bytes")]
    Varint,
    #[error("field {0} runs past the end of its message")]
    Truncated(u64),
    #[error("field {field} has wire type {wire}, which protobuf does not have")]
    WireType { field: u64, wire: u8 },
    #[error("field {0} has the wrong wire type")]
    Mismatch(u64),
    #[error("field {0} is not UTF-8")]
    Utf8(u64),
}

/// One field's value as it is on the wire.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Walks a message's fields in wire order; each is (number, value).
struct Fields<'a> {
    rest: &'a [u8],
}

fn varint(buf: &mut &[u8]) -> Result<u64, WireError> {
    let mut n = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first().ok_or(WireError::Varint)?;
        *buf = rest;
        n |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(n);
        }
    }
    Err(WireError::Varint)
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = (|| {
            let key = varint(&mut self.rest)?;
            let (field, wire) = (key >> 3, (key & 7) as u8);
            let skip = |rest: &mut &'a [u8], n: usize| -> Result<&'a [u8], WireError> {
                if rest.len() < n {
                    return Err(WireError::Truncated(field));
                }
                let (v, r) = rest.split_at(n);
                *rest = r;
                Ok(v)
            };
            let value = match wire {
                0 => Value::Varint(varint(&mut self.rest)?),
                1 => skip(&mut self.rest, 8).map(|_| Value::Fixed)?,
                2 => {
                    let n = varint(&mut self.rest)?;
                    let n = usize::try_from(n).map_err(|_| WireError::Truncated(field))?;
                    Value::Bytes(skip(&mut self.rest, n)?)
                }
                5 => skip(&mut self.rest, 4).map(|_| Value::Fixed)?,
                _ => return Err(WireError::WireType { field, wire }),
            };
            Ok((field, value))
        })();
        if r.is_err() {
            // one error, then the walk ends
            self.rest = &[];
        }
        Some(r)
    }
}

fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { rest: buf }
}

fn bytes(field: u64, v: Value<'_>) -> Result<&[u8], WireError> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(WireError::Mismatch(field)),
    }
}

fn text(field: u64, v: Value<'_>) -> Result<String, WireError> {
    let b = bytes(field, v)?;
    std::str::from_utf8(b)
        .map(str::to_string)
        .map_err(|_| WireError::Utf8(field))
}

/// Decodes a `ServerReflectionResponse`; the files are slices of `buf`.
/// When `message_response` appears more than once the last one wins, as
/// protobuf's oneof says.
pub fn decode_response(buf: &[u8]) -> Result<Response<'_>, WireError> {
    let mut out = Response::Other;
    for f in fields(buf) {
        let (field, v) = f?;
        out = match field {
            4 => {
                let mut files = Vec::new();
                for g in fields(bytes(4, v)?) {
                    let (n, v) = g?;
                    if n == 1 {
                        files.push(bytes(1, v)?);
                    }
                }
                Response::Files(files)
            }
            6 => {
                let mut names = Vec::new();
                for g in fields(bytes(6, v)?) {
                    let (n, v) = g?;
                    if n == 1 {
                        for h in fields(bytes(1, v)?) {
                            let (m, v) = h?;
                            if m == 1 {
                                names.push(text(1, v)?);
                            }
                        }
                    }
                }
                Response::Services(names)
            }
            7 => {
                let (mut code, mut message) = (0, String::new());
                for g in fields(bytes(7, v)?) {
                    match g? {
                        (1, Value::Varint(c)) => code = c as i32,
                        (2, v) => message = text(2, v)?,
                        _ => {}
                    }
                }
                Response::Error { code, message }
            }
            _ => continue,
        };
    }
    Ok(out)
}

/// What the engine reads of a `FileDescriptorProto`: its name, the files
/// it imports, its syntax.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileHead {
    pub name: String,
    pub dependencies: Vec<String>,
    /// `syntax` as written (empty: proto2).
    pub syntax: String,
}

/// Reads a serialized `FileDescriptorProto`'s name (field 1),
/// dependencies (field 3) and syntax (field 12); the rest is for
/// `prost-reflect`.
pub fn file_head(buf: &[u8]) -> Result<FileHead, WireError> {
    let mut head = FileHead::default();
    for f in fields(buf) {
        match f? {
            (1, v) => head.name = text(1, v)?,
            (3, v) => head.dependencies.push(text(3, v)?),
            (12, v) => head.syntax = text(12, v)?,
            _ => {}
        }
    }
    Ok(head)
}

/// Why the collected files are not a usable pool.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CollectError {
    #[error("sent a reflection answer that does not decode ({0})")]
    Wire(#[from] WireError),
    #[error("sent a file descriptor without a name")]
    Unnamed,
    /// prost-reflect 0.16.5 panics building a file of another syntax (its
    /// error's label indexes the file list before the file is in it: found
    /// by the `grpc_reflection` fuzz target), so one is refused first.
    #[error("sent {file} of syntax \"{syntax}\" (proto2 and proto3 only)")]
    Syntax { file: String, syntax: String },
    #[error("sent more than {MAX_DESCRIPTOR_BYTES} bytes of descriptors")]
    TooLarge,
    #[error("sent more than {MAX_FILES} files")]
    TooManyFiles,
    #[error("sent descriptors that do not build: {0}")]
    Build(String),
}

/// The files received from one server, by name, within the caps.
#[derive(Debug, Default)]
pub struct Collected {
    files: BTreeMap<String, Vec<u8>>,
    /// Imports of the files held.
    wanted: BTreeSet<String>,
    bytes: usize,
    /// Files asked for by name already (never asked twice).
    asked: BTreeSet<String>,
}

/// Whether `prost-reflect`'s built-in pool has this file (the well-known
/// types), so a server need not send it.
pub fn built_in(name: &str) -> bool {
    name.starts_with("google/protobuf/")
        && DescriptorPool::global().get_file_by_name(name).is_some()
}

impl Collected {
    /// Takes the files of a `file_descriptor_response`; a file already
    /// held is skipped (grpc-go may send a dependency twice).
    pub fn add(&mut self, files: &[&[u8]]) -> Result<(), CollectError> {
        for bytes in files {
            let head = file_head(bytes)?;
            if head.name.is_empty() {
                return Err(CollectError::Unnamed);
            }
            if !matches!(head.syntax.as_str(), "" | "proto2" | "proto3") {
                return Err(CollectError::Syntax {
                    file: head.name,
                    syntax: head.syntax,
                });
            }
            if self.files.contains_key(&head.name) {
                continue;
            }
            self.bytes += bytes.len();
            if self.bytes > MAX_DESCRIPTOR_BYTES {
                return Err(CollectError::TooLarge);
            }
            if self.files.len() >= MAX_FILES {
                return Err(CollectError::TooManyFiles);
            }
            self.wanted.extend(head.dependencies);
            self.files.insert(head.name, bytes.to_vec());
        }
        Ok(())
    }

    /// The imports still to ask for (each once, the built-in ones never),
    /// marked as asked.
    pub fn next_wanted(&mut self) -> Vec<String> {
        let missing: Vec<String> = (self.wanted.iter())
            .filter(|w| !self.files.contains_key(*w) && !self.asked.contains(*w) && !built_in(w))
            .cloned()
            .collect();
        self.asked.extend(missing.iter().cloned());
        missing
    }

    pub fn files(&self) -> usize {
        self.files.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The files as a pool, over the built-in well-known types (files in
    /// any order; one the pool has already is skipped).
    pub fn pool(&self) -> Result<DescriptorPool, CollectError> {
        let mut set = Vec::with_capacity(self.bytes + 8 * self.files.len());
        for bytes in self.files.values() {
            super::field::varint(&mut set, 1 << 3 | 2);
            super::field::varint(&mut set, bytes.len() as u64);
            set.extend_from_slice(bytes);
        }
        let mut pool = DescriptorPool::global();
        pool.decode_file_descriptor_set(&set[..])
            .map_err(|e| CollectError::Build(e.to_string()))?;
        Ok(pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use prost_reflect::prost_types;

    fn ld(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
        super::super::field::varint(out, field << 3 | 2);
        super::super::field::varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }

    /// An empty FileDescriptorProto importing `deps`, as `prost-types`
    /// writes it.
    fn file(name: &str, deps: &[&str]) -> Vec<u8> {
        prost_types::FileDescriptorProto {
            name: Some(name.into()),
            dependency: deps.iter().map(|d| d.to_string()).collect(),
            syntax: Some("proto3".into()),
            package: Some("p".into()),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn requests_encode_as_protoc_would() {
        assert_eq!(
            Request::FileContainingSymbol("a.B").encode(),
            b"\x22\x03a.B"
        );
        assert_eq!(Request::FileByFilename("x").encode(), b"\x1a\x01x");
        assert_eq!(Request::ListServices.encode(), b"\x3a\x00");
    }

    #[test]
    fn responses_decode_and_garbage_is_an_error() {
        let mut fdr = Vec::new();
        ld(&mut fdr, 1, b"one");
        ld(&mut fdr, 1, b"two");
        let mut resp = Vec::new();
        ld(&mut resp, 1, b"host");
        ld(&mut resp, 4, &fdr);
        assert_eq!(
            decode_response(&resp),
            Ok(Response::Files(vec![&b"one"[..], b"two"]))
        );
        let mut svc = Vec::new();
        ld(&mut svc, 1, b"echo.Echo");
        let mut list = Vec::new();
        ld(&mut list, 1, &svc);
        let mut resp = Vec::new();
        ld(&mut resp, 6, &list);
        assert_eq!(
            decode_response(&resp),
            Ok(Response::Services(vec!["echo.Echo".into()]))
        );
        let mut err = vec![0x08, 5];
        ld(&mut err, 2, b"not found");
        let mut resp = Vec::new();
        ld(&mut resp, 7, &err);
        assert_eq!(
            decode_response(&resp),
            Ok(Response::Error {
                code: 5,
                message: "not found".into()
            })
        );
        assert_eq!(decode_response(b""), Ok(Response::Other));
        // a length past the end, a bad varint, a bad wire type, a string
        // that is not UTF-8, a file list that is a varint
        assert_eq!(decode_response(b"\x22\x10ab"), Err(WireError::Truncated(4)));
        assert_eq!(decode_response(&[0xff; 11]), Err(WireError::Varint));
        assert_eq!(
            decode_response(b"\x0f"),
            Err(WireError::WireType { field: 1, wire: 7 })
        );
        assert_eq!(
            decode_response(b"\x32\x04\x0a\x02\x0a\x05"),
            Err(WireError::Truncated(1))
        );
        assert_eq!(
            decode_response(b"\x32\x05\x0a\x03\x0a\x01\xff"),
            Err(WireError::Utf8(1))
        );
        assert_eq!(decode_response(b"\x20\x01"), Err(WireError::Mismatch(4)));
        // a huge length is an error, not an allocation
        let mut huge = vec![0x22];
        super::super::field::varint(&mut huge, u64::MAX >> 1);
        assert_eq!(decode_response(&huge), Err(WireError::Truncated(4)));
    }

    #[test]
    fn files_are_collected_within_caps_and_dependencies_asked_once() {
        let mut c = Collected::default();
        let a = file("a.proto", &["b.proto", "google/protobuf/timestamp.proto"]);
        c.add(&[&a]).unwrap();
        assert_eq!(
            c.next_wanted(),
            ["b.proto"],
            "the built-in one is not asked"
        );
        assert!(c.next_wanted().is_empty(), "asked once");
        let b = file("b.proto", &[]);
        c.add(&[&b, &a]).unwrap();
        assert_eq!((c.files(), c.bytes()), (2, a.len() + b.len()));
        assert!(c.pool().unwrap().get_file_by_name("a.proto").is_some());
        assert_eq!(c.add(&[&file("", &[])]), Err(CollectError::Unnamed));
        // a syntax prost-reflect cannot build (it would panic)
        let editions = prost_types::FileDescriptorProto {
            name: Some("e.proto".into()),
            syntax: Some("editions".into()),
            ..Default::default()
        };
        assert_eq!(
            c.add(&[&editions.encode_to_vec()]),
            Err(CollectError::Syntax {
                file: "e.proto".into(),
                syntax: "editions".into()
            })
        );
        // past the byte cap
        let mut c = Collected::default();
        let big = prost_types::FileDescriptorProto {
            name: Some("big.proto".into()),
            package: Some("x".repeat(MAX_DESCRIPTOR_BYTES)),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(c.add(&[&big]), Err(CollectError::TooLarge));
        // past the file cap
        let mut c = Collected::default();
        let many: Vec<Vec<u8>> = (0..=MAX_FILES)
            .map(|i| file(&format!("f{i}.proto"), &[]))
            .collect();
        let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
        assert_eq!(c.add(&refs), Err(CollectError::TooManyFiles));
        // a file importing one never sent does not build
        let mut c = Collected::default();
        let mut m = prost_types::FileDescriptorProto {
            name: Some("m.proto".into()),
            dependency: vec!["gone.proto".into()],
            ..Default::default()
        };
        m.message_type.push(prost_types::DescriptorProto {
            name: Some("M".into()),
            ..Default::default()
        });
        c.add(&[&m.encode_to_vec()]).unwrap();
        assert!(
            matches!(c.pool(), Err(CollectError::Build(_))),
            "{:?}",
            c.pool()
        );
    }
}
