//! The daemon's API from the client side: one HTTP/1.1 request per Unix
//! socket connection, read to the end (the daemon closes it).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Client {
    pub socket: PathBuf,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The daemon's `{"error": {"message"}}`, or the status line.
    pub fn error_message(&self) -> String {
        let v = self.json();
        v["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {}", self.status))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub enum ClientError {
    /// Nothing answers on the socket.
    NotRunning(PathBuf, std::io::Error),
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NotRunning(s, e) => write!(
                f,
                "cannot reach userfluxd at {} ({e}); start it with `userfluxctl daemon start`",
                s.display()
            ),
            ClientError::Protocol(m) => write!(f, "unexpected answer from userfluxd: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl Client {
    pub fn new(socket: &Path) -> Client {
        Client {
            socket: socket.to_path_buf(),
        }
    }

    pub fn get(&self, path: &str) -> Result<Reply, ClientError> {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Option<&[u8]>) -> Result<Reply, ClientError> {
        self.request("POST", path, body)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply, ClientError> {
        let mut s = UnixStream::connect(&self.socket)
            .map_err(|e| ClientError::NotRunning(self.socket.clone(), e))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let body = body.unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: userfluxd\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let io = |e: std::io::Error| ClientError::Protocol(e.to_string());
        s.write_all(head.as_bytes()).map_err(io)?;
        s.write_all(body).map_err(io)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(io)?;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(&raw) {
            Ok(httparse::Status::Complete(n)) => n,
            _ => {
                return Err(ClientError::Protocol(
                    "an incomplete or malformed HTTP response".into(),
                ));
            }
        };
        Ok(Reply {
            status: resp.code.unwrap_or(0),
            headers: resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            body: raw[n..].to_vec(),
        })
    }
}
