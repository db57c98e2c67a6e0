//! The dashboard's listener: opt-in (`userfluxd --http 127.0.0.1:PORT`),
//! loopback unless `--http-public` says otherwise. It serves the same
//! `/v1/…` API as the Unix socket (through `api::handle`), plus the page at
//! `/`, its assets under `/assets/`, and each run's event stream at
//! `GET /v1/runs/{id}/events` (`sse.rs`). Every request passes the guard
//! first (`auth.rs`: token and `Origin` for anything that changes state).
//! One request per connection, a thread each, as on the socket; event
//! streams have their own, smaller, limit.

use crate::api::{self, After};
use crate::auth::Guard;
use crate::http::{self, Response};
use crate::runs::Manager;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use userflux_engine::rundir::is_run_id;

/// Requests served at once over TCP (event streams not counted).
const MAX_CONNECTIONS: usize = 64;

pub struct Dashboard {
    pub listener: TcpListener,
    pub addr: SocketAddr,
    pub guard: Guard,
}

impl Dashboard {
    /// Binds `addr`; a non-loopback address needs `public`.
    pub fn bind(
        addr: SocketAddr,
        public: bool,
        runs_dir: &std::path::Path,
    ) -> anyhow::Result<Dashboard> {
        use anyhow::Context as _;
        if !addr.ip().is_loopback() && !public {
            anyhow::bail!(
                "--http {addr}: not a loopback address; the dashboard can steer runs, so binding it to a network needs --http-public (every route then needs the token)"
            );
        }
        let listener =
            TcpListener::bind(addr).with_context(|| format!("cannot listen on --http {addr}"))?;
        let addr = listener.local_addr()?;
        let guard = Guard::new(runs_dir, addr, !addr.ip().is_loopback())
            .context("cannot write the dashboard's token")?;
        Ok(Dashboard {
            listener,
            addr,
            guard,
        })
    }

    /// Serves until the process ends; `done` is set when a shutdown was asked.
    pub fn serve(self, m: Arc<Manager>, done: Arc<AtomicBool>, wake: std::path::PathBuf) {
        let open = Arc::new(AtomicUsize::new(0));
        let streams = Arc::new(AtomicUsize::new(0));
        let guard = Arc::new(self.guard);
        for conn in self.listener.incoming() {
            let Ok(mut stream) = conn else { continue };
            if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                let r = Response::error(503, "busy", "too many connections; try again");
                let _ = http::write_response(&mut stream, &r);
                continue;
            }
            open.fetch_add(1, Ordering::Relaxed);
            let (m, open, streams, guard, done, wake) = (
                Arc::clone(&m),
                Arc::clone(&open),
                Arc::clone(&streams),
                Arc::clone(&guard),
                Arc::clone(&done),
                wake.clone(),
            );
            std::thread::spawn(move || {
                let after = serve_one(stream, &m, &guard, &open, &streams);
                if matches!(after, After::Shutdown) {
                    done.store(true, Ordering::Relaxed);
                    let _ = std::os::unix::net::UnixStream::connect(&wake);
                }
            });
        }
    }
}

/// Answers one connection. `open` is released once the request is answered
/// (an event stream then counts in `streams` instead).
fn serve_one(
    mut stream: TcpStream,
    m: &Arc<Manager>,
    guard: &Guard,
    open: &AtomicUsize,
    streams: &Arc<AtomicUsize>,
) -> After {
    let req = match http::read_request(&mut stream) {
        Ok(r) => r,
        Err(resp) => {
            let _ = http::write_response(&mut stream, &resp);
            open.fetch_sub(1, Ordering::Relaxed);
            return After::Continue;
        }
    };
    if let Err(resp) = guard.check(&req) {
        let _ = http::write_response(&mut stream, &resp);
        open.fetch_sub(1, Ordering::Relaxed);
        return After::Continue;
    }
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    if let ("GET", ["v1", "runs", id, "events"]) = (req.method.as_str(), parts.as_slice()) {
        open.fetch_sub(1, Ordering::Relaxed);
        let id = id.to_string();
        if !is_run_id(&id) || crate::runs::read_status(&m.dir(&id)).is_none() {
            let r = Response::error(404, "run", format!("no run {id}"));
            let _ = http::write_response(&mut stream, &r);
            return After::Continue;
        }
        if streams.fetch_add(1, Ordering::Relaxed) >= crate::sse::MAX_CLIENTS {
            streams.fetch_sub(1, Ordering::Relaxed);
            let r = Response::error(
                503,
                "busy",
                format!(
                    "{} event streams are open already; try again",
                    crate::sse::MAX_CLIENTS
                ),
            );
            let _ = http::write_response(&mut stream, &r);
            return After::Continue;
        }
        let resume = req
            .header("last-event-id")
            .or_else(|| req.param("last_event_id"))
            .and_then(|v| v.parse().ok());
        crate::sse::serve(stream, m.dir(&id), resume);
        streams.fetch_sub(1, Ordering::Relaxed);
        return After::Continue;
    }
    let (resp, after) = match (req.method.as_str(), crate::page::asset(&req.path)) {
        ("GET", Some(page)) => (page, After::Continue),
        _ => api::handle(m, &req),
    };
    let _ = http::write_response(&mut stream, &resp);
    open.fetch_sub(1, Ordering::Relaxed);
    after
}
