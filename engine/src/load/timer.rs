//! A hashed timer wheel for per-connection deadlines.
//!
//! Connect and request timeouts are set on every request and almost always
//! cancelled by the response, so the wheel is built for cheap insertion and
//! lazy cancellation: an entry is a `(tick, key)` pushed into a slot, never
//! removed early. The caller keeps the real deadline next to its state and,
//! when an entry fires, compares: a stale entry is ignored and a deadline
//! that moved later is re-armed. A connection re-arms at most once per
//! timeout period, so the per-request cost is one store, not a wheel
//! operation (wrk pays a timer per request in its event loop).
//!
//! Ticks are 1 ms; the wheel covers [`SLOTS`] ms per lap and entries further
//! out wait in their slot for their lap. A bitmap of non-empty slots finds
//! the next deadline without scanning empty slots.

use std::time::{Duration, Instant};

/// `now + d`, saturating: a user's duration (think time, timeouts) can
/// never overflow an `Instant` (a flow's think time of 2^64 s panicked the
/// worker, issue #27). A year is "never" for a run.
#[inline]
pub fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// Wheel size in 1 ms ticks (one lap = 4.096 s).
pub const SLOTS: usize = 4096;
const WORDS: usize = SLOTS / 64;

/// What an entry identifies; opaque to the wheel (a slab index and generation).
pub type Key = u64;

#[derive(Clone, Copy, Debug)]
struct Entry {
    tick: u64,
    key: Key,
}

pub struct TimerWheel {
    origin: Instant,
    /// Every tick before this one has been processed.
    next_tick: u64,
    slots: Vec<Vec<Entry>>,
    occupied: [u64; WORDS],
    len: usize,
}

impl TimerWheel {
    pub fn new(origin: Instant) -> TimerWheel {
        TimerWheel {
            origin,
            next_tick: 0,
            slots: vec![Vec::new(); SLOTS],
            occupied: [0; WORDS],
            len: 0,
        }
    }

    /// The tick an instant falls in, rounded up so a timer never fires early.
    pub fn tick_of(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.origin);
        (d.as_nanos().div_ceil(1_000_000)) as u64
    }

    pub fn instant_of(&self, tick: u64) -> Instant {
        self.origin + Duration::from_millis(tick)
    }

    /// Arms `key` to fire at the tick of `at` (or at the next tick when that
    /// one has passed). Returns the tick used, for the caller's records.
    pub fn insert(&mut self, at: Instant, key: Key) -> u64 {
        let tick = self.tick_of(at).max(self.next_tick);
        let slot = (tick % SLOTS as u64) as usize;
        self.slots[slot].push(Entry { tick, key });
        self.occupied[slot / 64] |= 1 << (slot % 64);
        self.len += 1;
        tick
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The last tick that has fully begun at `at` (rounded down).
    fn tick_floor(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.origin).as_nanos() / 1_000_000) as u64
    }

    /// Moves time to `now`, appending `(tick, key)` of the entries due by then
    /// to `fired`; the tick lets a caller tell its current entry from a stale one.
    pub fn advance(&mut self, now: Instant, fired: &mut Vec<(u64, Key)>) {
        // Rounded down: an entry fires only once its whole tick has begun,
        // which is at or after its deadline.
        let now_tick = self.tick_floor(now);
        if self.len == 0 {
            self.next_tick = self.next_tick.max(now_tick + 1);
            return;
        }
        // Past one whole lap every slot is visited once; further ticks add nothing.
        let first = self.next_tick;
        let last = now_tick.min(first + SLOTS as u64 - 1);
        let mut tick = first;
        while tick <= last {
            let slot = (tick % SLOTS as u64) as usize;
            match self.next_occupied(slot, (last - tick) as usize) {
                None => break,
                Some(skip) => tick += skip as u64,
            }
            let slot = (tick % SLOTS as u64) as usize;
            let entries = &mut self.slots[slot];
            let before = entries.len();
            entries.retain(|e| {
                let due = e.tick <= now_tick;
                if due {
                    fired.push((e.tick, e.key));
                }
                !due
            });
            self.len -= before - entries.len();
            if entries.is_empty() {
                self.occupied[slot / 64] &= !(1 << (slot % 64));
            }
            tick += 1;
        }
        self.next_tick = now_tick + 1;
    }

    /// When the next entry may be due: the start of the next occupied slot's
    /// tick. An entry for a later lap makes this early; the caller then
    /// advances, finds nothing, and asks again.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        let slot = (self.next_tick % SLOTS as u64) as usize;
        let skip = self.next_occupied(slot, SLOTS - 1)?;
        Some(self.instant_of(self.next_tick + skip as u64))
    }

    /// Distance from `slot` to the next occupied slot, at most `within` away.
    fn next_occupied(&self, slot: usize, within: usize) -> Option<usize> {
        let mut dist = 0;
        while dist <= within {
            let s = (slot + dist) % SLOTS;
            let word = self.occupied[s / 64] >> (s % 64);
            if word != 0 {
                let d = dist + word.trailing_zeros() as usize;
                return (d <= within).then_some(d);
            }
            dist += 64 - s % 64;
        }
        None
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn later_saturates() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now);
        assert_eq!(
            later(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn keys(fired: &[(u64, Key)]) -> Vec<Key> {
        fired.iter().map(|&(_, k)| k).collect()
    }

    #[test]
    fn fires_at_or_after_the_deadline_never_before() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0);
        w.insert(t0 + ms(10), 1);
        w.insert(t0 + ms(5), 2);
        w.insert(t0 + Duration::from_micros(5500), 3);
        let mut fired = vec![];
        w.advance(t0 + ms(4), &mut fired);
        assert!(fired.is_empty());
        w.advance(t0 + ms(5), &mut fired);
        assert_eq!(keys(&fired), vec![2]);
        w.advance(t0 + ms(6), &mut fired);
        assert_eq!(keys(&fired), vec![2, 3]);
        w.advance(t0 + ms(100), &mut fired);
        assert_eq!(keys(&fired), vec![2, 3, 1]);
        assert_eq!(fired[2].0, 10, "the tick the entry was armed for");
        assert!(w.is_empty());
    }

    #[test]
    fn entries_beyond_one_lap_wait_for_their_lap() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0);
        w.insert(t0 + ms(SLOTS as u64 * 2 + 7), 9);
        let mut fired = vec![];
        for step in 1..=(SLOTS as u64 * 2 + 6) / 500 {
            w.advance(t0 + ms(step * 500), &mut fired);
        }
        w.advance(t0 + ms(SLOTS as u64 * 2 + 6), &mut fired);
        assert!(fired.is_empty(), "fired a lap early");
        w.advance(t0 + ms(SLOTS as u64 * 2 + 7), &mut fired);
        assert_eq!(keys(&fired), vec![9]);
    }

    #[test]
    fn a_long_jump_fires_everything_due() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0);
        for k in 0..100u64 {
            w.insert(t0 + ms(k * 97), k);
        }
        let mut fired = vec![];
        w.advance(t0 + ms(60_000), &mut fired);
        let mut got = keys(&fired);
        got.sort();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn past_deadlines_fire_on_the_next_advance() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0);
        let mut fired = vec![];
        w.advance(t0 + ms(50), &mut fired);
        w.insert(t0 + ms(10), 1);
        w.advance(t0 + ms(51), &mut fired);
        assert_eq!(keys(&fired), vec![1]);
    }

    #[test]
    fn next_deadline_points_at_the_earliest_slot() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0);
        assert_eq!(w.next_deadline(), None);
        w.insert(t0 + ms(300), 1);
        w.insert(t0 + ms(70), 2);
        assert_eq!(w.next_deadline(), Some(t0 + ms(70)));
        let mut fired = vec![];
        w.advance(t0 + ms(70), &mut fired);
        assert_eq!(w.next_deadline(), Some(t0 + ms(300)));
    }
}
