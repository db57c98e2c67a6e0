#![no_main]
//! An HTTP/2 session fed arbitrary server bytes (see userflux_engine::load::protocol::h2::fuzzing::h2_session).
libfuzzer_sys::fuzz_target!(|data: &[u8]| userflux_engine::load::protocol::h2::fuzzing::h2_session(data));
