#![no_main]
//! A validated config builds a plan, and a short run of it ends (issue #21).
libfuzzer_sys::fuzz_target!(|data: &[u8]| userflux_engine::fuzzing::plan(data));
