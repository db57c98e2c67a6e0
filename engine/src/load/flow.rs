//! Flows: what a flow VU carries through an iteration (its vars, its
//! cookie jar, when it began), and the iteration's rules — a step's
//! captures and cookies, the next step or the end of the iteration, how an
//! iteration is counted, and failure pacing (think time, then a back-off
//! that grows with consecutive failures and resets only when a whole
//! iteration succeeds). An endpoint is paced by the same back-off.
//!
//! The worker decides when these apply (a response, a failure, a VU
//! leaving); this room decides what they do, free of sockets, so the rules
//! are tested as plain functions.

use crate::capture::{Kept, Miss, Reader, headers};
use crate::cookies::Jar;
use crate::plan::{EndpointPlan, FlowPlan, StepPlan};
use crate::stats::{FlowStats, micros};
use crate::template::Vars;
use std::time::{Duration, Instant};

/// Reconnect delay after consecutive failures: 0, then 10 ms doubling to this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How a flow iteration ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IterationEnd {
    Completed,
    /// A step failed (an error, an unexpected status, a capture).
    Failed,
    /// The end of the run cut off a step's request.
    Interrupted,
}

/// What a flow VU carries through one iteration.
pub struct FlowVu {
    pub vars: Vars,
    pub jar: Jar,
    /// When the iteration's first step was sent.
    pub started: Instant,
    /// An iteration is under way (its first step was sent, its last not done).
    pub begun: bool,
    /// Retired mid-iteration: no step starts after this (`graceful_ramp_down`).
    pub leave_by: Option<Instant>,
}

/// A capture that found nothing: which of the step's captures, and why.
#[derive(Debug)]
pub struct Missed {
    pub capture: usize,
    pub miss: Miss,
}

impl FlowVu {
    pub fn new(vars: usize, now: Instant) -> FlowVu {
        FlowVu {
            vars: Vars::new(vars),
            jar: Jar::default(),
            started: now,
            begun: false,
            leave_by: None,
        }
    }

    /// The first step goes out: a new iteration with empty vars and jar.
    /// False when one is under way already.
    #[inline]
    pub fn begin(&mut self, now: Instant) -> bool {
        if self.begun {
            return false;
        }
        self.begun = true;
        self.started = now;
        self.vars.clear();
        self.jar.clear();
        true
    }

    /// Mid-iteration, and (if it was told to leave) still within its
    /// graceful ramp-down.
    #[inline]
    pub fn may_go_on(&self, now: Instant) -> bool {
        self.begun && self.leave_by.is_none_or(|t| now < t)
    }

    /// A step's response was accepted: reads its `Set-Cookie`s into the jar
    /// (`path` is where the request went, for a cookie's default Path) and
    /// its captures into the vars. A capture that finds nothing is the
    /// step's error (kind `capture`). `value` is scratch.
    #[inline]
    pub fn take(
        &mut self,
        row: &EndpointPlan,
        step: &StepPlan,
        flow: &FlowPlan,
        kept: Kept<'_>,
        path: &str,
        value: &mut Vec<u8>,
    ) -> Result<(), Missed> {
        if flow.cookies {
            let now = std::time::SystemTime::now();
            for v in headers(kept.head, "set-cookie") {
                self.jar.store(&row.host, v, path, now);
            }
        }
        let mut reader = Reader::new(kept);
        for (capture, (n, sel)) in step.captures.iter().enumerate() {
            value.clear();
            if let Err(miss) = reader.select(sel, value) {
                return Err(Missed { capture, miss });
            }
            self.vars.set(*n, value);
        }
        Ok(())
    }

    /// The iteration ended as `end` at `now`: counts it (once: an iteration
    /// not under way counts nothing).
    #[inline]
    pub fn end(&mut self, end: IterationEnd, now: Instant, stats: &mut FlowStats) {
        if !self.begun {
            return;
        }
        self.begun = false;
        match end {
            IterationEnd::Completed => {
                stats.iterations += 1;
                stats
                    .duration
                    .record(micros(now.saturating_duration_since(self.started)));
            }
            IterationEnd::Failed => stats.failed += 1,
            IterationEnd::Interrupted => stats.interrupted += 1,
        }
    }
}

/// What follows a flow step's response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterStep {
    /// The next step, after the step's think time.
    Next(Duration),
    /// The iteration ended; the next one begins after this pause.
    End(IterationEnd, Duration),
}

/// After a step's response (`failed`: its status was not accepted or a
/// capture missed): the next step, or after the last step or a failure the
/// end of the iteration. A failed iteration is paced like a failed request:
/// think time, then the consecutive-failure back-off (issue #27: a step
/// answered by an error restarted at once, a retry storm on the first
/// step). `failures` counts failed iterations in a row; only a whole
/// iteration's success resets it.
#[inline]
pub fn after_step(
    last: bool,
    failed: bool,
    think: Duration,
    flow_think: Duration,
    failures: &mut u32,
) -> AfterStep {
    if !failed && !last {
        return AfterStep::Next(think);
    }
    let think = think.saturating_add(flow_think);
    if failed {
        *failures = failures.saturating_add(1);
        AfterStep::End(IterationEnd::Failed, pause_after_failure(think, *failures))
    } else {
        *failures = 0;
        AfterStep::End(IterationEnd::Completed, think)
    }
}

/// The pause before a VU's next try after its `failures`-th failure in a
/// row: its usual think time, then the back-off, so a failing target is
/// never retried faster than it is loaded when it works (issue #27: a flow
/// step failing on the connection restarted its iteration at once, 516
/// iterations in 2 s for a 100 ms think time).
#[inline]
pub fn pause_after_failure(think: Duration, failures: u32) -> Duration {
    think.saturating_add(backoff(failures))
}

/// The back-off after `failures` consecutive failures: none after the
/// first, then 10 ms doubling up to [`MAX_BACKOFF`].
pub fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let ms = 10u64.saturating_mul(1 << (failures - 2).min(20));
    Duration::from_millis(ms).min(MAX_BACKOFF)
}

/// The request-target of a rendered HTTP/1.1 request (`GET /a/b?c HTTP/1.1`
/// gives `/a/b?c`): where a templated step went, for its cookies' default Path.
pub fn sent_path(out: &[u8]) -> Option<&str> {
    let line = out.split(|&b| b == b'\r').next()?;
    let mut parts = line.splitn(3, |&b| b == b' ');
    parts.next()?;
    std::str::from_utf8(parts.next()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sent_path_is_the_request_target() {
        assert_eq!(
            sent_path(b"GET /a/b?c=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some("/a/b?c=1")
        );
        assert_eq!(sent_path(b"POST / HTTP/1.1\r\n"), Some("/"));
        assert_eq!(sent_path(b""), None);
    }

    #[test]
    fn backoff_starts_at_zero_and_is_capped() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(10));
        assert_eq!(backoff(3), Duration::from_millis(20));
        assert_eq!(backoff(8), Duration::from_millis(640));
        assert_eq!(backoff(9), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn a_step_goes_on_and_the_last_or_a_failed_one_ends_the_iteration() {
        let ms = Duration::from_millis;
        let mut failures = 3;
        // a middle step that worked: the next step after its think time;
        // the failure count waits for the whole iteration
        assert_eq!(
            after_step(false, false, ms(5), ms(100), &mut failures),
            AfterStep::Next(ms(5))
        );
        assert_eq!(failures, 3);
        // a failed step ends the iteration: think, flow think, back-off
        assert_eq!(
            after_step(false, true, ms(5), ms(100), &mut failures),
            AfterStep::End(IterationEnd::Failed, ms(105) + backoff(4))
        );
        assert_eq!(failures, 4);
        // a whole iteration that succeeded resets the count
        assert_eq!(
            after_step(true, false, ms(5), ms(100), &mut failures),
            AfterStep::End(IterationEnd::Completed, ms(105))
        );
        assert_eq!(failures, 0);
        // a first failure is paced by think time alone; huge ones saturate
        assert_eq!(
            after_step(true, true, Duration::MAX, ms(1), &mut failures),
            AfterStep::End(IterationEnd::Failed, Duration::MAX)
        );
    }

    #[test]
    fn an_iteration_counts_once_as_it_ended() {
        let t0 = Instant::now();
        let mut stats = FlowStats::default();
        let mut f = FlowVu::new(1, t0);
        assert!(!f.may_go_on(t0));
        assert!(f.begin(t0));
        assert!(!f.begin(t0), "one iteration at a time");
        assert!(f.may_go_on(t0));
        f.leave_by = Some(t0);
        assert!(!f.may_go_on(t0), "past its graceful ramp-down");
        f.end(
            IterationEnd::Completed,
            t0 + Duration::from_millis(3),
            &mut stats,
        );
        f.end(IterationEnd::Failed, t0, &mut stats);
        assert_eq!(
            (stats.iterations, stats.failed, stats.interrupted),
            (1, 0, 0)
        );
        assert!(f.begin(t0));
        f.end(IterationEnd::Interrupted, t0, &mut stats);
        assert_eq!(stats.interrupted, 1);
    }
}
