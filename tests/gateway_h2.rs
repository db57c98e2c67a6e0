//! The demo gateway over HTTP/2, driven by other stacks' clients: curl
//! (libcurl with nghttp2) and h2load (nghttp2's load tool, Debian's
//! `nghttp2-client`). h2c with prior knowledge and h2 over TLS by ALPN on
//! the port that serves HTTP/1.1: the same routes, statuses, Server-Timing,
//! logins and counts, and many streams on one connection.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use userflux::{Gateway, output_within};

/// A bound on a client's run: it ends in well under a second here.
const LIMIT: Duration = Duration::from_secs(60);

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{name} is not installed: apt-get install nghttp2-client curl (.ci/run does)"
    );
    Command::new(name)
}

/// `curl ARGS URL`: (status line and headers, body).
fn curl(args: &[&str], url: &str) -> (String, String) {
    let out = output_within(
        tool("curl")
            .args(["-sS", "-D", "/dev/stderr", "--max-time", "20"])
            .args(args)
            .arg(url),
        LIMIT,
    );
    assert!(
        out.status.success(),
        "curl {args:?} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The gateway's own counts, asked over HTTP/1.1.
fn stats(gw: &Gateway) -> serde_json::Value {
    stats_at(&gw.url(), &[])
}

/// The counts of the gateway at `base` (`https://…` with `--cacert`).
fn stats_at(base: &str, args: &[&str]) -> serde_json::Value {
    let (_, body) = curl(
        &[args, &["--http1.1"]].concat(),
        &format!("{base}/__gateway/stats"),
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// h2load's summary: (requests done, [2xx, 3xx, 4xx, 5xx]) after checking
/// that every request was done and none went unanswered.
fn h2load(args: &[&str], url: &str) -> (u64, [u64; 4]) {
    let out = output_within(tool("h2load").args(args).arg(url), LIMIT);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "h2load {args:?}: {text}");
    let line = |prefix: &str| -> Vec<u64> {
        let l = text
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {text}"));
        l[prefix.len()..]
            .split(',')
            .map(|w| w.split_whitespace().next().unwrap().parse().unwrap())
            .collect()
    };
    // requests: N total, N started, N done, N succeeded, F failed, 0 errored, 0 timeout
    // (h2load counts a 5xx answer as failed; errored: no answer at all)
    let r = line("requests: ");
    assert_eq!(
        (r[2], r[3] + r[4], r[5], r[6]),
        (r[0], r[0], 0, 0),
        "{text}"
    );
    let s = line("status codes: ");
    assert!(
        text.contains("Application protocol: h2") || text.contains("Application protocol: h2c"),
        "{text}"
    );
    (r[2], [s[0], s[1], s[2], s[3]])
}

const ROUTES: &str = r#"{"routes": [
    {"path": "/ok", "calls": [{"service": "users", "latency": "1ms"}], "body_bytes": 100},
    {"path": "/flaky", "calls": [{"service": "f", "latency": "1ms", "error_rate": 0.3}]},
    {"path": "/slow", "calls": [{"service": "s", "latency": "1s", "capacity": 1000}]},
    {"path": "/big", "body_bytes": 1000000},
    {"method": "POST", "path": "/upload", "body_bytes": 2}
]}"#;

#[test]
fn h2c_with_prior_knowledge_serves_the_routes_with_server_timing_and_statuses() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(ROUTES), tmp.path());
    let h2c = ["--http2-prior-knowledge"];
    let (head, body) = curl(&h2c, &format!("{}/ok?x=1", gw.url()));
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert!(head.contains("server-timing: users;dur="), "{head}");
    assert!(head.contains(", gateway;dur="), "{head}");
    assert_eq!(body, "x".repeat(100));
    let (head, _) = curl(&h2c, &format!("{}/nope", gw.url()));
    assert!(head.starts_with("HTTP/2 404"), "{head}");
    let (head, _) = curl(
        &[&h2c[..], &["-X", "DELETE"]].concat(),
        &format!("{}/ok", gw.url()),
    );
    assert!(head.starts_with("HTTP/2 405"), "{head}");
    // a body larger than every window: flow control both ways
    let (_, body) = curl(&h2c, &format!("{}/big", gw.url()));
    assert_eq!(body.len(), 1_000_000);
    let upload = tmp.path().join("upload");
    std::fs::write(&upload, vec![b'u'; 300_000]).unwrap();
    let (head, body) = curl(
        &[
            &h2c[..],
            &["--data-binary", &format!("@{}", upload.display())],
        ]
        .concat(),
        &format!("{}/upload", gw.url()),
    );
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert_eq!(body, "xx");
    // the same port still speaks HTTP/1.1
    let (head, _) = curl(&["--http1.1"], &format!("{}/ok", gw.url()));
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let s = stats(&gw);
    assert_eq!(s["requests"]["h2"], 5, "{s}");
    assert_eq!(s["requests"]["http/1.1"], 1, "{s}");
}

#[test]
fn logins_and_cookies_work_over_h2c() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let jar = tmp.path().join("jar");
    let jar = jar.to_str().unwrap();
    let h2c = ["--http2-prior-knowledge"];
    let (head, _) = curl(
        &[&h2c[..], &["-X", "POST"]].concat(),
        &format!("{}/api/cart", gw.url()),
    );
    assert!(head.starts_with("HTTP/2 401"), "{head}");
    let (head, body) = curl(
        &[&h2c[..], &["-X", "POST", "-c", jar]].concat(),
        &format!("{}/api/login", gw.url()),
    );
    assert!(head.contains("set-cookie: session="), "{head}");
    assert!(body.starts_with("{\"token\":\""), "{body}");
    for want in ["{\"id\":1}", "{\"id\":2}"] {
        let (head, body) = curl(
            &[&h2c[..], &["-X", "POST", "-b", jar]].concat(),
            &format!("{}/api/cart", gw.url()),
        );
        assert!(head.starts_with("HTTP/2 200"), "{head}");
        assert_eq!(body, want);
    }
    // the token as a bearer header, read from the login's body
    let token = body
        .trim_start_matches("{\"token\":\"")
        .trim_end_matches("\"}");
    let (head, _) = curl(
        &[&h2c[..], &["-H", &format!("Authorization: Bearer {token}")]].concat(),
        &format!("{}/api/products/7", gw.url()),
    );
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert!(
        head.contains("catalog;dur=") && head.contains("pricing;dur="),
        "{head}"
    );
}

#[test]
fn h2load_counts_match_the_gateways_own_counts_with_errors_by_status() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(ROUTES), tmp.path());
    let (ok, codes) = h2load(
        &["-n", "2000", "-c", "4", "-m", "16"],
        &format!("{}/ok", gw.url()),
    );
    assert_eq!((ok, codes), (2000, [2000, 0, 0, 0]));
    let (ok, codes) = h2load(
        &["-n", "1000", "-c", "2", "-m", "10"],
        &format!("{}/flaky", gw.url()),
    );
    assert_eq!(ok, 1000);
    assert_eq!(codes[0] + codes[3], 1000);
    assert!((200..=400).contains(&codes[3]), "30 % errors: {codes:?}");
    let s = stats(&gw);
    assert_eq!(s["requests"]["h2"], 3000, "{s}");
    assert_eq!(s["status_codes"]["200"], 2000 + codes[0], "{s}");
    assert_eq!(s["status_codes"]["503"], codes[3], "{s}");
}

#[test]
fn many_streams_on_one_connection_are_in_flight_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(ROUTES), tmp.path());
    // One connection, 100 streams, each request a 1 s call: served one
    // after another, at most one would be in flight.
    let (ok, _) = h2load(
        &["-n", "100", "-c", "1", "-m", "100"],
        &format!("{}/slow", gw.url()),
    );
    assert_eq!(ok, 100);
    let s = stats(&gw);
    assert_eq!(s["max_in_flight"], 100, "{s}");
}

fn tls_gateway(tmp: &Path, args: &[&str]) -> (Gateway, String) {
    let certs = tmp.join("certs");
    let mut all = vec!["--tls-self-signed", certs.to_str().unwrap()];
    all.extend_from_slice(args);
    let gw = Gateway::start_with("127.0.0.1:0", Some(ROUTES), tmp, &all);
    let ca = certs.join("ca.pem").to_str().unwrap().to_string();
    (gw, ca)
}

#[test]
fn over_tls_alpn_chooses_h2_or_http1_on_one_port() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, ca) = tls_gateway(tmp.path(), &[]);
    let url = format!("https://{}/ok", gw.addr);
    let (head, _) = curl(&["--cacert", &ca, "--http2"], &url);
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert!(head.contains("server-timing: users;dur="), "{head}");
    let (head, _) = curl(&["--cacert", &ca, "--http1.1"], &url);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let (ok, codes) = h2load(&["-n", "1000", "-c", "2", "-m", "20"], &url);
    assert_eq!((ok, codes), (1000, [1000, 0, 0, 0]));
    let s = stats_at(&format!("https://{}", gw.addr), &["--cacert", &ca]);
    assert_eq!(s["requests"]["h2"], 1001, "{s}");
    assert_eq!(s["requests"]["http/1.1"], 1, "{s}");
}

#[test]
fn http1_only_refuses_h2c_and_answers_alpn_with_http1() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with("127.0.0.1:0", Some(ROUTES), tmp.path(), &["--http1-only"]);
    let out = output_within(
        tool("curl")
            .args(["-sS", "--max-time", "20", "--http2-prior-knowledge"])
            .arg(format!("{}/ok", gw.url())),
        LIMIT,
    );
    assert!(!out.status.success(), "h2c was served by --http1-only");
    let (head, _) = curl(&["--http1.1"], &format!("{}/ok", gw.url()));
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");

    let tls = tmp.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let (gw, ca) = tls_gateway(&tls, &["--http1-only"]);
    let (head, _) = curl(
        &["--cacert", &ca, "--http2"],
        &format!("https://{}/ok", gw.addr),
    );
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
}

/// One HTTP/1.1 exchange on a fresh connection: the whole response.
fn h1(gw: &Gateway, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(at) = text.find("\r\n\r\n") {
            let len: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            if got.len() >= at + 4 + len {
                return text.into_owned();
            }
        }
        assert!(n > 0, "closed early: {text}");
    }
}

#[test]
fn one_service_capacity_is_shared_by_http1_and_h2_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        Some(
            r#"{"routes": [{"path": "/narrow", "calls": [{"service": "one", "latency": "2s", "capacity": 1}]}]}"#,
        ),
        tmp.path(),
    );
    // an h2c request takes the service's one slot for 2 s ...
    let mut h2 = tool("curl")
        .args(["-sS", "-o", "/dev/null", "--http2-prior-knowledge"])
        .arg(format!("{}/narrow", gw.url()))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stats = "GET /__gateway/stats HTTP/1.1\r\n\r\n";
    while !h1(&gw, stats).contains("\"max_in_flight\":1") {
        std::thread::sleep(Duration::from_millis(5));
    }
    // ... so an HTTP/1.1 request to the same service waits for it: its
    // call takes the rest of those 2 s and then its own 2 s
    let out = h1(&gw, "GET /narrow HTTP/1.1\r\n\r\n");
    assert!(h2.wait().unwrap().success());
    let at = out.find("one;dur=").expect("Server-Timing") + "one;dur=".len();
    let ms: f64 = out[at..].split(',').next().unwrap().parse().unwrap();
    assert!(ms >= 3000.0, "queued behind the h2 request: {ms} ms\n{out}");
}
