//! The Userflux engine: a thread-per-core HTTP/1.1 load generator.
pub mod config;
pub mod duration;
pub mod framing;
pub mod plan;
pub mod url;
