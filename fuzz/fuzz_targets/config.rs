#![no_main]
//! Config parsing, migration and validation on arbitrary bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| userflux_engine::fuzzing::config(data));
