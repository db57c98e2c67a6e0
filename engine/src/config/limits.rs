//! Bounds on every number and duration a config (or a quick-form flag) can
//! hold, each with its reason. Validation refuses a value outside them with
//! the field path, so whatever validates can run: no time or count
//! arithmetic overflows, no loop outruns its stop check, no run asks for
//! more memory than one machine has (issue #21 found each of these).

use std::time::Duration;

/// Longest run (stages, `duration`, each endpoint's `rate_stages`): 30
/// days, far past any soak test, and far from overflowing `Instant`
/// arithmetic (a `u64` of seconds).
pub const MAX_RUN: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest wait of a single request or pause (timeouts, `graceful_stop`,
/// every `think_time` (endpoint, flow, step), autoscale `interval`/`cooldown`/`max_p99`): one hour, the
/// top of the latency histograms.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);
/// Shortest timeout: below a millisecond a timeout only measures the timer wheel.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// Highest rate, in requests per second, for `rate`, `rate_stages` and
/// autoscale `target_rps`: 10 million. One pinned worker sends about 130
/// thousand req/s against a minimal server on this class of machine
/// (`../shared/bench/compare.sh`), so this is what 75 such cores could do —
/// beyond one machine's network stack. A worker behind its schedule
/// catches up in constant time at any rate (see `open::OpenState::advance`).
pub const MAX_RATE: f64 = 10_000_000.0;
/// Most VUs (connections) one run may ask for; far above what one
/// machine's file limit allows.
pub const MAX_VUS: u32 = 1_000_000;
/// Most worker threads; a guard against typos such as `"threads": 20000`.
pub const MAX_THREADS: usize = 1024;
/// Most endpoints: each costs memory per worker (its statistics), measured
/// in the README's Performance section. A config generated from a HAR file
/// or an OpenAPI spec has hundreds.
pub const MAX_ENDPOINTS: usize = 2000;
/// Most flows: a flow is a load unit as an endpoint is, and costs about
/// what one does (issue #27: 10,000 one-step flows took 3.2–5.4 GB; 2,000
/// one-step flows on 2 workers peak within 10 % of 2,000 endpoints, 20
/// flows of 100 steps at well under half).
pub const MAX_FLOWS: usize = MAX_ENDPOINTS;
/// Most steps in one flow: an iteration longer than this is a script, not
/// a user's visit.
pub const MAX_STEPS: usize = 100;
/// Most request rows: endpoints and flow steps together. Each step is
/// reported as a row of its own (`FLOW.STEP`) and keeps the statistics an
/// endpoint keeps, per worker, so steps share the endpoints' bound rather
/// than multiplying it by [`MAX_STEPS`].
pub const MAX_REQUEST_ROWS: usize = MAX_ENDPOINTS;
/// Most captures on one step.
pub const MAX_CAPTURES: usize = 100;
/// Most stages (of VUs, or of one endpoint's rate).
pub const MAX_STAGES: usize = 1000;
/// Most headers on one endpoint or step.
pub const MAX_HEADERS: usize = 100;
/// Longest header value, path or URL: 8 KiB, what common servers accept
/// in a request line or header (nginx's large_client_header_buffers).
pub const MAX_LINE: usize = 8 * 1024;
/// Largest request body: sent whole with every request.
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// Most requests for `requests` / `-n`: a million a second for 30 days is 2.6e12.
pub const MAX_REQUESTS: u64 = 1_000_000_000_000_000;
/// Largest endpoint `weight` (weights are relative; this only keeps sums finite and exact).
pub const MAX_WEIGHT: f64 = 1_000_000.0;
/// Longest run name, in bytes.
pub const MAX_NAME: usize = 256;
/// Most checks on one endpoint or step.
pub const MAX_CHECKS: usize = 100;
/// Most thresholds in total.
pub const MAX_THRESHOLDS: usize = 1000;

/// `path: reason` when `d` is outside `[min, max]`.
pub fn check_duration(path: &str, d: Duration, min: Duration, max: Duration) -> Option<String> {
    let show = |d: Duration| crate::duration::Dur(d).to_string();
    if d < min {
        Some(format!(
            "{path}: must be at least {}, got {}",
            show(min),
            show(d)
        ))
    } else if d > max {
        Some(format!(
            "{path}: must be at most {}, got {}",
            show(max),
            show(d)
        ))
    } else {
        None
    }
}

/// `path: reason` when `n` is above `max`.
pub fn check_max<T: PartialOrd + std::fmt::Display>(
    path: &str,
    n: T,
    max: T,
    what: &str,
) -> Option<String> {
    (n > max).then(|| format!("{path}: at most {max} {what}, got {n}"))
}

/// Whether a name has a control character (NUL, newline, ESC…), which
/// would corrupt a log line or a terminal.
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Every value of `c` outside its bound, as `path: reason` lines.
/// `parts` are the config's endpoints, flows and steps
/// (`Config::parts`): a flow and a step are bounded by the same
/// checks as an endpoint (issue #27: flows got around every bound).
pub fn problems(c: &super::Config, parts: &[super::traffic::Part]) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |p: Option<String>| out.extend(p);
    let run = |path: &str, d: Duration| check_duration(path, d, Duration::ZERO, MAX_RUN);

    if c.name.len() > MAX_NAME {
        push(Some(format!(
            "name: at most {MAX_NAME} bytes, got {}",
            c.name.len()
        )));
    }
    if has_control(&c.name) {
        push(Some("name: contains control characters".into()));
    }
    push(check_max("stages", c.stages.len(), MAX_STAGES, "stages"));
    for (i, s) in c.stages.iter().enumerate() {
        push(run(&format!("stages[{i}].duration"), s.duration.0));
    }
    if let Some(d) = c.duration {
        push(run("duration", d.0));
    }
    push(run(
        "the run's length (stages, duration, rate_stages)",
        c.duration(),
    ));
    if let Some(n) = c.requests {
        push(check_max("requests", n, MAX_REQUESTS, "requests"));
    }
    let timeout = |path: &str, d: Duration| check_duration(path, d, MIN_TIMEOUT, MAX_WAIT);
    push(timeout("timeouts.connect", c.timeouts.connect.0));
    push(timeout("timeouts.request", c.timeouts.request.0));
    push(wait("graceful_stop", c.graceful_stop.0));
    push(wait("graceful_ramp_down", c.graceful_ramp_down.0));
    if let Some(m) = c.max_workers {
        push(check_max("max_workers", m, MAX_VUS, "VUs"));
    }
    let thresholds: usize = c.thresholds.values().map(Vec::len).sum();
    push(check_max(
        "thresholds",
        thresholds,
        MAX_THRESHOLDS,
        "thresholds",
    ));
    for (key, specs) in &c.thresholds {
        for (i, spec) in specs.iter().enumerate() {
            if let crate::thresholds::ThresholdSpec::Full(f) = spec {
                push(run(
                    &format!("thresholds.{key}[{i}].delay_abort_eval"),
                    f.delay_abort_eval.0,
                ));
            }
        }
    }
    if let Some(a) = &c.autoscale {
        autoscale_problems("autoscale", a, &mut out);
    }
    count_problems(c, &mut out);
    for part in parts {
        part_problems(part, &mut out);
    }
    out
}

/// `path: reason` when a wait (think time, graceful stop…) is above [`MAX_WAIT`].
fn wait(path: &str, d: Duration) -> Option<String> {
    check_duration(path, d, Duration::ZERO, MAX_WAIT)
}

/// `path: reason` when a rate is above [`MAX_RATE`] (a rate that is not
/// finite, or not above 0, is refused with the other values).
fn rate(path: &str, r: f64) -> Option<String> {
    // 1e300 is shown so, not as 301 digits
    let shown = if r >= 1e15 {
        format!("{r:e}")
    } else {
        r.to_string()
    };
    (r.is_finite() && r > MAX_RATE)
        .then(|| format!("{path}: at most {MAX_RATE} requests per second, got {shown}"))
}

/// The number of endpoints, flows, steps and captures.
fn count_problems(c: &super::Config, out: &mut Vec<String>) {
    let mut push = |p: Option<String>| out.extend(p);
    push(check_max(
        "endpoints",
        c.endpoints.len(),
        MAX_ENDPOINTS,
        "endpoints",
    ));
    push(check_max("flows", c.flows.len(), MAX_FLOWS, "flows"));
    let steps: usize = c.flows.iter().map(|f| f.steps.len()).sum();
    if c.endpoints.len() <= MAX_ENDPOINTS && c.flows.len() <= MAX_FLOWS {
        push(
            (c.endpoints.len() + steps > MAX_REQUEST_ROWS).then(|| {
                format!(
                    "flows: at most {MAX_REQUEST_ROWS} requests in all (endpoints and flow steps together: each keeps its own statistics), got {} ({} endpoints, {steps} steps in {} flows)",
                    c.endpoints.len() + steps,
                    c.endpoints.len(),
                    c.flows.len()
                )
            }),
        );
    }
    for (i, f) in c.flows.iter().enumerate() {
        push(check_max(
            &format!("flows[{i}].steps"),
            f.steps.len(),
            MAX_STEPS,
            "steps",
        ));
        for (j, s) in f.steps.iter().enumerate() {
            push(check_max(
                &format!("flows[{i}].steps[{j}].capture"),
                s.capture.len(),
                MAX_CAPTURES,
                "captures",
            ));
        }
    }
}

/// The bounds of one endpoint, flow or step: request fields (headers,
/// path, body, expect) for an endpoint and a step, load fields (rates, VUs,
/// weight, autoscale) for an endpoint and a flow, `think_time` for all three.
fn part_problems(part: &super::traffic::Part, out: &mut Vec<String>) {
    let ep = &part.ep;
    let at = |f: &str| format!("{}.{f}", part.at);
    let mut push = |p: Option<String>| out.extend(p);
    push(wait(&at("think_time"), ep.think_time.0));
    if part.request {
        push(check_max(
            &at("headers"),
            ep.headers.len(),
            MAX_HEADERS,
            "headers",
        ));
        for (k, v) in &ep.headers {
            push(check_max(
                &at(&format!("headers.{k}")),
                v.len(),
                MAX_LINE,
                "bytes",
            ));
        }
        for (f, s) in [("path", &ep.path), ("url", &ep.url)] {
            if let Some(s) = s {
                push(check_max(&at(f), s.len(), MAX_LINE, "bytes"));
            }
        }
        if let Some(b) = &ep.body {
            push(check_max(&at("body"), b.len(), MAX_BODY, "bytes"));
        }
        if ep.expect.as_ref().is_some_and(Vec::is_empty) {
            push(Some(format!(
                "{}: give at least one status code, or leave expect out for 100-399",
                at("expect")
            )));
        }
    }
    if !part.unit {
        return;
    }
    if ep.weight.is_finite() {
        push(check_max(&at("weight"), ep.weight, MAX_WEIGHT, ""));
    }
    if let Some(r) = ep.rate {
        push(rate(&at("rate"), r));
    }
    push(check_max(
        &at("rate_stages"),
        ep.rate_stages.len(),
        MAX_STAGES,
        "stages",
    ));
    for (j, s) in ep.rate_stages.iter().enumerate() {
        push(check_duration(
            &at(&format!("rate_stages[{j}].duration")),
            s.duration.0,
            Duration::ZERO,
            MAX_RUN,
        ));
        push(rate(&at(&format!("rate_stages[{j}].target")), s.target));
    }
    for (f, v) in [
        ("pre_allocated_vus", ep.pre_allocated_vus),
        ("max_vus", ep.max_vus),
    ] {
        if let Some(v) = v {
            push(check_max(&at(f), v, MAX_VUS, "VUs"));
        }
    }
    if let Some(super::EndpointAutoscale::On(a)) = &ep.autoscale {
        autoscale_problems(&at("autoscale"), a, out);
    }
}

fn autoscale_problems(at: &str, a: &super::AutoscaleSpec, out: &mut Vec<String>) {
    let path = |f: &str| format!("{at}.{f}");
    if let Some(t) = a.target_rps
        && t.is_finite()
        && t > MAX_RATE
    {
        out.push(format!(
            "{}: at most {MAX_RATE} requests per second, got {t}",
            path("target_rps")
        ));
    }
    for (f, v) in [
        ("min_workers", a.min_workers),
        ("max_workers", a.max_workers),
    ] {
        if let Some(v) = v {
            out.extend(check_max(&path(f), v, MAX_VUS, "VUs"));
        }
    }
    for (f, d) in [
        ("interval", a.interval),
        ("cooldown", a.cooldown),
        ("max_p99", a.max_p99),
    ] {
        if let Some(d) = d {
            out.extend(check_duration(&path(f), d.0, Duration::ZERO, MAX_WAIT));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_field_and_the_bound() {
        let d = Duration::from_secs;
        assert_eq!(check_duration("x", d(5), d(1), d(10)), None);
        assert_eq!(
            check_duration("timeouts.request", d(7200), MIN_TIMEOUT, MAX_WAIT).unwrap(),
            "timeouts.request: must be at most 1h, got 2h"
        );
        assert!(
            check_duration("t", Duration::ZERO, MIN_TIMEOUT, MAX_WAIT)
                .unwrap()
                .contains("at least 1ms")
        );
        assert_eq!(
            check_max("endpoints", 3000, MAX_ENDPOINTS, "endpoints").unwrap(),
            "endpoints: at most 2000 endpoints, got 3000"
        );
        assert!(has_control("a\0b") && has_control("a\nb") && !has_control("ünï code"));
    }

    #[test]
    fn the_largest_values_cannot_overflow_time_arithmetic() {
        let now = std::time::Instant::now();
        let stages = MAX_RUN.checked_mul(MAX_STAGES as u32).expect("fits");
        assert!(now.checked_add(stages + MAX_WAIT * 3).is_some());
        // every send of the largest schedule has an index
        assert!(MAX_RATE * MAX_RUN.as_secs_f64() < u64::MAX as f64 / 4.0);
    }

    /// A flow and its steps are held to every bound an endpoint is (issue
    /// #27: each of these validated, and the first two then broke the run).
    #[test]
    fn flows_and_steps_have_the_endpoints_bounds() {
        use serde_json::json;
        let base = json!({"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 1}],
            "endpoints": [{"name": "e", "path": "/"}],
            "flows": [{"name": "f", "steps": [{"name": "a", "path": "/a"}, {"name": "b", "path": "/b"}]}]});
        let long = "x".repeat(MAX_LINE + 1);
        let many = |n: usize, f: &dyn Fn(usize) -> serde_json::Value| -> serde_json::Value {
            (0..n).map(f).collect()
        };
        let step = |j: usize| json!({"name": format!("s{j}"), "path": "/"});
        let flow =
            |i: usize, steps: usize| json!({"name": format!("f{i}"), "steps": many(steps, &step)});
        let headers: serde_json::Map<_, _> = (0..=MAX_HEADERS)
            .map(|k| (format!("h{k}"), json!("v")))
            .collect();
        let captures: serde_json::Map<_, _> = (0..=MAX_CAPTURES)
            .map(|k| (format!("c{k}"), json!({"header": "x"})))
            .collect();
        let huge = "18446744073709551615s";
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "/flows/0/think_time",
                huge.into(),
                "flows[0].think_time: must be at most 1h",
            ),
            (
                "/flows/0/steps/1/think_time",
                huge.into(),
                "flows[0].steps[1].think_time: must be at most 1h",
            ),
            (
                "/flows/0/rate",
                1e300.into(),
                "flows[0].rate: at most 10000000 requests per second, got 1e300",
            ),
            (
                "/flows/0/rate",
                1e12.into(),
                "flows[0].rate: at most 10000000 requests per second",
            ),
            (
                "/flows/0/rate_stages",
                json!([{"duration": "40days", "target": 1e9}]),
                "flows[0].rate_stages[0].target: at most 10000000",
            ),
            (
                "/flows/0/rate_stages",
                json!([{"duration": "40days", "target": 1}]),
                "flows[0].rate_stages[0].duration: must be at most 30days",
            ),
            (
                "/flows/0/rate_stages",
                many(MAX_STAGES + 1, &|_| json!({"duration": "1s", "target": 1})),
                "flows[0].rate_stages: at most 1000 stages",
            ),
            (
                "/flows/0/weight",
                1e7.into(),
                "flows[0].weight: at most 1000000",
            ),
            (
                "/flows/0",
                json!({"name": "f", "rate": 5, "pre_allocated_vus": 5_000_000, "steps": [step(0)]}),
                "flows[0].pre_allocated_vus: at most 1000000 VUs",
            ),
            (
                "/flows/0",
                json!({"name": "f", "rate": 5, "max_vus": 5_000_000, "steps": [step(0)]}),
                "flows[0].max_vus: at most 1000000 VUs",
            ),
            (
                "/flows/0/autoscale",
                json!({"target_rps": 1e9}),
                "flows[0].autoscale.target_rps: at most 10000000",
            ),
            (
                "/flows/0/autoscale",
                json!({"target_rps": 5, "max_workers": 5_000_000}),
                "flows[0].autoscale.max_workers: at most 1000000 VUs",
            ),
            (
                "/flows/0/steps/0/headers",
                headers.into(),
                "flows[0].steps[0].headers: at most 100 headers",
            ),
            (
                "/flows/0/steps/0/headers",
                json!({"x": long}),
                "flows[0].steps[0].headers.x: at most 8192 bytes",
            ),
            (
                "/flows/0/steps/0/path",
                format!("/{long}").into(),
                "flows[0].steps[0].path: at most 8192 bytes",
            ),
            (
                "/flows/0/steps/1",
                json!({"name": "b", "url": format!("http://127.0.0.1/{long}")}),
                "flows[0].steps[1].url: at most 8192 bytes",
            ),
            (
                "/flows/0/steps/0/body",
                "x".repeat(MAX_BODY + 1).into(),
                "flows[0].steps[0].body: at most 16777216 bytes",
            ),
            (
                "/flows/0/steps/1/expect",
                json!([]),
                "flows[0].steps[1].expect: give at least one status code",
            ),
            (
                "/flows/0/steps/0/capture",
                captures.into(),
                "flows[0].steps[0].capture: at most 100 captures",
            ),
            (
                "/flows/0/steps",
                many(MAX_STEPS + 1, &step),
                "flows[0].steps: at most 100 steps, got 101",
            ),
            (
                "/flows",
                many(MAX_FLOWS + 1, &|i| flow(i, 1)),
                "flows: at most 2000 flows, got 2001",
            ),
            // 20 flows of 100 steps and the endpoint: 2,001 requests
            (
                "/flows",
                many(20, &|i| flow(i, 100)),
                "flows: at most 2000 requests in all (endpoints and flow steps together: each keeps its own statistics), got 2001 (1 endpoints, 2000 steps in 20 flows)",
            ),
            (
                "/endpoints/0/expect",
                json!([]),
                "endpoints[0].expect: give at least one status code",
            ),
        ];
        for (pointer, value, want) in cases {
            let mut v = base.clone();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            match v.pointer_mut(parent).unwrap() {
                serde_json::Value::Object(m) => {
                    m.insert(key.to_string(), value);
                }
                serde_json::Value::Array(a) => a[key.parse::<usize>().unwrap()] = value,
                _ => unreachable!(),
            }
            let err = match super::super::Config::from_json(&v.to_string()) {
                Ok(_) => panic!("{pointer}: accepted, want {want:?}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(want), "{pointer}: got {err:?}, want {want:?}");
        }
        // at the bounds, each validates
        let mut v = base.clone();
        v["flows"] = many(19, &|i| flow(i, 100));
        v["flows"].as_array_mut().unwrap().push(flow(19, 99));
        v["flows"][0]["think_time"] = "1h".into();
        v["flows"][0]["steps"][0]["think_time"] = "1h".into();
        super::super::Config::from_json(&v.to_string()).expect("2,000 requests, 1 h thinks");
    }
}
