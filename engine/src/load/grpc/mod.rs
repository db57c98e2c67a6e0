//! gRPC calls, the sans-IO parts that sit on top of the HTTP/2 session
//! (`protocol::h2`): what a unary call sends and how its response is read.
//! Nothing here touches a socket or a clock.
//!
//! # Layout
//!
//! - [`compile`](mod@compile): `.proto` files → a [`Method`] (descriptors, `:path`),
//!   at prepare, with errors naming file and line, service or method.
//! - [`message`]: the config's JSON message (or JSON template) → protobuf,
//!   encoded once, or its fixed part once plus the templated fields
//!   ([`field`]) appended per request.
//! - [`request`]: the call's request header fields (`te: trailers`,
//!   `grpc-timeout`, metadata) for the h2 header encoder.
//! - [`frame`]: the 5-byte length prefix, and the bounded decoder of a
//!   response's DATA bytes.
//! - [`call`]: one unary response put together (fields, DATA, end of
//!   stream) into its status or its error kind ([`UnaryReader`]).
//! - [`status`]: `grpc-status` / `grpc-message` from trailers (or a
//!   trailers-only response), the codes and their names.
//! - [`response`]: a response message → JSON for checks and captures.
//! - [`reflection`]: server reflection's requests and answers, and the
//!   files it gives collected into a descriptor pool (the exchange itself
//!   is `plan::reflect`'s, when a run starts).
//! - [`fuzzing`]: the entry points of the `grpc_response` and
//!   `grpc_reflection` fuzz targets.

pub mod call;
pub mod compile;
pub mod field;
pub mod frame;
pub mod fuzzing;
pub mod message;
pub mod reflection;
pub mod request;
pub mod response;
pub mod status;

pub use call::{CallError, UnaryReader};
pub use compile::{Method, ProtoError, compile};
pub use frame::{DEFAULT_MAX_MESSAGE, Decoder, FrameError};
pub use message::{EncodeError, MessageError, MessageScratch, MessageTemplate};
pub use request::{METHOD, MetadataError, RequestHeaders};
pub use status::{CODES, Code, StatusError, StatusReader};
