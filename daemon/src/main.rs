//! `userfluxd`: the Userflux orchestrator. It takes runs over HTTP/JSON on a
//! Unix socket (mode 0600), keeps each in `runs/<run_id>/`, runs them one at
//! a time through `userflux-engine`, and reconciles what it finds on disk
//! when it starts. See `api.rs` for the routes. With `--http ADDR` it also
//! serves the live dashboard over TCP.
//!
//! # Layout
//!
//! - `http.rs`: one bounded HTTP/1.1 request per connection.
//! - `api.rs`: the routes.
//! - `runs.rs`: the queue, the engine child, recovery.
//! - `steer.rs`: VU changes to a running engine (`control.ndjson`), a run's report.
//! - `tcp.rs`: the dashboard's listener; `auth.rs` who may do what over it;
//!   `sse.rs` a run's event stream; `page.rs` the embedded page and assets.

mod api;
mod auth;
mod http;
mod page;
mod runs;
mod sse;
mod steer;
mod tcp;

use anyhow::{Context as _, bail};
use clap::Parser;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Connections served at once; more get 503 until one ends.
const MAX_CONNECTIONS: usize = 64;

#[derive(Parser)]
#[command(
    name = "userfluxd",
    version,
    about = "Userflux orchestrator: runs load tests through userflux-engine"
)]
struct Cli {
    /// Where runs are kept (created 0700 if missing).
    #[arg(long, default_value = "runs")]
    runs_dir: PathBuf,
    /// The API socket; default RUNS_DIR/userfluxd.sock.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// The engine binary; default: userflux-engine next to this binary.
    #[arg(long)]
    engine: Option<PathBuf>,
    /// Also serve the API, the live dashboard (at /) and event streams over
    /// TCP on this address (loopback; port 0 picks one). Routes that change
    /// anything need the token written to RUNS_DIR/dashboard.token.
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// Allow --http on a non-loopback address; every route then needs the token.
    #[arg(long, requires = "http")]
    http_public: bool,
}

fn main() -> std::process::ExitCode {
    match serve(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("userfluxd: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn serve(cli: Cli) -> anyhow::Result<()> {
    runs::create_private_dir(&cli.runs_dir)
        .with_context(|| format!("cannot create {}", cli.runs_dir.display()))?;
    let socket = cli
        .socket
        .clone()
        .unwrap_or_else(|| cli.runs_dir.join("userfluxd.sock"));
    let engine = match cli.engine {
        Some(e) => e,
        None => std::env::current_exe()?.with_file_name("userflux-engine"),
    };
    if !engine.exists() {
        bail!(
            "the engine {} does not exist (build it with `cargo build --workspace`)",
            engine.display()
        );
    }
    let Some(_lock) = runs::lock_runs_dir(&cli.runs_dir)? else {
        bail!(
            "another userfluxd is already serving {} (its lock is held); stop it first",
            cli.runs_dir.display()
        );
    };
    if socket.exists() {
        if UnixStream::connect(&socket).is_ok() {
            bail!(
                "another userfluxd is already listening on {}",
                socket.display()
            );
        }
        std::fs::remove_file(&socket)
            .with_context(|| format!("cannot remove the stale socket {}", socket.display()))?;
    }
    // Reconcile runs/ before the socket exists: a client that can connect
    // sees every run's recovered state (a run whose engine died reads
    // `failed`, never a stale `running`). With the bind first, a client
    // connecting in between read `running` — the flaky
    // `a_restarted_daemon_adopts…` test of sessions 1–3.
    let manager = runs::Manager::new(cli.runs_dir.clone(), engine);
    for note in manager.recover() {
        eprintln!("userfluxd: recovered {note}");
    }
    // 0600 from the first instant: no window where others could connect.
    let listener = userflux_engine::sys::with_umask(0o177, || UnixListener::bind(&socket))
        .with_context(|| format!("cannot listen on {}", socket.display()))?;
    let dashboard = match cli.http {
        Some(addr) => Some(tcp::Dashboard::bind(addr, cli.http_public, &cli.runs_dir)?),
        None => None,
    };
    let supervisor = {
        let m = Arc::clone(&manager);
        std::thread::Builder::new()
            .name("userfluxd-supervisor".into())
            .spawn(move || m.supervise())?
    };
    eprintln!(
        "userfluxd: listening on {} (runs in {})",
        socket.display(),
        cli.runs_dir.display()
    );
    let open = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    if let Some(d) = dashboard {
        let url = format!("http://{}/", d.addr);
        eprintln!(
            "userfluxd: dashboard on {url} (token in {})",
            cli.runs_dir.join(auth::TOKEN_FILE).display()
        );
        let _ = manager.dashboard.set(url);
        let (m, done, wake) = (Arc::clone(&manager), Arc::clone(&done), socket.clone());
        std::thread::Builder::new()
            .name("userfluxd-http".into())
            .spawn(move || d.serve(m, done, wake))?;
    }
    for conn in listener.incoming() {
        if done.load(Ordering::Relaxed) {
            break;
        }
        let Ok(mut stream) = conn else { continue };
        if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            let r = http::Response::error(503, "busy", "too many connections; try again");
            let _ = http::write_response(&mut stream, &r);
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (m, open, done, socket) = (
            Arc::clone(&manager),
            Arc::clone(&open),
            Arc::clone(&done),
            socket.clone(),
        );
        std::thread::spawn(move || {
            let after = match http::read_request(&mut stream) {
                Ok(req) => {
                    let (resp, after) = api::handle(&m, &req);
                    let _ = http::write_response(&mut stream, &resp);
                    after
                }
                Err(resp) => {
                    let _ = http::write_response(&mut stream, &resp);
                    api::After::Continue
                }
            };
            open.fetch_sub(1, Ordering::Relaxed);
            if matches!(after, api::After::Shutdown) {
                done.store(true, Ordering::Relaxed);
                // Wake the accept loop so it sees the flag.
                let _ = UnixStream::connect(&socket);
            }
        });
    }
    eprintln!("userfluxd: shutting down: waiting for the active run to stop");
    let _ = supervisor.join();
    let _ = std::fs::remove_file(&socket);
    eprintln!("userfluxd: stopped");
    Ok(())
}
