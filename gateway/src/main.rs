//! `userflux-gateway`: a stand-in for the system under test. An HTTP/1.1
//! keep-alive server whose routes simulate fan-out to downstream services
//! with configured latency, error rate and capacity. Prints
//! `listening on ADDR` once it accepts connections, so `--listen
//! 127.0.0.1:0` works for tests.

mod routes;
mod server;

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
    let listener = mio::net::TcpListener::bind(cli.listen)
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let addr = listener.local_addr()?;
    let mut server = server::Server::new(listener, routes, cli.seed)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()?;
    drop(out);
    server.serve().context("the event loop failed")
}
