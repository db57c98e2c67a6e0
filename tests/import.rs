//! `userfluxctl import har|postman` end to end: a HAR recorded from a real
//! headless Chromium session of the demo gateway (tests/fixtures/gateway.har,
//! made by tests/fixtures/record_har.py) and a Postman collection are
//! imported, the configs run by the engine against a fresh gateway, and the
//! requests the gateway received — seen through a recording proxy in front
//! of it — are the recorded sequence, with the fresh session's token and
//! ids in place of the recorded ones.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use userflux::{Gateway, Scripted, Seen, bin, engine, load_run, only_run, output_within};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn ctl() -> Command {
    Command::new(bin("userfluxctl"))
}

/// One request, forwarded to the gateway on a connection of its own; its
/// whole response returned (minus the `Connection: close` this asks for).
fn forward(gw: SocketAddr, seen: &Seen) -> String {
    let mut s = TcpStream::connect(gw).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("{} {} HTTP/1.1\r\n", seen.method, seen.path);
    for (k, v) in &seen.headers {
        if k != "connection" {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&seen.body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).replacen("Connection: close\r\n", "", 1)
}

/// The gateway (default seed: its tokens are not the recording's), behind
/// a proxy that keeps every request and the response it got.
struct Peer {
    _gw: Gateway,
    proxy: Scripted,
    answers: Arc<Mutex<Vec<(String, String)>>>,
}

impl Peer {
    fn start(dir: &Path) -> Peer {
        let gw = Gateway::start(None, dir);
        let addr = gw.addr;
        let answers: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let log = Arc::clone(&answers);
        let proxy = Scripted::start(Arc::new(move |s: &Seen| {
            let r = forward(addr, s);
            log.lock().unwrap().push((s.path.clone(), r.clone()));
            r
        }));
        Peer {
            _gw: gw,
            proxy,
            answers,
        }
    }

    /// The JSON body the gateway answered to the first request for `path`.
    fn answer_json(&self, path: &str) -> Value {
        let a = self.answers.lock().unwrap();
        let (_, r) = a.iter().find(|(p, _)| p == path).expect("answered");
        serde_json::from_str(r.split("\r\n\r\n").nth(1).unwrap()).unwrap()
    }
}

/// Runs `userfluxctl import ARGS`: (exit code, stdout, stderr).
fn import(args: &[&str]) -> (Option<i32>, String, String) {
    let out = output_within(ctl().arg("import").args(args), Duration::from_secs(30));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a config once, as written; the run's summary.
fn run(config: &str, dir: &Path) -> userflux_engine::summary::Summary {
    let file = dir.join("imported.json");
    std::fs::write(&file, config).unwrap();
    let runs = dir.join("runs");
    let out = output_within(
        engine()
            .args(["run", "-q", "--config"])
            .arg(&file)
            .arg("--runs-dir")
            .arg(&runs),
        Duration::from_secs(180),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    load_run(&only_run(&runs)).0
}

/// The requests of the recording a flow keeps: (page, method, path) of
/// every entry that is not a static asset, in order.
fn recorded() -> Vec<(String, String, String)> {
    let har: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("gateway.har")).unwrap()).unwrap();
    har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let url = e["request"]["url"].as_str().unwrap();
            let path = &url[url.find("/api").or_else(|| url.rfind('/'))?..];
            let asset = [".ico", ".js"].iter().any(|x| path.ends_with(x));
            (!asset).then(|| {
                (
                    e["pageref"].as_str().unwrap().to_string(),
                    e["request"]["method"].as_str().unwrap().to_string(),
                    path.to_string(),
                )
            })
        })
        .collect()
}

#[test]
fn a_chromium_har_of_the_gateway_replays_the_recorded_sequence_with_a_fresh_session() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(tmp.path());
    let har = fixture("gateway.har");
    let (code, config, report) =
        import(&["har", har.to_str().unwrap(), "--target", &peer.proxy.url()]);
    assert_eq!(code, Some(0), "{report}");
    // the report says what was dropped and why, and what became a capture
    for said in [
        "dropped headers (browser noise): accept-language, referer, sec-ch-ua",
        "dropped headers (cookies: the flow's cookie jar sends what responses set): cookie",
        "dropped headers (hop-by-hop, the connection's own): connection",
        "dropped 2 request(s), static assets (by file extension; --include-assets keeps them): GET http://127.0.0.1:33577/favicon.ico, GET http://127.0.0.1:33577/assets/app.js",
        "\"POST /api/login\" captures token (JSON /token) for \"GET /api/products/42\"",
        "\"POST /api/cart\" captures id (JSON /id) for \"POST /api/checkout\"",
        "header x-request-id: \"f3a9c2d4-7b1e-4c8a-9d2f-…\" looks like a token or id",
        "\"GET /api/users\" sent the cookie session, which no earlier response of this flow set",
    ] {
        assert!(report.contains(said), "{said:?} not in:\n{report}");
    }
    assert!(!report.contains("does not validate"), "{report}");
    let c: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(c["target"], peer.proxy.url());
    let shop = &c["flows"][0]["steps"];
    assert_eq!(shop[2]["headers"]["authorization"], "Bearer {{vars.token}}");
    assert_eq!(shop[4]["body"], "{\"cart\":{{vars.id}}}");
    // think times are the recorded gaps (the script paused 700, 1,200 and 400 ms)
    let think = |i: usize| {
        let t = shop[i]["think_time"].as_str().unwrap();
        t.trim_end_matches("ms").parse::<u64>().unwrap()
    };
    assert!((700..1_000).contains(&think(1)), "{}", think(1));
    assert!((1_200..1_500).contains(&think(2)), "{}", think(2));
    assert!((400..700).contains(&think(3)), "{}", think(3));
    for s in shop.as_array().unwrap() {
        let h = s["headers"].as_object().unwrap();
        for gone in [
            "user-agent",
            "cookie",
            "host",
            "connection",
            "accept-encoding",
            "sec-ch-ua",
        ] {
            assert!(!h.contains_key(gone), "{gone} kept in {s}");
        }
    }

    let summary = run(&config, tmp.path());
    assert_eq!(summary.totals.requests, 7, "{:?}", summary.totals);
    assert_eq!(summary.totals.errors, 0, "{:?}", summary.totals);

    // The gateway saw each page's requests in the recorded order.
    let seen = peer.proxy.seen();
    let expected = recorded();
    for page in ["page_1", "page_2"] {
        let want: Vec<(String, String)> = expected
            .iter()
            .filter(|(p, _, _)| p == page)
            .map(|(_, m, path)| (m.clone(), path.clone()))
            .collect();
        let got: Vec<(String, String)> = seen
            .iter()
            .map(|s| (s.method.clone(), s.path.clone()))
            .filter(|r| want.contains(r))
            .collect();
        assert_eq!(got, want, "{page}");
    }
    assert_eq!(seen.len(), expected.len());
    // ... with this gateway's token (the recorded one would be refused: 401)
    let token = peer.answer_json("/api/login")["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(token, "1.3552c07b32219062");
    let by_path = |p: &str| seen.iter().find(|s| s.path == p).unwrap();
    for p in ["/api/products/42?view=full", "/api/cart", "/api/checkout"] {
        assert_eq!(
            by_path(p).headers["authorization"],
            format!("Bearer {token}"),
            "{p}"
        );
        // the session cookie the login set, from the flow's jar
        assert_eq!(
            by_path(p).headers["cookie"],
            format!("session={token}"),
            "{p}"
        );
    }
    let cart = peer.answer_json("/api/cart")["id"].clone();
    assert_eq!(
        by_path("/api/checkout").text(),
        format!("{{\"cart\":{cart}}}")
    );
    assert_eq!(
        by_path("/api/login").text(),
        "{\"user\":\"alice\",\"password\":\"wonderland\"}"
    );
}

#[test]
fn assets_are_kept_on_request_and_pages_can_be_one_flow() {
    let har = fixture("gateway.har");
    let (code, config, report) = import(&[
        "har",
        har.to_str().unwrap(),
        "--include-assets",
        "--one-flow",
    ]);
    assert_eq!(code, Some(0), "{report}");
    let c: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(c["flows"].as_array().unwrap().len(), 1);
    let steps = c["flows"][0]["steps"].as_array().unwrap();
    let paths: Vec<&str> = steps.iter().map(|s| s["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "/health",
            "/favicon.ico",
            "/api/login",
            "/assets/app.js",
            "/api/products/42?view=full",
            "/api/cart",
            "/api/checkout",
            "/api/users",
            "/api/users?page=2"
        ]
    );
    // a recorded 404 is expected, so the flow goes on as recorded
    assert_eq!(steps[1]["expect"], serde_json::json!([404]));
    assert!(
        report.contains("was answered 404 in the recording"),
        "{report}"
    );
    // one flow: page 2's cookie was set by page 1's login, nothing to say
    assert!(!report.contains("sent the cookie"), "{report}");
    // the recorded origin stays without --target
    assert_eq!(c["target"], "http://127.0.0.1:33577");
}

#[test]
fn a_postman_collection_imports_and_runs_against_the_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(tmp.path());
    let coll = fixture("gateway.postman_collection.json");
    let env = fixture("gateway.postman_environment.json");
    let (code, config, report) = import(&[
        "postman",
        coll.to_str().unwrap(),
        "--environment",
        env.to_str().unwrap(),
        "--target",
        &peer.proxy.url(),
    ]);
    assert_eq!(code, Some(0), "{report}");
    for said in [
        "variables written into the config as their values: baseUrl, currency, password, user",
        "Shop: \"Log in\": its test script sets token from the response: captured ({\"json\":\"/token\"})",
        "Shop: \"Add to cart\": its pre-request script does not run",
        "https://shop.example.com replaced by",
        "dropped headers (browser noise): user-agent",
    ] {
        assert!(report.contains(said), "{said:?} not in:\n{report}");
    }
    assert!(!report.contains("does not validate"), "{report}");
    let summary = run(&config, tmp.path());
    assert_eq!(summary.totals.requests, 6, "{:?}", summary.totals);
    assert_eq!(summary.totals.errors, 0, "{:?}", summary.totals);

    let seen = peer.proxy.seen();
    let shop: Vec<&Seen> = seen
        .iter()
        .filter(|s| !s.path.starts_with("/api/users") && s.path != "/health")
        .collect();
    let lines: Vec<String> = shop
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s.method,
                s.path.split('/').take(3).collect::<Vec<_>>().join("/")
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "POST /api/login",
            "GET /api/products",
            "POST /api/cart",
            "POST /api/checkout"
        ]
    );
    let browse: Vec<&str> = seen
        .iter()
        .filter(|s| s.path.starts_with("/api/users") || s.path == "/health")
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(browse, ["/api/users?page=2", "/health"]);
    // the environment's value beats the collection's; the login's token
    // came back through the capture; the dynamic variables were rendered
    assert_eq!(
        shop[0].text(),
        "{\"user\": \"alice\", \"password\": \"wonderland\"}"
    );
    let token = peer.answer_json("/api/login")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let product = &shop[1].path;
    let id: u32 = product["/api/products/".len()..product.find('?').unwrap()]
        .parse()
        .unwrap();
    assert!(id <= 1000, "{product}");
    assert!(product.ends_with("?currency=USD"), "{product}");
    for s in &shop[1..] {
        assert_eq!(
            s.headers["authorization"],
            format!("Bearer {token}"),
            "{}",
            s.path
        );
    }
    let cart: Value = serde_json::from_str(&shop[2].text()).unwrap();
    assert!(cart["at"].as_str().unwrap().ends_with('Z'), "{cart}");
    let id = peer.answer_json("/api/cart")["id"].clone();
    assert_eq!(shop[3].text(), format!("{{\"cart\": {id}}}"));
    assert_eq!(shop[3].headers["idempotency-key"].len(), 36);
    assert!(shop[3].headers["x-sent-at"].parse::<u64>().unwrap() > 1_700_000_000);
}

#[test]
fn bad_inputs_name_the_file_and_what_is_wrong_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let not_json = write("a.har", "<html>");
    let not_har = write("b.har", r#"{"entries": []}"#);
    let empty = write("c.har", r#"{"log": {"entries": []}}"#);
    let bad_entry = write(
        "d.har",
        r#"{"log": {"entries": [{"request": {"method": "GET"}}]}}"#,
    );
    let v1 = write("e.json", r#"{"id": "x", "name": "old", "requests": []}"#);
    let huge = tmp.path().join("huge.har");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(256 * 1024 * 1024 + 1)
        .unwrap();
    let huge = huge.to_str().unwrap().to_string();
    let fixture_har = fixture("gateway.har");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["har", &not_json],
            format!("{not_json}: not JSON: expected value"),
        ),
        (
            vec!["har", &not_har],
            format!("{not_har}: not a HAR file: no \"log\" object"),
        ),
        (
            vec!["har", &empty],
            format!("{empty}: log.entries is empty"),
        ),
        (
            vec!["har", &bad_entry],
            format!("{bad_entry}: log.entries[0].request.url: missing"),
        ),
        (
            vec!["har", &huge],
            format!("{huge}: 268435457 bytes, over the 256 MiB an import reads"),
        ),
        (
            vec!["har", "/nonexistent.har"],
            "/nonexistent.har: No such file or directory".into(),
        ),
        (
            vec!["har", fixture_har.to_str().unwrap(), "--target", "ftp://x"],
            "--target ftp://x: not an http:// or https:// URL".into(),
        ),
        (
            vec!["postman", &v1],
            format!("{v1}: a Postman collection v1: export it again as v2.1"),
        ),
        (
            vec!["postman", &not_har],
            format!("{not_har}: not a Postman collection: no \"info\" object"),
        ),
    ];
    for (args, want) in cases {
        let (code, out, err) = import(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(&want), "{args:?}: {want:?} not in {err:?}");
    }
}

#[test]
fn an_http2_entry_loses_its_pseudo_headers_and_joins_repeated_ones() {
    // two recorded `Accept` headers become one, joined as HTTP allows;
    // the method is upper-cased, the flow named after the file
    let tmp = tempfile::tempdir().unwrap();
    let har = tmp.path().join("two.har");
    std::fs::write(
        &har,
        r#"{"log": {"entries": [{"startedDateTime": "2026-12-03T07:45:06.123Z", "time": 1,
            "request": {"method": "get", "url": "https://api.example.com/v1/items?x=1",
                        "headers": [{"name": ":authority", "value": "api.example.com"},
                                    {"name": "Accept", "value": "a/b"},
                                    {"name": "accept", "value": "c/d"}]},
            "response": {"status": 200, "headers": [], "content": {"mimeType": "application/json", "text": "{}"}}}]}}"#,
    )
    .unwrap();
    let (code, out, err) = import(&["har", har.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let c: Value = serde_json::from_str(&out).unwrap();
    let step = &c["flows"][0]["steps"][0];
    assert_eq!(step["headers"], serde_json::json!({"accept": "a/b, c/d"}));
    assert_eq!(step["method"], "GET");
    assert_eq!(c["target"], "https://api.example.com");
    assert_eq!(c["flows"][0]["name"], "two");
    assert!(err.contains("HTTP/2 pseudo-headers"), "{err}");
}

#[test]
fn a_tressi_config_with_postman_variables_migrates_and_validates() {
    // Tressi's examples put Postman's `{{$timestamp}}` in a payload; the
    // engine takes Postman's dynamic variables as aliases (issue #34).
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tressi.json");
    std::fs::write(
        &file,
        r#"{"$schema": "https://raw.githubusercontent.com/kevinchatham/tressi/main/schemas/tressi.schema.v0.0.13.json",
            "options": {"durationSec": 5},
            "requests": [{"url": "http://127.0.0.1:8080/api/orders", "method": "POST", "rps": 5,
                          "payload": {"at": "{{$timestamp}}", "iso": "{{$isoTimestamp}}", "id": "{{$guid}}", "n": "{{$randomInt}}"}}]}"#,
    )
    .unwrap();
    let out = output_within(
        ctl().args(["config", "migrate"]).arg(&file),
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let c: Value = serde_json::from_slice(&out.stdout).unwrap();
    let body = c["endpoints"][0]["body"].as_str().unwrap();
    assert!(
        body.contains("{{$timestamp}}") && body.contains("{{$randomInt}}"),
        "{body}"
    );
    // and an unknown one is still refused, naming the aliases
    std::fs::write(
        &file,
        r#"{"options": {"durationSec": 5}, "requests": [{"url": "http://127.0.0.1:8080/x", "method": "POST", "payload": {"e": "{{$randomEmail}}"}}]}"#,
    )
    .unwrap();
    let out = output_within(
        ctl().args(["config", "migrate"]).arg(&file),
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unknown variable \"$randomEmail\"") && err.contains("$isoTimestamp"),
        "{err}"
    );
}

#[test]
fn odd_values_in_a_har_or_a_collection_never_panic() {
    // Multi-byte text where dates, URLs and templates are cut, a negative
    // time, a status past 999, nested JSON, unknown fields: each imports
    // (exit 0) or is refused (exit 2), never a panic (101).
    let tmp = tempfile::tempdir().unwrap();
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let har = serde_json::json!({"log": {"pages": [{"id": 7}, {"id": "p", "title": "é{},\u{7}"}],
    "entries": [
        {"pageref": "p", "startedDateTime": "2026-12-03T07:45:0é", "time": -5,
         "request": {"method": "pöst", "url": "http://ü.example/é?x=ä{{", "headers": [{"name": "X-É", "value": "{{vars.x}}"}],
                     "postData": {"params": [{"name": "ä b", "value": "&="}]}},
         "response": {"status": 70000, "headers": [{"name": "X-Tok", "value": "ééééééééééééééééé1"}],
                      "content": {"mimeType": "application/json", "text": deep, "encoding": "base64"}}},
        {"pageref": "p", "startedDateTime": "2026-12-03T07:45:06.1234567890+99:99", "time": 1e300,
         "request": {"method": "GET", "url": "http://ü.example/a/ééééééééééééééééé1", "headers": []},
         "response": {"status": 200, "content": {"text": "{\"id\": \"é\", \"k\": [{\"id\": 1}]}"}}},
        {"pageref": "p", "startedDateTime": "2026-12-03T07:45:06.5Z",
         "request": {"method": "GET", "url": "http://ü.example/b/1?id=1", "headers": []},
         "response": {"status": 200}}
    ]}});
    let coll = serde_json::json!({"info": {"name": "é", "schema": "v2.1"},
        "item": [{"name": "{{", "request": {"method": "GET", "url": "{{baseUrl}}/é/{{$randomEmail}}/{{x}}",
                  "auth": {"type": "basic", "basic": {"username": "é", "password": "{{p}}"}},
                  "body": {"mode": "graphql", "graphql": {"query": "{ a }", "variables": "not json"}}},
                  "event": [{"listen": "test", "script": {"exec": "pm.environment.set(\"é\", pm.response.json()[\"a\"][0].b);\npm.environment.set('x', pm.response.json().é"}}]},
                 {"name": "f", "item": [{"name": "r", "request": "http://h/x"}]}]});
    let h = tmp.path().join("odd.har");
    let c = tmp.path().join("odd.json");
    std::fs::write(&h, har.to_string()).unwrap();
    std::fs::write(&c, coll.to_string()).unwrap();
    for args in [
        vec!["har", h.to_str().unwrap()],
        vec!["har", h.to_str().unwrap(), "--include-assets", "--one-flow"],
        vec!["postman", c.to_str().unwrap()],
        vec![
            "postman",
            c.to_str().unwrap(),
            "--target",
            "http://127.0.0.1:1/base/",
        ],
    ] {
        let (code, _, err) = import(&args);
        eprintln!("{args:?}: {code:?}\n{err}");
        assert!(matches!(code, Some(0 | 2)), "{args:?}: {code:?} {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
