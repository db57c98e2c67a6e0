#![no_main]
//! A validated config, endpoints and flows alike, builds a plan, and a
//! short run of it ends (issues #21, #27).
libfuzzer_sys::fuzz_target!(|data: &[u8]| userflux_engine::fuzzing::plan(data));
