//! `search`: a config that asks for a capacity search instead of one run
//! (see [`crate::run::search`]). Written by `userflux-engine search`'s
//! flags, by `userfluxctl run start --search`, or by hand; recorded in the
//! search's `config.json`, so a search can be run again as it was.

use super::limits::{self, MAX_RATE, MAX_RUN, check_duration};
use crate::duration::Dur;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The shortest trial: a second holds enough requests to judge a
/// percentile by, and leaves time for the trial's connections to open.
pub const MIN_TRIAL: Duration = Duration::from_secs(1);

/// What a search varies.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SearchOver {
    /// The total arrival rate (open model, req/s; flows: iterations/s).
    #[default]
    Rate,
    /// The number of VUs (closed model): "how many users".
    Vus,
}

/// A capacity search's settings; every field has a default (`"search": {}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// `rate` (default) or `vus`.
    #[serde(default)]
    pub over: SearchOver,
    /// The first rate (or VU count) tried after the warm-up.
    #[serde(default = "default_from")]
    pub from: f64,
    /// The highest tried.
    #[serde(default = "default_max")]
    pub max: f64,
    /// Stop when [highest pass, lowest fail] is this narrow, relative to its lower end.
    #[serde(default = "default_precision")]
    pub precision: f64,
    /// Each trial's length.
    #[serde(default = "default_trial")]
    pub trial: Dur,
    /// An unjudged trial at `from` first (`"0s"`: none).
    #[serde(default = "default_warmup")]
    pub warmup: Dur,
    /// Trials per value; a value whose trials disagree is noisy (counted as failing).
    #[serde(default = "default_repeat")]
    pub repeat: u32,
    /// Pause between trials, so the target's queues drain.
    #[serde(default = "default_cooldown")]
    pub cooldown: Dur,
    /// The confirmation run at the value found; default 3 × `trial`; `"0s"`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<Dur>,
    /// The longest the whole search may take; then the bracket so far is the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Dur>,
    /// A trial with more failed requests than this (0..1) fails, whatever
    /// the thresholds say (a target answering only errors is not "within
    /// SLO" because its errors were fast).
    #[serde(default = "default_max_error_rate")]
    pub max_error_rate: f64,
    /// Rate search: most connections per unit in a trial (units' own
    /// `pre_allocated_vus`/`max_vus` are not used by a search).
    #[serde(default = "default_max_vus")]
    pub max_vus: u32,
}

fn default_from() -> f64 {
    100.0
}
fn default_max() -> f64 {
    1_000_000.0
}
fn default_precision() -> f64 {
    0.02
}
fn default_trial() -> Dur {
    Dur(Duration::from_secs(5))
}
fn default_warmup() -> Dur {
    Dur(Duration::from_secs(2))
}
fn default_repeat() -> u32 {
    1
}
fn default_cooldown() -> Dur {
    Dur(Duration::from_secs(1))
}
fn default_max_error_rate() -> f64 {
    0.01
}
fn default_max_vus() -> u32 {
    1000
}

impl Default for SearchConfig {
    fn default() -> SearchConfig {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

impl SearchConfig {
    /// The confirmation's length.
    pub fn confirm(&self) -> Duration {
        self.confirm.map_or(self.trial.0.saturating_mul(3), |d| d.0)
    }

    /// What is wrong with it, each `search.FIELD: why`.
    pub fn problems(&self, out: &mut Vec<String>) {
        let (lo, hi, what) = match self.over {
            SearchOver::Rate => (1.0, MAX_RATE, "requests per second"),
            SearchOver::Vus => (1.0, f64::from(limits::MAX_VUS), "VUs"),
        };
        for (name, v) in [("from", self.from), ("max", self.max)] {
            if !(v.is_finite() && v >= lo && v <= hi) {
                out.push(format!(
                    "search.{name}: must be from {lo} to {hi} {what}, got {v}"
                ));
            }
        }
        if self.over == SearchOver::Vus {
            for (name, v) in [("from", self.from), ("max", self.max)] {
                if v.fract() != 0.0 {
                    out.push(format!(
                        "search.{name}: a VU count is a whole number, got {v}"
                    ));
                }
            }
        }
        if self.from > self.max {
            out.push(format!(
                "search.from: {} is above search.max {}",
                self.from, self.max
            ));
        }
        if !(0.001..=1.0).contains(&self.precision) {
            out.push(format!(
                "search.precision: must be from 0.001 to 1 (0.02 = 2 %), got {}",
                self.precision
            ));
        }
        if !(1..=10).contains(&self.repeat) {
            out.push(format!(
                "search.repeat: must be 1 to 10, got {}",
                self.repeat
            ));
        }
        if !(1..=limits::MAX_VUS).contains(&self.max_vus) {
            out.push(format!(
                "search.max_vus: must be 1 to {}, got {}",
                limits::MAX_VUS,
                self.max_vus
            ));
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            out.push(format!(
                "search.max_error_rate: must be from 0 to 1, got {}",
                self.max_error_rate
            ));
        }
        // a shorter trial holds too few requests, and connections still
        // opening, to judge a percentile by
        out.extend(check_duration(
            "search.trial",
            self.trial.0,
            MIN_TRIAL,
            MAX_RUN,
        ));
        if let Some(c) = self.confirm
            && !c.0.is_zero()
            && c.0 < self.trial.0
        {
            out.push(format!(
                "search.confirm: {c} is shorter than a trial ({}); give at least that, or \"0s\" for none",
                self.trial
            ));
        }
        if let Some(b) = self.budget
            && b.0 < self.trial.0
        {
            out.push(format!(
                "search.budget: {b} is shorter than one trial ({})",
                self.trial
            ));
        }
        for (name, d) in [
            ("warmup", Some(self.warmup)),
            ("cooldown", Some(self.cooldown)),
            ("confirm", self.confirm),
            ("budget", self.budget),
        ] {
            if let Some(d) = d {
                out.extend(check_duration(
                    &format!("search.{name}"),
                    d.0,
                    Duration::ZERO,
                    MAX_RUN,
                ));
            }
        }
    }
}
