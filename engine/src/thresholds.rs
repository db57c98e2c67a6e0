//! Thresholds in k6's grammar, so users can bring the ones they have:
//! `{"http_req_duration": ["p(95)<200"], "http_req_failed": ["rate<0.01"],
//! "http_req_duration{endpoint:users}": [{"threshold": "p(99)<300",
//! "abort_on_fail": true, "delay_abort_eval": "10s"}]}`.
//!
//! Parsing and evaluation are pure: [`Threshold::parse`] checks a metric
//! key and an expression; [`Threshold::observe`] reads the value from a
//! [`Measured`] view of the run (merged HDR histograms and counts).

use crate::duration::Dur;
use crate::stats::{EndpointStats, new_histogram};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A metric the engine measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Latency, ms (corrected for open-model endpoints).
    Duration,
    /// Share of failed requests.
    Failed,
    /// Requests.
    Reqs,
    /// Open-model sends that could not be made.
    Dropped,
    /// A `Server-Timing` metric's durations, ms (`{metric:NAME}` names it).
    ServerTiming,
}

impl Metric {
    fn parse(s: &str) -> Option<Metric> {
        Some(match s {
            "http_req_duration" => Metric::Duration,
            "http_req_failed" => Metric::Failed,
            "http_reqs" => Metric::Reqs,
            "dropped_iterations" => Metric::Dropped,
            "server_timing" => Metric::ServerTiming,
            _ => return None,
        })
    }

    fn aggregations(self) -> &'static str {
        match self {
            Metric::Duration | Metric::ServerTiming => "avg, min, max, med, p(N)",
            Metric::Failed => "rate",
            Metric::Reqs | Metric::Dropped => "count, rate",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Aggregation {
    Avg,
    Min,
    Max,
    Med,
    P(f64),
    Rate,
    Count,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// A threshold as written in a config: an expression, or the object form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ThresholdSpec {
    Expr(String),
    Full(ThresholdObject),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdObject {
    pub threshold: String,
    /// Stop the run as soon as the threshold fails.
    #[serde(default)]
    pub abort_on_fail: bool,
    /// Do not abort during this first part of the run.
    #[serde(default)]
    pub delay_abort_eval: Dur,
}

/// A parsed threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// The metric key as written, e.g. `http_req_duration{endpoint:users}`.
    pub key: String,
    pub expression: String,
    pub metric: Metric,
    /// Sub-metric: only this endpoint.
    pub endpoint: Option<String>,
    /// `server_timing{metric:NAME}`: the `Server-Timing` metric read.
    pub server_metric: Option<String>,
    pub aggregation: Aggregation,
    pub op: Op,
    pub value: f64,
    pub abort_on_fail: bool,
    pub delay_abort_eval: std::time::Duration,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.expression)
    }
}

/// What a threshold reads: merged over the whole run so far.
pub struct Measured<'a> {
    /// Latency (µs) for `http_req_duration`; the named metric's
    /// durations for `server_timing`.
    pub latency: &'a Histogram<u64>,
    pub requests: u64,
    pub failed: u64,
    pub dropped: u64,
    /// Seconds of load, for `rate` of counters.
    pub seconds: f64,
}

impl Threshold {
    /// Parses a metric key and one threshold of it. `endpoints` are the
    /// names a `{endpoint:NAME}` filter may use.
    pub fn parse(key: &str, spec: &ThresholdSpec, endpoints: &[&str]) -> Result<Threshold, String> {
        let (expr, abort, delay) = match spec {
            ThresholdSpec::Expr(e) => (e.as_str(), false, std::time::Duration::ZERO),
            ThresholdSpec::Full(o) => (o.threshold.as_str(), o.abort_on_fail, o.delay_abort_eval.0),
        };
        let (name, tags) = match key.split_once('{') {
            None => (key, ""),
            Some((name, rest)) => (
                name,
                rest.strip_suffix('}')
                    .ok_or_else(|| format!("unclosed '{{' in \"{key}\""))?,
            ),
        };
        let metric = Metric::parse(name.trim()).ok_or_else(|| {
            format!("unknown metric \"{name}\" (one of http_req_duration, http_req_failed, http_reqs, dropped_iterations, server_timing)")
        })?;
        let (mut endpoint, mut server_metric) = (None, None);
        for tag in tags.split(',').filter(|t| !t.trim().is_empty()) {
            let (tag, value) = tag
                .split_once(':')
                .ok_or_else(|| format!("expected {{TAG:VALUE}}, got {{{tag}}}"))?;
            let value = value.trim();
            match tag.trim() {
                "endpoint" if endpoints.contains(&value) => endpoint = Some(value.to_string()),
                "endpoint" => return Err(format!("no endpoint named \"{value}\"")),
                "metric" if metric == Metric::ServerTiming && !value.is_empty() => {
                    server_metric = Some(value.to_string());
                }
                other => {
                    let known = if metric == Metric::ServerTiming {
                        "endpoint and metric are supported"
                    } else {
                        "only endpoint is supported"
                    };
                    return Err(format!("unknown tag \"{other}\" ({known})"));
                }
            }
        }
        if metric == Metric::ServerTiming && server_metric.is_none() {
            return Err(format!(
                "\"{key}\": name the Server-Timing metric, e.g. server_timing{{metric:payments}}"
            ));
        }
        let (aggregation, op, value) = parse_expression(expr)?;
        let fits = match metric {
            Metric::Duration | Metric::ServerTiming => {
                matches!(
                    aggregation,
                    Aggregation::Avg
                        | Aggregation::Min
                        | Aggregation::Max
                        | Aggregation::Med
                        | Aggregation::P(_)
                )
            }
            Metric::Failed => aggregation == Aggregation::Rate,
            Metric::Reqs | Metric::Dropped => {
                matches!(aggregation, Aggregation::Count | Aggregation::Rate)
            }
        };
        if !fits {
            return Err(format!(
                "\"{expr}\": {name} takes {}",
                metric.aggregations()
            ));
        }
        Ok(Threshold {
            key: key.to_string(),
            expression: expr.to_string(),
            metric,
            endpoint,
            server_metric,
            aggregation,
            op,
            value,
            abort_on_fail: abort,
            delay_abort_eval: delay,
        })
    }

    /// The observed value; `None` when there is nothing to observe (no
    /// response for a latency aggregation).
    pub fn observe(&self, m: &Measured<'_>) -> Option<f64> {
        let ms = |us: u64| us as f64 / 1000.0;
        let h = m.latency;
        let per_second = |n: u64| {
            if m.seconds > 0.0 {
                n as f64 / m.seconds
            } else {
                0.0
            }
        };
        let durations = matches!(self.metric, Metric::Duration | Metric::ServerTiming);
        Some(match (self.metric, self.aggregation) {
            _ if durations && h.is_empty() => return None,
            (_, Aggregation::Avg) if durations => h.mean() / 1000.0,
            (_, Aggregation::Min) if durations => ms(h.min()),
            (_, Aggregation::Max) if durations => ms(h.max()),
            (_, Aggregation::Med) if durations => ms(h.value_at_quantile(0.5)),
            (_, Aggregation::P(p)) if durations => ms(h.value_at_quantile(p / 100.0)),
            (Metric::Failed, _) => {
                if m.requests == 0 {
                    0.0
                } else {
                    m.failed as f64 / m.requests as f64
                }
            }
            (Metric::Reqs, Aggregation::Count) => m.requests as f64,
            (Metric::Reqs, _) => per_second(m.requests),
            (Metric::Dropped, Aggregation::Count) => m.dropped as f64,
            (Metric::Dropped, _) => per_second(m.dropped),
            (Metric::Duration | Metric::ServerTiming, _) => return None,
        })
    }

    /// Whether the threshold holds; one with nothing observed holds (k6: a
    /// latency threshold with no requests is not failed by it).
    pub fn check(&self, m: &Measured<'_>) -> (Option<f64>, bool) {
        let observed = self.observe(m);
        (
            observed,
            observed.is_none_or(|v| self.op.holds(v, self.value)),
        )
    }
}

/// One endpoint's counts as thresholds see them.
pub struct EndpointView<'a> {
    pub name: &'a str,
    pub stats: &'a EndpointStats,
    /// Open model: its latency is the corrected one.
    pub open: bool,
}

/// The outcome of one threshold, as the summary records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ThresholdResult {
    /// The metric key as written (`http_req_duration{endpoint:users}`).
    pub metric: String,
    pub expression: String,
    /// The value measured (ms for durations); null when nothing was measured.
    pub observed: Option<f64>,
    pub ok: bool,
    /// This threshold failed during the run with `abort_on_fail` and stopped it.
    #[serde(default)]
    pub aborted: bool,
}

/// Evaluates `t` over the endpoints it covers; `seconds` is the load so far.
pub fn evaluate(t: &Threshold, endpoints: &[EndpointView<'_>], seconds: f64) -> ThresholdResult {
    let mut latency = new_histogram();
    let (mut requests, mut failed, mut dropped) = (0, 0, 0);
    for e in endpoints
        .iter()
        .filter(|e| t.endpoint.as_deref().is_none_or(|n| n == e.name))
    {
        match &t.server_metric {
            Some(name) => {
                if let Some((_, h)) = e.stats.server_timing.iter().find(|(n, _)| n == name) {
                    latency.add(h).expect("grows to fit");
                }
            }
            None => {
                if let Some(h) = e.stats.effective_latency(e.open) {
                    latency.add(h).expect("grows to fit");
                }
            }
        }
        requests += e.stats.requests;
        failed += e.stats.errors;
        dropped += e.stats.dropped;
    }
    let (observed, ok) = t.check(&Measured {
        latency: &latency,
        requests,
        failed,
        dropped,
        seconds,
    });
    ThresholdResult {
        metric: t.key.clone(),
        expression: t.expression.clone(),
        observed,
        ok,
        aborted: false,
    }
}

/// `p(99.9) < 300` → (P(99.9), Lt, 300).
fn parse_expression(expr: &str) -> Result<(Aggregation, Op, f64), String> {
    let e = expr.trim();
    let ops = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (at, sym, op) = ops
        .iter()
        .filter_map(|(s, op)| e.find(s).map(|i| (i, *s, *op)))
        .min_by_key(|(i, s, _)| (*i, std::cmp::Reverse(s.len())))
        .ok_or_else(|| format!("\"{expr}\": no comparison (one of <, <=, >, >=, ==, !=)"))?;
    let left = e[..at].trim();
    let right = e[at + sym.len()..].trim();
    let value: f64 = right
        .parse()
        .map_err(|_| format!("\"{expr}\": \"{right}\" is not a number"))?;
    if !value.is_finite() {
        return Err(format!("\"{expr}\": \"{right}\" is not a finite number"));
    }
    let aggregation = match left {
        "avg" => Aggregation::Avg,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        "med" => Aggregation::Med,
        "rate" => Aggregation::Rate,
        "count" => Aggregation::Count,
        _ => {
            let inner = left
                .strip_prefix("p(")
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("\"{expr}\": unknown aggregation \"{left}\" (avg, min, max, med, p(N), rate, count)"))?;
            let p: f64 = inner
                .trim()
                .parse()
                .map_err(|_| format!("\"{expr}\": p({inner}) needs a number"))?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!("\"{expr}\": p({inner}) must be between 0 and 100"));
            }
            Aggregation::P(p)
        }
    };
    Ok((aggregation, op, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(key: &str, expr: &str) -> Result<Threshold, String> {
        Threshold::parse(key, &ThresholdSpec::Expr(expr.into()), &["users", "orders"])
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
                "http_req_duration{status:200}",
                "p(95)<1",
                "unknown tag \"status\"",
            ),
            ("http_req_duration{endpoint:users", "p(95)<1", "unclosed"),
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
            latency: &h,
            requests: 200,
            failed: 3,
            dropped: 5,
            seconds: 10.0,
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
        let empty = crate::stats::new_histogram();
        let none = Measured {
            latency: &empty,
            requests: 0,
            failed: 0,
            dropped: 0,
            seconds: 1.0,
        };
        assert_eq!(
            parse("http_req_duration", "p(99)<1").unwrap().check(&none),
            (None, true)
        );
    }

    #[test]
    fn server_timing_thresholds_name_their_metric() {
        let t = parse("server_timing{metric:payments}", "p(99)<20").unwrap();
        assert_eq!(
            (t.metric, t.server_metric.as_deref(), t.endpoint.as_deref()),
            (Metric::ServerTiming, Some("payments"), None)
        );
        let t = parse("server_timing{endpoint:orders, metric:payments}", "avg<5").unwrap();
        assert_eq!(t.endpoint.as_deref(), Some("orders"));
        assert_eq!(t.server_metric.as_deref(), Some("payments"));
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
        let views = [
            EndpointView {
                name: "users",
                stats: &a,
                open: false,
            },
            EndpointView {
                name: "orders",
                stats: &b,
                open: false,
            },
        ];
        let r = evaluate(
            &parse("server_timing{metric:payments}", "max<20").unwrap(),
            &views,
            1.0,
        );
        assert!(!r.ok && (r.observed.unwrap() - 30.0).abs() < 0.05, "{r:?}");
        let t = parse("server_timing{endpoint:users,metric:payments}", "max<20").unwrap();
        assert!(evaluate(&t, &views, 1.0).ok);
        let t = parse("server_timing{metric:nothing}", "max<20").unwrap();
        assert_eq!(evaluate(&t, &views, 1.0).observed, None);
    }

    #[test]
    fn object_form_carries_abort_settings() {
        let spec: ThresholdSpec = serde_json::from_str(
            r#"{"threshold": "p(99)<500", "abort_on_fail": true, "delay_abort_eval": "10s"}"#,
        )
        .unwrap();
        let t = Threshold::parse("http_req_duration", &spec, &[]).unwrap();
        assert!(t.abort_on_fail);
        assert_eq!(t.delay_abort_eval, std::time::Duration::from_secs(10));
    }
}
