//! Receive times. The kernel notes when each packet arrives
//! ([`crate::sys::recv_stamped`]) on the wall clock (CLOCK_REALTIME); latency
//! is measured on the monotonic clock ([`Instant`]). A stamp is moved across
//! by its age, which both clocks agree on to within their slew.
//!
//! Why: a thread idle in `epoll_wait` is sometimes scheduled 0.3–0.5 ms after
//! its data arrived (measured on this project's 2-vCPU VM with
//! `perf sched timehist`), and a busy one reads its sockets one after another;
//! reading the clock after the read would add that delay to the latency.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// When data arrived: the receive stamp `stamp` on the monotonic clock, or
/// `now` (the time of the read) when there is no stamp or it falls outside
/// `earliest..=now` — the wall clock stepped since.
pub fn arrival(stamp: Option<Duration>, earliest: Instant, now: Instant) -> Instant {
    let Some(rx) = stamp else { return now };
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    match wall.checked_sub(rx).and_then(|age| now.checked_sub(age)) {
        Some(at) if at >= earliest => at,
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall() -> Duration {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
    }

    #[test]
    fn arrival_moves_the_receive_time_onto_the_monotonic_clock() {
        let sent = Instant::now();
        std::thread::sleep(Duration::from_millis(30));
        let now = Instant::now();
        // Received 20 ms ago: 20 ms before `now` (give or take the clock reads).
        let at = arrival(Some(wall() - Duration::from_millis(20)), sent, now);
        let early = now - at;
        assert!(
            early >= Duration::from_millis(20) && early < Duration::from_millis(25),
            "{early:?}"
        );
        // No stamp: the read time.
        assert_eq!(arrival(None, sent, now), now);
        // A stamp before `earliest` (the wall clock stepped back) or in the
        // future (stepped forward) is not believed.
        assert_eq!(
            arrival(Some(wall() - Duration::from_secs(60)), sent, now),
            now
        );
        assert_eq!(
            arrival(Some(wall() + Duration::from_secs(60)), sent, now),
            now
        );
    }
}
