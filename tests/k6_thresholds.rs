//! k6 users' thresholds, judged on a real run against the gateway (issue
//! #20): k6's object keys, `===`, an empty list, and the tags that pick
//! responses (`expected_response`, `status`) and endpoints (`name`,
//! `method`, `url`).

use userflux::{Gateway, load_run, only_run, run_with_config};

#[test]
fn k6_thresholds_judge_a_real_run() {
    let tmp = tempfile::tempdir().unwrap();
    let routes = r#"{"routes": [
        {"method": "POST", "path": "/orders", "calls": [{"service": "pay", "latency": "1ms", "error_rate": 0.3}]},
        {"path": "/users", "calls": [{"service": "users", "latency": "1ms"}], "body_bytes": 100}]}"#;
    let gw = Gateway::start(Some(routes), tmp.path());
    let config = format!(
        r#"{{"target": "{}", "threads": 1,
            "stages": [{{"duration": "0s", "target": 4}}, {{"duration": "2s", "target": 4}}],
            "thresholds": {{
              "http_req_failed{{expected_response:true}}": ["rate===0"],
              "http_req_failed{{name:orders}}": [{{"threshold": "rate<0.1", "abortOnFail": false, "delayAbortEval": "1s"}}],
              "http_reqs{{status:503}}": ["count>0"],
              "http_req_duration{{method:POST,expected_response:true}}": ["p(99)<1000"],
              "http_reqs{{url:/users}}": ["count>0"],
              "iterations": ["count>0"],
              "data_received{{scenario:users}}": ["count>0"],
              "vus": ["max==4", "min>0"],
              "vus_max": ["value==4"],
              "http_req_waiting_for_nothing": []
            }},
            "endpoints": [{{"name": "orders", "method": "POST", "path": "/orders"}},
                          {{"name": "users", "path": "/users"}}]}}"#,
        gw.url()
    );
    // An unknown metric in an empty list is still an error…
    let runs = tmp.path().join("runs");
    let out = run_with_config(&config, &tmp.path().join("c.json"), &runs, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Userflux has no custom metrics"),
        "{out:?}"
    );
    // …and a known one in an empty list is reported, judged by nothing.
    let config = config.replace("http_req_waiting_for_nothing", "http_req_failed");
    let out = run_with_config(&config, &tmp.path().join("c.json"), &runs, &[]);
    assert_eq!(out.status.code(), Some(99), "{out:?}");
    let (s, _) = load_run(&only_run(&runs));
    let by_key = |k: &str| {
        s.thresholds
            .iter()
            .find(|t| t.metric == k)
            .unwrap_or_else(|| panic!("{k} in {:?}", s.thresholds))
    };
    let orders = &s.endpoints["orders"];
    let n503 = *orders.status_codes.get("503").unwrap();
    assert!(n503 > 0 && orders.requests > n503);
    // the only failure: orders fail about 30 % of the time
    let failed: Vec<&str> = s
        .thresholds
        .iter()
        .filter(|t| !t.ok)
        .map(|t| t.metric.as_str())
        .collect();
    assert_eq!(failed, ["http_req_failed{name:orders}"]);
    assert_eq!(
        by_key("http_req_failed{expected_response:true}").observed,
        Some(0.0)
    );
    assert_eq!(by_key("http_reqs{status:503}").observed, Some(n503 as f64));
    assert_eq!(
        by_key("http_reqs{url:/users}").observed,
        Some(s.endpoints["users"].requests as f64)
    );
    assert_eq!(
        by_key("iterations").observed,
        Some(s.totals.requests as f64)
    );
    assert_eq!(
        by_key("data_received{scenario:users}").observed,
        Some(s.endpoints["users"].bytes_in as f64),
        "the bytes the server sent"
    );
    assert_eq!(by_key("vus_max").observed, Some(4.0));
    assert_eq!(s.thresholds.len(), 10, "the empty list judges nothing");
}
