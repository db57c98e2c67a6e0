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

use crate::plan::{RateStage, send_time};
use std::time::Duration;

/// A send that leaves this long (or more) after its intended time is late.
pub const LATE: Duration = Duration::from_millis(1);

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

    /// Moves every send due by `elapsed` (since the run start) into the backlog.
    pub fn advance(&mut self, elapsed: Duration) {
        while let Some(at) = self.next_at {
            if at > elapsed {
                break;
            }
            if self.pending == 0 {
                self.pending_k = self.next_k;
            }
            self.pending += 1;
            self.next_k += self.stride;
            self.next_at = send_time(&self.stages, self.next_k);
        }
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

    /// Drops waiting sends intended before `cutoff`; returns how many.
    pub fn drop_before(&mut self, cutoff: Duration) -> u64 {
        let mut dropped = 0;
        while self.oldest().is_some_and(|at| at < cutoff) {
            self.take();
            dropped += 1;
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
