//! The Userflux engine: a thread-per-core HTTP/1.1 load generator, and the
//! run contract (config, status, summary) that the other tools share.
//!
//! # Layout
//!
//! - [`config`], [`duration`], [`url`]: what a user writes, validated with
//!   field paths, resolved with defaults.
//! - [`plan`]: stage interpolation and VU distribution, as pure functions.
//! - [`budget`]: the `requests` budget's tickets, shared by the workers.
//! - [`request`], [`framing`]: requests rendered once; responses framed
//!   incrementally (httparse for the head, our own body framing).
//! - [`template`], [`data`]: `{{ }}` templates parsed at load and rendered
//!   into a connection's buffer; data sets loaded once, shared read-only.
//! - [`capture`], [`cookies`]: what a flow step reads from a response, and
//!   a flow VU's cookie jar.
//! - [`timer`]: the hashed wheel for connect/request timeouts and think time.
//! - [`stats`]: per-endpoint counts and HDR histograms a worker records;
//!   [`server_timing`]: the `Server-Timing` parser and per-metric histograms.
//! - [`worker`]: one pinned thread per core, a `mio::Poll` and its connections;
//!   its `conn` module is one connection's life, the per-request path.
//! - [`aggregator`]: merges worker reports into the timeline and totals,
//!   refreshes `status.json` and the progress line.
//! - [`autoscale`]: the per-endpoint controller, a pure function; [`scaler`]
//!   feeds it each endpoint's intervals from the aggregator.
//! - [`run`]: ties a config to workers and an aggregator, builds the summary.
//! - [`summary`], [`status`], [`rundir`]: the files of `runs/<run_id>/`.
//! - [`samples`]: `samples.ndjson` written through memory maps by every worker.
//! - [`schema`]: the contract's JSON Schemas, generated from these types.
//! - [`sys`]: the only `unsafe`: OS calls and memory maps.
//! - [`fault`]: the panic hook that keeps a dead engine's run honest, and
//!   the fault injection its tests use.
//! - [`report`]: the human summary printed at the end.
//!
//! Values cross threads only over crossbeam channels: workers send reports
//! and log lines to the aggregator; the aggregator sends control messages
//! back and wakes the worker's poll with a `mio::Waker`.

pub mod aggregator;
pub mod autoscale;
pub mod budget;
pub mod capture;
pub mod clock;
pub mod config;
pub mod cookies;
pub mod data;
pub mod duration;
pub mod fault;
pub mod framing;
pub mod fuzzing;
pub mod merge;
pub mod migrate;
pub mod open;
pub mod plan;
pub mod report;
pub mod request;
pub mod run;
pub mod rundir;
pub mod samples;
pub mod scaler;
pub mod schema;
pub mod server_timing;
pub mod shard;
pub mod stats;
pub mod status;
pub mod summary;
pub mod sys;
pub mod template;
pub mod thresholds;
pub mod timer;
pub mod tls;
pub mod url;
pub mod worker;
