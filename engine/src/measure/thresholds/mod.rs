//! Thresholds in k6's grammar, so users can bring the ones they have:
//! `{"http_req_duration": ["p(95)<200"], "http_req_failed": ["rate<0.01"],
//! "http_req_duration{endpoint:users}": [{"threshold": "p(99)<300",
//! "abort_on_fail": true, "delay_abort_eval": "10s"}]}`.
//!
//! Parsing and evaluation are pure: [`Threshold::parse`] checks a metric
//! key and an expression against the names a config gives ([`Known`]);
//! [`Threshold::observe`] reads the value from a [`Measured`] view of the
//! run (merged HDR histograms and counts).
//!
//! - [`spec`]: a threshold as a config writes it (expression or object).
//! - [`grammar`]: metrics, tags, aggregations and operators; the one parse.
//! - [`eval`]: what a threshold reads of a run, and whether it holds.

pub mod eval;
pub mod grammar;
pub mod spec;

pub use eval::*;
pub use grammar::*;
pub use spec::*;

#[cfg(test)]
mod tests;
