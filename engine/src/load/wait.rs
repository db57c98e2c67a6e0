//! How a worker waits for its sockets: a turn that handled events polls
//! again without sleeping for a few microseconds ([`SPIN`]) before it
//! blocks in `epoll_wait`.
//!
//! Why (issue #30): a worker that sleeps in `epoll_wait` is woken by the
//! server's own write: on loopback the server's `write` delivers the bytes
//! and wakes the sleeping thread on the server's core (`sock_def_readable`
//! → `ep_poll_callback` → `try_to_wake_up`, an IPI to the halted core —
//! on this KVM guest a VM exit). A generator faster than the server is
//! caught up and asleep often, so the server pays that wake-up often:
//! against nginx over HTTPS (one worker on its own core, 64 connections,
//! `benches/https-nginx.sh`) Userflux slept 0.067–0.12 times per request
//! where wrk, busier per request, slept 0.013–0.02; `perf record -e
//! cpu-clock` of nginx put 15.6 samples per 1,000 requests (3.1 µs a
//! request) in that wake-up against 5.7 (1.1 µs) with wrk — the 2 µs by
//! which nginx was slower per request with Userflux (13.7 vs 11.7 µs), so
//! its requests/s were 0.90–0.95× wrk's. Sleeping costs the generator too
//! (a context switch and its own halt and wake-up): polling on for 10 µs
//! after a busy turn cut the sleeps to 0.013 a request and, on the busy
//! shared host, made both sides cheaper, nginx 12.10 → 10.36 µs a request
//! and Userflux 111,407 →
//! 127,256 requests per CPU-second (medians of 4 alternating rounds, an
//! `epoll_wait` shim before the change was built). Built, against wrk
//! (`benches/https-nginx.sh 6 4 64 BEFORE AFTER`, medians of four runs'
//! per-round ratios): 0.69–1.04× its requests/s before, 0.99–1.14× after.
//! Where nginx is saturated the spin turns the engine's idle time into CPU
//! time, so its lead over wrk per CPU-second shrinks there (0.99–1.25× in
//! such rounds); see docs/performance.md.
//!
//! The spin is bounded: only after a poll that returned events (a worker
//! waiting on its timers alone, or idle, sleeps at once), only when the
//! wait would be longer than the spin, and never past the poll's own
//! timeout, so timers and sends are not delayed by it. And it stops where
//! it does not pay: after [`MISSES`] spins in a row that found nothing a
//! worker sleeps at once, until a sleep ends within [`SPIN`] of starting
//! (events come that close together again). Without that, one connection
//! against nginx (a response every ~200 µs) made 40 `epoll_wait`s a
//! request, spinning after every response; with it about 1, as before
//! (`perf stat -e syscalls:sys_enter_epoll_wait`).

use mio::{Events, Poll};
use std::io;
use std::time::{Duration, Instant};

/// How long a worker polls without sleeping after a turn that handled
/// events (5, 10, 20 and 50 µs measured: 10 and 20 cut the sleeps alike,
/// 50 spent more CPU than it saved).
pub const SPIN: Duration = Duration::from_micros(10);

/// Spins in a row that found nothing before a worker stops spinning.
pub const MISSES: u32 = 3;

/// A worker's way of waiting: whether spinning pays at present.
#[derive(Debug)]
pub struct Waiter {
    /// How long a spin lasts ([`SPIN`]).
    spin: Duration,
    /// Spins in a row that ended in a sleep.
    misses: u32,
}

impl Default for Waiter {
    fn default() -> Waiter {
        Waiter::new(SPIN)
    }
}

impl Waiter {
    /// A waiter whose spins last `spin` (tests use long ones, so nothing
    /// they check depends on the machine's speed).
    pub fn new(spin: Duration) -> Waiter {
        Waiter { spin, misses: 0 }
    }

    /// Waits up to `timeout` for events into `events`, as `Poll::poll`
    /// does, polling without sleeping for up to [`SPIN`] first when the
    /// last poll (whose events `events` still holds) returned some and
    /// spinning has been paying.
    #[inline]
    pub fn poll(
        &mut self,
        poll: &mut Poll,
        events: &mut Events,
        timeout: Duration,
    ) -> io::Result<()> {
        if events.is_empty() || timeout <= self.spin {
            return poll.poll(events, Some(timeout));
        }
        let start = Instant::now();
        if self.misses < MISSES {
            loop {
                poll.poll(events, Some(Duration::ZERO))?;
                if !events.is_empty() {
                    self.misses = 0;
                    return Ok(());
                }
                let spent = start.elapsed();
                if spent >= self.spin {
                    self.misses += 1;
                    return poll.poll(events, Some(timeout.saturating_sub(spent)));
                }
            }
        }
        poll.poll(events, Some(timeout))?;
        if !events.is_empty() && start.elapsed() <= self.spin {
            self.misses = 0; // a spin would have caught it
        }
        Ok(())
    }

    /// Whether the next wait after a busy turn spins.
    pub fn spins(&self) -> bool {
        self.misses < MISSES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Token, Waker};
    use std::sync::Arc;

    #[test]
    fn waits_for_the_timeout_when_nothing_comes() {
        let mut p = Poll::new().unwrap();
        let mut events = Events::with_capacity(8);
        let mut w = Waiter::default();
        // idle: no spin, a plain wait
        let t = Instant::now();
        w.poll(&mut p, &mut events, Duration::from_millis(20))
            .unwrap();
        assert!(events.is_empty());
        assert!(t.elapsed() >= Duration::from_millis(20));
        assert!(w.spins(), "a wait without a spin counts no miss");
    }

    #[test]
    fn after_a_busy_turn_it_spins_then_sleeps_until_the_event() {
        let mut p = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(p.registry(), Token(7)).unwrap());
        let mut events = Events::with_capacity(8);
        let mut w = Waiter::default();
        waker.wake().unwrap();
        w.poll(&mut p, &mut events, Duration::from_secs(5)).unwrap();
        assert_eq!(events.iter().next().map(|e| e.token()), Some(Token(7)));
        // events is not empty: this wait spins first, then sleeps until the
        // wake from another thread (well past the spin), and returns it
        let w2 = waker.clone();
        let later = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            w2.wake().unwrap();
        });
        let t = Instant::now();
        w.poll(&mut p, &mut events, Duration::from_secs(5)).unwrap();
        let waited = t.elapsed();
        later.join().unwrap();
        assert_eq!(events.iter().next().map(|e| e.token()), Some(Token(7)));
        assert!(waited >= Duration::from_millis(25), "{waited:?}");
        assert!(waited < Duration::from_secs(4), "{waited:?}");
        // nothing comes: the spin and the sleep together keep the timeout
        let t = Instant::now();
        w.poll(&mut p, &mut events, Duration::from_millis(30))
            .unwrap();
        let waited = t.elapsed();
        assert!(events.is_empty());
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        assert!(waited < Duration::from_secs(4), "{waited:?}");
    }

    #[test]
    fn spins_that_find_nothing_stop_and_a_quick_event_restarts_them() {
        let mut p = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(p.registry(), Token(7)).unwrap());
        let mut events = Events::with_capacity(8);
        let mut w = Waiter::new(Duration::from_millis(200));
        for _ in 0..MISSES {
            assert!(w.spins());
            waker.wake().unwrap();
            w.poll(&mut p, &mut events, Duration::from_secs(5)).unwrap();
            assert!(!events.is_empty());
            // a busy turn, then a spin that finds nothing and a short sleep
            let t = Instant::now();
            w.poll(&mut p, &mut events, Duration::from_millis(300))
                .unwrap();
            assert!(events.is_empty());
            assert!(t.elapsed() >= Duration::from_millis(300));
        }
        assert!(!w.spins(), "{MISSES} misses in a row stop the spin");
        // an event already waiting when the worker blocks: the sleep ends
        // at once, within the spin's reach, and spinning pays again
        waker.wake().unwrap();
        w.poll(&mut p, &mut events, Duration::from_secs(5)).unwrap();
        waker.wake().unwrap();
        w.poll(&mut p, &mut events, Duration::from_secs(5)).unwrap();
        assert!(!events.is_empty());
        assert!(w.spins());
    }
}
