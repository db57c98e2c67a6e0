//! Realistic traffic (issue #15): templated requests seen on the wire,
//! data set orders, flows with captures and cookies against the gateway
//! and against a scripted server, and the failures a flow counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use userflux::{Gateway, Scripted, Seen, load_run, ok, only_run, run_with_config};
use userflux_engine::summary::Summary;

fn run(dir: &Path, config: &str) -> (Summary, i32, String) {
    let runs = dir.join("runs");
    let out = run_with_config(config, &dir.join("c.json"), &runs, &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.code() != Some(2),
        "the config was refused: {text}"
    );
    let (s, _) = load_run(&only_run(&runs));
    (s, out.status.code().unwrap_or(-1), text)
}

fn users_csv(dir: &Path, n: usize) {
    let mut t = String::from("name,secret\n");
    for i in 0..n {
        t.push_str(&format!("user{i},s{i}\n"));
    }
    std::fs::write(dir.join("users.csv"), t).unwrap();
}

fn query(path: &str, key: &str) -> String {
    path.split(['?', '&'])
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in {path}"))
        .to_string()
}

#[test]
fn templated_requests_differ_per_request_and_seq_is_unique_across_workers() {
    let tmp = tempfile::tempdir().unwrap();
    users_csv(tmp.path(), 10);
    let server = Scripted::start(Arc::new(|_| ok("", "ok")));
    let config = format!(
        r#"{{"target": "{}", "threads": 2, "requests": 400,
          "stages": [{{"duration": "0s", "target": 4}}, {{"duration": "20s", "target": 4}}],
          "data": {{"users": {{"file": "users.csv"}}}},
          "endpoints": [{{"name": "t", "method": "POST",
            "path": "/t?seq={{{{seq}}}}&again={{{{ seq }}}}&vu={{{{vu}}}}&it={{{{iteration}}}}&r={{{{rand_int(5,9)}}}}&u={{{{data.users.name}}}}",
            "headers": {{"x-id": "{{{{uuid}}}}", "x-user": "{{{{data.users.secret}}}}"}},
            "body": "{{\"s\":\"{{{{rand_str(8)}}}}\",\"t\":{{{{now_ms}}}}}}"}}]}}"#,
        server.url()
    );
    let (s, code, text) = run(tmp.path(), &config);
    assert_eq!(code, 0, "{text}");
    assert_eq!(s.totals.requests, 400);
    assert_eq!(s.totals.errors, 0, "{text}");
    let seen = server.seen();
    assert_eq!(seen.len(), 400);
    // one seq per request, unique over both workers, 0-based and dense
    let seqs: BTreeSet<u64> = seen
        .iter()
        .map(|r| {
            assert_eq!(query(&r.path, "seq"), query(&r.path, "again"), "{}", r.path);
            query(&r.path, "seq").parse().unwrap()
        })
        .collect();
    assert_eq!(seqs, (0..400).collect::<BTreeSet<u64>>());
    // each VU counts its own iterations from 0; VU numbers are distinct
    let mut per_vu: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for r in &seen {
        let vu = query(&r.path, "vu").parse().unwrap();
        per_vu
            .entry(vu)
            .or_default()
            .push(query(&r.path, "it").parse().unwrap());
    }
    assert_eq!(per_vu.len(), 4, "{:?}", per_vu.keys());
    for (vu, mut its) in per_vu {
        its.sort_unstable();
        assert_eq!(its, (0..its.len() as u64).collect::<Vec<_>>(), "vu {vu}");
    }
    // rand_int in its range; sequential rows: each of 10 rows 40 times,
    // the two columns of a request from the same row
    let mut rows: BTreeMap<String, u32> = BTreeMap::new();
    let mut uuids = BTreeSet::new();
    for r in &seen {
        let n: i64 = query(&r.path, "r").parse().unwrap();
        assert!((5..=9).contains(&n), "{}", r.path);
        let user = query(&r.path, "u");
        assert_eq!(
            r.headers["x-user"],
            user.replace("user", "s"),
            "one row per request"
        );
        *rows.entry(user).or_default() += 1;
        let id = &r.headers["x-id"];
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(&id[14..15], "4", "v4: {id}");
        uuids.insert(id.clone());
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("valid JSON body");
        assert_eq!(body["s"].as_str().unwrap().len(), 8);
        assert!(body["t"].as_u64().unwrap() > 1_700_000_000_000);
    }
    assert_eq!(rows.len(), 10);
    assert!(rows.values().all(|&n| n == 40), "{rows:?}");
    assert_eq!(uuids.len(), 400);
}

#[test]
fn per_vu_rows_stay_with_their_vu_and_random_rows_spread() {
    let tmp = tempfile::tempdir().unwrap();
    users_csv(tmp.path(), 50);
    let server = Scripted::start(Arc::new(|_| ok("", "ok")));
    let config = format!(
        r#"{{"target": "{}", "threads": 2, "requests": 600,
          "stages": [{{"duration": "0s", "target": 6}}, {{"duration": "20s", "target": 6}}],
          "data": {{"a": {{"file": "users.csv", "order": "per_vu"}},
                    "b": {{"file": "users.csv", "order": "random"}}}},
          "endpoints": [{{"name": "t", "path": "/t?vu={{{{vu}}}}&a={{{{data.a.name}}}}&b={{{{data.b.name}}}}"}}]}}"#,
        server.url()
    );
    let (_, code, text) = run(tmp.path(), &config);
    assert_eq!(code, 0, "{text}");
    let seen = server.seen();
    let mut random = BTreeSet::new();
    for r in &seen {
        let vu: usize = query(&r.path, "vu").parse().unwrap();
        assert_eq!(
            query(&r.path, "a"),
            format!("user{}", vu % 50),
            "{}",
            r.path
        );
        random.insert(query(&r.path, "b"));
    }
    assert!(
        random.len() > 30,
        "600 random draws of 50 rows: {}",
        random.len()
    );
}

#[test]
fn cookies_are_kept_by_path_deleted_and_cleared_each_iteration() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Scripted::start(Arc::new(|r: &Seen| match r.path.as_str() {
        "/login" => ok(
            "Set-Cookie: sid=s1; Path=/\r\nSet-Cookie: area=x; Path=/api/cart\r\nX-Session: h-42\r\n",
            r#"{"token":"tok-1","user":{"id":7}}"#,
        ),
        "/logout" => ok("Set-Cookie: sid=; Path=/; Max-Age=0\r\n", "bye"),
        _ => ok("", "id=99;"),
    }));
    let config = format!(
        r#"{{"target": "{}", "threads": 1, "requests": 60,
          "stages": [{{"duration": "0s", "target": 1}}, {{"duration": "20s", "target": 1}}],
          "flows": [{{"name": "f", "steps": [
            {{"name": "login", "method": "POST", "path": "/login",
              "capture": {{"token": {{"json": "/token"}}, "uid": {{"json": "/user/id"}}, "sess": {{"header": "x-session"}}}}}},
            {{"name": "cart", "path": "/api/cart/{{{{vars.uid}}}}", "headers": {{"authorization": "Bearer {{{{vars.token}}}}", "x-s": "{{{{vars.sess}}}}"}},
              "capture": {{"n": {{"regex": "id=(\\d+)"}}}}}},
            {{"name": "other", "path": "/other?n={{{{vars.n}}}}"}},
            {{"name": "logout", "path": "/logout"}},
            {{"name": "after", "path": "/after"}}]}}]}}"#,
        server.url()
    );
    let (s, code, text) = run(tmp.path(), &config);
    assert_eq!(code, 0, "{text}");
    assert_eq!(s.totals.errors, 0, "{text}");
    let f = &s.flows["f"];
    assert_eq!(f.iterations, 12, "60 requests = 12 iterations of 5 steps");
    assert_eq!(f.failed_iterations, 0);
    assert_eq!(
        f.steps,
        ["f.login", "f.cart", "f.other", "f.logout", "f.after"]
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 60);
    for (i, r) in seen.iter().enumerate() {
        let cookie = r.headers.get("cookie").map(String::as_str);
        let want = match (i % 5, r.path.as_str()) {
            (0, "/login") => None, // a new iteration starts with an empty jar
            (1, "/api/cart/7") => Some("area=x; sid=s1"),
            (2, "/other?n=99") => Some("sid=s1"),
            (3, "/logout") => Some("sid=s1"),
            (4, "/after") => None, // Max-Age=0 deleted it
            other => panic!("request {i}: unexpected {other:?}"),
        };
        assert_eq!(cookie, want, "request {i} {}", r.path);
        if i % 5 == 1 {
            assert_eq!(r.headers["authorization"], "Bearer tok-1");
            assert_eq!(r.headers["x-s"], "h-42");
        }
    }
}

#[test]
fn a_shop_flow_against_the_gateway_logs_in_and_has_no_errors() {
    let tmp = tempfile::tempdir().unwrap();
    users_csv(tmp.path(), 20);
    let gw = Gateway::start(None, tmp.path());
    // the product step sends the token; the cart and checkout steps only
    // the session cookie the login set: a wrong one would be a 401
    let config = format!(
        r#"{{"target": "{}", "threads": 2,
          "stages": [{{"duration": "0s", "target": 8}}, {{"duration": "2s", "target": 8}}],
          "data": {{"users": {{"file": "users.csv", "order": "per_vu"}}}},
          "flows": [{{"name": "shop", "steps": [
            {{"name": "login", "method": "POST", "path": "/api/login",
              "body": "{{\"user\":\"{{{{data.users.name}}}}\"}}", "capture": {{"token": {{"json": "/token"}}}},
              "checks": {{"token": {{"json": "/token", "matches": "\\."}}, "cookie": {{"header": "set-cookie", "matches": "^session="}}}}}},
            {{"name": "product", "path": "/api/products/{{{{rand_int(1,100)}}}}",
              "headers": {{"authorization": "Bearer {{{{vars.token}}}}"}}}},
            {{"name": "cart", "method": "POST", "path": "/api/cart", "capture": {{"cart": {{"json": "/id"}}}}}},
            {{"name": "checkout", "method": "POST", "path": "/api/checkout", "body": "{{\"cart\":{{{{vars.cart}}}}}}"}}]}}],
          "endpoints": [{{"name": "health", "path": "/health", "weight": 0.001}}],
          "thresholds": {{"http_req_failed": ["rate==0"],
            "iterations{{flow:shop}}": ["count>0"], "iterations": ["count>0"],
            "iteration_duration{{scenario:shop}}": ["p(95)<10000"],
            "http_req_duration{{flow:shop}}": ["max<10000"],
            "http_reqs{{flow:shop}}": ["count>0"]}}}}"#,
        gw.url()
    );
    let (s, code, text) = run(tmp.path(), &config);
    assert_eq!(code, 0, "{text}");
    assert_eq!(s.totals.errors, 0, "{text}");
    let f = &s.flows["shop"];
    // thresholds see the flow's iterations and its steps' requests
    let observed = |metric: &str| {
        s.thresholds
            .iter()
            .find(|t| t.metric == metric)
            .and_then(|t| t.observed)
            .unwrap_or_else(|| panic!("{metric} in {:?}", s.thresholds))
    };
    assert_eq!(observed("iterations{flow:shop}"), f.iterations as f64);
    let health = s.endpoints.get("health").map_or(0, |e| e.requests);
    assert_eq!(observed("iterations"), (f.iterations + health) as f64);
    let d = f.iteration_duration_ms.as_ref().unwrap();
    assert!((observed("iteration_duration{scenario:shop}") - d.p95).abs() < 0.01);
    let steps: u64 = f.steps.iter().map(|st| s.endpoints[st].requests).sum();
    assert_eq!(observed("http_reqs{flow:shop}"), steps as f64);
    assert!(f.iterations > 20, "{f:?}");
    assert_eq!(f.failed_iterations, 0);
    assert_eq!(f.vus, 8);
    let d = f.iteration_duration_ms.as_ref().unwrap();
    assert!(d.p50 > 0.0 && d.p50 <= d.p99);
    // every step ran at least once per completed iteration; the totals add up
    for step in &f.steps {
        assert!(s.endpoints[step].requests >= f.iterations, "{step}");
        assert_eq!(s.endpoints[step].vus, 8, "{step} shows its flow's VUs");
    }
    let sum: u64 = s.endpoints.values().map(|e| e.requests).sum();
    assert_eq!(sum, s.totals.requests);
    assert_eq!(sum, steps + health);
    // a step's checks judge its responses
    let login = &s.endpoints["shop.login"];
    assert_eq!(
        login.checks["token"].passes, login.requests,
        "{:?}",
        login.checks
    );
    assert_eq!(login.checks["cookie"].passes, login.requests);
    assert!(s.timeline.iter().any(|t| t.flows["shop"].iterations > 0));
    assert!(text.contains("iteration ms"), "{text}");
}

#[test]
fn without_a_token_steps_get_401_and_the_iteration_stops_there() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let config = format!(
        r#"{{"target": "{}", "threads": 1,
          "stages": [{{"duration": "0s", "target": 2}}, {{"duration": "1s", "target": 2}}],
          "flows": [{{"name": "shop", "cookies": false, "steps": [
            {{"name": "login", "method": "POST", "path": "/api/login"}},
            {{"name": "product", "path": "/api/products/1"}},
            {{"name": "cart", "method": "POST", "path": "/api/cart"}}]}}]}}"#,
        gw.url()
    );
    let (s, _, text) = run(tmp.path(), &config);
    let f = &s.flows["shop"];
    assert_eq!(f.iterations, 0, "{text}");
    assert!(f.failed_iterations > 10, "{f:?}");
    let product = &s.endpoints["shop.product"];
    assert_eq!(product.errors, product.requests);
    assert_eq!(product.status_codes["401"], product.requests);
    assert_eq!(s.endpoints["shop.cart"].requests, 0, "never reached");
    assert_eq!(s.endpoints["shop.login"].errors, 0);
}

#[test]
fn a_capture_that_finds_nothing_is_a_capture_error() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let config = format!(
        r#"{{"target": "{}", "threads": 1,
          "stages": [{{"duration": "0s", "target": 2}}, {{"duration": "1s", "target": 2}}],
          "flows": [{{"name": "shop", "steps": [
            {{"name": "login", "method": "POST", "path": "/api/login", "capture": {{"t": {{"json": "/tokn"}}}}}},
            {{"name": "product", "path": "/api/products/1", "headers": {{"authorization": "Bearer {{{{vars.t}}}}"}}}}]}}]}}"#,
        gw.url()
    );
    let (s, _, text) = run(tmp.path(), &config);
    let login = &s.endpoints["shop.login"];
    assert!(login.requests > 0);
    assert_eq!(login.error_kinds["capture"], login.requests, "{text}");
    assert_eq!(
        login.status_codes["200"], login.requests,
        "the response itself was fine"
    );
    assert_eq!(s.endpoints["shop.product"].requests, 0);
    assert_eq!(s.flows["shop"].failed_iterations, login.requests);
    let logs =
        std::fs::read_to_string(only_run(&tmp.path().join("runs")).join("logs.txt")).unwrap();
    assert!(
        logs.contains("first capture error: t (json \"/tokn\") found nothing"),
        "{logs}"
    );
}

#[test]
fn config_errors_name_the_field_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let config = r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 1}],
      "flows": [{"name": "f", "steps": [
        {"name": "a", "path": "/a", "capture": {"token": {"json": "/token"}}},
        {"name": "b", "path": "/b", "headers": {"authorization": "Bearer {{vars.tokn}}"}}]}]}"#;
    let runs = tmp.path().join("runs");
    let out = run_with_config(config, &tmp.path().join("c.json"), &runs, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("flows[0].steps[1].headers.authorization: unknown variable \"vars.tokn\""),
        "{err}"
    );
    assert!(!runs.exists() || std::fs::read_dir(&runs).unwrap().next().is_none());
}

/// Issue #27: a data file that is `/dev/zero` aborted the engine (`.csv`)
/// or grew to 2 GB (`.json`); one that is a FIFO with no writer blocked.
/// Each is refused at once, naming the field and the file.
#[test]
fn a_data_file_that_is_a_device_or_a_fifo_is_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", tmp.path().join("zero.csv")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", tmp.path().join("zero.json")).unwrap();
    let fifo = tmp.path().join("rows.csv");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success());
    for (file, why) in [
        ("zero.csv", "is a device, not a regular file"),
        ("zero.json", "is a device, not a regular file"),
        ("rows.csv", "is a FIFO (named pipe), not a regular file"),
    ] {
        let config = format!(
            r#"{{"target": "http://127.0.0.1:9", "duration": "1s",
              "data": {{"u": {{"file": "{file}"}}}},
              "endpoints": [{{"name": "e", "path": "/{{{{data.u.id}}}}", "rate": 1}}]}}"#
        );
        let c = tmp.path().join("c.json");
        std::fs::write(&c, config).unwrap();
        let runs = tmp.path().join("runs");
        let out = userflux::output_within(
            userflux::engine()
                .args(["run", "-q", "--config"])
                .arg(&c)
                .arg("--runs-dir")
                .arg(&runs),
            Duration::from_secs(60),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        let want = format!("data.u.file: {}: {why}", tmp.path().join(file).display());
        assert!(err.contains(&want), "{want:?} not in {err}");
        assert!(!runs.exists());
    }
}

#[test]
fn an_open_model_flow_starts_iterations_on_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    // 40 iterations a second for 2 s: 80 iterations of three steps, each
    // started at its time whatever the steps take
    let config = format!(
        r#"{{"target": "{}", "threads": 2, "duration": "2s",
          "flows": [{{"name": "shop", "rate": 40, "pre_allocated_vus": 4, "max_vus": 20, "steps": [
            {{"name": "login", "method": "POST", "path": "/api/login", "capture": {{"token": {{"json": "/token"}}}}}},
            {{"name": "product", "path": "/api/products/{{{{seq}}}}", "headers": {{"authorization": "Bearer {{{{vars.token}}}}"}}, "think_time": "20ms"}},
            {{"name": "cart", "method": "POST", "path": "/api/cart"}}]}}]}}"#,
        gw.url()
    );
    let (s, code, text) = run(tmp.path(), &config);
    assert_eq!(code, 0, "{text}");
    let f = &s.flows["shop"];
    assert_eq!(
        f.iterations + f.failed_iterations + f.interrupted_iterations,
        80,
        "{f:?}"
    );
    assert_eq!(f.failed_iterations, 0, "{text}");
    assert_eq!(s.totals.errors, 0, "{text}");
    assert_eq!(s.endpoints["shop.login"].dropped, 0);
    assert_eq!(s.endpoints["shop.login"].requests, 80);
    // think time inside the iteration counts in its duration
    assert!(f.iteration_duration_ms.as_ref().unwrap().p50 >= 20.0);
}

#[test]
fn the_quick_form_url_takes_templates() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Scripted::start(Arc::new(|_| ok("", "ok")));
    let out = userflux::engine()
        .args(["run", "-q", "-c", "2", "-n", "50", "--runs-dir"])
        .arg(tmp.path().join("runs"))
        .arg(format!(
            "{}/t/{{{{seq}}}}?r={{{{rand_int(1,9)}}}}",
            server.url()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paths: BTreeSet<String> = server.seen().into_iter().map(|s| s.path).collect();
    let want: BTreeSet<String> = (0..50).map(|i| format!("/t/{i}")).collect();
    let got: BTreeSet<String> = paths
        .iter()
        .map(|p| p.split('?').next().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
    let out = userflux::engine()
        .args(["run", "-q", "-d", "1s", "--runs-dir"])
        .arg(tmp.path().join("bad"))
        .arg(format!("{}/x/{{{{nope}}}}", server.url()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("URL: unknown variable \"nope\""), "{err}");
    assert!(!tmp.path().join("bad").exists());
}

#[test]
fn an_iteration_whose_step_the_end_cuts_off_is_interrupted_not_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Scripted::start(Arc::new(|r: &Seen| {
        if r.path == "/hang" {
            std::thread::sleep(Duration::from_secs(5));
        }
        ok("", "ok")
    }));
    let config = format!(
        r#"{{"target": "{}", "threads": 1, "graceful_stop": "100ms",
          "stages": [{{"duration": "0s", "target": 2}}, {{"duration": "1s", "target": 2}}],
          "flows": [{{"name": "f", "steps": [{{"name": "a", "path": "/a"}}, {{"name": "hang", "path": "/hang"}}]}}]}}"#,
        server.url()
    );
    let (s, _, text) = run(tmp.path(), &config);
    let f = &s.flows["f"];
    assert_eq!(f.interrupted_iterations, 2, "{f:?}\n{text}");
    assert_eq!(f.failed_iterations, 0);
    assert_eq!(f.iterations, 0);
    assert_eq!(s.endpoints["f.hang"].error_kinds["interrupted"], 2);
}

/// An iteration under way when the run ends (or when its VU is ramped
/// down) finishes its steps within the graceful stop, as k6's gracefulStop
/// and gracefulRampDown let it; the graceful stop running out cuts it off.
#[test]
fn iterations_under_way_finish_within_the_graceful_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Scripted::start(Arc::new(|_| ok("", "ok")));
    // each iteration: /a, 1 s of think time (a step's comes after it), /b; every stop and
    // ramp-down falls half-way through a think (0.5 s, 1.5 s), whatever the requests take
    let config = |grace: &str, stages: &str| {
        format!(
            r#"{{"target": "{}", "threads": 1, "graceful_stop": "{grace}", "stages": {stages},
              "flows": [{{"name": "f", "steps": [
                {{"name": "a", "path": "/a", "think_time": "1s"}}, {{"name": "b", "path": "/b"}}]}}]}}"#,
            server.url()
        )
    };
    let hold3 = r#"[{"duration": "0s", "target": 3}, {"duration": "1500ms", "target": 3}]"#;
    let dir = tmp.path().join("finish");
    std::fs::create_dir(&dir).unwrap();
    let (s, code, text) = run(&dir, &config("3s", hold3));
    assert_eq!(code, 0, "{text}");
    let f = &s.flows["f"];
    let (a, b) = (s.endpoints["f.a"].requests, s.endpoints["f.b"].requests);
    assert_eq!(
        (f.interrupted_iterations, f.failed_iterations),
        (0, 0),
        "{f:?}\n{text}"
    );
    assert_eq!(a, b, "every iteration begun was finished\n{text}");
    assert_eq!(f.iterations, a);

    // a graceful stop shorter than the think time cuts the 3 iterations off
    let dir = tmp.path().join("cut");
    std::fs::create_dir(&dir).unwrap();
    let (s, code, text) = run(&dir, &config("50ms", hold3));
    assert_eq!(code, 0, "{text}");
    let f = &s.flows["f"];
    let (a, b) = (s.endpoints["f.a"].requests, s.endpoints["f.b"].requests);
    assert_eq!(f.interrupted_iterations, 3, "{f:?}\n{text}");
    assert_eq!(a, b + 3, "{text}");
    assert_eq!(f.iterations, b);
    assert_eq!(
        s.totals.errors, 0,
        "no request was cut off, only iterations"
    );

    // ramped down from 4 VUs to 1 mid-iteration: the 3 leaving VUs finish first
    let ramp = r#"[{"duration": "0s", "target": 4}, {"duration": "1500ms", "target": 4},
                   {"duration": "0s", "target": 1}, {"duration": "1s", "target": 1}]"#;
    let dir = tmp.path().join("ramp");
    std::fs::create_dir(&dir).unwrap();
    let (s, code, text) = run(&dir, &config("3s", ramp));
    assert_eq!(code, 0, "{text}");
    let f = &s.flows["f"];
    let (a, b) = (s.endpoints["f.a"].requests, s.endpoints["f.b"].requests);
    assert_eq!(f.interrupted_iterations, 0, "{f:?}\n{text}");
    assert_eq!(a, b, "{text}");
    assert_eq!(f.vus, 1);

    // graceful_ramp_down bounds the leaving: 1 s of think, ramped down 0.5 s in
    // with 100 ms to finish: the 3 leaving VUs start no /b (the one left does)
    let slow = config("3s", r#"[{"duration": "0s", "target": 4}, {"duration": "500ms", "target": 4},
                                {"duration": "0s", "target": 1}, {"duration": "1500ms", "target": 1}]"#)
        .replacen("\"stages\"", "\"graceful_ramp_down\": \"100ms\", \"stages\"", 1);
    let dir = tmp.path().join("ramp-bounded");
    std::fs::create_dir(&dir).unwrap();
    let (s, code, text) = run(&dir, &slow);
    assert_eq!(code, 0, "{text}");
    let f = &s.flows["f"];
    let (a, b) = (s.endpoints["f.a"].requests, s.endpoints["f.b"].requests);
    assert_eq!(f.interrupted_iterations, 3, "{f:?}\n{text}");
    assert_eq!(a, b + 3, "{text}");
    assert_eq!(s.totals.errors, 0);
}

/// Issue #27: a flow step that fails on the connection (the server closes
/// it unanswered) ends the iteration, and the VU waits its think time and
/// the consecutive-failure back-off before the next one, as a failing
/// endpoint does. It used to restart at once: 516 iterations in 2 s with a
/// 100 ms think time.
#[test]
fn a_failing_step_is_paced_by_think_time_and_back_off_not_retried_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Scripted::start(Arc::new(|r: &Seen| {
        if r.path == "/b" {
            String::new() // closed without an answer
        } else {
            ok("", "ok")
        }
    }));
    let config = |url: String| {
        format!(
            r#"{{"target": "{url}", "threads": 1,
              "stages": [{{"duration": "0s", "target": 1}}, {{"duration": "2s", "target": 1}}],
              "flows": [{{"name": "f", "think_time": "100ms",
                "steps": [{{"name": "a", "path": "/a"}}, {{"name": "b", "path": "/b"}}]}}]}}"#
        )
    };
    let (s, _, text) = run(tmp.path(), &config(server.url()));
    let f = &s.flows["f"];
    // at most one iteration per think time (the back-off only adds to it)
    let most = 2000 / 100 + 1;
    let started = f.failed_iterations + f.iterations + f.interrupted_iterations;
    assert!(
        started <= most,
        "{started} iterations in 2 s: {f:?}\n{text}"
    );
    assert!(f.failed_iterations >= 2, "{f:?}\n{text}");
    assert_eq!(f.iterations, 0);
    let seen = server.seen();
    let a = seen.iter().filter(|r| r.path == "/a").count() as u64;
    assert!(a <= most, "{a} logins");
    assert_eq!(s.endpoints["f.b"].error_kinds["read"], f.failed_iterations);
    // a step failing by its status is paced the same way
    let tmp = tempfile::tempdir().unwrap();
    let server = Scripted::start(Arc::new(|r: &Seen| {
        if r.path == "/b" {
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".into()
        } else {
            ok("", "ok")
        }
    }));
    let (s, _, text) = run(tmp.path(), &config(server.url()));
    let f = &s.flows["f"];
    assert!(
        f.failed_iterations <= most && f.failed_iterations >= 2,
        "{f:?}\n{text}"
    );
}

/// A cookie without `Path` takes the directory of the path its request
/// went to, as rendered from the step's template (issue #27: it was taken
/// from the template's text).
#[test]
fn a_cookies_default_path_comes_from_the_rendered_path() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Scripted::start(Arc::new(|r: &Seen| {
        if r.path.starts_with("/set/") {
            ok("Set-Cookie: c=1\r\n", "ok")
        } else {
            ok("", "ok")
        }
    }));
    let config = format!(
        r#"{{"target": "{}", "threads": 1, "requests": 6,
          "stages": [{{"duration": "0s", "target": 1}}, {{"duration": "10s", "target": 1}}],
          "flows": [{{"name": "f", "steps": [
            {{"name": "set", "path": "/set/{{{{vu}}}}/x"}},
            {{"name": "in", "path": "/set/{{{{vu}}}}/y"}},
            {{"name": "out", "path": "/other"}}]}}]}}"#,
        server.url()
    );
    let (s, code, text) = run(tmp.path(), &config);
    assert_eq!(code, 0, "{text}");
    assert_eq!(s.totals.requests, 6);
    for r in server.seen() {
        let cookie = r.headers.get("cookie").map(String::as_str);
        match r.path.as_str() {
            p if p.ends_with("/y") => assert_eq!(cookie, Some("c=1"), "{p}"),
            p => assert_eq!(cookie, None, "{p}"),
        }
    }
}

/// A cookie goes back only to the host that set it: a step on another host
/// name (here `localhost`, the same server) gets none of the first host's
/// cookies; a later step on the first host gets them again (issue #27,
/// from a first user's try: the session went to every host).
#[test]
fn a_cookie_goes_back_only_to_the_host_that_set_it() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Scripted::start(Arc::new(|r: &Seen| {
        if r.path == "/login" {
            ok("Set-Cookie: sid=1; Path=/\r\n", "ok")
        } else {
            ok("", "ok")
        }
    }));
    let port = server.url().rsplit(':').next().unwrap().to_string();
    let config = format!(
        r#"{{"target": "{}", "threads": 1, "requests": 3,
          "stages": [{{"duration": "0s", "target": 1}}, {{"duration": "10s", "target": 1}}],
          "flows": [{{"name": "f", "steps": [
            {{"name": "login", "path": "/login"}},
            {{"name": "elsewhere", "url": "http://localhost:{port}/elsewhere"}},
            {{"name": "back", "path": "/back"}}]}}]}}"#,
        server.url()
    );
    let (s, code, text) = run(tmp.path(), &config);
    assert_eq!(
        (code, s.totals.requests, s.totals.errors),
        (0, 3, 0),
        "{text}"
    );
    let cookie = |path: &str| {
        let seen = server.seen();
        let r = seen.iter().find(|r| r.path == path).expect(path).clone();
        r.headers.get("cookie").cloned()
    };
    assert_eq!(cookie("/elsewhere"), None);
    assert_eq!(cookie("/back").as_deref(), Some("sid=1"));
}
