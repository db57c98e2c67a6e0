//! What can go wrong on an HTTP/2 connection, typed: the RFC 9113 error
//! codes a peer sends (RST_STREAM, GOAWAY) and the ones we send, and the
//! three error kinds the engine counts for a request that did not get a
//! response — `h2_reset` (with the code's name), `h2_goaway` and `protocol`.

use std::fmt;

/// An RFC 9113 §7 error code. Codes this side does not know are kept as
/// numbers (`Other`): a peer may send any 32-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    NoError,
    ProtocolError,
    InternalError,
    FlowControlError,
    SettingsTimeout,
    StreamClosed,
    FrameSizeError,
    RefusedStream,
    Cancel,
    CompressionError,
    ConnectError,
    EnhanceYourCalm,
    InadequateSecurity,
    Http11Required,
    Other(u32),
}

impl ErrorCode {
    pub fn from_u32(v: u32) -> ErrorCode {
        match v {
            0x0 => ErrorCode::NoError,
            0x1 => ErrorCode::ProtocolError,
            0x2 => ErrorCode::InternalError,
            0x3 => ErrorCode::FlowControlError,
            0x4 => ErrorCode::SettingsTimeout,
            0x5 => ErrorCode::StreamClosed,
            0x6 => ErrorCode::FrameSizeError,
            0x7 => ErrorCode::RefusedStream,
            0x8 => ErrorCode::Cancel,
            0x9 => ErrorCode::CompressionError,
            0xa => ErrorCode::ConnectError,
            0xb => ErrorCode::EnhanceYourCalm,
            0xc => ErrorCode::InadequateSecurity,
            0xd => ErrorCode::Http11Required,
            v => ErrorCode::Other(v),
        }
    }

    pub fn to_u32(self) -> u32 {
        match self {
            ErrorCode::NoError => 0x0,
            ErrorCode::ProtocolError => 0x1,
            ErrorCode::InternalError => 0x2,
            ErrorCode::FlowControlError => 0x3,
            ErrorCode::SettingsTimeout => 0x4,
            ErrorCode::StreamClosed => 0x5,
            ErrorCode::FrameSizeError => 0x6,
            ErrorCode::RefusedStream => 0x7,
            ErrorCode::Cancel => 0x8,
            ErrorCode::CompressionError => 0x9,
            ErrorCode::ConnectError => 0xa,
            ErrorCode::EnhanceYourCalm => 0xb,
            ErrorCode::InadequateSecurity => 0xc,
            ErrorCode::Http11Required => 0xd,
            ErrorCode::Other(v) => v,
        }
    }

    /// The code's name as RFC 9113 writes it (`REFUSED_STREAM`); an
    /// unknown code is `UNKNOWN` (its number is in `Debug`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::NoError => "NO_ERROR",
            ErrorCode::ProtocolError => "PROTOCOL_ERROR",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::FlowControlError => "FLOW_CONTROL_ERROR",
            ErrorCode::SettingsTimeout => "SETTINGS_TIMEOUT",
            ErrorCode::StreamClosed => "STREAM_CLOSED",
            ErrorCode::FrameSizeError => "FRAME_SIZE_ERROR",
            ErrorCode::RefusedStream => "REFUSED_STREAM",
            ErrorCode::Cancel => "CANCEL",
            ErrorCode::CompressionError => "COMPRESSION_ERROR",
            ErrorCode::ConnectError => "CONNECT_ERROR",
            ErrorCode::EnhanceYourCalm => "ENHANCE_YOUR_CALM",
            ErrorCode::InadequateSecurity => "INADEQUATE_SECURITY",
            ErrorCode::Http11Required => "HTTP_1_1_REQUIRED",
            ErrorCode::Other(_) => "UNKNOWN",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Other(v) => write!(f, "error code {v:#x}"),
            c => f.write_str(c.name()),
        }
    }
}

/// Why this side ended a connection (a connection error, RFC 9113 §5.4.1)
/// or one stream (a malformed response, §8.1.1). Each is counted as a
/// `protocol` error; the session sends the peer the matching
/// [`ProtocolError::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// A frame longer than our SETTINGS_MAX_FRAME_SIZE, or a frame whose
    /// length does not fit its type (a 7-byte PING, a short SETTINGS).
    FrameSize(&'static str),
    /// A frame the protocol does not allow here (its stream, flags or
    /// contents).
    BadFrame(&'static str),
    /// The server's bytes did not start with a SETTINGS frame.
    NoSettingsFirst,
    /// The header block does not decode (RFC 7541).
    Hpack(super::hpack::HpackError),
    /// The decoded header list is over the SETTINGS_MAX_HEADER_LIST_SIZE
    /// we advertised.
    HeaderListTooLarge,
    /// HEADERS + CONTINUATION bytes over our bound (a header block we
    /// refuse to buffer), or too many CONTINUATION frames.
    HeaderBlockTooLarge,
    /// The server pushed (PUSH_PROMISE) though we sent ENABLE_PUSH=0.
    PushPromise,
    /// The server sent more DATA than our window allows, or opened a
    /// window past 2^31-1.
    FlowControl,
    /// A response that breaks RFC 9113 §8.1: no `:status`, a request
    /// pseudo-header, a connection-specific field, an upper-case name,
    /// a content-length that DATA does not match, trailers without
    /// END_STREAM.
    Malformed(&'static str),
}

impl ProtocolError {
    /// The code this side sends with its GOAWAY or RST_STREAM.
    pub fn code(self) -> ErrorCode {
        match self {
            ProtocolError::FrameSize(_) => ErrorCode::FrameSizeError,
            ProtocolError::Hpack(_) => ErrorCode::CompressionError,
            ProtocolError::FlowControl => ErrorCode::FlowControlError,
            ProtocolError::HeaderBlockTooLarge | ProtocolError::HeaderListTooLarge => {
                ErrorCode::EnhanceYourCalm
            }
            _ => ErrorCode::ProtocolError,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::FrameSize(why) => write!(f, "bad frame size: {why}"),
            ProtocolError::BadFrame(why) => write!(f, "bad frame: {why}"),
            ProtocolError::NoSettingsFirst => {
                write!(f, "the server did not start with SETTINGS (not HTTP/2?)")
            }
            ProtocolError::Hpack(e) => write!(f, "bad header block: {e}"),
            ProtocolError::HeaderListTooLarge => write!(
                f,
                "response header list over SETTINGS_MAX_HEADER_LIST_SIZE ({} bytes)",
                super::session::MAX_HEADER_LIST
            ),
            ProtocolError::HeaderBlockTooLarge => write!(
                f,
                "header block over {} bytes or {} CONTINUATION frames",
                super::session::MAX_HEADER_BLOCK,
                super::session::MAX_CONTINUATIONS
            ),
            ProtocolError::PushPromise => write!(f, "PUSH_PROMISE though push is disabled"),
            ProtocolError::FlowControl => write!(f, "flow-control window violated"),
            ProtocolError::Malformed(why) => write!(f, "malformed response: {why}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why one request got no response: the error kinds the engine counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H2Error {
    /// The server reset the stream (RST_STREAM) with this code.
    Reset(ErrorCode),
    /// The server sent GOAWAY with this code and then closed the
    /// connection before the stream's response ended (streams above the
    /// GOAWAY's last-stream-id are not errors: they are retried).
    GoAway(ErrorCode),
    /// This side found the connection or the response broken.
    Protocol(ProtocolError),
}

impl H2Error {
    /// The counted error kind's name: `h2_reset`, `h2_goaway`, `protocol`.
    pub fn kind(&self) -> &'static str {
        match self {
            H2Error::Reset(_) => "h2_reset",
            H2Error::GoAway(_) => "h2_goaway",
            H2Error::Protocol(_) => "protocol",
        }
    }
}

impl fmt::Display for H2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            H2Error::Reset(c) => write!(f, "stream reset by the server: {c}"),
            H2Error::GoAway(c) => write!(f, "connection going away: {c}"),
            H2Error::Protocol(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for H2Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_have_names() {
        for v in 0..=0xe {
            let c = ErrorCode::from_u32(v);
            assert_eq!(c.to_u32(), v);
        }
        assert_eq!(ErrorCode::from_u32(7).name(), "REFUSED_STREAM");
        assert_eq!(ErrorCode::from_u32(0x77).to_string(), "error code 0x77");
        assert_eq!(H2Error::Reset(ErrorCode::Cancel).kind(), "h2_reset");
        assert_eq!(
            H2Error::Protocol(ProtocolError::PushPromise).kind(),
            "protocol"
        );
        assert_eq!(
            ProtocolError::FrameSize("x").code(),
            ErrorCode::FrameSizeError
        );
    }
}
