//! One unary call's response as the HTTP/2 stream delivers it: header and
//! trailer fields, DATA bytes, then the end of the stream — put together
//! into the call's outcome: its gRPC status, or the error kind of a
//! response that is not a valid gRPC answer. This is the piece the h2
//! stream feeds; it allocates nothing once warm.
//!
//! A unary call answers exactly one message with `OK` (grpc-go's client
//! calls anything else a cardinality violation and fails the call as
//! INTERNAL; here it is an error kind of its own so it can be told apart
//! from a server's INTERNAL). A non-OK status may come with no message.

use super::frame::{Decoder, FrameError};
use super::status::{Code, StatusError, StatusReader};
use thiserror::Error;

/// A response that is no valid answer to a unary call: a failed request
/// of kind `grpc` whatever its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CallError {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Status(#[from] StatusError),
    /// OK with no message, or more than one message, for a unary call.
    #[error("a unary call answered OK with {0} messages")]
    Cardinality(u64),
}

/// Reads one unary response; reused stream after stream.
#[derive(Debug, Default)]
pub struct UnaryReader {
    status: StatusReader,
    decoder: Decoder,
    started_data: bool,
    /// The body is not gRPC's (see [`StatusReader::is_grpc`]): not decoded.
    skip: bool,
    keep: bool,
    message: Vec<u8>,
}

impl UnaryReader {
    /// A reader whose messages may be at most `max_message` bytes.
    pub fn new(max_message: usize) -> UnaryReader {
        UnaryReader {
            decoder: Decoder::new(max_message),
            ..UnaryReader::default()
        }
    }

    /// A new response; `keep` keeps the message for checks and captures.
    pub fn start(&mut self, keep: bool) {
        self.status.start();
        self.started_data = false;
        self.keep = keep;
        self.message.clear();
    }

    /// A field of the response's headers or trailers.
    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        self.status.field(name, value);
    }

    /// DATA bytes of the response, in any split. An error fails the call
    /// (the stream should be reset: the rest is of no use).
    pub fn data(&mut self, bytes: &[u8]) -> Result<(), CallError> {
        if !self.started_data {
            // Headers are complete before the first DATA.
            self.decoder.start(self.status.encoding());
            self.started_data = true;
            self.skip = !self.status.is_grpc();
        }
        if self.skip {
            return Ok(());
        }
        let (keep, message) = (self.keep, &mut self.message);
        self.decoder.feed(bytes, |m| {
            if keep && message.is_empty() {
                message.extend_from_slice(m);
            }
        })?;
        Ok(())
    }

    /// The stream ended (END_STREAM); `http_status` is its `:status`.
    pub fn finish(&mut self, http_status: u16) -> Result<Code, CallError> {
        let code = self.status.finish(http_status);
        if self.started_data && !self.skip {
            self.decoder.finish()?;
        }
        let code = code?;
        let n = if self.started_data {
            self.decoder.messages()
        } else {
            0
        };
        if code == Code::Ok && n != 1 {
            return Err(CallError::Cardinality(n));
        }
        Ok(code)
    }

    /// The response message (when kept): protobuf bytes for
    /// [`super::response::to_json`].
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The percent-decoded `grpc-message`.
    pub fn grpc_message(&self) -> &[u8] {
        self.status.message()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::grpc::frame::write_message;

    fn run(
        headers: &[(&str, &str)],
        data: &[&[u8]],
        trailers: &[(&str, &str)],
        http: u16,
    ) -> (Result<Code, CallError>, Vec<u8>) {
        let mut r = UnaryReader::new(1024);
        // Twice: the second response must not see the first's state.
        for _ in 0..2 {
            r.start(true);
            for (n, v) in headers {
                r.field(n.as_bytes(), v.as_bytes());
            }
            let mut failed = None;
            for d in data {
                if let Err(e) = r.data(d) {
                    failed = Some(e);
                    break;
                }
            }
            for (n, v) in trailers {
                r.field(n.as_bytes(), v.as_bytes());
            }
            if let Some(e) = failed {
                return (Err(e), Vec::new());
            }
            let out = (r.finish(http), r.message().to_vec());
            if out.0.is_err() {
                return out;
            }
        }
        (r.finish(http), r.message().to_vec())
    }

    const GRPC: (&str, &str) = ("content-type", "application/grpc");

    #[test]
    fn an_ok_call_has_one_message_and_a_status_in_trailers() {
        let mut body = Vec::new();
        write_message(&mut body, b"\x12\x02py");
        let (code, msg) = run(
            &[GRPC],
            &[&body[..3], &body[3..]],
            &[("grpc-status", "0")],
            200,
        );
        assert_eq!(code, Ok(Code::Ok));
        assert_eq!(msg, b"\x12\x02py");
    }

    #[test]
    fn a_trailers_only_error_is_its_code() {
        let (code, msg) = run(
            &[GRPC, ("grpc-status", "4"), ("grpc-message", "late")],
            &[],
            &[],
            200,
        );
        assert_eq!(code, Ok(Code::DeadlineExceeded));
        assert!(msg.is_empty());
    }

    #[test]
    fn malformed_responses_are_error_kinds() {
        let mut two = Vec::new();
        write_message(&mut two, b"a");
        write_message(&mut two, b"b");
        let ok = [("grpc-status", "0")];
        assert_eq!(
            run(&[GRPC], &[&two], &ok, 200).0,
            Err(CallError::Cardinality(2))
        );
        assert_eq!(
            run(&[GRPC], &[], &ok, 200).0,
            Err(CallError::Cardinality(0))
        );
        assert_eq!(
            run(&[GRPC], &[b"\x00\x00\x00\x00\x05ab"], &ok, 200).0,
            Err(CallError::Frame(FrameError::Truncated {
                have: 7,
                want: 10
            }))
        );
        assert_eq!(
            run(&[GRPC], &[b"\x01\x00\x00\x00\x01a"], &ok, 200).0,
            Err(CallError::Frame(FrameError::CompressedWithoutEncoding))
        );
        assert_eq!(
            run(&[GRPC], &[b"\x00\x00\x00\x04\x01"], &ok, 200).0,
            Err(CallError::Frame(FrameError::TooLarge {
                len: 1025,
                max: 1024
            }))
        );
        let mut one = Vec::new();
        write_message(&mut one, b"a");
        assert_eq!(
            run(&[GRPC], &[&one], &[], 200).0,
            Err(CallError::Status(StatusError::Missing)),
            "trailers missing"
        );
        assert_eq!(
            run(&[("content-type", "text/html")], &[b"<html>"], &[], 502).0,
            Err(CallError::Status(StatusError::Http(502)))
        );
    }
}
