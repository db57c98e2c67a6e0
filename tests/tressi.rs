//! Tressi configs of every shape and version (tests/tressi/: the flat form
//! of Tressi's examples, the flat schema of 0.0.5–0.0.12, the options form
//! of 0.0.13–0.0.20) through `migrate`: every field of the input is either
//! mapped (checked against the converted config) or named in a warning
//! with its path, and the result validates. And a merged config's headers
//! on the wire.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use userflux_engine::config::Config;
use userflux_engine::migrate::migrate;

/// Every field path of a Tressi config, without descending into the
/// free-form maps (`headers`, `payload`).
fn fields(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                out.push(path.clone());
                if k != "headers" && k != "payload" {
                    fields(v, &path, out);
                }
            }
        }
        Value::Array(a) if at.ends_with("requests") => {
            for (i, v) in a.iter().enumerate() {
                fields(v, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn header<'a>(c: &'a Config, ep: usize, name: &str) -> Option<&'a str> {
    c.endpoints[ep]
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether `path` of `input` is carried into `c` as it is (checked, not assumed).
fn mapped(input: &Value, path: &str, c: &Config) -> bool {
    let req = |p: &str| -> Option<(usize, String)> {
        let rest = p.strip_prefix("requests[")?;
        let (i, field) = rest.split_once("].")?;
        Some((i.parse().ok()?, field.to_string()))
    };
    match path {
        "requests" | "options" => true,
        "name" => input["name"] == Value::String(c.name.clone()),
        "headers" | "options.headers" => {
            let global = if path == "headers" {
                &input["headers"]
            } else {
                &input["options"]["headers"]
            };
            global.as_object().unwrap().iter().all(|(k, v)| {
                (0..c.endpoints.len()).all(|i| {
                    let own = input["requests"][i]["headers"]
                        .as_object()
                        .is_some_and(|h| h.keys().any(|o| o.eq_ignore_ascii_case(k)));
                    own || header(c, i, k) == v.as_str()
                })
            })
        }
        _ => match req(path) {
            Some((i, f)) if f == "url" => {
                c.endpoints[i].url.as_deref() == input["requests"][i]["url"].as_str()
            }
            Some((i, f)) if f == "method" => {
                c.endpoints[i].http_method().as_str()
                    == input["requests"][i]["method"].as_str().unwrap()
            }
            Some((i, f)) if f == "headers" => input["requests"][i]["headers"]
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| header(c, i, k) == v.as_str()),
            None if path.starts_with("requests[") && !path.contains('.') => true,
            _ => false,
        },
    }
}

#[test]
fn every_field_of_every_tressi_shape_is_mapped_or_named() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tressi");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let input: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let (converted, warnings) =
            migrate(input.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
        let config = Config::from_value(converted.clone())
            .and_then(Config::resolve)
            .unwrap_or_else(|e| {
                panic!("{file}: the converted config is invalid: {e}\n{converted:#}")
            });
        let mut paths = Vec::new();
        fields(&input, "", &mut paths);
        let text = warnings.join("\n");
        for p in &paths {
            let named = warnings
                .iter()
                .any(|w| w.starts_with(&format!("{p} ")) || w.starts_with(&format!("{p}:")));
            assert!(
                named || mapped(&input, p, &config),
                "{file}: {p} is neither mapped nor named in a warning:\n{text}"
            );
        }
        seen += 1;
    }
    assert!(seen >= 7, "{seen} fixtures");
}

#[test]
fn per_request_load_survives_any_shape_and_ramps_say_when_they_change() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tressi");
    let read = |f: &str| -> (Config, Vec<String>) {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
        let (c, w) = migrate(v).unwrap();
        (Config::from_value(c).and_then(Config::resolve).unwrap(), w)
    };
    // flat, with per-request rps, a ramp and an early exit: 100 req/s
    // ramped over the run (shortened, and said so), not 10 closed VUs
    let (c, w) = read("v0.0.12-flat-per-request.json");
    let products = &c.endpoints[0];
    assert!(products.is_open() && c.stages.is_empty(), "{c:?}");
    assert_eq!(products.rate_stages.last().unwrap().target, 100.0);
    assert!(
        w.iter()
            .any(|w| w.contains("requests[0].rampUpDurationSec 30") && w.contains("shortened")),
        "{w:?}"
    );
    assert_eq!(c.endpoints[1].rate_stages.last().unwrap().target, 20.0);
    let t = &c.thresholds;
    let failed = t
        .keys()
        .find(|k| k.starts_with("http_req_failed{"))
        .expect("an error-rate threshold");
    assert!(
        serde_json::to_string(&t[failed])
            .unwrap()
            .contains("rate<0.05"),
        "{t:?}"
    );
    assert!(t.keys().any(|k| k.contains("status:503")), "{t:?}");
    // options: a request's own ramp overrides the global one, said so
    let (_, w) = read("v0.0.13-options.json");
    assert!(
        w.iter().any(|w| w
            .contains("requests[0].rampUpDurationSec 2: overrides options.rampUpDurationSec 5")),
        "{w:?}"
    );
    // 0.0.13's fraction and 0.0.20's percent give the same kind of rate
    let (c13, _) = read("v0.0.13-options.json");
    let (c20, _) = read("v0.0.20-options.json");
    let rate = |c: &Config, key: &str| serde_json::to_string(&c.thresholds[key]).unwrap();
    assert!(rate(&c13, "http_req_failed").contains("rate<0.1"));
    assert!(rate(&c20, "http_req_failed").contains("rate<0.05"));
    let users = c20.endpoints[0].name.clone();
    assert!(rate(&c20, &format!("http_req_failed{{endpoint:{users}}}")).contains("rate<0.01"));
}

#[test]
fn a_merged_tressi_config_sends_one_content_type() {
    // a global Content-Type and a request's content-type: the request's,
    // once, on the wire
    // (the open model pre-opens connections: the request comes on any one)
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, heads) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                    head.push(b[0]);
                }
                if !head.is_empty() {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                    let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                }
            });
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{{"options": {{"durationSec": 1, "headers": {{"Content-Type": "application/json", "X-Team": "perf"}}}},
            "requests": [{{"url": "http://127.0.0.1:{port}/orders", "method": "POST", "payload": {{"a": 1}},
                          "headers": {{"content-type": "application/vnd.order+json"}}, "rps": 1}}]}}"#
    );
    let runs = tmp.path().join("runs");
    let out = userflux::run_with_config(&config, &tmp.path().join("tressi.json"), &runs, &[]);
    let head = heads
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a request reached the server");
    let types: Vec<&str> = head
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("content-type:"))
        .collect();
    assert_eq!(
        types,
        ["content-type: application/vnd.order+json"],
        "{head}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(head.contains("X-Team: perf\r\n"), "{head}");
}
