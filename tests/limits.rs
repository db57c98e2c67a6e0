//! Every config that validates runs and ends (issue #21): extreme values
//! are refused with their field path (exit 2, nothing created) through
//! `userflux-engine validate`, `run` and `userfluxctl config validate`; the
//! largest accepted values run and stop; a huge rate ends on time and
//! honours the first signal; a panic leaves a `failed` run, not a
//! `running` one.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use userflux::{Gateway, bin, engine, load_run, only_run};
use userflux_engine::status::Status;
use userflux_engine::summary::RunState;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `validate`, `run` and `userfluxctl config validate` all refuse `file`
/// with exit 2 and a message containing `want`; `run` creates nothing.
fn refused_everywhere(file: &Path, want: &str) {
    let runs = file.parent().unwrap().join("runs");
    let outs: Vec<(&str, Output)> = vec![
        (
            "engine validate",
            engine().arg("validate").arg(file).output().unwrap(),
        ),
        (
            "engine run",
            engine()
                .args(["run", "-q", "--config"])
                .arg(file)
                .arg("--runs-dir")
                .arg(&runs)
                .output()
                .unwrap(),
        ),
        (
            "ctl config validate",
            Command::new(bin("userfluxctl"))
                .args(["config", "validate"])
                .arg(file)
                .output()
                .unwrap(),
        ),
    ];
    for (what, out) in outs {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what} {}: {err}",
            file.display()
        );
        assert!(err.contains(want), "{what}: {want:?} not in {err}");
    }
    assert!(!runs.exists(), "a run directory was created");
}

const BASE: &str = r#"{"target": "http://127.0.0.1:9", "threads": 1,
  "stages": [{"duration": "0s", "target": 1}, {"duration": "1s", "target": 1}],
  "endpoints": [{"name": "e", "path": "/"}]}"#;

/// BASE with `field` (a top-level key, or `ep.KEY` on the endpoint) set to `value`.
fn with(field: &str, value: serde_json::Value) -> String {
    let mut c: serde_json::Value = serde_json::from_str(BASE).unwrap();
    match field.strip_prefix("ep.") {
        Some(k) => c["endpoints"][0][k] = value,
        None => c[field] = value,
    }
    c.to_string()
}

#[test]
fn extreme_and_malformed_configs_are_refused_with_the_field() {
    use serde_json::json;
    let tmp = tempfile::tempdir().unwrap();
    let huge = "18446744073709551615s";
    let cases: Vec<(String, &str)> = vec![
        (
            with(
                "stages",
                json!([{"duration": huge, "target": 1}, {"duration": huge, "target": 1}]),
            ),
            "stages[0].duration: must be at most 30days",
        ),
        (
            with("duration", json!(huge)),
            "duration: must be at most 30days",
        ),
        (
            with("graceful_stop", json!(huge)),
            "graceful_stop: must be at most 1h",
        ),
        (
            with("timeouts", json!({"request": huge})),
            "timeouts.request: must be at most 1h",
        ),
        (
            with("timeouts", json!({"connect": "0s"})),
            "timeouts.connect: must be at least 1ms",
        ),
        (
            with("ep.think_time", json!(huge)),
            "endpoints[0].think_time: must be at most 1h",
        ),
        (
            with("ep.rate_stages", json!([{"duration": huge, "target": 5}])),
            "endpoints[0].rate_stages[0].duration: must be at most 30days",
        ),
        (
            with("ep.rate", json!(1e12)),
            "endpoints[0].rate: at most 10000000 requests per second",
        ),
        (
            with("ep.expect", json!([])),
            "endpoints[0].expect: give at least one status code",
        ),
        // flows and steps are held to the endpoints' bounds (issue #27: the
        // first panicked the worker, the second spun it forever)
        (
            with(
                "flows",
                json!([{"name": "f", "think_time": huge, "steps": [{"name": "s", "path": "/"}]}]),
            ),
            "flows[0].think_time: must be at most 1h",
        ),
        (
            with(
                "flows",
                json!([{"name": "f", "steps": [{"name": "s", "path": "/", "think_time": huge}]}]),
            ),
            "flows[0].steps[0].think_time: must be at most 1h",
        ),
        (
            with(
                "flows",
                json!([{"name": "f", "rate": 1e300, "steps": [{"name": "s", "path": "/"}]}]),
            ),
            "flows[0].rate: at most 10000000 requests per second, got 1e300",
        ),
        (
            with(
                "flows",
                json!([{"name": "f", "steps": [{"name": "s", "path": "/", "expect": []}]}]),
            ),
            "flows[0].steps[0].expect: give at least one status code",
        ),
        (
            with("name", json!("bad\u{0}name")),
            "name: contains control characters",
        ),
        (
            with("stages", json!([{"duration": "2s", "target": 0}])),
            "the run would send nothing",
        ),
        ("[]".into(), "a config is a JSON object"),
        (
            BASE.replace("\"threads\": 1,", "\"threads\": 1, \"threads\": 2,"),
            "threads: the key \"threads\" is given twice",
        ),
        (
            with(
                "endpoints",
                serde_json::Value::Array(
                    (0..2001)
                        .map(|i| json!({"name": format!("e{i}"), "path": "/"}))
                        .collect(),
                ),
            ),
            "endpoints: at most 2000 endpoints, got 2001",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let file = write(tmp.path(), &format!("c{i}.json"), text);
        refused_everywhere(&file, want);
    }
    // A byte-order mark is skipped, not an error.
    let file = write(tmp.path(), "bom.json", &format!("\u{feff}{BASE}"));
    let out = engine().arg("validate").arg(&file).output().unwrap();
    userflux::assert_ok(&out);
    // A config file without an end is refused at its size limit.
    let out = engine()
        .args(["run", "--config", "/dev/zero", "--runs-dir"])
        .arg(tmp.path().join("runs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/dev/zero: larger than 16 MiB"));
}

/// Runs `args` (with `-q --runs-dir RUNS`), sends SIGTERM after `after`,
/// and returns the exit code and how long the engine took to end from then.
fn stop_after(args: &[&str], runs: &Path, after: Duration) -> (Option<i32>, Duration) {
    let mut child = engine()
        .args(args)
        .arg("-q")
        .arg("--runs-dir")
        .arg(runs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st.code(), t0.elapsed());
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the engine ignored SIGTERM for 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_largest_accepted_values_run_and_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    // Every duration, rate and count at its bound (VUs kept to what a test
    // machine's file limit allows).
    let config = format!(
        r#"{{"target": "{}", "threads": 2, "duration": "30days", "requests": 1000000000000000,
            "graceful_stop": "1h", "max_workers": 1000000,
            "timeouts": {{"connect": "1h", "request": "1h"}},
            "stages": [{{"duration": "30days", "target": 8}}],
            "thresholds": {{"http_req_duration": [{{"threshold": "p(99)<3600000", "abort_on_fail": true, "delay_abort_eval": "30days"}}]}},
            "endpoints": [
              {{"name": "a", "path": "/health", "weight": 1000000, "think_time": "1h"}},
              {{"name": "b", "path": "/health", "weight": 1}},
              {{"name": "o", "path": "/health", "rate": 10000000, "pre_allocated_vus": 4, "max_vus": 4,
                "expect": [200]}},
              {{"name": "r", "path": "/health", "rate_stages": [{{"duration": "30days", "target": 10000000}}],
                "pre_allocated_vus": 2, "max_vus": 2}}]}}"#,
        gw.url()
    );
    let file = write(tmp.path(), "max.json", &config);
    let out = engine().arg("validate").arg(&file).output().unwrap();
    userflux::assert_ok(&out);
    let runs = tmp.path().join("runs");
    let (code, took) = stop_after(
        &["run", "--config", file.to_str().unwrap()],
        &runs,
        Duration::from_secs(1),
    );
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    let (s, st) = load_run(&only_run(&runs));
    assert_eq!((s.state, st.state), (RunState::Stopped, RunState::Stopped));
    assert!(s.endpoints["o"].requests > 0 && s.endpoints["o"].dropped > 0);
}

#[test]
fn a_rate_far_beyond_the_machine_ends_on_time_and_honours_the_first_signal() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let url = format!("{}/health", gw.url());
    // ends by itself on time
    let runs = tmp.path().join("runs");
    let t0 = Instant::now();
    let out = engine()
        .args([
            "run", &url, "--rate", "10000000", "-d", "2s", "-c", "8", "-t", "2", "-q",
        ])
        .arg("--runs-dir")
        .arg(&runs)
        .output()
        .unwrap();
    userflux::assert_ok(&out);
    assert!(t0.elapsed() < Duration::from_secs(12), "{:?}", t0.elapsed());
    let (s, _) = load_run(&only_run(&runs));
    assert!(
        s.totals.dropped > 1_000_000,
        "the backlog is counted: {}",
        s.totals.dropped
    );
    // the first SIGTERM is honoured mid-run
    let runs = tmp.path().join("runs2");
    let (code, took) = stop_after(
        &[
            "run", &url, "--rate", "10000000", "-d", "60s", "-c", "8", "-t", "2",
        ],
        &runs,
        Duration::from_secs(1),
    );
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    assert_eq!(load_run(&only_run(&runs)).0.state, RunState::Stopped);
}

/// A 20 s quick run against the gateway with the fault `fault` injected.
fn with_fault(fault: &str, gw: &Gateway, runs: &Path, args: &[&str]) -> Output {
    engine()
        .args(["run", &format!("{}/health", gw.url()), "-d", "20s", "-q"])
        .args(args)
        .arg("--runs-dir")
        .arg(runs)
        .env("USERFLUX_TEST_FAULT", fault)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

#[test]
fn a_panicking_worker_leaves_a_failed_run_with_its_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let runs = tmp.path().join("runs");
    let out = with_fault("worker-panic", &gw, &runs, &["-c", "4", "-t", "2"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let dir = only_run(&runs);
    let (s, st) = load_run(&dir);
    assert_eq!((s.state, st.state), (RunState::Failed, RunState::Failed));
    let error = st.error.expect("an error");
    assert_eq!(error.kind, "panic");
    assert!(
        error
            .message
            .contains("thread 'userflux-worker-0' panicked at")
            && error
                .message
                .contains("injected by USERFLUX_TEST_FAULT=worker-panic"),
        "{}",
        error.message
    );
    assert!(s.duration_s < 10.0, "the run stopped: {}", s.duration_s);
    assert!(s.totals.requests > 0, "what was measured is kept");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Failed: thread 'userflux-worker-0'"));
}

#[test]
fn a_panicking_aggregator_leaves_a_failed_status() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let runs = tmp.path().join("runs");
    let out = with_fault("aggregator-panic", &gw, &runs, &["-c", "2", "-t", "1"]);
    assert_eq!(out.status.code(), Some(101), "{out:?}");
    let dir = only_run(&runs);
    let st: Status = serde_json::from_value(userflux::read_json(&dir.join("status.json"))).unwrap();
    assert_eq!(st.state, RunState::Failed, "not left running");
    assert_eq!(st.exit_code, Some(101));
    let message = st.error.expect("an error").message;
    assert!(
        message.contains("injected by USERFLUX_TEST_FAULT=aggregator-panic"),
        "{message}"
    );
    let logs = std::fs::read_to_string(dir.join("logs.txt")).unwrap();
    assert!(
        logs.contains("engine failure: thread 'main' panicked"),
        "{logs}"
    );
}
