//! The Userflux engine: a thread-per-core HTTP/1.1 load generator.
pub mod config;
pub mod duration;
pub mod framing;
pub mod plan;
pub mod rundir;
pub mod stats;
pub mod status;
pub mod summary;
pub mod timer;
pub mod url;
