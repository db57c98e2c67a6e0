//! Capacity search (issue #32): the highest arrival rate a target sustains
//! within its SLO, found by short open-model trials and confirmed by a
//! longer run at the rate found.
//!
//! The SLO is the config's thresholds (or `--threshold`). A trial is an
//! open-model run at one total rate — every load unit's rate scaled so
//! their ratios stay (their rates when all are open-model, else their
//! weights) — and it passes when every threshold holds (open-model latency
//! is the corrected one), the achieved rate is at least 99 % of the target
//! and no send was dropped (a dropped send means every one of `max_vus`
//! connections was busy: the generator's limit was reached, not only the
//! target's, and the trial says so).
//!
//! The search: an unjudged warm-up at `from`; rates doubling from `from`
//! until a trial fails (or `max` passes); then bisection of the bracket
//! [highest pass, lowest fail] until it is within `precision`. With
//! `repeat` > 1 each rate is tried that many times; a rate whose trials
//! disagree is *noisy*: it counts as a failure, so the bracket widens
//! instead of claiming a pass it did not get twice. A cool-down between
//! trials lets queues drain. The budget bounds the whole search: when it
//! runs out the answer is the bracket so far ("between A and B").
//! Trials needed at most: ⌈log2(max/from)⌉ + ⌈log2(1/precision)⌉ + 1.
//!
//! [`Bracket`] and [`judge`] are pure; [`search`] runs the trials, each a
//! complete run directory under the search's `trials/`.

use crate::aggregator::Halt;
use crate::config::search::{SearchConfig, SearchOver};
use crate::config::{Config, EndpointAutoscale, Stage};
use crate::duration::Dur;
use crate::rundir::RunDir;
use crate::summary::{RunState, Summary};
use crossbeam_channel::Receiver;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A trial's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// Trials at this rate disagreed (counted as a failure).
    Noisy,
    /// The warm-up: not judged.
    Warmup,
    /// The confirmation run held the SLO.
    Confirmed,
    /// The confirmation run did not hold it.
    NotConfirmed,
    /// Cut short by a signal: not judged.
    Stopped,
}

/// One trial as the summary records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Trial {
    /// A rate search: the target rate (req/s; flows: iterations/s). A VU
    /// search: the rate achieved.
    pub rate: f64,
    /// A VU search: the VUs of this trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vus: Option<u32>,
    /// What was sent per second of the trial.
    pub achieved: f64,
    /// Latency percentiles, ms: as measured (from the send) and corrected
    /// (from when the send was due); null without a response.
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p50_corrected_ms: Option<f64>,
    pub p90_corrected_ms: Option<f64>,
    pub p99_corrected_ms: Option<f64>,
    pub error_rate: f64,
    pub dropped: u64,
    pub verdict: Verdict,
    /// Why it failed: the threshold, the rate not reached, dropped sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The generator, not only the target, was the limit (sends dropped).
    #[serde(default)]
    pub generator_limit: bool,
    /// Its run directory, under the search's `trials/`.
    pub run: String,
}

/// The search's result: `summary.json`'s `search`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchSummary {
    /// What was searched: `rate` or `vus`.
    pub over: SearchOver,
    /// The highest rate (a VU search: VU count) that passed, and held its
    /// confirmation when one ran; null when even the first failed.
    pub rate: Option<f64>,
    /// [highest pass, lowest fail] of the rate (or VU count); a null end
    /// was not found.
    pub bracket: [Option<f64>; 2],
    /// How the search ended, in words.
    pub outcome: String,
    pub trials: Vec<Trial>,
}

impl SearchSummary {
    /// Exit code: 0 a rate was found (and held its confirmation), 99 not.
    pub fn exit_code(&self) -> i32 {
        let confirmed = self
            .trials
            .iter()
            .all(|t| t.verdict != Verdict::NotConfirmed);
        if self.rate.is_some() && confirmed {
            0
        } else {
            crate::summary::EXIT_THRESHOLDS
        }
    }
}

/// The bracket around the capacity, and which rate to try next.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bracket {
    /// The highest rate that passed.
    pub pass: Option<f64>,
    /// The lowest rate that failed (or was noisy).
    pub fail: Option<f64>,
}

impl Bracket {
    /// The next value to try, or None when the search is done (VU counts
    /// are whole: a VU search ends when no count lies between the ends).
    pub fn next(&self, spec: &SearchConfig) -> Option<f64> {
        let whole = spec.over == SearchOver::Vus;
        let next = match (self.pass, self.fail) {
            // doubling until a failure, up to `max`
            (None, None) => spec.from.min(spec.max),
            (Some(p), None) if p >= spec.max => return None,
            (Some(p), None) => (p * 2.0).min(spec.max),
            // even the first value failed
            (None, Some(_)) => return None,
            (Some(p), Some(f)) if f - p <= spec.precision * p => return None,
            (Some(p), Some(f)) if whole => {
                let mid = ((p + f) / 2.0).floor();
                if mid <= p {
                    return None;
                }
                mid
            }
            (Some(p), Some(f)) => (p + f) / 2.0,
        };
        Some(next)
    }

    pub fn record(&mut self, rate: f64, verdict: Verdict) {
        match verdict {
            Verdict::Pass => self.pass = Some(self.pass.map_or(rate, |p| p.max(rate))),
            Verdict::Fail | Verdict::Noisy => {
                self.fail = Some(self.fail.map_or(rate, |f| f.min(rate)));
            }
            Verdict::Warmup | Verdict::Confirmed | Verdict::NotConfirmed | Verdict::Stopped => {}
        }
    }
}

/// The config of one trial: `base` as an open-model run at `rate` in
/// total for `length`, each unit with up to `max_vus` connections (see
/// the module).
pub fn at_rate(base: &Config, rate: f64, length: Duration, max_vus: u32) -> Config {
    let mut c = base.clone();
    let open =
        c.endpoints.iter().all(|e| e.rate.is_some()) && c.flows.iter().all(|f| f.rate.is_some());
    let share = |rate: Option<f64>, weight: f64| if open { rate.unwrap_or(0.0) } else { weight };
    let total: f64 = c
        .endpoints
        .iter()
        .map(|e| share(e.rate, e.weight))
        .sum::<f64>()
        + c.flows.iter().map(|f| share(f.rate, f.weight)).sum::<f64>();
    let total = if total > 0.0 { total } else { 1.0 };
    let scale = |r: &mut Option<f64>,
                 stages: &mut Vec<crate::config::RateStageSpec>,
                 pre: &mut Option<u32>,
                 max: &mut Option<u32>,
                 autoscale: &mut Option<EndpointAutoscale>,
                 part: f64| {
        *r = Some(rate * part / total);
        stages.clear();
        *max = Some(max_vus.max(1));
        *pre = Some(max_vus.clamp(1, 10));
        *autoscale = Some(EndpointAutoscale::Off);
    };
    for e in &mut c.endpoints {
        let part = share(e.rate, e.weight);
        scale(
            &mut e.rate,
            &mut e.rate_stages,
            &mut e.pre_allocated_vus,
            &mut e.max_vus,
            &mut e.autoscale,
            part,
        );
    }
    for f in &mut c.flows {
        let part = share(f.rate, f.weight);
        scale(
            &mut f.rate,
            &mut f.rate_stages,
            &mut f.pre_allocated_vus,
            &mut f.max_vus,
            &mut f.autoscale,
            part,
        );
    }
    c.stages.clear();
    c.duration = Some(Dur(length));
    c.requests = None;
    c.autoscale = None;
    c.max_workers = None;
    c.search = None;
    c
}

/// The config of one trial of a VU search: `base` closed-model with `vus`
/// VUs from the start for `length`, split by the units' weights as usual.
pub fn at_vus(base: &Config, vus: u32, length: Duration) -> Config {
    let mut c = base.clone();
    let closed = |r: &mut Option<f64>,
                  stages: &mut Vec<crate::config::RateStageSpec>,
                  pre: &mut Option<u32>,
                  max: &mut Option<u32>,
                  autoscale: &mut Option<EndpointAutoscale>| {
        *r = None;
        stages.clear();
        (*pre, *max) = (None, None);
        *autoscale = Some(EndpointAutoscale::Off);
    };
    for e in &mut c.endpoints {
        closed(
            &mut e.rate,
            &mut e.rate_stages,
            &mut e.pre_allocated_vus,
            &mut e.max_vus,
            &mut e.autoscale,
        );
    }
    for f in &mut c.flows {
        closed(
            &mut f.rate,
            &mut f.rate_stages,
            &mut f.pre_allocated_vus,
            &mut f.max_vus,
            &mut f.autoscale,
        );
    }
    c.stages = vec![
        Stage {
            duration: Dur(Duration::ZERO),
            target: vus,
        },
        Stage {
            duration: Dur(length),
            target: vus,
        },
    ];
    c.duration = None;
    c.requests = None;
    c.autoscale = None;
    c.max_workers = None;
    c.search = None;
    c
}

/// The config of a trial at `value` (a rate or a VU count) for `length`.
pub fn trial_config(base: &Config, spec: &SearchConfig, value: f64, length: Duration) -> Config {
    match spec.over {
        SearchOver::Rate => at_rate(base, value, length, spec.max_vus),
        SearchOver::Vus => at_vus(base, value as u32, length),
    }
}

/// Judges a trial's summary at target `rate` over `length` (see the
/// module). The achieved rate is what was sent over the trial's length
/// (the summary's duration also holds the wait for the last responses).
/// `connections` is the most the trial could hold (every unit's `max_vus`).
pub fn judge(
    summary: &Summary,
    over: SearchOver,
    value: f64,
    length: Duration,
    connections: u64,
    max_error_rate: f64,
    run: String,
) -> Trial {
    let t = &summary.totals;
    // over the time it ran: a trial a signal cut short ran less than its length
    let ran = length.as_secs_f64().min(summary.duration_s).max(1e-9);
    let achieved = t.requests as f64 / ran;
    // a VU search sends what its VUs can: no rate to reach
    let (rate, vus) = match over {
        SearchOver::Rate => (value, None),
        SearchOver::Vus => (achieved, Some(value as u32)),
    };
    let measured = t.latency_ms.as_ref();
    let corrected = t.latency_corrected_ms.as_ref().or(measured);
    let failed = summary.thresholds.iter().find(|r| !r.ok);
    // a threshold with nothing measured (no response at all) proves nothing
    let unmeasured = summary.thresholds.iter().find(|r| r.observed.is_none());
    let (verdict, why, generator_limit) = if summary.state == RunState::Failed {
        (
            Verdict::Fail,
            Some("the trial failed: see its logs".to_string()),
            false,
        )
    } else if t.dropped > 0 {
        // Every connection was busy: held by the target's responses, or
        // not turned round by a generator whose threads were busy all the
        // time. The latency cannot tell them apart (a saturated generator
        // reads late, so its latency grows too); its CPU can. (The trial's
        // CPU: see `search`, which takes the ones before it off.)
        let e = &summary.engine;
        let busy = (e.cpu_user_s + e.cpu_system_s)
            / (e.threads.max(1) as f64 * summary.duration_s.max(1e-9));
        let generator = busy >= 0.85;
        let p99 = measured.map_or(0.0, |l| l.p99);
        let why = if generator {
            format!(
                "{} sends dropped with the generator's threads {:.0} % busy: the generator's \
                 limit, not the target's (more threads, or shards)",
                t.dropped,
                busy * 100.0
            )
        } else {
            format!(
                "{} sends dropped: all {connections} VUs busy (connections; stream slots over \
                 HTTP/2), held by the target's responses (p99 {p99:.1} ms; or too few VUs: \
                 raise -c / search.max_vus)",
                t.dropped
            )
        };
        let target_slow = !generator;
        (Verdict::Fail, Some(why), !target_slow)
    } else if t.latency_ms.is_none() {
        let why = "no response at all (every request failed: see the trial's error kinds)";
        (Verdict::Fail, Some(why.to_string()), false)
    } else if t.error_rate > max_error_rate {
        let why = format!(
            "{:.2} % of requests failed (more than search.max_error_rate {} %)",
            t.error_rate * 100.0,
            max_error_rate * 100.0
        );
        (Verdict::Fail, Some(why), false)
    } else if let Some(r) = failed {
        let seen = r
            .observed
            .map_or("nothing measured".into(), |v| format!("observed {v:.3}"));
        (
            Verdict::Fail,
            Some(format!("{}: {} ({seen})", r.metric, r.expression)),
            false,
        )
    } else if let Some(r) = unmeasured {
        let why = format!("{}: {} (nothing measured)", r.metric, r.expression);
        (Verdict::Fail, Some(why), false)
    } else if achieved < 0.99 * rate {
        (
            Verdict::Fail,
            Some(format!("achieved {achieved:.1} of {rate:.1}/s")),
            false,
        )
    } else {
        (Verdict::Pass, None, false)
    };
    Trial {
        rate,
        vus,
        achieved,
        p50_ms: measured.map(|l| l.p50),
        p90_ms: measured.map(|l| l.p90),
        p99_ms: measured.map(|l| l.p99),
        p50_corrected_ms: corrected.map(|l| l.p50),
        p90_corrected_ms: corrected.map(|l| l.p90),
        p99_corrected_ms: corrected.map(|l| l.p99),
        error_rate: t.error_rate,
        dropped: t.dropped,
        verdict,
        why,
        generator_limit,
        run,
    }
}

/// Runs one trial's config into `dir` (a complete run directory).
fn run_trial(config: &Config, dir: &RunDir, stop: Receiver<Halt>) -> Result<Summary, String> {
    // every connection the trial may open must fit the open-file limit, or
    // "too many open files" would read as the target's failure
    crate::run::ensure_file_limit(config)?;
    let plan = crate::run::prepare(config).map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| format!("{}: {e}", dir.path.display());
    dir.write_json("config.json", config).map_err(io)?;
    let status = Mutex::new(crate::run::initial_status(dir, config));
    dir.write_json("status.json", &*status.lock()).map_err(io)?;
    let summary = crate::run::execute(config, plan, dir, &status, stop, false).map_err(io)?;
    dir.write_json("summary.json", &summary).map_err(io)?;
    let code = i32::from(summary.failed_thresholds() > 0) * crate::summary::EXIT_THRESHOLDS;
    let st = crate::run::finish_status_with(&status, &summary, code, None);
    dir.write_json("status.json", &st).map_err(io)?;
    Ok(summary)
}

/// What [`search`] tells as it goes (a line per trial).
pub type Progress<'a> = &'a mut dyn FnMut(&Trial);

/// Runs the search for `base` (as written, before defaults; its
/// thresholds are the SLO) into `dir`:
/// every trial a run directory `dir/trials/NN-RATE`, the confirmation's
/// summary (or the last trial's) as `dir`'s with `search` set.
/// `stopped` ends it between trials (a signal; `stop` ends the trial under
/// way). Returns the summary written.
pub fn search(
    base: &Config,
    dir: &RunDir,
    stop: &Receiver<Halt>,
    stopped: &AtomicBool,
    progress: Progress<'_>,
) -> Result<Summary, String> {
    let spec = base.search.clone().unwrap_or_default();
    let spec = &spec;
    let began = Instant::now();
    let trials_dir = dir.path.join("trials");
    std::fs::create_dir_all(&trials_dir).map_err(|e| format!("{}: {e}", trials_dir.display()))?;
    let mut trials: Vec<Trial> = Vec::new();
    let mut bracket = Bracket::default();
    let mut last: Option<Summary> = None;
    let mut ended: Option<String> = None;
    // (the cool-down after a trial is in the time elapsed before the next)
    let fits = |length: Duration| spec.budget.is_none_or(|b| began.elapsed() + length <= b.0);
    let mut notes: Vec<String> = Vec::new();
    let cpu_before = std::cell::Cell::new(crate::sys::cpu_seconds());
    let trial = |n: usize, rate: f64, length: Duration, last: &mut Option<Summary>| {
        let name = format!("{:02}-{}", n + 1, rate_name(rate));
        let tdir = RunDir::at(&trials_dir.join(&name)).map_err(|e| format!("{name}: {e}"))?;
        let config = trial_config(base, spec, rate, length)
            .resolve()
            .map_err(|e| e.to_string())?;
        let s = run_trial(&config, &tdir, stop.clone())?;
        let _ = dir.log(&format!(
            "trial {name}: {:.1}/s sent, state {}",
            s.totals.rps,
            s.state.as_str()
        ));
        let units = (config.endpoints.len() + config.flows.len()) as u64;
        let connections = units * u64::from(spec.max_vus);
        // the engine's CPU figures count the whole process: this trial's
        // are what it added to the ones before it
        let (user, system) = (s.engine.cpu_user_s, s.engine.cpu_system_s);
        let (u0, s0) = cpu_before.replace((user, system));
        let mut s = s;
        s.engine.cpu_user_s = (user - u0).max(0.0);
        s.engine.cpu_system_s = (system - s0).max(0.0);
        let mut t = judge(
            &s,
            spec.over,
            rate,
            length,
            connections,
            spec.max_error_rate,
            format!("trials/{name}"),
        );
        if stopped.load(Ordering::SeqCst) {
            t.verdict = Verdict::Stopped; // cut short: it says nothing of the target
            t.why = Some("stopped by a signal before its end".into());
        }
        *last = Some(s);
        if !spec.cooldown.0.is_zero() && !stopped.load(Ordering::SeqCst) {
            std::thread::sleep(spec.cooldown.0);
        }
        Ok::<Trial, String>(t)
    };
    let warm = !spec.warmup.0.is_zero();
    if warm && !fits(spec.warmup.0.saturating_add(spec.trial.0)) {
        notes.push("no warm-up: it and a trial did not fit the budget".into());
    } else if warm {
        let mut t = trial(
            trials.len(),
            spec.from.min(spec.max),
            spec.warmup.0,
            &mut last,
        )?;
        t.verdict = Verdict::Warmup;
        progress(&t);
        trials.push(t);
    }
    while let Some(rate) = bracket.next(spec) {
        if stopped.load(Ordering::SeqCst) {
            ended = Some("stopped by a signal".into());
            break;
        }
        if !fits(spec.trial.0.saturating_mul(spec.repeat)) {
            ended = Some("the budget ran out".into());
            break;
        }
        let mut verdicts = Vec::new();
        for _ in 0..spec.repeat.max(1) {
            let t = trial(trials.len(), rate, spec.trial.0, &mut last)?;
            verdicts.push(t.verdict);
            progress(&t);
            trials.push(t);
        }
        if verdicts.contains(&Verdict::Stopped) {
            ended = Some("stopped by a signal".into());
            break;
        }
        let verdict = if verdicts.iter().all(|v| *v == verdicts[0]) {
            verdicts[0]
        } else {
            // the same rate passed and failed: neither is claimed
            let n = trials.len();
            for t in &mut trials[n - verdicts.len()..] {
                t.verdict = Verdict::Noisy;
            }
            Verdict::Noisy
        };
        bracket.record(rate, verdict);
    }
    // `rate` is what the search stands by: found (the bracket within the
    // precision, or max reached) and confirmed when a confirmation runs
    let mut rate = bracket.pass.filter(|_| ended.is_none());
    if let Some(r) = rate
        && ended.is_none()
        && !spec.confirm().is_zero()
        && !stopped.load(Ordering::SeqCst)
    {
        if fits(spec.confirm()) {
            let mut t = trial(trials.len(), r, spec.confirm(), &mut last)?;
            t.verdict = match t.verdict {
                Verdict::Pass => Verdict::Confirmed,
                Verdict::Stopped => {
                    ended = Some("stopped by a signal during the confirmation".into());
                    Verdict::Stopped
                }
                _ => Verdict::NotConfirmed,
            };
            progress(&t);
            if t.verdict == Verdict::NotConfirmed {
                rate = None;
            }
            trials.push(t);
        } else {
            ended = Some("the budget ran out before the confirmation".into());
        }
    }
    if ended.is_some() {
        rate = None;
    }
    // flows' rates count iterations
    let unit = match spec.over {
        SearchOver::Vus => "VUs",
        SearchOver::Rate if base.endpoints.is_empty() => "it/s",
        SearchOver::Rate => "req/s",
    };
    let noisy: Vec<String> = (trials.iter().filter(|t| t.verdict == Verdict::Noisy))
        .map(|t| rate_name(t.vus.map_or(t.rate, f64::from)))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !noisy.is_empty() {
        notes.push(format!(
            "noisy at {} {unit}: its trials disagreed, so it counts as failing",
            noisy.join(", ")
        ));
    }
    let mut outcome = outcome(&bracket, spec, unit, ended.as_deref(), &trials);
    for n in notes {
        outcome.push_str(&format!("; {n}"));
    }
    let _ = dir.log(&format!("search: {outcome}"));
    let mut summary = last.ok_or_else(|| "the budget left no time for a trial".to_string())?;
    summary.run_id = dir.run_id.clone();
    summary.search = Some(SearchSummary {
        over: spec.over,
        rate,
        bracket: [bracket.pass, bracket.fail],
        outcome,
        trials,
    });
    Ok(summary)
}

/// The search's result in one sentence.
fn outcome(
    b: &Bracket,
    spec: &SearchConfig,
    unit: &str,
    ended: Option<&str>,
    trials: &[Trial],
) -> String {
    let value = |t: &Trial| t.vus.map_or(t.rate, f64::from);
    let p99 = |r: f64| {
        trials
            .iter()
            .rev()
            .find(|t| value(t) == r && t.verdict != Verdict::Warmup)
            .and_then(|t| t.p99_corrected_ms)
            .map_or(String::new(), |v| {
                format!("p99 {v:.2} ms at {}", rate_name(r))
            })
    };
    let why = |r: f64| {
        trials
            .iter()
            .rev()
            .find(|t| value(t) == r && t.why.is_some())
            .and_then(|t| t.why.clone())
            .unwrap_or_default()
    };
    if trials.iter().any(|t| t.verdict == Verdict::NotConfirmed) {
        let r = b.pass.unwrap_or_default();
        return format!(
            "{} {unit} passed its trial but not the {} confirmation ({}): the SLO does not hold \
             for long there; the capacity is below it",
            rate_name(r),
            Dur(spec.confirm()),
            why(r)
        );
    }
    let prefix = ended.map_or(String::new(), |e| format!("{e}: "));
    match (b.pass, b.fail) {
        (None, Some(f)) => format!(
            "{prefix}even the first, {} {unit}, fails the SLO ({})",
            rate_name(f),
            why(f)
        ),
        (None, None) => format!("{prefix}no trial was judged"),
        (Some(p), None) if ended.is_none() && p >= spec.max => format!(
            "sustains at least {} {unit} within SLO ({}): the search's max reached",
            rate_name(p),
            p99(p)
        ),
        (Some(p), None) => format!(
            "{prefix}passed up to {} {unit} ({}), no failure found yet; not a result",
            rate_name(p),
            p99(p)
        ),
        (Some(p), Some(f)) if ended.is_some() => format!(
            "{prefix}between {} and {} {unit} ({}; fails at {}: {})",
            rate_name(p),
            rate_name(f),
            p99(p),
            rate_name(f),
            why(f)
        ),
        (Some(p), Some(f)) => format!(
            "sustains {} {unit} within SLO ({}, fails at {}: {})",
            rate_name(p),
            p99(p),
            rate_name(f),
            why(f)
        ),
    }
}

/// `--threshold 'METRIC: EXPRESSION'`: split at the first `:` outside the
/// metric's `{tags}`.
pub fn parse_threshold(s: &str) -> Result<(String, String), String> {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ':' if depth == 0 => {
                let (metric, expr) = (s[..i].trim(), s[i + 1..].trim());
                if metric.is_empty() || expr.is_empty() {
                    break;
                }
                return Ok((metric.to_string(), expr.to_string()));
            }
            _ => {}
        }
    }
    Err(format!(
        "\"{s}\" is not 'METRIC: EXPRESSION', e.g. 'http_req_duration: p(99)<50'"
    ))
}

/// A rate as a short name: whole numbers without decimals.
fn rate_name(r: f64) -> String {
    if (r - r.round()).abs() < 0.05 {
        format!("{}", r.round() as u64)
    } else {
        format!("{r:.1}")
    }
}

/// The trial table's head (see [`table_row`]); a VU search's has a VUs column.
pub fn table_head(over: SearchOver) -> String {
    let vus = if over == SearchOver::Vus {
        "   VUs"
    } else {
        ""
    };
    format!(
        "{:>3}{vus} {:>10} {:>10} {:>9} {:>9} {:>11} {:>7}  {}",
        "#", "rate/s", "sent/s", "p99 ms", "p99co ms", "errors", "dropped", "verdict"
    )
}

/// One trial as a line of the table.
pub fn table_row(t: &Trial) -> String {
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    let n: String = t
        .run
        .trim_start_matches("trials/")
        .chars()
        .take(2)
        .collect();
    let verdict = match t.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
        Verdict::Noisy => "noisy",
        Verdict::Warmup => "warm-up",
        Verdict::Confirmed => "confirmed",
        Verdict::NotConfirmed => "NOT CONFIRMED",
        Verdict::Stopped => "stopped",
    };
    let why = t.why.as_deref().map_or(String::new(), |w| format!(": {w}"));
    let vus = t.vus.map_or(String::new(), |v| format!(" {v:>5}"));
    format!(
        "{:>3}{vus} {:>10.1} {:>10.1} {:>9} {:>9} {:>10.2}% {:>7}  {verdict}{why}",
        n,
        t.rate,
        t.achieved,
        ms(t.p99_ms),
        ms(t.p99_corrected_ms),
        t.error_rate * 100.0,
        t.dropped
    )
}

/// The trial table and the outcome, for people.
pub fn human(s: &SearchSummary) -> String {
    let mut out = table_head(s.over);
    out.push('\n');
    for t in &s.trials {
        out.push_str(&table_row(t));
        out.push('\n');
    }
    out.push_str(&s.outcome);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SearchConfig {
        SearchConfig {
            from: 100.0,
            max: 100_000.0,
            ..SearchConfig::default()
        }
    }

    /// Runs the bracket against a target that passes below `limit`.
    fn converge(spec: &SearchConfig, limit: f64) -> (Bracket, usize) {
        let mut b = Bracket::default();
        let mut n = 0;
        while let Some(r) = b.next(spec) {
            n += 1;
            b.record(
                r,
                if r <= limit {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                },
            );
            assert!(n < 100, "no convergence");
        }
        (b, n)
    }

    #[test]
    fn the_bracket_converges_within_precision_in_few_trials() {
        let s = spec();
        for limit in [137.0, 5_000.0, 50_000.0, 77_777.0] {
            let (b, n) = converge(&s, limit);
            let (p, f) = (b.pass.unwrap(), b.fail.unwrap());
            assert!(p <= limit && f > limit, "{limit}: {b:?}");
            assert!(f - p <= s.precision * p, "{limit}: {b:?}");
            // passes at p and fails by p × (1 + 2·precision)
            assert!(f <= p * (1.0 + 2.0 * s.precision));
            let most = (s.max / s.from).log2().ceil() + (1.0 / s.precision).log2().ceil() + 1.0;
            assert!(n as f64 <= most, "{limit}: {n} trials, goal {most}");
        }
    }

    #[test]
    fn the_ends_say_what_happened() {
        let s = spec();
        // even the first rate fails
        let (b, n) = converge(&s, 50.0);
        assert_eq!((b.pass, b.fail, n), (None, Some(100.0), 1));
        // everything passes: stops at max
        let (b, _) = converge(&s, 1e9);
        assert_eq!((b.pass, b.fail), (Some(100_000.0), None));
        // a noisy rate counts as a failure
        let mut b = Bracket::default();
        b.record(100.0, Verdict::Pass);
        b.record(200.0, Verdict::Noisy);
        assert_eq!(b.next(&s), Some(150.0));
        b.record(150.0, Verdict::Warmup);
        assert_eq!(b.next(&s), Some(150.0));
    }

    #[test]
    fn a_vu_search_tries_whole_counts_and_stops_when_none_is_between() {
        let s = SearchConfig {
            over: SearchOver::Vus,
            from: 1.0,
            max: 1000.0,
            ..SearchConfig::default()
        };
        for limit in [1.0, 2.0, 7.0, 100.0, 513.0] {
            let (b, n) = converge(&s, limit);
            let (p, f) = (b.pass.unwrap(), b.fail.unwrap());
            assert!(p <= limit && f > limit && p.fract() == 0.0 && f.fract() == 0.0);
            assert!(f - p <= (s.precision * p).max(1.0), "{limit}: {b:?}");
            assert!(n <= 22, "{limit}: {n} trials");
        }
        let c = Config::parse(
            r#"{"target": "http://127.0.0.1:1", "duration": "9s",
                "endpoints": [{"name": "a", "path": "/a", "rate": 10, "max_vus": 7}]}"#,
        )
        .unwrap();
        let t = at_vus(&c, 12, Duration::from_secs(2));
        assert_eq!((t.endpoints[0].rate, t.endpoints[0].max_vus), (None, None));
        assert_eq!(
            t.stages.iter().map(|s| s.target).collect::<Vec<_>>(),
            [12, 12]
        );
        assert_eq!(t.duration(), Duration::from_secs(2));
        t.resolve().expect("a VU trial's config is valid");
    }

    /// Dropped sends are the generator's limit when the connections could
    /// have carried the rate at the latency measured, or its threads were
    /// busy all the time; else the target's latency (or too few connections).
    #[test]
    fn dropped_sends_say_whose_limit_it_was() {
        let text = include_str!("../../../analytics/tests/data/open/summary.json");
        let mut s: Summary = serde_json::from_str(text).expect("a recorded summary");
        s.totals.dropped = 100;
        s.duration_s = 2.0;
        s.engine.threads = 1;
        let trial = |s: &Summary| {
            judge(
                s,
                SearchOver::Rate,
                1000.0,
                Duration::from_secs(2),
                10,
                1.0,
                "t".into(),
            )
        };
        // a generator with room: the target's responses held the connections
        (s.engine.cpu_user_s, s.engine.cpu_system_s) = (0.2, 0.1);
        let t = trial(&s);
        assert!(!t.generator_limit, "{t:?}");
        assert!(t.why.as_ref().unwrap().contains(
            "all 10 VUs busy (connections; stream slots over HTTP/2), held by the target"
        ));
        // a generator whose thread was busy all the time: its limit
        (s.engine.cpu_user_s, s.engine.cpu_system_s) = (1.5, 0.4);
        let t = trial(&s);
        assert!(t.generator_limit, "{t:?}");
        assert!(t.why.as_ref().unwrap().contains("the generator's limit"));
    }

    #[test]
    fn a_trial_keeps_the_mix_and_goes_open_model() {
        // (a trial is made from the config as written, before defaults)
        let c = Config::parse(
            r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "5s", "target": 10}],
                "requests": 5,
                "endpoints": [{"name": "a", "path": "/a", "weight": 3},
                              {"name": "b", "path": "/b", "weight": 1}],
                "flows": [{"name": "f", "weight": 4, "steps": [{"name": "s", "path": "/s"}]}]}"#,
        )
        .unwrap();
        let t = at_rate(&c, 800.0, Duration::from_secs(2), 50);
        assert_eq!(t.endpoints[0].rate, Some(300.0));
        assert_eq!(t.endpoints[1].rate, Some(100.0));
        assert_eq!(t.flows[0].rate, Some(400.0));
        assert_eq!(t.endpoints[0].max_vus, Some(50));
        assert!(t.stages.is_empty() && t.requests.is_none());
        assert_eq!(t.duration(), Duration::from_secs(2));
        t.clone().resolve().expect("a trial's config is valid");
        // all open: their rates keep their ratio
        let c = Config::parse(
            r#"{"target": "http://127.0.0.1:1", "duration": "1s",
                "endpoints": [{"name": "a", "path": "/a", "rate": 10, "pre_allocated_vus": 2, "max_vus": 7},
                              {"name": "b", "path": "/b", "rate": 30}]}"#,
        )
        .unwrap();
        let t = at_rate(&c, 100.0, Duration::from_secs(1), 50);
        assert_eq!(
            (t.endpoints[0].rate, t.endpoints[1].rate),
            (Some(25.0), Some(75.0))
        );
        // a unit's own max_vus stays
        assert_eq!(
            (t.endpoints[0].max_vus, t.endpoints[1].max_vus),
            (Some(50), Some(50))
        );
    }
}
