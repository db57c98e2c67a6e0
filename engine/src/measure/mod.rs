//! The measuring side: statistics and histograms, the aggregator and the
//! autoscaler it runs, thresholds, the summary and samples, Server-Timing,
//! and the merge of sharded runs.

pub mod aggregator;
pub mod autoscale;
pub mod h2_stats;
pub mod live;
pub mod merge;
pub mod samples;
pub mod scaler;
pub mod server_timing;
pub mod stats;
pub mod summary;
pub mod thresholds;
