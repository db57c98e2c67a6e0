//! Helpers shared by the end-to-end tests (`tests/`) and the benches
//! (`benches/`): finding the built binaries, starting the gateway on a free
//! loopback port, running the engine into a temporary runs directory.
//!
//! The binaries are those `cargo build` put next to the test executable
//! (`make test` builds them first); a missing one is a clear panic that says
//! how to build it, not a confusing spawn error.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Reads one request head (until a blank line) from a scripted server's
/// connection; false when the client left or the read failed.
pub fn read_request(s: &mut impl std::io::Read) -> bool {
    let mut got = Vec::new();
    let mut b = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&b[..n]),
        }
    }
    true
}

/// A binary of this workspace in the same profile as the running test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> or target/<profile>/<bench>
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` (or `make test`) first",
        path.display()
    );
    path
}

/// A running `userflux-gateway`, killed on drop.
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
}

impl Gateway {
    /// Starts the gateway on `127.0.0.1:0` with `routes` (JSON) or the defaults.
    pub fn start(routes: Option<&str>, dir: &Path) -> Gateway {
        Gateway::start_on("127.0.0.1:0", routes, dir)
    }

    /// Starts the gateway on a given loopback address (to restart one in place).
    pub fn start_on(listen: &str, routes: Option<&str>, dir: &Path) -> Gateway {
        Gateway::start_with(listen, routes, dir, &[])
    }

    /// Starts the gateway with more arguments (`--tls-self-signed DIR`, …).
    pub fn start_with(listen: &str, routes: Option<&str>, dir: &Path, args: &[&str]) -> Gateway {
        let mut cmd = Command::new(bin("userflux-gateway"));
        cmd.args(["--listen", listen])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(json) = routes {
            let file = dir.join(format!("routes-{}.json", std::process::id()));
            std::fs::write(&file, json).expect("write routes");
            cmd.arg("--routes").arg(file);
        }
        let mut child = cmd.spawn().expect("spawn gateway");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read gateway stdout");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected gateway output {line:?}"))
            .parse()
            .expect("gateway address");
        Gateway { child, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `userflux-engine` ready for arguments.
pub fn engine() -> Command {
    Command::new(bin("userflux-engine"))
}

/// Runs `cmd` to its end, as `Command::output` does, but kills it and
/// panics if it is still running after `limit`: a test of something that
/// must not hang fails instead of hanging (`limit` is generous: it bounds a
/// hang, it does not time anything).
pub fn output_within(cmd: &mut Command, limit: std::time::Duration) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    // drained by a thread: a full pipe must not look like a hang
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid]).status();
            let out = rx.recv().expect("ended").expect("output");
            panic!(
                "still running after {limit:?}, killed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Asserts a finished command exited 0; otherwise panics with its exit
/// code, stderr and stdout (the one success assertion of the tests).
#[track_caller]
pub fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "exited {:?}\n--- stderr\n{}\n--- stdout\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The single run directory under `runs`.
pub fn only_run(runs: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .map(|rd| {
            rd.map(|e| e.expect("entry").path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        dirs.len(),
        1,
        "expected one run directory in {}: {dirs:?}",
        runs.display()
    );
    dirs.into_iter().next().expect("one")
}

/// Writes `json` to `config_file` and runs `userflux-engine run -q --config
/// it --runs-dir runs [extra…]`.
pub fn run_with_config(
    json: &str,
    config_file: &Path,
    runs: &Path,
    extra: &[&str],
) -> std::process::Output {
    std::fs::write(config_file, json).expect("write the config");
    engine()
        .args(["run", "-q", "--config"])
        .arg(config_file)
        .arg("--runs-dir")
        .arg(runs)
        .args(extra)
        .output()
        .expect("run the engine")
}

/// The summary and status of a run directory, read through the contract's
/// types (so a file that does not match them fails the test).
pub fn load_run(
    dir: &Path,
) -> (
    userflux_engine::summary::Summary,
    userflux_engine::status::Status,
) {
    let summary = serde_json::from_value(read_json(&dir.join("summary.json")))
        .expect("summary matches the contract");
    let status = serde_json::from_value(read_json(&dir.join("status.json")))
        .expect("status matches the contract");
    (summary, status)
}

/// Reads and parses a JSON file of a run.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One request as a [`Scripted`] server read it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// Header names lower-cased.
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Seen {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What a [`Scripted`] server answers to a request: a whole HTTP response,
/// or an empty string to close the connection without one.
pub type Answer = dyn Fn(&Seen) -> String + Send + Sync;

/// A keep-alive server on `127.0.0.1:0` that records every request (head,
/// then `Content-Length` bytes of body) and answers with what its [`Answer`]
/// returns; one thread per connection, never closing one itself.
pub struct Scripted {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    connections: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Scripted {
    pub fn start(answer: std::sync::Arc<Answer>) -> Scripted {
        use std::sync::Arc;
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = Scripted {
            port,
            seen: Arc::default(),
            connections: Arc::default(),
            stop: Arc::default(),
        };
        let (seen, n, stop) = (
            Arc::clone(&server.seen),
            Arc::clone(&server.connections),
            Arc::clone(&server.stop),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        n.fetch_add(1, Ordering::Relaxed);
                        conn.set_nonblocking(false).unwrap();
                        let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(15)));
                        let (s, a) = (Arc::clone(&seen), Arc::clone(&answer));
                        std::thread::spawn(move || serve_scripted(conn, &s, &*a));
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
                }
            }
        });
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far, in the order answered.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn serve_scripted(
    mut conn: std::net::TcpStream,
    seen: &std::sync::Mutex<Vec<Seen>>,
    answer: &Answer,
) {
    use std::io::{Read, Write};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut start = lines.next().unwrap_or_default().split(' ');
        let method = start.next().unwrap_or_default().to_string();
        let path = start.next().unwrap_or_default().to_string();
        let headers: std::collections::BTreeMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let s = Seen {
            method,
            path,
            headers,
            body,
        };
        let reply = answer(&s);
        seen.lock().unwrap().push(s);
        if reply.is_empty() || conn.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// `200 OK` with `extra_headers` (each ending `\r\n`) and `body`.
pub fn ok(extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}
