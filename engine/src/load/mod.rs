//! The load side: what sends requests and reads responses — the workers
//! and each connection's life, the open-model schedule, timers, framing,
//! requests (rendered and templated), data sets, captures and cookies, TLS.

pub mod budget;
pub mod capture;
pub mod clock;
pub mod cookies;
pub mod data;
pub mod framing;
pub mod grpc;
pub mod open;
pub mod request;
pub mod template;
pub mod timer;
pub mod tls;
pub mod vu;
pub mod worker;
