//! The live dashboard end to end: userfluxd with `--http 127.0.0.1:0`, the
//! real engine against the real gateway on loopback, the page in headless
//! Chromium (driven over the DevTools protocol, `cdp/`), the event stream
//! and the guard spoken to as raw HTTP. Runs are short and stop by
//! themselves; only 127.0.0.1 is loaded.

mod cdp;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use userflux::{Gateway, bin, read_json};

/// A daemon serving the dashboard on a free loopback port, killed on drop.
struct Daemon {
    child: Child,
    runs: PathBuf,
    addr: SocketAddr,
    token: String,
}

impl Daemon {
    fn start(runs: &Path) -> Daemon {
        let mut child = Command::new(bin("userfluxd"))
            .arg("--runs-dir")
            .arg(runs)
            .args(["--http", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("userfluxd ended before printing the dashboard's address")
                .unwrap();
            if let Some(rest) = line.strip_prefix("userfluxd: dashboard on http://") {
                break rest.split('/').next().unwrap().to_string();
            }
        };
        // keep draining its stderr so it never blocks on a full pipe
        std::thread::spawn(move || for _ in lines {});
        let token = std::fs::read_to_string(runs.join("dashboard.token"))
            .unwrap()
            .trim()
            .to_string();
        Daemon {
            child,
            runs: runs.to_path_buf(),
            addr: url.parse().unwrap(),
            token,
        }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One request over TCP; `headers` are extra header lines. Returns (status, body).
    fn http(&self, method: &str, path: &str, headers: &[String], body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).unwrap();
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

    fn bearer(&self) -> String {
        format!("Authorization: Bearer {}", self.token)
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = self.http("GET", path, &[], "");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn submit(&self, config: &str) -> String {
        let (status, body) = self.http("POST", "/v1/runs", &[self.bearer()], config);
        assert_eq!(status, 201, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["run_id"].as_str().unwrap().to_string()
    }

    fn state(&self, id: &str) -> String {
        self.get(&format!("/v1/runs/{id}"))["state"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn wait_state(&self, id: &str, want: &[&str], secs: u64) -> String {
        let t0 = Instant::now();
        loop {
            let s = self.state(id);
            if want.contains(&s.as_str()) {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "run {id} still {s} after {secs} s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A closed-model run of `secs` seconds at `vus` VUs on two endpoints.
fn config(gw: &Gateway, secs: u32, vus: u32) -> String {
    format!(
        r#"{{"name": "dash", "target": "{}",
            "stages": [{{"duration": "1s", "target": {vus}}}, {{"duration": "{secs}s", "target": {vus}}}],
            "endpoints": [{{"name": "users", "method": "GET", "path": "/api/users", "weight": 3}},
                          {{"name": "products", "method": "GET", "path": "/api/products", "weight": 1}}],
            "timeouts": {{"connect": "2s", "request": "5s"}}}}"#,
        gw.url()
    )
}

fn summary(d: &Daemon, id: &str) -> Value {
    read_json(&d.runs.join(id).join("summary.json"))
}

#[test]
fn the_page_watches_and_steers_a_run_in_headless_chromium() {
    let Some(mut browser) = cdp::Browser::launch() else {
        eprintln!("chromium is not installed here (.ci/run installs it): skipped");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let d = Daemon::start(&tmp.path().join("runs"));
    let id = d.submit(&config(&gw, 40, 8));
    d.wait_state(&id, &["running"], 20);
    let page = browser.open(&format!("{}/?run={id}#token={}", d.origin(), d.token));
    let requests = "Number(document.getElementById('stat-requests').dataset.value)";
    browser.wait_for(&page, &format!("{requests} > 0"), Duration::from_secs(15));
    // The page loaded only from the daemon, its charts library included.
    let foreign = browser.eval(
        &page,
        &format!(
            "performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('{}/'))",
            d.origin()
        ),
    );
    assert_eq!(foreign, serde_json::json!([]), "loaded from elsewhere");
    assert_eq!(browser.eval(&page, "typeof uPlot"), "function");
    assert!(
        browser
            .eval(&page, "document.querySelectorAll('canvas').length")
            .as_u64()
            .unwrap()
            >= 4,
        "the charts are drawn"
    );
    // Live: the request count goes up within 3 s, and so do the charts' points.
    let before = browser.eval(&page, requests).as_f64().unwrap();
    let points = "Number(document.getElementById('chart-rate').dataset.points)";
    let points_before = browser.eval(&page, points).as_f64().unwrap();
    browser.wait_for(
        &page,
        &format!("{requests} > {before} && {points} > {points_before}"),
        Duration::from_secs(3),
    );
    // A VU change from the page: users to 2, seen in the stream's scaling events.
    browser.wait_for(
        &page,
        "!!document.querySelector('#steer tr[data-unit=users] button') && !document.querySelector('#steer tr[data-unit=users] button').disabled",
        Duration::from_secs(5),
    );
    browser.eval(
        &page,
        "(() => { const tr = document.querySelector('#steer tr[data-unit=users]'); \
           tr.querySelector('input').value = '2'; tr.querySelector('button').click(); return true; })()",
    );
    browser.wait_for(
        &page,
        "!!document.querySelector('#events tr[data-reason=manual]')",
        Duration::from_secs(10),
    );
    // Two whole seconds at the new count, then stop from the page.
    std::thread::sleep(Duration::from_secs(2));
    // Stop from the page ends the run.
    browser.eval(&page, "document.getElementById('stop').click(), true");
    assert_eq!(
        d.wait_state(&id, &["stopped", "finished", "failed"], 30),
        "stopped"
    );
    browser.wait_for(
        &page,
        "document.getElementById('run-state').textContent === 'stopped'",
        Duration::from_secs(10),
    );
    let s = summary(&d, &id);
    let manual: Vec<&Value> = s["scaling_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "manual")
        .collect();
    assert_eq!(manual.len(), 1, "{}", s["scaling_events"]);
    assert_eq!(manual[0]["endpoint"], "users");
    assert_eq!(manual[0]["to"], 2);
    // The engine ran users at 2 VUs after the change.
    let last_whole = s["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|t| t.get("covered").is_none())
        .unwrap()
        .clone();
    assert_eq!(last_whole["endpoints"]["users"]["vus"], 2, "{last_whole}");
}

#[test]
fn control_routes_need_the_token_and_the_dashboards_own_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let d = Daemon::start(&tmp.path().join("runs"));
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(d.runs.join("dashboard.token"))
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(mode & 0o777, 0o600);
    // read-only works without a token on loopback
    assert!(d.get("/v1/runs")["runs"].as_array().unwrap().is_empty());
    let (status, page) = d.http("GET", "/", &[], "");
    assert_eq!(status, 200);
    assert!(page.contains("/assets/uPlot.iife.min.js"));
    let cfg = config(&gw, 20, 2);
    let foreign = "Origin: http://evil.example".to_string();
    let own = format!("Origin: {}", d.origin());
    for (headers, why) in [
        (vec![], "no token"),
        (vec![own.clone()], "no token, own origin"),
        (vec!["Authorization: Bearer 00".into()], "wrong token"),
        (vec![d.bearer(), foreign.clone()], "foreign origin"),
    ] {
        let (status, body) = d.http("POST", "/v1/runs", &headers, &cfg);
        assert_eq!(status, 403, "{why}: {body}");
    }
    assert!(d.get("/v1/runs")["runs"].as_array().unwrap().is_empty());
    let id = {
        let (status, body) = d.http("POST", "/v1/runs", &[d.bearer(), own.clone()], &cfg);
        assert_eq!(status, 201, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["run_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    d.wait_state(&id, &["running"], 20);
    for (path, body) in [
        (format!("/v1/runs/{id}/stop"), String::new()),
        (
            format!("/v1/runs/{id}/vus"),
            r#"{"unit": "users", "vus": 1}"#.to_string(),
        ),
        (
            format!("/v1/runs/{id}/rate"),
            r#"{"unit": "users", "rate": 10}"#.to_string(),
        ),
    ] {
        let (status, _) = d.http("POST", &path, &[foreign.clone(), d.bearer()], &body);
        assert_eq!(status, 403, "{path} from a foreign origin");
        let (status, _) = d.http("POST", &path, std::slice::from_ref(&own), &body);
        assert_eq!(status, 403, "{path} without the token");
    }
    assert_eq!(d.state(&id), "running", "nothing refused reached the run");
    // A DNS-rebinding page: a foreign Host on loopback is refused.
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.write_all(b"GET /v1/runs HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    // Bad steering is a clear 4xx.
    for (body, want) in [
        (r#"{"unit": "nope", "vus": 1}"#, "not an endpoint or flow"),
        (
            r#"{"unit": "users", "rate": 10}"#,
            "a rate goes to POST /v1/runs/{id}/rate",
        ),
        (r#"{"unit": "users", "vus": 1000000}"#, "at most"),
    ] {
        let (status, text) = d.http(
            "POST",
            &format!("/v1/runs/{id}/vus"),
            &[d.bearer(), own.clone()],
            body,
        );
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(want), "{body}: {text}");
    }
    let (status, _) = d.http(
        "POST",
        &format!("/v1/runs/{id}/stop"),
        &[d.bearer(), own.clone()],
        "",
    );
    assert_eq!(status, 202);
    d.wait_state(&id, &["stopped"], 30);
    // A run from a config file on the machine (the page's "Start run").
    let file = tmp.path().join("c.json");
    std::fs::write(&file, config(&gw, 1, 1)).unwrap();
    let ask = serde_json::json!({"path": file, "target": gw.url()}).to_string();
    let (status, body) = d.http(
        "POST",
        "/v1/runs/from-file",
        &[d.bearer(), own.clone()],
        &ask,
    );
    assert_eq!(status, 201, "{body}");
    let from_file = serde_json::from_str::<Value>(&body).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        d.wait_state(&from_file, &["finished", "failed"], 30),
        "finished"
    );
    for (bad, want) in [
        (
            r#"{"path": "/nonexistent.json"}"#,
            "not a readable .json config",
        ),
        (
            r#"{"path": "/etc/hostname"}"#,
            "not a readable .json config",
        ),
        (r#"{"file": "x.json"}"#, "expected {path, target?}"),
    ] {
        let (status, body) = d.http(
            "POST",
            "/v1/runs/from-file",
            &[d.bearer(), own.clone()],
            bad,
        );
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains(want), "{bad}: {body}");
    }
    let (status, _) = d.http("POST", "/v1/runs/from-file", &[foreign], &ask);
    assert_eq!(status, 403);
    // The report's files are path-checked.
    for path in [
        format!("/v1/runs/{id}/files/config.json"),
        format!("/v1/runs/{id}/files/..%2Fdashboard.token"),
    ] {
        let (status, body) = d.http("GET", &path, &[], "");
        assert!(status == 400 || status == 404, "{path}: {status} {body}");
        assert!(!body.contains(&d.token));
    }
}

/// A live rate change: an open-model unit at 50 req/s set to 200 mid-run
/// follows the new rate to the end (the timeline's seconds move from ~50 to
/// ~200, `live.ndjson`'s target with them), recorded as a `manual` scaling
/// event with the rates; a closed-model unit's rate and a bad rate are 400.
#[test]
fn a_units_rate_changes_live() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let d = Daemon::start(&tmp.path().join("runs"));
    let own = format!("Origin: {}", d.origin());
    let cfg = format!(
        r#"{{"name": "rate", "target": "{}", "threads": 2,
            "stages": [{{"duration": "0s", "target": 1}}, {{"duration": "10s", "target": 1}}],
            "endpoints": [{{"name": "users", "method": "GET", "path": "/api/users", "rate": 50, "max_vus": 40}},
                          {{"name": "products", "method": "GET", "path": "/api/products", "think_time": "100ms"}}],
            "timeouts": {{"connect": "2s", "request": "5s"}}}}"#,
        gw.url()
    );
    let id = d.submit(&cfg);
    d.wait_state(&id, &["running"], 20);
    // three seconds at 50/s, then 200/s
    let live = d.runs.join(&id).join("live.ndjson");
    let t0 = Instant::now();
    while std::fs::read_to_string(&live).map_or(0, |s| s.lines().count()) < 3 {
        assert!(t0.elapsed() < Duration::from_secs(20), "no live seconds");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rate = |body: &str| {
        d.http(
            "POST",
            &format!("/v1/runs/{id}/rate"),
            &[d.bearer(), own.clone()],
            body,
        )
    };
    let (status, body) = rate(r#"{"unit": "users", "rate": 200}"#);
    assert_eq!(status, 202, "{body}");
    for (bad, want) in [
        (r#"{"unit": "products", "rate": 100}"#, "closed-model"),
        (r#"{"unit": "users", "rate": 0}"#, "above 0"),
        (r#"{"unit": "users", "rate": -5}"#, "above 0"),
        (r#"{"unit": "users", "rate": 1e9}"#, "at most"),
        (r#"{"unit": "nope", "rate": 10}"#, "not an endpoint or flow"),
        (r#"{"unit": "users", "vus": 3}"#, "expected"),
    ] {
        let (status, text) = rate(bad);
        assert_eq!(status, 400, "{bad}: {text}");
        assert!(text.contains(want), "{bad}: {text}");
    }
    assert_eq!(
        d.wait_state(&id, &["finished", "failed", "stopped"], 40),
        "finished"
    );
    let s = summary(&d, &id);
    let per_second: Vec<u64> = s["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|sec| sec["covered"].is_null())
        .map(|sec| sec["endpoints"]["users"]["requests"].as_u64().unwrap_or(0))
        .collect();
    assert!(per_second.len() >= 9, "{per_second:?}");
    let n = per_second.len();
    for &r in &per_second[..2] {
        assert!(r <= 80, "before the change ~50/s: {per_second:?}");
    }
    for &r in &per_second[n - 2..] {
        assert!(r >= 120, "after the change ~200/s: {per_second:?}");
    }
    let events = s["scaling_events"].as_array().unwrap();
    let manual: Vec<&Value> = events
        .iter()
        .filter(|e| e["reason"] == "manual" && e["endpoint"] == "users")
        .collect();
    assert_eq!(manual.len(), 1, "{events:?}");
    assert_eq!(manual[0]["rate"]["from"].as_f64(), Some(50.0), "{events:?}");
    assert_eq!(manual[0]["rate"]["to"].as_f64(), Some(200.0), "{events:?}");
    assert_eq!(manual[0]["from"], manual[0]["to"], "its VUs do not move");
    // the live target follows: 50 before, 200 after
    let targets: Vec<f64> = std::fs::read_to_string(&live)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| l["live"]["users"]["target_rps"].as_f64())
        .collect();
    assert_eq!(targets.first(), Some(&50.0), "{targets:?}");
    assert_eq!(targets.last(), Some(&200.0), "{targets:?}");
    // the refused asks never reached the engine; the accepted one is in the control file
    let control = std::fs::read_to_string(d.runs.join(&id).join("control.ndjson")).unwrap();
    assert_eq!(
        control.trim(),
        r#"{"op":"set_rate","unit":"users","rate":200.0}"#
    );
}

/// The page's rate control: an open-model unit's target shows next to its
/// VUs, and setting it from the page reaches the engine (the scaling event
/// in the table and in `summary.json`, the target the page shows).
#[test]
fn the_page_sets_a_units_rate_in_headless_chromium() {
    let Some(mut browser) = cdp::Browser::launch() else {
        eprintln!("chromium is not installed here (.ci/run installs it): skipped");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let d = Daemon::start(&tmp.path().join("runs"));
    let cfg = format!(
        r#"{{"name": "rate-page", "target": "{}", "threads": 1, "duration": "30s",
            "endpoints": [{{"name": "users", "method": "GET", "path": "/api/users", "rate": 20, "max_vus": 10}}]}}"#,
        gw.url()
    );
    let id = d.submit(&cfg);
    d.wait_state(&id, &["running"], 20);
    let page = browser.open(&format!("{}/?run={id}#token={}", d.origin(), d.token));
    let row = "document.querySelector('#steer tr[data-unit=users]')";
    browser.wait_for(
        &page,
        &format!("!!{row} && !{row}.querySelector('.set-rate').disabled && {row}.querySelector('.rate-now').textContent === '20'"),
        Duration::from_secs(15),
    );
    browser.eval(
        &page,
        &format!(
            "(() => {{ const tr = {row}; tr.querySelector('input.rate').value = '60'; \
               tr.querySelector('.set-rate').click(); return true; }})()"
        ),
    );
    browser.wait_for(
        &page,
        "[...document.querySelectorAll('#events tr[data-reason=manual]')].some(tr => tr.textContent.includes('60/s'))",
        Duration::from_secs(10),
    );
    browser.wait_for(
        &page,
        &format!("{row}.querySelector('.rate-now').textContent === '60'"),
        Duration::from_secs(5),
    );
    let (status, _) = d.http("POST", &format!("/v1/runs/{id}/stop"), &[d.bearer()], "");
    assert_eq!(status, 202);
    d.wait_state(&id, &["stopped"], 30);
    let s = summary(&d, &id);
    let events = s["scaling_events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["reason"], "manual");
    assert_eq!(events[0]["rate"]["to"].as_f64(), Some(60.0));
}

#[test]
fn a_non_loopback_listener_needs_its_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(bin("userfluxd"))
        .arg("--runs-dir")
        .arg(tmp.path().join("runs"))
        .args(["--http", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--http-public"), "{err}");
}

/// Opens an event stream and leaves it: the client never reads.
fn dead_client(d: &Daemon, id: &str) -> TcpStream {
    let s = TcpStream::connect(d.addr).unwrap();
    // A small receive buffer: the daemon's side fills sooner.
    let _ = set_rcvbuf(&s, 4096);
    let mut w = &s;
    write!(
        w,
        "GET /v1/runs/{id}/events HTTP/1.1\r\nHost: {}\r\n\r\n",
        d.addr
    )
    .unwrap();
    s
}

fn set_rcvbuf(s: &TcpStream, n: libc::c_int) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket and a c_int option value of the given size.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&n as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Reads an event stream until it has `n` `event: second` frames (or panics after `secs`).
fn read_seconds(s: &mut TcpStream, n: usize, secs: u64) -> String {
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let t0 = Instant::now();
    let mut text = String::new();
    let mut buf = [0u8; 8192];
    while text.matches("event: second").count() < n {
        assert!(t0.elapsed() < Duration::from_secs(secs), "{text}");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => text.push_str(&String::from_utf8_lossy(&buf[..k])),
            Err(e) => panic!("reading the stream: {e}; so far {text}"),
        }
    }
    text
}

#[test]
fn dead_event_stream_clients_keep_the_daemon_bounded_and_new_ones_are_served() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let d = Daemon::start(&tmp.path().join("runs"));
    let id = d.submit(&config(&gw, 12, 4));
    d.wait_state(&id, &["running"], 20);
    let rss_before = d.rss_kib();
    let dead: Vec<TcpStream> = (0..20).map(|_| dead_client(&d, &id)).collect();
    std::thread::sleep(Duration::from_secs(6));
    // A new client gets the stream: its head, then seconds with ids and status.
    let mut s = TcpStream::connect(d.addr).unwrap();
    write!(
        s,
        "GET /v1/runs/{id}/events HTTP/1.1\r\nHost: {}\r\nLast-Event-ID: 1\r\n\r\n",
        d.addr
    )
    .unwrap();
    let text = read_seconds(&mut s, 2, 10);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Type: text/event-stream"));
    assert!(
        !text.contains("id: 0\n") && !text.contains("id: 1\n"),
        "resumed after 1: {text}"
    );
    assert!(text.contains("id: 2\n"), "{text}");
    let frame = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let v: Value = serde_json::from_str(frame).unwrap();
    assert_eq!(v["status"]["run_id"], id.as_str());
    assert!(v["second"]["requests"].as_u64().unwrap() > 0, "{v}");
    // The other routes still answer while 21 streams are open.
    assert_eq!(d.get("/v1/health")["status"], "ok");
    // At most 32 streams: 11 more fit, the next is turned away.
    let more: Vec<TcpStream> = (0..11).map(|_| dead_client(&d, &id)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let (status, body) = d.http("GET", &format!("/v1/runs/{id}/events"), &[], "");
    assert_eq!(status, 503, "{body}");
    let grown = d.rss_kib().saturating_sub(rss_before);
    // 32 threads with 64 KiB of pending frames each, at most: 2 MiB plus
    // their stacks' touched pages; 32 MiB is far from unbounded.
    assert!(
        grown < 32 * 1024,
        "the daemon grew {grown} KiB with 32 idle streams"
    );
    drop((dead, more));
    d.wait_state(&id, &["finished"], 40);
    // What the stream sent is the summary's timeline, a second at a time.
    let live = std::fs::read_to_string(d.runs.join(&id).join("live.ndjson")).unwrap();
    let lines: Vec<userflux_engine::live::LiveSecond> = live
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let s = summary(&d, &id);
    let timeline = s["timeline"].as_array().unwrap();
    assert_eq!(lines.len(), timeline.len());
    for (l, t) in lines.iter().zip(timeline) {
        assert_eq!(
            serde_json::to_value(&l.second).unwrap(),
            *t,
            "second {}",
            l.second.t
        );
    }
    assert_eq!(
        lines.last().unwrap().total_requests,
        s["totals"]["requests"].as_u64().unwrap()
    );
}

#[test]
fn a_hundred_runs_are_listed_on_the_page() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let d = Daemon::start(&tmp.path().join("runs"));
    // The first runs; the 99 after it wait queued and are stopped there.
    let ids: Vec<String> = (0..100).map(|_| d.submit(&config(&gw, 2, 1))).collect();
    for id in &ids[1..] {
        let (status, body) = d.http("POST", &format!("/v1/runs/{id}/stop"), &[d.bearer()], "");
        assert_eq!(status, 202, "{body}");
    }
    d.wait_state(&ids[0], &["finished"], 30);
    for id in &ids {
        d.wait_state(id, &["finished", "stopped"], 30);
    }
    let runs = d.get("/v1/runs");
    assert_eq!(runs["runs"].as_array().unwrap().len(), 100);
    let Some(mut browser) = cdp::Browser::launch() else {
        eprintln!("chromium is not installed here (.ci/run installs it): the page part skipped");
        return;
    };
    let page = browser.open(&format!("{}/", d.origin()));
    browser.wait_for(
        &page,
        "document.querySelectorAll('#runs li').length === 100",
        Duration::from_secs(15),
    );
    // A finished run shows from its files: its seconds and the final state.
    let first = &ids[0];
    browser.eval(
        &page,
        &format!("document.querySelector('#runs a[data-run=\"{first}\"]').click(), true"),
    );
    browser.wait_for(
        &page,
        "document.getElementById('run-state').textContent === 'finished' && Number(document.getElementById('chart-rate').dataset.points) >= 2",
        Duration::from_secs(15),
    );
}

/// Writes the README's picture of the page (docs/dashboard.png) from a
/// live run: a flow, a closed endpoint set to 2 VUs by hand, an open-model
/// endpoint with checks and a threshold. Not a check; run it with
/// `USERFLUX_SCREENSHOT=docs/dashboard.png cargo test --test dashboard screenshot -- --ignored`.
#[test]
#[ignore]
fn screenshot_for_the_readme() {
    let out = std::env::var("USERFLUX_SCREENSHOT").unwrap_or("dashboard.png".into());
    let mut browser = cdp::Browser::launch().expect("chromium");
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let d = Daemon::start(&tmp.path().join("runs"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("examples/shop.json")).unwrap())
            .unwrap();
    c["name"] = "shop + open model".into();
    c["target"] = gw.url().into();
    c["stages"] =
        serde_json::json!([{"duration": "3s", "target": 12}, {"duration": "40s", "target": 12}]);
    c["data"]["users"]["file"] = root
        .join("examples/data/users.csv")
        .display()
        .to_string()
        .into();
    c["endpoints"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": "products", "method": "GET", "path": "/api/products",
            "rate_stages": [{"duration": "8s", "target": 400}, {"duration": "35s", "target": 400}],
            "max_vus": 40,
            "checks": {"status is 200": {"status": 200}, "fast": {"duration_lt": "20ms"}}
        }));
    c["thresholds"]["http_req_duration{endpoint:products}"] = serde_json::json!(["p(99)<50"]);
    let id = d.submit(&c.to_string());
    d.wait_state(&id, &["running"], 20);
    let page = browser.open(&format!("{}/?run={id}#token={}", d.origin(), d.token));
    std::thread::sleep(Duration::from_secs(8));
    let (status, body) = d.http(
        "POST",
        &format!("/v1/runs/{id}/vus"),
        &[d.bearer()],
        r#"{"unit": "users", "vus": 2}"#,
    );
    assert_eq!(status, 202, "{body}");
    std::thread::sleep(Duration::from_secs(10));
    let png = browser.screenshot(&page, 1400, 2150);
    let b64 = tmp.path().join("shot.b64");
    std::fs::write(&b64, png).unwrap();
    let decoded = Command::new("base64").arg("-d").arg(&b64).output().unwrap();
    std::fs::write(&out, decoded.stdout).unwrap();
    let (status, _) = d.http("POST", &format!("/v1/runs/{id}/stop"), &[d.bearer()], "");
    assert_eq!(status, 202);
    d.wait_state(&id, &["stopped"], 30);
}
