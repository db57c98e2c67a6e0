//! One worker's share of an open-model (arrival-rate) endpoint: which sends
//! of the schedule are its own, which are due and still waiting for a
//! connection, and which connections are idle.
//!
//! The endpoint's schedule is global (send `k` is due at
//! [`send_time`]`(k)`); the workers that carry it take every `stride`-th
//! send, so together they follow it exactly. Sends that are due but have no
//! free connection wait in a backlog — a range of schedule indices, so it
//! costs no memory however long it gets — and are dropped once they could no
//! longer start within the request timeout of their intended time.
//! Latency is later measured both from the intended time (corrected for
//! coordinated omission, as wrk2 does) and from the actual send.

use crate::plan::{RateStage, send_time, sends_by};
use std::time::Duration;

/// A send that leaves this long (or more) after its intended time is late.
pub const LATE: Duration = Duration::from_millis(1);
/// Sends stepped through one by one before a worker that is this far
/// behind jumps ahead with [`sends_by`]: the per-send loop took a worker
/// past its stop check at `"rate": 1e12` (issue #21).
const STEPS_BEFORE_JUMP: u64 = 64;
/// How far short of [`sends_by`]'s float estimate a jump lands, so the
/// exact per-send steps finish the count.
const JUMP_MARGIN: u64 = 4;

#[derive(Debug)]
pub struct OpenState {
    stages: Vec<RateStage>,
    stride: u64,
    /// The next of this worker's sends not yet due, and when it is due.
    next_k: u64,
    next_at: Option<Duration>,
    /// The backlog: `pending` sends due but not sent, the oldest being `pending_k`.
    pending_k: u64,
    pending: u64,
    /// Idle connections of this endpoint on this worker (slab indices).
    pub idle: Vec<usize>,
    /// Most connections this worker may hold for the endpoint.
    pub cap: u32,
}

impl OpenState {
    /// The share of a worker at `position` among `stride` workers carrying the schedule.
    pub fn new(stages: Vec<RateStage>, position: u64, stride: u64, cap: u32) -> OpenState {
        let next_at = send_time(&stages, position);
        OpenState {
            stages,
            stride,
            next_k: position,
            next_at,
            pending_k: position,
            pending: 0,
            idle: Vec::new(),
            cap,
        }
    }

    /// Follows a new schedule from now on (a live rate change, see
    /// [`crate::plan::switch_rate`]): this worker keeps its place in the
    /// sequence of sends, and its next one is due when the new schedule
    /// says. Sends already waiting keep their index and are timed by the new
    /// schedule too (the same times, when they were due before the switch).
    pub fn reschedule(&mut self, stages: Vec<RateStage>) {
        self.stages = stages;
        self.next_at = send_time(&self.stages, self.next_k);
    }

    /// Moves every send due by `elapsed` (since the run start) into the
    /// backlog, in bounded time however far behind the worker is.
    pub fn advance(&mut self, elapsed: Duration) {
        let mut steps = 0;
        while let Some(at) = self.next_at {
            if at > elapsed {
                break;
            }
            steps += 1;
            if steps == STEPS_BEFORE_JUMP {
                let due = (sends_by(&self.stages, elapsed) as u64).saturating_sub(JUMP_MARGIN);
                let own = due.saturating_sub(self.next_k).div_ceil(self.stride);
                if own > 1 {
                    self.queue(own - 1);
                    continue;
                }
            }
            self.queue(1);
        }
    }

    /// Moves this worker's next `n` sends into the backlog.
    fn queue(&mut self, n: u64) {
        if self.pending == 0 {
            self.pending_k = self.next_k;
        }
        self.pending += n;
        self.next_k += n * self.stride;
        self.next_at = send_time(&self.stages, self.next_k);
    }

    /// The intended time of the oldest send waiting.
    pub fn oldest(&self) -> Option<Duration> {
        (self.pending > 0).then(|| send_time(&self.stages, self.pending_k).unwrap_or_default())
    }

    /// Takes the oldest waiting send; returns its intended time.
    pub fn take(&mut self) -> Option<Duration> {
        let at = self.oldest()?;
        self.pending -= 1;
        self.pending_k += self.stride;
        Some(at)
    }

    /// Drops waiting sends intended before `cutoff`; returns how many. In
    /// bounded time, like [`OpenState::advance`].
    pub fn drop_before(&mut self, cutoff: Duration) -> u64 {
        let mut dropped = 0;
        while self.oldest().is_some_and(|at| at < cutoff) {
            dropped += 1;
            if dropped == STEPS_BEFORE_JUMP {
                let due = (sends_by(&self.stages, cutoff) as u64).saturating_sub(JUMP_MARGIN);
                let own = due
                    .saturating_sub(self.pending_k)
                    .div_ceil(self.stride)
                    .min(self.pending);
                if own > 1 {
                    self.pending -= own - 1;
                    self.pending_k += (own - 1) * self.stride;
                    dropped += own - 2;
                    continue;
                }
            }
            self.take();
        }
        dropped
    }

    /// Drops every waiting send (the run is stopping); returns how many.
    pub fn drop_all(&mut self) -> u64 {
        let n = self.pending;
        self.pending = 0;
        self.next_at = None;
        n
    }

    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// When the next send of this worker becomes due, if any.
    pub fn next_due(&self) -> Option<Duration> {
        self.next_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constant(rate: f64, secs: u64) -> Vec<RateStage> {
        vec![
            RateStage {
                duration: Duration::ZERO,
                target: rate,
            },
            RateStage {
                duration: Duration::from_secs(secs),
                target: rate,
            },
        ]
    }

    #[test]
    fn workers_share_the_schedule_without_gaps_or_overlap() {
        // 100 req/s for 1 s over 3 workers: 34 + 33 + 33 sends
        let mut counts = vec![];
        for pos in 0..3 {
            let mut s = OpenState::new(constant(100.0, 1), pos, 3, 10);
            s.advance(Duration::from_secs(2));
            let mut times = vec![];
            while let Some(t) = s.take() {
                times.push(t);
            }
            assert!(
                times
                    .windows(2)
                    .all(|w| (w[1] - w[0]).as_secs_f64() > 0.0299),
                "{times:?}"
            );
            counts.push(times.len());
        }
        assert_eq!(counts, vec![34, 33, 33]);
    }

    #[test]
    fn a_worker_far_behind_jumps_ahead_and_counts_exactly() {
        // 10,000 sends over 3 workers, all due at once: the jump must land
        // on the same counts as stepping through them.
        let mut total = 0;
        for pos in 0..3 {
            let mut s = OpenState::new(constant(10_000.0, 1), pos, 3, 10);
            s.advance(Duration::from_millis(500));
            let half = s.pending();
            s.advance(Duration::from_secs(2));
            assert_eq!(s.next_due(), None);
            let n = s.pending();
            assert!((1660..=1670).contains(&half), "{half}");
            assert_eq!(
                s.drop_before(Duration::from_millis(250)),
                834 - u64::from(pos > 0)
            );
            assert_eq!(
                s.drop_before(Duration::from_secs(2)),
                n - 834 + u64::from(pos > 0)
            );
            assert_eq!(s.pending(), 0);
            total += n;
        }
        assert_eq!(total, 10_000);
        // At a rate no machine sends, a turn still ends at once. (Intended
        // times have nanosecond resolution: at 1e12/s a thousand sends share
        // one, hence the tolerance.)
        let mut s = OpenState::new(constant(1e12, 10), 1, 2, 10);
        s.advance(Duration::from_secs(5));
        let n = s.pending();
        assert!((n as f64 - 2.5e12).abs() < 1000.0, "{n}");
        let dropped = s.drop_before(Duration::from_secs(4));
        assert!((dropped as f64 - 2e12).abs() < 1000.0, "{dropped}");
        assert_eq!(s.drop_all(), n - dropped);
    }

    /// A worker told of a rate change before it takes effect goes on from
    /// its place: its sends before the switch as they were, after it one
    /// every `stride / rate`, with no burst for the time before the switch.
    #[test]
    fn a_worker_switches_rate_without_catching_up() {
        use crate::plan::switch_rate;
        let old = constant(50.0, 10);
        let at = Duration::from_millis(2000);
        let new = switch_rate(&old, at, 200.0, Duration::from_secs(10));
        for pos in 0..2 {
            let mut s = OpenState::new(old.clone(), pos, 2, 10);
            s.advance(Duration::from_millis(1950)); // told 50 ms ahead of the switch
            let before = s.pending();
            while s.take().is_some() {}
            s.reschedule(new.clone());
            assert_eq!(before, 49, "sends 0..97 at 50/s, every other one");
            // until the switch only the old schedule's last send (1.96 or 1.98 s)
            s.advance(Duration::from_millis(1999));
            assert_eq!(s.pending(), 1, "no catch-up");
            assert!(s.take().unwrap() < at);
            // then 200/s over 2 workers: 100/s each
            s.advance(Duration::from_millis(3000));
            let n = s.pending();
            assert!((100..=101).contains(&n), "worker {pos}: {n}");
            let mut last = None;
            while let Some(t) = s.take() {
                assert!(t >= at);
                if let Some(l) = last {
                    let gap: Duration = t - l;
                    assert!((gap.as_secs_f64() - 0.01).abs() < 1e-6, "{gap:?}");
                }
                last = Some(t);
            }
        }
    }

    #[test]
    fn the_backlog_keeps_intended_times_and_drops_the_old() {
        let mut s = OpenState::new(constant(10.0, 10), 0, 1, 1);
        s.advance(Duration::from_millis(550)); // sends at 0, 100, ..., 500 ms are due
        assert_eq!(s.pending(), 6);
        assert_eq!(s.take(), Some(Duration::ZERO));
        assert_eq!(
            s.drop_before(Duration::from_millis(300)),
            2,
            "100 and 200 ms are too old"
        );
        assert_eq!(s.oldest(), Some(Duration::from_millis(300)));
        assert_eq!(s.next_due(), Some(Duration::from_millis(600)));
        assert_eq!(s.drop_all(), 3);
        assert_eq!(s.next_due(), None);
    }
}
