//! The config's model: the types a user writes (a run's `config.json` is
//! the same, resolved), their serde defaults, and what follows from them
//! alone (the run's length, each row's URL, whether a unit is open-model).
//! Reading is [`super::read`]; validation [`super::validate`].

use super::autoscale::{Autoscale, AutoscaleSpec, EndpointAutoscale};
use super::traffic::{self, DataSpec, Flow};
use super::{compile, search};
use crate::duration::Dur;
use crate::thresholds::ThresholdSpec;
use crate::url::HttpUrl;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A load test: who to load, how hard, for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A label for people; shown in summaries and reports.
    #[serde(default = "default_name")]
    pub name: String,
    /// Base URL that endpoint `path`s are relative to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Worker threads (one event loop pinned per core); default: all cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// VU ramp of the closed-model endpoints: each stage moves linearly from
    /// the previous target (0 at the start) to its own over its duration. A
    /// `"0s"` stage is a step. Needed when any endpoint is closed-model.
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// The run's length where no stages or rate_stages give it; the run
    /// lasts the longest of this, the stages and every endpoint's rate_stages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Dur>,
    /// Finish after exactly this many requests over all endpoints (each
    /// ending as a response, a failure or `interrupted`), or at the end of
    /// the run's length if that comes first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// k6-style thresholds by metric key; any failed one makes the exit code 99.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub thresholds: BTreeMap<String, Vec<ThresholdSpec>>,
    /// Single requests, each a load unit with its own VUs or rate.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Multi-step flows: load units whose VUs run their steps in order,
    /// carrying captured values and cookies from step to step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<Flow>,
    /// Data sets for `{{data.SET.COLUMN}}` in templates, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, DataSpec>,
    /// Largest response body a capture reads, in bytes; over it the
    /// capture fails naming the limit.
    #[serde(
        default = "default_max_capture_body",
        skip_serializing_if = "is_default_capture_body"
    )]
    pub max_capture_body: usize,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// How long in-flight requests may finish after the load stops.
    #[serde(default = "default_graceful_stop")]
    pub graceful_stop: Dur,
    /// How long a VU that a ramp-down or the autoscaler retires may take to
    /// finish the flow iteration it is in (k6's `gracefulRampDown`): it
    /// starts no step after that.
    #[serde(default = "default_graceful_ramp_down")]
    pub graceful_ramp_down: Dur,
    /// Autoscale defaults for every endpoint; each endpoint's `autoscale`
    /// is merged over them, or `false` keeps it fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<AutoscaleSpec>,
    /// A capacity search instead of one run (`userflux-engine search`):
    /// trials of this config at rates (or VU counts) it chooses, judged by
    /// the thresholds. See the README's "Capacity search".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<search::SearchConfig>,
    /// How the stages' VUs are split over endpoints.
    #[serde(default)]
    pub distribution: Distribution,
    /// With `distribution: priority`: percent of the VUs for each level.
    #[serde(default)]
    pub priority_shares: PriorityShares,
    /// Most VUs over all endpoints at once; priorities decide who gets them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<u32>,
    /// Run share `"I/N"` of this config (see `shard`); also `--shard` and
    /// `USERFLUX_SHARD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// The HTTP version of every unit without its own `http`: `"1.1"`
    /// (default), `"2"` (HTTP/2: by ALPN over TLS, h2c with prior
    /// knowledge over `http://`) or `"auto"` (HTTP/2 where an `https://`
    /// server offers it by ALPN, else HTTP/1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<super::HttpVersion>,
    /// HTTP/2 streams (requests in flight) per connection for every unit
    /// without its own, 1–1000 (default 1): a unit's VUs share
    /// ceil(VUs / streams) connections. Above 1 needs `http` "2" or "auto".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<u32>,
    /// TLS for `https://` URLs: trust, client certificates, versions, resumption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::TlsSpec>,
    /// Per-request lines in `samples.ndjson`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<Samples>,
    /// The directory of the config file, for data files given relative to
    /// it; set by [`Config::read`], absent for a config sent as text.
    #[serde(skip)]
    #[schemars(skip)]
    pub base_dir: Option<std::path::PathBuf>,
    /// The data sets, loaded by [`Config::resolve`].
    #[serde(skip)]
    #[schemars(skip)]
    pub data_sets: traffic::DataSets,
    /// What [`Config::resolve`] compiled (templates, checks, captures,
    /// thresholds), kept for the plan.
    #[serde(skip)]
    #[schemars(skip)]
    pub compiled: compile::Kept,
}

/// `samples`: which requests get a line in `samples.ndjson`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Samples {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Fraction of requests written (0..1), each chosen independently.
    #[serde(default = "default_rate")]
    pub rate: f64,
}

impl Samples {
    /// The rate at which lines are written, when sampling is on.
    pub fn active_rate(config: Option<Samples>) -> Option<f64> {
        config.filter(|s| s.enabled).map(|s| s.rate)
    }
}

pub(crate) fn default_true() -> bool {
    true
}
pub(crate) fn default_rate() -> f64 {
    1.0
}

/// How the stages' VUs are split over endpoints.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// In proportion to `weight`.
    #[default]
    Proportional,
    /// The same number for every endpoint.
    Equal,
    /// `priority_shares` per level, split by `weight` inside a level.
    Priority,
}

#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    #[default]
    Medium,
    Low,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Medium, Priority::Low];
}

/// Percent of the VUs for each priority level; the three add up to 100.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityShares {
    pub high: f64,
    pub medium: f64,
    pub low: f64,
}

impl Default for PriorityShares {
    fn default() -> PriorityShares {
        PriorityShares {
            high: 60.0,
            medium: 30.0,
            low: 10.0,
        }
    }
}

impl PriorityShares {
    pub fn of(&self, p: Priority) -> f64 {
        match p {
            Priority::High => self.high,
            Priority::Medium => self.medium,
            Priority::Low => self.low,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub duration: Dur,
    /// VUs (keep-alive connections) at the end of the stage.
    pub target: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Unique among endpoints and flows; 1-128 printable characters, without
    /// control characters or surrounding spaces (`POST /api/orders` is a
    /// name); used in summaries and samples.
    pub name: String,
    /// The HTTP method; default GET (the resolved config says it). Left
    /// out for a `grpc` unit: a call is always a POST, and any method
    /// beside `grpc` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Method")]
    pub method: Option<Method>,
    /// Path relative to `target` (starts with `/`); or give `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A full `http://` URL, for an endpoint on another host than `target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Share of the VUs, relative to the other endpoints' weights.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Pause between a response and this VU's next request.
    #[serde(default, skip_serializing_if = "Dur::is_zero")]
    pub think_time: Dur,
    /// Accepted status codes; others count as `status` errors. Default
    /// (left out): 100–399. An empty list is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Vec<u16>>,
    /// Who gets VUs first under `distribution: priority` and a binding `max_workers`.
    #[serde(default)]
    pub priority: Priority,
    /// `false`, `true` or overrides of the global `autoscale`. Resolved, it
    /// is the whole merged object (autoscale on) or `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<EndpointAutoscale>,
    /// Open model: sends per second on a fixed schedule, whatever the
    /// response times (instead of VUs from the stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Open model with a ramping rate: each stage moves linearly from the
    /// previous target (0 at the start) to its own, in req/s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_stages: Vec<RateStageSpec>,
    /// Open model: connections opened before the first send (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_allocated_vus: Option<u32>,
    /// Open model: most connections; a send with none free waits, and is
    /// dropped if it cannot start within `timeouts.request` (default:
    /// `pre_allocated_vus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vus: Option<u32>,
    /// Collect the responses' `Server-Timing` metrics (default true).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub server_timing: bool,
    /// Named assertions on each response, counted as passes and fails;
    /// as in k6, a failed check does not fail the request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, crate::capture::CheckSpec>,
    /// This endpoint's HTTP version (`"1.1"`, `"2"`, `"auto"`); default:
    /// the top-level `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<super::HttpVersion>,
    /// This endpoint's HTTP/2 streams per connection (1–1000); default:
    /// the top-level `streams`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<u32>,
    /// A unary gRPC call instead of an HTTP request (over HTTP/2; see
    /// docs/config.md, "gRPC").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<super::grpc::GrpcSpec>,
}

pub(crate) fn is_true(b: &bool) -> bool {
    *b
}

/// A stage of an arrival rate, in requests per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateStageSpec {
    pub duration: Dur,
    /// Requests per second at the end of the stage.
    pub target: f64,
}

/// Connections an open-model endpoint opens before its first send by default.
pub const DEFAULT_PRE_ALLOCATED_VUS: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Longest wait for a TCP connection to be established.
    #[serde(default = "default_connect_timeout")]
    pub connect: Dur,
    /// Longest wait from sending a request to its complete response.
    #[serde(default = "default_request_timeout")]
    pub request: Dur,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: default_connect_timeout(),
            request: default_request_timeout(),
        }
    }
}

/// HTTP methods the engine sends. Anything else is a typo more often than not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Method {
    #[default]
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

impl schemars::JsonSchema for Method {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Method".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let all: Vec<&str> = Method::ALL.iter().map(|m| m.as_str()).collect();
        schemars::json_schema!({"type": "string", "enum": all})
    }
}

impl Serialize for Method {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
        let s = String::deserialize(d)?;
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<_> = Method::ALL.iter().map(|m| m.as_str()).collect();
                serde::de::Error::custom(format!(
                    "unknown method \"{s}\" (one of {})",
                    all.join(", ")
                ))
            })
    }
}

/// `max_capture_body` unless set: 64 KiB.
pub const DEFAULT_MAX_CAPTURE_BODY: usize = 64 * 1024;
pub(crate) fn default_max_capture_body() -> usize {
    DEFAULT_MAX_CAPTURE_BODY
}
pub(crate) fn is_default_capture_body(n: &usize) -> bool {
    *n == DEFAULT_MAX_CAPTURE_BODY
}
pub(crate) fn default_name() -> String {
    "run".into()
}
pub(crate) fn default_weight() -> f64 {
    1.0
}
pub(crate) fn default_graceful_stop() -> Dur {
    Dur::from_secs(5)
}
pub(crate) fn default_graceful_ramp_down() -> Dur {
    Dur::from_secs(30)
}
pub(crate) fn default_connect_timeout() -> Dur {
    Dur::from_secs(5)
}
pub(crate) fn default_request_timeout() -> Dur {
    Dur::from_secs(30)
}

impl Config {
    /// The run's length: the longest of `duration`, the stages and every
    /// endpoint's `rate_stages`.
    /// Saturating: a config with absurd durations is refused by validation
    /// (see [`super::limits`]), which calls this first.
    pub fn duration(&self) -> std::time::Duration {
        let total = |ds: &mut dyn Iterator<Item = std::time::Duration>| {
            ds.fold(std::time::Duration::ZERO, |a, d| a.saturating_add(d))
        };
        let stages = total(&mut self.stages.iter().map(|s| s.duration.0));
        let rates = self
            .endpoints
            .iter()
            .map(|e| &e.rate_stages)
            .chain(self.flows.iter().map(|f| &f.rate_stages))
            .map(|r| total(&mut r.iter().map(|s| s.duration.0)));
        rates
            .chain([
                stages,
                self.duration.map_or(std::time::Duration::ZERO, |d| d.0),
            ])
            .max()
            .unwrap_or_default()
    }

    /// The URL each request row loads (see [`Config::rows`]: endpoints,
    /// then flow steps), in that order. Call on a valid config.
    pub fn endpoint_urls(&self) -> Result<Vec<HttpUrl>, String> {
        let target = self.target.as_deref().map(HttpUrl::parse).transpose()?;
        self.rows()
            .iter()
            .map(|ep| match (&ep.url, &ep.path, &target) {
                (Some(u), _, _) => HttpUrl::parse(u),
                (None, Some(p), Some(t)) => Ok(HttpUrl {
                    path: t.join(p),
                    ..t.clone()
                }),
                // a grpc call's path is its method's (set by the plan)
                (None, None, Some(t)) if ep.grpc.is_some() => Ok(t.clone()),
                _ => Err(format!(
                    "endpoint {} has neither url nor path with a target",
                    ep.name
                )),
            })
            .collect()
    }
}

impl Endpoint {
    /// The HTTP method it sends: `method`, or GET (a gRPC call's is POST,
    /// decided by the plan).
    pub fn http_method(&self) -> Method {
        self.method.unwrap_or_default()
    }

    /// Whether autoscale applies: its own setting, else whether there is a
    /// global `autoscale`.
    pub fn autoscale_on(&self, global: bool) -> bool {
        match &self.autoscale {
            Some(EndpointAutoscale::On(_)) => true,
            Some(EndpointAutoscale::Off) => false,
            None => global,
        }
    }

    /// Open model: sends on a schedule (`rate` or `rate_stages`).
    pub fn is_open(&self) -> bool {
        self.rate.is_some() || !self.rate_stages.is_empty()
    }

    /// The resolved autoscale settings, when autoscale is on (call on a resolved config).
    pub fn autoscale(&self) -> Option<Autoscale> {
        match &self.autoscale {
            Some(EndpointAutoscale::On(spec)) => Some(spec.resolved()),
            _ => None,
        }
    }
}
