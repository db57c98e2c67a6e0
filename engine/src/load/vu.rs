//! VU numbers: every VU of a run holds one number while it lives, unique
//! across endpoints, flows, workers and shards, and dense — the lowest
//! free one is taken, so with T VUs running the numbers are 0..T. A shard
//! I of N numbers its VUs I, I+N, I+2N, …, so the shards together number
//! theirs densely too (they hold equal shares, see [`crate::shard`]).
//! `{{vu}}`, `per_vu` data rows and the samples' `vu` use it (issue #27:
//! the number was `slot × workers + worker`, shared by endpoints and flows
//! and without a shard term: 16 VUs over 16 `per_vu` rows used 14 accounts,
//! 2 shards × 2 VUs over 4 rows used two, each by two VUs at once).
//!
//! Taking and giving back a number locks a mutex: that happens when a VU
//! starts or ends, never per request.

use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The process's pool of VU numbers.
#[derive(Debug, Default)]
pub struct VuNumbers {
    inner: Mutex<Pool>,
}

#[derive(Debug, Default)]
struct Pool {
    /// Numbers below this have been handed out at some time.
    next: u32,
    /// Numbers given back, lowest first.
    free: BinaryHeap<Reverse<u32>>,
}

impl VuNumbers {
    /// The lowest number no living VU of this process holds.
    pub fn take(&self) -> u32 {
        let mut p = self.inner.lock();
        match p.free.pop() {
            Some(Reverse(n)) => n,
            None => {
                p.next += 1;
                p.next - 1
            }
        }
    }

    /// A VU ends: its number is free for the next one.
    pub fn give(&self, n: u32) {
        self.inner.lock().free.push(Reverse(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_the_lowest_free_ones() {
        let v = VuNumbers::default();
        assert_eq!((v.take(), v.take(), v.take()), (0, 1, 2));
        v.give(1);
        v.give(0);
        assert_eq!((v.take(), v.take(), v.take()), (0, 1, 3));
    }

    #[test]
    fn threads_never_share_a_number() {
        let v = std::sync::Arc::new(VuNumbers::default());
        let held: Vec<Vec<u32>> = (0..4)
            .map(|_| {
                let v = std::sync::Arc::clone(&v);
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..1000 {
                        mine.push(v.take());
                        if i % 3 == 0 {
                            v.give(mine.swap_remove(0));
                        }
                    }
                    mine
                })
            })
            .map(|t| t.join().unwrap())
            .collect();
        let mut all: Vec<u32> = held.concat();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a number held twice");
    }
}
