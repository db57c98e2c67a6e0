//! The thresholds' grammar, k6's: a metric key (`http_req_duration`, with
//! tags such as `{endpoint:users}`) and an expression (`p(95)<200`), parsed
//! into a [`Threshold`] against the names a config gives ([`Known`]).

use super::spec::ThresholdSpec;
use std::fmt;

/// The names a config gives, that a threshold's tags may name: its
/// request rows (endpoints and `FLOW.STEP`s), its flows, its checks.
/// `Known::default()` knows none.
#[derive(Clone, Copy, Debug, Default)]
pub struct Known<'a> {
    pub endpoints: &'a [&'a str],
    pub flows: &'a [&'a str],
    pub checks: &'a [&'a str],
    /// What the rows send: HTTP methods and gRPC methods
    /// (`pkg.Service/Method`); empty when not known (then any is taken).
    pub methods: &'a [&'a str],
}

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
    /// Open model: a send's wait for a free connection, per send.
    Blocked,
    /// First to last byte of the request written, per response.
    Sending,
    /// First to last byte of the response read, per response.
    Receiving,
}

/// The metric names thresholds accept, for error messages.
const METRICS: &str = "http_req_duration, grpc_req_duration, http_req_failed, http_reqs, iterations, iteration_duration, \
     dropped_iterations, data_sent, data_received, vus, vus_max, server_timing, checks, \
     http_req_connecting, http_req_tls_handshaking, http_req_waiting, http_req_blocked, \
     http_req_sending, http_req_receiving";

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
            "http_req_blocked" => Metric::Blocked,
            "http_req_sending" => Metric::Sending,
            "http_req_receiving" => Metric::Receiving,
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
            | Metric::Waiting
            | Metric::Blocked
            | Metric::Sending
            | Metric::Receiving => "avg, min, max, med, p(N)",
            Metric::Failed | Metric::Checks => "rate",
            Metric::Reqs
            | Metric::Iterations
            | Metric::Dropped
            | Metric::DataSent
            | Metric::DataReceived => "count, rate",
            Metric::Vus | Metric::VusMax => "value, min, max",
        }
    }

    pub(super) fn is_duration(self) -> bool {
        matches!(
            self,
            Metric::Duration
                | Metric::ServerTiming
                | Metric::IterationDuration
                | Metric::Connecting
                | Metric::TlsHandshaking
                | Metric::Waiting
                | Metric::Blocked
                | Metric::Sending
                | Metric::Receiving
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
    /// `method`: endpoints sending this HTTP method (any case), or gRPC
    /// endpoints calling this method (`pkg.Service/Method`, a leading `/`
    /// allowed as k6 writes it).
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
    /// `grpc_req_duration`: only the endpoints that make gRPC calls.
    pub grpc: bool,
    /// `grpc_status`: the gRPC calls that ended with this status (and only
    /// the endpoints that make gRPC calls).
    pub grpc_status: Option<crate::load::grpc::Code>,
}

/// The tags thresholds accept, for error messages.
const TAGS: &str = "endpoint (or name), flow, scenario (an endpoint or a flow), method, url, status, \
     expected_response, grpc_status, metric for server_timing, and check for checks";

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

impl Threshold {
    /// Parses a metric key and one threshold of it; the key's tags may
    /// name what `known` holds.
    pub fn parse(key: &str, spec: &ThresholdSpec, known: &Known<'_>) -> Result<Threshold, String> {
        let (expr, abort, delay) = match spec {
            ThresholdSpec::Expr(e) => (e.as_str(), false, std::time::Duration::ZERO),
            ThresholdSpec::Full(o) => (o.threshold.as_str(), o.abort_on_fail, o.delay_abort_eval.0),
        };
        let (metric, filter) = Threshold::parse_key(key, known)?;
        let (aggregation, op, value) = parse_expression(expr)?;
        let name = key.split('{').next().unwrap_or(key).trim();
        let fits = match metric {
            Metric::Duration
            | Metric::ServerTiming
            | Metric::IterationDuration
            | Metric::Connecting
            | Metric::TlsHandshaking
            | Metric::Waiting
            | Metric::Blocked
            | Metric::Sending
            | Metric::Receiving => {
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
    /// the tags may name what `known` holds. Also checks the key of an
    /// empty threshold list, which reports and judges nothing.
    pub fn parse_key(key: &str, known: &Known<'_>) -> Result<(Metric, Filter), String> {
        let Known {
            endpoints,
            flows,
            checks,
            methods,
        } = *known;
        let (name, tags) = match key.split_once('{') {
            None => (key, ""),
            Some((name, rest)) => (
                name,
                rest.strip_suffix('}')
                    .ok_or_else(|| format!("unclosed '{{' in \"{key}\""))?,
            ),
        };
        let name = name.trim();
        let mut f = Filter::default();
        // k6's gRPC latency: http_req_duration of the gRPC endpoints
        let metric = if name == "grpc_req_duration" {
            f.grpc = true;
            Metric::Duration
        } else {
            Metric::parse(name).ok_or_else(|| {
                format!(
                    "unknown metric \"{name}\": Userflux has no custom metrics (one of {METRICS})"
                )
            })?
        };
        if matches!(metric, Metric::Vus | Metric::VusMax) && !tags.trim().is_empty() {
            return Err(format!("{name} is for the whole run: it takes no tags"));
        }
        let mut given: Vec<&str> = Vec::new();
        for tag in tags.split(',').filter(|t| !t.trim().is_empty()) {
            let (tag, value) = tag
                .split_once(':')
                .ok_or_else(|| format!("expected {{TAG:VALUE}}, got {{{tag}}}"))?;
            // the last would win silently (found by a first-user try)
            if given.contains(&tag.trim()) {
                return Err(format!(
                    "tag \"{}\" given twice: tags all hold at once (k6's AND), so give it once",
                    tag.trim()
                ));
            }
            given.push(tag.trim());
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
                // a method no row sends would select nothing, and a rate
                // over nothing passes: a typo must not make an SLO hold
                "method"
                    if !methods.is_empty()
                        && !methods.iter().any(|m| {
                            m.eq_ignore_ascii_case(value) || *m == value.trim_start_matches('/')
                        }) =>
                {
                    return Err(format!(
                        "no endpoint sends method \"{value}\" (they send: {})",
                        methods.join(", ")
                    ));
                }
                "method" if !value.is_empty() => f.method = Some(value.to_string()),
                "grpc_status"
                    if !matches!(metric, Metric::Duration | Metric::Reqs | Metric::Failed) =>
                {
                    return Err(format!(
                        "{name}{{grpc_status:…}}: {name} is not kept per gRPC status; \
                         grpc_req_duration, http_reqs and http_req_failed take it"
                    ));
                }
                "grpc_status" => {
                    let code = crate::capture::grpc_code(&serde_json::Value::from(value))?;
                    f.grpc_status = Some(code);
                    f.grpc = true;
                }
                "url" if !value.is_empty() => f.url = Some(value.to_string()),
                "status" => {
                    let code: u16 = value
                        .parse()
                        .ok()
                        .filter(|c| (100..=599).contains(c))
                        .ok_or_else(|| format!("status:{value} is not an HTTP status (100-599)"))?;
                    if metric.is_duration() && metric != Metric::Duration {
                        return Err(format!(
                            "{name}{{status:{code}}}: phases are not kept per status code; \
                             tag by endpoint (http_req_duration takes status)"
                        ));
                    }
                    f.status = Some(code);
                }
                "expected_response"
                    if matches!(
                        metric,
                        Metric::Connecting
                            | Metric::TlsHandshaking
                            | Metric::Waiting
                            | Metric::Blocked
                            | Metric::Sending
                            | Metric::Receiving
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
        if f.grpc_status.is_some() && (f.status.is_some() || f.expected.is_some()) {
            return Err(format!(
                "\"{key}\": grpc_status goes alone: a gRPC call's HTTP status and expected_response say nothing of it"
            ));
        }
        if metric == Metric::ServerTiming && f.server_metric.is_none() {
            return Err(format!(
                "\"{key}\": name the Server-Timing metric, e.g. server_timing{{metric:payments}}"
            ));
        }
        Ok((metric, f))
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
