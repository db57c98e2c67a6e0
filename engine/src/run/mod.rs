//! One run from a resolved config to a summary: prepare the plan (before
//! anything is written; [`crate::plan::build`]), start the workers and the aggregator, build the
//! summary from what they measured.

pub mod barrier;
pub mod cluster;
pub mod lifecycle;
pub mod report;
pub mod rundir;
pub mod search;
pub mod shard;
pub mod status;

use crate::aggregator::{Aggregator, Halt, Outcome, Sinks};
use crate::config::{Config, Samples};
use crate::plan::Plan;
use crate::rundir::{RunDir, now_rfc3339};
use crate::samples::{SampleError, SampleFile};
use crate::stats::{EndpointStats, ErrorKind};
use crate::status::{RunError, Status};
use crate::summary::{
    CheckCount, EngineInfo, FlowSummary, H2_PING_RTT, H2_SETTINGS, Interrupted, Latency,
    RequestsBudget, RunState, SUMMARY_SCHEMA, SamplesSummary, Stats, Summary, encode_hist,
};
use crate::thresholds::{EndpointView, FlowView, RunView, evaluate};
use crate::worker::{self, Msg, WorkerHandle};
use crossbeam_channel::Receiver;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Instant;

// The plan's build lives with the plan; callers keep these paths.
pub use crate::plan::build::{host_warnings, max_connections, prepare, prepare_with};

/// The samples file's name inside a run directory.
pub const SAMPLES_FILE: &str = "samples.ndjson";
/// A shard's timeline as per-second histograms ([`crate::summary::SecondHistograms`]).
pub const TIMELINE_HISTOGRAMS_FILE: &str = "timeline-histograms.ndjson";

/// File descriptors the engine keeps besides connections (files, epoll,
/// wakers, channels, std streams).
const FD_OVERHEAD: u64 = 64;

/// Makes room for every connection the plan can open: raises the soft
/// open-file limit up to the hard one when needed, or says which limit is
/// too low and how to raise it, before any load is sent.
pub fn ensure_file_limit(config: &Config) -> Result<(), String> {
    let needed = max_connections(config) + FD_OVERHEAD;
    let (soft, hard) =
        crate::sys::nofile().map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    if needed <= soft {
        return Ok(());
    }
    if needed <= hard {
        return crate::sys::set_nofile(needed)
            .map_err(|e| format!("cannot raise the open-file limit to {needed}: {e}"));
    }
    Err(format!(
        "this run can hold {} connections and needs about {needed} open files, but the hard limit is {hard} \
         (soft {soft}); raise it (e.g. `ulimit -Hn {needed}` as root, or nofile in /etc/security/limits.conf) \
         or lower the VUs",
        needed - FD_OVERHEAD
    ))
}

/// The initial `status.json` of a run about to start.
pub fn initial_status(dir: &RunDir, config: &Config) -> Status {
    Status::new(
        RunState::Running,
        &dir.run_id,
        config,
        Some(std::process::id()),
    )
}

/// The CPUs the workers are pinned to, from the affinity mask's `mask` and
/// the CPUs the process may use, `entitled` (the mask or a cgroup quota
/// below it). A mask wider than the quota is shared with others — a
/// Kubernetes pod without exclusive CPUs (Burstable QoS, or the `none` CPU
/// manager policy) sees the whole node's — and every such process pinning
/// worker i to the mask's i-th CPU would pile onto the same CPUs (issue
/// #29): then nothing is pinned, and the second value says why for
/// `logs.txt`. A pod of Guaranteed QoS under the `static` policy gets a
/// mask of its own CPUs, and is pinned.
pub fn own_cores(
    mask: Vec<core_affinity::CoreId>,
    entitled: usize,
) -> (Vec<core_affinity::CoreId>, Option<String>) {
    if mask.len() > entitled {
        let why = format!(
            "workers not pinned: the CPU affinity mask has {} CPUs but a CPU quota allows {entitled}, \
             so the mask is shared with other processes (pinning would put them on the same CPUs)",
            mask.len()
        );
        (Vec::new(), Some(why))
    } else {
        (mask, None)
    }
}

/// Runs the plan to the end (or until `stop` says why to stop early) and
/// returns the summary. `status` is kept current for the signal handler.
pub fn execute(
    config: &Config,
    mut plan: Plan,
    dir: &RunDir,
    status: &Mutex<Status>,
    stop: Receiver<Halt>,
    progress: bool,
) -> std::io::Result<Summary> {
    let started_at = now_rfc3339();
    // `http: "auto"` rows: decided once, before any worker lays out its
    // connections (`plan::alpn`)
    for said in crate::plan::alpn::resolve(&mut plan) {
        dir.log(&said.line)?;
        if said.warning {
            eprintln!("userflux-engine: warning: {}", said.line);
        }
    }
    // `"reflection": true` gRPC units: their servers asked once, before
    // any load; a problem fails the run here (`plan::reflect`)
    match crate::plan::reflect::resolve(&mut plan) {
        Ok(lines) => {
            for line in lines {
                dir.log(&line)?;
            }
        }
        // (the caller logs and reports the run's failure)
        Err(problems) => return Err(std::io::Error::other(problems.join("; "))),
    }
    let plan = Arc::new(plan);
    let counters = Arc::new(crate::counters::Counters::new(plan.data.len()));
    let mask = core_affinity::get_core_ids().unwrap_or_default();
    let entitled = std::thread::available_parallelism().map_or(mask.len(), |n| n.get());
    let (cores, unpinned) = own_cores(mask, entitled);
    if let Some(why) = unpinned {
        dir.log(&why)?;
    }
    let (to_aggregator, reports) = crossbeam_channel::unbounded::<Msg>();
    let start = Instant::now();
    let mut workers: Vec<WorkerHandle> = Vec::with_capacity(plan.workers);
    let mut recycle = Vec::with_capacity(plan.workers);
    let mut pinned = Vec::new();
    let sample_rate = Samples::active_rate(config.samples);
    let (sample_file, mut sample_error) = match sample_rate {
        None => (None, None),
        Some(rate) => match SampleFile::create(&dir.file(SAMPLES_FILE), rate) {
            Ok(f) => (Some(f), None),
            Err(e) => {
                let why = format!("cannot create {SAMPLES_FILE}: {e}");
                dir.log(&format!("sampling off: {why}"))?;
                (
                    None,
                    Some(SampleError {
                        kind: "io".into(),
                        message: why,
                    }),
                )
            }
        },
    };
    let budget = plan
        .requests
        .map(|n| crate::budget::Budget::new(n, plan.workers));
    for id in 0..plan.workers {
        let core = (!cores.is_empty()).then(|| cores[id % cores.len()]);
        pinned.extend(core.map(|c| c.id));
        let (tx, rx) = crossbeam_channel::bounded(4);
        recycle.push(tx);
        workers.push(worker::spawn(
            id,
            core,
            Arc::clone(&plan),
            start,
            to_aggregator.clone(),
            rx,
            worker::Shared {
                samples: sample_file.clone(),
                budget: budget.clone(),
                counters: Arc::clone(&counters),
            },
        )?);
    }
    drop(to_aggregator);
    dir.log(&format!(
        "run {} started: {} endpoint(s) (flow steps included), {} worker(s), {:.1}s of stages",
        dir.run_id,
        plan.endpoints.len(),
        plan.workers,
        plan.duration.as_secs_f64()
    ))?;
    for line in plan.absent_units() {
        dir.log(&line)?;
    }
    let sinks = Sinks {
        dir,
        status,
        progress,
    };
    let outcome = Aggregator::new(&plan, &workers, recycle, start, sinks).run(reports, stop);
    let (mut written, mut chunks) = (0, Vec::new());
    for w in workers {
        match w.thread.join() {
            Ok(end) => {
                if let Some((n, c)) = end.samples {
                    written += n;
                    chunks.extend(c);
                }
            }
            Err(_) => dir.log("a worker thread panicked")?,
        }
    }
    let samples = sample_rate.map(|rate| {
        let (bytes, error) = match &sample_file {
            Some(f) => {
                let end = f.finish(chunks);
                (end.bytes, end.error)
            }
            None => (0, sample_error.take()),
        };
        if let Some(e) = &error {
            let _ = dir.log(&format!(
                "sampling stopped early ({}): {}; {written} lines kept",
                e.kind, e.message
            ));
        }
        SamplesSummary {
            file: SAMPLES_FILE.into(),
            rate,
            written,
            bytes,
            error,
        }
    });
    let mut summary = build_summary(config, &plan, dir, started_at, outcome, pinned);
    summary.samples = samples;
    Ok(summary)
}

pub fn build_summary(
    config: &Config,
    plan: &Plan,
    dir: &RunDir,
    started_at: String,
    outcome: Outcome,
    cores: Vec<usize>,
) -> Summary {
    let mut all = EndpointStats::new();
    // Latency as users of the schedule saw it: corrected where there is one.
    let mut effective = crate::stats::Hist::new();
    let mut endpoints = std::collections::BTreeMap::new();
    let mut histograms = std::collections::BTreeMap::new();
    let mut histograms_corrected = std::collections::BTreeMap::new();
    let mut histograms_phases = std::collections::BTreeMap::new();
    let mut histograms_unexpected = std::collections::BTreeMap::new();
    let mut histograms_status = std::collections::BTreeMap::new();
    let mut histograms_grpc_status = std::collections::BTreeMap::new();
    let mut views = Vec::new();
    let mut check_totals: std::collections::BTreeMap<String, CheckCount> = Default::default();
    for (i, s) in outcome.endpoints.iter().enumerate() {
        let name = plan.endpoints[i].name.clone();
        let open = plan.endpoints[i].open.is_some();
        all.add(s);
        if let Some(h) = s.effective_latency(open) {
            effective.add(h);
        }
        views.push(EndpointView::in_plan(plan, i, s));
        if let Some(h) = s.corrected.as_ref().filter(|_| open) {
            histograms_corrected.insert(name.clone(), encode_hist(h));
        }
        let (sending, receiving) = (s.sending_all(), s.receiving_all());
        let h2 = s.h2.as_deref();
        let phases: std::collections::BTreeMap<String, String> = [
            ("connect", s.connecting.as_ref()),
            ("tls_handshake", s.tls_handshaking.as_ref()),
            ("waiting", s.waiting.as_ref()),
            ("blocked", s.blocked.as_ref()),
            ("sending", sending.as_ref()),
            ("receiving", receiving.as_ref()),
            (H2_SETTINGS, h2.and_then(|h| h.settings.as_ref())),
            (H2_PING_RTT, h2.and_then(|h| h.ping_rtt.as_ref())),
        ]
        .into_iter()
        .filter_map(|(k, h)| Some((k.to_string(), encode_hist(h?))))
        .collect();
        if !phases.is_empty() {
            histograms_phases.insert(name.clone(), phases);
        }
        if let Some(h) = s.unexpected.as_ref().filter(|h| !h.is_empty()) {
            histograms_unexpected.insert(name.clone(), encode_hist(h));
        }
        // per HTTP status by its number, per gRPC status by its name
        let by_status = |b: &crate::stats::ByStatus, key: &dyn Fn(u16) -> String| {
            let codes = b.codes.iter().map(|(c, h)| (key(*c), h));
            codes
                .chain(b.other.as_ref().map(|h| ("other".to_string(), h)))
                .filter(|(_, h)| !h.is_empty())
                .map(|(c, h)| (c, encode_hist(h)))
                .collect::<std::collections::BTreeMap<String, String>>()
        };
        if let Some(by) = s
            .by_status
            .as_ref()
            .map(|b| by_status(b, &|c| c.to_string()))
            && !by.is_empty()
        {
            histograms_status.insert(name.clone(), by);
        }
        let grpc_name = |c: u16| {
            crate::load::grpc::Code::from_u32(u32::from(c))
                .name()
                .to_string()
        };
        if let Some(by) = s.by_grpc.as_ref().map(|b| by_status(b, &grpc_name))
            && !by.is_empty()
        {
            histograms_grpc_status.insert(name.clone(), by);
        }
        // a flow's VUs are its first step's; each of its steps shows them
        let unit = plan.endpoints[i]
            .step
            .as_ref()
            .map_or(i, |st| plan.flows[st.flow].first);
        let names: Vec<&str> = plan.endpoints[i]
            .checks
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        for (name, counts) in names.iter().zip(&s.checks) {
            let c = check_totals.entry(name.to_string()).or_default();
            c.passes += counts[0];
            c.fails += counts[1];
        }
        let mut stats = Stats::from_counts(s, outcome.load_seconds, outcome.final_vus[unit])
            .with_checks(&names, &s.checks);
        // what the row spoke (resolved: `auto` was decided at start)
        stats.protocol = Some(match plan.endpoints[i].http {
            crate::plan::Http::H2 => crate::summary::Protocol::H2,
            _ => crate::summary::Protocol::Http1,
        });
        stats.streams = Some(plan.endpoints[i].streams);
        stats.peak_vus = outcome.peak_vus.get(unit).copied();
        if let Some(a) = plan.endpoints[i].autoscale {
            stats.target_rps = Some(a.target_rps);
            stats.achieved_rps = recent_rps(&outcome.timeline, &name, plan.duration.as_secs());
        }
        endpoints.insert(name.clone(), stats);
        histograms.insert(name, encode_hist(&s.latency));
    }
    let flows = plan
        .flows
        .iter()
        .zip(&outcome.flows)
        .map(|(f, fs)| {
            let summary = FlowSummary {
                steps: plan.endpoints[f.first..f.first + f.steps]
                    .iter()
                    .map(|e| e.name.clone())
                    .collect(),
                iterations: fs.iterations,
                failed_iterations: fs.failed,
                interrupted_iterations: fs.interrupted,
                iterations_per_s: fs.iterations as f64 / outcome.load_seconds,
                vus: outcome.final_vus[f.first],
                iteration_duration_ms: Latency::from_hist(&fs.duration),
                histogram: encode_hist(&fs.duration),
            };
            (f.name.clone(), summary)
        })
        .collect();
    let flow_views: Vec<FlowView<'_>> = plan
        .flows
        .iter()
        .zip(&outcome.flows)
        .map(|(f, stats)| FlowView {
            name: &f.name,
            stats,
        })
        .collect();
    let vus: Vec<u32> = outcome.timeline.iter().map(|s| s.vus).collect();
    let thresholds = plan
        .thresholds
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let run = RunView {
                seconds: outcome.load_seconds,
                vus: &vus,
                vus_max: plan.vus_max,
                flows: &flow_views,
            };
            let mut r = evaluate(t, &views, &run);
            r.aborted = outcome.aborted_by == Some(i);
            r
        })
        .collect();
    let mut totals = Stats::from_counts(&all, outcome.load_seconds, outcome.final_vus.iter().sum());
    totals.peak_vus = Some(outcome.peak_vus.iter().sum());
    totals.checks_rate = crate::summary::checks_rate(&check_totals);
    totals.checks = check_totals;
    // A metric in one endpoint only is already there; totals compare the
    // ones that several endpoints report (e.g. a `gateway` total).
    totals.server_timing.retain(|metric, _| {
        endpoints
            .values()
            .filter(|e: &&Stats| e.server_timing.contains_key(metric))
            .count()
            > 1
    });
    totals.latency_corrected_ms = if views.iter().any(|v| v.open) {
        Latency::from_hist(&effective)
    } else {
        None
    };
    let (user, system) = crate::sys::cpu_seconds();
    let interrupted = all.error_kinds[ErrorKind::Interrupted as usize];
    let interrupted = (interrupted > 0).then(|| Interrupted {
        requests: interrupted,
        reason: match &outcome.halted {
            Some(why) => format!("the run was ended at once ({why})"),
            None => format!(
                "the graceful stop ({}) ran out",
                crate::duration::Dur(plan.graceful_stop)
            ),
        },
    });
    let requests_budget = plan.requests.map(|asked| RequestsBudget {
        asked,
        sent: totals.requests,
        missed: (totals.requests < asked).then(|| match &outcome.stopped {
            Some(why) => format!("the run stopped first ({why})"),
            None => format!(
                "the duration ({}) ended first",
                crate::duration::Dur(plan.duration)
            ),
        }),
    });
    Summary {
        schema: SUMMARY_SCHEMA.into(),
        shard: None,
        search: None,
        run_id: dir.run_id.clone(),
        name: config.name.clone(),
        state: if outcome.failed.is_some() {
            RunState::Failed
        } else if outcome.stopped.is_some() {
            RunState::Stopped
        } else {
            RunState::Finished
        },
        stop_reason: outcome.failed.clone().or_else(|| outcome.stopped.clone()),
        interrupted,
        requests_budget,
        started_at,
        ended_at: now_rfc3339(),
        duration_s: outcome.elapsed_seconds,
        engine: EngineInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            threads: plan.workers,
            cores,
            cpu_user_s: user,
            cpu_system_s: system,
        },
        totals,
        endpoints,
        flows,
        timeline: outcome.timeline,
        scaling_events: outcome.scaling_events,
        thresholds,
        samples: None,
        histograms,
        histograms_corrected,
        histograms_phases,
        histograms_unexpected,
        histograms_status,
        histograms_grpc_status,
    }
}

/// Mean RPS of an endpoint over the last five whole seconds before `end`.
fn recent_rps(timeline: &[crate::summary::Second], endpoint: &str, end: u64) -> Option<f64> {
    let last: Vec<f64> = timeline
        .iter()
        .filter(|s| s.t < end)
        .rev()
        .take(5)
        .filter_map(|s| s.endpoints.get(endpoint).map(|e| e.rps))
        .collect();
    (!last.is_empty()).then(|| last.iter().sum::<f64>() / last.len() as f64)
}

/// The final status of a run that has a summary: totals come from it.
pub fn finish_status_with(
    status: &Mutex<Status>,
    summary: &Summary,
    exit_code: i32,
    error: Option<RunError>,
) -> Status {
    {
        let mut st = status.lock();
        st.progress.elapsed_s = summary.duration_s;
        st.progress.requests = summary.totals.requests;
        st.progress.errors = summary.totals.errors;
        st.progress.vus = summary.totals.vus;
        // The final line's rate and p99 are the run's, as in the summary
        // (the last second's read as a second, different rate: issue #28).
        st.progress.rps = summary.totals.rps;
        st.progress.p99_ms = summary.totals.latency_ms.as_ref().map(|l| l.p99);
    }
    finish_status(status, summary.state, exit_code, error)
}

/// The final status of a run without a summary (failed or killed).
pub fn finish_status(
    status: &Mutex<Status>,
    state: RunState,
    exit_code: i32,
    error: Option<RunError>,
) -> Status {
    let mut st = status.lock();
    st.state = state;
    st.exit_code = Some(exit_code);
    st.error = error;
    let now = now_rfc3339();
    st.ended_at = Some(now.clone());
    st.updated_at = now;
    st.pid = None;
    st.clone()
}

#[cfg(test)]
mod tests {
    use super::own_cores;
    use core_affinity::CoreId;

    fn ids(v: &[usize]) -> Vec<CoreId> {
        v.iter().map(|&id| CoreId { id }).collect()
    }

    #[test]
    fn a_mask_of_its_own_is_pinned_a_shared_one_is_not() {
        // a pod with exclusive CPUs 6 and 7 (static CPU manager): pinned there
        let (cores, why) = own_cores(ids(&[6, 7]), 2);
        assert_eq!(cores.iter().map(|c| c.id).collect::<Vec<_>>(), [6, 7]);
        assert!(why.is_none());
        // a pod with a 2-CPU quota that sees the node's 16: not pinned, said
        let (cores, why) = own_cores(ids(&(0..16).collect::<Vec<_>>()), 2);
        assert!(cores.is_empty());
        assert!(why.unwrap().contains("16 CPUs but a CPU quota allows 2"));
        // a machine without a quota: pinned as always
        assert_eq!(own_cores(ids(&[0, 1, 2, 3]), 4).0.len(), 4);
    }
}
