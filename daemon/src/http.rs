//! Just enough HTTP/1.1 for the daemon's API on a Unix socket or the
//! dashboard's TCP listener: one request per connection, bounded in every dimension a client controls (head size,
//! header count, body size, time to send), answered with JSON or text and
//! closed. A slow or stalled client only ever holds its own thread.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Largest request head.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body (a config).
pub const MAX_BODY: usize = 1024 * 1024;
/// A client must send its whole request within this time.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Vec<u8>,
    /// The headers the TCP listener checks (`host`, `origin`,
    /// `authorization`, `x-userflux-token`, `last-event-id`), names lowercase.
    pub headers: Vec<(String, String)>,
}

/// The headers kept in [`Request::headers`]; the rest are not needed.
const KEPT: [&str; 5] = [
    "host",
    "origin",
    "authorization",
    "x-userflux-token",
    "last-event-id",
];

impl Request {
    /// A kept header's value (the first, if sent twice).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter's value (not percent-decoded: ids, numbers, tokens).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }
}

/// A response to send; also what a malformed request gets.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            body,
            headers: vec![],
        }
    }

    /// `{"error": {"kind", "message"}}`.
    pub fn error(status: u16, kind: &str, message: impl Into<String>) -> Response {
        Response::json(
            status,
            &serde_json::json!({"error": {"kind": kind, "message": message.into()}}),
        )
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Reads one request; a client error comes back as the response to send.
pub fn read_request(stream: &mut impl Stream) -> Result<Request, Response> {
    let started = Instant::now();
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let mut kept = Vec::new();
    let (head_len, method, target, content_length) = loop {
        read_some(stream, &mut buf, &mut chunk, started)?;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => {
                let mut length = 0usize;
                for h in req.headers.iter() {
                    let name = h.name.to_ascii_lowercase();
                    if KEPT.contains(&name.as_str()) {
                        kept.push((name, String::from_utf8_lossy(h.value).trim().to_string()));
                    }
                    if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err(Response::error(
                            411,
                            "http",
                            "send the body with Content-Length",
                        ));
                    }
                    if h.name.eq_ignore_ascii_case("content-length") {
                        length = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse().ok())
                            .ok_or_else(|| {
                                Response::error(400, "http", "invalid Content-Length")
                            })?;
                    }
                }
                if length > MAX_BODY {
                    return Err(Response::error(
                        413,
                        "http",
                        format!("request body over {MAX_BODY} bytes"),
                    ));
                }
                break (
                    n,
                    req.method.unwrap_or("").to_string(),
                    req.path.unwrap_or("/").to_string(),
                    length,
                );
            }
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(Response::error(
                    431,
                    "http",
                    format!("request head over {MAX_HEAD} bytes"),
                ));
            }
            Ok(httparse::Status::Partial) => continue,
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Response::error(431, "http", "more than 32 headers"));
            }
            Err(e) => {
                return Err(Response::error(
                    400,
                    "http",
                    format!("malformed request: {e}"),
                ));
            }
        }
    };
    while buf.len() < head_len + content_length {
        read_some(stream, &mut buf, &mut chunk, started)?;
    }
    let body = buf[head_len..head_len + content_length].to_vec();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    Ok(Request {
        method,
        path,
        query,
        body,
        headers: kept,
    })
}

/// What a request arrives on: a Unix or a TCP stream.
pub trait Stream: Read + Write {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()>;
}

impl Stream for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, t)
    }
}

impl Stream for std::net::TcpStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_write_timeout(self, t)
    }
}

fn read_some(
    stream: &mut impl Stream,
    buf: &mut Vec<u8>,
    chunk: &mut [u8],
    started: Instant,
) -> Result<(), Response> {
    let left = REQUEST_TIMEOUT.saturating_sub(started.elapsed());
    if left.is_zero() {
        return Err(Response::error(
            408,
            "http",
            "the request took too long to arrive",
        ));
    }
    let _ = stream.set_read_timeout(Some(left));
    match stream.read(chunk) {
        Ok(0) => Err(Response::error(
            400,
            "http",
            "connection closed before the request was complete",
        )),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(Response::error(
                408,
                "http",
                "the request took too long to arrive",
            ))
        }
        Err(e) => Err(Response::error(400, "http", format!("read failed: {e}"))),
    }
}

pub fn write_response(stream: &mut impl Stream, r: &Response) -> io::Result<()> {
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&r.body)?;
    stream.flush()
}
