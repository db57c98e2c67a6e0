//! Choosing HTTP/1.1 or HTTP/2 (issue #30), as a user meets it: `http`
//! and `streams` in a config, `--http2`, `--http1.1` and `--streams` in the
//! quick form, `"auto"` decided by ALPN against the gateway's TLS mode (it
//! offers h2 unless `--http1-only`), and the protocol and the connections ×
//! streams layout in summary.json and the human summary. Bad values are
//! refused naming the field or the flag typed, with nothing created.

use std::path::Path;
use std::process::Output;
use std::time::Duration;
use userflux::{Gateway, closed_port, engine, load_run, only_run, output_within, read_json};
use userflux_engine::plan::Http;
use userflux_engine::summary::Protocol;

/// A bound on one short run or validation: each ends in seconds.
const LIMIT: Duration = Duration::from_secs(60);

fn tls_gateway(dir: &Path, extra: &[&str]) -> Gateway {
    let certs = dir.join("certs");
    let mut args = vec!["--tls-self-signed", certs.to_str().unwrap()];
    args.extend_from_slice(extra);
    Gateway::start_with("127.0.0.1:0", None, dir, &args)
}

/// A config of two endpoints on `target` with `http` "auto", trusting the
/// gateway's CA in `dir`.
fn auto_config(dir: &Path, target: &str) -> String {
    format!(
        r#"{{"target": "{target}", "threads": 1, "http": "auto", "streams": 4,
            "stages": [{{"duration": "0s", "target": 8}}, {{"duration": "1s", "target": 8}}],
            "timeouts": {{"connect": "2s", "request": "5s"}},
            "tls": {{"ca_file": "{}"}},
            "endpoints": [{{"name": "users", "path": "/api/users"}},
                          {{"name": "products", "path": "/api/products"}}]}}"#,
        dir.join("certs/ca.pem").display()
    )
}

/// The plan of `config` with `auto` decided, and what was said.
fn resolved(config: &str) -> (userflux_engine::plan::Plan, Vec<String>) {
    let c = userflux_engine::config::Config::from_json(config).unwrap();
    let mut plan = userflux_engine::run::prepare(&c).unwrap();
    assert!(plan.endpoints.iter().all(|r| r.http == Http::Auto));
    let said = userflux_engine::plan::alpn::resolve(&mut plan);
    (plan, said.into_iter().map(|s| s.line).collect())
}

#[test]
fn auto_asks_each_tls_server_once_by_alpn() {
    let tmp = tempfile::tempdir().unwrap();
    // the gateway offers h2 and http/1.1: it chooses h2
    let gw = tls_gateway(tmp.path(), &[]);
    let (plan, said) = resolved(&auto_config(tmp.path(), &format!("https://{}", gw.addr)));
    assert_eq!(said.len(), 1, "one server, asked once: {said:?}");
    assert!(said[0].contains("chose h2 by ALPN"), "{said:?}");
    for row in &plan.endpoints {
        assert_eq!((row.http, row.streams), (Http::H2, 4), "{}", row.name);
        assert!(row.h2.is_some(), "{}: its request encoded once", row.name);
    }
    // --http1-only: it offers http/1.1 alone
    std::fs::create_dir(tmp.path().join("old")).unwrap();
    let old = tls_gateway(&tmp.path().join("old"), &["--http1-only"]);
    let (plan, said) = resolved(&auto_config(
        &tmp.path().join("old"),
        &format!("https://{}", old.addr),
    ));
    assert!(
        said.len() == 1 && said[0].contains("chose http/1.1 by ALPN, not h2: HTTP/1.1"),
        "{said:?}"
    );
    for row in &plan.endpoints {
        assert_eq!(
            (row.http, row.streams, row.h2.is_some()),
            (Http::H1, 1, false)
        );
    }
    // plain http: HTTP/1.1, nobody asked
    let plain = Gateway::start(None, tmp.path());
    let (plan, said) = resolved(&auto_config(tmp.path(), &plain.url()));
    assert!(said.is_empty(), "{said:?}");
    assert!(plan.endpoints.iter().all(|r| r.http == Http::H1));
}

/// `run` with a config file: (summary, stdout, stderr, logs.txt).
fn run_config(dir: &Path, name: &str, config: &str) -> (userflux_engine::summary::Summary, String) {
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, config).unwrap();
    let runs = dir.join(name);
    let out = output_within(
        engine()
            .args(["run", "-q", "--config"])
            .arg(&file)
            .arg("--runs-dir")
            .arg(&runs),
        LIMIT,
    );
    let run = only_run(&runs);
    let logs = std::fs::read_to_string(run.join("logs.txt")).unwrap_or_default();
    let text = format!(
        "{}\n--- stderr\n{}\n--- logs\n{logs}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (load_run(&run).0, text)
}

#[test]
fn the_protocol_auto_chose_is_in_the_summary_and_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    // a server that offers h2: the run speaks it, 8 VUs on 2 connections
    let h2 = tls_gateway(tmp.path(), &[]);
    let (s, text) = run_config(
        tmp.path(),
        "h2",
        &auto_config(tmp.path(), &format!("https://{}", h2.addr)),
    );
    assert!(text.contains("chose h2 by ALPN"), "{text}");
    assert_eq!(s.totals.errors, 0, "{text}");
    for (name, e) in &s.endpoints {
        assert_eq!(
            (e.protocol, e.streams),
            (Some(Protocol::H2), Some(4)),
            "{name}"
        );
        assert!(e.requests > 0, "{name}: {text}");
        assert!(
            text.contains(&format!(
                "{name:<16} h2, 4 streams per connection (peak VUs 4 → 1 connection)"
            )),
            "{name}: {text}"
        );
    }
    let gw = tls_gateway(tmp.path(), &["--http1-only"]);
    let (s, text) = run_config(
        tmp.path(),
        "h1",
        &auto_config(tmp.path(), &format!("https://{}", gw.addr)),
    );
    assert!(text.contains("chose http/1.1 by ALPN, not h2"), "{text}");
    assert_eq!(s.totals.errors, 0, "{text}");
    for e in s.endpoints.values() {
        assert_eq!((e.protocol, e.streams), (Some(Protocol::Http1), Some(1)));
    }
    assert!(
        !text.contains("HTTP/2 layout ("),
        "no layout for HTTP/1.1: {text}"
    );
    assert_eq!((s.totals.protocol, s.totals.streams), (None, None));

    // a server that cannot be asked: HTTP/1.1, said on stderr and in the log
    let down = format!("https://127.0.0.1:{}", closed_port());
    let (s, text) = run_config(tmp.path(), "down", &auto_config(tmp.path(), &down));
    let warning =
        format!("userflux-engine: warning: http auto: cannot ask {down} for its protocol");
    assert!(text.contains(&warning), "{text}");
    assert!(text.contains("connect: Connection refused"), "{text}");
    assert_eq!(s.endpoints["users"].protocol(), Protocol::Http1);
}

/// The gateway's counts (`requests` by protocol), asked over HTTP/1.1.
fn gateway_stats(gw: &Gateway) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(gw.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.write_all(b"GET /__gateway/stats HTTP/1.1\r\nHost: gw\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.read(&mut buf).expect("the gateway answers");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((_, body)) = text.split_once("\r\n\r\n")
            && let Ok(v) = serde_json::from_str(body)
        {
            return v;
        }
    }
}

fn quick(runs: &Path, args: &[&str]) -> Output {
    output_within(
        engine().arg("run").args(args).arg("--runs-dir").arg(runs),
        LIMIT,
    )
}

#[test]
fn http2_and_streams_in_the_quick_form_are_h2loads_c_times_m() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let runs = tmp.path().join("runs");
    let url = format!("{}/api/users", gw.url());
    let out = quick(
        &runs,
        &[
            &url,
            "--http2",
            "-c",
            "2",
            "--streams",
            "4",
            "-d",
            "1s",
            "-t",
            "1",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run = only_run(&runs);
    let config = read_json(&run.join("config.json"));
    assert_eq!(config["http"], "2", "{config}");
    assert_eq!(config["streams"], 4);
    assert_eq!(
        config["stages"][1]["target"], 8,
        "2 connections × 4 streams"
    );
    let (s, _) = load_run(&run);
    let e = &s.endpoints["default"];
    assert_eq!((e.protocol, e.streams), (Some(Protocol::H2), Some(4)));
    // h2c with prior knowledge, every request: the gateway counted them so
    let counted = gateway_stats(&gw);
    assert_eq!(s.totals.errors, 0, "{stdout}");
    assert_eq!(counted["requests"]["h2"], s.totals.requests, "{counted}");
    assert_eq!(counted["requests"]["http/1.1"], 0, "{counted}");
    assert!(
        stdout
            .contains("default          h2, 4 streams per connection (peak VUs 8 → 2 connections)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("HTTP/2 layout (streams on one connection share its TCP"),
        "{stdout}"
    );

    // --http1.1 is the default said out loud
    let runs = tmp.path().join("h1");
    let out = quick(
        &runs,
        &[&url, "--http1.1", "-c", "2", "-d", "1s", "-t", "1", "-q"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = only_run(&runs);
    assert_eq!(read_json(&run.join("config.json"))["http"], "1.1");
    assert_eq!(
        load_run(&run).0.endpoints["default"].protocol,
        Some(Protocol::Http1)
    );
}

#[test]
fn bad_http_flags_and_fields_say_which() {
    let tmp = tempfile::tempdir().unwrap();
    let url = "http://127.0.0.1:9/";
    let cases: &[(&[&str], &str)] = &[
        (&[url, "--streams", "4"], "--http2"),
        (
            &[url, "--http2", "--http1.1"],
            "'--http2' cannot be used with '--http1.1'",
        ),
        (
            &[url, "--http2", "--streams", "0"],
            "invalid value '0' for '--streams <M>': 0 is not in 1..=1000",
        ),
        (
            &[url, "--http2", "-c", "2000", "--streams", "1000"],
            "-c 2000 --streams 1000: 2000000 VUs (connections × streams); at most 1000000",
        ),
    ];
    for (args, needle) in cases {
        let runs = tmp.path().join("runs");
        let out = quick(&runs, &[&args[..], &["-q"]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
        assert!(!runs.exists(), "{args:?} created {}", runs.display());
    }
    // a config: the field path and what is allowed
    let file = tmp.path().join("bad.json");
    std::fs::write(
        &file,
        r#"{"target": "http://127.0.0.1:9", "streams": 8, "duration": "1s",
            "endpoints": [{"name": "a", "path": "/", "rate": 1, "http": "3"}]}"#,
    )
    .unwrap();
    let out = output_within(engine().arg("validate").arg(&file), LIMIT);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            r#"endpoints[0].http: unknown HTTP version "3" (one of "1.1", "2" or "auto")"#
        ),
        "{err}"
    );
    std::fs::write(
        &file,
        r#"{"target": "http://127.0.0.1:9", "streams": 8, "duration": "1s",
            "endpoints": [{"name": "a", "path": "/", "rate": 1}]}"#,
    )
    .unwrap();
    let out = output_within(engine().arg("validate").arg(&file), LIMIT);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            r#"streams: 8 streams per connection need HTTP/2: set `http` to "2" or "auto""#
        ),
        "{err}"
    );
}

#[test]
fn a_merged_run_keeps_the_shards_protocol_and_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let file = tmp.path().join("c.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"target": "{}", "threads": 1, "http": "2", "streams": 4,
                "stages": [{{"duration": "0s", "target": 8}}, {{"duration": "1s", "target": 8}}],
                "endpoints": [{{"name": "users", "path": "/api/users"}}]}}"#,
            gw.url()
        ),
    )
    .unwrap();
    let run = tmp.path().join("run");
    let out = output_within(
        engine()
            .args(["run", "-q", "--shards", "2", "--config"])
            .arg(&file)
            .arg("--run-dir")
            .arg(&run),
        LIMIT,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = load_run(&run).0;
    let e = &merged.endpoints["users"];
    assert_eq!(
        (e.protocol, e.streams, e.vus),
        (Some(Protocol::H2), Some(4), 8)
    );
    // shards written before HTTP/2 said neither: merged, they read as HTTP/1.1
    let mut dirs = Vec::new();
    for i in 0..2 {
        let dir = run.join(format!("shards/shard-{i}"));
        let path = dir.join("summary.json");
        let mut s = read_json(&path);
        let users = s["endpoints"]["users"].as_object_mut().unwrap();
        assert_eq!(users.remove("protocol"), Some("h2".into()), "shard {i}");
        assert_eq!(users.remove("streams"), Some(4.into()), "shard {i}");
        std::fs::write(&path, serde_json::to_string(&s).unwrap()).unwrap();
        dirs.push(dir);
    }
    let again = tmp.path().join("again");
    let out = output_within(
        std::process::Command::new(userflux::bin("userfluxctl"))
            .arg("merge")
            .args(&dirs)
            .arg("--out")
            .arg(&again),
        LIMIT,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = &load_run(&again).0.endpoints["users"];
    assert_eq!((e.protocol, e.streams), (Some(Protocol::Http1), Some(1)));
}
