//! The aggregator's side of autoscaling: it adds up each autoscaled
//! endpoint's seconds into its current interval, asks the controller
//! ([`crate::autoscale::decide`]) when intervals come round, and turns the
//! decisions into scaling events. Sending them to the workers is the
//! aggregator's job.

use crate::autoscale::{EndpointInput, Observation, decide};
use crate::config::{Autoscale, Priority};
use crate::plan::Plan;
use crate::stats::{EndpointStats, FlowStats, new_histogram};
use crate::summary::{RateChange, ScalingEvent, percentile_ms};
use hdrhistogram::Histogram;
use std::time::Duration;

/// One autoscaled endpoint between evaluations.
struct Track {
    settings: Autoscale,
    priority: Priority,
    workers: u32,
    last_change: Option<Duration>,
    /// Whole seconds from the run start of the last evaluation.
    last_eval: u64,
    requests: u64,
    errors: u64,
    latency: Histogram<u64>,
}

pub struct Scaler {
    /// Per plan endpoint; `None` for endpoints with autoscale off.
    tracks: Vec<Option<Track>>,
    pub events: Vec<ScalingEvent>,
}

/// A decision to carry out: the endpoint's new VU count over all workers.
pub struct Change {
    pub endpoint: usize,
    pub total: u32,
    pub event: ScalingEvent,
}

impl Scaler {
    pub fn new(plan: &Plan) -> Scaler {
        let tracks = plan
            .endpoints
            .iter()
            .map(|e| {
                e.autoscale.map(|settings| Track {
                    settings,
                    priority: e.priority,
                    workers: e.initial_workers,
                    last_change: None,
                    last_eval: 0,
                    requests: 0,
                    errors: 0,
                    latency: new_histogram(),
                })
            })
            .collect();
        Scaler {
            tracks,
            events: Vec::new(),
        }
    }

    /// An autoscaled endpoint's VUs as last decided (`None`: not autoscaled).
    pub fn workers(&self, endpoint: usize) -> Option<u32> {
        self.tracks[endpoint].as_ref().map(|t| t.workers)
    }

    /// Records a manual VU change (steering from the dashboard) as a
    /// scaling event with reason `manual`. An autoscaled endpoint's
    /// controller carries on from the new count, its cooldown restarted.
    pub fn manual(
        &mut self,
        endpoint: usize,
        name: String,
        from: u32,
        to: u32,
        t: f64,
    ) -> ScalingEvent {
        if let Some(track) = self.tracks[endpoint].as_mut() {
            track.workers = to;
            track.last_change = Some(Duration::from_secs_f64(t));
        }
        let event = ScalingEvent {
            t: (t * 10.0).round() / 10.0,
            endpoint: name,
            from,
            to,
            reason: "manual".into(),
            rps: 0.0,
            p99_ms: None,
            error_rate: 0.0,
            shard: None,
            rate: None,
        };
        self.events.push(event.clone());
        event
    }

    /// Records a manual rate change of an open-model unit as a scaling event
    /// with reason `manual`: its VUs (`from`, `to`) stay `vus`, the rates
    /// are in `rate`.
    pub fn manual_rate(
        &mut self,
        name: String,
        vus: u32,
        rate: RateChange,
        t: f64,
    ) -> ScalingEvent {
        let event = ScalingEvent {
            t: (t * 10.0).round() / 10.0,
            endpoint: name,
            from: vus,
            to: vus,
            reason: "manual".into(),
            rps: 0.0,
            p99_ms: None,
            error_rate: 0.0,
            shard: None,
            rate: Some(rate),
        };
        self.events.push(event.clone());
        event
    }

    pub fn is_active(&self) -> bool {
        self.tracks.iter().any(Option::is_some)
    }

    /// Adds the second ending `end` seconds into the run and returns the
    /// changes decided at its end.
    /// A flow is scaled on its iterations: its rate is completed
    /// iterations per second, its errors failed iterations, its p99 the
    /// iterations' duration.
    pub fn on_second(
        &mut self,
        plan: &Plan,
        end: u64,
        stats: &[EndpointStats],
        flows: &[FlowStats],
    ) -> Vec<Change> {
        let mut index = Vec::new();
        let mut inputs = Vec::new();
        for (i, (track, s)) in self.tracks.iter_mut().zip(stats).enumerate() {
            let Some(t) = track else { continue };
            match plan.endpoints[i].step.as_ref().map(|st| &flows[st.flow]) {
                Some(f) => {
                    t.requests += f.iterations + f.failed;
                    t.errors += f.failed;
                    t.latency.add(&*f.duration.hdr()).expect("grows to fit");
                }
                None => {
                    t.requests += s.requests;
                    t.errors += s.errors;
                    t.latency.add(&*s.latency.hdr()).expect("same bounds");
                }
            }
            let interval = t.settings.interval.as_secs_f64().ceil().max(1.0) as u64;
            let due = end.saturating_sub(t.last_eval) >= interval;
            let observed = due.then(|| Observation {
                rps: t.requests as f64 / (end - t.last_eval) as f64,
                p99_ms: percentile_ms(&t.latency, 99.0),
                error_rate: if t.requests == 0 {
                    0.0
                } else {
                    t.errors as f64 / t.requests as f64
                },
                requests: t.requests,
            });
            index.push(i);
            inputs.push(EndpointInput {
                settings: t.settings,
                priority: t.priority,
                workers: t.workers,
                last_change: t.last_change,
                observed,
            });
        }
        let now = Duration::from_secs(end);
        let decisions = decide(now, &inputs, plan.max_workers_here(), plan.fixed_vus(now));
        let mut changes = Vec::new();
        for d in decisions {
            let i = index[d.endpoint];
            let t = self.tracks[i].as_mut().expect("tracked");
            let obs = inputs[d.endpoint].observed;
            t.workers = d.to;
            t.last_change = Some(now);
            let name = match &plan.endpoints[i].step {
                Some(st) => plan.flows[st.flow].name.clone(),
                None => plan.endpoints[i].name.clone(),
            };
            let event = ScalingEvent {
                t: end as f64,
                endpoint: name,
                from: d.from,
                to: d.to,
                reason: d.reason,
                rps: obs.map_or(0.0, |o| o.rps),
                p99_ms: obs.and_then(|o| o.p99_ms),
                error_rate: obs.map_or(0.0, |o| o.error_rate),
                shard: None,
                rate: None,
            };
            self.events.push(event.clone());
            changes.push(Change {
                endpoint: i,
                total: d.to,
                event,
            });
        }
        // Evaluated endpoints start a new interval.
        for (k, &i) in index.iter().enumerate() {
            if inputs[k].observed.is_some() {
                let t = self.tracks[i].as_mut().expect("tracked");
                t.last_eval = end;
                t.requests = 0;
                t.errors = 0;
                t.latency.reset();
            }
        }
        changes
    }
}
