//! The load plan: what the workers run (`Plan`, built once from a config
//! by [`build`]; `http: "auto"` rows decided by ALPN at start, [`alpn`];
//! gRPC methods described by server reflection resolved at start,
//! [`reflect`]), and the schedule's pure functions of time ([`schedule`]).
//!
//! The config describes what the user wrote; the plan is what the workers
//! run, so imports go one way: `plan` reads `config`, never the reverse.

pub mod alpn;
pub mod build;
pub mod reflect;
pub mod schedule;

pub use schedule::{
    RateStage, allocate, rate_schedule, send_time, sends_by, split_by_weight, steady_until,
    switch_rate, vus_at, worker_share, worker_share_packed,
};

use crate::config::{Autoscale, Distribution, Priority, PriorityShares, Stage};
use crate::stats::StatusSet;
use std::net::SocketAddr;
use std::time::Duration;

/// One request row as the workers run it: an endpoint, or a flow's step.
/// An endpoint and a flow's first step are load units (they carry the
/// weight, VUs, schedule and autoscale; a flow's VUs start at its first
/// step); later steps are reached from the step before.
#[derive(Debug)]
pub struct EndpointPlan {
    pub name: String,
    /// The name escaped for a JSON string, once: sample lines are encoded
    /// without a serializer.
    pub json_name: Box<str>,
    pub addr: SocketAddr,
    /// The rendered request, written as is (when `template` is `None`).
    pub request: Box<[u8]>,
    /// A request rendered for each send, into the connection's buffer.
    pub template: Option<crate::request::RequestTemplate>,
    /// The data sets an endpoint's template reads: a row of each is taken
    /// for every request (a flow takes its rows per iteration instead).
    pub data_sets: Box<[usize]>,
    /// Whether this row is a load unit (see the type's doc).
    pub unit: bool,
    /// For a flow step: where it is in its flow, and what it captures.
    pub step: Option<StepPlan>,
    /// Named checks on each response.
    pub checks: Vec<(String, crate::capture::Check)>,
    /// Keep the response head (header captures and checks, cookies) and
    /// the body (body captures and checks) for this row.
    pub keep_head: bool,
    pub keep_body: bool,
    /// The method, full URL and path, for thresholds' `method` and `url` tags.
    pub method: &'static str,
    pub url: String,
    /// The URL's host name: a flow's cookies go back only to the host that set them.
    pub host: String,
    pub path: String,
    /// `https`: the name verified in the server's certificate (and sent as SNI).
    pub tls_name: Option<rustls::pki_types::ServerName<'static>>,
    /// HEAD requests get responses without bodies.
    pub head: bool,
    /// Collect responses' `Server-Timing` metrics.
    pub server_timing: bool,
    /// The request says `Connection: close`: a new connection for each
    /// request, even from a server that would keep it open.
    pub close: bool,
    pub think: Duration,
    pub weight: f64,
    pub priority: Priority,
    pub accept: StatusSet,
    /// When set, the aggregator's autoscaler owns this endpoint's VU count.
    pub autoscale: Option<Autoscale>,
    /// An autoscaled endpoint's VUs until the autoscaler first changes them.
    pub initial_workers: u32,
    /// Open model: the endpoint sends on this schedule instead of looping VUs.
    pub open: Option<OpenPlan>,
    /// The protocol this row's connections speak; `Auto` is resolved
    /// (by ALPN, before the run starts) into one of the others.
    pub http: Http,
    /// HTTP/2 streams per connection: a closed-model unit's VUs share
    /// `ceil(VUs / streams)` connections (1 for HTTP/1.1).
    pub streams: u32,
    /// HTTP/2: the static request's header block and body, encoded once
    /// (a templated request is encoded from its rendering at each send).
    pub h2: Option<H2Request>,
    /// A gRPC call (the unit's `grpc`): the row's request is its POST to
    /// the method's path with gRPC's header fields, over HTTP/2.
    pub grpc: Option<Box<GrpcPlan>>,
    /// A gRPC call whose method the server describes by reflection: asked
    /// when the run starts ([`reflect::resolve`]), which sets `grpc` (and
    /// `h2`, the data sets) and clears this; no worker runs a row with it.
    pub reflect: Option<std::sync::Arc<crate::config::grpc::Reflect>>,
}

/// A gRPC unit's call, compiled when the run is prepared.
#[derive(Debug)]
pub struct GrpcPlan {
    pub method: crate::load::grpc::Method,
    /// The request message: encoded once (its framed bytes are the row's
    /// `h2.body`), or per request into the VU's buffer.
    pub message: crate::load::grpc::MessageTemplate,
}

/// The protocol of a row's connections (the config's `http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Http {
    /// HTTP/1.1 (`"1.1"`, the default).
    #[default]
    H1,
    /// HTTP/2 (`"2"`): by ALPN over TLS, with prior knowledge (h2c) over
    /// plain TCP; a server that refuses it fails the request (`protocol`).
    H2,
    /// `"auto"`: HTTP/2 when a TLS server offers it by ALPN, else
    /// HTTP/1.1; plain `http://` is HTTP/1.1.
    Auto,
}

impl Http {
    /// The protocol as the summary names it (ALPN's ids).
    pub fn as_str(self) -> &'static str {
        match self {
            Http::H1 => "http/1.1",
            Http::H2 => "h2",
            Http::Auto => "auto",
        }
    }
}

/// An HTTP/2 request encoded once: its HPACK header block and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H2Request {
    pub block: Box<[u8]>,
    pub body: Box<[u8]>,
}

/// A flow step's place and what its response gives the next steps.
#[derive(Debug)]
pub struct StepPlan {
    pub flow: usize,
    pub index: usize,
    pub last: bool,
    /// (value number in the flow's vars, selector).
    pub captures: Vec<(usize, crate::capture::Selector)>,
}

/// A flow as the workers run it; its steps are rows `first..first + steps`.
#[derive(Debug)]
pub struct FlowPlan {
    pub name: String,
    pub first: usize,
    pub steps: usize,
    pub cookies: bool,
    /// Pause after each iteration.
    pub think: Duration,
    /// The names of the values its steps capture (index = value number).
    pub vars: Vec<String>,
    /// The data sets its steps read: a row of each per iteration.
    pub data_sets: Box<[usize]>,
}

/// An open-model endpoint's schedule and connection limits.
#[derive(Debug)]
pub struct OpenPlan {
    pub stages: Vec<RateStage>,
    pub pre_allocated: u32,
    /// Most connections (the autoscaler's count when autoscale is on).
    pub max_vus: u32,
    /// Which of the schedule's sends are this process's: (position, count)
    /// makes sends k with k mod count = position ((0, 1) unsharded); None
    /// when a shard holds none of this unit's VUs (see [`crate::shard`]).
    pub slot: Option<(u64, u64)>,
}

/// Everything the workers need to know about the run; shared read-only.
#[derive(Debug)]
pub struct Plan {
    pub endpoints: Vec<EndpointPlan>,
    pub stages: Vec<Stage>,
    pub workers: usize,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub graceful_stop: Duration,
    /// How long a retired VU may take to finish its flow iteration.
    pub graceful_ramp_down: Duration,
    /// Length of the load phase.
    pub duration: Duration,
    pub distribution: Distribution,
    pub priority_shares: PriorityShares,
    /// Most VUs over all endpoints.
    pub max_workers: Option<u32>,
    /// Checked at the end, and every second for those that abort on failure.
    pub thresholds: Vec<crate::thresholds::Threshold>,
    /// A threshold reads latency per status (`http_req_duration{status:…}`,
    /// or `grpc_req_duration{grpc_status:…}`): workers keep it (see [`crate::stats::ByStatus`]); otherwise no
    /// response pays for it.
    pub latency_by_status: bool,
    /// `requests`: the run finishes after exactly this many requests in total.
    pub requests: Option<u64>,
    /// A fault to inject (tests only; see [`crate::fault`]).
    pub fault: Option<crate::fault::Fault>,
    /// The most VUs the run may hold at once (thresholds' `vus_max`).
    pub vus_max: u32,
    pub flows: Vec<FlowPlan>,
    /// The data sets, shared read-only by every worker.
    pub data: Vec<std::sync::Arc<crate::data::DataSet>>,
    pub max_capture_body: usize,
    /// This run's share of a sharded run.
    pub shard: Option<crate::shard::Shard>,
    /// The TLS client configuration, when a row is `https`.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The same, offering `h2` and `http/1.1` by ALPN, for `h2` rows.
    pub tls_h2: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Plan {
    /// The stages' `total` VUs split over endpoints by the distribution,
    /// under the global `max_workers`. Autoscaled endpoints' parts are their
    /// starting share; afterwards the autoscaler sets them.
    /// Open-model endpoints take no part (they get 0). A shard's parts are
    /// its VUs of the whole run's allocation, by position (see
    /// [`crate::shard`]).
    pub fn distribute(&self, total: u32) -> Vec<u32> {
        let mut out = self.distribute_whole(total);
        if let Some(s) = self.shard {
            let mut offset = 0u64;
            for n in &mut out {
                let whole = u64::from(*n);
                *n = s.part(offset, whole) as u32;
                offset += whole;
            }
        }
        out
    }

    /// `max_workers` for this process: a shard's share of the whole.
    pub fn max_workers_here(&self) -> Option<u32> {
        let share = |m: u32| self.shard.map_or(m, |s| s.share(u64::from(m)) as u32);
        self.max_workers.map(share)
    }

    /// The load units this process runs none of, each with why: a closed
    /// unit without autoscale that gets no VU at any stage target (in the
    /// whole run, or in this shard), an open-model unit whose `max_vus` all
    /// run on other shards. Said in the log and on stderr (issue #27: such
    /// endpoints vanished silently).
    pub fn absent_units(&self) -> Vec<String> {
        let mut targets: Vec<u32> = self.stages.iter().map(|s| s.target).collect();
        targets.sort_unstable();
        targets.dedup();
        let peak = targets.last().copied().unwrap_or(0);
        let parts: Vec<Vec<u32>> = targets.iter().map(|&t| self.distribute(t)).collect();
        let whole: Vec<Vec<u32>> = targets.iter().map(|&t| self.distribute_whole(t)).collect();
        let mut out = Vec::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            if !e.unit || e.autoscale.is_some() {
                continue;
            }
            let name = match &e.step {
                Some(s) => format!("flow {}", self.flows[s.flow].name),
                None => format!("endpoint {}", e.name),
            };
            match (&e.open, self.shard) {
                (Some(o), Some(shard)) if o.slot.is_none() => out.push(format!(
                    "shard {shard}: {name} runs on other shards (its max_vus are fewer than the shards)"
                )),
                (Some(_), _) => {}
                (None, shard) => {
                    let most = whole.iter().map(|w| w[i]).max().unwrap_or(0);
                    if most == 0 && peak > 0 {
                        // too few VUs for every unit to get one (the split
                        // goes by weight, ties to the first)
                        out.push(format!(
                            "{name} gets no VU in the whole run: the stages' {peak} VU(s) go to \
                             other units by weight (raise the stage targets, or its weight)"
                        ));
                    } else if let Some(shard) = shard
                        && most > 0
                        && parts.iter().all(|p| p[i] == 0)
                    {
                        out.push(format!(
                            "shard {shard}: {name} gets no VU here (at most {most} in the whole run, on other shards)"
                        ));
                    }
                }
            }
        }
        out
    }

    /// [`Plan::distribute`] for the whole run, whatever the shard.
    fn distribute_whole(&self, total: u32) -> Vec<u32> {
        let total = self.max_workers.map_or(total, |m| total.min(m));
        let closed: Vec<usize> = (0..self.endpoints.len())
            .filter(|&i| self.endpoints[i].unit && self.endpoints[i].open.is_none())
            .collect();
        let eps: Vec<(f64, Priority)> = closed
            .iter()
            .map(|&i| (self.endpoints[i].weight, self.endpoints[i].priority))
            .collect();
        let mut out = vec![0; self.endpoints.len()];
        for (i, n) in closed.into_iter().zip(allocate(
            total,
            &eps,
            self.distribution,
            &self.priority_shares,
        )) {
            out[i] = n;
        }
        out
    }

    /// VUs of the endpoints with autoscale off, `elapsed` into the run.
    pub fn fixed_vus(&self, elapsed: Duration) -> u32 {
        let parts = self.distribute(vus_at(&self.stages, elapsed));
        parts
            .iter()
            .zip(&self.endpoints)
            .filter(|(_, e)| e.autoscale.is_none())
            .map(|(n, _)| n)
            .sum()
    }
}
