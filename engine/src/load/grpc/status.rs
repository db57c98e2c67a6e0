//! A call's outcome as gRPC reports it: `grpc-status` and `grpc-message`
//! in the response's trailers, or in its headers when the server answers
//! with a trailers-only response (an error before any message). The codes
//! and their names are the gRPC spec's (statuscodes.md); the names are
//! what results count per endpoint (`grpc_status`) and what checks match.
//!
//! [`StatusReader`] is fed the response's header fields as the HTTP/2
//! stream decodes them — the headers block, then the trailers block — and
//! says at the end what the call's status is, or which error kind the
//! response is when it carries none.

use thiserror::Error;

/// A gRPC status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

/// Every code, in number order (index = code).
pub const CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

impl Code {
    /// The code of a number; the spec says a client treats an unknown
    /// number as UNKNOWN.
    pub fn from_u32(n: u32) -> Code {
        CODES.get(n as usize).copied().unwrap_or(Code::Unknown)
    }

    /// The spec's name, as results count it (`OK`, `UNAVAILABLE`, …).
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The code a name stands for (checks and config name codes).
    pub fn from_name(name: &str) -> Option<Code> {
        CODES.iter().copied().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A response whose status cannot be read: the request failed with this
/// error kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StatusError {
    /// The stream ended without `grpc-status` in trailers or headers.
    #[error("response has no grpc-status (trailers missing)")]
    Missing,
    /// `grpc-status` is not a decimal number.
    #[error("grpc-status is not a number")]
    NotANumber,
    /// The HTTP status was not 200: the gRPC spec maps it to a code, but it
    /// is no gRPC response (a proxy's error page, say).
    #[error("HTTP status {0}, not 200")]
    Http(u16),
    /// `content-type` is missing or not `application/grpc[+…]`.
    #[error("content-type is not application/grpc")]
    ContentType,
}

/// Longest `grpc-message` kept (bytes, after percent-decoding).
pub const MAX_MESSAGE: usize = 1024;

/// Reads the status fields of one response; reused stream after stream.
#[derive(Debug, Default)]
pub struct StatusReader {
    code: Option<Result<Code, StatusError>>,
    message: Vec<u8>,
    content_type_ok: bool,
    content_type_seen: bool,
    encoding: bool,
}

impl StatusReader {
    /// Forgets the previous response.
    pub fn start(&mut self) {
        self.code = None;
        self.message.clear();
        self.content_type_ok = false;
        self.content_type_seen = false;
        self.encoding = false;
    }

    /// One field of the headers or the trailers block (names lower-case,
    /// as HTTP/2 requires). Fields other than gRPC's are ignored.
    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        match name {
            b"grpc-status" => {
                self.code = Some(parse_code(value));
            }
            b"grpc-message" => {
                self.message.clear();
                percent_decode(value, &mut self.message);
            }
            b"content-type" => {
                self.content_type_seen = true;
                self.content_type_ok = value == b"application/grpc"
                    || value.starts_with(b"application/grpc+")
                    || value.starts_with(b"application/grpc;");
            }
            b"grpc-encoding" => self.encoding = value != b"identity",
            _ => {}
        }
    }

    /// Whether the headers said `content-type: application/grpc[+…]`: when
    /// not, the body is not length-prefixed messages (an HTML error page)
    /// and is not decoded.
    pub fn is_grpc(&self) -> bool {
        self.content_type_ok
    }

    /// Whether the headers named a `grpc-encoding` other than `identity`
    /// (for [`super::Decoder::start`]).
    pub fn encoding(&self) -> bool {
        self.encoding
    }

    /// The call's status once the stream ended; `http_status` is the
    /// response's `:status`.
    pub fn finish(&self, http_status: u16) -> Result<Code, StatusError> {
        if http_status != 200 {
            return Err(StatusError::Http(http_status));
        }
        // The spec requires the content-type (grpc-go fails a response
        // without one too): a response without it is not gRPC's.
        if !self.content_type_ok {
            return Err(StatusError::ContentType);
        }
        self.code.unwrap_or(Err(StatusError::Missing))
    }

    /// The percent-decoded `grpc-message` (empty when none), at most
    /// [`MAX_MESSAGE`] bytes; not necessarily UTF-8.
    pub fn message(&self) -> &[u8] {
        &self.message
    }
}

fn parse_code(value: &[u8]) -> Result<Code, StatusError> {
    if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
        return Err(StatusError::NotANumber);
    }
    let n = value
        .iter()
        .fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
    Ok(Code::from_u32(u32::try_from(n).unwrap_or(u32::MAX)))
}

/// Percent-decodes a `grpc-message` (the spec: `%XX` for bytes outside
/// printable ASCII and `%`), keeping at most [`MAX_MESSAGE`] bytes. A `%`
/// not followed by two hex digits is kept as it is, as grpc-go does.
pub fn percent_decode(value: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < value.len() && out.len() < MAX_MESSAGE {
        let b = value[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (
                value.get(i + 1).and_then(|&c| hex(c)),
                value.get(i + 2).and_then(|&c| hex(c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(fields: &[(&str, &str)], http: u16) -> (Result<Code, StatusError>, Vec<u8>) {
        let mut r = StatusReader::default();
        r.start();
        if !fields.iter().any(|(n, _)| *n == "content-type") {
            r.field(b"content-type", b"application/grpc");
        }
        for (n, v) in fields {
            r.field(n.as_bytes(), v.as_bytes());
        }
        (r.finish(http), r.message().to_vec())
    }

    #[test]
    fn every_code_has_its_spec_name_both_ways() {
        for (i, c) in CODES.iter().enumerate() {
            assert_eq!(*c as usize, i);
            assert_eq!(Code::from_name(c.name()), Some(*c));
        }
        assert_eq!(Code::from_u32(14).name(), "UNAVAILABLE");
        assert_eq!(Code::from_u32(4).name(), "DEADLINE_EXCEEDED");
        assert_eq!(
            Code::from_u32(17),
            Code::Unknown,
            "an unknown number is UNKNOWN"
        );
        assert_eq!(Code::from_name("unavailable"), None);
    }

    #[test]
    fn status_comes_from_trailers_and_message_is_percent_decoded() {
        let (code, msg) = read(
            &[
                ("content-type", "application/grpc"),
                ("grpc-status", "5"),
                ("grpc-message", "user%2042 not found%20%E2%9C%93 100%"),
            ],
            200,
        );
        assert_eq!(code, Ok(Code::NotFound));
        assert_eq!(msg, "user 42 not found ✓ 100%".as_bytes());
    }

    #[test]
    fn a_trailers_only_response_carries_the_status_in_its_headers() {
        // The same reader sees headers and trailers alike: a trailers-only
        // response is one block with :status, content-type and grpc-status.
        let (code, _) = read(
            &[
                ("content-type", "application/grpc+proto"),
                ("grpc-status", "14"),
            ],
            200,
        );
        assert_eq!(code, Ok(Code::Unavailable));
    }

    #[test]
    fn no_grpc_status_is_missing_trailers() {
        assert_eq!(
            read(&[("content-type", "application/grpc")], 200).0,
            Err(StatusError::Missing)
        );
    }

    #[test]
    fn bad_status_values_and_non_grpc_responses_are_errors() {
        assert_eq!(
            read(&[("grpc-status", "x1")], 200).0,
            Err(StatusError::NotANumber)
        );
        assert_eq!(
            read(&[("grpc-status", "")], 200).0,
            Err(StatusError::NotANumber)
        );
        assert_eq!(
            read(&[("grpc-status", "99999999999")], 200).0,
            Err(StatusError::NotANumber)
        );
        assert_eq!(
            read(&[("grpc-status", "0")], 503).0,
            Err(StatusError::Http(503))
        );
        assert_eq!(
            read(&[("content-type", "text/html"), ("grpc-status", "0")], 200).0,
            Err(StatusError::ContentType)
        );
        let mut r = StatusReader::default();
        r.field(b"grpc-status", b"0");
        assert_eq!(
            r.finish(200),
            Err(StatusError::ContentType),
            "no content-type"
        );
    }

    #[test]
    fn a_long_message_is_cut_at_the_limit() {
        let long = "%41".repeat(MAX_MESSAGE * 2);
        let (_, msg) = read(&[("grpc-status", "2"), ("grpc-message", &long)], 200);
        assert_eq!(msg.len(), MAX_MESSAGE);
        assert!(msg.iter().all(|&b| b == b'A'));
    }

    #[test]
    fn grpc_encoding_other_than_identity_is_noted() {
        let mut r = StatusReader::default();
        r.field(b"grpc-encoding", b"identity");
        assert!(!r.encoding());
        r.field(b"grpc-encoding", b"gzip");
        assert!(r.encoding());
    }
}
