//! End-to-end runs of the real `userflux-engine` against the real
//! `userflux-gateway` (or nothing at all) on loopback, checking the run
//! directory each leaves behind.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use userflux::{
    Gateway, closed_port, engine, load_run, only_run, read_json, read_request, run_with_config,
};
use userflux_engine::status::Status;
use userflux_engine::summary::{RunState, Summary};

/// Two same-latency routes so request counts follow the VU split.
const TWO_ROUTES: &str = r#"{"routes": [
  {"method": "GET", "path": "/a", "calls": [{"service": "a", "latency": "1ms"}], "body_bytes": 100},
  {"method": "GET", "path": "/b", "calls": [{"service": "b", "latency": "1ms"}], "body_bytes": 100},
  {"method": "GET", "path": "/slow", "calls": [{"service": "slow", "latency": "3s"}]}
]}"#;

fn run_config(dir: &Path, json: &str, extra: &[&str]) -> Output {
    run_with_config(json, &dir.join("config.json"), &dir.join("runs"), extra)
}

fn summary_of(runs: &Path) -> (Summary, Status) {
    let dir = only_run(&runs.join("runs"));
    for f in ["config.json", "logs.txt"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    load_run(&dir)
}

#[test]
fn counts_agree_across_totals_endpoints_and_timeline_and_weights_split_2_to_1() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(TWO_ROUTES), tmp.path());
    let config = format!(
        r#"{{"name": "split", "target": "{}", "threads": 2,
            "stages": [{{"duration": "0s", "target": 12}}, {{"duration": "3s", "target": 12}}],
            "endpoints": [{{"name": "a", "path": "/a", "weight": 2}}, {{"name": "b", "path": "/b", "weight": 1}}]}}"#,
        gw.url()
    );
    let out = run_config(tmp.path(), &config, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Requests/sec: "), "{stdout}");
    assert!(stdout.contains("Run directory: "), "{stdout}");

    let (s, status) = summary_of(tmp.path());
    assert_eq!(s.state, RunState::Finished);
    assert_eq!(status.state, RunState::Finished);
    assert_eq!(status.exit_code, Some(0));
    assert_eq!(s.schema, "userflux.summary/v1");
    let a = &s.endpoints["a"];
    let b = &s.endpoints["b"];
    assert!(
        s.totals.requests > 1000,
        "too few requests: {}",
        s.totals.requests
    );
    assert_eq!(s.totals.requests, a.requests + b.requests);
    assert_eq!(
        s.totals.requests,
        s.timeline.iter().map(|t| t.requests).sum::<u64>()
    );
    for ep in ["a", "b"] {
        let per_second: u64 = s.timeline.iter().map(|t| t.endpoints[ep].requests).sum();
        assert_eq!(per_second, s.endpoints[ep].requests, "timeline of {ep}");
    }
    assert_eq!(s.totals.errors, 0, "{:?}", s.totals.error_kinds);
    let ratio = a.requests as f64 / b.requests as f64;
    assert!((ratio - 2.0).abs() <= 0.2, "weights 2:1 gave {ratio:.3}");
    assert_eq!(s.timeline.iter().map(|t| t.vus).max(), Some(12));
    assert!(
        (3..=4).contains(&s.timeline.len()),
        "{} seconds in the timeline",
        s.timeline.len()
    );
    assert_eq!(s.totals.status_codes.get("200"), Some(&s.totals.requests));
    assert!(s.totals.bytes_in > s.totals.requests * 100);
    let lat = s.totals.latency_ms.unwrap();
    assert!(lat.p50 >= 1.0 && lat.p50 < 50.0, "p50 {}", lat.p50);
    assert!(
        userflux_engine::summary::decode_histogram(&s.histograms["a"])
            .unwrap()
            .len()
            == a.requests
    );
}

#[test]
fn a_target_that_is_down_gives_connect_errors_and_ends_on_time() {
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{{"target": "http://127.0.0.1:{}", "threads": 1,
            "stages": [{{"duration": "2s", "target": 4}}],
            "endpoints": [{{"name": "down", "path": "/"}}]}}"#,
        closed_port()
    );
    let t0 = Instant::now();
    let out = run_config(tmp.path(), &config, &[]);
    let took = t0.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let (s, _) = summary_of(tmp.path());
    assert_eq!(s.state, RunState::Finished);
    let connect = s.totals.error_kinds.get("connect").copied().unwrap_or(0);
    assert!(connect > 0, "{:?}", s.totals.error_kinds);
    assert_eq!(connect, s.totals.errors);
    assert!((s.totals.error_rate - 1.0).abs() < 1e-9);
    // capped backoff: a few attempts per VU per second, not a busy loop
    assert!(
        s.totals.errors < 4 * 2 * 200,
        "{} connect attempts",
        s.totals.errors
    );
    let logs =
        std::fs::read_to_string(only_run(&tmp.path().join("runs")).join("logs.txt")).unwrap();
    assert!(logs.contains("first connect error"), "{logs}");
}

#[test]
fn a_route_slower_than_the_request_timeout_gives_timeout_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(TWO_ROUTES), tmp.path());
    let config = format!(
        r#"{{"target": "{}", "threads": 1, "graceful_stop": "100ms",
            "stages": [{{"duration": "0s", "target": 3}}, {{"duration": "2s", "target": 3}}],
            "endpoints": [{{"name": "slow", "path": "/slow"}}],
            "timeouts": {{"request": "300ms"}}}}"#,
        gw.url()
    );
    let out = run_config(tmp.path(), &config, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, _) = summary_of(tmp.path());
    let timeouts = s.totals.error_kinds.get("timeout").copied().unwrap_or(0);
    // 3 VUs, 2 s, a timeout every 300 ms: about 18
    assert!(
        (9..=24).contains(&timeouts),
        "{timeouts} timeouts: {:?}",
        s.totals.error_kinds
    );
    assert_eq!(s.totals.errors, timeouts);
    assert!(s.totals.latency_ms.is_none(), "no response completed");
}

#[test]
fn connection_close_answers_reconnect_without_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let config = format!(
        r#"{{"target": "{}", "threads": 1,
            "stages": [{{"duration": "0s", "target": 4}}, {{"duration": "1s", "target": 4}}],
            "endpoints": [{{"name": "health", "path": "/health", "headers": {{"connection": "close"}}}}]}}"#,
        gw.url()
    );
    let out = run_config(tmp.path(), &config, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, _) = summary_of(tmp.path());
    assert!(s.totals.requests > 100, "{}", s.totals.requests);
    assert_eq!(s.totals.errors, 0, "{:?}", s.totals.error_kinds);
}

#[test]
fn sigterm_mid_run_stops_with_a_valid_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let runs = tmp.path().join("runs");
    let mut child = engine()
        .args([
            "run",
            "-q",
            "-c",
            "8",
            "-d",
            "60s",
            "--threads",
            "1",
            "--runs-dir",
        ])
        .arg(&runs)
        .arg(format!("{}/api/users", gw.url()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "engine did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let dir = only_run(&runs);
    let s: Summary = serde_json::from_value(read_json(&dir.join("summary.json"))).unwrap();
    let st: Status = serde_json::from_value(read_json(&dir.join("status.json"))).unwrap();
    assert_eq!(s.state, RunState::Stopped);
    assert_eq!(st.state, RunState::Stopped);
    assert!(s.duration_s < 10.0, "{}", s.duration_s);
    assert!(s.totals.requests > 0);
    assert_eq!(
        s.totals.requests,
        s.timeline.iter().map(|t| t.requests).sum::<u64>()
    );
    let logs = std::fs::read_to_string(dir.join("logs.txt")).unwrap();
    assert!(logs.contains("stopping: received SIGTERM"), "{logs}");
}

#[test]
fn a_bad_config_exits_2_names_the_field_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = r#"{"name": "demo", "target": "http://127.0.0.1:8080", "threads": 2,
     "stages": [{"duration": "5s", "target": 32}],
     "endpoints": [
       {"name": "users", "method": "GET", "path": "/api/users"},
       {"name": "orders", "method": "GTE", "path": "/api/orders"}]}"#;
    let out = run_config(tmp.path(), config, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"endpoints[1].method: unknown method "GTE""#),
        "{stderr}"
    );
    assert!(
        stderr.contains("config.json"),
        "the message names the file: {stderr}"
    );
    assert!(
        !tmp.path().join("runs").exists(),
        "a run directory was created"
    );

    let out = engine()
        .args(["run", "--config", "/nonexistent/x.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.json: cannot read"));

    let out = engine()
        .args(["run", "-c", "2", "-d", "1s", "ftp://127.0.0.1:1/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("expected a URL starting with http:// or https://")
    );
}

#[test]
fn an_unusable_runs_dir_fails_before_any_load_with_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = engine()
        .args(["run", "-q", "-c", "1", "-d", "1s", "--runs-dir"])
        .arg(&file)
        .arg(format!("http://127.0.0.1:{}/", closed_port()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot create the run directory") && stderr.contains("not a directory"),
        "{stderr}"
    );
}

#[test]
fn run_dir_writes_into_exactly_that_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let dir = tmp.path().join("exact");
    let out = Command::new(userflux::bin("userflux-engine"))
        .args([
            "run",
            "-q",
            "-c",
            "2",
            "-d",
            "1s",
            "--threads",
            "1",
            "--run-dir",
        ])
        .arg(&dir)
        .arg(format!("{}/health", gw.url()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["config.json", "status.json", "summary.json", "logs.txt"] {
        assert!(dir.join(f).exists(), "{f}");
    }
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("Run directory: {}", dir.display()))
    );

    // A second run into the same directory is refused, and the first run's
    // files are as they were.
    let before = std::fs::read(dir.join("summary.json")).unwrap();
    let out = Command::new(userflux::bin("userflux-engine"))
        .args(["run", "-q", "-c", "1", "-d", "1s", "--run-dir"])
        .arg(&dir)
        .arg(format!("{}/health", gw.url()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("--run-dir {}: already holds", dir.display())),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.join("summary.json")).unwrap(), before);
}

#[test]
fn stages_ramp_vus_up_and_down_during_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(TWO_ROUTES), tmp.path());
    let config = format!(
        r#"{{"target": "{}", "threads": 2,
            "stages": [{{"duration": "2s", "target": 10}}, {{"duration": "2s", "target": 0}}],
            "endpoints": [{{"name": "a", "path": "/a"}}]}}"#,
        gw.url()
    );
    let out = run_config(tmp.path(), &config, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, _) = summary_of(tmp.path());
    let vus: Vec<u32> = s.timeline.iter().map(|t| t.vus).collect();
    // VUs at the end of each second: 5, 10, 5, 0 (give or take one for timing)
    assert!(vus.len() >= 4, "{vus:?}");
    let near = |got: u32, want: u32| got.abs_diff(want) <= 1;
    assert!(
        near(vus[0], 5) && near(vus[1], 10) && near(vus[2], 5) && near(vus[3], 0),
        "{vus:?}"
    );
    assert_eq!(
        s.totals.errors, 0,
        "ramping down must not fail in-flight requests"
    );
}

#[test]
fn think_time_paces_each_vu() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(TWO_ROUTES), tmp.path());
    let config = format!(
        r#"{{"target": "{}", "threads": 1,
            "stages": [{{"duration": "0s", "target": 2}}, {{"duration": "2s", "target": 2}}],
            "endpoints": [{{"name": "a", "path": "/a", "think_time": "100ms"}}]}}"#,
        gw.url()
    );
    let out = run_config(tmp.path(), &config, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, _) = summary_of(tmp.path());
    // each VU: ~1 ms request + 100 ms think → just under 10 requests a second
    assert!(
        (30..=42).contains(&s.totals.requests),
        "{} requests",
        s.totals.requests
    );
}

#[test]
fn target_flag_supplies_or_replaces_the_configs_target() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let config = r#"{"threads": 1, "stages": [{"duration": "0s", "target": 1}, {"duration": "1s", "target": 1}],
                     "endpoints": [{"name": "h", "path": "/health"}]}"#;
    let out = run_config(tmp.path(), config, &["--target", &gw.url()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, _) = summary_of(tmp.path());
    assert!(
        s.totals.requests > 10 && s.totals.errors == 0,
        "{:?}",
        s.totals
    );
    let resolved = read_json(&only_run(&tmp.path().join("runs")).join("config.json"));
    assert_eq!(
        resolved["target"],
        gw.url().as_str(),
        "config.json holds the target used"
    );
}

#[test]
fn a_closed_stdout_does_not_panic_the_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let mut child = engine()
        .args([
            "run",
            "-q",
            "-c",
            "1",
            "-d",
            "1s",
            "--threads",
            "1",
            "--run-dir",
        ])
        .arg(tmp.path().join("run"))
        .arg(format!("{}/health", gw.url()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader went away, as `| head` does
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    userflux::assert_ok(&out);
    assert!(tmp.path().join("run/summary.json").exists());
}

#[test]
fn the_open_file_limit_is_raised_when_it_can_be_and_explained_when_not() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = userflux::bin("userflux-engine");
    let runs = tmp.path().join("runs");
    let port = closed_port();
    let run = |limits: &str| {
        let script = format!(
            "{limits} && exec {} run -q -c 3000 -d 1s --threads 1 --runs-dir {} http://127.0.0.1:{port}/",
            engine.display(),
            runs.display()
        );
        Command::new("sh").args(["-c", &script]).output().unwrap()
    };
    // soft 1000 < 3000 ≤ hard: raised, the run happens
    let out = run("ulimit -Sn 1000");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // hard 2000 < 3000: refused before any load, saying the limit and how to raise it
    let _ = std::fs::remove_dir_all(&runs);
    let out = run("ulimit -Sn 1000 && ulimit -Hn 2000");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the hard limit is 2000") && stderr.contains("ulimit -Hn"),
        "{stderr}"
    );
    assert!(!runs.exists(), "refused before creating the run directory");
}

/// Whether every thread of process `pid` is stopped (SIGSTOP took hold).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('T'))
            })
            .unwrap_or(false)
    })
}

/// Whether process `pid`'s worker thread sleeps in the kernel (epoll_wait).
fn worker_waiting(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        comm.starts_with("userflux-worker")
            && stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('S'))
    })
}

/// Latency ends when the response reached this host, not when the engine got
/// round to reading it: a response that arrives while the engine is paused
/// (SIGSTOP for a second) does not count the pause.
#[test]
fn latency_does_not_count_the_engines_own_delay() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let run = tmp.path().join("run");
    let mut child = engine()
        .args([
            "run",
            "-q",
            "-c",
            "1",
            "-d",
            "3s",
            "--threads",
            "1",
            "--run-dir",
        ])
        .arg(&run)
        .arg(format!("http://127.0.0.1:{port}/"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    // Answer for a while first: the kernel turns packet stamping on a moment
    // after the first socket asks for it.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(500) {
        assert!(read_request(&mut s));
        s.write_all(response).unwrap();
    }
    assert!(read_request(&mut s));
    // Pause the engine while it waits for this response, as the test means:
    // a worker stopped before it got back to epoll_wait has spent the pause
    // "handling events", is judged saturated, and rightly reads without
    // receive times (this race failed the test on a busy machine).
    while !worker_waiting(child.id()) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the worker never went back to waiting"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) }, 0);
    while !all_threads_stopped(child.id()) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "SIGSTOP did not take"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    s.write_all(response).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGCONT) }, 0);
    while read_request(&mut s) {
        if s.write_all(response).is_err() {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
    let summary = read_json(&run.join("summary.json"));
    let totals = &summary["totals"];
    assert_eq!(totals["errors"], 0, "{totals}");
    assert!(totals["requests"].as_u64().unwrap() > 10, "{totals}");
    // Counting the pause would make the slowest request take over 1000 ms.
    let max = totals["latency_ms"]["max"].as_f64().unwrap();
    assert!(max < 500.0, "the engine's pause was counted: max {max} ms");
}

#[test]
fn a_configs_requests_budget_is_exact_over_endpoints_workers_and_models() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(TWO_ROUTES), tmp.path());
    // Two closed-model endpoints and one open-model one, on two workers.
    let config = format!(
        r#"{{"target": "{}", "threads": 2, "requests": 1234,
            "stages": [{{"duration": "0s", "target": 5}}, {{"duration": "30s", "target": 5}}],
            "endpoints": [{{"name": "a", "path": "/a", "weight": 2}}, {{"name": "b", "path": "/b"}},
                          {{"name": "o", "path": "/a", "rate": 200}}]}}"#,
        gw.url()
    );
    let out = run_config(tmp.path(), &config, &[]);
    userflux::assert_ok(&out);
    let (s, _) = summary_of(tmp.path());
    assert_eq!(s.state, RunState::Finished);
    assert_eq!(s.totals.requests, 1234, "{:?}", s.totals);
    let by_endpoint: u64 = s.endpoints.values().map(|e| e.requests).sum();
    assert_eq!(by_endpoint, 1234);
    assert_eq!(s.timeline.iter().map(|t| t.requests).sum::<u64>(), 1234);
    assert!(
        s.endpoints["o"].requests > 0,
        "the open model shared the budget"
    );
    assert_eq!(s.totals.dropped, 0, "sends past the budget are not dropped");
    assert!(
        s.duration_s < 25.0,
        "finished at the budget: {}",
        s.duration_s
    );

    // `-n` replaces it
    let tmp = tempfile::tempdir().unwrap();
    let out = run_config(tmp.path(), &config, &["-n", "100"]);
    userflux::assert_ok(&out);
    let (s, _) = summary_of(tmp.path());
    assert_eq!(s.totals.requests, 100);
    assert!(
        s.duration_s < 25.0,
        "finished at the budget: {}",
        s.duration_s
    );

    // and 0 is refused, naming the field
    let tmp = tempfile::tempdir().unwrap();
    let out = run_config(tmp.path(), &config.replace("1234", "0"), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("requests: must be at least 1"), "{err}");
    assert!(!tmp.path().join("runs").exists());
}

#[test]
fn validate_warns_of_a_host_that_does_not_resolve_here_and_run_refuses_it() {
    // `.invalid` is reserved (RFC 6761): it never resolves, and resolvers
    // answer for it without a query leaving the machine.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("c.json");
    std::fs::write(
        &file,
        r#"{"target": "http://gateway.userflux.invalid:8080", "threads": 1,
            "stages": [{"duration": "1s", "target": 1}], "endpoints": [{"name": "a", "path": "/"}]}"#,
    )
    .unwrap();
    for mut cmd in [
        {
            let mut c = engine();
            c.arg("validate");
            c
        },
        {
            let mut c = Command::new(userflux::bin("userfluxctl"));
            c.args(["config", "validate"]);
            c
        },
    ] {
        let out = cmd.arg(&file).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        userflux::assert_ok(&out);
        assert!(
            err.contains("warning: target: cannot resolve host \"gateway.userflux.invalid\""),
            "{err}"
        );
    }
    let out = engine()
        .args(["run", "-q", "--config"])
        .arg(&file)
        .arg("--runs-dir")
        .arg(tmp.path().join("runs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot resolve host"));
    assert!(!tmp.path().join("runs").exists());
}
