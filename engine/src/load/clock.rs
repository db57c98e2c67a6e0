//! Precise time: receive times, and an alarm for waking at an instant.
//!
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

/// Both clocks read together, once, to place several stamps of one read:
/// an HTTP/2 read hands over many responses, and handling them (decoding a
/// large gRPC reply to JSON, say) takes time. Placing each stamp with a
/// monotonic time read before that handling and a wall time read after it
/// put arrivals early by the handling's length: 18-48 µs latencies against
/// a server whose floor is ~130 µs (found by a first-user try).
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    pub mono: Instant,
    wall: Duration,
}

impl Clocks {
    pub fn now() -> Clocks {
        let mono = Instant::now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Clocks { mono, wall }
    }

    /// As [`arrival`], with these clocks as `now`.
    pub fn arrival(&self, stamp: Option<Duration>, earliest: Instant) -> Instant {
        let Some(rx) = stamp else { return self.mono };
        match self
            .wall
            .checked_sub(rx)
            .and_then(|age| self.mono.checked_sub(age))
        {
            Some(at) if at >= earliest => at,
            _ => self.mono,
        }
    }
}

/// Wakes an epoll loop at a precise instant. An epoll timeout is whole
/// milliseconds (mio rounds up), so sends or timers would fire up to 1 ms
/// late; a timerfd is nanosecond-precise, but waking an idle CPU takes time
/// too (~0.1 ms on the 2-vCPU VM this was measured on), so the alarm rings
/// [`Alarm::EARLY`] ahead and the loop polls without blocking for the rest.
pub struct Alarm {
    fd: crate::sys::TimerFd,
    /// The instant the timerfd is set for (minus `EARLY`).
    armed: Option<Instant>,
}

impl Alarm {
    pub const EARLY: Duration = Duration::from_micros(200);

    /// An alarm whose ring is an event for `token` on `registry`.
    pub fn new(registry: &mio::Registry, token: mio::Token) -> std::io::Result<Alarm> {
        use std::os::fd::AsRawFd;
        let fd = crate::sys::TimerFd::new()?;
        registry.register(
            &mut mio::unix::SourceFd(&fd.as_raw_fd()),
            token,
            mio::Interest::READABLE,
        )?;
        Ok(Alarm { fd, armed: None })
    }

    /// For a loop that must run at `at`: `Some(Duration::ZERO)` (poll
    /// without blocking) when `at` is less than `EARLY` away, else sets the
    /// alarm if it is not set for `at` already and returns `None` (block as
    /// long as the loop's other deadlines allow: the alarm will wake it).
    pub fn wait_for(&mut self, at: Instant) -> Option<Duration> {
        let wait = at.saturating_duration_since(Instant::now());
        if wait <= Self::EARLY {
            return Some(Duration::ZERO);
        }
        if self.armed != Some(at) {
            if self.fd.arm(wait - Self::EARLY).is_err() {
                return Some(Duration::ZERO); // cannot happen with valid times; stay precise
            }
            self.armed = Some(at);
        }
        None
    }

    /// The alarm's event came: consume it so the next ring raises a new edge.
    pub fn rang(&mut self) {
        self.fd.clear();
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alarm_rings_for_its_instant_and_not_before() {
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(4);
        let mut alarm = Alarm::new(poll.registry(), mio::Token(7)).unwrap();
        let at = Instant::now() + Duration::from_millis(30);
        assert_eq!(alarm.wait_for(at), None, "far enough ahead to sleep");
        assert_eq!(alarm.wait_for(at), None, "set once, not again");
        // Block with no timeout: only the alarm can end this.
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        let rang = Instant::now();
        assert!(events.iter().any(|e| e.token() == mio::Token(7)), "it rang");
        assert!(rang + Alarm::EARLY >= at, "rang {:?} early", at - rang);
        alarm.rang();
        // Within EARLY of the instant: poll without blocking.
        if Instant::now() < at {
            assert_eq!(alarm.wait_for(at), Some(Duration::ZERO));
        }
        // A past instant too.
        assert_eq!(alarm.wait_for(Instant::now()), Some(Duration::ZERO));
        // Consumed: nothing more pending.
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.is_empty());
    }

    fn wall() -> Duration {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
    }

    #[test]
    fn clocks_read_after_handling_place_a_stamp_where_it_was() {
        let sent = Instant::now();
        std::thread::sleep(Duration::from_millis(5));
        let received = Instant::now();
        let rx = wall();
        // handling the read's other responses takes 30 ms
        std::thread::sleep(Duration::from_millis(30));
        let at = Clocks::now().arrival(Some(rx), sent);
        // (within the clock reads' slew and a preemption between them; it
        // was 30 ms early with a
        // monotonic time read before the handling)
        assert!(
            at + Duration::from_millis(5) >= received && at <= received + Duration::from_millis(5),
            "{:?} off",
            if at > received {
                at - received
            } else {
                received - at
            }
        );
        let clocks = Clocks::now();
        assert_eq!(clocks.arrival(None, sent), clocks.mono);
        assert_eq!(
            clocks.arrival(Some(wall() + Duration::from_secs(60)), sent),
            clocks.mono
        );
    }

    #[test]
    fn arrival_moves_the_receive_time_onto_the_monotonic_clock() {
        let sent = Instant::now();
        std::thread::sleep(Duration::from_millis(30));
        let now = Instant::now();
        // Received 20 ms ago: 20 ms before `now` (give or take the clock reads).
        let at = arrival(Some(wall() - Duration::from_millis(20)), sent, now);
        let slack = now.elapsed(); // the clock reads since `now`, however slow
        let early = now - at;
        assert!(
            early >= Duration::from_millis(20) && early <= Duration::from_millis(20) + slack,
            "{early:?} (slack {slack:?})"
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
