//! The engine over HTTP/2 against real servers (issue #30): the demo
//! gateway (h2c with prior knowledge and h2 by ALPN on one port; its
//! `/__gateway/stats` counts requests per protocol) and nginx (h2c, and h2
//! by ALPN with the gateway's self-signed certificate). Counts
//! are exact (the server's count is the summary's), the VUs of a row share
//! `ceil(VUs / streams)` connections (the summary's connect phase and the
//! server side's established sockets agree), `auto` follows ALPN, `"2"`
//! against an HTTP/1.1-only server is a counted `protocol` error, and the
//! engine's features (flows, captures, cookies, data, checks, thresholds,
//! Server-Timing, samples, shards, a request budget, the open model) work
//! over h2. nginx's GOAWAY after `keepalive_requests` loses nothing.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use userflux::{Gateway, bin, engine, load_run, output_within};
use userflux_engine::summary::{Protocol, RunState, Summary, decode_histogram};

/// A bound on one engine run of a few seconds: a hang fails the test.
const LIMIT: Duration = Duration::from_secs(60);

/// An engine run's summary, exit code and text (stdout, stderr, logs.txt).
struct Ran {
    s: Summary,
    code: i32,
    text: String,
    dir: PathBuf,
    took: Duration,
}

/// `userflux-engine run ARGS --run-dir DIR/NAME`, to its end.
fn run(dir: &Path, name: &str, args: &[&str]) -> Ran {
    let run_dir = dir.join(name);
    let t0 = Instant::now();
    let out = output_within(
        engine()
            .args(["run", "-q"])
            .args(args)
            .arg("--run-dir")
            .arg(&run_dir),
        LIMIT,
    );
    let took = t0.elapsed();
    let logs = std::fs::read_to_string(run_dir.join("logs.txt")).unwrap_or_default();
    let text = format!(
        "{}\n{}\n--- logs.txt\n{logs}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("panicked"),
        "the engine panicked (exit {:?}): {text}",
        out.status.code()
    );
    let s = load_run(&run_dir).0;
    Ran {
        s,
        code: out.status.code().unwrap_or(-1),
        text,
        dir: run_dir,
        took,
    }
}

/// A config file in `dir`.
fn write_config(dir: &Path, name: &str, json: &str) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, json).unwrap();
    path
}

/// The gateway's own counts, asked over HTTP/1.1 by curl (`--cacert` for TLS).
fn stats(base: &str, ca: Option<&str>) -> serde_json::Value {
    let mut c = Command::new("curl");
    c.args(["-sS", "--http1.1", "--max-time", "20"]);
    if let Some(ca) = ca {
        c.args(["--cacert", ca]);
    }
    let out = output_within(c.arg(format!("{base}/__gateway/stats")), LIMIT);
    assert!(
        out.status.success(),
        "curl (apt-get install curl): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The gateway's requests over `protocol` ("h2", "http/1.1") so far.
fn served(base: &str, ca: Option<&str>, protocol: &str) -> u64 {
    stats(base, ca)["requests"][protocol].as_u64().unwrap()
}

/// How many times `phase` was recorded for `endpoint` (its histogram's count).
fn phase_count(s: &Summary, endpoint: &str, phase: &str) -> u64 {
    s.histograms_phases
        .get(endpoint)
        .and_then(|p| p.get(phase))
        .map_or(0, |h| decode_histogram(h).unwrap().len())
}

/// The server side's view of the connections: counts established TCP
/// sockets whose local port is `port` (`/proc/net/tcp`, state 01) every few
/// milliseconds until dropped; `peak()` is the most seen at once.
struct Established {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
}

impl Established {
    fn watch(port: u16) -> Established {
        let (stop, peak) = (Arc::<AtomicBool>::default(), Arc::<AtomicUsize>::default());
        let (s, p) = (Arc::clone(&stop), Arc::clone(&peak));
        let local = format!(":{port:04X} ");
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
                let n = table
                    .lines()
                    .skip(1)
                    .filter(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        f.len() > 3
                            && format!("{} ", &f[1][f[1].len() - 5..]) == local
                            && f[3] == "01"
                    })
                    .count();
                p.fetch_max(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Established { stop, peak }
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for Established {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The gateway with TLS (a self-signed CA in `dir/certs`): (gateway, CA path).
fn tls_gateway(dir: &Path, args: &[&str]) -> (Gateway, String) {
    let certs = dir.join("certs");
    let mut all = vec!["--tls-self-signed", certs.to_str().unwrap()];
    all.extend_from_slice(args);
    let gw = Gateway::start_with("127.0.0.1:0", None, dir, &all);
    let ca = certs.join("ca.pem").to_str().unwrap().to_string();
    (gw, ca)
}

#[test]
fn counts_are_exact_and_connections_are_vus_over_streams_over_h2c_and_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = Gateway::start(None, tmp.path());
    let (tls, ca) = tls_gateway(tmp.path(), &[]);
    for (gw, base, ca) in [
        (&plain, plain.url(), None),
        (&tls, format!("https://{}", tls.addr), Some(ca.as_str())),
    ] {
        // -c N --streams M: N connections × M streams, N×M VUs
        for (c, m) in [(2u32, 1u32), (2, 10), (1, 100)] {
            let before = served(&base, ca, "h2");
            let watch = Established::watch(gw.addr.port());
            let (cs, ms) = (c.to_string(), m.to_string());
            let mut args = vec![
                "--http2",
                "-c",
                &cs,
                "--streams",
                &ms,
                "-d",
                "2s",
                "--timeout",
                "10s",
            ];
            if let Some(ca) = ca {
                args.extend(["--cacert", ca]);
            }
            let url = format!("{base}/api/users");
            args.push(&url);
            let r = run(tmp.path(), &format!("{}-{c}x{m}", ca.is_some()), &args);
            let peak = watch.peak();
            drop(watch);
            let what = format!("{base} -c {c} --streams {m}\n{}", r.text);
            assert_eq!(r.code, 0, "{what}");
            let e = &r.s.endpoints["default"];
            assert_eq!(r.s.totals.errors, 0, "{what}");
            assert!(r.s.totals.requests > 50, "{what}");
            // every request the engine counted, the gateway served over h2
            assert_eq!(
                served(&base, ca, "h2") - before,
                r.s.totals.requests,
                "{what}"
            );
            assert_eq!(
                (e.protocol(), e.streams(), e.vus),
                (Protocol::H2, m, c * m),
                "{what}"
            );
            // connections: the engine's connect phases, the server's sockets
            assert_eq!(
                phase_count(&r.s, "default", "connect"),
                u64::from(c),
                "{what}"
            );
            if ca.is_some() {
                assert_eq!(phase_count(&r.s, "default", "tls_handshake"), u64::from(c));
            }
            assert_eq!(peak, c as usize, "established at the gateway\n{what}");
            let h2 = e.h2.as_ref().expect("an h2 object");
            assert_eq!((h2.goaways, h2.retried), (0, 0), "{what}");
            assert!(h2.resets.is_empty(), "{what}");
            assert!(h2.settings_ms.is_some(), "{what}");
        }
        assert_eq!(
            served(&base, ca, "http/1.1"),
            0,
            "no request fell back to 1.1"
        );
    }
}

#[test]
fn auto_takes_h2_over_https_by_alpn_and_http1_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let (tls, ca) = tls_gateway(tmp.path(), &[]);
    let plain = Gateway::start(None, tmp.path());
    let config = |target: &str| {
        format!(
            r#"{{"target": "{target}", "threads": 1, "http": "auto", "tls": {{"ca_file": "{ca}"}},
                "stages": [{{"duration": "0s", "target": 3}}, {{"duration": "1s", "target": 3}}],
                "endpoints": [{{"name": "users", "path": "/api/users"}}]}}"#
        )
    };
    for (base, want) in [
        (format!("https://{}", tls.addr), Protocol::H2),
        (plain.url(), Protocol::Http1),
    ] {
        let ca = base.starts_with("https").then_some(ca.as_str());
        let cfg = write_config(tmp.path(), "auto", &config(&base));
        let name = format!("auto-{}", want.as_str().replace('/', ""));
        let r = run(tmp.path(), &name, &["--config", cfg.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}", r.text);
        assert_eq!(r.s.totals.errors, 0, "{}", r.text);
        assert!(r.s.totals.requests > 10, "{}", r.text);
        assert_eq!(
            r.s.endpoints["users"].protocol(),
            want,
            "{base}: {}",
            r.text
        );
        let other = if want == Protocol::H2 {
            "http/1.1"
        } else {
            "h2"
        };
        assert_eq!(served(&base, ca, want.as_str()), r.s.totals.requests);
        assert_eq!(served(&base, ca, other), 0, "{base}");
    }
}

#[test]
fn http2_against_an_http1_only_server_is_a_counted_protocol_error_that_ends_on_time() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = Gateway::start_with("127.0.0.1:0", None, tmp.path(), &["--http1-only"]);
    let (tls, ca) = tls_gateway(tmp.path(), &["--http1-only"]);
    for (base, ca, why) in [
        (plain.url(), None, "did not start with SETTINGS"),
        (
            format!("https://{}", tls.addr),
            Some(ca.as_str()),
            "chose http/1.1 by ALPN",
        ),
    ] {
        let url = format!("{base}/api/users");
        let mut args = vec!["--http2", "-c", "2", "-d", "2s", "--connect-timeout", "1s"];
        if let Some(ca) = ca {
            args.extend(["--cacert", ca]);
        }
        args.push(&url);
        let r = run(tmp.path(), &format!("h1only-{}", ca.is_some()), &args);
        assert_eq!(r.code, 0, "{}", r.text);
        assert_eq!(r.s.state, RunState::Finished);
        // 2 s of stages and the default graceful stop; a wide margin
        assert!(r.took < Duration::from_secs(15), "took {:?}", r.took);
        let s = &r.s.totals;
        assert!(s.requests > 0, "{}", r.text);
        assert_eq!(s.errors, s.requests, "every request failed: {}", r.text);
        assert_eq!(
            s.error_kinds.get("protocol"),
            Some(&s.requests),
            "{:?}\n{}",
            s.error_kinds,
            r.text
        );
        let logs = std::fs::read_to_string(r.dir.join("logs.txt")).unwrap();
        let first = logs
            .lines()
            .find(|l| l.contains("first protocol error"))
            .unwrap_or_else(|| panic!("no first-error line: {logs}"));
        assert!(first.contains(why), "{first}");
        // nothing reached the server as HTTP/2
        assert_eq!(served(&base, ca, "h2"), 0);
    }
}

/// One flow over h2c: a login from a data file (its token captured from
/// JSON), a product read with the token, a cart POST authorised by the
/// session cookie alone, a checkout; checks, thresholds, Server-Timing and
/// every request sampled.
#[test]
fn a_flow_with_data_captures_cookies_checks_thresholds_and_server_timing_runs_over_h2() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let users = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/users.csv");
    let config = format!(
        r#"{{"target": "{}", "threads": 1, "http": "2", "streams": 4,
          "stages": [{{"duration": "0s", "target": 8}}, {{"duration": "2s", "target": 8}}],
          "samples": {{"rate": 1.0}},
          "timeouts": {{"connect": "2s", "request": "5s"}},
          "data": {{"users": {{"file": "{}", "order": "per_vu"}}}},
          "flows": [{{"name": "shop", "steps": [
            {{"name": "login", "method": "POST", "path": "/api/login",
             "headers": {{"content-type": "application/json"}},
             "body": "{{\"user\":\"{{{{data.users.user}}}}\",\"password\":\"{{{{data.users.password}}}}\"}}",
             "capture": {{"token": {{"json": "/token"}}}},
             "checks": {{"has token": {{"json": "/token", "exists": true}}}}}},
            {{"name": "product", "path": "/api/products/{{{{rand_int(1,5000)}}}}",
             "headers": {{"authorization": "Bearer {{{{vars.token}}}}"}},
             "checks": {{"ok": {{"status": 200}}}}}},
            {{"name": "cart", "method": "POST", "path": "/api/cart",
             "capture": {{"cart": {{"json": "/id"}}}},
             "checks": {{"cookie let it in": {{"status": 200}}}}}},
            {{"name": "checkout", "method": "POST", "path": "/api/checkout",
             "headers": {{"content-type": "application/json"}},
             "body": "{{\"cart\":{{{{vars.cart}}}}}}"}}]}}],
          "thresholds": {{"http_req_failed": ["rate<0.01"], "checks": ["rate>0.99"],
                         "http_reqs{{endpoint:shop.checkout}}": ["count>0"]}}}}"#,
        gw.url(),
        users.display()
    );
    let cfg = write_config(tmp.path(), "flow", &config);
    let r = run(tmp.path(), "flow", &["--config", cfg.to_str().unwrap()]);
    let t = &r.text;
    assert_eq!(r.code, 0, "{t}");
    assert_eq!(r.s.totals.errors, 0, "{t}");
    assert_eq!(served(&gw.url(), None, "h2"), r.s.totals.requests, "{t}");
    assert_eq!(served(&gw.url(), None, "http/1.1"), 0);
    for step in ["login", "product", "cart", "checkout"] {
        let e = &r.s.endpoints[&format!("shop.{step}")];
        assert!(e.requests > 0, "{step}: {t}");
        assert_eq!(e.protocol(), Protocol::H2, "{step}");
        assert_eq!(
            e.status_codes.keys().collect::<Vec<_>>(),
            ["200"],
            "{step}: {t}"
        );
    }
    assert!(r.s.flows["shop"].iterations > 0, "{t}");
    // the checks all passed: the token was there, the bearer and the cookie let the VU in
    assert!(!r.s.totals.checks.is_empty());
    for (name, c) in &r.s.totals.checks {
        assert!(c.passes > 0 && c.fails == 0, "{name}: {c:?}");
    }
    assert!(r.s.thresholds.iter().all(|x| x.ok), "{:?}", r.s.thresholds);
    assert_eq!(r.s.thresholds.len(), 3);
    // Server-Timing read from h2 response headers
    let st = &r.s.endpoints["shop.product"].server_timing;
    assert!(
        st.contains_key("catalog") && st.contains_key("pricing"),
        "{st:?}"
    );
    // a sample per request
    let samples = std::fs::read_to_string(r.dir.join("samples.ndjson")).unwrap();
    assert_eq!(samples.lines().count() as u64, r.s.totals.requests);
    assert!(samples.lines().any(|l| l.contains("\"shop.checkout\"")));
}

#[test]
fn a_request_budget_and_the_open_model_are_exact_over_h2() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    // -n: exactly that many requests, over 3 connections × 4 streams
    let url = format!("{}/api/users", gw.url());
    let args = [
        "--http2",
        "-c",
        "3",
        "--streams",
        "4",
        "-n",
        "500",
        "-d",
        "30s",
        &url,
    ];
    let r = run(tmp.path(), "budget", &args);
    assert_eq!(r.code, 0, "{}", r.text);
    assert_eq!(
        (r.s.totals.requests, r.s.totals.errors),
        (500, 0),
        "{}",
        r.text
    );
    assert_eq!(served(&gw.url(), None, "h2"), 500);
    // an open-model endpoint: 100 sends a second for 2 s, each sent or dropped
    let cfg = write_config(
        tmp.path(),
        "open",
        r#"{"threads": 1, "http": "2", "streams": 4,
            "stages": [{"duration": "2s", "target": 0}],
            "endpoints": [{"name": "open", "path": "/health", "rate": 100,
                           "pre_allocated_vus": 4, "max_vus": 8}]}"#,
    );
    let r = run(
        tmp.path(),
        "open",
        &["--config", cfg.to_str().unwrap(), "--target", &gw.url()],
    );
    assert_eq!(r.code, 0, "{}", r.text);
    let e = &r.s.endpoints["open"];
    assert_eq!(e.protocol(), Protocol::H2);
    assert_eq!(e.requests + e.dropped, 200, "{}", r.text);
    assert_eq!(r.s.totals.errors, 0, "{}", r.text);
    assert_eq!(served(&gw.url(), None, "h2"), 500 + e.requests);
}

#[test]
fn request_bodies_larger_than_the_initial_window_go_out_whole() {
    // 1 MiB is 16 windows of 65,535 bytes: the server's WINDOW_UPDATEs
    // must let each body go on (a first-user try found them waiting for
    // the next request's write, and timing out)
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let body = tmp.path().join("big.txt");
    std::fs::write(&body, "x".repeat(1 << 20)).unwrap();
    let url = format!("{}/api/orders", gw.url());
    let args = [
        "--http2",
        "-m",
        "POST",
        "--body-file",
        body.to_str().unwrap(),
        "-c",
        "2",
        "--streams",
        "2",
        "-n",
        "8",
        "--timeout",
        "10s",
        "-d",
        "30s",
        &url,
    ];
    let r = run(tmp.path(), "big", &args);
    assert_eq!(r.code, 0, "{}", r.text);
    assert_eq!(r.s.totals.requests, 8, "{}", r.text);
    assert_eq!(
        r.s.endpoints["default"].error_kinds.get("timeout"),
        None,
        "{}",
        r.text
    );
    assert!(r.s.totals.bytes_out >= 8 << 20, "{}", r.text);
    assert_eq!(served(&gw.url(), None, "h2"), 8);
}

/// RFC 3339 UTC with milliseconds, as `--start-at` takes it.
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[test]
fn two_shards_over_h2_merge_into_exact_totals() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let cfg = write_config(
        tmp.path(),
        "sharded",
        r#"{"name": "h2-shards", "threads": 1, "http": "2", "streams": 5,
            "stages": [{"duration": "0s", "target": 10}, {"duration": "2s", "target": 10}],
            "endpoints": [{"name": "users", "path": "/api/users"}]}"#,
    );
    let start = rfc3339(SystemTime::now() + Duration::from_millis(1500));
    let runs = tmp.path().join("runs");
    let shards: Vec<Child> = (0..2)
        .map(|i| {
            engine()
                .args(["run", "-q", "--config"])
                .arg(&cfg)
                .args(["--target", &gw.url(), "--shard", &format!("{i}/2")])
                .args(["--start-at", &start, "--run-dir"])
                .arg(runs.join(format!("shard-{i}")))
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in shards {
        assert!(c.wait().unwrap().success());
    }
    let dirs: Vec<PathBuf> = (0..2).map(|i| runs.join(format!("shard-{i}"))).collect();
    let parts: Vec<Summary> = dirs.iter().map(|d| load_run(d).0).collect();
    let merged = tmp.path().join("merged");
    let out = Command::new(bin("userfluxctl"))
        .arg("merge")
        .args(&dirs)
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    userflux::assert_ok(&out);
    let (m, status) = load_run(&merged);
    assert_eq!(status.state, RunState::Finished);
    let sum: u64 = parts.iter().map(|s| s.totals.requests).sum();
    assert!(sum > 50);
    assert_eq!(m.totals.requests, sum);
    assert_eq!(m.totals.errors, 0);
    assert_eq!(served(&gw.url(), None, "h2"), m.totals.requests);
    let e = &m.endpoints["users"];
    assert_eq!((e.protocol(), e.streams(), e.vus), (Protocol::H2, 5, 10));
    assert!(e.h2.as_ref().is_some_and(|h| h.settings_ms.is_some()));
    // 5 VUs per shard, 5 streams: one connection each
    for s in &parts {
        assert_eq!(phase_count(s, "users", "connect"), 1);
    }
}

/// nginx over HTTP/2 on a free port (h2c, or h2 by ALPN with a
/// certificate), one worker, its access log one line per request.
struct Nginx {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// None (the caller skips, saying so) when nginx is not installed.
    /// `tls`: the certificate and key (PEM) to serve https with.
    fn start(keepalive_requests: u32, tls: Option<(&Path, &Path)>) -> Option<Nginx> {
        let bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())?;
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let d = dir.path().display();
        let listen = match tls {
            None => format!("listen 127.0.0.1:{port} http2;"),
            Some((cert, key)) => format!(
                "listen 127.0.0.1:{port} ssl http2;\n    ssl_certificate {};\n    ssl_certificate_key {};",
                cert.display(),
                key.display()
            ),
        };
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n\
               proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               keepalive_requests {keepalive_requests};\n\
               server {{\n    {listen}\n\
                 location / {{ return 200 \"hello\"; }}\n  }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Nginx { child, port, dir })
    }

    /// Requests nginx logged (each line one request).
    fn logged(&self) -> u64 {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .count() as u64
    }
}

#[test]
fn nginx_goaway_after_keepalive_requests_loses_nothing_over_h2c_and_tls() {
    let tmp = tempfile::tempdir().unwrap();
    // the gateway's self-signed certificate for 127.0.0.1, served by nginx
    let certs = tmp.path().join("certs");
    drop(Gateway::start_with(
        "127.0.0.1:0",
        None,
        tmp.path(),
        &["--tls-self-signed", certs.to_str().unwrap()],
    ));
    let (cert, key, ca) = (
        certs.join("cert.pem"),
        certs.join("key.pem"),
        certs.join("ca.pem"),
    );
    for tls in [false, true] {
        // nginx ends a connection after 50 requests with a GOAWAY: at
        // 2 × 16 streams, a connection's last streams go out while it closes
        let Some(nginx) = Nginx::start(50, tls.then_some((cert.as_path(), key.as_path()))) else {
            eprintln!("skipped: nginx is not installed (apt-get install nginx-light)");
            return;
        };
        let scheme = if tls { "https" } else { "http" };
        let url = format!("{scheme}://127.0.0.1:{}/", nginx.port);
        let mut args = vec!["--http2", "-c", "2", "--streams", "16", "-d", "2s"];
        if tls {
            args.extend(["--cacert", ca.to_str().unwrap()]);
        }
        args.push(&url);
        nginx_run(tmp.path(), &nginx, &args, tls);
    }
}

/// Runs the engine against `nginx` (GOAWAY every 50 requests) and checks
/// that nothing was lost.
fn nginx_run(dir: &Path, nginx: &Nginx, args: &[&str], tls: bool) {
    let r = run(dir, &format!("goaway-{tls}"), args);
    let t = &r.text;
    assert_eq!(r.code, 0, "{t}");
    let e = &r.s.endpoints["default"];
    let h2 = e.h2.as_ref().unwrap();
    assert!(r.s.totals.requests > 200, "{t}");
    assert!(h2.goaways > 0, "{h2:?}");
    // every GOAWAY reopened the connection
    assert!(phase_count(&r.s, "default", "connect") > 2, "{t}");
    if tls {
        assert!(phase_count(&r.s, "default", "tls_handshake") > 2, "{t}");
    }
    // nothing lost: every request nginx served was counted once, none failed
    assert_eq!(r.s.totals.errors, 0, "{:?}\n{t}", r.s.totals.error_kinds);
    assert_eq!(nginx.logged(), r.s.totals.requests, "{h2:?}\n{t}");
}
