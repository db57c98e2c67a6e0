//! HTTP/2 for the engine's event loops (RFC 9113, RFC 7541), as a sans-IO
//! client session: the connection hands it the bytes that arrived and gets
//! back completed responses, stream resets and connection events; it asks
//! it for the bytes to write. No socket, no clock of its own (the caller
//! passes `now`), no async runtime.
//!
//! # Layout
//!
//! - [`frame`]: the frame header and each frame type, parsed and written.
//! - [`huffman`], [`table`], [`hpack`]: HPACK decoding — Huffman strings,
//!   the static and dynamic tables, header blocks.
//! - [`encode`]: HPACK encoding of request headers, once per static
//!   request ([`RequestHead`]).
//! - [`session`]: the connection — preface, SETTINGS, flow control both
//!   ways, PING, GOAWAY — and [`stream`]: one request's response as it
//!   arrives (status, kept head and body, Server-Timing).
//! - [`error`]: the error codes and the counted error kinds.
//! - [`fuzzing`]: the entry points of the `hpack_decode` and `h2_session`
//!   fuzz targets.

pub mod encode;
pub mod error;
pub mod frame;
pub mod fuzzing;
pub mod hpack;
pub mod huffman;
pub mod session;
pub mod stream;
pub mod table;

#[cfg(test)]
mod nginx_test;

pub use encode::RequestHead;
pub use error::{ErrorCode, H2Error, ProtocolError};
pub use session::{Config, Event, OpenError, Session};
pub use stream::{Keep, Response};
