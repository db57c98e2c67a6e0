//! The demo gateway spoken to in raw bytes, and loaded by the engine where
//! a behaviour only shows under load (capacity, error rates).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use userflux::{Gateway, engine, only_run, read_json};
use userflux_engine::summary::Summary;

fn exchange(gw: &Gateway, request: &[u8], expect_responses: usize) -> String {
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while String::from_utf8_lossy(&got).matches("HTTP/1.1 ").count() < expect_responses {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn answers_routes_404_405_and_keeps_connections_alive_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    // three pipelined requests on one connection, answered in order
    let out = exchange(
        &gw,
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nDELETE /api/users HTTP/1.1\r\nHost: x\r\n\r\n",
        3,
    );
    let statuses: Vec<&str> = out
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| out[i..].split("\r\n").next().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 404 Not Found",
            "HTTP/1.1 405 Method Not Allowed"
        ],
        "{out}"
    );
    // a POST body is consumed, and the query string is ignored for matching
    let out = exchange(&gw, b"POST /api/orders?x=1 HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcdGET /health HTTP/1.1\r\n\r\n", 2);
    assert_eq!(out.matches("HTTP/1.1 ").count(), 2, "{out}");
    assert!(out.contains("Content-Length: 128\r\n"), "{out}");
}

#[test]
fn closes_after_connection_close_and_rejects_garbage() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let out = exchange(&gw, b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", 1);
    assert!(
        out.contains("Connection: close\r\n") && out.ends_with("\r\n\r\nxx"),
        "{out:?}"
    );
    let out = exchange(&gw, b"\x00\x01garbage\r\n\r\n", 1);
    assert!(out.starts_with("HTTP/1.1 400 Bad Request"), "{out:?}");
}

#[test]
fn a_route_file_error_names_the_field_and_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("r.json");
    std::fs::write(
        &file,
        r#"{"routes":[{"path":"/a","calls":[{"service":"s","error_rate":1.5}]}]}"#,
    )
    .unwrap();
    let out = std::process::Command::new(userflux::bin("userflux-gateway"))
        .arg("--routes")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("routes[0].calls[0].error_rate"));
}

fn load(gw: &Gateway, tmp: &std::path::Path, path: &str, vus: u32, secs: u32) -> Summary {
    let runs = tmp.join(format!("runs{}", path.replace('/', "_")));
    let out = engine()
        .args([
            "run",
            "-q",
            "--threads",
            "1",
            "-c",
            &vus.to_string(),
            "-d",
            &format!("{secs}s"),
            "--runs-dir",
        ])
        .arg(&runs)
        .arg(format!("{}{path}", gw.url()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_value(read_json(&only_run(&runs).join("summary.json"))).unwrap()
}

#[test]
fn capacity_queues_calls_and_error_rate_fails_that_share() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        Some(
            r#"{"routes": [
            {"path": "/narrow", "calls": [{"service": "one", "latency": "50ms", "capacity": 1}]},
            {"path": "/flaky", "calls": [{"service": "f", "latency": "1ms", "error_rate": 0.3}]},
            {"path": "/chain", "mode": "sequential", "calls": [{"service": "x", "latency": "20ms"}, {"service": "y", "latency": "30ms"}]}
        ]}"#,
        ),
        tmp.path(),
    );
    // 4 VUs through a service that runs one 50 ms call at a time: 20 req/s,
    // and each request waits for the three ahead of it (about 200 ms).
    let t0 = Instant::now();
    let s = load(&gw, tmp.path(), "/narrow", 4, 2);
    let narrow = s.totals.requests as f64 / 2.0;
    assert!(
        (14.0..=24.0).contains(&narrow),
        "{narrow} req/s through capacity 1"
    );
    let p50 = s.totals.latency_ms.unwrap().p50;
    assert!((150.0..=260.0).contains(&p50), "queued p50 {p50} ms");
    assert!(t0.elapsed() < Duration::from_secs(10));

    let s = load(&gw, tmp.path(), "/flaky", 4, 1);
    let rate = s.totals.error_rate;
    assert!(s.totals.requests > 500, "{}", s.totals.requests);
    assert!((0.25..=0.35).contains(&rate), "error rate {rate}");
    assert_eq!(s.totals.status_codes.get("503"), Some(&s.totals.errors));

    let s = load(&gw, tmp.path(), "/chain", 2, 1);
    let p50 = s.totals.latency_ms.unwrap().p50;
    assert!(
        (50.0..=58.0).contains(&p50),
        "sequential 20+30 ms gave p50 {p50}"
    );
}

#[test]
fn stats_count_the_calls_ended_and_how_late_they_fired() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    // Pipelined: each request starts when the one before it is answered, so
    // the stats request sees all three calls (users, 2 ms) ended.
    let out = exchange(
        &gw,
        b"GET /api/users HTTP/1.1\r\n\r\nGET /api/users HTTP/1.1\r\n\r\nGET /api/users HTTP/1.1\r\n\r\nGET /__gateway/stats HTTP/1.1\r\n\r\n",
        4,
    );
    let body = out.rsplit("\r\n\r\n").next().unwrap();
    let stats: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(stats["calls_ended"], 3, "{out}");
    let late = stats["calls_late_1ms"].as_u64().unwrap();
    assert!(late <= 3, "{stats}");
    assert!(stats["max_late_us"].is_u64(), "{stats}");
}
