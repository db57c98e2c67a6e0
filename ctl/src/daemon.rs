//! `userfluxctl daemon start|stop|status`: userfluxd in the background.

use crate::client::Client;
use crate::{Cli, Fail, Out, expect, print_json};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub(crate) enum DaemonCmd {
    /// Start userfluxd in the background and wait until it answers.
    Start {
        /// Where runs are kept.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        /// Serve the live dashboard on this address (userfluxd --http).
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// Allow a non-loopback --http address (userfluxd --http-public).
        #[arg(long, requires = "http")]
        http_public: bool,
    },
    /// Ask userfluxd to stop (its active run is stopped first).
    Stop,
    /// Whether userfluxd answers, and what it is running.
    Status,
}

pub(crate) fn daemon(cli: &Cli, client: &Client, cmd: &DaemonCmd) -> Out {
    match cmd {
        DaemonCmd::Status => {
            let h = expect(client.get("/v1/health")?, 200)?.json();
            if cli.json {
                print_json(&h);
            } else {
                out!(
                    "userfluxd {} (pid {}) on {}: runs in {}; active {}; {} queued",
                    h["version"].as_str().unwrap_or("?"),
                    h["pid"],
                    client.socket.display(),
                    h["runs_dir"].as_str().unwrap_or("?"),
                    h["active"].as_str().unwrap_or("none"),
                    h["queued"].as_array().map_or(0, Vec::len)
                );
            }
            Ok(0)
        }
        DaemonCmd::Start {
            runs_dir,
            http,
            http_public,
        } => {
            if client.get("/v1/health").is_ok() {
                out!(
                    "userfluxd is already running on {}",
                    client.socket.display()
                );
                return Ok(0);
            }
            std::fs::create_dir_all(runs_dir)
                .map_err(|e| Fail(1, format!("cannot create {}: {e}", runs_dir.display())))?;
            let exe = std::env::current_exe()
                .map_err(|e| Fail(1, e.to_string()))?
                .with_file_name("userfluxd");
            let log = runs_dir.join("userfluxd.log");
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|e| Fail(1, format!("cannot open {}: {e}", log.display())))?;
            let err = out.try_clone().map_err(|e| Fail(1, e.to_string()))?;
            let mut child = Command::new(&exe)
                .arg("--runs-dir")
                .arg(runs_dir)
                .arg("--socket")
                .arg(&client.socket)
                .args(http.iter().flat_map(|a| ["--http", a]))
                .args(http_public.then_some("--http-public"))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| Fail(1, format!("cannot start {}: {e}", exe.display())))?;
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if client.get("/v1/health").is_ok() {
                    out!(
                        "userfluxd started (pid {}) on {}; its log is {}",
                        child.id(),
                        client.socket.display(),
                        log.display()
                    );
                    if let Some(url) = client
                        .get("/v1/health")
                        .ok()
                        .and_then(|r| r.json()["dashboard"].as_str().map(str::to_string))
                    {
                        out!("dashboard on {url} (`userfluxctl dashboard` prints its token)");
                    }
                    return Ok(0);
                }
                if let Ok(Some(st)) = child.try_wait() {
                    let tail = std::fs::read_to_string(&log).unwrap_or_default();
                    let last = tail.lines().last().unwrap_or("").to_string();
                    return Err(Fail(1, format!("userfluxd exited ({st}) at start: {last}")));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(Fail(
                1,
                format!(
                    "userfluxd did not answer on {} within 10 s; see {}",
                    client.socket.display(),
                    log.display()
                ),
            ))
        }
        DaemonCmd::Stop => {
            expect(client.post("/v1/shutdown", None)?, 202)?;
            let t0 = Instant::now();
            while client.get("/v1/health").is_ok() {
                if t0.elapsed() > Duration::from_secs(60) {
                    return Err(Fail(1, "userfluxd is still answering after 60 s".into()));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            out!("userfluxd stopped");
            Ok(0)
        }
    }
}
