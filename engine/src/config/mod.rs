//! The run configuration: what a user writes, validated, with defaults filled.
//!
//! Parsing is two steps so that every error names where it is: JSON syntax
//! errors carry a line and column, and everything after that (unknown
//! fields, wrong types, bad values) carries the field path, such as
//! `endpoints[1].method: unknown method "GTE"`. A field the engine does not
//! implement is an unknown field and is rejected, never ignored.
//!
//! [`Config::load`] returns the *resolved* config (defaults filled, threads
//! decided), which is what a run writes to `config.json`.

pub mod autoscale;
pub mod compile;
pub mod json;
pub mod limits;
pub mod quick;
pub mod search;
pub mod traffic;

pub use autoscale::{Autoscale, AutoscaleSpec, EndpointAutoscale};
pub use traffic::{DataSpec, Flow, Step};

use crate::duration::Dur;
use crate::template::Template;
use crate::thresholds::{Threshold, ThresholdSpec};
use crate::url::HttpUrl;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use traffic::Part;

pub use limits::{MAX_THREADS, MAX_VUS};

/// Everything wrong with a config, one `path: reason` line per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    fn one(p: impl Into<String>) -> ConfigError {
        ConfigError {
            problems: vec![p.into()],
        }
    }
}

impl ConfigError {
    /// Prefixes every problem with the file it is in.
    pub fn in_file(mut self, path: &Path) -> ConfigError {
        for p in &mut self.problems {
            *p = format!("{}: {p}", path.display());
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("\n"))
    }
}

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

fn default_true() -> bool {
    true
}
fn default_rate() -> f64 {
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
    /// Unique; letters, digits, `_`, `-`, `.`; used in summaries and samples.
    pub name: String,
    #[serde(default)]
    pub method: Method,
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
}

fn is_true(b: &bool) -> bool {
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
fn default_max_capture_body() -> usize {
    DEFAULT_MAX_CAPTURE_BODY
}
fn is_default_capture_body(n: &usize) -> bool {
    *n == DEFAULT_MAX_CAPTURE_BODY
}
fn default_name() -> String {
    "run".into()
}
fn default_weight() -> f64 {
    1.0
}
fn default_graceful_stop() -> Dur {
    Dur::from_secs(5)
}
pub(crate) fn default_graceful_ramp_down() -> Dur {
    Dur::from_secs(30)
}
fn default_connect_timeout() -> Dur {
    Dur::from_secs(5)
}
fn default_request_timeout() -> Dur {
    Dur::from_secs(30)
}

impl Config {
    /// Reads, parses, validates and resolves a config file; errors name the file.
    /// Migration warnings are dropped here; use [`Config::read`] to show them.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::read(path)?.0.resolve().map_err(|e| e.in_file(path))
    }

    /// Reads and parses a config file without validating or resolving it,
    /// so a caller can apply overrides (`--target`, `--threads`) first.
    /// Older forms (Tressi's, the quick form) are converted first; the
    /// warnings say what was converted.
    pub fn read(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let text =
            read_bounded(path).map_err(|e| ConfigError::one(format!("{}: {e}", path.display())))?;
        let (mut config, warnings) = Config::parse_migrating(&text).map_err(|e| e.in_file(path))?;
        config.base_dir = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        Ok((config, warnings))
    }

    /// Parses JSON text in any accepted form, converting older ones;
    /// returns the unvalidated config and the migration warnings.
    pub fn parse_migrating(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let value = json_object(text)?;
        let (value, warnings) = crate::migrate::migrate(value).map_err(ConfigError::one)?;
        Ok((Config::from_value(value)?, warnings))
    }

    /// Parses, validates and resolves a config from JSON text.
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text)?.resolve()
    }

    /// Parses JSON text into a config, unvalidated.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_value(json_object(text)?)
    }

    /// A config from parsed JSON in the current form, unvalidated; errors name the field path.
    pub fn from_value(value: serde_json::Value) -> Result<Config, ConfigError> {
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            ConfigError::one(if path == "." {
                inner
            } else {
                format!("{path}: {inner}")
            })
        })?;
        Ok(config)
    }

    /// Validates every field, merges each endpoint's autoscale over the
    /// global one, and fills the defaults that depend on the machine.
    pub fn resolve(mut self) -> Result<Config, ConfigError> {
        // Data sets first: templates name their columns.
        let mut problems = traffic::load_data(&mut self);
        let (found, compiled) = self.problems();
        problems.extend(found);
        if let Some(g) = &self.autoscale {
            g.field_problems("autoscale", &mut problems);
        }
        let (global, max_workers) = (self.autoscale.clone(), self.max_workers);
        for (i, ep) in self.endpoints.iter_mut().enumerate() {
            resolve_unit(
                ep,
                &format!("endpoints[{i}]"),
                &global,
                max_workers,
                &mut problems,
            );
        }
        for (i, f) in self.flows.iter_mut().enumerate() {
            let mut unit = f.as_unit();
            resolve_unit(
                &mut unit,
                &format!("flows[{i}]"),
                &global,
                max_workers,
                &mut problems,
            );
            f.autoscale = unit.autoscale;
            f.pre_allocated_vus = unit.pre_allocated_vus;
            f.max_vus = unit.max_vus;
        }
        if let Some(max) = self.max_workers {
            let floor: u64 = self
                .units()
                .iter()
                .filter_map(Endpoint::autoscale)
                .map(|a| a.min_workers as u64)
                .sum();
            if max == 0 {
                problems.push("max_workers: must be at least 1".into());
            } else if floor > max as u64 {
                problems.push(format!(
                    "max_workers: {max} is below the sum of the endpoints' min_workers ({floor})"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        if self.threads.is_none() {
            self.threads = Some(std::thread::available_parallelism().map_or(1, |n| n.get()));
        }
        self.compiled = compile::Kept(Some(std::sync::Arc::new(compiled)));
        Ok(self)
    }

    /// Total length of the load phase (the sum of the stages).
    /// The run's length: the longest of `duration`, the stages and every
    /// endpoint's `rate_stages`.
    /// Saturating: a config with absurd durations is refused by validation
    /// (see [`limits`]), which calls this first.
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

    /// Every threshold, parsed; errors name `thresholds.KEY[i]`.
    pub fn parsed_thresholds(&self) -> Result<Vec<Threshold>, Vec<String>> {
        match compile::thresholds(self) {
            (out, errors) if errors.is_empty() => Ok(out),
            (_, errors) => Err(errors),
        }
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
                _ => Err(format!(
                    "endpoint {} has neither url nor path with a target",
                    ep.name
                )),
            })
            .collect()
    }

    /// Every problem of the config, and what it compiles to (see
    /// [`compile`]: its problems are placed where they always were).
    fn problems(&self) -> (Vec<String>, compile::Compiled) {
        let (compiled, mut walked) = compile::compile(self);
        let parts = self.parts();
        let mut out = limits::problems(self, &parts);
        let mut bad = |path: String, why: String| out.push(format!("{path}: {why}"));
        if self.name.trim().is_empty() {
            bad("name".into(), "must not be empty".into());
        }
        if let Some(s) = &self.search {
            let mut found = Vec::new();
            s.problems(&mut found);
            for p in found {
                let (path, why) = p.split_once(": ").unwrap_or(("search", &p));
                bad(path.into(), why.into());
            }
            if self.thresholds.is_empty() {
                bad(
                    "search".into(),
                    "a search needs an SLO: thresholds, e.g. {\"http_req_duration\": [\"p(99)<50\"]}"
                        .into(),
                );
            }
            if self.shard.is_some() {
                bad(
                    "search".into(),
                    "a search runs on one engine: not with shard".into(),
                );
            }
            if self.requests.is_some() {
                bad(
                    "requests".into(),
                    "not with search: a search's trials have their own length (search.trial)"
                        .into(),
                );
            }
        }
        if let Some(t) = &self.target
            && let Err(e) = HttpUrl::parse(t)
        {
            bad("target".into(), e);
        }
        if let Some(n) = self.threads
            && !(1..=MAX_THREADS).contains(&n)
        {
            bad(
                "threads".into(),
                format!("must be between 1 and {MAX_THREADS}, got {n}"),
            );
        }
        let units = self.units();
        let closed: Vec<&str> = units
            .iter()
            .filter(|e| !e.is_open())
            .map(|e| e.name.as_str())
            .collect();
        if self.stages.is_empty() && !closed.is_empty() {
            bad(
                "stages".into(),
                format!(
                    "needed by the closed-model endpoint(s) {} (give stages, or a rate to make them open-model)",
                    closed.join(", ")
                ),
            );
        }
        for (i, s) in self.stages.iter().enumerate() {
            if s.target > MAX_VUS {
                bad(
                    format!("stages[{i}].target"),
                    format!("at most {MAX_VUS} VUs, got {}", s.target),
                );
            }
        }
        let sends = self.stages.iter().any(|s| s.target > 0)
            || units
                .iter()
                .any(|e| e.is_open() || e.autoscale_on(self.autoscale.is_some()));
        if !self.stages.is_empty() && !sends {
            bad(
                "stages".into(),
                "every stage's target is 0 VUs and no endpoint has a rate or autoscale: the run would send nothing".into(),
            );
        }
        if self.requests == Some(0) {
            bad("requests".into(), "must be at least 1".into());
        }
        out.append(&mut walked.thresholds);
        let mut bad = |path: String, why: String| out.push(format!("{path}: {why}"));
        if !units.is_empty() && self.duration().is_zero() && self.stages.is_empty() {
            bad(
                "duration".into(),
                "the run has no length: give stages, rate_stages or a duration such as \"30s\""
                    .into(),
            );
        } else if !self.stages.is_empty() && self.duration().is_zero() {
            bad(
                "stages".into(),
                "the stages add up to no time; give a stage a duration such as \"30s\"".into(),
            );
        }
        if units.is_empty() {
            bad(
                "endpoints".into(),
                "at least one endpoint (or flow) is needed".into(),
            );
        }
        if !(1..=traffic::MAX_CAPTURE_BODY).contains(&self.max_capture_body) {
            out.push(format!(
                "max_capture_body: must be 1 to {} bytes, got {}",
                traffic::MAX_CAPTURE_BODY,
                self.max_capture_body
            ));
        }
        out.append(&mut walked.traffic);
        if let Some(t) = &self.tls {
            out.extend(t.problems(self.base_dir.as_deref()));
        }
        if let Some(s) = &self.shard
            && let Err(e) = crate::shard::Shard::parse(s)
        {
            out.push(format!("shard: {e}"));
        }
        let mut bad = |path: String, why: String| out.push(format!("{path}: {why}"));
        let mut names = BTreeSet::new();
        let mut bad_checks = walked.checks.iter();
        for part in parts {
            let ep = &part.ep;
            let at = |f: &str| format!("{}.{f}", part.at);
            if part.request && !valid_name(&ep.name) {
                bad(
                    at("name"),
                    format!(
                        "\"{}\" must be 1-{MAX_ENDPOINT_NAME} printable characters, without control characters or surrounding spaces",
                        ep.name
                    ),
                );
            } else if part.request && part.unit && !names.insert(ep.name.clone()) {
                bad(
                    at("name"),
                    format!("\"{}\" is used by an earlier endpoint", ep.name),
                );
            }
            if part.request {
                let bad_checks = bad_checks.next().map_or(&[][..], Vec::as_slice);
                self.request_problems(&part, bad_checks, &mut bad);
            }
            if !part.unit {
                continue;
            }
            if !(ep.weight.is_finite() && ep.weight > 0.0) {
                bad(
                    at("weight"),
                    format!("must be a number above 0, got {}", ep.weight),
                );
            }
            if let Some(r) = ep.rate
                && !(r.is_finite() && r > 0.0)
            {
                bad(
                    at("rate"),
                    format!("must be above 0 requests per second, got {r}"),
                );
            }
            if ep.rate.is_some() && !ep.rate_stages.is_empty() {
                bad(
                    at("rate_stages"),
                    "give either rate or rate_stages, not both".into(),
                );
            }
            for (j, s) in ep.rate_stages.iter().enumerate() {
                if !(s.target.is_finite() && s.target >= 0.0) {
                    bad(
                        at(&format!("rate_stages[{j}].target")),
                        format!("must be 0 or more req/s, got {}", s.target),
                    );
                }
            }
            if !ep.rate_stages.is_empty() && ep.rate_stages.iter().all(|s| s.target <= 0.0) {
                bad(
                    at("rate_stages"),
                    "every stage's target is 0: nothing would be sent".into(),
                );
            }
            let autoscaled = ep.autoscale_on(self.autoscale.is_some());
            if ep.is_open() && autoscaled && ep.max_vus.is_some() {
                bad(
                    at("max_vus"),
                    "with autoscale on, the autoscaler sets the connections (within its min_workers and max_workers); remove max_vus".into(),
                );
            }
            if ep.is_open() {
                if !ep.think_time.is_zero() {
                    bad(
                        at("think_time"),
                        "has no meaning in the open model (sends follow the rate)".into(),
                    );
                }
                if ep.pre_allocated_vus == Some(0) {
                    bad(at("pre_allocated_vus"), "must be at least 1".into());
                }
                let pre = ep.pre_allocated_vus.unwrap_or(DEFAULT_PRE_ALLOCATED_VUS);
                if let Some(max) = ep.max_vus
                    && max < pre
                {
                    bad(
                        at("max_vus"),
                        format!("{max} is below pre_allocated_vus {pre}"),
                    );
                }
            } else {
                for (f, set) in [
                    ("pre_allocated_vus", ep.pre_allocated_vus.is_some()),
                    ("max_vus", ep.max_vus.is_some()),
                ] {
                    if set {
                        bad(at(f), "only applies to the open model: give the endpoint a rate or rate_stages".into());
                    }
                }
            }
        }
        let shares = self.priority_shares;
        for (f, v) in [
            ("high", shares.high),
            ("medium", shares.medium),
            ("low", shares.low),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bad(
                    format!("priority_shares.{f}"),
                    format!("must be a percentage of at least 0, got {v}"),
                );
            }
        }
        let sum = shares.high + shares.medium + shares.low;
        if (sum - 100.0).abs() > 1e-6 {
            bad(
                "priority_shares".into(),
                format!("the shares must add up to 100 (percent), got {sum}"),
            );
        }
        if let Some(s) = self.samples
            && !(0.0..=1.0).contains(&s.rate)
        {
            bad(
                "samples.rate".into(),
                format!("must be between 0 and 1, got {}", s.rate),
            );
        }
        (out, compiled)
    }
}

impl Config {
    /// The request fields of an endpoint or a flow step.
    /// `bad_checks` are its checks that do not compile (from [`compile`]).
    fn request_problems(
        &self,
        part: &Part,
        bad_checks: &[(String, String)],
        bad: &mut impl FnMut(String, String),
    ) {
        let ep = &part.ep;
        let at = |f: &str| format!("{}.{f}", part.at);
        match (&ep.path, &ep.url) {
            (Some(_), Some(_)) => bad(at("path"), "give either path or url, not both".into()),
            (None, None) => bad(
                at("path"),
                "missing: give a path (relative to target) or a url".into(),
            ),
            (Some(p), None) => {
                if self.target.is_none() {
                    bad(
                        at("path"),
                        "a path needs a top-level target; or give a full url".into(),
                    );
                }
                if !p.is_empty() && !p.starts_with('/') {
                    bad(at("path"), format!("\"{p}\" must start with '/'"));
                }
                // a template's own spaces (`{{ seq }}`) are checked with it
                if !Template::is_templated(p) && p.bytes().any(|b| b <= b' ' || b == 0x7f) {
                    bad(at("path"), "contains spaces or control characters".into());
                }
            }
            (None, Some(u)) => {
                if let Err(e) = HttpUrl::parse(u) {
                    bad(at("url"), e);
                }
            }
        }
        let mut seen_headers: Vec<&str> = Vec::new();
        for k in ep.headers.keys() {
            if let Some(first) = seen_headers.iter().find(|s| s.eq_ignore_ascii_case(k)) {
                bad(
                    at("headers"),
                    format!("\"{first}\" and \"{k}\" are one header (names ignore case); keep one"),
                );
            }
            seen_headers.push(k);
        }
        for (k, v) in &ep.headers {
            if let Some(why) = header_problem(k, v) {
                bad(at(&format!("headers.{k}")), why.into());
            }
        }
        if ep.checks.len() > limits::MAX_CHECKS {
            bad(
                at("checks"),
                format!(
                    "at most {} checks, got {}",
                    limits::MAX_CHECKS,
                    ep.checks.len()
                ),
            );
        }
        for name in ep.checks.keys() {
            if !valid_name(name) {
                bad(
                    at(&format!("checks.{name}")),
                    format!(
                        "a check's name is 1-{MAX_ENDPOINT_NAME} printable characters, without control characters or surrounding spaces"
                    ),
                );
            }
            if let Some((_, e)) = bad_checks.iter().find(|(n, _)| n == name) {
                bad(at(&format!("checks.{name}")), e.clone());
            }
        }
        for (j, code) in ep.expect.iter().flatten().enumerate() {
            if !(100..=599).contains(code) {
                bad(
                    at(&format!("expect[{j}]")),
                    format!("{code} is not an HTTP status (100-599)"),
                );
            }
        }
    }
}

impl Endpoint {
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

/// Fills a load unit's open-model defaults and merges its autoscale over
/// the global one; `at` is its field path (`endpoints[0]`, `flows[1]`).
fn resolve_unit(
    ep: &mut Endpoint,
    at: &str,
    global: &Option<AutoscaleSpec>,
    max_workers: Option<u32>,
    problems: &mut Vec<String>,
) {
    let autoscaled = ep.autoscale_on(global.is_some());
    if ep.is_open() {
        let pre = *ep
            .pre_allocated_vus
            .get_or_insert(DEFAULT_PRE_ALLOCATED_VUS);
        // With autoscale the cap is the autoscaler's, so max_vus stays unset.
        if !autoscaled {
            ep.max_vus.get_or_insert(pre);
        }
    }
    let at = format!("{at}.autoscale");
    let spec = match (&ep.autoscale, global) {
        (Some(EndpointAutoscale::Off), _) | (None, None) => return,
        (Some(EndpointAutoscale::On(own)), global) => {
            own.field_problems(&at, problems);
            own.merged_over(&global.clone().unwrap_or_default())
        }
        (None, Some(global)) => global.clone(),
    };
    let spec = spec.with_defaults(max_workers);
    spec.merged_problems(&at, problems);
    ep.autoscale = Some(EndpointAutoscale::On(spec));
}

/// A config file's text, refused past [`json::MAX_CONFIG_BYTES`] (reading
/// `/dev/zero` must end with an error, not with all of memory).
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(json::MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > json::MAX_CONFIG_BYTES {
        return Err(format!(
            "larger than {} MiB; a config is a few KB (data sets are separate files)",
            json::MAX_CONFIG_BYTES / (1024 * 1024)
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Config text as a JSON object (strict: see [`json`]).
fn json_object(text: &str) -> Result<serde_json::Value, ConfigError> {
    let value = json::parse(text).map_err(ConfigError::one)?;
    if !value.is_object() {
        let kind = match value {
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return Err(ConfigError::one(format!(
            "a config is a JSON object ({{\"target\": …, \"endpoints\": […]}}), got {kind}"
        )));
    }
    Ok(value)
}

/// Most characters in an endpoint name.
pub const MAX_ENDPOINT_NAME: usize = 128;

/// An endpoint name: any printable text (k6 users name requests like
/// `POST /api/orders`), up to [`MAX_ENDPOINT_NAME`] characters, without
/// control characters or surrounding spaces. Files and charts derived
/// from a name use a slug of it; JSON keeps it as written.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.trim() == s
        && s.chars().count() <= MAX_ENDPOINT_NAME
        && !s.chars().any(char::is_control)
}

/// What is wrong with a request header a user gives (in a config or with
/// `-H`), if anything.
pub fn header_problem(name: &str, value: &str) -> Option<&'static str> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        Some("is not a valid header name")
    } else if ["content-length", "transfer-encoding"].contains(&name.to_ascii_lowercase().as_str())
    {
        Some("is set by the engine from the body")
    } else if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        Some("value contains CR, LF or NUL")
    } else {
        None
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = r#"{"name": "demo", "target": "http://127.0.0.1:8080", "threads": 2,
     "stages": [{"duration": "5s", "target": 32}, {"duration": "20s", "target": 32}],
     "endpoints": [
       {"name": "users", "method": "GET", "path": "/api/users", "weight": 2},
       {"name": "orders", "method": "POST", "path": "/api/orders", "headers": {"content-type": "application/json"}, "body": "{\"item\":42}", "weight": 1}],
     "timeouts": {"connect": "2s", "request": "5s"}}"#;

    #[test]
    fn accepts_the_documented_example_as_written() {
        let c = Config::from_json(ISSUE_EXAMPLE).unwrap();
        assert_eq!(c.threads, Some(2));
        assert_eq!(c.duration().as_secs(), 25);
        assert_eq!(c.endpoints[1].method, Method::Post);
        assert_eq!(c.timeouts.request, Dur::from_secs(5));
        let urls = c.endpoint_urls().unwrap();
        assert_eq!(urls[1].path, "/api/orders");
        assert_eq!(urls[1].port, 8080);
    }

    #[test]
    fn resolved_config_round_trips() {
        let c = Config::from_json(ISSUE_EXAMPLE).unwrap();
        let again = Config::from_json(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(c, again);
    }

    /// Each bad config and the `path: reason` its error must contain.
    #[test]
    fn errors_name_the_field_path() {
        let base: serde_json::Value = serde_json::from_str(ISSUE_EXAMPLE).unwrap();
        let cases: &[(&str, serde_json::Value, &str)] = &[
            (
                "/endpoints/1/method",
                "GTE".into(),
                "endpoints[1].method: unknown method \"GTE\"",
            ),
            (
                "/endpoints/0/weight",
                0.into(),
                "endpoints[0].weight: must be a number above 0",
            ),
            (
                "/endpoints/0/weight",
                "x".into(),
                "endpoints[0].weight: invalid type",
            ),
            (
                "/stages/1/duration",
                "20".into(),
                "stages[1].duration: invalid duration \"20\"",
            ),
            ("/stages/0/target", (-1).into(), "stages[0].target"),
            (
                "/timeouts/connect",
                "0s".into(),
                "timeouts.connect: must be at least 1ms",
            ),
            ("/threads", 0.into(), "threads: must be between 1"),
            (
                "/target",
                "ftp://127.0.0.1".into(),
                "target: \"ftp://127.0.0.1\": expected a URL starting with http:// or https://",
            ),
            (
                "/endpoints/1/name",
                "users".into(),
                "endpoints[1].name: \"users\" is used by an earlier endpoint",
            ),
            (
                "/endpoints/0/name",
                " a b".into(),
                "endpoints[0].name: \" a b\" must be 1-128 printable characters",
            ),
            (
                "/endpoints/0/name",
                "tab\tname".into(),
                "endpoints[0].name: \"tab\tname\" must be",
            ),
            (
                "/endpoints/0/path",
                "api".into(),
                "endpoints[0].path: \"api\" must start with '/'",
            ),
            (
                "/endpoints/0/expect",
                serde_json::json!([200, 700]),
                "endpoints[0].expect[1]: 700 is not",
            ),
            (
                "/samples",
                serde_json::json!({"rate": 1.5}),
                "samples.rate: must be between 0 and 1",
            ),
            (
                "/endpoints/0/rate",
                0.into(),
                "endpoints[0].rate: must be above 0 requests per second",
            ),
            (
                "/endpoints/0/rate",
                (-5).into(),
                "endpoints[0].rate: must be above 0",
            ),
            (
                "/endpoints/0/max_vus",
                3.into(),
                "endpoints[0].max_vus: only applies to the open model",
            ),
            (
                "/endpoints/0",
                serde_json::json!({"name": "users", "path": "/u", "rate": 5, "max_vus": 3, "autoscale": {"target_rps": 5}}),
                "endpoints[0].max_vus: with autoscale on, the autoscaler sets the connections",
            ),
            (
                "/endpoints/0/rate_stages",
                serde_json::json!([{"duration": "5s", "target": 0}]),
                "endpoints[0].rate_stages: every stage's target is 0",
            ),
            (
                "/thresholds",
                serde_json::json!({"http_req_duration": ["p95<200"]}),
                "thresholds.http_req_duration[0]: \"p95<200\": unknown aggregation",
            ),
            (
                "/thresholds",
                serde_json::json!({"http_req_latency": ["p(95)<200"]}),
                "thresholds.http_req_latency[0]: unknown metric",
            ),
            (
                "/thresholds",
                serde_json::json!({"my_metric": []}),
                "thresholds.my_metric: unknown metric \"my_metric\": Userflux has no custom metrics",
            ),
            (
                "/thresholds",
                serde_json::json!({"checks": ["rate>0.99"]}),
                "thresholds.checks: this config has no checks, so a checks threshold would judge nothing",
            ),
            (
                "/thresholds",
                serde_json::json!({"checks{endpoint:users}": []}),
                "thresholds.checks{endpoint:users}: this config has no checks",
            ),
            (
                "/thresholds",
                serde_json::json!({"http_req_failed": [{"threshold": "rate<0.1", "abort": true}]}),
                "thresholds.http_req_failed[0]",
            ),
            (
                "/samples",
                serde_json::json!({"path": "x"}),
                "samples.path: unknown field `path`",
            ),
            (
                "/endpoints/0/headers",
                serde_json::json!({"Content-Length": "3"}),
                "endpoints[0].headers.Content-Length: is set by the engine",
            ),
            (
                "/endpoints/0/headers",
                serde_json::json!({"x": "a\r\nb"}),
                "endpoints[0].headers.x: value contains CR",
            ),
            (
                "/endpoints/0/url",
                "http://127.0.0.1/".into(),
                "endpoints[0].path: give either path or url",
            ),
            (
                "/stages",
                serde_json::json!([{"duration": "0s", "target": 3}]),
                "stages: the stages add up to no time",
            ),
            (
                "/endpoints",
                serde_json::json!([]),
                "endpoints: at least one endpoint",
            ),
            // bounds (issue #21): each of these validated and then broke the run
            (
                "/stages/0/duration",
                "18446744073709551615s".into(),
                "stages[0].duration: must be at most 30days",
            ),
            (
                "/stages",
                serde_json::json!([{"duration": "18446744073709551615s", "target": 1},
                                   {"duration": "18446744073709551615s", "target": 1}]),
                "the run's length (stages, duration, rate_stages): must be at most 30days",
            ),
            (
                "/duration",
                "18446744073709551615s".into(),
                "duration: must be at most 30days",
            ),
            (
                "/graceful_stop",
                "18446744073709551615s".into(),
                "graceful_stop: must be at most 1h",
            ),
            (
                "/graceful_ramp_down",
                "2h".into(),
                "graceful_ramp_down: must be at most 1h",
            ),
            (
                "/timeouts/request",
                "2h".into(),
                "timeouts.request: must be at most 1h",
            ),
            (
                "/endpoints/0/think_time",
                "18446744073709551615s".into(),
                "endpoints[0].think_time: must be at most 1h",
            ),
            (
                "/endpoints/0/rate",
                1e12.into(),
                "endpoints[0].rate: at most 10000000 requests per second",
            ),
            (
                "/endpoints/0/rate_stages",
                serde_json::json!([{"duration": "40days", "target": 1e9}]),
                "endpoints[0].rate_stages[0].target: at most 10000000",
            ),
            (
                "/endpoints/0/expect",
                serde_json::json!([]),
                "endpoints[0].expect: give at least one status code",
            ),
            (
                "/name",
                "a\u{0}b".into(),
                "name: contains control characters",
            ),
            (
                "/stages",
                serde_json::json!([{"duration": "5s", "target": 0}]),
                "the run would send nothing",
            ),
            ("/requests", 0.into(), "requests: must be at least 1"),
            (
                "/endpoints/1/headers",
                serde_json::json!({"Content-Type": "a", "content-type": "b"}),
                "endpoints[1].headers: \"Content-Type\" and \"content-type\" are one header",
            ),
            (
                "/max_workers",
                5_000_000.into(),
                "max_workers: at most 1000000 VUs",
            ),
            (
                "/endpoints/0/body",
                "x".repeat(16 * 1024 * 1024 + 1).into(),
                "endpoints[0].body: at most 16777216 bytes",
            ),
            (
                "/autoscale",
                serde_json::json!({"target_rps": 1e9, "interval": "2h"}),
                "autoscale.target_rps: at most 10000000",
            ),
        ];
        for (pointer, value, want) in cases {
            let mut v = base.clone();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let slot = v.pointer_mut(parent).unwrap();
            match slot {
                serde_json::Value::Object(m) => {
                    m.insert(key.to_string(), value.clone());
                }
                serde_json::Value::Array(a) => a[key.parse::<usize>().unwrap()] = value.clone(),
                _ => unreachable!(),
            }
            let err = match Config::from_json(&v.to_string()) {
                Ok(_) => panic!("{pointer}={value}: accepted, want {want:?}"),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains(want),
                "{pointer}={value}: got {err:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn config_text_is_read_strictly() {
        let e =
            Config::parse(r#"{"target": "http://127.0.0.1:1", "target": "http://127.0.0.1:2"}"#)
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("target: the key \"target\" is given twice"),
            "{e}"
        );
        let e = Config::parse("[]").unwrap_err().to_string();
        assert!(e.contains("a config is a JSON object"), "{e}");
        assert!(e.contains("got an array"), "{e}");
        let bom = format!("\u{feff}{ISSUE_EXAMPLE}");
        assert!(
            Config::from_json(&bom).is_ok(),
            "a byte-order mark is skipped"
        );
    }

    #[test]
    fn a_config_file_is_read_up_to_its_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(json::MAX_CONFIG_BYTES + 1).unwrap();
        let e = Config::read(&big).unwrap_err().to_string();
        assert!(e.contains("big.json: larger than 16 MiB"), "{e}");
        let e = Config::read(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/dev/zero: larger than 16 MiB"), "{e}");
    }

    #[test]
    fn autoscale_resolves_per_endpoint_and_false_keeps_it_fixed() {
        let c = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "max_workers": 40,
                "autoscale": {"target_rps": 100, "max_p99": "250ms"},
                "stages": [{"duration": "10s", "target": 8}],
                "endpoints": [{"name": "a", "path": "/a", "autoscale": {"target_rps": 300, "min_workers": 2}},
                              {"name": "b", "path": "/b"},
                              {"name": "c", "path": "/c", "autoscale": false}]}"#,
        )
        .unwrap();
        let a = c.endpoints[0].autoscale().unwrap();
        assert_eq!(
            (a.target_rps, a.min_workers, a.max_workers, a.max_p99_ms),
            (300.0, 2, 40, Some(250.0))
        );
        assert_eq!(c.endpoints[1].autoscale().unwrap().target_rps, 100.0);
        assert!(c.endpoints[2].autoscale().is_none());
        // the resolved form is complete, and resolving it again changes nothing
        let again = Config::from_json(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
        let text = serde_json::to_string(&c.endpoints[1]).unwrap();
        assert!(
            text.contains("\"cooldown\":\"2s\"") && text.contains("\"max_workers\":40"),
            "{text}"
        );
        let e = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "max_workers": 2,
                "stages": [{"duration": "10s", "target": 8}],
                "endpoints": [{"name": "a", "path": "/a", "autoscale": {"target_rps": 1, "min_workers": 2}},
                              {"name": "b", "path": "/b", "autoscale": {"target_rps": 1, "min_workers": 2}}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("max_workers: 2 is below the sum of the endpoints' min_workers (4)"),
            "{e}"
        );
    }

    #[test]
    fn open_model_endpoints_need_no_stages_and_get_vu_defaults() {
        let c = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "duration": "10s",
                "endpoints": [{"name": "a", "path": "/", "rate": 100},
                              {"name": "b", "path": "/", "rate_stages": [{"duration": "30s", "target": 50}], "pre_allocated_vus": 4}]}"#,
        )
        .unwrap();
        assert_eq!(
            c.duration().as_secs(),
            30,
            "the longest of duration and rate_stages"
        );
        assert_eq!(
            (c.endpoints[0].pre_allocated_vus, c.endpoints[0].max_vus),
            (Some(10), Some(10))
        );
        assert_eq!(
            (c.endpoints[1].pre_allocated_vus, c.endpoints[1].max_vus),
            (Some(4), Some(4))
        );
        let e = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "endpoints": [{"name": "a", "path": "/", "rate": 100, "pre_allocated_vus": 20, "max_vus": 5}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("endpoints[0].max_vus: 5 is below pre_allocated_vus 20"),
            "{e}"
        );
        assert!(e.contains("duration: the run has no length"), "{e}");
        let e = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "duration": "5s", "endpoints": [{"name": "a", "path": "/"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("stages: needed by the closed-model endpoint(s) a"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let e = Config::from_json("{\"name\": }").unwrap_err().to_string();
        assert!(e.starts_with("invalid JSON") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn path_needs_a_target() {
        let e = Config::from_json(
            r#"{"stages":[{"duration":"1s","target":1}],"endpoints":[{"name":"a","path":"/x"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("endpoints[0].path: a path needs a top-level target"),
            "{e}"
        );
    }
}
