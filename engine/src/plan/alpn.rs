//! `http: "auto"` decided before the workers start: each `https://` server
//! of an `Auto` row is asked once, by a TLS handshake offering `h2` and
//! `http/1.1` (ALPN), which protocol it speaks; its rows become HTTP/2 if
//! it chose `h2`, else HTTP/1.1. Plain `http://` rows become HTTP/1.1
//! without asking (h2c needs prior knowledge: `http: "2"`).
//!
//! Why a probe, and not the first connection's answer: a row's protocol
//! decides how its VUs map onto connections (`ceil(VUs / streams)`) before
//! any connection exists, and every worker must lay them out the same way.
//! One blocking handshake per distinct server (address and TLS name) costs
//! a round trip or two at start. It runs in the run's start
//! ([`crate::run::execute`]), never in validation, which stays offline.
//!
//! A probe that fails (the server is down, refuses TLS, times out after
//! the plan's connect timeout) resolves to HTTP/1.1 and says so: the run's
//! own connections then fail and are counted as they would be anyway.

use crate::plan::{Http, Plan};
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A line for the run's log about one server asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    pub line: String,
    /// The probe failed (worth a line on stderr too).
    pub warning: bool,
}

/// Decides every `Auto` row of `plan` (HTTP/2 where its server chose `h2`
/// by ALPN, else HTTP/1.1), encodes the static requests of the rows that
/// became HTTP/2, and returns a line per server asked: what it chose, or
/// why the probe failed.
pub fn resolve(plan: &mut Plan) -> Vec<Said> {
    let mut lines = Vec::new();
    if !plan.endpoints.iter().any(|r| r.http == Http::Auto) {
        return lines;
    }
    // Asked once per server; a probe's session is not kept (see `probe`).
    let mut asked: HashMap<(SocketAddr, ServerName<'static>), Http> = HashMap::new();
    let config = plan.tls_h2.as_ref().map(|c| {
        let mut c = (**c).clone();
        // Not resumable: a ticket from the probe would make a VU's first
        // handshake a resumption, and `tls_resumed` would count it.
        c.resumption = rustls::client::Resumption::disabled();
        Arc::new(c)
    });
    let timeout = plan.connect_timeout;
    for row in plan.endpoints.iter_mut().filter(|r| r.http == Http::Auto) {
        let (Some(name), Some(config)) = (&row.tls_name, &config) else {
            // plain http://: HTTP/1.1 (h2c is `http: "2"`)
            row.http = Http::H1;
            row.streams = 1;
            continue;
        };
        let key = (row.addr, name.clone());
        let http = match asked.get(&key) {
            Some(&http) => http,
            None => {
                let server = format!("https://{}:{}", row.host, row.addr.port());
                let (http, line, warning) = match probe(row.addr, name.clone(), config, timeout) {
                    Ok(Some(p)) if p == b"h2" => (
                        Http::H2,
                        format!("http auto: {server} chose h2 by ALPN"),
                        false,
                    ),
                    Ok(chosen) => {
                        let chosen = chosen.map_or("no protocol".into(), |p| {
                            String::from_utf8_lossy(&p).into_owned()
                        });
                        let line =
                            format!("http auto: {server} chose {chosen} by ALPN, not h2: HTTP/1.1");
                        (Http::H1, line, false)
                    }
                    Err(why) => {
                        let line = format!(
                            "http auto: cannot ask {server} for its protocol ({why}): HTTP/1.1"
                        );
                        (Http::H1, line, true)
                    }
                };
                lines.push(Said { line, warning });
                asked.insert(key, http);
                http
            }
        };
        row.http = http;
        if http == Http::H1 {
            row.streams = 1;
        }
    }
    crate::plan::build::encode_h2(plan);
    lines
}

/// One TLS handshake with `addr` as `name`, within `timeout` (connect and
/// handshake together); the protocol the server chose by ALPN, if any.
fn probe(
    addr: SocketAddr,
    name: ServerName<'static>,
    config: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, String> {
    let deadline = Instant::now() + timeout;
    let mut sock =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    let _ = sock.set_nodelay(true);
    let mut tls = rustls::ClientConnection::new(Arc::clone(config), name)
        .map_err(|e| crate::tls::describe(&e))?;
    let late = || format!("no handshake within {}", crate::duration::Dur(timeout));
    // Driven record by record, not by `complete_io`, whose loop a server
    // dripping bytes could hold past the deadline: each read or write
    // waits at most what is left of the timeout.
    while tls.is_handshaking() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(late)?;
        let io = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => late(),
            _ => e.to_string(),
        };
        if tls.wants_write() {
            sock.set_write_timeout(Some(left)).map_err(io)?;
            tls.write_tls(&mut sock).map_err(io)?;
            continue;
        }
        sock.set_read_timeout(Some(left)).map_err(io)?;
        if tls.read_tls(&mut sock).map_err(io)? == 0 {
            return Err("the server closed the connection in the handshake".into());
        }
        // a TLS alert or a bad certificate: said as the run says it
        tls.process_new_packets()
            .map_err(|e| crate::tls::describe(&e))?;
    }
    let chosen = tls.alpn_protocol().map(<[u8]>::to_vec);
    tls.send_close_notify();
    let _ = tls.write_tls(&mut sock);
    let _ = sock.flush();
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn plan(target: &str, http: &str) -> Plan {
        let c = Config::from_json(&format!(
            r#"{{"target": "{target}", "stages": [{{"duration": "1s", "target": 1}}],
                "http": "{http}", "streams": 8, "timeouts": {{"connect": "2s"}},
                "tls": {{"insecure": true}},
                "endpoints": [{{"name": "a", "path": "/a"}}, {{"name": "b", "path": "/b"}}]}}"#
        ))
        .unwrap();
        crate::plan::build::prepare(&c).unwrap()
    }

    #[test]
    fn plain_http_auto_is_http1_without_asking() {
        // nothing listens there: a probe would fail and say so
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut p = plan(&format!("http://127.0.0.1:{port}"), "auto");
        assert_eq!(p.endpoints[0].http, Http::Auto);
        assert!(resolve(&mut p).is_empty(), "no server asked");
        for row in &p.endpoints {
            assert_eq!(
                (row.http, row.streams, row.h2.is_some()),
                (Http::H1, 1, false)
            );
        }
    }

    #[test]
    fn a_server_that_cannot_be_asked_is_http1_said_once() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut p = plan(&format!("https://127.0.0.1:{port}"), "auto");
        let said = resolve(&mut p);
        assert_eq!(said.len(), 1, "one server, asked once: {said:?}");
        assert!(said[0].warning);
        assert!(
            said[0].line.contains("cannot ask https://127.0.0.1:")
                && said[0].line.contains("connect:")
                && said[0].line.ends_with(": HTTP/1.1"),
            "{}",
            said[0].line
        );
        assert!(
            p.endpoints
                .iter()
                .all(|r| r.http == Http::H1 && r.streams == 1)
        );
    }

    /// A server that accepts and then says nothing, or closes at once: the
    /// probe ends within the connect timeout, naming why.
    #[test]
    fn a_silent_or_closing_server_is_http1_on_time() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut p = plan(&format!("https://{}", silent.local_addr().unwrap()), "auto");
        p.connect_timeout = Duration::from_millis(300);
        let t0 = Instant::now();
        let said = resolve(&mut p);
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "bounded by the timeout"
        );
        assert!(
            said[0].line.contains("(no handshake within 300ms)"),
            "{said:?}"
        );
        let closing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closing.local_addr().unwrap();
        let server = std::thread::spawn(move || drop(closing.accept()));
        let mut p = plan(&format!("https://{addr}"), "auto");
        let said = resolve(&mut p);
        server.join().unwrap();
        assert!(
            said[0]
                .line
                .contains("the server closed the connection in the handshake")
                || said[0].line.contains("Connection reset"),
            "{said:?}"
        );
        assert!(p.endpoints.iter().all(|r| r.http == Http::H1));
        drop(silent);
    }

    #[test]
    fn rows_already_decided_are_left_alone() {
        let mut p = plan("http://127.0.0.1:1", "2");
        assert!(resolve(&mut p).is_empty());
        assert!(
            p.endpoints
                .iter()
                .all(|r| r.http == Http::H2 && r.streams == 8)
        );
        assert!(
            p.endpoints[0].h2.is_some(),
            "a static h2 request is encoded once"
        );
    }
}
