#![no_main]
//! HPACK header blocks from a server (see userflux_engine::load::protocol::h2::fuzzing::hpack_decode).
libfuzzer_sys::fuzz_target!(|data: &[u8]| userflux_engine::load::protocol::h2::fuzzing::hpack_decode(data));
