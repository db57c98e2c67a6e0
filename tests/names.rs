//! Endpoint names as k6 users write them (issue #20): any printable text,
//! `GET /api/users` or `POST /api/orders "fast"`, kept as written in every
//! JSON file and sample line, usable in threshold tags, and slugged where a
//! file name is derived from one (the report's charts).

use std::path::Path;
use std::process::Command;
use userflux::{Gateway, load_run, only_run, run_with_config};
use userflux_engine::samples::SampleLine;

#[test]
fn names_with_spaces_slashes_and_quotes_go_through_summary_samples_report_and_compare() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let (users, orders) = ("GET /api/users", r#"POST /api/orders "fast" ✓"#);
    let config = serde_json::json!({
        "target": gw.url(), "threads": 1, "samples": {"rate": 1.0},
        "stages": [{"duration": "0s", "target": 2}, {"duration": "1s", "target": 2}],
        "thresholds": {format!("http_req_duration{{name:{users}}}"): ["p(99)<5000"]},
        "endpoints": [{"name": users, "path": "/api/users"},
                      {"name": orders, "method": "POST", "path": "/api/orders"}]
    });
    let runs = tmp.path().join("runs");
    let out = run_with_config(&config.to_string(), &tmp.path().join("c.json"), &runs, &[]);
    userflux::assert_ok(&out);
    let dir = only_run(&runs);
    let (s, _) = load_run(&dir);
    let names: Vec<&String> = s.endpoints.keys().collect();
    assert_eq!(names, [users, orders]);
    assert!(s.thresholds[0].ok && s.thresholds[0].metric.contains(users));
    let text = std::fs::read_to_string(dir.join("samples.ndjson")).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for line in text.lines() {
        let l: SampleLine = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        *seen.entry(l.ep).or_insert(0u64) += 1;
    }
    assert_eq!(seen.get(users), Some(&s.endpoints[users].requests));
    assert_eq!(seen.get(orders), Some(&s.endpoints[orders].requests));

    // The analytics, when set up (`make test` sets them up first).
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("analytics/.venv/bin/python");
    if !python.exists() {
        return;
    }
    let analytics = |args: &[&str]| {
        Command::new(&python)
            .args(["-m", "userflux_analytics"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = analytics(&["report", dir.to_str().unwrap()]);
    userflux::assert_ok(&out);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("GET /api/users") && html.contains("POST /api/orders &#34;fast&#34; ✓"));
    assert!(
        dir.join("time-GET__api_users.png").exists(),
        "a slug, not a path"
    );
    let copy = tmp.path().join("again");
    std::fs::create_dir(&copy).unwrap();
    for f in ["summary.json", "config.json", "status.json"] {
        std::fs::copy(dir.join(f), copy.join(f)).unwrap();
    }
    let out = analytics(&[
        "compare",
        dir.to_str().unwrap(),
        copy.to_str().unwrap(),
        "--out",
        tmp.path().join("cmp").to_str().unwrap(),
    ]);
    userflux::assert_ok(&out);
    let cmp = std::fs::read_to_string(tmp.path().join("cmp/compare.html")).unwrap();
    assert!(cmp.contains("GET /api/users"));
}
