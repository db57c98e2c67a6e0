//! The Python gRPC test peer (tests/grpc/server.py, grpcio: another
//! stack than the engine's) started for a test and killed on drop; shared
//! by the gRPC end-to-end tests (`#[path]`-included by each).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The test service's .proto.
pub fn proto() -> PathBuf {
    repo().join("tests/grpc/echo.proto")
}

/// The Python test server, killed on drop.
pub struct PyServer {
    child: Child,
    pub port: u16,
    record: PathBuf,
}

impl PyServer {
    /// `None` without the venv or grpcio (`make setup` installs both).
    pub fn start(dir: &Path) -> Option<PyServer> {
        PyServer::start_with::<&str>(dir, &[])
    }

    /// With more of server.py's options (`--reflection FILE`,
    /// `--max-streams N`).
    pub fn start_with<A: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[A]) -> Option<PyServer> {
        let python = repo().join("analytics/.venv/bin/python");
        let imports = if args.iter().any(|a| a.as_ref() == "--reflection") {
            "import grpc, grpc_reflection"
        } else {
            "import grpc"
        };
        let has_grpc = Command::new(&python)
            .args(["-c", imports])
            .status()
            .is_ok_and(|s| s.success());
        if !has_grpc {
            eprintln!(
                "skipped: no analytics venv with grpcio and grpcio-reflection (run `make setup`)"
            );
            return None;
        }
        let record = dir.join("record.jsonl");
        let mut child = Command::new(python)
            .arg(repo().join("tests/grpc/server.py"))
            .args(["--port", "0", "--max-seconds", "120", "--record"])
            .arg(&record)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected output {line:?}"));
        Some(PyServer {
            child,
            port,
            record,
        })
    }

    /// What it decoded, one JSON value per call.
    pub fn recorded(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
