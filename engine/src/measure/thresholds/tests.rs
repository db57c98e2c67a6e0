//! The thresholds' unit tests: grammar, spec and evaluation together
//! (one view of a run serves all three).

use super::eval::without;
use super::*;
use crate::stats::{EndpointStats, new_histogram};

fn parse(key: &str, expr: &str) -> Result<Threshold, String> {
    let known = Known {
        endpoints: &["users", "orders"],
        ..Known::default()
    };
    Threshold::parse(key, &ThresholdSpec::Expr(expr.into()), &known)
}

#[test]
fn a_method_tag_names_a_method_some_row_sends() {
    let spec = ThresholdSpec::Expr("rate<0.1".into());
    let known = Known {
        methods: &["GET", "userflux.demo.users.Users/GetUser"],
        ..Known::default()
    };
    let parse = |name: &str| Threshold::parse(name, &spec, &known);
    for ok in [
        "http_req_failed{method:get}",
        "http_req_failed{method:userflux.demo.users.Users/GetUser}",
        "http_req_failed{method:/userflux.demo.users.Users/GetUser}",
    ] {
        parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    // a typo (the package left out, ghz's dot form, POST) selects nothing
    for typo in [
        "users.Users/GetUser",
        "userflux.demo.users.Users.GetUser",
        "POST",
    ] {
        let e = parse(&format!("http_req_failed{{method:{typo}}}")).unwrap_err();
        assert_eq!(
            e,
            format!(
                "no endpoint sends method \"{typo}\" (they send: GET, userflux.demo.users.Users/GetUser)"
            )
        );
    }
}

#[test]
fn flow_tags_name_flows() {
    let spec = ThresholdSpec::Expr("count>0".into());
    let known = Known {
        endpoints: &["shop.login"],
        flows: &["shop"],
        checks: &[],
        methods: &[],
    };
    let parse = |name| Threshold::parse(name, &spec, &known);
    for name in ["iterations{flow:shop}", "http_reqs{scenario:shop}"] {
        let t = parse(name).unwrap();
        assert_eq!(t.filter.flow.as_deref(), Some("shop"), "{name}");
    }
    assert_eq!(
        parse("iterations{flow:nope}").unwrap_err(),
        "no flow named \"nope\""
    );
    let e = Threshold::parse(
        "iteration_duration{flow:shop}",
        &spec,
        &Known {
            flows: &["shop"],
            ..Known::default()
        },
    )
    .unwrap_err();
    assert!(e.contains("avg, min, max, med, p(N)"), "{e}");
}

#[test]
fn parses_valid_expressions() {
    let cases: &[(&str, &str, Aggregation, Op, f64)] = &[
        (
            "http_req_duration",
            "p(95)<200",
            Aggregation::P(95.0),
            Op::Lt,
            200.0,
        ),
        (
            "http_req_duration",
            " p(99.9) <= 1000 ",
            Aggregation::P(99.9),
            Op::Le,
            1000.0,
        ),
        (
            "http_req_duration",
            "avg<50.5",
            Aggregation::Avg,
            Op::Lt,
            50.5,
        ),
        ("http_req_duration", "med>=1", Aggregation::Med, Op::Ge, 1.0),
        (
            "http_req_duration",
            "min > 0",
            Aggregation::Min,
            Op::Gt,
            0.0,
        ),
        ("http_req_duration", "max!=7", Aggregation::Max, Op::Ne, 7.0),
        (
            "http_req_failed",
            "rate<0.01",
            Aggregation::Rate,
            Op::Lt,
            0.01,
        ),
        ("http_reqs", "count>=100", Aggregation::Count, Op::Ge, 100.0),
        ("http_reqs", "rate>10", Aggregation::Rate, Op::Gt, 10.0),
        (
            "dropped_iterations",
            "count==0",
            Aggregation::Count,
            Op::Eq,
            0.0,
        ),
        (
            "http_req_duration{endpoint:users}",
            "p(99)<300",
            Aggregation::P(99.0),
            Op::Lt,
            300.0,
        ),
    ];
    for (key, expr, agg, op, v) in cases {
        let t = parse(key, expr).unwrap_or_else(|e| panic!("{key} {expr}: {e}"));
        assert_eq!(
            (t.aggregation, t.op, t.value),
            (*agg, *op, *v),
            "{key} {expr}"
        );
    }
    assert_eq!(
        parse("http_req_duration{endpoint:users}", "p(99)<1")
            .unwrap()
            .filter
            .endpoint
            .as_deref(),
        Some("users")
    );
}

#[test]
fn rejects_invalid_ones_with_the_reason() {
    let cases = [
        ("http_req_durations", "p(95)<200", "unknown metric"),
        (
            "http_req_duration",
            "p95<200",
            "unknown aggregation \"p95\"",
        ),
        ("http_req_duration", "p(95)", "no comparison"),
        ("http_req_duration", "p(95)<abc", "\"abc\" is not a number"),
        ("http_req_duration", "p(101)<1", "between 0 and 100"),
        (
            "http_req_duration",
            "rate<1",
            "http_req_duration takes avg, min, max, med, p(N)",
        ),
        ("http_req_failed", "p(95)<1", "http_req_failed takes rate"),
        ("http_reqs", "avg<1", "http_reqs takes count, rate"),
        (
            "http_req_duration{endpoint:nope}",
            "p(95)<1",
            "no endpoint named \"nope\"",
        ),
        (
            "http_req_duration{color:red}",
            "p(95)<1",
            "unknown tag \"color\"",
        ),
        (
            "http_req_waiting{status:200}",
            "p(95)<1",
            "phases are not kept per status code",
        ),
        (
            "http_req_duration{status:42}",
            "p(95)<1",
            "not an HTTP status",
        ),
        (
            "http_req_duration{expected_response:yes}",
            "p(95)<1",
            "must be true or false",
        ),
        (
            "http_req_duration{group:x}",
            "p(95)<1",
            "unknown tag \"group\" (supported: endpoint",
        ),
        (
            "http_req_duration{name:nope}",
            "p(95)<1",
            "no endpoint named \"nope\"",
        ),
        ("http_reqs{status:42}", "count>1", "not an HTTP status"),
        ("my_counter", "count>1", "Userflux has no custom metrics"),
        (
            "http_reqs{endpoint:users,endpoint:orders}",
            "count>1",
            "tag \"endpoint\" given twice",
        ),
        (
            "http_reqs{grpc_status:FINE}",
            "count>1",
            "\"FINE\" is not a gRPC status",
        ),
        (
            "http_req_waiting{grpc_status:OK}",
            "p(95)<1",
            "http_req_waiting is not kept per gRPC status",
        ),
        (
            "data_sent{grpc_status:OK}",
            "count>1",
            "data_sent is not kept per gRPC status",
        ),
        (
            "grpc_req_duration{grpc_status:OK,status:200}",
            "p(95)<1",
            "grpc_status goes alone",
        ),
        (
            "http_reqs{expected_response:true,grpc_status:OK}",
            "count>1",
            "grpc_status goes alone",
        ),
        ("checks", "p(95)<1", "checks takes rate"),
        ("checks{check:nope}", "rate>0.9", "no check named \"nope\""),
        (
            "checks{status:200}",
            "rate>0.9",
            "checks are counted per endpoint and check",
        ),
        (
            "vus{name:users}",
            "value<5",
            "vus is for the whole run: it takes no tags",
        ),
        ("vus", "p(95)<5", "vus takes value, min, max"),
        ("http_req_duration{endpoint:users", "p(95)<1", "unclosed"),
        // tags a metric would ignore are refused, never ignored
        (
            "server_timing{metric:a,expected_response:true}",
            "p(95)<1",
            "server_timing is not kept per response status; tag by endpoint",
        ),
        (
            "data_received{status:200}",
            "count>1",
            "data_received is not kept per response status",
        ),
        (
            "dropped_iterations{expected_response:false}",
            "count>1",
            "dropped_iterations is not kept per response status",
        ),
        (
            "iterations{status:200}",
            "count>1",
            "iterations is not kept per response status; http_reqs takes it",
        ),
        (
            "iteration_duration{expected_response:true}",
            "p(95)<1",
            "http_req_duration takes expected_response",
        ),
    ];
    for (key, expr, want) in cases {
        let e = parse(key, expr).unwrap_err();
        assert!(e.contains(want), "{key} {expr}: {e}");
    }
}

#[test]
fn evaluates_from_histograms_and_counts() {
    let mut h = crate::stats::new_histogram();
    for v in 1..=100u64 {
        h.record(v * 1000).unwrap(); // 1..100 ms
    }
    let m = Measured {
        checks: (0, 0),
        latency: &h,
        requests: 200,
        failed: 3,
        dropped: 5,
        bytes_out: 1000,
        bytes_in: 5000,
        seconds: 10.0,
        vus: Some((4.0, 1.0, 8.0)),
        vus_max: 10.0,
    };
    let check = |k: &str, e: &str| parse(k, e).unwrap().check(&m);
    // HDR keeps 3 significant digits: 95 ms reads as up to 95.1 ms
    let near = |got: Option<f64>, want: f64| (got.unwrap() - want).abs() <= want * 1e-3;
    let (p95, ok) = check("http_req_duration", "p(95)<96");
    assert!(near(p95, 95.0) && ok, "{p95:?}");
    assert!(!check("http_req_duration", "p(95)<95").1);
    assert!(near(check("http_req_duration", "med<=51").0, 50.0));
    assert_eq!(check("http_req_failed", "rate<0.01"), (Some(0.015), false));
    assert_eq!(check("http_reqs", "rate>=20"), (Some(20.0), true));
    assert_eq!(check("dropped_iterations", "count==0"), (Some(5.0), false));
    assert_eq!(check("vus", "value==4"), (Some(4.0), true));
    assert_eq!(check("vus", "min>=2"), (Some(1.0), false));
    assert_eq!(check("vus", "max<=8"), (Some(8.0), true));
    assert_eq!(check("vus_max", "value<10"), (Some(10.0), false));
    let empty = crate::stats::new_histogram();
    let none = Measured {
        checks: (0, 0),
        latency: &empty,
        requests: 0,
        failed: 0,
        dropped: 0,
        bytes_out: 0,
        bytes_in: 0,
        seconds: 1.0,
        vus: None,
        vus_max: 0.0,
    };
    assert_eq!(
        parse("http_req_duration", "p(99)<1").unwrap().check(&none),
        (None, true)
    );
}

fn view<'a>(
    name: &'a str,
    stats: &'a EndpointStats,
    accept: &'a crate::stats::StatusSet,
) -> EndpointView<'a> {
    EndpointView {
        name,
        stats,
        open: false,
        method: if name == "orders" { "POST" } else { "GET" },
        grpc_method: None,
        url: if name == "orders" {
            "http://127.0.0.1:1/api/orders"
        } else {
            "http://127.0.0.1:1/api/users"
        },
        path: if name == "orders" {
            "/api/orders"
        } else {
            "/api/users"
        },
        accept,
        flow: None,
        checks: &[],
        // (orders stands for a gRPC endpoint in `grpc_req_duration`)
        grpc: name == "orders",
    }
}

/// k6's spellings, as users copy them from k6's documentation.
#[test]
fn accepts_k6s_grammar_and_says_what_is_wrong() {
    let ok: &[(&str, &str)] = &[
        ("http_req_duration{expected_response:true}", "p(95)<200"),
        ("http_req_duration{name:users}", "p(99)<300"),
        ("http_req_duration{scenario:orders}", "avg<100"),
        (
            "http_req_duration{method:POST, url:/api/orders}",
            "p(90)<50",
        ),
        ("http_reqs{status:200}", "count>10"),
        ("http_req_failed{status:503}", "rate<0.5"),
        ("http_req_failed{expected_response:false}", "rate===1"),
        ("iterations", "count>=100"),
        ("iteration_duration", "p(95)<1000"),
        ("data_received", "count>0"),
        ("data_sent", "rate>1"),
        ("http_reqs", "count!==0"),
    ];
    for (key, expr) in ok {
        parse(key, expr).unwrap_or_else(|e| panic!("{key} {expr}: {e}"));
    }
    assert_eq!(parse("http_reqs", "count===5").unwrap().op, Op::Eq);
    // the object form, k6's keys and ours, and its errors
    for (json, want) in [
        (
            r#"{"threshold": "p(99)<10", "abortOnFail": true, "delayAbortEval": "10s"}"#,
            Ok((true, 10)),
        ),
        (
            r#"{"threshold": "p(99)<10", "abort_on_fail": true}"#,
            Ok((true, 0)),
        ),
        (
            r#"{"threshold": "p(99)<10", "abortonfail": true}"#,
            Err(
                "unknown key \"abortonfail\" in a threshold object (known: threshold, abortOnFail, delayAbortEval",
            ),
        ),
        (r#"{"abortOnFail": true}"#, Err("needs \"threshold\"")),
        (r#"{"threshold": 5}"#, Err("threshold: expected a string")),
        (
            r#"{"threshold": "p(99)<1", "delayAbortEval": "soon"}"#,
            Err("delayAbortEval: invalid duration"),
        ),
        ("7", Err("a threshold is a string such as")),
    ] {
        let got = serde_json::from_str::<ThresholdSpec>(json).map_err(|e| e.to_string());
        match (got, want) {
            (Ok(ThresholdSpec::Full(o)), Ok((abort, secs))) => {
                assert_eq!(
                    (o.abort_on_fail, o.delay_abort_eval.0.as_secs()),
                    (abort, secs),
                    "{json}"
                );
            }
            (Err(e), Err(want)) => {
                assert!(e.contains(want), "{json}: {e}");
                assert!(
                    !e.contains("untagged") && !e.contains("did not match any variant"),
                    "{e}"
                );
            }
            (got, want) => panic!("{json}: {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn tags_select_endpoints_and_responses() {
    let accept = crate::stats::StatusSet::from_expect(&[]);
    let mut users = EndpointStats::new();
    for _ in 0..97 {
        users.record_response(2_000, None, 200, None);
    }
    for _ in 0..3 {
        users.record_response(90_000, None, 503, Some(crate::stats::ErrorKind::Status));
    }
    users.bytes_in = 12_345;
    let mut orders = EndpointStats::new();
    orders.record_response(50_000, None, 201, None);
    let views = [
        view("users", &users, &accept),
        view("orders", &orders, &accept),
    ];
    let eval = |k: &str, e: &str| {
        evaluate(&parse(k, e).unwrap(), &views, &RunView::seconds(10.0)).observed
    };
    // grpc_req_duration reads the gRPC endpoints only (orders' 50 ms)
    assert_eq!(eval("grpc_req_duration", "max<1").unwrap().round(), 50.0);
    assert!(eval("http_req_duration", "max<1").unwrap() > 89.0);
    assert_eq!(eval("grpc_req_duration{name:users}", "max<1"), None);
    // expected_response:true leaves the 503s' 90 ms out of the latency
    assert!(eval("http_req_duration{name:users}", "max<1").unwrap() > 89.0);
    assert!(
        eval(
            "http_req_duration{name:users,expected_response:true}",
            "max<1"
        )
        .unwrap()
            < 2.1
    );
    assert!(eval("http_req_duration{expected_response:false}", "min<1").unwrap() > 89.0);
    assert_eq!(
        eval("http_reqs{expected_response:true}", "count>0"),
        Some(98.0)
    );
    assert_eq!(
        eval("http_req_failed{expected_response:true}", "rate<1"),
        Some(0.0)
    );
    assert_eq!(eval("http_reqs{status:503}", "count>0"), Some(3.0));
    assert_eq!(eval("http_req_failed{status:503}", "rate<1"), Some(1.0));
    assert_eq!(eval("http_reqs{method:POST}", "count>0"), Some(1.0));
    assert_eq!(eval("http_reqs{url:/api/users}", "count>0"), Some(100.0));
    assert_eq!(
        eval("http_reqs{url:http://127.0.0.1:1/api/orders}", "count>0"),
        Some(1.0)
    );
    assert_eq!(eval("data_received{name:users}", "count>0"), Some(12_345.0));
    assert_eq!(eval("iterations", "rate>0"), Some(10.1));
}

#[test]
fn each_threshold_says_which_histogram_it_reads() {
    for (key, reads) in [
        ("http_req_duration", Some(Reads::Latency)),
        (
            "http_req_duration{expected_response:true}",
            Some(Reads::Expected),
        ),
        (
            "http_req_duration{expected_response:false}",
            Some(Reads::Unexpected),
        ),
        ("iteration_duration{endpoint:users}", Some(Reads::Latency)),
        ("http_req_waiting", Some(Reads::Waiting)),
        ("http_req_blocked", Some(Reads::Blocked)),
        ("http_req_sending", Some(Reads::Sending)),
        ("http_req_receiving", Some(Reads::Receiving)),
        ("http_req_duration{status:200}", Some(Reads::Status(200))),
        (
            "http_req_duration{status:503,expected_response:false}",
            Some(Reads::Status(503)),
        ),
        ("http_reqs{status:200}", None),
        ("http_req_connecting", Some(Reads::Connecting)),
        ("http_req_tls_handshaking", Some(Reads::TlsHandshaking)),
        ("server_timing{metric:db}", Some(Reads::ServerTiming("db"))),
        ("http_reqs{expected_response:true}", None),
    ] {
        let t = parse(key, if reads.is_some() { "max<1" } else { "count<1" }).unwrap();
        assert_eq!(t.reads(), reads, "{key}");
    }
}

/// The expected responses' latency is all less the unexpected ones'
/// (recorded only for those, off the hot path); never below zero, even
/// from a damaged merged file, where HdrHistogram's `subtract` panics.
#[test]
fn expected_is_all_less_unexpected_saturating() {
    let mut all = new_histogram();
    for v in [1_000, 2_000, 2_000, 90_000] {
        all.record(v).unwrap();
    }
    let mut bad = new_histogram();
    bad.record(2_000).unwrap();
    bad.record(90_000).unwrap();
    let ok = without(&all, &bad);
    assert_eq!((ok.len(), ok.min(), ok.max()), (2, 1_000, 2_000));
    let mut wrong = new_histogram();
    wrong.record_n(1_000, 5).unwrap();
    wrong.record_n(3_600_000_000, 1).unwrap(); // beyond all's range
    let ok = without(&all, &wrong);
    assert_eq!((ok.len(), ok.min()), (3, 2_000));
    assert!(without(&new_histogram(), &wrong).is_empty());
}

#[test]
fn server_timing_thresholds_name_their_metric() {
    let t = parse("server_timing{metric:payments}", "p(99)<20").unwrap();
    assert_eq!(
        (
            t.metric,
            t.filter.server_metric.as_deref(),
            t.filter.endpoint.as_deref()
        ),
        (Metric::ServerTiming, Some("payments"), None)
    );
    let t = parse("server_timing{endpoint:orders, metric:payments}", "avg<5").unwrap();
    assert_eq!(t.filter.endpoint.as_deref(), Some("orders"));
    assert_eq!(t.filter.server_metric.as_deref(), Some("payments"));
    for (key, expr, want) in [
        ("server_timing", "p(99)<1", "name the Server-Timing metric"),
        (
            "server_timing{metric:}",
            "p(99)<1",
            "unknown tag \"metric\"",
        ),
        (
            "server_timing{metric:a}",
            "rate<1",
            "server_timing takes avg",
        ),
        (
            "http_req_duration{metric:a}",
            "p(99)<1",
            "unknown tag \"metric\"",
        ),
        (
            "server_timing{metric:a,endpoint:nope}",
            "p(99)<1",
            "no endpoint named",
        ),
    ] {
        let e = parse(key, expr).unwrap_err();
        assert!(e.contains(want), "{key} {expr}: {e}");
    }
    // evaluated over the named metric of the endpoints it covers
    let mut a = EndpointStats::new();
    a.server_timing.record(b"payments;dur=10, db;dur=1");
    let mut b = EndpointStats::new();
    b.server_timing.record(b"payments;dur=30");
    let any = crate::stats::StatusSet::from_expect(&[]);
    let views = [view("users", &a, &any), view("orders", &b, &any)];
    let r = evaluate(
        &parse("server_timing{metric:payments}", "max<20").unwrap(),
        &views,
        &RunView::seconds(1.0),
    );
    assert!(!r.ok && (r.observed.unwrap() - 30.0).abs() < 0.05, "{r:?}");
    let t = parse("server_timing{endpoint:users,metric:payments}", "max<20").unwrap();
    assert!(evaluate(&t, &views, &RunView::seconds(1.0)).ok);
    let t = parse("server_timing{metric:nothing}", "max<20").unwrap();
    assert_eq!(evaluate(&t, &views, &RunView::seconds(1.0)).observed, None);
}

#[test]
fn object_form_carries_abort_settings() {
    let spec: ThresholdSpec = serde_json::from_str(
        r#"{"threshold": "p(99)<500", "abort_on_fail": true, "delay_abort_eval": "10s"}"#,
    )
    .unwrap();
    let t = Threshold::parse("http_req_duration", &spec, &Known::default()).unwrap();
    assert!(t.abort_on_fail);
    assert_eq!(t.delay_abort_eval, std::time::Duration::from_secs(10));
}
