//! What the engine tells a reader at the end of a run never misleads
//! (issue #28): a second the run covered only in part says so and has its
//! rate per covered time; the final status line's rate is the summary's;
//! the table's columns fit the longest name; counts print as integers.

use userflux::{Gateway, load_run, only_run, run_with_config};
use userflux_engine::aggregator::progress_line;

#[test]
fn partial_seconds_one_final_rate_and_columns_that_fit_the_longest_name() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let long = "GET /api/products/by-category/recent";
    let config = serde_json::json!({
        "target": gw.url(), "threads": 1,
        "stages": [{"duration": "0s", "target": 2}, {"duration": "1500ms", "target": 2}],
        "thresholds": {"http_reqs": ["count>0"]},
        "endpoints": [{"name": "health", "path": "/health"},
                      {"name": long, "path": "/api/products/7"}]
    });
    let runs = tmp.path().join("runs");
    let out = run_with_config(&config.to_string(), &tmp.path().join("c.json"), &runs, &[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    userflux::assert_ok(&out);
    let (s, st) = load_run(&only_run(&runs));

    // t=0 is whole; the second the load ended in (1.5 s) and the graceful
    // stop's tail after it are partial, with rates per the time covered
    let first = &s.timeline[0];
    assert_eq!((first.t, first.covered), (0, None), "{first:?}");
    let cut = s.timeline.iter().find(|x| x.t == 1).expect("second 1");
    let c = cut.covered.expect("the load ended inside second 1");
    assert!(c > 0.0 && c < 1.0, "{cut:?}");
    for x in s.timeline.iter().filter(|x| x.covered.is_some()) {
        let c = x.covered.unwrap();
        assert!(
            (x.rps - x.requests as f64 / c).abs() < 1e-6 * x.rps.max(1.0),
            "{x:?}"
        );
        for e in x.endpoints.values() {
            assert!(
                (e.rps - e.requests as f64 / c).abs() < 1e-6 * e.rps.max(1.0),
                "{x:?}"
            );
        }
    }

    // the final status line shows the run's rate: the summary's
    assert_eq!(st.progress.rps, s.totals.rps);
    assert_eq!(
        st.progress.p99_ms,
        s.totals.latency_ms.as_ref().map(|l| l.p99)
    );
    let line = progress_line(&st.progress);
    assert!(
        line.contains(&format!("{:.0} req/s", s.totals.rps)),
        "{line} / {}",
        s.totals.rps
    );
    assert!(text.contains(&format!("Requests/sec: {:.2}", s.totals.rps)));

    // every row of the endpoint table has its columns where the header has them
    let header = text
        .lines()
        .find(|l| l.trim_start().starts_with("endpoint "))
        .expect("the table's header");
    let requests_end = header.find("requests").unwrap() + "requests".len();
    for name in ["health", long, "total"] {
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in\n{text}"));
        let count = s
            .endpoints
            .get(name)
            .map_or(s.totals.requests, |e| e.requests)
            .to_string();
        let at = row[long.len() + 2..].find(&count).unwrap() + long.len() + 2;
        assert_eq!(at + count.len(), requests_end, "{row}\n{header}");
    }
    // a count threshold's observed value is an integer
    let observed = format!("(observed {})", s.totals.requests);
    assert!(text.contains(&observed), "{observed} in\n{text}");
}
