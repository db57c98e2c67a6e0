//! Thresholds in k6's grammar, so users can bring the ones they have:
//! `{"http_req_duration": ["p(95)<200"], "http_req_failed": ["rate<0.01"],
//! "http_req_duration{endpoint:users}": [{"threshold": "p(99)<300",
//! "abort_on_fail": true, "delay_abort_eval": "10s"}]}`.
//!
//! Parsing and evaluation are pure: [`Threshold::parse`] checks a metric
//! key and an expression; [`Threshold::observe`] reads the value from a
//! [`Measured`] view of the run (merged HDR histograms and counts).

use crate::duration::Dur;
use crate::stats::{EndpointStats, Hist, new_histogram};
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
    /// Ended iterations: each request of an endpoint (as in an HTTP-only
    /// k6 script), and each completed or failed iteration of a flow.
    Iterations,
    /// Iteration duration, ms: an endpoint's latency, a flow's completed
    /// iterations' duration.
    IterationDuration,
    /// Open-model sends that could not be made.
    Dropped,
    /// A `Server-Timing` metric's durations, ms (`{metric:NAME}` names it).
    ServerTiming,
    /// Request bytes written.
    DataSent,
    /// Response bytes read.
    DataReceived,
    /// Active VUs (connections), a gauge sampled every second.
    Vus,
    /// The most VUs the run may hold (stages, open-model caps, autoscale bounds).
    VusMax,
    /// Passed checks / checks judged.
    Checks,
    /// Phases, ms: TCP connects, TLS handshakes (once per connection),
    /// waiting (sent → first response byte, per response).
    Connecting,
    TlsHandshaking,
    Waiting,
}

/// The metric names thresholds accept, for error messages.
const METRICS: &str = "http_req_duration, http_req_failed, http_reqs, iterations, iteration_duration, \
     dropped_iterations, data_sent, data_received, vus, vus_max, server_timing, checks, \
     http_req_connecting, http_req_tls_handshaking, http_req_waiting";

impl Metric {
    fn parse(s: &str) -> Option<Metric> {
        Some(match s {
            "http_req_duration" => Metric::Duration,
            "iteration_duration" => Metric::IterationDuration,
            "http_req_failed" => Metric::Failed,
            "http_reqs" => Metric::Reqs,
            "iterations" => Metric::Iterations,
            "dropped_iterations" => Metric::Dropped,
            "server_timing" => Metric::ServerTiming,
            "data_sent" => Metric::DataSent,
            "data_received" => Metric::DataReceived,
            "vus" => Metric::Vus,
            "vus_max" => Metric::VusMax,
            "checks" => Metric::Checks,
            "http_req_connecting" => Metric::Connecting,
            "http_req_tls_handshaking" => Metric::TlsHandshaking,
            "http_req_waiting" => Metric::Waiting,
            _ => return None,
        })
    }

    fn aggregations(self) -> &'static str {
        match self {
            Metric::Duration
            | Metric::ServerTiming
            | Metric::IterationDuration
            | Metric::Connecting
            | Metric::TlsHandshaking
            | Metric::Waiting => "avg, min, max, med, p(N)",
            Metric::Failed | Metric::Checks => "rate",
            Metric::Reqs
            | Metric::Iterations
            | Metric::Dropped
            | Metric::DataSent
            | Metric::DataReceived => "count, rate",
            Metric::Vus | Metric::VusMax => "value, min, max",
        }
    }

    fn is_duration(self) -> bool {
        matches!(
            self,
            Metric::Duration
                | Metric::ServerTiming
                | Metric::IterationDuration
                | Metric::Connecting
                | Metric::TlsHandshaking
                | Metric::Waiting
        )
    }
}

/// A threshold's tag filters (`http_req_duration{endpoint:orders,
/// expected_response:true}`); all of them must hold (k6: AND).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// `endpoint`, `name` or `scenario`: one endpoint (or flow step).
    pub endpoint: Option<String>,
    /// `flow`, or `scenario` naming a flow: that flow's steps (and, for
    /// `iterations` and `iteration_duration`, its iterations).
    pub flow: Option<String>,
    /// `method`: endpoints sending this method.
    pub method: Option<String>,
    /// `url`: the endpoint whose full URL or path this is.
    pub url: Option<String>,
    /// `status`: responses with this status code.
    pub status: Option<u16>,
    /// `expected_response`: responses whose status is (or is not) in the
    /// endpoint's `expect`.
    pub expected: Option<bool>,
    /// `metric` (server_timing only): the `Server-Timing` metric.
    pub server_metric: Option<String>,
    /// `check` (checks only): the checks of this name.
    pub check: Option<String>,
}

/// The tags thresholds accept, for error messages.
const TAGS: &str = "endpoint (or name), flow, scenario (an endpoint or a flow), method, url, status, \
     expected_response, metric for server_timing, and check for checks";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Aggregation {
    Avg,
    Min,
    Max,
    Med,
    P(f64),
    Rate,
    Count,
    /// A gauge's last value.
    Value,
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

/// A threshold as written in a config: an expression, or the object form
/// (k6's `abortOnFail`/`delayAbortEval` keys, or snake_case).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ThresholdSpec {
    Expr(String),
    Full(ThresholdObject),
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ThresholdObject {
    pub threshold: String,
    /// Stop the run as soon as the threshold fails (k6: `abortOnFail`).
    #[serde(default)]
    pub abort_on_fail: bool,
    /// Do not abort during this first part of the run (k6: `delayAbortEval`).
    #[serde(default)]
    pub delay_abort_eval: Dur,
}

/// By hand rather than serde's untagged enum, whose only message for any
/// mistake is "data did not match any variant": each error here says
/// which key or type was wrong (issue #20).
impl<'de> Deserialize<'de> for ThresholdSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ThresholdSpec, D::Error> {
        use serde::de::Error;
        const KNOWN: &str =
            "threshold, abortOnFail, delayAbortEval (or abort_on_fail, delay_abort_eval)";
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(e) => Ok(ThresholdSpec::Expr(e)),
            serde_json::Value::Object(m) => {
                let (mut threshold, mut abort, mut delay) = (None, false, Dur::default());
                for (k, v) in m {
                    let bad =
                        |what: &str| D::Error::custom(format!("{k}: expected {what}, got {v}"));
                    match k.as_str() {
                        "threshold" => {
                            threshold = Some(
                                v.as_str()
                                    .ok_or_else(|| bad("a string such as \"p(95)<200\""))?
                                    .to_string(),
                            )
                        }
                        "abortOnFail" | "abort_on_fail" => {
                            abort = v.as_bool().ok_or_else(|| bad("true or false"))?
                        }
                        "delayAbortEval" | "delay_abort_eval" => {
                            let text = v
                                .as_str()
                                .ok_or_else(|| bad("a duration such as \"10s\""))?;
                            delay = Dur::parse(text)
                                .map_err(|e| D::Error::custom(format!("{k}: {e}")))?;
                        }
                        other => {
                            return Err(D::Error::custom(format!(
                                "unknown key \"{other}\" in a threshold object (known: {KNOWN})"
                            )));
                        }
                    }
                }
                let threshold = threshold.ok_or_else(|| {
                    D::Error::custom(format!(
                        "a threshold object needs \"threshold\" (known keys: {KNOWN})"
                    ))
                })?;
                Ok(ThresholdSpec::Full(ThresholdObject {
                    threshold,
                    abort_on_fail: abort,
                    delay_abort_eval: delay,
                }))
            }
            other => Err(D::Error::custom(format!(
                "a threshold is a string such as \"p(95)<200\" or an object {{\"threshold\": \"p(95)<200\", \"abortOnFail\": true}}, got {other}"
            ))),
        }
    }
}

/// A parsed threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// The metric key as written, e.g. `http_req_duration{endpoint:users}`.
    pub key: String,
    pub expression: String,
    pub metric: Metric,
    /// Its tags: which endpoints and responses it reads.
    pub filter: Filter,
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
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// Seconds of load, for `rate` of counters.
    pub seconds: f64,
    /// VUs: the last second's, the fewest and the most over the seconds so
    /// far (none before the first second), and the most the run may hold.
    pub vus: Option<(f64, f64, f64)>,
    pub vus_max: f64,
    /// Checks passed and judged.
    pub checks: (u64, u64),
}

impl Threshold {
    /// Parses a metric key and one threshold of it. `endpoints` are the
    /// names a `{endpoint:NAME}` filter may use.
    pub fn parse(key: &str, spec: &ThresholdSpec, endpoints: &[&str]) -> Result<Threshold, String> {
        Threshold::parse_in(key, spec, endpoints, &[], &[])
    }

    /// [`Threshold::parse`] where `flows` are the flows' names.
    pub fn parse_in(
        key: &str,
        spec: &ThresholdSpec,
        endpoints: &[&str],
        flows: &[&str],
        checks: &[&str],
    ) -> Result<Threshold, String> {
        let (expr, abort, delay) = match spec {
            ThresholdSpec::Expr(e) => (e.as_str(), false, std::time::Duration::ZERO),
            ThresholdSpec::Full(o) => (o.threshold.as_str(), o.abort_on_fail, o.delay_abort_eval.0),
        };
        let (metric, filter) = Threshold::parse_key_in(key, endpoints, flows, checks)?;
        let (aggregation, op, value) = parse_expression(expr)?;
        let name = key.split('{').next().unwrap_or(key).trim();
        let fits = match metric {
            Metric::Duration
            | Metric::ServerTiming
            | Metric::IterationDuration
            | Metric::Connecting
            | Metric::TlsHandshaking
            | Metric::Waiting => {
                matches!(
                    aggregation,
                    Aggregation::Avg
                        | Aggregation::Min
                        | Aggregation::Max
                        | Aggregation::Med
                        | Aggregation::P(_)
                )
            }
            Metric::Failed | Metric::Checks => aggregation == Aggregation::Rate,
            Metric::Reqs
            | Metric::Iterations
            | Metric::Dropped
            | Metric::DataSent
            | Metric::DataReceived => {
                matches!(aggregation, Aggregation::Count | Aggregation::Rate)
            }
            Metric::Vus | Metric::VusMax => matches!(
                aggregation,
                Aggregation::Value | Aggregation::Min | Aggregation::Max
            ),
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
            filter,
            aggregation,
            op,
            value,
            abort_on_fail: abort,
            delay_abort_eval: delay,
        })
    }

    /// A metric key's metric and tags (`http_req_duration{endpoint:users}`);
    /// `endpoints` are the names an endpoint tag may use. Also checks the
    /// key of an empty threshold list, which reports and judges nothing.
    pub fn parse_key(key: &str, endpoints: &[&str]) -> Result<(Metric, Filter), String> {
        Threshold::parse_key_in(key, endpoints, &[], &[])
    }

    /// [`Threshold::parse_key`] where `flows` are the flows' names and
    /// `checks` every check's name.
    pub fn parse_key_in(
        key: &str,
        endpoints: &[&str],
        flows: &[&str],
        checks: &[&str],
    ) -> Result<(Metric, Filter), String> {
        let (name, tags) = match key.split_once('{') {
            None => (key, ""),
            Some((name, rest)) => (
                name,
                rest.strip_suffix('}')
                    .ok_or_else(|| format!("unclosed '{{' in \"{key}\""))?,
            ),
        };
        let name = name.trim();
        let metric = Metric::parse(name).ok_or_else(|| {
            format!("unknown metric \"{name}\": Userflux has no custom metrics (one of {METRICS})")
        })?;
        let mut f = Filter::default();
        if matches!(metric, Metric::Vus | Metric::VusMax) && !tags.trim().is_empty() {
            return Err(format!("{name} is for the whole run: it takes no tags"));
        }
        for tag in tags.split(',').filter(|t| !t.trim().is_empty()) {
            let (tag, value) = tag
                .split_once(':')
                .ok_or_else(|| format!("expected {{TAG:VALUE}}, got {{{tag}}}"))?;
            let value = value.trim();
            match tag.trim() {
                "flow" | "scenario" if flows.contains(&value) => {
                    f.flow = Some(value.to_string());
                }
                "flow" => return Err(format!("no flow named \"{value}\"")),
                "endpoint" | "name" | "scenario" if endpoints.contains(&value) => {
                    f.endpoint = Some(value.to_string());
                }
                "endpoint" | "name" | "scenario" => {
                    return Err(format!("no endpoint named \"{value}\""));
                }
                "status" | "expected_response" if metric == Metric::Checks => {
                    return Err(format!(
                        "checks{{{tag}}}: checks are counted per endpoint and check, not per status"
                    ));
                }
                // These would be ignored (the counts are not kept per
                // response), and a tag must never be silently ignored.
                "status" | "expected_response"
                    if matches!(
                        metric,
                        Metric::ServerTiming
                            | Metric::DataSent
                            | Metric::DataReceived
                            | Metric::Dropped
                            | Metric::Iterations
                            | Metric::IterationDuration
                    ) =>
                {
                    let instead = match metric {
                        Metric::Iterations => "; http_reqs takes it",
                        Metric::IterationDuration => "; http_req_duration takes expected_response",
                        _ => "; tag by endpoint",
                    };
                    return Err(format!(
                        "{name}{{{tag}:…}}: {name} is not kept per response status{instead}",
                        tag = tag.trim()
                    ));
                }
                "method" if !value.is_empty() => f.method = Some(value.to_ascii_uppercase()),
                "url" if !value.is_empty() => f.url = Some(value.to_string()),
                "status" => {
                    let code: u16 = value
                        .parse()
                        .ok()
                        .filter(|c| (100..=599).contains(c))
                        .ok_or_else(|| format!("status:{value} is not an HTTP status (100-599)"))?;
                    if metric.is_duration() {
                        return Err(format!(
                            "{name}{{status:{code}}}: latency is not kept per status code; \
                             use expected_response:true or false"
                        ));
                    }
                    f.status = Some(code);
                }
                "expected_response"
                    if matches!(
                        metric,
                        Metric::Connecting | Metric::TlsHandshaking | Metric::Waiting
                    ) =>
                {
                    return Err(format!(
                        "{name}{{expected_response:…}}: phases are not kept per status; tag by endpoint"
                    ));
                }
                "expected_response" => {
                    f.expected = Some(match value {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(format!("expected_response:{value} must be true or false"));
                        }
                    });
                }
                "metric" if metric == Metric::ServerTiming && !value.is_empty() => {
                    f.server_metric = Some(value.to_string());
                }
                "check" if metric == Metric::Checks && checks.contains(&value) => {
                    f.check = Some(value.to_string());
                }
                "check" if metric == Metric::Checks => {
                    return Err(format!("no check named \"{value}\""));
                }
                other => {
                    return Err(format!("unknown tag \"{other}\" (supported: {TAGS})"));
                }
            }
        }
        if metric == Metric::ServerTiming && f.server_metric.is_none() {
            return Err(format!(
                "\"{key}\": name the Server-Timing metric, e.g. server_timing{{metric:payments}}"
            ));
        }
        Ok((metric, f))
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
        let durations = self.metric.is_duration();
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
            (Metric::Reqs | Metric::Iterations, Aggregation::Count) => m.requests as f64,
            (Metric::Reqs | Metric::Iterations, _) => per_second(m.requests),
            (Metric::Dropped, Aggregation::Count) => m.dropped as f64,
            (Metric::Dropped, _) => per_second(m.dropped),
            (Metric::DataSent, Aggregation::Count) => m.bytes_out as f64,
            (Metric::DataSent, _) => per_second(m.bytes_out),
            (Metric::DataReceived, Aggregation::Count) => m.bytes_in as f64,
            (Metric::DataReceived, _) => per_second(m.bytes_in),
            (Metric::Vus, agg) => {
                let (last, min, max) = m.vus?;
                match agg {
                    Aggregation::Min => min,
                    Aggregation::Max => max,
                    _ => last,
                }
            }
            (Metric::VusMax, _) => m.vus_max,
            (Metric::Checks, _) => {
                let (passed, judged) = m.checks;
                if judged == 0 {
                    return None;
                }
                passed as f64 / judged as f64
            }
            (
                Metric::Duration
                | Metric::ServerTiming
                | Metric::IterationDuration
                | Metric::Connecting
                | Metric::TlsHandshaking
                | Metric::Waiting,
                _,
            ) => {
                return None;
            }
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

/// Which of an endpoint's histograms a threshold reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads<'t> {
    /// The latency of every response (corrected for an open-model endpoint).
    Latency,
    /// That latency less the unexpected responses' (`expected_response:true`).
    Expected,
    /// The unexpected responses' latency ([`EndpointStats::unexpected`],
    /// `expected_response:false`).
    Unexpected,
    Connecting,
    TlsHandshaking,
    Waiting,
    /// A `Server-Timing` metric's durations.
    ServerTiming(&'t str),
}

impl Threshold {
    /// The histogram it reads of each endpoint it selects; `None` for a
    /// threshold on counts. What [`evaluate`] adds up, and what `merge`
    /// must have rebuilt from every shard to judge it.
    pub fn reads(&self) -> Option<Reads<'_>> {
        Some(match self.metric {
            Metric::Connecting => Reads::Connecting,
            Metric::TlsHandshaking => Reads::TlsHandshaking,
            Metric::Waiting => Reads::Waiting,
            Metric::ServerTiming => Reads::ServerTiming(self.filter.server_metric.as_deref()?),
            Metric::Duration | Metric::IterationDuration => match self.filter.expected {
                None => Reads::Latency,
                Some(true) => Reads::Expected,
                Some(false) => Reads::Unexpected,
            },
            _ => return None,
        })
    }

    /// Whether its tags select endpoint (or flow step) `e`. A flow's steps
    /// are not iterations of their own: `iterations` and
    /// `iteration_duration` read the flow's instead.
    pub fn selects(&self, e: &EndpointView<'_>) -> bool {
        e.selected_by(&self.filter) && !(self.counts_iterations() && e.flow.is_some())
    }

    fn counts_iterations(&self) -> bool {
        matches!(self.metric, Metric::Iterations | Metric::IterationDuration)
    }
}

/// `h` less `u`, value by value, saturating at zero: `u` is recorded
/// alongside `h` and never exceeds it, but a merged shard's file could say
/// otherwise, and HdrHistogram's `subtract` panics or stops half-way then.
fn without(h: &Histogram<u64>, u: &Histogram<u64>) -> Histogram<u64> {
    let mut out = new_histogram();
    for v in h.iter_recorded() {
        let value = v.value_iterated_to();
        let theirs = if value <= u.max() {
            u.count_at(value)
        } else {
            0
        };
        let n = v.count_at_value().saturating_sub(theirs);
        if n > 0 {
            // cannot fail: `value` was recorded into a histogram of the same kind
            let _ = out.record_n(value, n);
        }
    }
    out
}

/// One endpoint's counts as thresholds see them.
pub struct EndpointView<'a> {
    pub name: &'a str,
    pub stats: &'a EndpointStats,
    /// Open model: its latency is the corrected one.
    pub open: bool,
    /// For the `method` and `url` tags.
    pub method: &'a str,
    pub url: &'a str,
    pub path: &'a str,
    /// For `expected_response` and `status`: the statuses `expect` accepts.
    pub accept: &'a crate::stats::StatusSet,
    /// A flow step: its flow's name.
    pub flow: Option<&'a str>,
    /// Its checks, in the order of `stats.checks`.
    pub checks: &'a [(String, crate::capture::Check)],
}

impl<'a> EndpointView<'a> {
    /// The view of planned endpoint `e` with its counts `stats`.
    pub fn of(e: &'a crate::plan::EndpointPlan, stats: &'a EndpointStats) -> EndpointView<'a> {
        EndpointView {
            flow: None,
            checks: &e.checks,
            name: &e.name,
            stats,
            open: e.open.is_some(),
            method: e.method,
            url: &e.url,
            path: &e.path,
            accept: &e.accept,
        }
    }

    /// The view of row `i` of `plan` (a step knows its flow).
    pub fn in_plan(
        plan: &'a crate::plan::Plan,
        i: usize,
        stats: &'a EndpointStats,
    ) -> EndpointView<'a> {
        let e = &plan.endpoints[i];
        EndpointView {
            flow: e.step.as_ref().map(|s| plan.flows[s.flow].name.as_str()),
            ..EndpointView::of(e, stats)
        }
    }

    fn selected_by(&self, f: &Filter) -> bool {
        f.endpoint.as_deref().is_none_or(|n| n == self.name)
            && f.flow.as_deref().is_none_or(|n| self.flow == Some(n))
            && f.method.as_deref().is_none_or(|m| m == self.method)
            && f.url
                .as_deref()
                .is_none_or(|u| u == self.url || u == self.path)
    }
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
    /// Why it could not be judged (a merged run whose shards lack a
    /// histogram it reads); it then counts as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What thresholds read of the whole run so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunView<'a> {
    /// Seconds of load.
    pub seconds: f64,
    /// Active VUs at the end of each whole second so far.
    pub vus: &'a [u32],
    /// The most VUs the run may hold.
    pub vus_max: u32,
    /// Each flow's iterations so far.
    pub flows: &'a [FlowView<'a>],
}

/// One flow's iterations as thresholds see them.
#[derive(Clone, Copy, Debug)]
pub struct FlowView<'a> {
    pub name: &'a str,
    pub stats: &'a crate::stats::FlowStats,
}

impl RunView<'_> {
    /// Only the load's length (nothing about VUs).
    pub fn seconds(seconds: f64) -> RunView<'static> {
        RunView {
            seconds,
            ..RunView::default()
        }
    }
}

/// Evaluates `t` over the endpoints and responses its tags select, on the
/// run so far.
pub fn evaluate(
    t: &Threshold,
    endpoints: &[EndpointView<'_>],
    run: &RunView<'_>,
) -> ThresholdResult {
    let f = &t.filter;
    let mut latency = new_histogram();
    let (mut requests, mut failed, mut dropped) = (0, 0, 0);
    let (mut bytes_out, mut bytes_in) = (0, 0);
    let (mut passed, mut judged) = (0u64, 0u64);
    // Iterations: an endpoint's requests, a flow's iterations (its steps'
    // requests are not iterations of their own).
    if t.counts_iterations() && f.endpoint.is_none() && f.method.is_none() && f.url.is_none() {
        for fl in run
            .flows
            .iter()
            .filter(|fl| f.flow.as_deref().is_none_or(|n| n == fl.name))
        {
            requests += fl.stats.iterations + fl.stats.failed;
            latency
                .add(&*fl.stats.duration.hdr())
                .expect("grows to fit");
        }
    }
    for e in endpoints.iter().filter(|e| t.selects(e)) {
        let st = e.stats;
        for ((name, _), [p, fl]) in e.checks.iter().zip(&st.checks) {
            if f.check.as_deref().is_none_or(|c| c == name) {
                passed += p;
                judged += p + fl;
            }
        }
        let effective = st.effective_latency(e.open);
        let expected;
        let read: Option<std::borrow::Cow<'_, Histogram<u64>>> = match t.reads() {
            None => None,
            Some(Reads::Latency) => effective.map(Hist::hdr),
            Some(Reads::Expected) => match (effective, &st.unexpected) {
                (Some(h), Some(u)) => {
                    expected = without(&h.hdr(), &u.hdr());
                    Some(std::borrow::Cow::Borrowed(&expected))
                }
                (h, _) => h.map(Hist::hdr),
            },
            Some(Reads::Unexpected) => st.unexpected.as_ref().map(Hist::hdr),
            Some(Reads::Connecting) => st.connecting.as_ref().map(Hist::hdr),
            Some(Reads::TlsHandshaking) => st.tls_handshaking.as_ref().map(Hist::hdr),
            Some(Reads::Waiting) => st.waiting.as_ref().map(Hist::hdr),
            Some(Reads::ServerTiming(name)) => st
                .server_timing
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, h)| h.hdr()),
        };
        if let Some(h) = read {
            latency.add(&*h).expect("grows to fit");
        }
        // Counts of the responses (and failures) the tags select.
        let (n, bad) = match (f.status, f.expected) {
            (Some(code), expected) => {
                let n = st.status[code as usize];
                let accepted = e.accept.contains(code);
                let n = if expected.is_some_and(|x| x != accepted) {
                    0
                } else {
                    n
                };
                (n, if accepted { 0 } else { n })
            }
            (None, Some(true)) => (st.requests - st.errors, 0),
            (None, Some(false)) => (st.errors, st.errors),
            (None, None) => (st.requests, st.errors),
        };
        requests += n;
        failed += bad;
        dropped += st.dropped;
        bytes_out += st.bytes_out;
        bytes_in += st.bytes_in;
    }
    let (observed, ok) = t.check(&Measured {
        latency: &latency,
        requests,
        failed,
        dropped,
        bytes_out,
        bytes_in,
        seconds: run.seconds,
        vus: run.vus.last().map(|&last| {
            let min = run.vus.iter().copied().min().unwrap_or(last);
            let max = run.vus.iter().copied().max().unwrap_or(last);
            (f64::from(last), f64::from(min), f64::from(max))
        }),
        vus_max: f64::from(run.vus_max),
        checks: (passed, judged),
    });
    ThresholdResult {
        metric: t.key.clone(),
        expression: t.expression.clone(),
        observed,
        ok,
        aborted: false,
        error: None,
    }
}

/// `p(99.9) < 300` → (P(99.9), Lt, 300).
fn parse_expression(expr: &str) -> Result<(Aggregation, Op, f64), String> {
    let e = expr.trim();
    let ops = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("===", Op::Eq),
        ("!==", Op::Ne),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (at, sym, op) = ops
        .iter()
        .filter_map(|(s, op)| e.find(s).map(|i| (i, *s, *op)))
        .min_by_key(|(i, s, _)| (*i, std::cmp::Reverse(s.len())))
        .ok_or_else(|| format!("\"{expr}\": no comparison (one of <, <=, >, >=, ==, ===, !=)"))?;
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
        "value" => Aggregation::Value,
        _ => {
            let inner = left
                .strip_prefix("p(")
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("\"{expr}\": unknown aggregation \"{left}\" (avg, min, max, med, p(N), rate, count, value)"))?;
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
    fn flow_tags_name_flows() {
        let spec = ThresholdSpec::Expr("count>0".into());
        let parse = |name| Threshold::parse_in(name, &spec, &["shop.login"], &["shop"], &[]);
        for name in ["iterations{flow:shop}", "http_reqs{scenario:shop}"] {
            let t = parse(name).unwrap();
            assert_eq!(t.filter.flow.as_deref(), Some("shop"), "{name}");
        }
        assert_eq!(
            parse("iterations{flow:nope}").unwrap_err(),
            "no flow named \"nope\""
        );
        let e = Threshold::parse_in("iteration_duration{flow:shop}", &spec, &[], &["shop"], &[])
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
                "http_req_duration{status:200}",
                "p(95)<1",
                "latency is not kept per status code",
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
        let t = Threshold::parse("http_req_duration", &spec, &[]).unwrap();
        assert!(t.abort_on_fail);
        assert_eq!(t.delay_abort_eval, std::time::Duration::from_secs(10));
    }
}
