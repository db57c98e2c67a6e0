//! Where the time goes (issue #17): the engine collects the gateway's
//! `Server-Timing` per endpoint and per metric, next to the latency it
//! measured; fixed and distributed service latencies come back as
//! configured; thresholds on a metric judge the run.

use std::path::Path;
use userflux::{Gateway, load_run, only_run, run_with_config};
use userflux_engine::summary::Summary;

fn run(
    dir: &Path,
    routes: &str,
    endpoints: &str,
    extra: &str,
    (vus, secs): (u32, u32),
) -> (Summary, i32, String) {
    let gw = Gateway::start(Some(routes), dir);
    let config = format!(
        r#"{{"target": "{}", "threads": 1, {extra}
            "stages": [{{"duration": "0s", "target": {vus}}}, {{"duration": "{secs}s", "target": {vus}}}],
            "endpoints": {endpoints}}}"#,
        gw.url()
    );
    let runs = dir.join("runs");
    let out = run_with_config(&config, &dir.join("c.json"), &runs, &[]);
    let (s, _) = load_run(&only_run(&runs));
    (
        s,
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn fixed_service_latencies_come_back_per_metric() {
    let tmp = tempfile::tempdir().unwrap();
    let routes = r#"{"routes": [{"method": "GET", "path": "/f", "calls": [
        {"service": "payments", "latency": "6ms"}, {"service": "inventory", "latency": "2ms"}]}]}"#;
    let (s, code, text) = run(
        tmp.path(),
        routes,
        r#"[{"name": "orders", "path": "/f"}]"#,
        "",
        (8, 2),
    );
    assert_eq!(code, 0, "{text}");
    let e = &s.endpoints["orders"];
    for (metric, want) in [("payments", 6.0), ("inventory", 2.0)] {
        let m = &e.server_timing[metric];
        assert_eq!(m.count, e.requests, "{metric}: one entry per response");
        // The gateway times its own simulated calls: on this 2-core host
        // its timers run late by up to ~0.25 ms when the engine's workers
        // share its cores (the engine polls 10 µs before sleeping, see
        // load/wait.rs): p50 6.111 and 6.227 for 6 ms in 3 of 7 runs.
        // What is checked is each metric's own value, 6 ms vs 2 ms.
        assert!(
            (m.p50 - want).abs() <= 0.5,
            "{metric} p50 {} want {want}",
            m.p50
        );
    }
    // the gateway's own total is the slowest call plus its overhead, and
    // the engine's measured latency includes it
    let gateway = &e.server_timing["gateway"];
    let measured = e.latency_ms.as_ref().unwrap();
    assert!(
        gateway.p50 >= 6.0 && gateway.p50 <= measured.p50 + 0.01,
        "{gateway:?} {measured:?}"
    );
    assert_eq!(e.server_timing_malformed, 0);
    // the histogram is in the summary, and the timeline has the metric
    let h =
        userflux_engine::summary::decode_histogram(&e.server_timing["payments"].histogram).unwrap();
    assert_eq!(h.len(), e.requests);
    let second = &s.timeline[0].endpoints["orders"];
    assert!((second.server_timing["payments"].p50 - 6.0).abs() <= 0.2);
    // and the human summary shows the block
    assert!(text.contains("Server-Timing (ms)"), "{text}");
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("payments")),
        "{text}"
    );
}

#[test]
fn a_distribution_comes_back_with_its_median_and_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let routes = r#"{"routes": [{"method": "GET", "path": "/d", "calls": [
        {"service": "search", "latency": {"p50": "20ms", "p99": "80ms"}}]}]}"#;
    let (s, code, text) = run(
        tmp.path(),
        routes,
        r#"[{"name": "search", "path": "/d"}]"#,
        "",
        (32, 4),
    );
    assert_eq!(code, 0, "{text}");
    let m = &s.endpoints["search"].server_timing["search"];
    // (long enough latencies that a busy machine's late timers, a fraction
    // of a millisecond, stay well inside the 10 %)
    assert!(m.count > 4000, "{}", m.count);
    assert!((m.p50 - 20.0).abs() <= 2.0, "p50 {}", m.p50);
    assert!((m.p99 - 80.0).abs() <= 8.0, "p99 {}", m.p99);
}

#[test]
fn thresholds_on_a_metric_judge_the_run_and_collection_can_be_off() {
    let tmp = tempfile::tempdir().unwrap();
    let routes = r#"{"routes": [{"method": "GET", "path": "/f", "calls": [
        {"service": "payments", "latency": "5ms"}, {"service": "inventory", "latency": "1ms"}]},
        {"method": "GET", "path": "/g", "calls": [{"service": "inventory", "latency": "1ms"}]}]}"#;
    let endpoints = r#"[{"name": "orders", "path": "/f"}, {"name": "orders2", "path": "/f"},
                        {"name": "quiet", "path": "/g", "server_timing": false}]"#;
    let (s, code, _) = run(
        tmp.path(),
        routes,
        endpoints,
        r#""thresholds": {"server_timing{metric:payments}": ["p(99)<3"],
                          "server_timing{endpoint:orders,metric:inventory}": ["p(50)<50"]},"#,
        (8, 1),
    );
    assert_eq!(code, 99, "the payments threshold fails");
    let failed: Vec<&str> = s
        .thresholds
        .iter()
        .filter(|t| !t.ok)
        .map(|t| t.metric.as_str())
        .collect();
    assert_eq!(failed, vec!["server_timing{metric:payments}"]);
    assert!(
        s.endpoints["quiet"].server_timing.is_empty(),
        "collection off"
    );
    assert!(s.endpoints["quiet"].requests > 0);
    // in totals, the metrics several endpoints report, merged
    let keys: Vec<&String> = s.totals.server_timing.keys().collect();
    assert_eq!(keys, ["gateway", "inventory", "payments"]);
    assert_eq!(
        s.totals.server_timing["payments"].count,
        s.endpoints["orders"].requests + s.endpoints["orders2"].requests
    );
}
