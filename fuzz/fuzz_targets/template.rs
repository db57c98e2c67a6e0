#![no_main]
//! Template parsing and rendering on arbitrary text.
libfuzzer_sys::fuzz_target!(|data: &[u8]| userflux_engine::fuzzing::template(data));
