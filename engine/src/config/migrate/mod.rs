//! Older config forms, converted to the current one with a warning per
//! change, so configs users already have keep working:
//!
//! - the flat Userflux quick form `{"url", "vus", "duration"}`
//!   (`userflux_quick`);
//! - Tressi's early flat form (`tressi_flat`): `requests[]` (`url`, `method`, `payload`,
//!   `headers`) with top-level `workers`, `duration`, `rampUpTime`, `rps`,
//!   `autoscale: true|false`, `headers`;
//! - Tressi's current form (`tressi_options`): `options` (`durationSec`, `rampUpDurationSec`,
//!   `headers`, `threads`, …) with per-request `rps`, `rampUpDurationSec`,
//!   `earlyExit`.
//!
//! Every field maps to its Userflux meaning; a field with no equivalent is
//! named in a warning, never dropped silently. The result is then parsed and
//! validated like any config. This file recognizes the form and holds
//! what the forms share (a Tressi request as an endpoint, the helpers).

mod tressi_flat;
mod tressi_options;
mod userflux_quick;

use serde_json::{Map, Value, json};

/// Which form a config is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Current,
    Quick,
    TressiFlat,
    TressiOptions,
}

/// Recognizes the form of a parsed config.
pub fn detect(v: &Value) -> Form {
    let Some(o) = v.as_object() else {
        return Form::Current;
    };
    // `flows` and a number of `requests` are only ours (Tressi's requests are a list)
    if o.contains_key("endpoints")
        || o.contains_key("flows")
        || o.get("requests").is_some_and(Value::is_number)
    {
        Form::Current
    } else if o.contains_key("requests") && o.contains_key("options") {
        Form::TressiOptions
    } else if o.contains_key("requests") {
        Form::TressiFlat
    } else if o.contains_key("url") {
        Form::Quick
    } else {
        Form::Current
    }
}

/// Converts `v` to the current form; returns it with one warning per change.
/// A config already in the current form comes back unchanged, with none.
pub fn migrate(v: Value) -> Result<(Value, Vec<String>), String> {
    let form = detect(&v);
    let Value::Object(o) = v else {
        return Ok((v, vec![]));
    };
    let mut m = Migration {
        warnings: Vec::new(),
        version: schema_version(&o),
    };
    let out = match form {
        Form::Current => return Ok((Value::Object(o), vec![])),
        Form::Quick => m.quick(o)?,
        Form::TressiFlat => m.tressi_flat(o)?,
        Form::TressiOptions => m.tressi_options(o)?,
    };
    Ok((out, m.warnings))
}

struct Migration {
    warnings: Vec<String>,
    /// The Tressi version its `$schema` names (`…/tressi.schema.v0.0.13.json`).
    version: Option<(u32, u32, u32)>,
}

/// `v0.0.13` in a `$schema` URL.
fn schema_version(o: &Map<String, Value>) -> Option<(u32, u32, u32)> {
    let url = o.get("$schema")?.as_str()?;
    let i = url.rfind(".v")? + 2;
    let mut parts = url[i..].split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

fn secs(v: &Value, field: &str) -> Result<f64, String> {
    v.as_f64()
        .filter(|s| *s >= 0.0)
        .ok_or_else(|| format!("{field}: expected a number of seconds, got {v}"))
}

fn dur(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{}s", s as u64)
    } else {
        format!("{}ms", (s * 1000.0).round() as u64)
    }
}

fn count(v: &Value, field: &str) -> Result<u64, String> {
    v.as_u64()
        .ok_or_else(|| format!("{field}: expected a whole number, got {v}"))
}

impl Migration {
    fn warn(&mut self, w: impl Into<String>) {
        self.warnings.push(w.into());
    }

    /// Tressi's `$schema` points at Tressi's schema; Userflux has its own.
    fn schema_url(&mut self, o: &Map<String, Value>) {
        if let Some(url) = o.get("$schema") {
            self.warn(format!(
                "$schema: no Userflux equivalent ({url} is Tressi's schema; `userflux-engine schema config` prints Userflux's); ignored"
            ));
        }
    }

    /// Reports every field of `o` not in `known`, with its value.
    fn unmapped(&mut self, o: &Map<String, Value>, known: &[&str], at: &str) {
        for (k, v) in o.iter().filter(|(k, _)| !known.contains(&k.as_str())) {
            let hint = match k.as_str() {
                "workerMemoryLimit" => {
                    " (memory per Tressi worker thread; Userflux's workers need no limit: see README Performance)"
                }
                _ => "",
            };
            self.warn(format!(
                "{at}{k} {v}: no Userflux equivalent{hint}; ignored"
            ));
        }
    }

    /// A Tressi request as an endpoint: name from its path, payload as a
    /// JSON body, global headers under its own.
    fn endpoint(
        &mut self,
        i: usize,
        r: &Value,
        global: &Map<String, Value>,
        taken: &mut Vec<String>,
    ) -> Result<Map<String, Value>, String> {
        let at = format!("requests[{i}]");
        let r = r
            .as_object()
            .ok_or_else(|| format!("{at}: expected an object"))?;
        let url = r
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}.url: expected a URL string"))?;
        let method = r
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase();
        let mut name = endpoint_name(&method, url);
        if taken.contains(&name) {
            name = format!("{name}-{i}");
        }
        taken.push(name.clone());
        // Header names are case-insensitive: the request's own value
        // replaces a global one of the same name in any case, so one field
        // goes on the wire (a global Content-Type and a request's
        // content-type were both sent).
        let mut headers = global.clone();
        if let Some(h) = r.get("headers").and_then(Value::as_object) {
            for (k, v) in h {
                headers.retain(|g, _| !g.eq_ignore_ascii_case(k));
                headers.insert(k.clone(), v.clone());
            }
        }
        let mut ep = Map::new();
        ep.insert("name".into(), json!(name));
        ep.insert("method".into(), json!(method));
        ep.insert("url".into(), json!(url));
        match r.get("payload") {
            None | Some(Value::Null) => {}
            Some(Value::Object(p)) if p.is_empty() => {}
            Some(p) => {
                let body = match p {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                ep.insert("body".into(), json!(body));
                if !headers
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case("content-type"))
                    && !p.is_string()
                {
                    headers.insert("content-type".into(), json!("application/json"));
                }
                self.warn(format!(
                    "{at}.payload: sent as the JSON body of endpoint \"{name}\""
                ));
            }
        }
        // Userflux sets these from the body itself.
        headers.retain(|k, _| !k.eq_ignore_ascii_case("content-length"));
        if !headers.is_empty() {
            ep.insert("headers".into(), Value::Object(headers));
        }
        Ok(ep)
    }
}

/// Tressi's `requests`, which must be a non-empty array.
fn requests_of(o: &Map<String, Value>) -> Result<&Vec<Value>, String> {
    let requests = o
        .get("requests")
        .and_then(Value::as_array)
        .ok_or("requests: expected an array")?;
    if requests.is_empty() {
        return Err("requests: Tressi config has no requests".into());
    }
    Ok(requests)
}

/// A rate reached over `ramp` seconds, then held until `duration`.
fn rate_stages(rate: f64, ramp: f64, duration: f64) -> Value {
    if ramp > 0.0 {
        json!([{"duration": dur(ramp), "target": rate}, {"duration": dur(duration - ramp), "target": rate}])
    } else {
        json!([{"duration": "0s", "target": rate}, {"duration": dur(duration), "target": rate}])
    }
}

/// `POST https://h/api/v1/cart?x` → `post-api-v1-cart`.
fn endpoint_name(method: &str, url: &str) -> String {
    let path = url
        .splitn(4, '/')
        .nth(3)
        .unwrap_or("")
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    let mut name = format!("{}-{path}", method.to_ascii_lowercase());
    name = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_string();
    let mut out = String::new();
    for c in name.chars() {
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.truncate(60);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn converted(v: Value) -> (Config, Vec<String>) {
        let (c, w) = migrate(v).unwrap();
        let config = Config::parse(&c.to_string())
            .and_then(Config::resolve)
            .unwrap_or_else(|e| panic!("{e}\n{c:#}"));
        (config, w)
    }

    #[test]
    fn the_current_form_is_untouched() {
        let v = json!({"stages": [{"duration": "1s", "target": 1}], "endpoints": [{"name": "a", "url": "http://127.0.0.1:1/"}]});
        assert_eq!(migrate(v.clone()).unwrap(), (v, vec![]));
    }

    #[test]
    fn quick_form() {
        let (c, w) = converted(
            json!({"url": "http://127.0.0.1:8080/api/users", "vus": 16, "duration": "30s"}),
        );
        assert_eq!(
            c.endpoints[0].url.as_deref(),
            Some("http://127.0.0.1:8080/api/users")
        );
        assert_eq!((c.stages[1].target, c.duration().as_secs()), (16, 30));
        assert!(w[0].contains("quick form"), "{w:?}");
    }

    /// Tressi's early flat form, as in its examples/autoscaling-test.json (on loopback).
    #[test]
    fn tressi_flat_with_autoscale() {
        let (c, w) = converted(json!({
            "$schema": "https://raw.githubusercontent.com/kevinchatham/tressi/main/schemas/tressi.schema.v0.0.13.json",
            "name": "Autoscaling Load Test", "description": "d",
            "autoscale": true, "workers": 50, "duration": 60, "rps": 1000, "rampUpTime": 15,
            "headers": {"Content-Type": "application/json", "Authorization": "Bearer t"},
            "requests": [
                {"url": "http://127.0.0.1:8080/api/v1/products", "method": "GET", "headers": {"Accept": "application/json"}},
                {"url": "http://127.0.0.1:8080/api/v1/products/search", "method": "POST", "payload": {"query": "electronics", "limit": 20}},
                {"url": "http://127.0.0.1:8080/api/v1/cart", "method": "POST", "payload": {"productId": "12345"}}
            ]
        }));
        assert_eq!(c.name, "Autoscaling Load Test");
        assert_eq!(c.max_workers, Some(50));
        assert_eq!(c.duration().as_secs(), 60);
        let names: Vec<&str> = c.endpoints.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "get-api-v1-products",
                "post-api-v1-products-search",
                "post-api-v1-cart"
            ]
        );
        for e in &c.endpoints {
            let a = e.autoscale().unwrap();
            assert!((a.target_rps - 1000.0 / 3.0).abs() < 1e-9);
            assert_eq!(a.max_workers, 50);
            assert_eq!(e.headers["Authorization"], "Bearer t");
        }
        assert_eq!(c.endpoints[0].headers["Accept"], "application/json");
        // a request's header replaces a global one whatever the case: one field on the wire
        let (merged, _) = migrate(json!({
            "headers": {"Content-Type": "text/plain", "X-A": "1"},
            "requests": [{"url": "http://127.0.0.1:8080/a", "method": "POST",
                          "headers": {"content-type": "application/json"}, "payload": {"x": 1}}],
            "workers": 1, "duration": 1
        }))
        .unwrap();
        let one = Config::from_value(merged).unwrap().resolve().unwrap();
        let h = &one.endpoints[0].headers;
        let types: Vec<&String> = h
            .keys()
            .filter(|k| k.eq_ignore_ascii_case("content-type"))
            .collect();
        assert_eq!(types, ["content-type"], "{h:?}");
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["X-A"], "1");
        assert_eq!(
            c.endpoints[1].body.as_deref(),
            Some(r#"{"limit":20,"query":"electronics"}"#)
        );
        let all = w.join("\n");
        for want in [
            "autoscale true: each endpoint autoscales to target_rps 333.3333333333333 (rps 1000 split evenly), under a global max_workers of 50",
            "rampUpTime 15: no equivalent",
            "description: no Userflux equivalent",
            "$schema: no Userflux equivalent",
            "requests[1].payload: sent as the JSON body",
        ] {
            assert!(all.contains(want), "missing {want:?} in\n{all}");
        }
    }

    #[test]
    fn tressi_flat_rps_without_autoscale_is_open_model() {
        let (c, w) = converted(json!({
            "autoscale": false, "workers": 10, "duration": 30, "rps": 200, "rampUpTime": 5,
            "requests": [{"url": "http://127.0.0.1:1/a"}, {"url": "http://127.0.0.1:1/b"}]
        }));
        let e = &c.endpoints[0];
        assert!(e.is_open());
        assert_eq!(
            (
                e.rate_stages[0].target,
                e.rate_stages[0].duration.0.as_secs()
            ),
            (100.0, 5)
        );
        assert_eq!(e.rate_stages[1].duration.0.as_secs(), 25);
        assert_eq!((e.pre_allocated_vus, e.max_vus), (Some(5), Some(5)));
        assert!(
            w.iter().any(|w| w.contains("open-model at rate 100")),
            "{w:?}"
        );
    }

    #[test]
    fn tressi_flat_workers_only_is_closed_model() {
        let (c, _) = converted(
            json!({"workers": 8, "duration": 20, "rampUpTime": 4, "requests": [{"url": "http://127.0.0.1:1/"}]}),
        );
        assert_eq!(
            (c.stages[0].target, c.stages[0].duration.0.as_secs()),
            (8, 4)
        );
        assert_eq!(c.duration().as_secs(), 20);
        assert!(!c.endpoints[0].is_open());
    }

    /// Tressi's current form, as its tressi.config.json and schema v0.0.20 describe it.
    #[test]
    fn tressi_options_form() {
        let (c, w) = converted(json!({
            "$schema": "./tressi.schema.json",
            "options": {"durationSec": 100, "rampUpDurationSec": 10, "headers": {"User-Agent": "Tressi"}, "threads": 2,
                        "workerMemoryLimit": 128, "workerEarlyExit": {"enabled": false, "errorRateThreshold": 0, "exitStatusCodes": [], "monitoringWindowMs": 1000}},
            "requests": [
                {"url": "http://127.0.0.1:1/get", "method": "GET", "rps": 50},
                {"url": "http://127.0.0.1:1/post", "method": "POST", "rps": 5, "rampUpDurationSec": 20, "payload": {"name": "x"},
                 "earlyExit": {"enabled": true, "errorRateThreshold": 0.1, "exitStatusCodes": [500], "monitoringWindowMs": 1000}}
            ]
        }));
        assert_eq!((c.threads, c.duration().as_secs()), (Some(2), 100));
        let get = &c.endpoints[0];
        assert_eq!(
            (
                get.rate_stages[0].target,
                get.rate_stages[0].duration.0.as_secs()
            ),
            (50.0, 10)
        );
        let post = &c.endpoints[1];
        assert_eq!(
            post.rate_stages[0].duration.0.as_secs(),
            20,
            "the request's own ramp wins"
        );
        assert_eq!(post.headers["User-Agent"], "Tressi");
        // earlyExit became thresholds that stop the run
        let keys: Vec<&String> = c.thresholds.keys().collect();
        assert_eq!(
            keys,
            [
                &format!("http_req_failed{{endpoint:{}}}", post.name),
                &format!("http_reqs{{endpoint:{},status:500}}", post.name)
            ]
        );
        let parsed = c.parsed_thresholds().unwrap();
        assert!(parsed.iter().all(|t| t.abort_on_fail));
        assert_eq!(parsed[0].expression, "rate<0.1");
        let all = w.join("\n");
        for want in [
            "options.workerMemoryLimit 128: no Userflux equivalent",
            "options.workerEarlyExit: disabled (enabled false); nothing to convert",
            "requests[1].earlyExit: thresholds that stop the run (abortOnFail): http_req_failed{endpoint:",
            "requests[1].earlyExit.monitoringWindowMs 1000: no equivalent",
            "requests[0].rps 50: open-model rate 50 req/s",
            "options.threads 2",
        ] {
            assert!(all.contains(want), "missing {want:?} in\n{all}");
        }
    }

    #[test]
    fn a_global_early_exit_in_percent_becomes_a_run_threshold() {
        let (c, w) = converted(json!({
            "options": {"durationSec": 5, "workerEarlyExit": {"enabled": true, "errorRateThreshold": 5, "exitStatusCodes": [503]}},
            "requests": [{"url": "http://127.0.0.1:1/get", "rps": 5}]
        }));
        let parsed = c.parsed_thresholds().unwrap();
        let got: Vec<(&str, &str, bool)> = parsed
            .iter()
            .map(|t| (t.key.as_str(), t.expression.as_str(), t.abort_on_fail))
            .collect();
        assert_eq!(
            got,
            [
                ("http_req_failed", "rate<0.05", true),
                ("http_reqs{status:503}", "count==0", true)
            ]
        );
        assert!(
            w.join("\n")
                .contains("options.workerEarlyExit: thresholds that stop the run")
        );
    }

    #[test]
    fn broken_old_forms_say_what_is_wrong() {
        assert!(
            migrate(json!({"requests": []}))
                .unwrap_err()
                .contains("no requests")
        );
        assert!(
            migrate(json!({"requests": [{"method": "GET"}]}))
                .unwrap_err()
                .contains("requests[0].url")
        );
        assert!(
            migrate(json!({"url": "http://x", "vus": "many"}))
                .unwrap_err()
                .contains("vus: expected a whole number")
        );
        assert!(
            migrate(
                json!({"options": {"durationSec": "long"}, "requests": [{"url": "http://x/"}]})
            )
            .unwrap_err()
            .contains("options.durationSec")
        );
    }
}
