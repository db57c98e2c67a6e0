//! `"reflection": true` (issue #31) against real peers: the Python grpcio
//! server with grpcio-reflection (v1alpha only, so the engine's v1 ask is
//! answered UNIMPLEMENTED and it falls back), over h2c and over TLS, the
//! same server without reflection, and a TCP peer that never answers. The method found by
//! reflection runs exactly as from `.proto` (counts, templated fields at
//! the server); what cannot be resolved fails the run before any load,
//! naming the field and the server, on time.

#[path = "grpc/peer.rs"]
mod peer;

use peer::{PyServer, proto};
use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};
use userflux::{engine, output_within, read_json};

/// A service with imports (one of them a well-known type), served by
/// reflection only: calls to it are UNIMPLEMENTED, but its descriptors
/// must resolve.
const STORE: &str = r#"syntax = "proto3";
package deps;
import "common.proto";
import "google/protobuf/timestamp.proto";
message PutRequest { common.Id id = 1; google.protobuf.Timestamp at = 2; }
service Store { rpc Put(PutRequest) returns (common.Id); }
"#;

/// Writes the descriptors of echo.proto and `STORE` (with its imports) as
/// a FileDescriptorSet for server.py's `--reflection`.
fn descriptors(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("store.proto"), STORE).unwrap();
    std::fs::write(
        dir.join("common.proto"),
        "syntax = \"proto3\";\npackage common;\nmessage Id { int64 value = 1; }\n",
    )
    .unwrap();
    let pool = userflux_engine::load::grpc::compile::compile_pool(
        &[proto(), dir.join("store.proto")],
        &[dir.to_path_buf()],
    )
    .unwrap();
    let file = dir.join("descriptors.pb");
    std::fs::write(&file, pool.encode_to_vec()).unwrap();
    file
}

/// Runs `json` (written in `dir`); returns the exit code, stderr, and the
/// run directory.
fn run_json(dir: &Path, json: &str) -> (Option<i32>, String, std::path::PathBuf) {
    let file = dir.join("config.json");
    std::fs::write(&file, json).unwrap();
    let runs = dir.join("runs");
    let _ = std::fs::remove_dir_all(&runs);
    let out = output_within(
        engine()
            .args(["run", "-q", "--config"])
            .arg(&file)
            .arg("--runs-dir")
            .arg(&runs),
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr, userflux::only_run(&runs))
}

fn config(port: u16, grpc: &str) -> String {
    format!(
        r#"{{"target": "http://127.0.0.1:{port}", "duration": "10s", "requests": 20,
            "stages": [{{"duration": "10s", "target": 2}}],
            "endpoints": [{{"name": "e", "grpc": {grpc}}}]}}"#
    )
}

/// A run that failed before any load: exit 1, status `failed` with the
/// reason, no summary.
fn failed_with(dir: &Path, json: &str, want: &str) {
    let (code, stderr, run) = run_json(dir, json);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(want), "{want:?} in {stderr}");
    let status = read_json(&run.join("status.json"));
    assert_eq!(status["state"], "failed", "{status}");
    let message = status["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(want), "{want:?} in {status}");
    assert!(!run.join("summary.json").exists(), "no load, no summary");
}

/// The quick form without --proto asks the server: exact counts, the
/// templated fields reach it, the log says who described what; a service
/// with imports resolves; a wrong field, method or service is named.
#[test]
fn the_server_describes_the_method_and_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let set = descriptors(dir.path());
    let Some(server) =
        PyServer::start_with(dir.path(), &[OsStr::new("--reflection"), set.as_os_str()])
    else {
        return;
    };
    let runs = dir.path().join("quick");
    let out = output_within(
        engine()
            .args([
                "grpc",
                &format!("127.0.0.1:{}", server.port),
                "echo.Echo/Say",
            ])
            .args(["-d", r#"{"text": "t{{seq}}", "user": {"id": {{seq}}}}"#])
            .args(["-c", "2", "--streams", "4", "-n", "200", "-q", "--runs-dir"])
            .arg(&runs),
        Duration::from_secs(120),
    );
    userflux::assert_ok(&out);
    let run = userflux::only_run(&runs);
    let e = &read_json(&run.join("summary.json"))["endpoints"]["default"];
    assert_eq!(e["grpc_status"], serde_json::json!({"OK": 200}), "{e}");
    let seen = server.recorded();
    let mut ids: Vec<i64> = (seen.iter())
        .map(|s| s["request"]["user"]["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..200).collect::<Vec<i64>>(), "each seq once");
    assert!(
        seen.iter()
            .all(|s| s["request"]["text"] == format!("t{}", s["request"]["user"]["id"]))
    );
    let logs = std::fs::read_to_string(run.join("logs.txt")).unwrap();
    let said = format!(
        "grpc reflection: 127.0.0.1:{} described echo.Echo",
        server.port
    );
    assert!(logs.contains(&said), "{logs}");
    // (the exchange's cost, for the record: `-- --nocapture`)
    eprintln!(
        "{}",
        logs.lines().find(|l| l.contains(&said)).unwrap_or_default()
    );
    assert!(logs.contains("grpc.reflection.v1alpha"), "{logs}");

    // imports (common.proto, a well-known type) resolve; the calls reach
    // a server without a handler for them
    let (code, stderr, run) = run_json(
        dir.path(),
        &config(
            server.port,
            r#"{"reflection": true, "method": "deps.Store/Put", "message": {"id": {"value": 7}}}"#,
        ),
    );
    assert_eq!(code, Some(0), "{stderr}");
    let e = &read_json(&run.join("summary.json"))["endpoints"]["e"];
    assert_eq!(
        e["grpc_status"],
        serde_json::json!({"UNIMPLEMENTED": 20}),
        "{e}"
    );

    // a flow: a reflection step's reply captured into the next one's
    // message (the message compiles in the step's scope at start)
    let flow = format!(
        r#"{{"target": "http://127.0.0.1:{}", "http": "2", "requests": 20, "duration": "30s",
            "stages": [{{"duration": "30s", "target": 2}}],
            "flows": [{{"name": "f", "steps": [
              {{"name": "first", "grpc": {{"reflection": true, "method": "echo.Echo/Say",
                  "message": "{{\"text\": \"a{{{{seq}}}}\"}}"}},
                "capture": {{"said": {{"json": "/echo/text"}}}}}},
              {{"name": "second", "grpc": {{"reflection": true, "method": "echo.Echo/Say",
                  "message": "{{\"text\": \"got {{{{vars.said}}}}\"}}"}}}}]}}]}}"#,
        server.port
    );
    let (code, stderr, run) = run_json(dir.path(), &flow);
    assert_eq!(code, Some(0), "{stderr}");
    let e = &read_json(&run.join("summary.json"))["endpoints"];
    assert_eq!(
        e["f.second"]["grpc_status"],
        serde_json::json!({"OK": 10}),
        "{e}"
    );
    let logs = std::fs::read_to_string(run.join("logs.txt")).unwrap();
    assert_eq!(
        logs.matches("grpc reflection: ").count(),
        1,
        "asked once: {logs}"
    );
    let got: Vec<String> = (server.recorded().iter())
        .filter_map(|s| s["request"]["text"].as_str().map(str::to_string))
        .filter(|t| t.starts_with("got a"))
        .collect();
    assert_eq!(
        got.len(),
        10,
        "each second step carried the first's reply: {got:?}"
    );

    let before = server.recorded().len();
    let at = format!("127.0.0.1:{}", server.port);
    for (grpc, want) in [
        (
            r#"{"reflection": true, "method": "echo.Echo/Say", "message": {"user": {"idd": 1}}}"#.to_string(),
            format!("endpoints[0].grpc.message.user.idd: unknown field (not in the .proto) (as {at} describes it by reflection)"),
        ),
        (
            r#"{"reflection": true, "method": "echo.Echo/Shout"}"#.into(),
            "endpoints[0].grpc.method: service echo.Echo has no method \"Shout\"; it has: Say, Fail, Tick".into(),
        ),
        (
            r#"{"reflection": true, "method": "nope.Svc/Get"}"#.into(),
            format!("endpoints[0].grpc.reflection: {at} has no service \"nope.Svc\" (it serves: deps.Store, echo.Echo, grpc.reflection.v1alpha.ServerReflection)"),
        ),
    ] {
        failed_with(dir.path(), &config(server.port, &grpc), &want);
    }
    assert_eq!(
        server.recorded().len(),
        before,
        "no call after a failed resolve"
    );
}

/// A server without reflection, and a peer that never answers: the run
/// fails before any load, naming the field and the server, on time.
/// Two shards of a reflection config, merged: thresholds on the
/// grpc_status and method tags are judged again over the merged counts
/// and histograms (the merge's plan has the rows unresolved; they saw
/// nothing: found by a first-user try).
#[test]
fn sharded_reflection_runs_judge_grpc_status_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let set = descriptors(dir.path());
    let Some(server) =
        PyServer::start_with(dir.path(), &[OsStr::new("--reflection"), set.as_os_str()])
    else {
        return;
    };
    let json = format!(
        r#"{{"target": "http://127.0.0.1:{}", "duration": "2s",
            "stages": [{{"duration": "2s", "target": 4}}],
            "thresholds": {{"http_reqs{{grpc_status:OK}}": ["count>0"],
                           "grpc_req_duration{{grpc_status:OK}}": ["max<60000"],
                           "http_reqs{{method:echo.Echo/Say}}": ["count>0"]}},
            "endpoints": [{{"name": "e", "grpc": {{"reflection": true, "method": "echo.Echo/Say",
                "message": {{"text": "hi"}}}}}}]}}"#,
        server.port
    );
    let file = dir.path().join("sharded.json");
    std::fs::write(&file, json).unwrap();
    let runs = dir.path().join("sharded");
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
    let n = summary["endpoints"]["e"]["requests"].as_u64().unwrap();
    assert!(n > 0, "{summary}");
    for t in summary["thresholds"].as_array().unwrap() {
        assert_eq!(t["ok"], true, "{t}");
        assert!(t["observed"].as_f64().is_some_and(|v| v > 0.0), "{t}");
    }
}

#[test]
fn no_reflection_or_no_answer_fails_the_run_before_any_load() {
    let dir = tempfile::tempdir().unwrap();
    if let Some(server) = PyServer::start(dir.path()) {
        failed_with(
            dir.path(),
            &config(
                server.port,
                r#"{"reflection": true, "method": "echo.Echo/Say"}"#,
            ),
            &format!(
                "endpoints[0].grpc.reflection: 127.0.0.1:{} does not serve reflection (UNIMPLEMENTED)",
                server.port
            ),
        );
        // the quick form names the flag
        let out = output_within(
            engine()
                .args([
                    "grpc",
                    &format!("127.0.0.1:{}", server.port),
                    "echo.Echo/Say",
                ])
                .args(["-n", "5", "-q", "--no-save"]),
            Duration::from_secs(60),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = format!(
            "HOST:PORT: 127.0.0.1:{} does not serve reflection (UNIMPLEMENTED)",
            server.port
        );
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&want), "{want:?} in {stderr}");
        assert!(server.recorded().is_empty(), "no call reached it");
    }
    // accepts, reads, never answers: bounded by timeouts.request
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let json = config(port, r#"{"reflection": true, "method": "echo.Echo/Say"}"#).replace(
        r#""requests": 20,"#,
        r#""requests": 20, "timeouts": {"request": "800ms"},"#,
    );
    let t0 = Instant::now();
    failed_with(
        dir.path(),
        &json,
        &format!("endpoints[0].grpc.reflection: 127.0.0.1:{port} sent no answer within 800ms"),
    );
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    drop(silent);
}

/// Over TLS (a self-signed certificate trusted by `tls.ca_file`, ALPN h2)
/// the exchange and the calls run as over h2c.
#[test]
fn reflection_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let set = descriptors(dir.path());
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let args = [
        OsStr::new("--reflection"),
        set.as_os_str(),
        OsStr::new("--tls"),
        cert.as_os_str(),
        key.as_os_str(),
    ];
    let Some(server) = PyServer::start_with(dir.path(), &args) else {
        return;
    };
    let json = config(
        server.port,
        r#"{"reflection": true, "method": "echo.Echo/Say", "message": "{\"text\": \"s{{seq}}\"}"}"#,
    )
    .replace("http://", "https://")
    .replace(
        r#""requests": 20,"#,
        r#""requests": 20, "tls": {"ca_file": "cert.pem"},"#,
    );
    let (code, stderr, run) = run_json(dir.path(), &json);
    assert_eq!(code, Some(0), "{stderr}");
    let e = &read_json(&run.join("summary.json"))["endpoints"]["e"];
    assert_eq!(e["grpc_status"], serde_json::json!({"OK": 20}), "{e}");
    let mut texts: Vec<String> = (server.recorded().iter())
        .map(|s| s["request"]["text"].as_str().unwrap().to_string())
        .collect();
    texts.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
    want.sort();
    assert_eq!(texts, want);
}
