//! Honest end-of-run accounting (issue #14): a request still waiting for its
//! response when the run ends is a failed request of kind `interrupted`,
//! counted everywhere a request is; one that finishes within the graceful
//! stop is an ordinary request.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use userflux::{engine, load_run, only_run, read_request, run_with_config};
use userflux_engine::summary::{RunState, Summary};

const VUS: u64 = 3;

/// Serves every connection with `behave` on its own thread, for 15 s at most.
fn server(behave: fn(TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten().take(256) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(15)));
            std::thread::spawn(move || behave(conn));
        }
    });
    port
}

/// Reads the request and then only reads (never answers).
fn never_answers(mut s: TcpStream) {
    let mut b = [0u8; 1024];
    while matches!(s.read(&mut b), Ok(n) if n > 0) {}
}

/// Answers a byte every 200 ms, for longer than any run here.
fn drips(mut s: TcpStream) {
    if read_request(&mut s) {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        for b in resp.iter().chain([b'x'; 100].iter()) {
            if s.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A chunked body that never ends, written as fast as the engine reads.
fn streams_forever(mut s: TcpStream) {
    if read_request(&mut s) {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = format!("1000\r\n{}\r\n", "y".repeat(0x1000));
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) && s.write_all(chunk.as_bytes()).is_ok() {}
    }
}

/// A 1 s closed-model run of VUS connections with a 500 ms graceful stop
/// and a request timeout far beyond the run.
fn run(port: u16, dir: &Path, thresholds: &str) -> (Output, Duration) {
    let json = format!(
        r#"{{"target": "http://127.0.0.1:{port}", "threads": 1, "graceful_stop": "500ms",
            "timeouts": {{"request": "60s"}}, {thresholds}
            "stages": [{{"duration": "0s", "target": {VUS}}}, {{"duration": "1s", "target": {VUS}}}],
            "endpoints": [{{"name": "e", "path": "/"}}]}}"#
    );
    let t0 = Instant::now();
    let out = run_with_config(&json, &dir.join("c.json"), &dir.join("runs"), &[]);
    (out, t0.elapsed())
}

fn interrupted_everywhere(s: &Summary) {
    let kinds = &s.totals.error_kinds;
    assert_eq!(kinds.get("interrupted"), Some(&VUS), "{kinds:?}");
    assert_eq!((s.totals.requests, s.totals.errors), (VUS, VUS));
    assert_eq!(s.totals.error_rate, 1.0);
    let e = &s.endpoints["e"];
    assert_eq!((e.requests, e.errors), (VUS, VUS));
    assert_eq!(e.error_kinds.get("interrupted"), Some(&VUS));
    assert!(
        e.latency_ms.is_none(),
        "an interrupted request has no latency"
    );
    let last = s.timeline.last().expect("a timeline");
    assert_eq!(
        (last.requests, last.errors),
        (VUS, VUS),
        "in the timeline's last second"
    );
    // That second is the graceful stop's tail: it says how much of it the
    // run covered, and its rate is per that time (charts mark it as partial
    // rather than draw a spike or a collapse: issue #28).
    let covered = last.covered.unwrap_or_else(|| {
        panic!(
            "the tail is a partial second: {:?} {}",
            s.timeline, s.duration_s
        )
    });
    assert!(covered > 0.0 && covered < 1.0, "{last:?}");
    assert!(
        (last.rps - VUS as f64 / covered).abs() < 1e-9 * last.rps,
        "{last:?}"
    );
    let i = s.interrupted.as_ref().expect("the summary says why");
    assert_eq!(i.requests, VUS);
    assert!(i.reason.contains("graceful stop (500ms)"), "{}", i.reason);
}

fn check_stuck_target(behave: fn(TcpStream)) {
    let tmp = tempfile::tempdir().unwrap();
    let port = server(behave);
    let (out, took) = run(port, tmp.path(), "");
    userflux::assert_ok(&out);
    // 1 s of load and 0.5 s of graceful stop, with room for a slow machine
    assert!(took < Duration::from_secs(5), "ended on time: {took:?}");
    let dir = only_run(&tmp.path().join("runs"));
    let (s, _) = load_run(&dir);
    assert_eq!(s.state, RunState::Finished);
    interrupted_everywhere(&s);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Interrupted: 3 request(s) were still waiting"),
        "{text}"
    );
    assert!(
        text.contains("No responses: none of the 3 request(s) got a complete response"),
        "{text}"
    );
    let logs = std::fs::read_to_string(dir.join("logs.txt")).unwrap();
    assert!(logs.contains("first interrupted error"), "{logs}");

    // The same run with a threshold on failures fails it.
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = run(
        port,
        tmp.path(),
        r#""thresholds": {"http_req_failed": ["rate<0.5"]},"#,
    );
    assert_eq!(out.status.code(), Some(99), "{out:?}");
}

#[test]
fn a_server_that_never_answers_gives_interrupted_requests() {
    check_stuck_target(never_answers);
}

#[test]
fn a_server_that_drips_gives_interrupted_requests() {
    check_stuck_target(drips);
}

#[test]
fn a_body_streamed_forever_gives_interrupted_requests() {
    check_stuck_target(streams_forever);
}

#[test]
fn requests_that_finish_within_the_graceful_stop_are_ordinary() {
    // Answers each request 600 ms after it came: the requests sent at
    // 0.6 s are in flight at the 1 s end and done at 1.2 s, inside the
    // graceful stop.
    let port = server(|mut s| {
        while read_request(&mut s) {
            std::thread::sleep(Duration::from_millis(600));
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = run(port, tmp.path(), "");
    userflux::assert_ok(&out);
    let (s, _) = load_run(&only_run(&tmp.path().join("runs")));
    assert_eq!(s.totals.requests, 2 * VUS, "{:?}", s.totals);
    assert_eq!(s.totals.errors, 0, "{:?}", s.totals.error_kinds);
    assert!(s.interrupted.is_none());
    assert_eq!(s.totals.status_codes.get("200"), Some(&(2 * VUS)));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Interrupted"), "{text}");
}

#[test]
fn a_second_signal_ends_at_once_and_still_writes_the_summary() {
    let port = server(never_answers);
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let mut child = engine()
        .args(["run", "-q", "-c", "3", "-d", "60s", "-t", "1", "--runs-dir"])
        .arg(&runs)
        .arg(format!("http://127.0.0.1:{port}/"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // start-up takes milliseconds; by then the three requests are out
    std::thread::sleep(Duration::from_millis(1000));
    for _ in 0..2 {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        std::thread::sleep(Duration::from_millis(100));
    }
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "did not end at once");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    let (s, st) = load_run(&only_run(&runs));
    assert_eq!((s.state, st.state), (RunState::Stopped, RunState::Stopped));
    assert_eq!(st.exit_code, Some(130));
    assert_eq!(s.totals.error_kinds.get("interrupted"), Some(&3));
    let i = s.interrupted.expect("interrupted");
    assert!(i.reason.contains("second SIGINT"), "{}", i.reason);
}
