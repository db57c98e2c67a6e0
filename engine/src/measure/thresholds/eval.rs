//! Judging thresholds: what each reads of the run ([`Measured`], the
//! endpoints it selects, the histogram it reads) and whether it holds.
//! Pure: the aggregator and `merge` feed it views of what they merged.

use super::grammar::{Aggregation, Filter, Metric, Threshold};
use crate::stats::{EndpointStats, Hist, new_histogram};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

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
                | Metric::Waiting
                | Metric::Blocked
                | Metric::Sending
                | Metric::Receiving,
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
    Blocked,
    Sending,
    Receiving,
    /// The latency of the responses with this status (see
    /// [`crate::stats::ByStatus`]; `other` for a code past the kept ones).
    Status(u16),
    /// The latency of the gRPC calls that ended with this `grpc-status`
    /// (kept as [`Reads::Status`] is, in `EndpointStats::by_grpc`).
    GrpcStatus(crate::load::grpc::Code),
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
            Metric::Blocked => Reads::Blocked,
            Metric::Sending => Reads::Sending,
            Metric::Receiving => Reads::Receiving,
            Metric::ServerTiming => Reads::ServerTiming(self.filter.server_metric.as_deref()?),
            Metric::Duration if self.filter.status.is_some() => Reads::Status(self.filter.status?),
            Metric::Duration if self.filter.grpc_status.is_some() => {
                Reads::GrpcStatus(self.filter.grpc_status?)
            }
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
pub(super) fn without(h: &Histogram<u64>, u: &Histogram<u64>) -> Histogram<u64> {
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

/// The calls of `st` that ended with gRPC status `code`.
fn grpc_calls(st: &EndpointStats, code: crate::load::grpc::Code) -> u64 {
    st.grpc_status.as_ref().map_or(0, |g| g[code as usize])
}

/// One endpoint's counts as thresholds see them.
pub struct EndpointView<'a> {
    pub name: &'a str,
    pub stats: &'a EndpointStats,
    /// Open model: its latency is the corrected one.
    pub open: bool,
    /// For the `method` and `url` tags.
    pub method: &'a str,
    /// A gRPC endpoint's method (`pkg.Service/Method`), which the `method`
    /// tag also names.
    pub grpc_method: Option<&'a str>,
    pub url: &'a str,
    pub path: &'a str,
    /// For `expected_response` and `status`: the statuses `expect` accepts.
    pub accept: &'a crate::stats::StatusSet,
    /// A flow step: its flow's name.
    pub flow: Option<&'a str>,
    /// Its checks, in the order of `stats.checks`.
    pub checks: &'a [(String, crate::capture::Check)],
    /// It makes gRPC calls (for `grpc_req_duration`).
    pub grpc: bool,
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
            // (a merge's plan has a reflection row unresolved: its
            // method is the config's; found by a first-user try, a
            // sharded run's grpc_status thresholds saw nothing)
            grpc_method: match (&e.grpc, &e.reflect) {
                (Some(g), _) => Some(g.method.path.trim_start_matches('/')),
                (None, Some(r)) => Some(r.method.trim_start_matches('/')),
                (None, None) => None,
            },
            url: &e.url,
            path: &e.path,
            accept: &e.accept,
            grpc: e.grpc.is_some() || e.reflect.is_some(),
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
        (!f.grpc || self.grpc)
            && f.endpoint.as_deref().is_none_or(|n| n == self.name)
            && f.flow.as_deref().is_none_or(|n| self.flow == Some(n))
            && f.method.as_deref().is_none_or(|m| {
                m.eq_ignore_ascii_case(self.method)
                    || self
                        .grpc_method
                        .is_some_and(|g| g == m.trim_start_matches('/'))
            })
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
            Some(Reads::Blocked) => st.blocked.as_ref().map(Hist::hdr),
            Some(Reads::Sending) => st.sending_all().map(|h| Cow::Owned(h.hdr().into_owned())),
            Some(Reads::Receiving) => st.receiving_all().map(|h| Cow::Owned(h.hdr().into_owned())),
            // `expected_response` beside it: the code is accepted or not
            Some(Reads::Status(code))
                if f.expected.is_some_and(|x| x != e.accept.contains(code)) =>
            {
                None
            }
            Some(Reads::Status(code)) => st
                .by_status
                .as_ref()
                .and_then(|b| b.of(code, st.status.get(code) > 0))
                .map(Hist::hdr),
            Some(Reads::GrpcStatus(code)) => st
                .by_grpc
                .as_ref()
                .and_then(|b| b.of(code as u16, grpc_calls(st, code) > 0))
                .map(Hist::hdr),
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
            // (the grammar refuses grpc_status beside status or expected_response)
            _ if f.grpc_status.is_some() => {
                let code = f.grpc_status.unwrap_or(crate::load::grpc::Code::Ok);
                let n = grpc_calls(st, code);
                (
                    n,
                    if code == crate::load::grpc::Code::Ok {
                        0
                    } else {
                        n
                    },
                )
            }
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
