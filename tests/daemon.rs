//! userfluxd and userfluxctl end to end: real processes, a temporary runs
//! directory, the real engine against the real gateway on loopback.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use userflux::{Gateway, bin, read_json};
use userflux_engine::status::Status;
use userflux_engine::summary::{RunState, Summary};

/// A daemon on a temporary runs directory, killed on drop.
struct Daemon {
    child: Child,
    runs: PathBuf,
    socket: PathBuf,
}

impl Daemon {
    fn start(runs: &Path) -> Daemon {
        let socket = runs.join("userfluxd.sock");
        let child = Command::new(bin("userfluxd"))
            .arg("--runs-dir")
            .arg(runs)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let d = Daemon {
            child,
            runs: runs.to_path_buf(),
            socket,
        };
        let t0 = Instant::now();
        while UnixStream::connect(&d.socket).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "userfluxd did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(bin("userfluxctl"))
            .args(args)
            .env("USERFLUX_SOCKET", &self.socket)
            .output()
            .unwrap()
    }

    /// One raw HTTP request; returns (status, body).
    fn http(&self, raw: &[u8]) -> (u16, String) {
        let mut s = UnixStream::connect(&self.socket).unwrap();
        // The daemon may answer (413) and close before the whole body is sent.
        let _ = s.write_all(raw);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        self.http(
            format!(
                "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    }

    fn submit(&self, config: &str) -> String {
        let (code, body) = self.request("POST", "/v1/runs", config);
        assert_eq!(code, 201, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["run_id"].as_str().unwrap().to_string()
    }

    fn run_ids_on_disk(&self) -> usize {
        std::fs::read_dir(&self.runs)
            .unwrap()
            .filter(|e| {
                userflux_engine::rundir::is_run_id(
                    &e.as_ref().unwrap().file_name().to_string_lossy(),
                )
            })
            .count()
    }

    fn status(&self, id: &str) -> Status {
        serde_json::from_value(read_json(&self.runs.join(id).join("status.json"))).unwrap()
    }

    fn wait_for(&self, id: &str, what: impl Fn(&Status) -> bool, secs: u64) -> Status {
        let t0 = Instant::now();
        loop {
            let st = self.status(id);
            if what(&st) {
                return st;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "timed out; status {st:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(gw: &Gateway, secs: u32, extra: &str) -> String {
    format!(
        r#"{{"name": "d", "target": "{}", "threads": 1, {extra}
            "stages": [{{"duration": "0s", "target": 2}}, {{"duration": "{secs}s", "target": 2}}],
            "endpoints": [{{"name": "users", "path": "/api/users"}}]}}"#,
        gw.url()
    )
}

fn is_final(s: &Status) -> bool {
    matches!(
        s.state,
        RunState::Finished | RunState::Stopped | RunState::Failed
    )
}

#[test]
fn a_run_through_userfluxctl_finishes_and_is_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let d = Daemon::start(&tmp.path().join("runs"));
    let file = tmp.path().join("c.json");
    std::fs::write(&file, config(&gw, 2, "")).unwrap();
    let out = d.ctl(&["run", "start", file.to_str().unwrap(), "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Requests/sec:"), "{stdout}");
    let id = stdout.split_whitespace().nth(1).unwrap().to_string();
    let st = d.status(&id);
    assert_eq!(
        (st.state, st.exit_code, st.pid),
        (RunState::Finished, Some(0), None)
    );
    let s: Summary =
        serde_json::from_value(read_json(&d.runs.join(&id).join("summary.json"))).unwrap();
    assert!(s.totals.requests > 100);
    let logs = std::fs::read_to_string(d.runs.join(&id).join("logs.txt")).unwrap();
    assert!(
        logs.contains("daemon: started engine")
            && logs.contains("engine: run")
            && logs.contains("Requests/sec:"),
        "{logs}"
    );
    let list = d.ctl(&["run", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains(&id));
    let json = d.ctl(&["--json", "run", "status", &id]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["state"], "finished");
}

#[test]
fn failed_thresholds_exit_99_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let d = Daemon::start(&tmp.path().join("runs"));
    let file = tmp.path().join("c.json");
    std::fs::write(
        &file,
        config(
            &gw,
            1,
            r#""thresholds": {"http_req_duration": ["p(99)<0.001"]},"#,
        ),
    )
    .unwrap();
    let out = d.ctl(&["run", "start", file.to_str().unwrap(), "--wait"]);
    assert_eq!(
        out.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn stop_mid_run_gives_stopped_and_a_second_run_waits_queued() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let d = Daemon::start(&tmp.path().join("runs"));
    let first = d.submit(&config(&gw, 30, ""));
    let second = d.submit(&config(&gw, 1, ""));
    d.wait_for(
        &first,
        |s| s.state == RunState::Running && s.progress.requests > 0,
        10,
    );
    assert_eq!(
        d.status(&second).state,
        RunState::Queued,
        "one run at a time"
    );
    let out = d.ctl(&["run", "stop", &first]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = d.wait_for(&first, is_final, 15);
    assert_eq!(st.state, RunState::Stopped);
    let s: Summary =
        serde_json::from_value(read_json(&d.runs.join(&first).join("summary.json"))).unwrap();
    assert_eq!(s.state, RunState::Stopped);
    // the queued one runs next
    let st = d.wait_for(&second, is_final, 20);
    assert_eq!(st.state, RunState::Finished);
    // stopping an ended run is a conflict, not a crash
    let (code, body) = d.request("POST", &format!("/v1/runs/{first}/stop"), "");
    assert_eq!(code, 409, "{body}");
}

#[test]
fn killing_the_engine_fails_the_run_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let d = Daemon::start(&tmp.path().join("runs"));
    let id = d.submit(&config(&gw, 30, ""));
    let st = d.wait_for(
        &id,
        |s| s.state == RunState::Running && s.pid.is_some() && s.progress.requests > 0,
        10,
    );
    userflux_engine::sys::kill(st.pid.unwrap(), 9).unwrap();
    let st = d.wait_for(&id, is_final, 10);
    assert_eq!(st.state, RunState::Failed);
    let e = st.error.unwrap();
    assert!(e.message.contains("killed by signal 9"), "{e:?}");
    assert_eq!(st.exit_code, Some(137));
}

#[test]
fn a_restarted_daemon_adopts_a_live_engine_and_fails_a_dead_one() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let runs = tmp.path().join("runs");
    let mut d = Daemon::start(&runs);
    let live = d.submit(&config(&gw, 3, ""));
    let st = d.wait_for(
        &live,
        |s| s.state == RunState::Running && s.pid.is_some(),
        10,
    );
    let engine = st.pid.unwrap();
    d.child.kill().unwrap(); // kill -9 of the daemon mid-run
    d.child.wait().unwrap();
    assert!(
        userflux_engine::sys::alive(engine),
        "the engine outlives its daemon"
    );
    drop(d);
    let d = Daemon::start(&runs);
    let st = d.wait_for(&live, is_final, 15);
    assert_eq!(st.state, RunState::Finished, "{st:?}");
    let logs = std::fs::read_to_string(runs.join(&live).join("logs.txt")).unwrap();
    assert!(
        logs.contains(&format!("adopting engine {engine}")),
        "{logs}"
    );

    // now a run whose daemon and engine both die
    let dead = d.submit(&config(&gw, 30, ""));
    let st = d.wait_for(
        &dead,
        |s| s.state == RunState::Running && s.pid.is_some(),
        10,
    );
    drop(d);
    let pid = st.pid.unwrap();
    userflux_engine::sys::kill(pid, 9).unwrap();
    // Dead once it is gone or a zombie (empty cmdline); a busy machine can
    // take a while to tear a process down.
    let t0 = std::time::Instant::now();
    while std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty()) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the engine did not die"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let d = Daemon::start(&runs);
    let st = d.status(&dead);
    assert_eq!(st.state, RunState::Failed);
    assert!(
        st.error
            .unwrap()
            .message
            .contains("was gone when the daemon started")
    );
    assert!(
        runs.join(&dead).join("config.json").exists(),
        "nothing is deleted"
    );
}

#[test]
fn hostile_requests_get_4xx_and_touch_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("runs"));
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");
    let dirmode = std::fs::metadata(&d.runs).unwrap().permissions().mode() & 0o777;
    assert_eq!(dirmode, 0o700, "runs dir mode {dirmode:o}");
    let before: Vec<_> = std::fs::read_dir(&d.runs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    for path in [
        "/v1/runs/../../etc",
        "/v1/runs/..%2F..%2Fetc/summary",
        "/v1/runs/20261122-000000-zzzz/logs",
    ] {
        let (code, body) = d.request("GET", path, "");
        assert!(code == 400 || code == 404, "{path}: {code} {body}");
    }
    let (code, _) = d.request("GET", "/v1/runs/20261122-000000-abcd", "");
    assert_eq!(code, 404);
    let big = "x".repeat(1024 * 1024 + 1);
    let (code, _) = d.request("POST", "/v1/runs", &big);
    assert_eq!(code, 413);
    let (code, body) = d.request("POST", "/v1/runs", "{not json");
    assert_eq!(code, 400);
    assert!(body.contains("invalid JSON"), "{body}");
    let (code, body) = d.request(
        "POST",
        "/v1/runs",
        r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 1}], "endpoints": [{"name": "a", "path": "/", "method": "GTE"}]}"#,
    );
    assert_eq!(code, 400);
    assert!(
        body.contains(r#"endpoints[0].method: unknown method \"GTE\""#),
        "{body}"
    );
    let (code, _) = d.http(b"GARBAGE\x00\x01\r\n\r\n");
    assert_eq!(code, 400);
    let (code, _) = d.request("DELETE", "/v1/runs", "");
    assert_eq!(code, 405);
    let after: Vec<_> = std::fs::read_dir(&d.runs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "no run directory was created");
    // still serving
    assert_eq!(d.request("GET", "/v1/health", "").0, 200);
}

#[test]
fn a_second_daemon_refuses_and_a_missing_one_is_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let d = Daemon::start(&runs);
    let out = Command::new(bin("userfluxd"))
        .arg("--runs-dir")
        .arg(&runs)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another userfluxd"), "{stderr}");
    assert_eq!(
        d.request("GET", "/v1/health", "").0,
        200,
        "the first one is unharmed"
    );
    drop(d);
    let out = Command::new(bin("userfluxctl"))
        .args(["run", "list"])
        .env("USERFLUX_SOCKET", tmp.path().join("nope.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("start it with `userfluxctl daemon start`")
    );
}

#[test]
fn ctl_config_commands_work_without_a_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let ctl = |args: &[&str]| {
        Command::new(bin("userfluxctl"))
            .args(args)
            .output()
            .unwrap()
    };
    let tressi = tmp.path().join("tressi.json");
    std::fs::write(
        &tressi,
        r#"{"options": {"durationSec": 10, "threads": 1}, "requests": [{"url": "http://127.0.0.1:9/x", "rps": 5, "earlyExit": {"enabled": true, "errorRateThreshold": 0.2}}]}"#,
    )
    .unwrap();
    let out = ctl(&["config", "migrate", tressi.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["endpoints"][0]["rate_stages"][1]["target"], 5.0);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("requests[0].earlyExit: thresholds that stop the run")
    );
    let key = v["thresholds"]
        .as_object()
        .and_then(|t| t.keys().next().cloned())
        .unwrap_or_default();
    assert!(key.starts_with("http_req_failed{endpoint:"), "{v}");
    let out = ctl(&["config", "validate", tressi.to_str().unwrap()]);
    userflux::assert_ok(&out);
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, r#"{"stages": [{"duration": "1s", "target": 1}], "endpoints": [{"name": "a", "url": "http://127.0.0.1:1/", "weight": -1}]}"#).unwrap();
    let out = ctl(&["config", "validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("endpoints[0].weight: must be a number above 0")
    );
    let out = ctl(&["config", "schema"]);
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    // a reader that went away (`userfluxctl config schema | head -0`) is no panic
    let mut child = Command::new(bin("userfluxctl"))
        .args(["config", "schema"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    userflux::assert_ok(&out);
}

#[test]
fn report_and_compare_through_userfluxctl() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let d = Daemon::start(&tmp.path().join("runs"));
    let a = d.submit(&config(&gw, 1, ""));
    d.wait_for(&a, is_final, 15);
    let b = d.submit(&config(&gw, 1, ""));
    d.wait_for(&b, is_final, 15);
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("analytics/.venv/bin/python");
    let out = d.ctl(&["report", &a]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !venv.exists() {
        // Without `make setup` the CLI says what to run, and fails.
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr.contains("make setup"), "{stderr}");
        return;
    }
    userflux::assert_ok(&out);
    assert!(d.runs.join(&a).join("report.html").exists());
    assert!(d.runs.join(&a).join("throughput.png").exists());
    let out = d.ctl(&["compare", &a, &b, "--tolerance", "1000%"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no regressions"));
    let out = d.ctl(&["report", "../../etc"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad id is refused before any path is built"
    );
}

#[test]
fn a_stalled_client_does_not_block_others() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("runs"));
    // Half a request head, then nothing: it holds one connection thread...
    let mut stalled: Vec<UnixStream> = (0..8)
        .map(|_| {
            let mut s = UnixStream::connect(&d.socket).unwrap();
            s.write_all(b"GET /v1/hea").unwrap();
            s
        })
        .collect();
    // ...while everyone else is answered at once.
    let t0 = Instant::now();
    for _ in 0..5 {
        assert_eq!(d.request("GET", "/v1/health", "").0, 200);
    }
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "answers took {:?}",
        t0.elapsed()
    );
    // A body that never finishes arriving is refused after the request timeout.
    let mut slow = UnixStream::connect(&d.socket).unwrap();
    slow.write_all(b"POST /v1/runs HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    stalled.clear();
}

#[test]
fn a_config_cannot_name_a_program_or_arguments_for_the_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("runs"));
    for field in [
        r#""engine": "/bin/sh""#,
        r#""args": ["--run-dir", "/etc"]"#,
        r#""run_dir": "/tmp/x""#,
    ] {
        let body = format!(
            r#"{{{field}, "target": "http://127.0.0.1:1", "stages": [{{"duration": "1s", "target": 1}}], "endpoints": [{{"name": "a", "path": "/"}}]}}"#
        );
        let (code, answer) = d.request("POST", "/v1/runs", &body);
        assert_eq!(code, 400, "{field}: {answer}");
        assert!(answer.contains("unknown field"), "{answer}");
    }
    assert_eq!(d.run_ids_on_disk(), 0);
}

/// `userfluxctl run start --search` goes through the daemon like any run:
/// queued, listed, its trials kept in its run directory (issue #32).
#[test]
fn a_capacity_search_runs_through_the_daemon_and_keeps_its_trials() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let d = Daemon::start(&tmp.path().join("runs"));
    let file = tmp.path().join("c.json");
    let search = r#""thresholds": {"http_req_failed": ["rate<0.5"]},
        "search": {"from": 50, "max": 100, "trial": "1s", "warmup": "0s", "cooldown": "0s", "confirm": "1s"},"#;
    std::fs::write(&file, config(&gw, 1, search)).unwrap();
    let out = d.ctl(&["run", "start", file.to_str().unwrap(), "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("sustains at least 100 req/s within SLO"),
        "{stdout}"
    );
    let id = stdout.split_whitespace().nth(1).unwrap().to_string();
    let st = d.status(&id);
    assert_eq!((st.state, st.exit_code), (RunState::Finished, Some(0)));
    let s: Summary =
        serde_json::from_value(read_json(&d.runs.join(&id).join("summary.json"))).unwrap();
    let r = s.search.expect("the search's result");
    assert_eq!(r.rate, Some(100.0));
    // 50, 100, and the confirmation: each a run directory in the run's
    assert_eq!(r.trials.len(), 3);
    for t in &r.trials {
        let trial = d.runs.join(&id).join(&t.run);
        assert!(trial.join("summary.json").is_file(), "{}", trial.display());
    }
    // the report of a search, by its directory's path: the knee
    let dir = d.runs.join(&id);
    let out = d.ctl(&["report", dir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(page.contains("Capacity search"), "the search's section");
    assert!(dir.join("knee.png").is_file());
    // `--search` adds `search: {}` to a config without one (defaults)
    std::fs::write(&file, config(&gw, 1, "")).unwrap();
    let out = d.ctl(&["run", "start", file.to_str().unwrap(), "--search"]);
    assert_eq!(out.status.code(), Some(2), "a search needs an SLO");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a search needs an SLO"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
