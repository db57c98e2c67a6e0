//! Compiles the demo services' `.proto` files (gateway/proto/) into Rust
//! with `protox` (a protobuf compiler in Rust) and tonic's code generator,
//! so a fresh machine needs no `protoc` (issue #31: `make demo` on a fresh
//! machine in under 5 minutes, nothing to install).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "auth",
        "users",
        "catalog",
        "pricing",
        "inventory",
        "payments",
        "carts",
    ]
    .map(|s| format!("proto/{s}.proto"));
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(&protos, ["proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
