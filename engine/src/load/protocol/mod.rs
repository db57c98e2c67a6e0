//! Wire protocols as sans-IO sessions: bytes in → completed responses out,
//! requests in → bytes out; a session never touches the socket.

pub mod h2;
