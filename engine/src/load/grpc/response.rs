//! A response message decoded for checks and captures: protobuf bytes →
//! a `prost-reflect` dynamic message (prost's decoder, nesting limited to
//! 100 levels) → JSON text by the protobuf JSON mapping, which a check's
//! JSON pointer or a capture reads like any JSON body.
//!
//! Bounded twice: the message is at most the decoder's `max_message`
//! ([`super::frame::DEFAULT_MAX_MESSAGE`]) and the JSON written is cut off
//! with an error past `max_json`, as a kept HTTP body is past its limit.
//! Only responses a check or capture reads are decoded: the others are
//! counted and dropped.

use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use thiserror::Error;

/// Why a response message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("response is not a valid {message}: {why}")]
    Protobuf { message: String, why: String },
    #[error("response as JSON is over the {0}-byte limit")]
    TooLarge(usize),
}

/// A writer that refuses bytes past its limit.
struct Limited<'a> {
    out: &'a mut Vec<u8>,
    left: usize,
}

impl std::io::Write for Limited<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.left {
            return Err(std::io::Error::other("limit"));
        }
        self.left -= buf.len();
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decodes `bytes` as `desc` and writes its JSON form into `out` (cleared
/// first), at most `max_json` bytes: protobuf's canonical JSON (as k6 and
/// grpcurl show a reply) — field names are the JSON names (`userId`),
/// 64-bit integers strings, enums their names, bytes base64 — except that
/// fields at their default value (0, "", false, [], {}) are written, not
/// left out: a check `{"json": "/count", "exists": true}` must hold when
/// the count is 0 (a first user's check "has id" failed on id 0). A
/// message field, `optional` or oneof member that is not set stays out.
pub fn to_json(
    desc: &MessageDescriptor,
    bytes: &[u8],
    max_json: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    out.clear();
    let msg = DynamicMessage::decode(desc.clone(), bytes).map_err(|e| DecodeError::Protobuf {
        message: desc.full_name().to_string(),
        why: e.to_string(),
    })?;
    let mut ser = serde_json::Serializer::new(Limited {
        out,
        left: max_json,
    });
    let options = SerializeOptions::new().skip_default_fields(false);
    msg.serialize_with_options(&mut ser, &options)
        .map_err(|_| DecodeError::TooLarge(max_json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::grpc::compile::tests::echo;
    use crate::load::grpc::message::encode_json;

    #[test]
    fn a_reply_decodes_to_the_json_a_pointer_reads() {
        let out_desc = echo("echo.Echo/Say").output();
        let bytes = encode_json(
            &out_desc,
            br#"{"echo": {"text": "hi", "user": {"id": "42"}, "mood": "HAPPY", "blob": "AAEC"}, "seen": 7}"#,
        )
        .unwrap();
        let mut json = Vec::new();
        to_json(&out_desc, &bytes, 1 << 20, &mut json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v.pointer("/echo/text").unwrap(), "hi");
        assert_eq!(
            v.pointer("/echo/user/id").unwrap(),
            "42",
            "int64 is a JSON string"
        );
        assert_eq!(v.pointer("/echo/mood").unwrap(), "HAPPY");
        assert_eq!(v.pointer("/echo/blob").unwrap(), "AAEC");
        assert_eq!(v.pointer("/seen").unwrap(), "7");
    }

    /// Fields at their default value are written, so a check that a field
    /// exists holds when it is 0, "" or false; unset message fields stay out.
    #[test]
    fn defaults_are_written_so_exists_holds_for_zero() {
        let out_desc = echo("echo.Echo/Say").output();
        let bytes = encode_json(&out_desc, br#"{"echo": {"text": "hi"}}"#).unwrap();
        let mut json = Vec::new();
        to_json(&out_desc, &bytes, 1 << 20, &mut json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v.pointer("/seen").unwrap(), "0", "{v}");
        assert_eq!(v.pointer("/server").unwrap(), "", "{v}");
        assert_eq!(v.pointer("/echo/count").unwrap(), 0, "{v}");
        assert_eq!(v.pointer("/echo/mood").unwrap(), "MOOD_UNSPECIFIED", "{v}");
        assert_eq!(v.pointer("/echo/user"), None, "an unset message: {v}");
    }

    #[test]
    fn garbage_is_an_error_naming_the_message_and_json_is_bounded() {
        let out_desc = echo("echo.Echo/Say").output();
        let e = to_json(&out_desc, b"\x0a\xff\xff", 1 << 20, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(&e, DecodeError::Protobuf { message, .. } if message == "echo.SayReply"),
            "{e}"
        );
        let bytes = encode_json(&out_desc, br#"{"server": "a-long-server-name"}"#).unwrap();
        let mut json = Vec::new();
        assert_eq!(
            to_json(&out_desc, &bytes, 10, &mut json),
            Err(DecodeError::TooLarge(10))
        );
        assert!(json.len() <= 10);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let out_desc = echo("echo.Echo/Say").output();
        // Start-group tags of an unknown field (15), 100,000 deep: the
        // input of protobuf's own uncontrolled-recursion advisories
        // (CVE-2024-7254, RUSTSEC-2024-0437).
        let deep = vec![0x7bu8; 100_000];
        assert!(to_json(&out_desc, &deep, 1 << 20, &mut Vec::new()).is_err());
        // SayReply.echo is a SayRequest; SayRequest.user a User: known
        // fields nest only two deep, so go through field 1 of an unknown
        // length-delimited chain instead — decoded as bytes, not recursed.
        let mut bytes: Vec<u8> = Vec::new();
        for _ in 0..1000 {
            let mut outer = vec![0xa2, 0x06]; // field 100, length-delimited
            crate::load::grpc::field::varint(&mut outer, bytes.len() as u64);
            outer.extend_from_slice(&bytes);
            bytes = outer;
        }
        to_json(&out_desc, &bytes, 1 << 20, &mut Vec::new()).unwrap();
    }
}
