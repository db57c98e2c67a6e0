//! Who may do what over the dashboard's TCP listener.
//!
//! The Unix socket is private by its mode (0600); a TCP port is not: any
//! local process — and any web page the user's browser has open — can
//! reach it. So over TCP:
//!
//! - a route that changes anything (every `POST`) needs the token (header
//!   `Authorization: Bearer TOKEN` or `X-Userflux-Token`), written at start
//!   to `RUNS_DIR/dashboard.token` (mode 0600, readable only by the user who
//!   can read the runs) and printed by `userfluxctl dashboard`, and, when
//!   the request carries an `Origin` (browsers always send it on a `POST`),
//!   that origin must be the dashboard's own: a page on another site cannot
//!   steer a run even if it guessed the token;
//! - on loopback, read-only routes need nothing, but the `Host` must name
//!   the listener (`127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`): a DNS
//!   rebinding page (evil.example resolving to 127.0.0.1) is refused;
//! - bound elsewhere (`--http-public`), every route needs the token (as a
//!   header, or `?token=` on a `GET`, for the browser's `EventSource`).

use crate::http::{Request, Response};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;

/// The token file in the runs directory.
pub const TOKEN_FILE: &str = "dashboard.token";

pub struct Guard {
    token: String,
    /// `host:port` forms that name this listener (loopback only).
    hosts: Vec<String>,
    /// Bound to a non-loopback address: every route needs the token.
    public: bool,
}

/// 32 random bytes from the kernel, hex.
fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares without an early exit: the time taken says nothing about how
/// much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Guard {
    /// Makes a new token and writes it to `runs_dir/dashboard.token` (0600).
    pub fn new(runs_dir: &Path, addr: SocketAddr, public: bool) -> std::io::Result<Guard> {
        use std::os::unix::fs::OpenOptionsExt;
        let token = new_token()?;
        let path = runs_dir.join(TOKEN_FILE);
        let _ = std::fs::remove_file(&path); // a file of another mode is not reused
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(format!("{token}\n").as_bytes())?;
        let port = addr.port();
        let hosts = vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
            addr.to_string(),
        ];
        Ok(Guard {
            token,
            hosts,
            public,
        })
    }

    fn token_of(req: &Request) -> Option<&str> {
        req.header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| req.header("x-userflux-token"))
            .or_else(|| (req.method == "GET").then(|| req.param("token")).flatten())
    }

    /// Whether `req` may go on; a refusal is the 403 to send.
    pub fn check(&self, req: &Request) -> Result<(), Response> {
        let host = req.header("host").unwrap_or("");
        if !self.public && !self.hosts.iter().any(|h| h == host) {
            return Err(Response::error(
                403,
                "host",
                format!(
                    "Host \"{host}\" does not name this dashboard (use http://{}/)",
                    self.hosts[0]
                ),
            ));
        }
        let control = req.method != "GET";
        if control || self.public {
            match Self::token_of(req) {
                Some(t) if same(t.trim(), &self.token) => {}
                Some(_) => {
                    return Err(Response::error(
                        403,
                        "token",
                        format!("wrong token (see {TOKEN_FILE} in the runs directory)"),
                    ));
                }
                None => {
                    return Err(Response::error(
                        403,
                        "token",
                        format!(
                            "this route needs the dashboard's token: header `Authorization: Bearer TOKEN` (TOKEN is in {TOKEN_FILE} in the runs directory; `userfluxctl dashboard` prints it)"
                        ),
                    ));
                }
            }
        }
        if control && let Some(origin) = req.header("origin") {
            let own = origin
                .strip_prefix("http://")
                .is_some_and(|o| o == host && (self.public || self.hosts.iter().any(|h| h == o)));
            if !own {
                return Err(Response::error(
                    403,
                    "origin",
                    format!(
                        "Origin {origin} is not this dashboard's; cross-site requests are refused"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            path: "/v1/runs".into(),
            query: String::new(),
            body: vec![],
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn control_needs_the_token_and_the_own_origin() {
        let dir = tempfile::tempdir().unwrap();
        let g = Guard::new(dir.path(), "127.0.0.1:8090".parse().unwrap(), false).unwrap();
        let token = std::fs::read_to_string(dir.path().join(TOKEN_FILE)).unwrap();
        let bearer = format!("Bearer {}", token.trim());
        let host = ("host", "127.0.0.1:8090");
        assert!(
            g.check(&req("GET", &[host])).is_ok(),
            "read-only on loopback"
        );
        let denied = |r: Request| g.check(&r).unwrap_err().status;
        assert_eq!(denied(req("GET", &[("host", "evil.example:8090")])), 403);
        assert_eq!(denied(req("POST", &[host])), 403);
        assert_eq!(
            denied(req("POST", &[host, ("authorization", "Bearer nope")])),
            403
        );
        assert_eq!(
            denied(req(
                "POST",
                &[
                    host,
                    ("authorization", &bearer),
                    ("origin", "http://evil.example")
                ]
            )),
            403
        );
        assert!(
            g.check(&req(
                "POST",
                &[
                    host,
                    ("authorization", &bearer),
                    ("origin", "http://127.0.0.1:8090")
                ]
            ))
            .is_ok()
        );
        assert!(
            g.check(&req("POST", &[host, ("authorization", &bearer)]))
                .is_ok(),
            "curl sends no Origin"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
