//! k6's request phases and `status`-tagged latency, measured on real runs
//! (issue #34): `http_req_waiting` and `http_req_receiving` against a
//! server that delays its first byte and drips its body, `http_req_sending`
//! against one that reads a large body late, `http_req_blocked` in an
//! open-model run with too few connections, and
//! `http_req_duration{status:…}` on mixed statuses, the codes past the
//! eighth pooled as `other`. Each threshold judged pass or fail (exit 99).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use userflux::{Gateway, Scripted, load_run, only_run, run_with_config};
use userflux_engine::summary::{Latency, Summary};

/// A keep-alive server on 127.0.0.1:0, one thread per connection: reads a
/// request's head, waits `before_body` before reading its body, waits
/// `first_byte` more, writes the response head and the first of `pieces`
/// body pieces, then one piece every `drip / (pieces - 1)`.
fn dripping(before_body: Duration, first_byte: Duration, drip: Duration, pieces: u32) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // A fixed 64 KiB receive buffer (inherited by accepted sockets; it also
    // turns off autotuning, which grows to tcp_rmem's 32 MiB here and would
    // take a whole body unread): a large body waits for the server to read.
    let size: libc::c_int = 64 * 1024;
    // SAFETY: a valid socket and an option value of the size given.
    let set = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&listener),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "SO_RCVBUF");
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || serve(conn, before_body, first_byte, drip, pieces));
        }
    });
    url
}

fn serve(mut c: TcpStream, before_body: Duration, first: Duration, drip: Duration, pieces: u32) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
    let _ = c.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        std::thread::sleep(before_body);
        while buf.len() < head_end + len {
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + len);
        std::thread::sleep(first);
        let piece = "x".repeat(100);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            piece.len() * pieces as usize
        );
        if c.write_all(format!("{head}{piece}").as_bytes()).is_err() {
            return;
        }
        for _ in 1..pieces {
            std::thread::sleep(drip / (pieces - 1));
            if c.write_all(piece.as_bytes()).is_err() {
                return;
            }
        }
    }
}

fn run(tmp: &Path, name: &str, config: &str) -> (Option<i32>, Summary, String) {
    let runs = tmp.join(format!("runs-{name}"));
    let out = run_with_config(config, &tmp.join(format!("{name}.json")), &runs, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(runs.exists(), "no run was created: {stderr}");
    let (s, _) = load_run(&only_run(&runs));
    (out.status.code(), s, stderr)
}

/// Each threshold's key and expression, and whether it held.
fn verdicts(s: &Summary) -> Vec<(String, bool)> {
    s.thresholds
        .iter()
        .map(|t| (format!("{}: {}", t.metric, t.expression), t.ok))
        .collect()
}

fn near(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= want * 0.10,
        "{what}: {got} ms, expected {want} ms ± 10 %"
    );
}

fn phase<'a>(
    s: &'a Summary,
    ep: &str,
    f: fn(&userflux_engine::summary::Stats) -> &Option<Latency>,
) -> &'a Latency {
    f(&s.endpoints[ep])
        .as_ref()
        .unwrap_or_else(|| panic!("no such phase for {ep}: {:?}", s.endpoints[ep]))
}

#[test]
fn waiting_and_receiving_are_the_servers_delays() {
    let tmp = tempfile::tempdir().unwrap();
    let url = dripping(
        Duration::ZERO,
        Duration::from_millis(200),
        Duration::from_millis(300),
        7,
    );
    let config = format!(
        r#"{{"target": "{url}", "threads": 1, "stages": [{{"duration": "0s", "target": 1}}, {{"duration": "3s", "target": 1}}],
            "thresholds": {{
              "http_req_waiting": ["p(50)>180", "p(50)<150"],
              "http_req_receiving": ["med>270", "max<100"],
              "http_req_sending": ["p(99)<50"],
              "http_req_blocked": ["max<1"]
            }},
            "endpoints": [{{"name": "drip", "path": "/"}}]}}"#
    );
    let (code, s, stderr) = run(tmp.path(), "drip", &config);
    assert_eq!(code, Some(99), "{stderr}");
    assert!(
        s.endpoints["drip"].requests >= 4,
        "{:?}",
        s.endpoints["drip"]
    );
    near(
        "waiting p50",
        phase(&s, "drip", |e| &e.waiting_ms).p50,
        200.0,
    );
    near(
        "receiving p50",
        phase(&s, "drip", |e| &e.receiving_ms).p50,
        300.0,
    );
    // the whole of it: waiting then receiving
    let latency = s.endpoints["drip"].latency_ms.as_ref().unwrap().p50;
    near("latency p50", latency, 500.0);
    // a small request goes whole into the socket at once
    assert!(phase(&s, "drip", |e| &e.sending_ms).max < 5.0);
    // a closed-model VU owns its connection: never blocked, nothing kept
    assert!(s.endpoints["drip"].blocked_ms.is_none());
    assert!(s.totals.blocked_ms.is_none());
    assert_eq!(
        verdicts(&s),
        [
            ("http_req_blocked: max<1".to_string(), true),
            ("http_req_receiving: med>270".to_string(), true),
            ("http_req_receiving: max<100".to_string(), false),
            ("http_req_sending: p(99)<50".to_string(), true),
            ("http_req_waiting: p(50)>180".to_string(), true),
            ("http_req_waiting: p(50)<150".to_string(), false),
        ]
    );
}

#[test]
fn sending_a_large_body_to_a_slow_reader_takes_time() {
    let tmp = tempfile::tempdir().unwrap();
    // the server reads the head, then the 8 MB body only 300 ms later
    let url = dripping(
        Duration::from_millis(300),
        Duration::ZERO,
        Duration::ZERO,
        1,
    );
    let body = "b".repeat(8 << 20);
    let config = format!(
        r#"{{"target": "{url}", "threads": 1, "stages": [{{"duration": "0s", "target": 1}}, {{"duration": "2s", "target": 1}}],
            "thresholds": {{"http_req_sending": ["p(50)>100"]}},
            "endpoints": [{{"name": "upload", "method": "POST", "path": "/", "body": "{body}"}}]}}"#
    );
    let (code, s, stderr) = run(tmp.path(), "pass", &config);
    assert_eq!(code, Some(0), "{stderr}");
    let sending = phase(&s, "upload", |e| &e.sending_ms);
    assert!(sending.p50 > 100.0, "{sending:?}");
    assert!(
        sending.max <= s.endpoints["upload"].latency_ms.as_ref().unwrap().max,
        "sending within the request's latency"
    );
    let config = config.replace("p(50)>100", "p(50)<100");
    let (code, s, stderr) = run(tmp.path(), "fail", &config);
    assert_eq!(code, Some(99), "{stderr}");
    assert_eq!(
        verdicts(&s),
        [("http_req_sending: p(50)<100".to_string(), false)]
    );
}

#[test]
fn an_open_model_send_waits_for_a_busy_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let routes = r#"{"routes": [{"path": "/slow", "calls": [{"service": "slow", "latency": "100ms"}]},
                               {"path": "/fast", "calls": [{"service": "fast", "latency": "1ms"}]}]}"#;
    let gw = Gateway::start(Some(routes), tmp.path());
    // 2 connections at 100 ms a request carry 20 sends a second, 40 are due
    let config = format!(
        r#"{{"target": "{}", "threads": 1, "duration": "3s",
            "thresholds": {{"http_req_blocked{{endpoint:slow}}": ["p(90)>50"],
                            "http_req_blocked{{endpoint:fast}}": ["p(50)<20"],
                            "http_req_blocked": ["max<10"]}},
            "endpoints": [{{"name": "slow", "path": "/slow", "rate": 40, "pre_allocated_vus": 2, "max_vus": 2}},
                          {{"name": "fast", "path": "/fast", "rate": 40, "max_vus": 20}}]}}"#,
        gw.url()
    );
    let (code, s, stderr) = run(tmp.path(), "open", &config);
    assert_eq!(code, Some(99), "{stderr}");
    let slow = phase(&s, "slow", |e| &e.blocked_ms);
    assert!(slow.p90 > 50.0, "{slow:?}");
    let fast = phase(&s, "fast", |e| &e.blocked_ms);
    assert!(fast.p50 < 20.0, "{fast:?}");
    assert_eq!(
        verdicts(&s),
        [
            ("http_req_blocked: max<10".to_string(), false),
            (
                "http_req_blocked{endpoint:fast}: p(50)<20".to_string(),
                true
            ),
            (
                "http_req_blocked{endpoint:slow}: p(90)>50".to_string(),
                true
            ),
        ]
    );
}

/// A server answering request `n` (from 0) with `status(n)`, after
/// `delay(status)`.
fn statuses(status: fn(u64) -> u16, slow: fn(u16) -> bool) -> Scripted {
    let n = Arc::new(AtomicU64::new(0));
    Scripted::start(Arc::new(move |_| {
        let code = status(n.fetch_add(1, Ordering::Relaxed));
        if slow(code) {
            std::thread::sleep(Duration::from_millis(100));
        }
        format!("HTTP/1.1 {code} X\r\nContent-Length: 2\r\n\r\nok")
    }))
}

#[test]
fn latency_thresholds_by_status() {
    let tmp = tempfile::tempdir().unwrap();
    // every other response a slow 503
    let server = statuses(|n| if n % 2 == 0 { 200 } else { 503 }, |c| c == 503);
    let config = format!(
        r#"{{"target": "{}", "threads": 1, "stages": [{{"duration": "0s", "target": 1}}, {{"duration": "2s", "target": 1}}],
            "thresholds": {{
              "http_req_duration{{status:200}}": ["p(99)<50"],
              "http_req_duration{{status:503}}": ["p(50)>80", "p(50)<50"],
              "http_req_duration{{status:404}}": ["p(99)<1"],
              "http_req_duration{{status:503,expected_response:true}}": ["max<1"],
              "http_req_duration": ["p(99)<50"]
            }},
            "endpoints": [{{"name": "mixed", "path": "/"}}]}}"#,
        server.url()
    );
    let (code, s, stderr) = run(tmp.path(), "mixed", &config);
    assert_eq!(code, Some(99), "{stderr}");
    let codes = &s.endpoints["mixed"].status_codes;
    assert!(codes["200"] >= 3 && codes["503"] >= 3, "{codes:?}");
    let observed = |key: &str, expr: &str| {
        let t = s
            .thresholds
            .iter()
            .find(|t| t.metric == key && t.expression == expr)
            .unwrap_or_else(|| panic!("{key} {expr}: {:?}", s.thresholds));
        (t.observed, t.ok)
    };
    let (p99_200, ok) = observed("http_req_duration{status:200}", "p(99)<50");
    assert!(ok && p99_200.unwrap() < 50.0, "{p99_200:?}");
    let (p50_503, ok) = observed("http_req_duration{status:503}", "p(50)>80");
    assert!(ok && p50_503.unwrap() >= 100.0, "{p50_503:?}");
    assert!(!observed("http_req_duration{status:503}", "p(50)<50").1);
    // no response had it: nothing observed, the threshold holds (as k6's)
    assert_eq!(
        observed("http_req_duration{status:404}", "p(99)<1"),
        (None, true)
    );
    // 503 is not an expected response: nothing is both
    assert_eq!(
        observed(
            "http_req_duration{status:503,expected_response:true}",
            "max<1"
        ),
        (None, true)
    );
    assert!(!observed("http_req_duration", "p(99)<50").1);
    // the histograms a merge judges them again from
    let by = &s.histograms_status["mixed"];
    assert_eq!(by.keys().collect::<Vec<_>>(), ["200", "503"]);
}

#[test]
fn statuses_past_the_eighth_share_the_other_histogram() {
    let tmp = tempfile::tempdir().unwrap();
    // eight fast codes first (210–217), then slow 298 and 299 alternately
    let server = statuses(
        |n| {
            if n < 8 {
                210 + n as u16
            } else {
                298 + (n % 2) as u16
            }
        },
        |c| c >= 298,
    );
    let config = format!(
        r#"{{"target": "{}", "threads": 1, "stages": [{{"duration": "0s", "target": 1}}, {{"duration": "2s", "target": 1}}],
            "thresholds": {{
              "http_req_duration{{status:213}}": ["max<50"],
              "http_req_duration{{status:299}}": ["p(50)>80"],
              "http_req_duration{{status:298}}": ["p(50)<50"]
            }},
            "endpoints": [{{"name": "many", "path": "/"}}]}}"#,
        server.url()
    );
    let (code, s, stderr) = run(tmp.path(), "many", &config);
    assert_eq!(code, Some(99), "{stderr}");
    let codes = &s.endpoints["many"].status_codes;
    assert!(codes["298"] >= 3 && codes["299"] >= 3, "{codes:?}");
    let by = &s.histograms_status["many"];
    let keys: Vec<&str> = by.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "210", "211", "212", "213", "214", "215", "216", "217", "other"
        ]
    );
    assert_eq!(
        verdicts(&s),
        [
            ("http_req_duration{status:213}: max<50".to_string(), true),
            ("http_req_duration{status:298}: p(50)<50".to_string(), false),
            ("http_req_duration{status:299}: p(50)>80".to_string(), true),
        ]
    );
}
