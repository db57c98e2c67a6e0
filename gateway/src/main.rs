//! `userflux-gateway`: a stand-in for the system under test. An HTTP
//! keep-alive server (HTTP/1.1, and HTTP/2 on the same port: h2c with prior
//! knowledge, h2 by ALPN over TLS) whose routes simulate fan-out to
//! downstream services with configured latency, error rate and capacity.
//! Prints `listening on ADDR` once it accepts connections, so `--listen
//! 127.0.0.1:0` works for tests, and the protocols it serves on stderr.
//!
//! # Layout
//! - `routes.rs`: the routes file (parsing, validation, the defaults).
//! - `fanout.rs`: the routes at work — services, capacity, timers, logins,
//!   counters — whichever protocol asked.
//! - `server.rs`: the event loop and the HTTP/1.1 door (plain and TLS),
//!   which tells HTTP/2 connections by their first bytes and hands them on.
//! - `http2.rs`: the HTTP/2 door, on its own thread.
//! - `tls.rs`: certificates and the TLS configuration.

mod fanout;
mod http2;
mod routes;
mod server;
mod tls;

use anyhow::Context as _;
use clap::Parser;
use std::io::Write as _;
use std::path::PathBuf;

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
    let h2 = if cli.http1_only {
        None
    } else {
        let waker = server::Server::waker(&poll)?;
        Some(http2::start(tls.clone(), waker).context("the HTTP/2 thread")?)
    };
    let mut server = server::Server::new(listener, routes, cli.seed, tls, h2, poll)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    let protocols = match (scheme, cli.http1_only) {
        ("https", false) => "h2 and HTTP/1.1, by ALPN",
        ("https", true) | (_, true) => "HTTP/1.1 only",
        _ => "HTTP/1.1, and h2c with prior knowledge",
    };
    eprintln!("userflux-gateway: serving {scheme}://{addr} ({protocols})");
    out.flush()?;
    drop(out);
    server.serve().context("the event loop failed")
}
