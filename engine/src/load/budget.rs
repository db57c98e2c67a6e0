//! A run's request budget (`requests` in the config, `-n` in the quick
//! form): exactly N requests over all workers, then the run finishes.
//!
//! Workers share one counter of tickets left. A request takes a ticket
//! before it starts (a closed-model VU when it connects or sends, an
//! open-model send when it leaves the schedule), and every ticket taken ends
//! as a counted request: a response, a failure, or `interrupted` at the end.
//! So the summary's count is N exactly, however the requests ended.
//!
//! The per-request path stays free of atomics: a worker takes tickets in
//! batches into its own [`Tickets`], one compare-and-swap per batch. Batches
//! shrink as the pool empties (to one ticket at the end), so no worker sits
//! on tickets another one could use.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest batch a worker takes at once.
const MAX_BATCH: u64 = 256;
/// A batch is at most this fraction of what is left per worker, so the
/// last tickets are spread one by one.
const SHARE_DIVISOR: u64 = 8;

/// The tickets no worker has taken yet.
#[derive(Debug)]
pub struct Budget {
    left: AtomicU64,
    workers: u64,
}

impl Budget {
    pub fn new(requests: u64, workers: usize) -> Arc<Budget> {
        Arc::new(Budget {
            left: AtomicU64::new(requests),
            workers: workers.max(1) as u64,
        })
    }

    /// Tickets not yet handed to any worker.
    pub fn left(&self) -> u64 {
        self.left.load(Ordering::Relaxed)
    }
}

/// One worker's tickets: its current batch and the shared pool.
#[derive(Debug)]
pub struct Tickets {
    pool: Arc<Budget>,
    local: u64,
}

impl Tickets {
    pub fn new(pool: Arc<Budget>) -> Tickets {
        Tickets { pool, local: 0 }
    }

    /// Takes one ticket; false when the whole budget is spent.
    #[inline]
    pub fn take(&mut self) -> bool {
        if self.local > 0 {
            self.local -= 1;
            return true;
        }
        self.refill()
    }

    #[cold]
    fn refill(&mut self) -> bool {
        let pool = &self.pool;
        let mut left = pool.left.load(Ordering::Relaxed);
        loop {
            if left == 0 {
                return false;
            }
            let batch = (left / (pool.workers * SHARE_DIVISOR)).clamp(1, MAX_BATCH);
            match pool.left.compare_exchange_weak(
                left,
                left - batch,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.local = batch - 1;
                    return true;
                }
                Err(now) => left = now,
            }
        }
    }

    /// Tickets this worker holds and has not used.
    pub fn held(&self) -> u64 {
        self.local
    }

    /// Returns one unused ticket to the pool (a request that never started,
    /// such as a connection retired before it sent).
    pub fn give_back(&mut self) {
        self.pool.left.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_exactly_the_budget_over_workers() {
        for (n, workers) in [(0u64, 1usize), (1, 2), (7, 3), (1000, 2), (100_003, 4)] {
            let pool = Budget::new(n, workers);
            let mut ts: Vec<Tickets> = (0..workers)
                .map(|_| Tickets::new(Arc::clone(&pool)))
                .collect();
            let mut taken = vec![0u64; workers];
            // Round-robin, as busy workers would; a worker that gets none is done.
            let mut open = vec![true; workers];
            while open.iter().any(|&o| o) {
                for (i, t) in ts.iter_mut().enumerate() {
                    if open[i] {
                        if t.take() {
                            taken[i] += 1;
                        } else {
                            open[i] = false;
                        }
                    }
                }
            }
            assert_eq!(taken.iter().sum::<u64>(), n, "n={n} workers={workers}");
            assert!(ts.iter().all(|t| t.held() == 0));
            assert_eq!(pool.left(), 0);
            if n >= 1000 {
                // batches shrink, so the work is shared, not grabbed by one
                assert!(
                    taken.iter().all(|&k| k > n / (2 * workers as u64)),
                    "{taken:?}"
                );
            }
        }
    }

    #[test]
    fn a_returned_ticket_can_be_taken_again() {
        let pool = Budget::new(1, 1);
        let mut t = Tickets::new(Arc::clone(&pool));
        assert!(t.take());
        assert!(!t.take());
        t.give_back();
        assert!(t.take());
        assert!(!t.take());
    }

    #[test]
    fn workers_on_threads_take_exactly_the_budget() {
        let pool = Budget::new(50_000, 4);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let mut t = Tickets::new(Arc::clone(&pool));
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while t.take() {
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 50_000);
    }
}
