//! The demo gateway (`userflux-gateway`) and its downstream services
//! (`userflux-services`): a stand-in for the system under test, an HTTP
//! gateway that fans out to services.
//!
//! # Layout
//! - `routes.rs`: the routes file (parsing, validation, the defaults).
//! - `fanout.rs`: the routes at work — services, capacity, timers, logins,
//!   counters — whichever protocol asked; calls simulated on timers, or
//!   made over gRPC (`--grpc`).
//! - `server.rs`: the event loop and the HTTP/1.1 door (plain and TLS),
//!   which tells HTTP/2 connections by their first bytes and hands them on.
//! - `http2.rs`: the HTTP/2 door, on its own thread (a tokio runtime that
//!   also makes the gRPC calls).
//! - `grpc.rs`: the services' protobuf messages and tonic stubs (from
//!   `proto/*.proto`), their behaviour, the gateway's calls to them.
//! - `tls.rs`: certificates and the TLS configuration.

pub mod fanout;
pub mod grpc;
pub mod http2;
pub mod routes;
pub mod server;
pub mod tls;
