#![no_main]
//! A server reflection answer on arbitrary server bytes: the response and
//! file heads decoded, the files collected and built into a descriptor
//! pool (see userflux_engine::load::grpc::fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| userflux_engine::load::grpc::fuzzing::grpc_reflection(data));
