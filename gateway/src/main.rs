//! `userflux-gateway`: a stand-in for the system under test. An HTTP
//! keep-alive server (HTTP/1.1, and HTTP/2 on the same port: h2c with prior
//! knowledge, h2 by ALPN over TLS) whose routes simulate fan-out to
//! downstream services with configured latency, error rate and capacity.
//! Prints `listening on ADDR` once it accepts connections, so `--listen
//! 127.0.0.1:0` works for tests, and the protocols it serves on stderr.
//!
//! The pieces are in the crate's library (`lib.rs`, `# Layout`).

use anyhow::Context as _;
use clap::Parser;
use std::io::Write as _;
use std::path::PathBuf;
use userflux_engine::duration::Dur;
use userflux_gateway::{fanout, grpc, http2, routes, server, tls};

#[derive(Parser)]
#[command(
    name = "userflux-gateway",
    version,
    about = "Simulated HTTP gateway for load tests"
)]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Routes file (JSON); default: /health, /api/users, /api/products, /api/orders.
    #[arg(long)]
    routes: Option<PathBuf>,
    /// Seed for the simulated failures (same seed, same failures).
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Print the routes in use (the defaults when no file is given) and exit.
    #[arg(long)]
    print_routes: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a CA and a certificate for 127.0.0.1/localhost made
    /// now, written to DIR (ca.pem to trust, cert.pem, key.pem, and a
    /// client certificate client.pem/client-key.pem signed by the same CA).
    #[arg(long, value_name = "DIR")]
    tls_self_signed: Option<PathBuf>,
    /// Require client certificates signed by the CA(s) in this PEM file.
    #[arg(long, value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,
    /// Speak TLS 1.2 only (a server that cannot do 1.3).
    #[arg(long)]
    tls12_only: bool,
    /// Serve HTTP/1.1 only: no h2c, no ALPN `h2` (a server that cannot do
    /// HTTP/2).
    #[arg(long)]
    http1_only: bool,
    /// Call the downstream services over gRPC at ADDR (`userflux-services`)
    /// instead of simulating them here.
    #[arg(long, value_name = "ADDR")]
    grpc: Option<std::net::SocketAddr>,
    /// With --grpc: each call's deadline; a call past it fails
    /// (DEADLINE_EXCEEDED) and the request answers 503.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = Dur::parse, requires = "grpc")]
    grpc_deadline: Dur,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let routes = match &cli.routes {
        None => routes::RoutesFile::default_routes(),
        Some(path) => {
            let loaded = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|text| routes::RoutesFile::from_json(&text));
            match loaded {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("userflux-gateway: {}: {e}", path.display());
                    return std::process::ExitCode::from(2);
                }
            }
        }
    };
    if cli.grpc.is_some()
        && cli.routes.is_some()
        && let Err(e) = routes.check_for_grpc()
    {
        eprintln!(
            "userflux-gateway: {}: {e}",
            cli.routes.as_ref().expect("given").display()
        );
        return std::process::ExitCode::from(2);
    }
    if cli.print_routes {
        println!(
            "{}",
            serde_json::to_string_pretty(&routes).expect("routes serialize")
        );
        return std::process::ExitCode::SUCCESS;
    }
    match serve(&cli, &routes) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("userflux-gateway: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn serve(cli: &Cli, routes: &routes::RoutesFile) -> anyhow::Result<()> {
    let identity = match (&cli.tls_cert, &cli.tls_key, &cli.tls_self_signed) {
        (Some(cert), Some(key), _) => Some(tls::from_files(cert, key)?),
        (_, _, Some(dir)) => Some(
            tls::self_signed(dir)
                .with_context(|| format!("cannot write the certificates to {}", dir.display()))?,
        ),
        _ => None,
    };
    anyhow::ensure!(
        identity.is_some() || (cli.tls_client_ca.is_none() && !cli.tls12_only),
        "--tls-client-ca and --tls12-only need HTTPS (--tls-cert/--tls-key or --tls-self-signed)"
    );
    let tls = identity
        .map(|(chain, key)| {
            tls::server_config(chain, key, cli.tls_client_ca.as_deref(), cli.tls12_only)
        })
        .transpose()
        .context("the TLS configuration")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = mio::net::TcpListener::bind(cli.listen)
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let addr = listener.local_addr()?;
    let poll = mio::Poll::new()?;
    let mut fanout = fanout::Fanout::new(routes, cli.seed);
    // The door's thread serves HTTP/2 and makes the gRPC calls.
    let (door, from_thread) = if cli.http1_only && cli.grpc.is_none() {
        (None, None)
    } else {
        let waker = server::Server::waker(&poll)?;
        let (door, from_thread, bridge) =
            http2::start(tls.clone(), waker).context("the HTTP/2 thread")?;
        if let Some(at) = cli.grpc {
            let calls = grpc::Calls::new(at, cli.grpc_deadline.0, bridge)
                .map_err(|e| anyhow::anyhow!(e))?;
            fanout
                .use_grpc(calls)
                .map_err(|e| anyhow::anyhow!("--grpc: {e}"))?;
        }
        ((!cli.http1_only).then_some(door), Some(from_thread))
    };
    let mut server = server::Server::new(listener, fanout, tls, door, from_thread, poll)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    let protocols = match (scheme, cli.http1_only) {
        ("https", false) => "h2 and HTTP/1.1, by ALPN",
        ("https", true) | (_, true) => "HTTP/1.1 only",
        _ => "HTTP/1.1, and h2c with prior knowledge",
    };
    eprintln!("userflux-gateway: serving {scheme}://{addr} ({protocols})");
    if let Some(at) = cli.grpc {
        eprintln!(
            "userflux-gateway: calling its services over gRPC at {at} (deadline {})",
            cli.grpc_deadline
        );
    }
    out.flush()?;
    drop(out);
    server.serve().context("the event loop failed")
}
