//! The demo gateway fanning out over real gRPC (issue #31, part 4):
//! `userflux-services` serves the seven downstream services, the gateway
//! with `--grpc ADDR` calls them, and every hop still shows in
//! Server-Timing; a failing service and a deadline answer 503; bad
//! services files and routes that set what a service owns are refused.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use userflux::{Gateway, bin, output_within};

/// A running `userflux-services`, killed on drop.
struct Services {
    child: Child,
    addr: String,
}

impl Services {
    fn start(config: Option<&str>, dir: &std::path::Path) -> Services {
        let mut cmd = Command::new(bin("userflux-services"));
        cmd.args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(json) = config {
            let file = dir.join("services.json");
            std::fs::write(&file, json).unwrap();
            cmd.arg("--config").arg(file);
        }
        let mut child = cmd.spawn().expect("spawn userflux-services");
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

/// `curl` over HTTP/1.1 or h2c: (head, body).
fn curl(args: &[&str], url: &str) -> (String, String) {
    let out = output_within(
        Command::new("curl")
            .args(["-sS", "-D", "/dev/stderr", "--max-time", "20"])
            .args(args)
            .arg(url),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The `dur` of `name` in a Server-Timing header, in ms.
fn dur(head: &str, name: &str) -> f64 {
    let at = head
        .find(&format!("{name};dur="))
        .unwrap_or_else(|| panic!("no {name} in {head}"));
    head[at + name.len() + 5..]
        .split(|c: char| c == ',' || c.is_whitespace())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_gateway_fans_out_over_grpc_with_server_timing_errors_and_deadlines() {
    let tmp = tempfile::tempdir().unwrap();
    let services = Services::start(
        Some(
            r#"{"services": {"users": {"latency": "20ms"}, "catalog": {"error_rate": 1.0},
                              "pricing": {"latency": "5s"}}}"#,
        ),
        tmp.path(),
    );
    let gw = Gateway::start_with(
        "127.0.0.1:0",
        None,
        tmp.path(),
        &["--grpc", &services.addr, "--grpc-deadline", "300ms"],
    );
    let (head, body) = curl(&["--http1.1"], &format!("{}/api/users", gw.url()));
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(body.len(), 512);
    let users = dur(&head, "users");
    assert!(users >= 20.0, "a 20 ms service took {users} ms: {head}");
    // catalog fails (UNAVAILABLE); pricing runs past its 300 ms deadline
    let (head, _) = curl(
        &["--http2-prior-knowledge"],
        &format!("{}/api/products", gw.url()),
    );
    assert!(head.starts_with("HTTP/2 503"), "{head}");
    let pricing = dur(&head, "pricing");
    assert!(
        pricing >= 300.0,
        "deadline 300 ms, pricing {pricing} ms: {head}"
    );
    dur(&head, "catalog");
    // many requests over h2c, each a gRPC call on the gateway's one channel
    let out = output_within(
        Command::new("h2load")
            .args(["-n", "200", "-c", "2", "-m", "20"])
            .arg(format!("{}/api/users", gw.url())),
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status codes: 200 2xx"), "{text}");
    let (_, stats) = curl(&["--http1.1"], &format!("{}/__gateway/stats", gw.url()));
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["calls_ended"], 1 + 2 + 200, "{stats}");
    assert_eq!(stats["status_codes"]["200"], 201, "{stats}");
}

#[test]
fn what_a_service_owns_is_refused_on_the_gateway_and_bad_services_files_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let routes = tmp.path().join("routes.json");
    std::fs::write(
        &routes,
        r#"{"routes": [{"path": "/a", "calls": [{"service": "users", "latency": "2ms"}]}]}"#,
    )
    .unwrap();
    let out = Command::new(bin("userflux-gateway"))
        .args(["--grpc", "127.0.0.1:1", "--routes"])
        .arg(&routes)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("routes[0].calls[0].latency: with --grpc"),
        "{err}"
    );

    std::fs::write(
        &routes,
        r#"{"routes": [{"path": "/a", "calls": [{"service": "s"}]}]}"#,
    )
    .unwrap();
    let out = output_within(
        Command::new(bin("userflux-gateway"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--grpc",
                "127.0.0.1:1",
                "--routes",
            ])
            .arg(&routes),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("service \"s\" is not one of the gRPC services"),
        "{err}"
    );

    let file = tmp.path().join("services.json");
    std::fs::write(&file, r#"{"services": {"payments": {"error_rate": 3}}}"#).unwrap();
    let out = Command::new(bin("userflux-services"))
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("services.payments.error_rate"), "{err}");
}
