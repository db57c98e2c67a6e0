//! `summary.json`: the result of a run, the contract with the daemon, the
//! CLI and `analytics/`. Versioned by [`SUMMARY_SCHEMA`]; a change that
//! breaks readers needs a new version.

use crate::stats::{EndpointStats, ErrorKind, Figures, Hist};
use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SUMMARY_SCHEMA: &str = "userflux.summary/v1";

/// Exit code of a run whose thresholds failed (k6 uses 99 too).
pub const EXIT_THRESHOLDS: i32 = 99;

impl Summary {
    /// Thresholds that failed (at the end, or live with `abort_on_fail`).
    pub fn failed_thresholds(&self) -> usize {
        self.thresholds
            .iter()
            .filter(|t| !t.ok || t.aborted)
            .count()
    }
}

/// Requests a run ended while they waited for their response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Interrupted {
    pub requests: u64,
    /// E.g. `the graceful stop (5s) ran out`, or `a second SIGINT ended the run at once`.
    pub reason: String,
}

/// A run's request budget (`requests`, `-n`) and how much of it was sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestsBudget {
    /// The requests the run was to send (a shard's: its share).
    pub asked: u64,
    /// The requests that ended (a response, a failure or `interrupted`).
    pub sent: u64,
    /// Why fewer than `asked` were sent, when they were: `the duration
    /// (10s) ended first`, or the reason the run stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<String>,
}

/// Where a run is in its life. `finished`, `stopped` and `failed` are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Queued,
    Running,
    /// Ran every stage to the end.
    Finished,
    /// Ended early on request (signal or stop), with a valid summary.
    Stopped,
    /// Could not run, or died; `status.json` `error` says why.
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Stopped => "stopped",
            RunState::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    /// Always [`SUMMARY_SCHEMA`].
    pub schema: String,
    pub run_id: String,
    pub name: String,
    pub state: RunState,
    /// Why a stopped run stopped (a signal, a stop request, a threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Requests still waiting for their response when the run ended, and
    /// why they were cut off; they are counted in `totals` and their
    /// endpoints as errors of kind `interrupted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interrupted>,
    /// With a request budget (`requests`, `-n`): how many were asked and
    /// sent, and why not all, when the run ended first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_budget: Option<RequestsBudget>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub ended_at: String,
    /// Seconds from the first VU to the last report, graceful stop included.
    pub duration_s: f64,
    pub engine: EngineInfo,
    pub totals: Stats,
    /// A sharded run's share and group (see `shard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardInfo>,
    /// Per endpoint, by name; a flow's steps are rows named `FLOW.STEP`.
    pub endpoints: BTreeMap<String, Stats>,
    /// Per flow, by name: its iterations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flows: BTreeMap<String, FlowSummary>,
    /// One entry per second of the run.
    pub timeline: Vec<Second>,
    /// Every change the autoscaler made, in order.
    pub scaling_events: Vec<ScalingEvent>,
    /// Every threshold with its observed value; any `ok: false` makes the exit code 99.
    pub thresholds: Vec<crate::thresholds::ThresholdResult>,
    /// `samples.ndjson`, when sampling was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<SamplesSummary>,
    /// A capacity search's result (`userflux-engine search`): the rate
    /// found, its bracket and every trial; the rest of the summary is the
    /// confirmation run's (or the last trial's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<crate::run::search::SearchSummary>,
    /// Per endpoint, the whole-run latency histogram (µs) in HdrHistogram's
    /// V2 compressed form, base64: runs and shards merge without loss.
    pub histograms: BTreeMap<String, String>,
    /// Open-model endpoints: the corrected latency histogram, same form.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub histograms_corrected: BTreeMap<String, String>,
    /// Per endpoint, its phases' histograms (µs, same form), by phase:
    /// `connect`, `tls_handshake`, `waiting`, `blocked`, `sending`,
    /// `receiving`, and for an HTTP/2 endpoint `h2_settings` and
    /// `h2_ping_rtt` (its `h2.settings_ms` and `h2.ping_rtt_ms`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub histograms_phases: BTreeMap<String, BTreeMap<String, String>>,
    /// Per endpoint that had any, the latency (µs, same form; corrected for
    /// an open-model endpoint) of the responses whose status was not
    /// accepted, or that a flow step could not use: what thresholds'
    /// `expected_response` tag reads (the expected ones are the latency
    /// less these), so `merge` rebuilds them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub histograms_unexpected: BTreeMap<String, String>,
    /// Per endpoint, when a threshold read `http_req_duration{status:…}`:
    /// its latency (µs, same form; corrected for an open-model endpoint)
    /// per status code, the codes past the first 8 pooled under `other`
    /// (see docs/thresholds.md), so `merge` judges them again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub histograms_status: BTreeMap<String, BTreeMap<String, String>>,
    /// Per gRPC endpoint, when a threshold read `grpc_status` latency
    /// (`grpc_req_duration{grpc_status:…}`): its latency per `grpc-status`,
    /// by the code's name (`OK`, `UNAVAILABLE`; past the first 8, `other`),
    /// in the same form, so `merge` judges them again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub histograms_grpc_status: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EngineInfo {
    pub version: String,
    pub threads: usize,
    /// Core ids the workers were pinned to (empty when pinning was not possible).
    pub cores: Vec<usize>,
    /// CPU time the engine process used, user and system.
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
}

/// Counts and latency over a run, for one endpoint or all of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Stats {
    pub requests: u64,
    pub errors: u64,
    /// errors / requests (0 when there were no requests).
    pub error_rate: f64,
    /// requests / the load phase's seconds.
    pub rps: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Of complete responses, accepted or not, from the actual send; absent
    /// when there were none.
    pub latency_ms: Option<Latency>,
    /// Open model: latency from the intended send time (coordinated-omission
    /// corrected). In totals, over every endpoint, closed-model ones
    /// contributing their measured latency (they have no schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_corrected_ms: Option<Latency>,
    /// Open model: sends that could not start within the request timeout
    /// of their intended time (or were still waiting at the end).
    pub dropped: u64,
    /// Open model: sends that left 1 ms or more after their intended time.
    pub late: u64,
    /// Count per status code (`"200": 1234`).
    pub status_codes: BTreeMap<String, u64>,
    /// Count per error kind (`connect`, `timeout`, `read`, `write`,
    /// `parse`, `tls`, `status`, `interrupted`, `capture`, `h2_reset`,
    /// `h2_goaway`, `protocol`, `grpc`), only the kinds that occurred.
    pub error_kinds: BTreeMap<String, u64>,
    /// VUs at the end of the load phase.
    pub vus: u32,
    /// The most VUs at once over the run (per worker peaks within a second,
    /// summed over workers and shards). In totals, the endpoints' summed.
    /// Absent in summaries from before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_vus: Option<u32>,
    /// The protocol an endpoint's connections spoke, its `http` (with
    /// `"auto"` decided by ALPN at start). Absent in totals, and in
    /// summaries from before HTTP/2 (read as `http/1.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// An endpoint's requests in flight per connection (1 over HTTP/1.1):
    /// its VUs shared ceil(vus / streams) connections. Absent in totals,
    /// and in summaries from before HTTP/2 (read as 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<u32>,
    /// The autoscaler's target, for an autoscaled endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rps: Option<f64>,
    /// For an autoscaled endpoint: mean RPS over the last five whole seconds
    /// of the load phase, what it reached once scaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved_rps: Option<f64>,
    /// What the responses' `Server-Timing` headers said, per metric (ms).
    /// In totals, the metrics that several endpoints report.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub server_timing: BTreeMap<String, ServerTimingMetric>,
    /// `Server-Timing` entries that could not be parsed (skipped).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub server_timing_malformed: u64,
    /// Per check, by name, its passes and fails (in totals, summed over
    /// the endpoints with a check of that name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, CheckCount>,
    /// Passed checks / all checks judged (k6's `checks` rate); absent
    /// without checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks_rate: Option<f64>,
    /// TCP connects (k6's `http_req_connecting`), once per connection made, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<Latency>,
    /// TLS handshakes (`http_req_tls_handshaking`), once per `https`
    /// connection made, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_handshake_ms: Option<Latency>,
    /// TLS handshakes that resumed a session (the others, `tls_handshake_ms`'s
    /// count less these, were full handshakes).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tls_resumed: u64,
    /// From the send to the first byte of the response (`http_req_waiting`), ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_ms: Option<Latency>,
    /// Open model: from when a send was due to when a connection took it
    /// (`http_req_blocked`), per send, ms; absent in the closed model
    /// (a VU owns its connection and never waits for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_ms: Option<Latency>,
    /// First to last byte of the request written (`http_req_sending`), ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_ms: Option<Latency>,
    /// First to last byte of the response read (`http_req_receiving`), ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiving_ms: Option<Latency>,
    /// HTTP/2 connection events, for an endpoint that ran over h2 (in
    /// totals, summed over those endpoints); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h2: Option<H2Summary>,
    /// gRPC calls per `grpc-status`, by the code's name (`OK`,
    /// `UNAVAILABLE`, `DEADLINE_EXCEEDED`, …), only codes that occurred; for
    /// an endpoint with `grpc` (in totals, summed over those). A call with
    /// no readable status (not a valid gRPC answer, a timeout) has none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grpc_status: BTreeMap<String, u64>,
}

/// What an HTTP/2 endpoint's connections reported besides its requests
/// ([`crate::h2_stats::H2Stats`]). The histograms behind `settings_ms` and
/// `ping_rtt_ms` are in `histograms_phases` (`h2_settings`, `h2_ping_rtt`)
/// so shards merge without loss.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct H2Summary {
    /// GOAWAY frames received.
    pub goaways: u64,
    /// RST_STREAM frames received, per error code by its RFC 9113 name
    /// (`CANCEL`, `REFUSED_STREAM`, …; codes past `HTTP_1_1_REQUIRED`
    /// pooled as `other`); only codes that occurred.
    #[serde(default)]
    pub resets: BTreeMap<String, u64>,
    /// Requests sent again on a new connection: above a GOAWAY's last
    /// stream id, or refused with REFUSED_STREAM (never processed).
    pub retried: u64,
    /// From the connect (and TLS handshake) done to the server's first
    /// SETTINGS, once per connection, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_ms: Option<Latency>,
    /// PING round trips, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_rtt_ms: Option<Latency>,
}

/// The keys of an HTTP/2 endpoint's `settings_ms` and `ping_rtt_ms`
/// histograms in `histograms_phases`.
pub const H2_SETTINGS: &str = "h2_settings";
pub const H2_PING_RTT: &str = "h2_ping_rtt";

impl H2Summary {
    pub fn from_stats(h: &crate::h2_stats::H2Stats) -> H2Summary {
        H2Summary {
            goaways: h.goaways,
            resets: (h.resets.iter().enumerate())
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| (crate::h2_stats::H2Stats::code_name(i).to_string(), *n))
                .collect(),
            retried: h.retried,
            settings_ms: h.settings.as_ref().and_then(Latency::from_hist),
            ping_rtt_ms: h.ping_rtt.as_ref().and_then(Latency::from_hist),
        }
    }
}

/// A check's outcomes over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckCount {
    pub passes: u64,
    pub fails: u64,
}

/// Passes over all judged checks, if any were judged.
pub fn checks_rate(checks: &BTreeMap<String, CheckCount>) -> Option<f64> {
    let (p, f) = checks
        .values()
        .fold((0, 0), |(p, f), c| (p + c.passes, f + c.fails));
    (p + f > 0).then(|| p as f64 / (p + f) as f64)
}

/// A protocol as ALPN names it: what an endpoint's connections spoke.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum Protocol {
    #[default]
    #[serde(rename = "http/1.1")]
    Http1,
    #[serde(rename = "h2")]
    H2,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "http/1.1",
            Protocol::H2 => "h2",
        }
    }
}

impl Stats {
    /// The protocol, `http/1.1` when the summary does not say (older ones).
    pub fn protocol(&self) -> Protocol {
        self.protocol.unwrap_or_default()
    }

    /// Streams per connection, 1 when the summary does not say.
    pub fn streams(&self) -> u32 {
        self.streams.unwrap_or(1)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One `Server-Timing` metric over a run, in milliseconds (µs precision).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerTimingMetric {
    /// Responses that reported it (with a `dur`).
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    /// Its histogram (µs) in HdrHistogram's V2 compressed form, base64,
    /// like `histograms`.
    pub histogram: String,
}

impl ServerTimingMetric {
    pub fn from_histogram(h: &Histogram<u64>) -> ServerTimingMetric {
        ServerTimingMetric::of(h, encode_histogram(h))
    }

    pub fn from_hist(h: &Hist) -> ServerTimingMetric {
        ServerTimingMetric::of(&h.view(), encode_hist(h))
    }

    fn of(h: &impl Figures, histogram: String) -> ServerTimingMetric {
        let q = |p: f64| ms(h.value_at_quantile(p));
        ServerTimingMetric {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p99_9: q(0.999),
            max: ms(h.max()),
            histogram,
        }
    }
}

/// A `Server-Timing` metric in one second of the timeline, ms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetricSecond {
    pub p50: f64,
    pub p99: f64,
}

impl MetricSecond {
    /// A second's p50 and p99 of a metric's histogram (µs), in ms.
    pub fn of(h: &impl Figures) -> MetricSecond {
        let q = |p| h.value_at_quantile(p) as f64 / 1000.0;
        MetricSecond {
            p50: q(0.5),
            p99: q(0.99),
        }
    }
}

/// What was written to `samples.ndjson`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SamplesSummary {
    /// File name inside the run directory.
    pub file: String,
    pub rate: f64,
    /// Lines written: one per sampled request.
    pub written: u64,
    /// The file's size in bytes.
    pub bytes: u64,
    /// Why sampling stopped early (`disk_full`, `file_too_large`, `io`).
    pub error: Option<crate::samples::SampleError>,
}

/// A change of an endpoint's workers (VUs) by the autoscaler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScalingEvent {
    /// Seconds from the run start.
    pub t: f64,
    pub endpoint: String,
    pub from: u32,
    pub to: u32,
    pub reason: String,
    /// What the endpoint did over the interval that led to the decision.
    pub rps: f64,
    pub p99_ms: Option<f64>,
    pub error_rate: f64,
    /// In a merged run: the shard whose autoscaler decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    /// A rate change (`set_rate`, reason `manual`): the open-model unit's
    /// rate before and after, requests (a flow's iterations) per second;
    /// `from`/`to` then both hold its VUs (most connections), unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateChange>,
}

/// An open-model unit's rate before and after a live change, per second.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RateChange {
    pub from: f64,
    pub to: f64,
}

/// Latency in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub stdev: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

/// A flow over the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FlowSummary {
    /// Its steps' rows in `endpoints`, in order.
    pub steps: Vec<String>,
    /// Iterations whose every step succeeded.
    pub iterations: u64,
    /// Iterations ended by a failed step (an error of any kind, an
    /// unexpected status, a capture that found nothing).
    pub failed_iterations: u64,
    /// Iterations cut off by the end of the run (between two steps, or a
    /// step whose request it interrupted) or by a VU leaving (a ramp-down, the autoscaler).
    pub interrupted_iterations: u64,
    /// Completed iterations per second of load.
    pub iterations_per_s: f64,
    /// VUs at the end of the load phase.
    pub vus: u32,
    /// Duration of the completed iterations (first request sent to last
    /// response, think time included), ms.
    pub iteration_duration_ms: Option<Latency>,
    /// The same durations (µs) as an HdrHistogram V2 compressed, base64.
    pub histogram: String,
}

/// A flow's iterations in one second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SecondFlow {
    pub iterations: u64,
    pub failed: u64,
    /// Completed iterations per second.
    pub rate: f64,
    /// Duration of the iterations completed in this second, ms.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub vus: u32,
}

/// One second of the run: `t` is its start in seconds from the run start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Second {
    pub t: u64,
    /// How much of this second the run covered (seconds, 0..1), present only
    /// when it is less than all of it: the second a stop or the load's end
    /// cut, and the graceful stop's tail. Its rates (`rps`, a flow's `rate`)
    /// are per covered time; a chart must not draw it as a whole second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covered: Option<f64>,
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    /// Latency percentiles of the responses that completed in this second, ms.
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub vus: u32,
    pub endpoints: BTreeMap<String, SecondEndpoint>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flows: BTreeMap<String, SecondFlow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SecondEndpoint {
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub vus: u32,
    /// `Server-Timing` metrics reported in this second.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub server_timing: BTreeMap<String, MetricSecond>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The percentile (0..100) of a histogram in ms, `None` when it is empty.
pub fn percentile_ms(h: &impl Figures, p: f64) -> Option<f64> {
    (!h.is_empty()).then(|| ms(h.value_at_quantile(p / 100.0)))
}

impl Latency {
    pub fn from_hist(h: &Hist) -> Option<Latency> {
        Latency::from_histogram(&h.view())
    }

    pub fn from_histogram(h: &impl Figures) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let q = |p: f64| ms(h.value_at_quantile(p));
        Some(Latency {
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            stdev: h.stdev() / 1000.0,
            p50: q(0.50),
            p75: q(0.75),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p99_9: q(0.999),
            max: ms(h.max()),
        })
    }
}

impl Stats {
    /// Whole-run figures from merged counts; `seconds` is the load phase.
    pub fn from_counts(s: &EndpointStats, seconds: f64, vus: u32) -> Stats {
        let status_codes = s
            .status
            .iter()
            .map(|(code, n)| (format!("{code:03}"), n))
            .collect();
        let error_kinds = ErrorKind::ALL
            .iter()
            .filter(|k| s.error_kinds[**k as usize] > 0)
            .map(|k| (k.as_str().to_string(), s.error_kinds[*k as usize]))
            .collect();
        Stats {
            requests: s.requests,
            errors: s.errors,
            error_rate: if s.requests == 0 {
                0.0
            } else {
                s.errors as f64 / s.requests as f64
            },
            rps: if seconds > 0.0 {
                s.requests as f64 / seconds
            } else {
                0.0
            },
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            latency_ms: Latency::from_hist(&s.latency),
            latency_corrected_ms: s.corrected.as_ref().and_then(Latency::from_hist),
            dropped: s.dropped,
            late: s.late,
            status_codes,
            error_kinds,
            vus,
            peak_vus: None,
            protocol: None,
            streams: None,
            target_rps: None,
            achieved_rps: None,
            server_timing: s
                .server_timing
                .iter()
                .map(|(name, h)| (name.to_string(), ServerTimingMetric::from_hist(h)))
                .collect(),
            server_timing_malformed: s.server_timing.malformed,
            checks: BTreeMap::new(),
            checks_rate: None,
            connect_ms: s.connecting.as_ref().and_then(Latency::from_hist),
            tls_handshake_ms: s.tls_handshaking.as_ref().and_then(Latency::from_hist),
            tls_resumed: s.tls_resumed,
            waiting_ms: s.waiting.as_ref().and_then(Latency::from_hist),
            blocked_ms: s.blocked.as_ref().and_then(Latency::from_hist),
            sending_ms: s.sending_all().as_ref().and_then(Latency::from_hist),
            receiving_ms: s.receiving_all().as_ref().and_then(Latency::from_hist),
            h2: s.h2.as_deref().map(H2Summary::from_stats),
            grpc_status: s
                .grpc_status
                .iter()
                .flat_map(|g| g.iter().enumerate())
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| {
                    let code = crate::load::grpc::Code::from_u32(i as u32);
                    (code.name().to_string(), *n)
                })
                .collect(),
        }
    }

    /// Sets the checks from a row's counts (`names` in the row's order).
    pub fn with_checks(mut self, names: &[&str], counts: &[[u64; 2]]) -> Stats {
        for (i, name) in names.iter().enumerate() {
            let [passes, fails] = counts.get(i).copied().unwrap_or_default();
            self.checks
                .insert(name.to_string(), CheckCount { passes, fails });
        }
        self.checks_rate = checks_rate(&self.checks);
        self
    }
}

/// One second of a shard's timeline as histograms, a line of
/// `timeline-histograms.ndjson`: what `merge` adds to give a merged second
/// exact percentiles. Empty histograms are left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondHistograms {
    /// The second's start, in seconds from the run start (as the timeline's `t`).
    pub t: u64,
    /// Per endpoint (a flow's step as `FLOW.STEP`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, EndpointSecondHistograms>,
    /// Per flow: the durations of the iterations completed in the second.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flows: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointSecondHistograms {
    /// The latencies (µs) of the responses that completed in the second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
    /// Per `Server-Timing` metric.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub server_timing: BTreeMap<String, String>,
}

/// HdrHistogram V2 compressed, base64 (what `HistogramLogReader`s read),
/// in the full-range form ([`crate::stats::full_range`]).
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    encode_full(&crate::stats::full_range(h))
}

/// [`encode_histogram`] of a [`Hist`].
pub fn encode_hist(h: &Hist) -> String {
    match h.full_range_of_values() {
        Some(full) => encode_full(&full),
        None => encode_histogram(&h.hdr()), // dense: borrowed
    }
}

fn encode_full<T: hdrhistogram::Counter>(full: &Histogram<T>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(full, &mut bytes)
        .expect("serializing to memory cannot fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The inverse of [`encode_histogram`].
pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| e.to_string())?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_round_trip_without_loss() {
        let mut h = crate::stats::new_histogram();
        for v in [1u64, 10, 100, 1000, 12_345, 10_000_000] {
            h.record_n(v, v % 7 + 1).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back, crate::stats::full_range(&h));
        assert_eq!(back.high(), crate::stats::MAX_LATENCY_US);
        assert_eq!(
            (back.len(), back.max(), back.value_at_quantile(0.5)),
            (h.len(), h.max(), h.value_at_quantile(0.5))
        );
        assert!(decode_histogram("not base64!").is_err());
    }

    #[test]
    fn h2_figures_and_kinds_are_written_and_read_back() {
        let mut s = EndpointStats::new();
        s.record_response(1_000, None, 200, None);
        s.record_failure(ErrorKind::H2Reset);
        s.record_failure(ErrorKind::H2Reset);
        s.record_failure(ErrorKind::H2Goaway);
        s.record_failure(ErrorKind::Protocol);
        // an HTTP/1.1 row: no h2 object at all
        let plain = Stats::from_counts(&s, 1.0, 1);
        let v = serde_json::to_value(&plain).unwrap();
        assert!(v.get("h2").is_none(), "{v}");
        assert_eq!(
            v["error_kinds"],
            serde_json::json!({"h2_goaway": 1, "h2_reset": 2, "protocol": 1})
        );

        let mut h2 = crate::h2_stats::H2Stats {
            goaways: 1,
            retried: 3,
            ..Default::default()
        };
        h2.record_reset(8);
        h2.record_reset(8);
        h2.record_reset(0x99);
        for us in [500, 1_500] {
            h2.settings.get_or_insert_with(Hist::new).record(us);
        }
        s.h2 = Some(Box::new(h2));
        let stats = Stats::from_counts(&s, 1.0, 1);
        let v = serde_json::to_value(&stats).unwrap();
        let h = &v["h2"];
        assert_eq!(
            (&h["goaways"], &h["retried"], &h["resets"]),
            (
                &serde_json::json!(1),
                &serde_json::json!(3),
                &serde_json::json!({"CANCEL": 2, "other": 1})
            ),
            "{h}"
        );
        // shaped like the phases: the latency fields, ms; no PING, no key
        assert_eq!(
            (
                h["settings_ms"]["min"].as_f64(),
                h["settings_ms"]["max"].as_f64()
            ),
            (Some(0.5), Some(1.5))
        );
        assert_eq!(h["settings_ms"].as_object().unwrap().len(), 10);
        assert!(h.get("ping_rtt_ms").is_none(), "{h}");
        let back: Stats = serde_json::from_value(v).unwrap();
        assert_eq!(back.h2, stats.h2);
        assert_eq!(back.error_kinds, stats.error_kinds);
    }

    #[test]
    fn latency_is_in_milliseconds() {
        let mut h = crate::stats::new_histogram();
        for _ in 0..99 {
            h.record(10_000).unwrap();
        }
        h.record(50_000).unwrap();
        let l = Latency::from_histogram(&h).unwrap();
        assert!((l.p50 - 10.0).abs() < 0.011, "{}", l.p50);
        assert!((l.max - 50.0).abs() < 0.05, "{}", l.max);
        assert!(Latency::from_histogram(&crate::stats::new_histogram()).is_none());
    }
}
