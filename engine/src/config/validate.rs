//! Validation: every field of a config checked, each problem with its field
//! path (`endpoints[1].method: unknown method "GTE"`), all of them at
//! once. The bounds are [`super::limits`]; templates, checks, captures and
//! thresholds are checked as they are compiled ([`super::compile`]), and
//! their problems placed here in the order a user has always seen.

use super::traffic::{self, Part};
use super::{Config, DEFAULT_PRE_ALLOCATED_VUS, MAX_THREADS, MAX_VUS, Problem, compile, limits};
use crate::template::Template;
use crate::url::HttpUrl;
use std::collections::BTreeSet;

impl Config {
    /// Every problem of the config, and what it compiles to (see
    /// [`compile`]: its problems are placed where they always were).
    pub(super) fn problems(&self) -> (Vec<Problem>, compile::Compiled) {
        let (compiled, mut walked) = compile::compile(self);
        let parts = self.parts();
        let mut out: Vec<Problem> = limits::problems(self, &parts)
            .into_iter()
            .map(Problem::from_line)
            .collect();
        let mut bad = |at: String, why: String| out.push(Problem { at, why });
        if self.name.trim().is_empty() {
            bad("name".into(), "must not be empty".into());
        }
        if let Some(s) = &self.search {
            let mut found = Vec::new();
            s.problems(&mut found);
            for p in found {
                let p = Problem::from_line(p);
                let at = if p.at.is_empty() {
                    "search".into()
                } else {
                    p.at
                };
                bad(at, p.why);
            }
            if self.thresholds.is_empty() {
                bad(
                    "search".into(),
                    "a search needs an SLO: thresholds, e.g. {\"http_req_duration\": [\"p(99)<50\"]}"
                        .into(),
                );
            }
            if self.shard.is_some() {
                bad(
                    "search".into(),
                    "a search runs on one engine: not with shard".into(),
                );
            }
            if self.requests.is_some() {
                bad(
                    "requests".into(),
                    "not with search: a search's trials have their own length (search.trial)"
                        .into(),
                );
            }
        }
        if let Some(t) = &self.target
            && let Err(e) = HttpUrl::parse(t)
        {
            bad("target".into(), e);
        }
        if let Some(n) = self.threads
            && !(1..=MAX_THREADS).contains(&n)
        {
            bad(
                "threads".into(),
                format!("must be between 1 and {MAX_THREADS}, got {n}"),
            );
        }
        let units = self.units();
        let closed: Vec<&str> = units
            .iter()
            .filter(|e| !e.is_open())
            .map(|e| e.name.as_str())
            .collect();
        if self.stages.is_empty() && !closed.is_empty() {
            bad(
                "stages".into(),
                format!(
                    "needed by the closed-model endpoint(s) {} (give stages, or a rate to make them open-model)",
                    closed.join(", ")
                ),
            );
        }
        for (i, s) in self.stages.iter().enumerate() {
            if s.target > MAX_VUS {
                bad(
                    format!("stages[{i}].target"),
                    format!("at most {MAX_VUS} VUs, got {}", s.target),
                );
            }
        }
        let sends = self.stages.iter().any(|s| s.target > 0)
            || units
                .iter()
                .any(|e| e.is_open() || e.autoscale_on(self.autoscale.is_some()));
        if !self.stages.is_empty() && !sends {
            bad(
                "stages".into(),
                "every stage's target is 0 VUs and no endpoint has a rate or autoscale: the run would send nothing".into(),
            );
        }
        if self.requests == Some(0) {
            bad("requests".into(), "must be at least 1".into());
        }
        out.append(&mut walked.thresholds);
        let mut bad = |at: String, why: String| out.push(Problem { at, why });
        if !units.is_empty() && self.duration().is_zero() && self.stages.is_empty() {
            bad(
                "duration".into(),
                "the run has no length: give stages, rate_stages or a duration such as \"30s\""
                    .into(),
            );
        } else if !self.stages.is_empty() && self.duration().is_zero() {
            bad(
                "stages".into(),
                "the stages add up to no time; give a stage a duration such as \"30s\"".into(),
            );
        }
        if units.is_empty() {
            bad(
                "endpoints".into(),
                "at least one endpoint (or flow) is needed".into(),
            );
        }
        if !(1..=traffic::MAX_CAPTURE_BODY).contains(&self.max_capture_body) {
            out.push(Problem::new(
                "max_capture_body",
                format!(
                    "must be 1 to {} bytes, got {}",
                    traffic::MAX_CAPTURE_BODY,
                    self.max_capture_body
                ),
            ));
        }
        out.append(&mut walked.traffic);
        if let Some(t) = &self.tls {
            out.extend(
                t.problems(self.base_dir.as_deref())
                    .into_iter()
                    .map(Problem::from_line),
            );
        }
        if let Some(s) = &self.shard
            && let Err(e) = crate::shard::Shard::parse(s)
        {
            out.push(Problem::new("shard", e));
        }
        let mut bad = |at: String, why: String| out.push(Problem { at, why });
        let mut names = BTreeSet::new();
        let mut bad_checks = walked.checks.iter();
        for part in &parts {
            let ep = &part.ep;
            let at = |f: &str| format!("{}.{f}", part.at);
            if part.request && !valid_name(&ep.name) {
                bad(
                    at("name"),
                    format!(
                        "\"{}\" must be 1-{MAX_ENDPOINT_NAME} printable characters, without control characters or surrounding spaces",
                        ep.name
                    ),
                );
            } else if part.request && part.unit && !names.insert(ep.name.clone()) {
                bad(
                    at("name"),
                    format!("\"{}\" is used by an earlier endpoint", ep.name),
                );
            }
            if part.request {
                let bad_checks = bad_checks.next().map_or(&[][..], Vec::as_slice);
                self.request_problems(part, bad_checks, &mut bad);
            }
            if !part.unit {
                continue;
            }
            if !(ep.weight.is_finite() && ep.weight > 0.0) {
                bad(
                    at("weight"),
                    format!("must be a number above 0, got {}", ep.weight),
                );
            }
            if let Some(r) = ep.rate
                && !(r.is_finite() && r > 0.0)
            {
                bad(
                    at("rate"),
                    format!("must be above 0 requests per second, got {r}"),
                );
            }
            if ep.rate.is_some() && !ep.rate_stages.is_empty() {
                bad(
                    at("rate_stages"),
                    "give either rate or rate_stages, not both".into(),
                );
            }
            for (j, s) in ep.rate_stages.iter().enumerate() {
                if !(s.target.is_finite() && s.target >= 0.0) {
                    bad(
                        at(&format!("rate_stages[{j}].target")),
                        format!("must be 0 or more req/s, got {}", s.target),
                    );
                }
            }
            if !ep.rate_stages.is_empty() && ep.rate_stages.iter().all(|s| s.target <= 0.0) {
                bad(
                    at("rate_stages"),
                    "every stage's target is 0: nothing would be sent".into(),
                );
            }
            let autoscaled = ep.autoscale_on(self.autoscale.is_some());
            if ep.is_open() && autoscaled && ep.max_vus.is_some() {
                bad(
                    at("max_vus"),
                    "with autoscale on, the autoscaler sets the connections (within its min_workers and max_workers); remove max_vus".into(),
                );
            }
            if ep.is_open() {
                if !ep.think_time.is_zero() {
                    bad(
                        at("think_time"),
                        "has no meaning in the open model (sends follow the rate)".into(),
                    );
                }
                if ep.pre_allocated_vus == Some(0) {
                    bad(at("pre_allocated_vus"), "must be at least 1".into());
                }
                let pre = ep.pre_allocated_vus.unwrap_or(DEFAULT_PRE_ALLOCATED_VUS);
                if let Some(max) = ep.max_vus
                    && max < pre
                {
                    bad(
                        at("max_vus"),
                        format!("{max} is below pre_allocated_vus {pre}"),
                    );
                }
            } else {
                for (f, set) in [
                    ("pre_allocated_vus", ep.pre_allocated_vus.is_some()),
                    ("max_vus", ep.max_vus.is_some()),
                ] {
                    if set {
                        bad(at(f), "only applies to the open model: give the endpoint a rate or rate_stages".into());
                    }
                }
            }
        }
        let units: Vec<(String, super::Endpoint)> = parts
            .iter()
            .filter(|p| p.unit)
            .map(|p| (p.at.clone(), p.ep.clone()))
            .collect();
        out.extend(super::protocol::problems(self, &units));
        let mut bad = |at: String, why: String| out.push(Problem { at, why });
        let shares = self.priority_shares;
        for (f, v) in [
            ("high", shares.high),
            ("medium", shares.medium),
            ("low", shares.low),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bad(
                    format!("priority_shares.{f}"),
                    format!("must be a percentage of at least 0, got {v}"),
                );
            }
        }
        let sum = shares.high + shares.medium + shares.low;
        if (sum - 100.0).abs() > 1e-6 {
            bad(
                "priority_shares".into(),
                format!("the shares must add up to 100 (percent), got {sum}"),
            );
        }
        if let Some(s) = self.samples
            && !(0.0..=1.0).contains(&s.rate)
        {
            bad(
                "samples.rate".into(),
                format!("must be between 0 and 1, got {}", s.rate),
            );
        }
        (out, compiled)
    }
}

impl Config {
    /// The request fields of an endpoint or a flow step.
    /// `bad_checks` are its checks that do not compile (from [`compile`]).
    fn request_problems(
        &self,
        part: &Part,
        bad_checks: &[(String, String)],
        bad: &mut impl FnMut(String, String),
    ) {
        let ep = &part.ep;
        let at = |f: &str| format!("{}.{f}", part.at);
        match (&ep.path, &ep.url) {
            // a grpc call's path is its method's (`grpc::conflicts`)
            (None, None) if ep.grpc.is_some() => {
                if self.target.is_none() {
                    bad(
                        at("grpc"),
                        "a grpc call needs a top-level target (http://HOST:PORT) or a url".into(),
                    );
                }
            }
            (Some(_), Some(_)) => bad(at("path"), "give either path or url, not both".into()),
            (None, None) => bad(
                at("path"),
                "missing: give a path (relative to target) or a url".into(),
            ),
            (Some(p), None) => {
                if self.target.is_none() {
                    bad(
                        at("path"),
                        "a path needs a top-level target; or give a full url".into(),
                    );
                }
                if !p.is_empty() && !p.starts_with('/') {
                    bad(at("path"), format!("\"{p}\" must start with '/'"));
                }
                // a template's own spaces (`{{ seq }}`) are checked with it
                if !Template::is_templated(p) && p.bytes().any(|b| b <= b' ' || b == 0x7f) {
                    bad(at("path"), "contains spaces or control characters".into());
                }
            }
            (None, Some(u)) => {
                if let Err(e) = HttpUrl::parse(u) {
                    bad(at("url"), e);
                }
            }
        }
        let mut seen_headers: Vec<&str> = Vec::new();
        for k in ep.headers.keys() {
            if let Some(first) = seen_headers.iter().find(|s| s.eq_ignore_ascii_case(k)) {
                bad(
                    at("headers"),
                    format!("\"{first}\" and \"{k}\" are one header (names ignore case); keep one"),
                );
            }
            seen_headers.push(k);
        }
        for (k, v) in &ep.headers {
            if let Some(why) = header_problem(k, v) {
                bad(at(&format!("headers.{k}")), why.into());
            }
        }
        if ep.checks.len() > limits::MAX_CHECKS {
            bad(
                at("checks"),
                format!(
                    "at most {} checks, got {}",
                    limits::MAX_CHECKS,
                    ep.checks.len()
                ),
            );
        }
        for name in ep.checks.keys() {
            if !valid_name(name) {
                bad(
                    at(&format!("checks.{name}")),
                    format!(
                        "a check's name is 1-{MAX_ENDPOINT_NAME} printable characters, without control characters or surrounding spaces"
                    ),
                );
            }
            if let Some((_, e)) = bad_checks.iter().find(|(n, _)| n == name) {
                bad(at(&format!("checks.{name}")), e.clone());
            }
        }
        for (j, code) in ep.expect.iter().flatten().enumerate() {
            if !(100..=599).contains(code) {
                bad(
                    at(&format!("expect[{j}]")),
                    format!("{code} is not an HTTP status (100-599)"),
                );
            }
        }
    }
}

/// Most characters in an endpoint name.
pub const MAX_ENDPOINT_NAME: usize = 128;

/// An endpoint name: any printable text (k6 users name requests like
/// `POST /api/orders`), up to [`MAX_ENDPOINT_NAME`] characters, without
/// control characters or surrounding spaces. Files and charts derived
/// from a name use a slug of it; JSON keeps it as written.
pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.trim() == s
        && s.chars().count() <= MAX_ENDPOINT_NAME
        && !s.chars().any(char::is_control)
}

/// What is wrong with a request header a user gives (in a config or with
/// `-H`), if anything.
pub fn header_problem(name: &str, value: &str) -> Option<&'static str> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        Some("is not a valid header name")
    } else if ["content-length", "transfer-encoding"].contains(&name.to_ascii_lowercase().as_str())
    {
        Some("is set by the engine from the body")
    } else if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        Some("value contains CR, LF or NUL")
    } else {
        None
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::super::ISSUE_EXAMPLE;
    use super::super::*;
    use crate::duration::Dur;

    #[test]
    fn accepts_the_documented_example_as_written() {
        let c = Config::from_json(ISSUE_EXAMPLE).unwrap();
        assert_eq!(c.threads, Some(2));
        assert_eq!(c.duration().as_secs(), 25);
        assert_eq!(c.endpoints[1].method, Method::Post);
        assert_eq!(c.timeouts.request, Dur::from_secs(5));
        let urls = c.endpoint_urls().unwrap();
        assert_eq!(urls[1].path, "/api/orders");
        assert_eq!(urls[1].port, 8080);
    }

    #[test]
    fn resolved_config_round_trips() {
        let c = Config::from_json(ISSUE_EXAMPLE).unwrap();
        let again = Config::from_json(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(c, again);
    }

    /// Each bad config and the `path: reason` its error must contain.
    #[test]
    fn errors_name_the_field_path() {
        let base: serde_json::Value = serde_json::from_str(ISSUE_EXAMPLE).unwrap();
        let cases: &[(&str, serde_json::Value, &str)] = &[
            (
                "/endpoints/1/method",
                "GTE".into(),
                "endpoints[1].method: unknown method \"GTE\"",
            ),
            (
                "/endpoints/0/weight",
                0.into(),
                "endpoints[0].weight: must be a number above 0",
            ),
            (
                "/endpoints/0/weight",
                "x".into(),
                "endpoints[0].weight: invalid type",
            ),
            (
                "/stages/1/duration",
                "20".into(),
                "stages[1].duration: invalid duration \"20\"",
            ),
            ("/stages/0/target", (-1).into(), "stages[0].target"),
            (
                "/timeouts/connect",
                "0s".into(),
                "timeouts.connect: must be at least 1ms",
            ),
            ("/threads", 0.into(), "threads: must be between 1"),
            (
                "/target",
                "ftp://127.0.0.1".into(),
                "target: \"ftp://127.0.0.1\": expected a URL starting with http:// or https://",
            ),
            (
                "/endpoints/1/name",
                "users".into(),
                "endpoints[1].name: \"users\" is used by an earlier endpoint",
            ),
            (
                "/endpoints/0/name",
                " a b".into(),
                "endpoints[0].name: \" a b\" must be 1-128 printable characters",
            ),
            (
                "/endpoints/0/name",
                "tab\tname".into(),
                "endpoints[0].name: \"tab\tname\" must be",
            ),
            (
                "/endpoints/0/path",
                "api".into(),
                "endpoints[0].path: \"api\" must start with '/'",
            ),
            (
                "/endpoints/0/expect",
                serde_json::json!([200, 700]),
                "endpoints[0].expect[1]: 700 is not",
            ),
            (
                "/samples",
                serde_json::json!({"rate": 1.5}),
                "samples.rate: must be between 0 and 1",
            ),
            (
                "/endpoints/0/rate",
                0.into(),
                "endpoints[0].rate: must be above 0 requests per second",
            ),
            (
                "/endpoints/0/rate",
                (-5).into(),
                "endpoints[0].rate: must be above 0",
            ),
            (
                "/endpoints/0/max_vus",
                3.into(),
                "endpoints[0].max_vus: only applies to the open model",
            ),
            (
                "/endpoints/0",
                serde_json::json!({"name": "users", "path": "/u", "rate": 5, "max_vus": 3, "autoscale": {"target_rps": 5}}),
                "endpoints[0].max_vus: with autoscale on, the autoscaler sets the connections",
            ),
            (
                "/endpoints/0/rate_stages",
                serde_json::json!([{"duration": "5s", "target": 0}]),
                "endpoints[0].rate_stages: every stage's target is 0",
            ),
            (
                "/thresholds",
                serde_json::json!({"http_req_duration": ["p95<200"]}),
                "thresholds.http_req_duration[0]: \"p95<200\": unknown aggregation",
            ),
            (
                "/thresholds",
                serde_json::json!({"http_req_latency": ["p(95)<200"]}),
                "thresholds.http_req_latency[0]: unknown metric",
            ),
            (
                "/thresholds",
                serde_json::json!({"my_metric": []}),
                "thresholds.my_metric: unknown metric \"my_metric\": Userflux has no custom metrics",
            ),
            (
                "/thresholds",
                serde_json::json!({"checks": ["rate>0.99"]}),
                "thresholds.checks: this config has no checks, so a checks threshold would judge nothing",
            ),
            (
                "/thresholds",
                serde_json::json!({"checks{endpoint:users}": []}),
                "thresholds.checks{endpoint:users}: this config has no checks",
            ),
            (
                "/thresholds",
                serde_json::json!({"http_reqs{grpc_status:OK}": ["count>0"]}),
                "thresholds.http_reqs{grpc_status:OK}: this config has no gRPC endpoint",
            ),
            (
                "/thresholds",
                serde_json::json!({"http_reqs{method:PATCH}": ["count>0"]}),
                "thresholds.http_reqs{method:PATCH}[0]: no endpoint sends method \"PATCH\" (they send: GET, POST)",
            ),
            (
                "/endpoints/0/checks",
                serde_json::json!({"ok": {"grpc_status": "OK"}}),
                "endpoints[0].checks.ok: grpc_status: this unit makes no gRPC call",
            ),
            (
                "/thresholds",
                serde_json::json!({"http_req_failed": [{"threshold": "rate<0.1", "abort": true}]}),
                "thresholds.http_req_failed[0]",
            ),
            (
                "/samples",
                serde_json::json!({"path": "x"}),
                "samples.path: unknown field `path`",
            ),
            (
                "/endpoints/0/headers",
                serde_json::json!({"Content-Length": "3"}),
                "endpoints[0].headers.Content-Length: is set by the engine",
            ),
            (
                "/endpoints/0/headers",
                serde_json::json!({"x": "a\r\nb"}),
                "endpoints[0].headers.x: value contains CR",
            ),
            (
                "/endpoints/0/url",
                "http://127.0.0.1/".into(),
                "endpoints[0].path: give either path or url",
            ),
            (
                "/stages",
                serde_json::json!([{"duration": "0s", "target": 3}]),
                "stages: the stages add up to no time",
            ),
            (
                "/endpoints",
                serde_json::json!([]),
                "endpoints: at least one endpoint",
            ),
            // bounds (issue #21): each of these validated and then broke the run
            (
                "/stages/0/duration",
                "18446744073709551615s".into(),
                "stages[0].duration: must be at most 30days",
            ),
            (
                "/stages",
                serde_json::json!([{"duration": "18446744073709551615s", "target": 1},
                                   {"duration": "18446744073709551615s", "target": 1}]),
                "the run's length (stages, duration, rate_stages): must be at most 30days",
            ),
            (
                "/duration",
                "18446744073709551615s".into(),
                "duration: must be at most 30days",
            ),
            (
                "/graceful_stop",
                "18446744073709551615s".into(),
                "graceful_stop: must be at most 1h",
            ),
            (
                "/graceful_ramp_down",
                "2h".into(),
                "graceful_ramp_down: must be at most 1h",
            ),
            (
                "/timeouts/request",
                "2h".into(),
                "timeouts.request: must be at most 1h",
            ),
            (
                "/endpoints/0/think_time",
                "18446744073709551615s".into(),
                "endpoints[0].think_time: must be at most 1h",
            ),
            (
                "/endpoints/0/rate",
                1e12.into(),
                "endpoints[0].rate: at most 10000000 requests per second",
            ),
            (
                "/endpoints/0/rate_stages",
                serde_json::json!([{"duration": "40days", "target": 1e9}]),
                "endpoints[0].rate_stages[0].target: at most 10000000",
            ),
            (
                "/endpoints/0/expect",
                serde_json::json!([]),
                "endpoints[0].expect: give at least one status code",
            ),
            (
                "/name",
                "a\u{0}b".into(),
                "name: contains control characters",
            ),
            (
                "/stages",
                serde_json::json!([{"duration": "5s", "target": 0}]),
                "the run would send nothing",
            ),
            ("/requests", 0.into(), "requests: must be at least 1"),
            (
                "/endpoints/1/headers",
                serde_json::json!({"Content-Type": "a", "content-type": "b"}),
                "endpoints[1].headers: \"Content-Type\" and \"content-type\" are one header",
            ),
            (
                "/max_workers",
                5_000_000.into(),
                "max_workers: at most 1000000 VUs",
            ),
            (
                "/endpoints/0/body",
                "x".repeat(16 * 1024 * 1024 + 1).into(),
                "endpoints[0].body: at most 16777216 bytes",
            ),
            (
                "/autoscale",
                serde_json::json!({"target_rps": 1e9, "interval": "2h"}),
                "autoscale.target_rps: at most 10000000",
            ),
        ];
        for (pointer, value, want) in cases {
            let mut v = base.clone();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let slot = v.pointer_mut(parent).unwrap();
            match slot {
                serde_json::Value::Object(m) => {
                    m.insert(key.to_string(), value.clone());
                }
                serde_json::Value::Array(a) => a[key.parse::<usize>().unwrap()] = value.clone(),
                _ => unreachable!(),
            }
            let err = match Config::from_json(&v.to_string()) {
                Ok(_) => panic!("{pointer}={value}: accepted, want {want:?}"),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains(want),
                "{pointer}={value}: got {err:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn path_needs_a_target() {
        let e = Config::from_json(
            r#"{"stages":[{"duration":"1s","target":1}],"endpoints":[{"name":"a","path":"/x"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("endpoints[0].path: a path needs a top-level target"),
            "{e}"
        );
    }
}
