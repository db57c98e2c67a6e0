//! The per-endpoint autoscale controller: last-interval observations in,
//! worker-count decisions out. A pure function — no threads, no sockets, no
//! clock — so every rule is a unit test.
//!
//! Rules, per endpoint whose interval has come round and whose cooldown has
//! passed:
//! 1. **Back off** when the error rate is over `max_error_rate` or p99 over
//!    `max_p99`, even below the RPS target: a struggling endpoint gets fewer
//!    workers, not more (Tressi's single loop pushed harder).
//! 2. **Scale up** when RPS is under `scale_up_threshold × target_rps`.
//! 3. **Scale down** when RPS is over `scale_down_threshold × target_rps`.
//! 4. Otherwise **hold**.
//!
//! A step toward the target is sized from the observed rate per worker
//! (`workers × target / rps`), capped at `scale_*_factor × workers` (at least
//! one): far from the target it moves by the factor as Tressi's design did;
//! near it, it lands instead of overshooting. Counts stay within
//! `[min_workers, max_workers]`; with a global `max_workers`, scale-ups are
//! granted high priority first, and when the total is over the cap the
//! lowest priorities give workers back first.

use crate::config::{Autoscale, Priority};
use std::time::Duration;

/// What one endpoint did over its last interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    pub rps: f64,
    pub p99_ms: Option<f64>,
    pub error_rate: f64,
    pub requests: u64,
}

/// One autoscaled endpoint as the controller sees it.
#[derive(Clone, Copy, Debug)]
pub struct EndpointInput {
    pub settings: Autoscale,
    pub priority: Priority,
    pub workers: u32,
    /// When its worker count last changed (since the run start).
    pub last_change: Option<Duration>,
    /// Its last interval, when it is due for evaluation now.
    pub observed: Option<Observation>,
}

/// A change of an endpoint's workers.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Index into the controller's input.
    pub endpoint: usize,
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// Decides every change for this tick. `fixed_workers` are the VUs of
/// endpoints with autoscale off, which count against `global_max`.
pub fn decide(
    now: Duration,
    endpoints: &[EndpointInput],
    global_max: Option<u32>,
    fixed_workers: u32,
) -> Vec<Decision> {
    let mut proposals: Vec<Option<Decision>> = endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| propose(now, i, e))
        .collect();
    let Some(cap) = global_max else {
        return proposals.into_iter().flatten().collect();
    };
    // Workers in use if every proposal went through.
    let target =
        |i: usize, p: &[Option<Decision>]| p[i].as_ref().map_or(endpoints[i].workers, |d| d.to);
    let mut order: Vec<usize> = (0..endpoints.len()).collect();
    order.sort_by_key(|&i| (endpoints[i].priority, i));
    // Grant scale-ups in priority order while the cap allows.
    let mut used: u64 = fixed_workers as u64
        + (0..endpoints.len())
            .map(|i| target(i, &proposals).min(endpoints[i].workers) as u64)
            .sum::<u64>();
    for &i in &order {
        let Some(d) = proposals[i].as_mut() else {
            continue;
        };
        if d.to <= d.from {
            continue;
        }
        let room = (cap as u64).saturating_sub(used) as u32;
        let granted = (d.to - d.from).min(room);
        used += granted as u64;
        if granted == 0 {
            proposals[i] = None;
        } else if granted < d.to - d.from {
            d.to = d.from + granted;
            d.reason
                .push_str(&format!("; global max_workers {cap} reached"));
        }
    }
    // Over the cap (fixed endpoints ramped up): lowest priority gives back first.
    let mut over = used.saturating_sub(cap as u64) as u32;
    for &i in order.iter().rev() {
        if over == 0 {
            break;
        }
        let current = target(i, &proposals);
        let give = over.min(current.saturating_sub(endpoints[i].settings.min_workers));
        if give == 0 {
            continue;
        }
        over -= give;
        let reason = format!("global max_workers {cap}: making room for higher priorities");
        proposals[i] = Some(Decision {
            endpoint: i,
            from: endpoints[i].workers,
            to: current - give,
            reason,
        });
    }
    proposals
        .into_iter()
        .flatten()
        .filter(|d| d.to != d.from)
        .collect()
}

/// This endpoint's own rule, before the global cap.
fn propose(now: Duration, i: usize, e: &EndpointInput) -> Option<Decision> {
    let obs = e.observed?;
    let s = &e.settings;
    if e.last_change
        .is_some_and(|t| now.saturating_sub(t) < s.cooldown)
    {
        return None;
    }
    let w = e.workers;
    let decision = |to: u32, reason: String| {
        (to != w).then_some(Decision {
            endpoint: i,
            from: w,
            to,
            reason,
        })
    };
    let back_off = (w as f64 * s.scale_down_factor).round().max(1.0) as u32;
    let back_off_to = w.saturating_sub(back_off).max(s.min_workers);
    if let Some(max) = s.max_error_rate
        && obs.requests > 0
        && obs.error_rate > max
    {
        let why = format!(
            "error rate {:.1}% over max_error_rate {:.1}%",
            obs.error_rate * 100.0,
            max * 100.0
        );
        return decision(back_off_to, format!("backing off: {why}"));
    }
    if let (Some(max), Some(p99)) = (s.max_p99_ms, obs.p99_ms)
        && p99 > max
    {
        return decision(
            back_off_to,
            format!("backing off: p99 {p99:.1} ms over max_p99 {max:.1} ms"),
        );
    }
    // Workers that would carry the target at the observed rate per worker.
    let needed = if obs.rps > 0.0 {
        (w as f64 * s.target_rps / obs.rps).ceil()
    } else {
        f64::INFINITY
    };
    if obs.rps < s.scale_up_threshold * s.target_rps {
        if w >= s.max_workers {
            return None; // held at the bound; the event that reached it said so
        }
        let cap = (w as f64 * s.scale_up_factor).floor().max(1.0);
        let step = (needed - w as f64).clamp(1.0, cap) as u32;
        let to = w.saturating_add(step).min(s.max_workers);
        let mut why = format!(
            "rps {:.1} below {} × target {}",
            obs.rps, s.scale_up_threshold, s.target_rps
        );
        if to == s.max_workers {
            why.push_str(&format!(
                "; max_workers {} reached, holding there",
                s.max_workers
            ));
        }
        return decision(to, why);
    }
    if obs.rps > s.scale_down_threshold * s.target_rps {
        let cap = (w as f64 * s.scale_down_factor).floor().max(1.0);
        let step = (w as f64 - needed).clamp(1.0, cap) as u32;
        let to = w.saturating_sub(step).max(s.min_workers);
        let why = format!(
            "rps {:.1} above {} × target {}",
            obs.rps, s.scale_down_threshold, s.target_rps
        );
        return decision(to, why);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Autoscale {
        Autoscale {
            target_rps: 1000.0,
            min_workers: 2,
            max_workers: 40,
            interval: Duration::from_secs(2),
            cooldown: Duration::from_secs(2),
            scale_up_threshold: 0.9,
            scale_down_threshold: 1.1,
            scale_up_factor: 0.25,
            scale_down_factor: 0.25,
            max_error_rate: Some(0.05),
            max_p99_ms: Some(500.0),
        }
    }

    fn ep(workers: u32, rps: f64) -> EndpointInput {
        EndpointInput {
            settings: settings(),
            priority: Priority::Medium,
            workers,
            last_change: None,
            observed: Some(Observation {
                rps,
                p99_ms: Some(10.0),
                error_rate: 0.0,
                requests: (rps * 2.0) as u64,
            }),
        }
    }

    fn one(e: EndpointInput) -> Option<(u32, String)> {
        let d = decide(Duration::from_secs(10), &[e], None, 0);
        assert!(d.len() <= 1);
        d.into_iter().next().map(|d| (d.to, d.reason))
    }

    #[test]
    fn scales_up_below_the_threshold_by_at_most_the_factor() {
        // 8 workers at 400 rps: 20 would be needed, the factor allows +2
        assert_eq!(one(ep(8, 400.0)).unwrap().0, 10);
        // close to the target the step is what the rate per worker says
        assert_eq!(
            one(ep(8, 880.0)).unwrap().0,
            10,
            "ceil(8 × 1000 / 880) = 10"
        );
        // at least one worker even when the factor rounds to 0
        assert_eq!(one(ep(2, 100.0)).unwrap().0, 3);
        assert!(
            one(ep(8, 400.0))
                .unwrap()
                .1
                .contains("rps 400.0 below 0.9 × target 1000")
        );
    }

    #[test]
    fn scales_down_above_the_threshold_and_holds_inside_the_band() {
        assert_eq!(
            one(ep(20, 2000.0)).unwrap().0,
            15,
            "factor caps 20 → 10 at 5"
        );
        assert_eq!(one(ep(12, 1200.0)).unwrap().0, 10);
        assert!(
            one(ep(12, 1200.0))
                .unwrap()
                .1
                .contains("above 1.1 × target")
        );
        assert_eq!(one(ep(10, 950.0)), None);
        assert_eq!(one(ep(10, 1090.0)), None);
        assert_eq!(one(ep(10, 900.0)), None, "exactly at the threshold holds");
    }

    #[test]
    fn does_not_step_down_out_of_the_band_it_cannot_hit() {
        // 2 workers at 900 rps for a target of 800: one worker would do 450,
        // far under 0.9 × 800, so it holds at 2 rather than flip-flopping
        let mut e = ep(2, 900.0);
        e.settings.target_rps = 800.0;
        assert_eq!(one(e), None);
        // a smaller step is taken when it stays in the band
        let mut e = ep(10, 1200.0);
        e.settings.scale_down_factor = 0.5;
        assert_eq!(
            one(e).unwrap().0,
            9,
            "8 workers would give 960 (fine), 9 is what the rate says"
        );
    }

    #[test]
    fn backs_off_on_errors_or_latency_even_below_target() {
        let mut e = ep(20, 300.0);
        e.observed.as_mut().unwrap().error_rate = 0.30;
        let (to, why) = one(e).unwrap();
        assert_eq!(to, 15);
        assert!(
            why.contains("error rate 30.0% over max_error_rate 5.0%"),
            "{why}"
        );
        let mut e = ep(20, 300.0);
        e.observed.as_mut().unwrap().p99_ms = Some(800.0);
        let (to, why) = one(e).unwrap();
        assert_eq!(to, 15);
        assert!(why.contains("p99 800.0 ms over max_p99 500.0 ms"), "{why}");
        // no limits set: the same rates scale up instead
        let mut e = ep(20, 300.0);
        e.settings.max_error_rate = None;
        e.observed.as_mut().unwrap().error_rate = 0.30;
        assert_eq!(one(e).unwrap().0, 25);
    }

    #[test]
    fn a_target_that_fails_everything_settles_at_min_workers() {
        let mut e = ep(40, 0.0);
        e.observed = Some(Observation {
            rps: 0.0,
            p99_ms: None,
            error_rate: 1.0,
            requests: 500,
        });
        let mut seen = vec![e.workers];
        for tick in 0..50u64 {
            let now = Duration::from_secs(2 * tick + 10);
            for d in decide(now, &[e], None, 0) {
                e.workers = d.to;
                e.last_change = Some(now);
            }
            seen.push(e.workers);
        }
        assert_eq!(*seen.last().unwrap(), 2, "{seen:?}");
        assert!(
            seen.windows(2).all(|w| w[1] <= w[0]),
            "never scaled back up: {seen:?}"
        );
        assert!(
            decide(Duration::from_secs(999), &[e], None, 0).is_empty(),
            "no event once at the floor"
        );
    }

    #[test]
    fn an_unreachable_target_climbs_to_max_says_so_and_holds() {
        let mut e = ep(30, 100.0);
        let (to, why) = one(e).unwrap();
        assert_eq!(to, 37);
        e.workers = 37;
        let (to, why2) = one(e).unwrap();
        assert_eq!(to, 40);
        assert!(
            why2.contains("max_workers 40 reached, holding there"),
            "{why} / {why2}"
        );
        e.workers = 40;
        assert_eq!(one(e), None, "held at the bound with no further events");
    }

    #[test]
    fn respects_cooldown_interval_and_bounds() {
        let mut e = ep(8, 400.0);
        e.last_change = Some(Duration::from_secs(9));
        assert_eq!(one(e), None, "1 s after a change, inside the 2 s cooldown");
        e.last_change = Some(Duration::from_secs(8));
        assert!(one(e).is_some(), "2 s after: allowed");
        let mut not_due = ep(8, 400.0);
        not_due.observed = None;
        assert_eq!(one(not_due), None);
        let mut at_min = ep(2, 5000.0);
        at_min.settings.min_workers = 2;
        assert_eq!(one(at_min), None, "never below min_workers");
        let mut big = ep(39, 10.0);
        big.settings.scale_up_factor = 10.0;
        assert_eq!(one(big).unwrap().0, 40, "never above max_workers");
    }

    #[test]
    fn priorities_decide_under_a_binding_global_cap() {
        let mut high = ep(10, 400.0);
        high.priority = Priority::High;
        let mut low = ep(10, 400.0);
        low.priority = Priority::Low;
        // both want +2; 5 fixed + 20 autoscaled leaves room for 3 under 28
        let d = decide(Duration::from_secs(10), &[low, high], Some(28), 5);
        let to: Vec<(usize, u32)> = d.iter().map(|d| (d.endpoint, d.to)).collect();
        assert_eq!(
            to,
            vec![(0, 11), (1, 12)],
            "high gets its 2 first, low the 1 left: {d:?}"
        );
        assert!(d[0].reason.contains("global max_workers 28 reached"));
        // no room at all: low gets nothing, and no event for it
        let d = decide(Duration::from_secs(10), &[low, high], Some(25), 5);
        assert_eq!(
            d.iter().map(|d| (d.endpoint, d.to)).collect::<Vec<_>>(),
            vec![]
        );
        // fixed endpoints grew past the cap: low gives back first, down to its min
        let mut quiet_high = high;
        quiet_high.observed = None;
        let mut quiet_low = low;
        quiet_low.observed = None;
        let d = decide(
            Duration::from_secs(10),
            &[quiet_low, quiet_high],
            Some(25),
            15,
        );
        let to: Vec<(usize, u32)> = d.iter().map(|d| (d.endpoint, d.to)).collect();
        assert_eq!(to, vec![(0, 2), (1, 8)], "{d:?}");
        assert!(d[0].reason.contains("making room"));
    }
}
