//! The engine's gRPC calls against real peers (issue #31): a Python grpcio
//! server (tests/grpc/server.py, another stack than ours) that records what
//! it decoded, and a raw h2c server here that answers malformed gRPC.
//! Exact counts, statuses per code, templated fields reaching the server,
//! deadlines exceeded counted, malformed answers counted as `grpc` errors
//! with the run ending on time, thresholds on `grpc_req_duration`, a flow
//! of gRPC steps carrying a captured reply field, the demo services in two
//! shards, and the `grpc` quick form.
//!
//! Needs the analytics venv (`make setup`, grpcio in its dev extras); the
//! Python-server tests say so and pass without it, as the report tests do.

#[path = "grpc/peer.rs"]
mod peer;

use peer::{PyServer, proto, repo};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use userflux::{engine, output_within, read_json};

/// Runs a config written in `dir` (with echo.proto beside it); returns the
/// exit code and the summary.
fn run_config(dir: &Path, json: &str) -> (Option<i32>, serde_json::Value) {
    std::fs::copy(proto(), dir.join("echo.proto")).unwrap();
    let file = dir.join("config.json");
    std::fs::write(&file, json).unwrap();
    let runs = dir.join("runs");
    let out = output_within(
        engine()
            .args(["run", "-q", "--config"])
            .arg(&file)
            .arg("--runs-dir")
            .arg(&runs),
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 99)),
        "exit {:?}: {stderr}",
        out.status.code()
    );
    let run = userflux::only_run(&runs);
    (out.status.code(), read_json(&run.join("summary.json")))
}

fn count(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Exact counts: -n calls are -n calls at the server; every templated
/// field reached it ({{seq}} all distinct and complete); metadata too; the
/// `grpc` quick form runs it.
#[test]
fn exact_counts_and_templated_fields_reach_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = PyServer::start(dir.path()) else {
        return;
    };
    let runs = dir.path().join("runs");
    let out = output_within(
        engine()
            .args(["grpc", &format!("127.0.0.1:{}", server.port), "echo.Echo/Say"])
            .arg("--proto")
            .arg(proto())
            .args([
                "-d",
                r#"{"text": "t{{seq}}", "user": {"id": {{seq}}, "name": "vu{{vu}}"}, "loud": true}"#,
                "-c",
                "2",
                "--streams",
                "4",
                "-n",
                "300",
                "-m",
                "x-tenant:acme",
                "--deadline",
                "5s",
                "-q",
                "--runs-dir",
            ])
            .arg(&runs),
        Duration::from_secs(120),
    );
    userflux::assert_ok(&out);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("gRPC status"), "{printed}");
    assert!(printed.contains("default          OK: 300"), "{printed}");
    // the layout at its peak (at the end of a -n run no VU is left)
    assert!(
        printed
            .contains("default          h2, 4 streams per connection (peak VUs 8 → 2 connections)"),
        "{printed}"
    );
    let summary = read_json(&userflux::only_run(&runs).join("summary.json"));
    let e = &summary["endpoints"]["default"];
    assert_eq!(count(&e["requests"]), 300, "{e}");
    assert_eq!(e["grpc_status"], serde_json::json!({"OK": 300}), "{e}");
    assert_eq!(e["protocol"], "h2");
    assert_eq!(e["peak_vus"], 8, "{e}");
    let seen = server.recorded();
    assert_eq!(seen.len(), 300, "the server's calls = the summary's");
    let mut ids: Vec<i64> = seen
        .iter()
        .map(|s| s["request"]["user"]["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..300).collect::<Vec<i64>>(), "each seq once");
    for s in &seen {
        let r = &s["request"];
        let id = r["user"]["id"].as_i64().unwrap();
        assert_eq!(r["text"], format!("t{id}"), "{s}");
        assert!(r["user"]["name"].as_str().unwrap().starts_with("vu"), "{s}");
        assert_eq!(r["loud"], true);
        assert_eq!(s["metadata"]["x-tenant"], "acme");
    }
}

/// Statuses per code: each endpoint's `grpc_status` is what the server
/// answered; non-OK calls fail as `grpc`; a call past its deadline is
/// counted DEADLINE_EXCEEDED; checks read the decoded reply; a
/// `grpc_req_duration` threshold judges the gRPC endpoints.
#[test]
fn statuses_per_code_and_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = PyServer::start(dir.path()) else {
        return;
    };
    let json = format!(
        r#"{{"target": "http://127.0.0.1:{}", "duration": "2s", "timeouts": {{"request": "5s"}},
            "stages": [{{"duration": "2s", "target": 8}}], "streams": 2,
            "thresholds": {{"grpc_req_duration{{endpoint:ok}}": ["max<0.001"]}},
            "endpoints": [
              {{"name": "ok", "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say",
                  "message": {{"text": "hello"}}}},
                "checks": {{"echoed": {{"json": "/echo/text", "equals": "hello"}}}}}},
              {{"name": "not found", "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Fail",
                  "message": {{"code": 5, "message": "no such thing"}}}}}},
              {{"name": "asked", "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say",
                  "metadata": {{"x-status": "14"}}}}}},
              {{"name": "slow", "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say",
                  "metadata": {{"x-delay-ms": "400"}}, "deadline": "100ms"}}}}]}}"#,
        server.port
    );
    let (code, summary) = run_config(dir.path(), &json);
    let e = &summary["endpoints"];
    let only = |name: &str, status: &str| {
        let row = &e[name];
        let n = count(&row["requests"]);
        assert!(n > 0, "{name}: {row}");
        let mut want = serde_json::Map::new();
        want.insert(status.into(), n.into());
        assert_eq!(
            row["grpc_status"],
            serde_json::Value::Object(want),
            "{name}: {row}"
        );
        n
    };
    only("ok", "OK");
    assert_eq!(count(&e["ok"]["errors"]), 0);
    assert_eq!(
        count(&e["ok"]["checks"]["echoed"]["passes"]),
        count(&e["ok"]["requests"]),
        "{}",
        e["ok"]
    );
    for (name, status) in [
        ("not found", "NOT_FOUND"),
        ("asked", "UNAVAILABLE"),
        ("slow", "DEADLINE_EXCEEDED"),
    ] {
        let n = only(name, status);
        assert_eq!(
            count(&e[name]["error_kinds"]["grpc"]),
            n,
            "{name}: {}",
            e[name]
        );
    }
    // totals add the endpoints' codes
    let t = &summary["totals"]["grpc_status"];
    assert_eq!(count(&t["OK"]), count(&e["ok"]["requests"]));
    // the threshold read the gRPC latency and failed: exit 99
    assert_eq!(code, Some(99), "{}", summary["thresholds"]);
    // every call the server saw is a call the summary counted (a call past
    // its deadline is recorded before its sleep)
    let says = count(&e["ok"]["requests"])
        + count(&e["asked"]["requests"])
        + count(&e["slow"]["requests"]);
    assert_eq!(server.recorded().len() as u64, says);
}

/// Checks on `grpc_status`, the thresholds' `grpc_status` and `method`
/// tags, and each sample line's `gs`: all read the status each call ended
/// with.
#[test]
fn grpc_status_checks_tags_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = PyServer::start(dir.path()) else {
        return;
    };
    let checks = r#"{"is ok": {"grpc_status": "OK"}, "unavailable": {"grpc_status": 14}}"#;
    let json = format!(
        r#"{{"target": "http://127.0.0.1:{}", "duration": "2s", "timeouts": {{"request": "5s"}},
            "stages": [{{"duration": "2s", "target": 4}}], "streams": 2,
            "samples": {{"rate": 1.0}},
            "thresholds": {{
              "http_reqs{{grpc_status:UNAVAILABLE}}": ["count>0"],
              "http_reqs{{grpc_status:0}}": ["count>0"],
              "http_req_failed{{grpc_status:OK}}": ["rate==0"],
              "http_req_failed{{grpc_status:unavailable}}": ["rate==1"],
              "grpc_req_duration{{grpc_status:OK}}": ["max<60000"],
              "grpc_req_duration{{grpc_status:UNAVAILABLE}}": ["max<60000"],
              "grpc_req_duration{{grpc_status:NOT_FOUND}}": ["max<60000"],
              "http_reqs{{method:echo.Echo/Say}}": ["count>0"],
              "http_reqs{{method:/echo.Echo/Say}}": ["count>0"],
              "http_reqs{{method:post}}": ["count>0"]}},
            "endpoints": [
              {{"name": "ok", "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say",
                  "message": {{"text": "hello"}}}}, "checks": {checks}}},
              {{"name": "asked", "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say",
                  "metadata": {{"x-status": "14"}}}}, "checks": {checks}}}]}}"#,
        server.port
    );
    let (code, summary) = run_config(dir.path(), &json);
    let e = &summary["endpoints"];
    let (ok, asked) = (count(&e["ok"]["requests"]), count(&e["asked"]["requests"]));
    assert!(ok > 0 && asked > 0, "{e}");
    let passes = |name: &str, check: &str| count(&e[name]["checks"][check]["passes"]);
    assert_eq!(
        [passes("ok", "is ok"), passes("ok", "unavailable")],
        [ok, 0],
        "{e}"
    );
    assert_eq!(
        [passes("asked", "is ok"), passes("asked", "unavailable")],
        [0, asked],
        "{e}"
    );
    // every threshold is judged on what its tags select
    let judged: std::collections::HashMap<String, (bool, Option<f64>)> = summary["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["metric"].as_str().unwrap().to_string(),
                (t["ok"].as_bool().unwrap(), t["observed"].as_f64()),
            )
        })
        .collect();
    let observed = |key: &str| judged[key].1;
    assert_eq!(
        observed("http_reqs{grpc_status:UNAVAILABLE}"),
        Some(asked as f64)
    );
    assert_eq!(observed("http_reqs{grpc_status:0}"), Some(ok as f64));
    assert_eq!(observed("http_req_failed{grpc_status:OK}"), Some(0.0));
    assert_eq!(
        observed("http_req_failed{grpc_status:unavailable}"),
        Some(1.0)
    );
    for key in [
        "http_reqs{method:echo.Echo/Say}",
        "http_reqs{method:/echo.Echo/Say}",
        "http_reqs{method:post}",
    ] {
        assert_eq!(observed(key), Some((ok + asked) as f64), "{key}");
    }
    // latency per gRPC status: the OK calls' max is the ok endpoint's
    let max_ok = observed("grpc_req_duration{grpc_status:OK}").unwrap();
    assert_eq!(Some(max_ok), e["ok"]["latency_ms"]["max"].as_f64(), "{e}");
    assert!(observed("grpc_req_duration{grpc_status:UNAVAILABLE}").is_some());
    // no call ended NOT_FOUND: nothing measured (as any threshold on no data)
    assert_eq!(
        judged["grpc_req_duration{grpc_status:NOT_FOUND}"],
        (true, None)
    );
    assert_eq!(code, Some(0), "{}", summary["thresholds"]);
    assert!(
        summary["histograms_grpc_status"]["asked"]["UNAVAILABLE"].is_string(),
        "{}",
        summary["histograms_grpc_status"]
    );
    // the first failed call's log line says what the server said of it
    let run = userflux::only_run(&dir.path().join("runs"));
    let logs = std::fs::read_to_string(run.join("logs.txt")).unwrap();
    assert!(
        logs.contains(
            "endpoint asked: first grpc error: grpc-status UNAVAILABLE (grpc-message: \"asked by x-status\")"
        ),
        "{logs}"
    );
    // each sample line carries the call's code
    let samples = std::fs::read_to_string(run.join("samples.ndjson")).unwrap();
    let mut codes = std::collections::BTreeMap::<(String, u64), u64>::new();
    for line in samples.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(gs) = v["gs"].as_u64() else {
            assert!(v["st"].is_null(), "a response without gs: {line}");
            continue;
        };
        *codes
            .entry((v["ep"].as_str().unwrap().into(), gs))
            .or_default() += 1;
    }
    assert_eq!(
        codes,
        [
            (("asked".to_string(), 14), asked),
            (("ok".to_string(), 0), ok)
        ]
        .into(),
    );
}

/// A call's latency starts when its stream opens: the wait for a slot
/// under the server's MAX_CONCURRENT_STREAMS is `blocked`, not latency
/// (k6's http_req_blocked; h2load's request time starts at the stream).
/// 16 VUs on a connection the server holds to 2 streams, 100 ms a call:
/// each call waits ~700 ms for a slot and takes ~100 ms.
#[test]
fn the_wait_for_a_stream_slot_is_blocked_not_latency() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = PyServer::start_with(dir.path(), &["--max-streams", "2"]) else {
        return;
    };
    let runs = dir.path().join("runs");
    let out = output_within(
        engine()
            .args([
                "grpc",
                &format!("127.0.0.1:{}", server.port),
                "echo.Echo/Say",
            ])
            .arg("--proto")
            .arg(proto())
            .args([
                "-c",
                "1",
                "--streams",
                "16",
                "-m",
                "x-delay-ms:100",
                "-z",
                "3s",
            ])
            .args(["-q", "--runs-dir"])
            .arg(&runs),
        Duration::from_secs(120),
    );
    userflux::assert_ok(&out);
    let summary = read_json(&userflux::only_run(&runs).join("summary.json"));
    let e = &summary["endpoints"]["default"];
    assert!(count(&e["requests"]) > 4, "{e}");
    let p50 = |what: &str| {
        e[what]["p50"]
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: {e}"))
    };
    // (wide margins: the split, not the machine's speed, is under test)
    assert!(p50("latency_ms") < 400.0, "latency counts the wait: {e}");
    assert!(p50("blocked_ms") > 200.0, "the wait is blocked: {e}");
}

/// A reply that does not decode as the method's output: its checks find
/// nothing (not "over max_capture_body"), the call still counts as OK
/// (its status is), and the log says why once.
#[test]
fn a_reply_that_is_no_valid_message_fails_its_checks_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = PyServer::start(dir.path()) else {
        return;
    };
    let json = format!(
        r#"{{"target": "http://127.0.0.1:{}", "requests": 20, "stages": [{{"duration": "10s", "target": 2}}],
            "endpoints": [{{"name": "junk", "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say",
                "metadata": {{"x-garbage": "1"}}}},
              "checks": {{"has echo": {{"json": "/echo", "exists": true}}, "ok": {{"grpc_status": "OK"}}}}}}]}}"#,
        server.port
    );
    let (_, summary) = run_config(dir.path(), &json);
    let e = &summary["endpoints"]["junk"];
    assert_eq!(count(&e["requests"]), 20, "{e}");
    assert_eq!(e["grpc_status"], serde_json::json!({"OK": 20}), "{e}");
    assert_eq!(count(&e["checks"]["has echo"]["fails"]), 20, "{e}");
    assert_eq!(count(&e["checks"]["ok"]["passes"]), 20, "{e}");
    let run = userflux::only_run(&dir.path().join("runs"));
    let logs = std::fs::read_to_string(run.join("logs.txt")).unwrap();
    assert!(
        logs.contains("endpoint junk: response is not a valid echo.SayReply"),
        "{logs}"
    );
    assert!(!logs.contains("max_capture_body"), "{logs}");
}

/// How the raw server answers each call.
#[derive(Clone, Copy)]
enum Bad {
    /// DATA declares 100 bytes and holds 2, then trailers with OK.
    Length,
    /// The compressed flag set, no grpc-encoding, then trailers with OK.
    Compressed,
    /// A valid message and END_STREAM, no trailers (no grpc-status).
    NoTrailers,
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A literal header field without indexing, new name (RFC 7541 6.2.2).
fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
}

/// A raw h2c server answering every call the way `bad` says, until the
/// test ends (its listener is dropped with the process).
fn raw_server(bad: Bad) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            std::thread::spawn(move || {
                let _ = serve(s, bad);
            });
        }
    });
    port
}

fn serve(mut s: TcpStream, bad: Bad) -> std::io::Result<()> {
    let mut preface = [0u8; 24];
    s.read_exact(&mut preface)?;
    let mut out = Vec::new();
    frame(&mut out, 4, 0, 0, &[]);
    s.write_all(&out)?;
    loop {
        let mut head = [0u8; 9];
        s.read_exact(&mut head)?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload)?;
        let mut out = Vec::new();
        match kind {
            // SETTINGS: ack theirs
            4 if flags & 1 == 0 => frame(&mut out, 4, 1, 0, &[]),
            // PING: answer it
            6 if flags & 1 == 0 => frame(&mut out, 6, 1, 0, &payload),
            // a call's HEADERS: the answer, at once
            1 => {
                let mut fields = vec![0x88]; // :status 200
                literal(&mut fields, "content-type", "application/grpc");
                frame(&mut out, 1, 4, stream, &fields);
                let (data, trailers): (&[u8], bool) = match bad {
                    Bad::Length => (&[0, 0, 0, 0, 100, 1, 2], true),
                    Bad::Compressed => (&[1, 0, 0, 0, 2, 0x18, 1], true),
                    Bad::NoTrailers => (&[0, 0, 0, 0, 2, 0x18, 1], false),
                };
                frame(&mut out, 0, if trailers { 0 } else { 1 }, stream, data);
                if trailers {
                    let mut t = Vec::new();
                    literal(&mut t, "grpc-status", "0");
                    frame(&mut out, 1, 4 | 1, stream, &t);
                }
            }
            _ => {}
        }
        s.write_all(&out)?;
    }
}

/// A malformed answer (bad length prefix, compressed flag without
/// grpc-encoding, no trailers) is a counted `grpc` error, never an OK, and
/// the run ends on time.
#[test]
fn malformed_answers_are_grpc_errors_and_the_run_ends_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let ports = [Bad::Length, Bad::Compressed, Bad::NoTrailers].map(raw_server);
    let json = format!(
        r#"{{"duration": "2s", "stages": [{{"duration": "2s", "target": 3}}],
            "timeouts": {{"request": "1s"}}, "graceful_stop": "1s",
            "endpoints": [
              {{"name": "length", "url": "http://127.0.0.1:{}",
                "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say"}}}},
              {{"name": "compressed", "url": "http://127.0.0.1:{}",
                "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say"}}}},
              {{"name": "no trailers", "url": "http://127.0.0.1:{}",
                "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say"}}}}]}}"#,
        ports[0], ports[1], ports[2]
    );
    let start = Instant::now();
    let (code, summary) = run_config(dir.path(), &json);
    let took = start.elapsed();
    assert_eq!(code, Some(0));
    // bounded, not timed: 2 s of load and 1 s of graceful stop, with room
    assert!(took < Duration::from_secs(30), "{took:?}");
    for name in ["length", "compressed", "no trailers"] {
        let e = &summary["endpoints"][name];
        let n = count(&e["requests"]);
        assert!(n > 0, "{name}: {e}");
        assert_eq!(count(&e["error_kinds"]["grpc"]), n, "{name}: {e}");
        assert!(e["grpc_status"].get("OK").is_none(), "{name}: {e}");
    }
}

/// A running `userflux-services` (the demo's gRPC services, tonic), killed
/// on drop.
struct Services {
    child: Child,
    addr: String,
}

impl Services {
    fn start(config: &str, dir: &Path) -> Services {
        let file = dir.join("services.json");
        std::fs::write(&file, config).unwrap();
        let mut child = Command::new(userflux::bin("userflux-services"))
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(file)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn userflux-services");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected output {line:?}"))
            .to_string();
        Services { child, addr }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Against the demo's own services (a tonic server) and run as two local
/// shards: the merged summary's `grpc_status` adds the shards' codes, a
/// service with errors answers UNAVAILABLE, counted as `grpc` errors.
#[test]
fn demo_services_in_two_shards_merge_their_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::start(
        r#"{"services": {"users": {"latency": "1ms"}, "catalog": {"error_rate": 1.0}}}"#,
        dir.path(),
    );
    let protos = repo().join("gateway/proto");
    let json = format!(
        r#"{{"target": "http://{}", "duration": "2s", "streams": 4,
            "stages": [{{"duration": "2s", "target": 8}}],
            "thresholds": {{"grpc_req_duration{{grpc_status:UNAVAILABLE}}": ["max<60000"],
                           "http_reqs{{grpc_status:OK}}": ["count>0"]}},
            "endpoints": [
              {{"name": "user", "grpc": {{"proto": "{p}/users.proto",
                  "method": "userflux.demo.users.Users/GetUser", "message": "{{\"id\": {{{{seq}}}}}}"}},
                "checks": {{"named": {{"json": "/name", "exists": true}}, "ok": {{"grpc_status": "OK"}}}}}},
              {{"name": "product", "grpc": {{"proto": "{p}/catalog.proto",
                  "method": "userflux.demo.catalog.Catalog/GetProduct", "message": {{"id": 7}}}},
                "checks": {{"ok": {{"grpc_status": "OK"}}}}}}]}}"#,
        services.addr,
        p = protos.display()
    );
    let file = dir.path().join("config.json");
    std::fs::write(&file, json).unwrap();
    let runs = dir.path().join("runs");
    let out = output_within(
        engine()
            .args(["run", "-q", "--shards", "2", "--config"])
            .arg(&file)
            .arg("--runs-dir")
            .arg(&runs),
        Duration::from_secs(120),
    );
    userflux::assert_ok(&out);
    let summary = read_json(&userflux::only_run(&runs).join("summary.json"));
    let user = &summary["endpoints"]["user"];
    let n = count(&user["requests"]);
    assert!(n > 0, "{user}");
    assert_eq!(user["grpc_status"], serde_json::json!({"OK": n}), "{user}");
    assert_eq!(count(&user["checks"]["named"]["passes"]), n, "{user}");
    let product = &summary["endpoints"]["product"];
    let m = count(&product["requests"]);
    assert!(m > 0, "{product}");
    assert_eq!(
        product["grpc_status"],
        serde_json::json!({"UNAVAILABLE": m}),
        "{product}"
    );
    assert_eq!(count(&product["error_kinds"]["grpc"]), m, "{product}");
    assert_eq!(
        summary["totals"]["grpc_status"],
        serde_json::json!({"OK": n, "UNAVAILABLE": m})
    );
    // checks on the status and thresholds on its tag, judged again over
    // the shards' merged counts and histograms
    assert_eq!(count(&user["checks"]["ok"]["passes"]), n, "{user}");
    assert_eq!(count(&product["checks"]["ok"]["fails"]), m, "{product}");
    let t = summary["thresholds"].as_array().unwrap();
    assert_eq!(t.len(), 2, "{t:?}");
    for t in t {
        assert_eq!(t["ok"], true, "{t}");
        assert!(t["error"].is_null(), "{t}");
    }
    assert_eq!(t[1]["observed"].as_f64(), Some(n as f64), "{t:?}");
    let max = product["latency_ms"]["max"].as_f64().unwrap();
    assert_eq!(t[0]["observed"].as_f64(), Some(max), "{t:?}");
}

/// A message templated from a data set: each row's values reach the
/// server, rows taken in turn (the message's data sets are the row's).
#[test]
fn data_set_values_reach_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = PyServer::start(dir.path()) else {
        return;
    };
    std::fs::write(
        dir.path().join("users.csv"),
        "name,id\nann,11\nbob,22\ncat,33\n",
    )
    .unwrap();
    let json = format!(
        r#"{{"target": "http://127.0.0.1:{}", "requests": 30, "duration": "30s",
            "stages": [{{"duration": "30s", "target": 2}}],
            "data": {{"users": {{"file": "users.csv"}}}},
            "endpoints": [{{"name": "say", "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say",
              "message": "{{\"text\": \"{{{{data.users.name}}}}\", \"user\": {{\"id\": {{{{data.users.id}}}}}}}}"}}}}]}}"#,
        server.port
    );
    let (code, summary) = run_config(dir.path(), &json);
    assert_eq!(code, Some(0));
    assert_eq!(count(&summary["endpoints"]["say"]["grpc_status"]["OK"]), 30);
    let mut seen = BTreeMap::new();
    for s in server.recorded() {
        let r = &s["request"];
        let key = (
            r["text"].as_str().unwrap().to_string(),
            r["user"]["id"].as_i64().unwrap(),
        );
        *seen.entry(key).or_insert(0) += 1;
    }
    let want: BTreeMap<(String, i64), i32> = [("ann", 11), ("bob", 22), ("cat", 33)]
        .into_iter()
        .map(|(n, i)| ((n.to_string(), i), 10))
        .collect();
    assert_eq!(seen, want);
}

/// A captured value that cannot go into its field (unknown at validation,
/// which renders the rest) fails its call as `grpc`, not sent, and the
/// first one's log line says the message was not encoded nor sent.
#[test]
fn a_captured_value_that_cannot_be_encoded_is_not_sent_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = PyServer::start(dir.path()) else {
        return;
    };
    let json = format!(
        r#"{{"target": "http://127.0.0.1:{}", "http": "2", "requests": 6, "duration": "30s",
            "stages": [{{"duration": "30s", "target": 1}}],
            "flows": [{{"name": "f", "steps": [
              {{"name": "first", "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say",
                  "message": {{"text": "abc"}}}},
                "capture": {{"said": {{"json": "/echo/text"}}}}}},
              {{"name": "second", "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say",
                  "message": "{{\"count\": {{{{vars.said}}}} }}"}}}}]}}]}}"#,
        server.port
    );
    let (_, summary) = run_config(dir.path(), &json);
    let e = &summary["endpoints"];
    assert_eq!(count(&e["f.first"]["grpc_status"]["OK"]), 3, "{e}");
    assert_eq!(count(&e["f.second"]["requests"]), 3, "{e}");
    assert_eq!(count(&e["f.second"]["error_kinds"]["grpc"]), 3, "{e}");
    assert_eq!(server.recorded().len(), 3, "the second calls were not sent");
    let run = userflux::only_run(&dir.path().join("runs"));
    let logs = std::fs::read_to_string(run.join("logs.txt")).unwrap();
    assert!(
        logs.contains(
            "first grpc error: the request message could not be encoded, so the call was not sent: count: expected an integer"
        ),
        "{logs}"
    );
}

/// A flow of gRPC steps: the first reply's field, captured, is sent in the
/// second call's message (the decoded reply as JSON for captures).
#[test]
fn a_flow_carries_a_captured_reply_field_into_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = PyServer::start(dir.path()) else {
        return;
    };
    let json = format!(
        r#"{{"target": "http://127.0.0.1:{}", "http": "2", "requests": 40, "duration": "30s",
            "stages": [{{"duration": "30s", "target": 2}}],
            "flows": [{{"name": "f", "steps": [
              {{"name": "first", "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say",
                  "message": "{{\"text\": \"a{{{{seq}}}}\"}}"}},
                "capture": {{"said": {{"json": "/echo/text"}}, "seen": {{"json": "/seen"}}}}}},
              {{"name": "second", "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say",
                  "message": "{{\"text\": \"got {{{{vars.said}}}} after {{{{vars.seen}}}}\"}}"}}}}]}}]}}"#,
        server.port
    );
    let (code, summary) = run_config(dir.path(), &json);
    assert_eq!(code, Some(0));
    let e = &summary["endpoints"];
    assert_eq!(count(&e["f.first"]["grpc_status"]["OK"]), 20, "{e}");
    assert_eq!(count(&e["f.second"]["grpc_status"]["OK"]), 20, "{e}");
    assert_eq!(count(&summary["totals"]["errors"]), 0, "{summary}");
    let texts: Vec<String> = server
        .recorded()
        .iter()
        .map(|s| s["request"]["text"].as_str().unwrap().to_string())
        .collect();
    let firsts: Vec<&String> = texts.iter().filter(|t| t.starts_with('a')).collect();
    let seconds: Vec<&String> = texts.iter().filter(|t| t.starts_with("got ")).collect();
    assert_eq!((firsts.len(), seconds.len()), (20, 20), "{texts:?}");
    // each second call names a first call's text and the server's count then
    for s in seconds {
        let (said, seen) = s["got ".len()..].split_once(" after ").unwrap();
        assert!(firsts.iter().any(|f| f.as_str() == said), "{s}");
        let seen: usize = seen.parse().unwrap();
        assert!(seen >= 1 && seen <= texts.len(), "{s}");
    }
}
