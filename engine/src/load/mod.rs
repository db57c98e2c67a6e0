//! The load side: what sends requests and reads responses — the workers
//! (their loop, VU pool and policy), each connection and its I/O, its
//! transport (plain or TLS) and protocol session (HTTP/1.1 framing), flows,
//! the open-model schedule, timers, requests (rendered and templated), data
//! sets, captures and cookies, TLS configuration, and how a worker waits
//! for its sockets (`wait`: a short spin before it sleeps).

pub mod budget;
pub mod capture;
pub mod clock;
pub mod conn;
pub mod cookies;
pub mod counters;
pub mod data;
pub mod flow;
pub mod grpc;
pub mod link;
pub mod open;
pub mod protocol;
pub mod request;
pub mod template;
pub mod timer;
pub mod tls;
pub mod transport;
pub mod vu;
pub mod wait;
pub mod worker;
