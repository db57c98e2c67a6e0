//! Reflection resolved against peers on 127.0.0.1 that misbehave: nothing
//! listening, silence, garbage, an endless stream. Each ends in a bounded
//! error naming what went wrong, never a hang or a panic. (A real grpcio
//! server with and without reflection is tests/grpc_reflection.rs'.)
