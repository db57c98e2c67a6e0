#![no_main]
//! Response framing on arbitrary server bytes (see userflux_engine::fuzzing::framing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| userflux_engine::fuzzing::framing(data));
