//! The load schedule as pure functions of time: how many VUs the stages
//! ask for at an instant, how they split over endpoints and over workers,
//! when the k-th open-model send is due.
//!
//! Workers evaluate these themselves on their control tick, so a ramp needs
//! no message from the aggregator and every worker agrees on the split.
//!
//! Time sums here saturate: validation bounds every duration
//! (`config::limits`), and these functions stay total past those bounds
//! (issue #27: a sum that a user value feeds must not panic).

use crate::config::{Distribution, Endpoint, Priority, PriorityShares, Stage};
use std::time::Duration;

/// VUs the stages ask for at `elapsed` since the run start: linear from the
/// previous stage's target (0 before the first) to this stage's, rounded to
/// the nearest VU; the last target holds after the end.
pub fn vus_at(stages: &[Stage], elapsed: Duration) -> u32 {
    let mut from = 0u32;
    let mut t = elapsed;
    for s in stages {
        if t < s.duration.0 {
            let f = t.as_secs_f64() / s.duration.0.as_secs_f64();
            return (from as f64 + (s.target as f64 - from as f64) * f).round() as u32;
        }
        t -= s.duration.0;
        from = s.target;
    }
    from
}

/// Until when the VU target stays what it is at `elapsed`: the end of the
/// current stage when that stage holds steady (same target as the one
/// before it), else `elapsed` itself (a ramp changes all the time).
pub fn steady_until(stages: &[Stage], elapsed: Duration) -> Duration {
    let mut from = 0u32;
    let mut end = Duration::ZERO;
    for s in stages {
        end = end.saturating_add(s.duration.0);
        if elapsed < end {
            return if s.target == from { end } else { elapsed };
        }
        from = s.target;
    }
    Duration::MAX
}

/// Splits `total` over `weights` in proportion, by largest remainder, so the
/// parts always add up to `total` and ties go to the earlier entry.
pub fn split_by_weight(total: u32, weights: &[f64]) -> Vec<u32> {
    let sum: f64 = weights.iter().sum();
    if weights.is_empty() || sum <= 0.0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut parts: Vec<u32> = exact.iter().map(|x| x.floor() as u32).collect();
    let mut left = total - parts.iter().sum::<u32>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for i in order.into_iter().cycle() {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

/// One stage of an arrival rate: from the previous stage's rate (0 before
/// the first) linearly to `target` req/s over `duration`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateStage {
    pub duration: Duration,
    pub target: f64,
}

/// When the `k`-th send (from 0) of an arrival-rate schedule is due: the
/// time at which the integral of the rate reaches `k`. `None` past the end.
/// A constant rate is a step (`0s`) to it, then a hold.
pub fn send_time(stages: &[RateStage], k: u64) -> Option<Duration> {
    let k = k as f64;
    let mut from = 0.0f64;
    let mut done = 0.0f64; // sends due before this stage
    let mut start = Duration::ZERO;
    for s in stages {
        let d = s.duration.as_secs_f64();
        let in_stage = (from + s.target) / 2.0 * d;
        if d > 0.0 && k < done + in_stage {
            // n = from·τ + (target − from)·τ² / (2d), solved for τ
            let n = k - done;
            let a = (s.target - from) / (2.0 * d);
            let tau = if a.abs() < 1e-12 {
                n / from
            } else {
                (-from + (from * from + 4.0 * a * n).sqrt()) / (2.0 * a)
            };
            let tau = Duration::try_from_secs_f64(tau.clamp(0.0, d)).unwrap_or_default();
            return Some(start.saturating_add(tau));
        }
        done += in_stage;
        from = s.target;
        start = start.saturating_add(s.duration);
    }
    None
}

/// The schedule's send count by `t`: the integral of the rate over
/// `[0, t)`, the inverse of [`send_time`] (send `k` is due before `t`
/// exactly when `k < sends_by(t)`, up to float rounding). Lets a worker far
/// behind its schedule skip ahead in constant time.
pub fn sends_by(stages: &[RateStage], t: Duration) -> f64 {
    let mut from = 0.0f64;
    let mut done = 0.0f64;
    let mut start = Duration::ZERO;
    for s in stages {
        let d = s.duration.as_secs_f64();
        let tau = t.saturating_sub(start).as_secs_f64();
        if tau < d {
            return done + from * tau + (s.target - from) * tau * tau / (2.0 * d);
        }
        done += (from + s.target) / 2.0 * d;
        from = s.target;
        start = start.saturating_add(s.duration);
    }
    done
}

/// The schedule after a live rate change (`set_rate`, see
/// [`crate::live`]): `stages` as they were up to `at` (a ramp cut there,
/// at the rate it had reached), then a step to `rate` held until `until`
/// (the end of the load) — the rest of `stages` no longer counts.
///
/// Send `k` is the same send in both schedules: the count by `at` is the
/// same (the integral up to `at` is untouched), so the sends due before
/// `at` keep their times and the first one after it comes `1/rate` after
/// the last old one's share of the gap — no catch-up burst, no hole. A
/// worker keeps its place in the sequence and reads the new times from the
/// new stages (see `open::OpenState::reschedule`).
pub fn switch_rate(
    stages: &[RateStage],
    at: Duration,
    rate: f64,
    until: Duration,
) -> Vec<RateStage> {
    let mut out = Vec::with_capacity(stages.len() + 2);
    let (mut from, mut start) = (0.0f64, Duration::ZERO);
    for s in stages {
        let end = start.saturating_add(s.duration);
        if at < end {
            let cut = at - start;
            if !cut.is_zero() {
                let f = cut.as_secs_f64() / s.duration.as_secs_f64();
                out.push(RateStage {
                    duration: cut,
                    target: from + (s.target - from) * f,
                });
            }
            start = at;
            break;
        }
        out.push(*s);
        from = s.target;
        start = end;
    }
    // past the old schedule's end: nothing was sent in between
    if at > start {
        out.push(RateStage {
            duration: Duration::ZERO,
            target: 0.0,
        });
        out.push(RateStage {
            duration: at - start,
            target: 0.0,
        });
    }
    out.push(RateStage {
        duration: Duration::ZERO,
        target: rate,
    });
    out.push(RateStage {
        duration: until.saturating_sub(at),
        target: rate,
    });
    out
}

/// The send schedule of an open-model unit (an endpoint, or a flow as
/// [`crate::config::Flow::as_unit`]) over a run of `length`: `rate` is a
/// step (`0s`) to it, then a hold; `rate_stages` are taken as written.
pub fn rate_schedule(unit: &Endpoint, length: Duration) -> Vec<RateStage> {
    match unit.rate {
        Some(r) => vec![
            RateStage {
                duration: Duration::ZERO,
                target: r,
            },
            RateStage {
                duration: length,
                target: r,
            },
        ],
        None => unit
            .rate_stages
            .iter()
            .map(|s| RateStage {
                duration: s.duration.0,
                target: s.target,
            })
            .collect(),
    }
}

/// Splits `total` VUs over endpoints by the distribution strategy.
/// `endpoints` holds each endpoint's weight and priority. Under `Priority`,
/// each level gets its share of `total` (levels no endpoint uses hand theirs
/// to the others in proportion) and splits it by weight.
pub fn allocate(
    total: u32,
    endpoints: &[(f64, Priority)],
    strategy: Distribution,
    shares: &PriorityShares,
) -> Vec<u32> {
    match strategy {
        Distribution::Proportional => {
            split_by_weight(total, &endpoints.iter().map(|e| e.0).collect::<Vec<_>>())
        }
        Distribution::Equal => split_by_weight(total, &vec![1.0; endpoints.len()]),
        Distribution::Priority => {
            let used: Vec<Priority> = Priority::ALL
                .into_iter()
                .filter(|p| endpoints.iter().any(|e| e.1 == *p))
                .collect();
            let mut level_weights: Vec<f64> = used.iter().map(|p| shares.of(*p)).collect();
            if level_weights.iter().sum::<f64>() <= 0.0 {
                level_weights = vec![1.0; used.len()]; // every used level has share 0
            }
            let per_level = split_by_weight(total, &level_weights);
            let mut out = vec![0; endpoints.len()];
            for (level, n) in used.iter().zip(per_level) {
                let members: Vec<usize> = (0..endpoints.len())
                    .filter(|&i| endpoints[i].1 == *level)
                    .collect();
                let weights: Vec<f64> = members.iter().map(|&i| endpoints[i].0).collect();
                for (i, part) in members.into_iter().zip(split_by_weight(n, &weights)) {
                    out[i] = part;
                }
            }
            out
        }
    }
}

/// The share of `n` VUs that worker `w` of `workers` runs. The remainder goes
/// to workers starting at `offset` (the endpoint index), so several small
/// endpoints do not all land on worker 0.
pub fn worker_share(n: u32, workers: usize, w: usize, offset: usize) -> u32 {
    let workers = workers.max(1) as u32;
    let base = n / workers;
    let extra = n % workers;
    let pos = ((w + workers as usize - offset % workers as usize) % workers as usize) as u32;
    base + u32::from(pos < extra)
}

/// Worker `w`'s share of `n` VUs of a row whose connections carry
/// `streams` VUs each (HTTP/2): whole connections are dealt to the
/// workers in turn as [`worker_share`] deals VUs, and the VUs fill them
/// in order, so the row uses `ceil(n / streams)` connections in all, not
/// a partly filled one per worker (`-c 1 --streams 100` on 2 workers was
/// 2 connections of 50; issue #30). One more VU lands on the worker
/// holding the last connection, so a ramp adds VUs without moving any.
/// `streams` 1 is [`worker_share`].
pub fn worker_share_packed(n: u32, streams: u32, workers: usize, w: usize, offset: usize) -> u32 {
    let s = u64::from(streams.max(1));
    let links = u64::from(n).div_ceil(s);
    if links == 0 {
        return 0;
    }
    let k = workers.max(1);
    let mine = u64::from(worker_share(links as u32, k, w, offset));
    let pos = (w + k - offset % k) % k;
    // the last connection, partly filled, is the one dealt at position
    // (links - 1) mod workers
    let short = if (links - 1) % k as u64 == pos as u64 {
        s * links - u64::from(n)
    } else {
        0
    };
    (s * mine - short) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Dur;

    fn st(secs: u64, target: u32) -> Stage {
        Stage {
            duration: Dur::from_secs(secs),
            target,
        }
    }

    #[test]
    fn stages_interpolate_linearly() {
        let stages = [st(10, 100), st(10, 100), st(5, 0)];
        let ms = Duration::from_millis;
        for (at, want) in [
            (0, 0),
            (1000, 10),
            (5000, 50),
            (9999, 100),
            (10_000, 100),
            (15_000, 100),
            (22_500, 50),
            (25_000, 0),
            (99_000, 0),
        ] {
            assert_eq!(vus_at(&stages, ms(at)), want, "at {at} ms");
        }
    }

    #[test]
    fn steady_until_skips_holds_but_not_ramps() {
        let stages = [st(10, 100), st(10, 100), st(5, 0)];
        let s = Duration::from_secs;
        assert_eq!(steady_until(&stages, s(3)), s(3));
        assert_eq!(steady_until(&stages, s(12)), s(20));
        assert_eq!(steady_until(&stages, s(21)), s(21));
        assert_eq!(steady_until(&stages, s(30)), Duration::MAX);
    }

    /// Past the validated bounds the time functions saturate, never panic
    /// (issue #27: a sum of user durations overflowed).
    #[test]
    fn time_sums_saturate() {
        let max = Dur(Duration::MAX);
        let huge = [
            Stage {
                duration: max,
                target: 1,
            },
            Stage {
                duration: max,
                target: 2,
            },
        ];
        assert_eq!(
            steady_until(&huge, Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        assert_eq!(vus_at(&huge, Duration::MAX), 1);
        let rates = [
            RateStage {
                duration: Duration::MAX,
                target: 0.0,
            },
            RateStage {
                duration: Duration::MAX,
                target: 0.0,
            },
            RateStage {
                duration: Duration::MAX,
                target: 5.0,
            },
        ];
        assert_eq!(send_time(&rates, 0), Some(Duration::MAX));
        assert_eq!(sends_by(&rates, Duration::from_secs(1)), 0.0);
    }

    #[test]
    fn zero_length_stage_is_a_step() {
        let stages = [st(0, 64), st(3, 64)];
        assert_eq!(vus_at(&stages, Duration::ZERO), 64);
        assert_eq!(vus_at(&stages, Duration::from_secs(2)), 64);
    }

    #[test]
    fn weights_split_exactly() {
        assert_eq!(split_by_weight(32, &[2.0, 1.0]), vec![21, 11]);
        assert_eq!(split_by_weight(3, &[1.0, 1.0, 1.0]), vec![1, 1, 1]);
        assert_eq!(split_by_weight(1, &[1.0, 1.0]), vec![1, 0]);
        assert_eq!(split_by_weight(0, &[1.0, 5.0]), vec![0, 0]);
        for total in 0..200 {
            let parts = split_by_weight(total, &[0.3, 2.5, 1.0, 7.0]);
            assert_eq!(parts.iter().sum::<u32>(), total);
        }
    }

    fn rs(secs: f64, target: f64) -> RateStage {
        RateStage {
            duration: Duration::from_secs_f64(secs),
            target,
        }
    }

    #[test]
    fn constant_rate_sends_evenly() {
        let stages = [rs(0.0, 1000.0), rs(10.0, 1000.0)];
        assert_eq!(send_time(&stages, 0), Some(Duration::ZERO));
        let t = send_time(&stages, 500).unwrap().as_secs_f64();
        assert!((t - 0.5).abs() < 1e-9, "{t}");
        assert!(send_time(&stages, 9_999).is_some());
        assert_eq!(
            send_time(&stages, 10_000),
            None,
            "exactly rate × duration sends"
        );
    }

    #[test]
    fn sends_by_inverts_send_time() {
        let stages = [rs(10.0, 100.0), rs(5.0, 100.0), rs(10.0, 0.0)];
        for k in [0u64, 1, 7, 125, 499, 500, 777, 1000, 1499] {
            let t = send_time(&stages, k).unwrap();
            let n = sends_by(&stages, t);
            assert!((n - k as f64).abs() < 1e-6, "send {k} at {t:?}: {n}");
        }
        assert!((sends_by(&stages, Duration::from_secs(99)) - 1500.0).abs() < 1e-9);
    }

    #[test]
    fn ramps_follow_the_integral_of_the_rate() {
        // 0 → 100 req/s over 10 s: 500 sends, n(t) = 5 t²
        let stages = [rs(10.0, 100.0)];
        for (k, want) in [(0u64, 0.0), (5, 1.0), (125, 5.0), (405, 9.0)] {
            let t = send_time(&stages, k).unwrap().as_secs_f64();
            assert!((t - want).abs() < 1e-6, "send {k}: {t} want {want}");
        }
        assert_eq!(send_time(&stages, 500), None);
        // then down again: 100 → 0 over 10 s adds 500 more
        let stages = [rs(10.0, 100.0), rs(10.0, 0.0)];
        let t = send_time(&stages, 999).unwrap().as_secs_f64();
        assert!(t > 19.0 && t < 20.0, "{t}");
        assert_eq!(send_time(&stages, 1000), None);
        // times never go backwards
        let mut last = Duration::ZERO;
        for k in 0..1000 {
            let t = send_time(&stages, k).unwrap();
            assert!(t >= last);
            last = t;
        }
    }

    /// A live rate change: the sends before the switch keep their times,
    /// the ones after follow the new rate from the switch on, with no burst
    /// of sends for the time before it and no gap.
    #[test]
    fn a_rate_switch_keeps_the_past_and_paces_the_rest() {
        let old = [rs(0.0, 50.0), rs(10.0, 50.0)];
        let at = Duration::from_millis(3010);
        let new = switch_rate(&old, at, 200.0, Duration::from_secs(10));
        let by = sends_by(&old, at);
        assert!(
            (sends_by(&new, at) - by).abs() < 1e-9,
            "the count by the switch is kept"
        );
        let first_after = by.ceil() as u64; // 151: sends 0..=150 were due by 3.01 s
        for k in 0..first_after {
            assert_eq!(
                send_time(&new, k),
                send_time(&old, k),
                "send {k} before the switch"
            );
        }
        let t = |k| send_time(&new, k).unwrap().as_secs_f64();
        // the first new send: not before the switch, not later than one new interval after
        assert!(t(first_after) >= 3.01 - 1e-9 && t(first_after) <= 3.01 + 0.005 + 1e-9);
        for k in first_after + 1..first_after + 400 {
            let gap = t(k) - t(k - 1);
            assert!((gap - 0.005).abs() < 1e-6, "send {k}: {gap}");
        }
        // 200/s for the rest: 150.5 + 6.99 × 200 sends in all
        let total = sends_by(&new, Duration::from_secs(10));
        assert!((total - (150.5 + 6.99 * 200.0)).abs() < 1e-6, "{total}");
        // no burst: in no 100 ms window after the switch more than 20 sends + 1
        let mut k = first_after;
        let mut window = vec![];
        while let Some(x) = send_time(&new, k) {
            window.push(x.as_secs_f64());
            k += 1;
        }
        for (i, &x) in window.iter().enumerate() {
            let n = window[i..].iter().take_while(|&&y| y < x + 0.1).count();
            assert!(n <= 21, "{n} sends within 100 ms of {x}");
        }
        assert_eq!(send_time(&new, k), None);
    }

    #[test]
    fn a_rate_switch_cuts_a_ramp_where_it_stood() {
        // 0 → 100 req/s over 10 s, switched to 10 req/s at 5 s (when it was at 50)
        let old = [rs(10.0, 100.0)];
        let at = Duration::from_secs(5);
        let new = switch_rate(&old, at, 10.0, Duration::from_secs(10));
        assert!((sends_by(&new, at) - 125.0).abs() < 1e-9);
        assert!(
            (crate::live::rate_at(&new, Duration::from_millis(4999)).unwrap() - 50.0).abs() < 0.1
        );
        assert_eq!(
            crate::live::rate_at(&new, Duration::from_secs(7)),
            Some(10.0)
        );
        assert!((sends_by(&new, Duration::from_secs(10)) - 175.0).abs() < 1e-9);
        // past the end of a shorter schedule: nothing in between, then the new rate
        let short = [rs(0.0, 10.0), rs(2.0, 10.0)];
        let new = switch_rate(&short, Duration::from_secs(4), 5.0, Duration::from_secs(6));
        assert!((sends_by(&new, Duration::from_secs(4)) - 20.0).abs() < 1e-9);
        let t = send_time(&new, 20).unwrap();
        assert_eq!(t, Duration::from_secs(4));
        assert!((sends_by(&new, Duration::from_secs(6)) - 30.0).abs() < 1e-9);
    }

    #[test]
    fn allocates_by_strategy() {
        use Priority::*;
        let shares = PriorityShares::default();
        let eps = [(2.0, High), (1.0, Medium), (1.0, Low), (3.0, High)];
        assert_eq!(
            allocate(70, &eps, Distribution::Proportional, &shares),
            vec![20, 10, 10, 30]
        );
        assert_eq!(
            allocate(8, &eps, Distribution::Equal, &shares),
            vec![2, 2, 2, 2]
        );
        // high 60 % = 60 split 2:3, medium 30, low 10
        assert_eq!(
            allocate(100, &eps, Distribution::Priority, &shares),
            vec![24, 30, 10, 36]
        );
        // no low endpoint: its 10 % goes to the others in proportion (60:30)
        let two = [(1.0, High), (1.0, Medium)];
        assert_eq!(
            allocate(90, &two, Distribution::Priority, &shares),
            vec![60, 30]
        );
        for total in 0..50 {
            assert_eq!(
                allocate(total, &eps, Distribution::Priority, &shares)
                    .iter()
                    .sum::<u32>(),
                total
            );
        }
    }

    #[test]
    fn workers_share_evenly_and_spread_remainders() {
        for n in 0..50 {
            let shares: Vec<u32> = (0..4).map(|w| worker_share(n, 4, w, 1)).collect();
            assert_eq!(shares.iter().sum::<u32>(), n);
            assert!(shares.iter().max().unwrap() - shares.iter().min().unwrap() <= 1);
        }
        // one VU each for two endpoints lands on different workers
        assert_eq!(worker_share(1, 2, 0, 0), 1);
        assert_eq!(worker_share(1, 2, 1, 1), 1);
        assert_eq!(worker_share(1, 2, 0, 1), 0);
    }

    #[test]
    fn packed_shares_fill_whole_connections_and_grow_one_vu_at_a_time() {
        for workers in 1..=4usize {
            for streams in [1u32, 3, 10, 100] {
                let mut before = vec![0u32; workers];
                for n in 0..=250u32 {
                    let got: Vec<u32> = (0..workers)
                        .map(|w| worker_share_packed(n, streams, workers, w, 1))
                        .collect();
                    assert_eq!(got.iter().sum::<u32>(), n, "{n} {streams} {workers}");
                    let links: u32 = got.iter().map(|v| v.div_ceil(streams)).sum();
                    assert_eq!(
                        links,
                        n.div_ceil(streams),
                        "{n} {streams} {workers} {got:?}"
                    );
                    // a ramp never moves a VU from one worker to another
                    assert!(
                        got.iter().zip(&before).all(|(g, b)| g >= b),
                        "{n}: {before:?} → {got:?}"
                    );
                    before = got;
                }
            }
        }
        assert_eq!(worker_share_packed(7, 1, 2, 0, 0), worker_share(7, 2, 0, 0));
    }
}
