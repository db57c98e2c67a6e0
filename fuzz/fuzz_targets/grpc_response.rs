#![no_main]
//! A gRPC response body on arbitrary server bytes: length-prefixed message
//! decoding and protobuf → JSON (see userflux_engine::load::grpc::fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| userflux_engine::load::grpc::fuzzing::grpc_response(data));
