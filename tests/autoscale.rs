//! Per-endpoint autoscale end to end: the engine's aggregator drives the
//! real workers against the real gateway.

use std::path::Path;
use userflux::{Gateway, engine, load_run, only_run, run_with_config};
use userflux_engine::summary::Summary;

const ROUTES: &str = r#"{"routes": [
  {"path": "/steady", "calls": [{"service": "steady", "latency": "10ms"}]},
  {"path": "/flaky", "calls": [{"service": "flaky", "latency": "5ms", "error_rate": 0.3}]},
  {"path": "/fixed", "calls": [{"service": "fixed", "latency": "5ms"}]}
]}"#;

fn run(tmp: &Path, config: String) -> Summary {
    let runs = tmp.join("runs");
    let out = run_with_config(&config, &tmp.join("config.json"), &runs, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = only_run(&runs);
    let logs = std::fs::read_to_string(dir.join("logs.txt")).unwrap();
    let (s, _) = load_run(&dir);
    for e in &s.scaling_events {
        assert!(
            logs.contains(&format!("scaling {} {} → {}", e.endpoint, e.from, e.to)),
            "event not in logs.txt: {e:?}"
        );
    }
    s
}

#[test]
fn reaches_the_target_and_keeps_fixed_endpoints_fixed() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(ROUTES), tmp.path());
    // 10 ms per request: ~100 req/s per worker, so 400 req/s needs ~4 workers;
    // it starts at 1 (its share of 2 VUs) and must climb.
    let s = run(
        tmp.path(),
        format!(
            r#"{{"target": "{}", "threads": 2,
                "stages": [{{"duration": "0s", "target": 2}}, {{"duration": "16s", "target": 2}}],
                "endpoints": [
                  {{"name": "steady", "path": "/steady", "autoscale": {{"target_rps": 400, "max_workers": 20}}}},
                  {{"name": "fixed", "path": "/fixed", "autoscale": false}}]}}"#,
            gw.url()
        ),
    );
    let steady = &s.endpoints["steady"];
    assert_eq!(steady.target_rps, Some(400.0));
    let last5: Vec<f64> = s
        .timeline
        .iter()
        .filter(|t| t.t < 16)
        .rev()
        .take(5)
        .map(|t| t.endpoints["steady"].rps)
        .collect();
    let mean = last5.iter().sum::<f64>() / last5.len() as f64;
    assert!(
        (360.0..=440.0).contains(&mean),
        "last 5 s averaged {mean:.1} req/s for a target of 400: {last5:?}"
    );
    assert!((mean - steady.achieved_rps.unwrap()).abs() < 1e-6);
    let ups: Vec<_> = s
        .scaling_events
        .iter()
        .filter(|e| e.endpoint == "steady" && e.to > e.from)
        .collect();
    assert!(!ups.is_empty(), "{:?}", s.scaling_events);
    assert!(
        ups[0].reason.contains("below 0.9 × target 400"),
        "{}",
        ups[0].reason
    );
    // bounded: no more changes than intervals
    assert!(s.scaling_events.len() <= 8, "{:?}", s.scaling_events);
    // the fixed endpoint kept its one VU every second and had no events
    assert!(
        s.timeline
            .iter()
            .filter(|t| t.t + 1 < 16)
            .all(|t| t.endpoints["fixed"].vus == 1),
        "{:?}",
        s.timeline
    );
    assert!(s.scaling_events.iter().all(|e| e.endpoint == "steady"));
    // the timeline carries the workers per endpoint
    let last_workers = s.timeline.iter().rfind(|t| t.t + 1 < 16).unwrap().endpoints["steady"].vus;
    assert!((3..=6).contains(&last_workers), "{last_workers} workers");
}

#[test]
fn backs_off_an_endpoint_that_fails_too_often() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(ROUTES), tmp.path());
    let s = run(
        tmp.path(),
        format!(
            r#"{{"target": "{}", "threads": 1,
                "stages": [{{"duration": "11s", "target": 8}}],
                "endpoints": [{{"name": "flaky", "path": "/flaky",
                  "autoscale": {{"target_rps": 100000, "min_workers": 2, "max_error_rate": 0.1}}}}]}}"#,
            gw.url()
        ),
    );
    let events: Vec<_> = s
        .scaling_events
        .iter()
        .filter(|e| e.endpoint == "flaky")
        .collect();
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|e| e.to < e.from),
        "only back-offs, though far below target: {events:?}"
    );
    assert!(
        events[0].reason.contains("error rate")
            && events[0].reason.contains("over max_error_rate 10.0%"),
        "{}",
        events[0].reason
    );
    assert!(
        events[0].error_rate > 0.2 && events[0].error_rate < 0.4,
        "{}",
        events[0].error_rate
    );
    assert_eq!(events[0].from, 8);
    assert_eq!(
        events.last().unwrap().to,
        2,
        "down to min_workers: {events:?}"
    );
}

#[test]
fn contradictory_settings_are_rejected_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.json");
    std::fs::write(
        &file,
        r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 1}],
            "endpoints": [{"name": "a", "path": "/", "autoscale": {"target_rps": 10, "min_workers": 5, "max_workers": 2}}]}"#,
    )
    .unwrap();
    let out = engine()
        .args(["run", "--config"])
        .arg(&file)
        .arg("--runs-dir")
        .arg(tmp.path().join("runs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("endpoints[0].autoscale: min_workers 5 is above max_workers 2")
    );
    assert!(!tmp.path().join("runs").exists());
}
