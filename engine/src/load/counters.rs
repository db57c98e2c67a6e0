//! The run's mutable counters, advanced by every worker: `{{seq}}`, the
//! next row of each `sequential` data set, and the VU numbers in use.
//!
//! The plan is what the workers run and never changes once built; these
//! change with every request, so they live here (issue #26: the counters
//! were fields of the immutable plan), reached through [`crate::worker::Shared`].

use crate::vu::VuNumbers;
use std::sync::atomic::AtomicU64;

/// One run's counters, shared by its workers.
#[derive(Default)]
pub struct Counters {
    /// The next `{{seq}}` over the whole run.
    pub seq: AtomicU64,
    /// Per data set (the plan's `data` order), the next row of a
    /// `sequential` one.
    pub data_next: Vec<AtomicU64>,
    /// The VU numbers living VUs hold (see [`crate::vu`]).
    pub vu_numbers: VuNumbers,
}

impl Counters {
    /// Counters for a plan with `data_sets` data sets, all at their start.
    pub fn new(data_sets: usize) -> Counters {
        Counters {
            seq: AtomicU64::new(0),
            data_next: (0..data_sets).map(|_| AtomicU64::new(0)).collect(),
            vu_numbers: VuNumbers::default(),
        }
    }
}
