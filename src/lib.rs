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
