//! HTTPS (issue #16): the engine against the gateway's TLS mode — trust,
//! names, mutual TLS, versions, resumption, phase timings — and against
//! hostile TLS peers, each a counted error that ends on time.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use userflux::{Gateway, load_run, only_run, run_with_config};
use userflux_engine::summary::{Summary, decode_histogram};

fn tls_gateway(dir: &Path, extra: &[&str]) -> Gateway {
    let certs = dir.join("certs");
    let certs = certs.to_str().unwrap();
    let mut args = vec!["--tls-self-signed", certs];
    args.extend_from_slice(extra);
    Gateway::start_with("127.0.0.1:0", None, dir, &args)
}

/// Runs a config (`{target}` replaced) and returns the summary, the exit
/// code, stdout+stderr and logs.txt.
fn run(dir: &Path, name: &str, config: &str, target: &str) -> (Summary, i32, String) {
    let runs = dir.join(name);
    let config = config.replace("{target}", target);
    let t0 = Instant::now();
    let out = run_with_config(&config, &dir.join(format!("{name}.json")), &runs, &[]);
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "{name} did not end on time"
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(2), "{name}: config refused: {text}");
    let run = only_run(&runs);
    let (s, _) = load_run(&run);
    let logs = std::fs::read_to_string(run.join("logs.txt")).unwrap_or_default();
    (
        s,
        out.status.code().unwrap_or(-1),
        format!("{text}\n{logs}"),
    )
}

fn config(tls: &str, vus: u32, secs: u32, extra: &str) -> String {
    format!(
        r#"{{"target": "{{target}}", "threads": 1, {extra}
            "stages": [{{"duration": "0s", "target": {vus}}}, {{"duration": "{secs}s", "target": {vus}}}],
            "timeouts": {{"connect": "2s", "request": "5s"}},
            "tls": {tls},
            "endpoints": [{{"name": "users", "path": "/api/users"}}]}}"#
    )
}

fn count(s: &Summary, phase: &str) -> u64 {
    s.histograms_phases
        .get("users")
        .and_then(|p| p.get(phase))
        .map_or(0, |h| decode_histogram(h).unwrap().len())
}

#[test]
fn with_the_ca_every_request_passes_and_phases_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = tls_gateway(tmp.path(), &[]);
    let ca = tmp.path().join("certs/ca.pem");
    let target = format!("https://{}", gw.addr);
    let tls = format!(r#"{{"ca_file": "{}"}}"#, ca.display());
    let (s, code, text) = run(tmp.path(), "ok", &config(&tls, 4, 2, ""), &target);
    assert_eq!(code, 0, "{text}");
    assert_eq!(s.totals.errors, 0, "{text}");
    assert!(s.totals.requests > 100);
    let e = &s.endpoints["users"];
    // connect and TLS once per connection (4 VUs, keep-alive); waiting per response
    assert_eq!(count(&s, "connect"), 4, "{text}");
    assert_eq!(count(&s, "tls_handshake"), 4);
    assert_eq!(count(&s, "waiting"), e.requests);
    let (w, l) = (
        e.waiting_ms.as_ref().unwrap(),
        e.latency_ms.as_ref().unwrap(),
    );
    assert!(
        w.p50 <= l.p50 && w.max <= l.max,
        "waiting {w:?} total {l:?}"
    );
    assert!(e.tls_handshake_ms.as_ref().unwrap().p50 > 0.0);
    assert!(text.contains("TLS handshake"), "{text}");
    // the phases as thresholds
    let config = config(
        &tls,
        2,
        1,
        r#""thresholds": {"http_req_tls_handshaking": ["p(99)<5000"], "http_req_waiting{endpoint:users}": ["max<5000"], "http_req_connecting": ["count>0"]},"#,
    );
    let runs = tmp.path().join("bad-threshold");
    let out = run_with_config(
        &config.replace("{target}", &target),
        &tmp.path().join("t.json"),
        &runs,
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("http_req_connecting") && err.contains("avg, min, max, med, p(N)"),
        "{err}"
    );
    let config = config.replace(r#", "http_req_connecting": ["count>0"]"#, "");
    let (s, code, text) = run(tmp.path(), "thresholds", &config, &target);
    assert_eq!(code, 0, "{text}");
    assert!(
        s.thresholds.iter().all(|t| t.ok && t.observed.is_some()),
        "{:?}",
        s.thresholds
    );
}

#[test]
fn trust_names_and_insecure() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = tls_gateway(tmp.path(), &[]);
    let ca = tmp.path().join("certs/ca.pem");
    let target = format!("https://{}", gw.addr);
    // without the CA: every connection fails as tls, saying why
    let (s, code, text) = run(tmp.path(), "untrusted", &config("{}", 2, 1, ""), &target);
    assert_eq!(code, 0);
    assert!(s.totals.requests > 0);
    assert_eq!(
        s.totals.error_kinds.get("tls"),
        Some(&s.totals.requests),
        "{text}"
    );
    assert!(text.contains("unknown issuer"), "{text}");
    // insecure: no verification
    let (s, _, text) = run(
        tmp.path(),
        "insecure",
        &config(r#"{"insecure": true}"#, 2, 1, ""),
        &target,
    );
    assert_eq!(s.totals.errors, 0, "{text}");
    // a name the certificate does not carry
    let tls = format!(
        r#"{{"ca_file": "{}", "server_name": "example.test"}}"#,
        ca.display()
    );
    let (s, _, text) = run(tmp.path(), "name", &config(&tls, 2, 1, ""), &target);
    assert_eq!(
        s.totals.error_kinds.get("tls"),
        Some(&s.totals.requests),
        "{text}"
    );
    assert!(
        text.contains("is not valid for \"example.test\", only for 127.0.0.1"),
        "{text}"
    );
    // the quick form's --cacert and --insecure
    for flags in [vec!["--cacert", ca.to_str().unwrap()], vec!["--insecure"]] {
        let runs = tmp.path().join(format!("quick{}", flags.len()));
        let out = userflux::engine()
            .args(["run", "-q", "-c", "2", "-d", "1s", "--runs-dir"])
            .arg(&runs)
            .args(&flags)
            .arg(format!("{target}/api/users"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (s, _) = load_run(&only_run(&runs));
        assert_eq!(s.totals.errors, 0, "{flags:?}");
    }
    // the quick form names its flag
    let out = userflux::engine()
        .args([
            "run",
            "-q",
            "-c",
            "1",
            "-d",
            "1s",
            "--cacert",
            "/nonexistent/ca.pem",
            "--runs-dir",
        ])
        .arg(tmp.path().join("quickbad"))
        .arg(format!("{target}/"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--cacert: /nonexistent/ca.pem"), "{err}");
    assert!(!tmp.path().join("quickbad").exists(), "nothing created");
    // a bad CA file is a config error naming it
    let runs = tmp.path().join("badca");
    let bad = config(r#"{"ca_file": "/nonexistent/ca.pem"}"#, 1, 1, "");
    let out = run_with_config(
        &bad.replace("{target}", &target),
        &tmp.path().join("b.json"),
        &runs,
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls.ca_file: /nonexistent/ca.pem"));
}

#[test]
fn mutual_tls_and_versions() {
    let tmp = tempfile::tempdir().unwrap();
    // the first gateway makes the CA; the second requires client certificates from it
    let first = tls_gateway(tmp.path(), &[]);
    drop(first);
    let certs = tmp.path().join("certs");
    let ca = certs.join("ca.pem");
    let mtls_dir = tmp.path().join("m");
    std::fs::create_dir_all(&mtls_dir).unwrap();
    let gw = Gateway::start_with(
        "127.0.0.1:0",
        None,
        &mtls_dir,
        &[
            "--tls-cert",
            certs.join("cert.pem").to_str().unwrap(),
            "--tls-key",
            certs.join("key.pem").to_str().unwrap(),
            "--tls-client-ca",
            ca.to_str().unwrap(),
        ],
    );
    let target = format!("https://{}", gw.addr);
    let with = format!(
        r#"{{"ca_file": "{}", "client_cert": "{}", "client_key": "{}"}}"#,
        ca.display(),
        certs.join("client.pem").display(),
        certs.join("client-key.pem").display()
    );
    let (s, _, text) = run(tmp.path(), "mtls", &config(&with, 2, 1, ""), &target);
    assert_eq!(s.totals.errors, 0, "{text}");
    assert!(s.totals.requests > 0);
    let without = format!(r#"{{"ca_file": "{}"}}"#, ca.display());
    let (s, _, text) = run(tmp.path(), "nocert", &config(&without, 2, 1, ""), &target);
    assert!(s.totals.requests > 0);
    assert_eq!(
        s.totals.error_kinds.get("tls"),
        Some(&s.totals.requests),
        "{text}"
    );
    drop(gw);
    // a TLS 1.2-only server: fine by default, refused with min_version 1.3
    let gw12 = tls_gateway(&mtls_dir, &["--tls12-only"]);
    let target = format!("https://{}", gw12.addr);
    let ca12 = mtls_dir.join("certs/ca.pem");
    let (s, _, text) = run(
        tmp.path(),
        "tls12",
        &config(&format!(r#"{{"ca_file": "{}"}}"#, ca12.display()), 2, 1, ""),
        &target,
    );
    assert_eq!(s.totals.errors, 0, "{text}");
    let (s, _, text) = run(
        tmp.path(),
        "tls13",
        &config(
            &format!(
                r#"{{"ca_file": "{}", "min_version": "1.3"}}"#,
                ca12.display()
            ),
            2,
            1,
            "",
        ),
        &target,
    );
    assert_eq!(
        s.totals.error_kinds.get("tls"),
        Some(&s.totals.requests),
        "{text}"
    );
    assert!(text.contains("first tls error"), "{text}");
}

#[test]
fn sessions_resume_across_reconnects_unless_told_not_to() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = tls_gateway(tmp.path(), &[]);
    let ca = tmp.path().join("certs/ca.pem");
    let target = format!("https://{}", gw.addr);
    // Connection: close makes every request a new connection and handshake
    let close = r#""endpoints": [{"name": "users", "path": "/api/users", "headers": {"connection": "close"}}],"#;
    let cfg = |resume: bool| {
        config(
            &format!(r#"{{"ca_file": "{}", "resume": {resume}}}"#, ca.display()),
            2,
            2,
            "",
        )
        .replace(
            r#""endpoints": [{"name": "users", "path": "/api/users"}]}"#,
            &format!("{}}}", close.trim_end_matches(',')),
        )
    };
    let (on, _, text) = run(tmp.path(), "resume", &cfg(true), &target);
    let (off, _, _) = run(tmp.path(), "full", &cfg(false), &target);
    let (e_on, e_off) = (&on.endpoints["users"], &off.endpoints["users"]);
    assert_eq!(on.totals.errors + off.totals.errors, 0, "{text}");
    let handshakes = count(&on, "tls_handshake");
    assert!(handshakes > 20, "{handshakes}: a handshake per request");
    assert!(
        e_on.tls_resumed * 10 >= handshakes * 9,
        "{} of {handshakes} resumed",
        e_on.tls_resumed
    );
    assert_eq!(e_off.tls_resumed, 0);
    // (that a resumed handshake is faster is a timing, which belongs in
    // benches/tls.sh, not here: on a loaded machine it failed with 2.9 ms
    // resumed against 2.7 ms full; both phases are measured, though)
    assert!(e_on.tls_handshake_ms.is_some() && e_off.tls_handshake_ms.is_some());
}

/// A loopback server that runs `serve` on each connection it accepts.
fn hostile(serve: impl Fn(std::net::TcpStream) + Send + Sync + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let serve = Arc::clone(&serve);
            std::thread::spawn(move || serve(s));
        }
    });
    port
}

/// A TLS server that completes handshakes, then does `after` with the
/// decrypted stream.
fn tls_server(
    after: fn(&mut rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>),
) -> (u16, rcgen::CertifiedKey) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.key_pair.serialize_der()).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap(),
    );
    let port = hostile(move |s| {
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let conn = rustls::ServerConnection::new(config.clone()).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, s);
        // read the request head (this also completes the handshake)
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match tls.read(&mut b) {
                Ok(1) => head.push(b[0]),
                _ => return,
            }
        }
        after(&mut tls);
    });
    (port, ck)
}

#[test]
fn hostile_tls_peers_are_counted_errors_that_end_on_time() {
    let tmp = tempfile::tempdir().unwrap();
    let insecure = r#"{"insecure": true}"#;
    // a plaintext HTTP answer on an https URL
    let plain = hostile(|mut s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        std::thread::sleep(Duration::from_millis(200));
    });
    // a handshake that never completes: accept, read, say nothing
    let silent = hostile(|mut s| {
        let mut b = [0u8; 4096];
        while s.read(&mut b).is_ok_and(|n| n > 0) {}
    });
    // garbage after the handshake
    let (garbage, _) = tls_server(|tls| {
        let _ = tls
            .sock
            .write_all(b"\x17\x03\x03\x00\x05garbage-that-is-not-a-record");
        std::thread::sleep(Duration::from_millis(200));
    });
    // a response cut short, then a close without close_notify
    let (cut, _) = tls_server(|tls| {
        let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
        let _ = tls.flush();
        let _ = tls.sock.shutdown(std::net::Shutdown::Both);
    });
    // a whole response, then a close without close_notify: fine
    let (whole, _) = tls_server(|tls| {
        let _ =
            tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        let _ = tls.flush();
        let _ = tls.sock.shutdown(std::net::Shutdown::Both);
    });
    // (the silent one runs past its first handshakes' 2 s connect timeout:
    // one still under way when the run ends is no request, and a run of
    // exactly 2 s could end before the timeouts fire, with none)
    for (name, port, kind, secs) in [
        ("plaintext", plain, Some("tls"), 2),
        ("silent", silent, Some("tls"), 3),
        ("garbage", garbage, Some("tls"), 2),
        ("cut", cut, Some("read"), 2),
        ("whole", whole, None, 2),
    ] {
        let target = format!("https://127.0.0.1:{port}");
        let (s, _, text) = run(tmp.path(), name, &config(insecure, 2, secs, ""), &target);
        assert!(s.totals.requests > 0, "{name}: {text}");
        match kind {
            Some(k) => assert_eq!(
                s.totals.error_kinds.get(k).copied().unwrap_or(0)
                    + s.totals
                        .error_kinds
                        .get("interrupted")
                        .copied()
                        .unwrap_or(0),
                s.totals.requests,
                "{name}: {:?}\n{text}",
                s.totals.error_kinds
            ),
            None => assert_eq!(s.totals.errors, 0, "{name}: {text}"),
        }
    }
}

/// Issue #27: a self-signed certificate made the usual way (`openssl req
/// -x509`, so `CA:TRUE`) given as the CA file is trusted as curl trusts it
/// (it was refused as `Other(OtherError(CaUsedAsEndEntity))`); without it,
/// or for another name, the refusal says what to do, in words.
#[test]
fn a_self_signed_server_certificate_given_as_the_ca_file_is_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"),
        "openssl made a CA certificate"
    );
    let gw = Gateway::start_with(
        "127.0.0.1:0",
        None,
        tmp.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let target = format!("https://{}", gw.addr);
    let tls = format!(r#"{{"ca_file": "{}"}}"#, cert.display());
    let (s, code, text) = run(tmp.path(), "pinned", &config(&tls, 2, 1, ""), &target);
    assert_eq!(code, 0, "{text}");
    assert_eq!(s.totals.errors, 0, "{text}");
    assert!(s.totals.requests > 0);
    // the same through the quick form's --cacert
    let out = userflux::engine()
        .args(["run", "-q", "-c", "1", "-n", "20", "--cacert"])
        .arg(&cert)
        .arg("--runs-dir")
        .arg(tmp.path().join("quick"))
        .arg(format!("{target}/api/users"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, _) = load_run(&only_run(&tmp.path().join("quick")));
    assert_eq!((s.totals.requests, s.totals.errors), (20, 0));
    // without it, and for another name: refused, saying why in words
    for (name, tls, want) in [
        (
            "untrusted",
            "{}".to_string(),
            "is a CA certificate (basicConstraints CA:TRUE, as `openssl req -x509` makes by default): give that very certificate with --cacert",
        ),
        (
            "other-name",
            format!(
                r#"{{"ca_file": "{}", "server_name": "example.com"}}"#,
                cert.display()
            ),
            "is not valid for \"example.com\", only for 127.0.0.1",
        ),
    ] {
        let (s, code, text) = run(tmp.path(), name, &config(&tls, 1, 1, ""), &target);
        assert_eq!(code, 0, "{name}: {text}");
        assert_eq!(
            s.totals.error_kinds.get("tls"),
            Some(&s.totals.requests),
            "{name}: {text}"
        );
        assert!(text.contains(want), "{name}: {text}");
        assert!(
            !text.contains("OtherError") && !text.contains("Other("),
            "{text}"
        );
    }
}
