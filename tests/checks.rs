//! Checks (issue #20): named assertions on responses that, as in k6, never
//! fail the request; counted per endpoint and in totals, judged by the
//! `checks` threshold, listed k6's way.

use userflux::{Gateway, load_run, only_run, run_with_config};

#[test]
fn checks_count_passes_and_fails_without_failing_requests() {
    let tmp = tempfile::tempdir().unwrap();
    // orders fails 1 % of its calls with a 503 (seeded); users always answers
    let gw = Gateway::start(
        Some(
            r#"{"routes": [
              {"path": "/users", "calls": [{"service": "users", "latency": "1ms"}], "body_bytes": 64},
              {"method": "POST", "path": "/login", "login": true, "calls": [{"service": "auth", "latency": "1ms"}]},
              {"method": "POST", "path": "/orders", "calls": [{"service": "pay", "latency": "1ms", "error_rate": 0.01}], "body_bytes": 16}
            ]}"#,
        ),
        tmp.path(),
    );
    let config = format!(
        r#"{{"target": "{}", "threads": 2,
          "stages": [{{"duration": "0s", "target": 8}}, {{"duration": "2s", "target": 8}}],
          "endpoints": [
            {{"name": "orders", "method": "POST", "path": "/orders", "expect": [200, 503],
              "checks": {{"status is 200": {{"status": 200}}, "fast": {{"duration_lt": "10s"}},
                          "has server timing": {{"header": "server-timing", "matches": "pay;dur="}}}}}},
            {{"name": "login", "method": "POST", "path": "/login",
              "checks": {{"has token": {{"json": "/token", "exists": true}}, "no error": {{"json": "/error", "exists": false}},
                          "token shape": {{"json": "/token", "matches": "^[0-9a-f]+\\.[0-9a-f]{{16}}$"}},
                          "body": {{"body_contains": "token"}}, "never": {{"json": "/token", "equals": "x"}}}}}},
            {{"name": "users", "path": "/users"}}],
          "thresholds": {{"checks": ["rate>0.5"], "checks{{endpoint:orders}}": ["rate>0.9"],
                          "checks{{check:status is 200}}": ["rate==1"], "checks{{check:never}}": ["rate<0.01"]}}}}"#,
        gw.url()
    );
    let runs = tmp.path().join("runs");
    let out = run_with_config(&config, &tmp.path().join("c.json"), &runs, &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (s, _) = load_run(&only_run(&runs));
    // the 503s are expected: no request failed, but a check did
    assert_eq!(s.totals.errors, 0, "{text}");
    let orders = &s.endpoints["orders"];
    let st = &orders.checks["status is 200"];
    assert_eq!(st.passes + st.fails, orders.requests);
    assert_eq!(
        st.fails,
        orders.status_codes.get("503").copied().unwrap_or(0)
    );
    assert!(st.fails > 0, "1 % of {} requests fail", orders.requests);
    assert_eq!(orders.checks["fast"].fails, 0);
    assert_eq!(orders.checks["has server timing"].fails, 0);
    let login = &s.endpoints["login"];
    for name in ["has token", "no error", "token shape", "body"] {
        assert_eq!(login.checks[name].passes, login.requests, "{name}");
    }
    assert_eq!(login.checks["never"].fails, login.requests);
    assert!(s.endpoints["users"].checks.is_empty());
    // rates: per endpoint and in totals, over every judged check
    let (p, f) = (
        orders.checks.values().map(|c| c.passes).sum::<u64>(),
        orders.checks.values().map(|c| c.fails).sum::<u64>(),
    );
    assert!((orders.checks_rate.unwrap() - p as f64 / (p + f) as f64).abs() < 1e-12);
    assert_eq!(s.totals.checks["status is 200"], *st);
    // thresholds: the status check's rate is under 1, so that one fails
    let t = |k: &str| s.thresholds.iter().find(|t| t.metric == k).unwrap();
    assert!(t("checks").ok && t("checks{endpoint:orders}").ok && t("checks{check:never}").ok);
    let status = t("checks{check:status is 200}");
    assert!(!status.ok);
    assert!((status.observed.unwrap() - st.passes as f64 / orders.requests as f64).abs() < 1e-12);
    assert_eq!(out.status.code(), Some(99));
    // k6's listing
    assert!(text.contains("  ✓ login › has token\n"), "{text}");
    assert!(text.contains("  ✗ orders › status is 200  "), "{text}");
    assert!(
        text.contains(&format!("✓ {} ✗ {}", st.passes, st.fails)),
        "{text}"
    );
}

#[test]
fn a_failed_request_fails_its_checks_and_a_bad_check_is_a_config_error() {
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{{"target": "http://127.0.0.1:{}", "threads": 1, "requests": 20,
          "stages": [{{"duration": "0s", "target": 2}}, {{"duration": "5s", "target": 2}}],
          "endpoints": [{{"name": "down", "path": "/", "checks": {{"up": {{"status": 200}}, "nothing": {{"json": "/x", "exists": false}}}}}}]}}"#,
        userflux::closed_port()
    );
    let runs = tmp.path().join("runs");
    let _ = run_with_config(&config, &tmp.path().join("c.json"), &runs, &[]);
    let (s, _) = load_run(&only_run(&runs));
    let e = &s.endpoints["down"];
    assert_eq!(e.requests, 20);
    assert_eq!(e.checks["up"].fails, 20);
    assert_eq!(
        e.checks["nothing"].fails, 20,
        "no response: every check fails"
    );
    assert_eq!(e.checks_rate, Some(0.0));

    let bad = r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 1}],
      "endpoints": [{"name": "e", "path": "/", "checks": {"two": {"status": 200, "json": "/a"}, "typo": {"stauts": 200}}}]}"#;
    let runs = tmp.path().join("runs2");
    let out = run_with_config(bad, &tmp.path().join("c2.json"), &runs, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("endpoints[0].checks.typo.stauts") || err.contains("unknown field `stauts`"),
        "{err}"
    );
}

/// Issue #27: a `checks` threshold in a config without a check passed with
/// nothing measured; it is refused, as an unknown check's name is.
#[test]
fn a_checks_threshold_without_checks_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let config = r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 1}],
      "thresholds": {"checks": ["rate>0.99"]},
      "endpoints": [{"name": "e", "path": "/"}]}"#;
    let runs = tmp.path().join("runs");
    let out = run_with_config(config, &tmp.path().join("c.json"), &runs, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("thresholds.checks: this config has no checks, so a checks threshold would judge nothing"),
        "{err}"
    );
    assert!(!runs.exists());
}
