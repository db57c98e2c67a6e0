//! The Userflux engine: a thread-per-core HTTP/1.1, HTTP/2 and gRPC load generator, and the
//! run contract (config, status, summary) that the other tools share.
//!
//! # Layout
//!
//! The rooms are grouped by side (DESIGN §8): [`load`] sends requests and
//! reads responses, [`measure`] turns what happened into numbers, [`run`]
//! ties a config to both and writes the run directory; each room keeps its
//! short path (`crate::worker`, `crate::summary`) through re-exports.
//!
//! - [`config`], [`duration`], [`url`]: what a user writes, validated with
//!   field paths, resolved with defaults: `config::model` the types,
//!   `config::read` reading and resolving, `config::validate` the problems,
//!   `config::compile` templates, checks, captures and thresholds compiled
//!   once; [`migrate`] (`config::migrate`) converts older forms (older
//!   Userflux, Tressi flat, Tressi options), one room each.
//! - [`files`]: the input files a config or a flag names, regular files
//!   only, read up to a cap.
//! - [`plan`]: what the workers run, built once from a config
//!   (`plan::build`); `plan::schedule` is stage interpolation, VU
//!   distribution and open-model send times, as pure functions.
//! - [`budget`]: the `requests` budget's tickets, shared by the workers;
//!   [`vu`]: the VU numbers, unique and dense over the run.
//! - [`counters`]: the run's mutable counters (`{{seq}}`, sequential data
//!   cursors, VU numbers in use), shared by the workers; the plan stays immutable.
//! - [`request`]: requests rendered once (or per send from a template).
//! - [`protocol`]: the wire protocol as a sans-IO session (bytes in,
//!   completed responses out); `protocol::h1` is HTTP/1.1, its [`framing`]
//!   the incremental response framing (httparse for the head, our own body
//!   framing); `protocol::h2` HTTP/2 (frames, HPACK, streams, flow
//!   control); `load::grpc` gRPC calls on top of it (`.proto` compiled at
//!   prepare, messages from JSON templates, statuses).
//! - [`transport`]: plain TCP or TLS over one mio socket, one enum decided
//!   per connection.
//! - [`conn`]: one connection (a VU) doing its own I/O over its transport
//!   and session, returning what happened; [`flow`]: a flow VU's
//!   iteration (captures, cookies, its end) and failure pacing; [`link`]:
//!   an HTTP/2 connection shared by VUs, each VU a stream slot.
//! - [`template`], [`data`]: `{{ }}` templates parsed at load and rendered
//!   into a connection's buffer; data sets loaded once, shared read-only.
//! - [`capture`], [`cookies`]: what a flow step reads from a response, and
//!   a flow VU's cookie jar.
//! - [`timer`]: the hashed wheel for connect/request timeouts and think time.
//! - [`wait`]: how a worker waits for its sockets (a 10 µs spin after a
//!   busy turn, so a server on loopback is not paying to wake it).
//! - [`stats`]: per-endpoint counts and HDR histograms a worker records;
//!   [`server_timing`]: the `Server-Timing` parser and per-metric histograms.
//! - [`worker`]: one pinned thread per core, a `mio::Poll` and its
//!   connections: the loop, the VU pool (`pool`), the policy over each
//!   connection's outcomes (`drive`: record, think, back off, next request)
//!   and the one place a request is recorded (`record`); `h2` the same
//!   policy for VUs on HTTP/2 links (attach, stream slots, GOAWAY retries).
//! - [`aggregator`]: merges worker reports into the timeline and totals,
//!   refreshes `status.json` and the progress line.
//! - [`thresholds`]: k6's grammar (`grammar`, `spec`) and judging (`eval`).
//! - [`autoscale`]: the per-endpoint controller, a pure function; [`scaler`]
//!   feeds it each endpoint's intervals from the aggregator.
//! - [`run`]: ties a config to workers and an aggregator, builds the summary;
//!   `run::search` is the capacity search (trials of a config at rates or
//!   VU counts it chooses, judged by the thresholds; `config::search` is
//!   its settings).
//! - [`summary`], [`status`], [`rundir`]: the files of `runs/<run_id>/`.
//! - [`samples`]: `samples.ndjson` written through memory maps by every worker.
//! - [`schema`]: the contract's JSON Schemas, generated from these types.
//! - [`sys`]: the only `unsafe`: OS calls and memory maps.
//! - [`fault`]: the panic hook that keeps a dead engine's run honest, and
//!   the fault injection its tests use.
//! - [`report`]: the human summary printed at the end.
//! - [`tls`]: the rustls client configuration for `https` rows.
//! - [`shard`], [`merge`]: a config's share for one of N engines, and the
//!   lossless merge of their run directories; [`cluster`]: a shard as a
//!   Kubernetes Job's pod (exit codes a Job can use, results framed on stdout);
//!   [`barrier`]: the pods' common start, from the API server's pod list.
//!
//! Values cross threads only over crossbeam channels: workers send reports
//! and log lines to the aggregator; the aggregator sends control messages
//! back and wakes the worker's poll with a `mio::Waker`.

pub mod config;
pub mod duration;
pub mod fault;
pub mod files;
pub mod fuzzing;
pub mod load;
pub mod measure;

pub mod plan;
pub mod run;
pub mod schema;
pub mod sys;
pub mod url;

// Every room keeps its short path (`crate::worker`, `crate::summary`, …).
pub use load::protocol::h1::framing;
pub use load::{
    budget, capture, clock, conn, cookies, counters, data, flow, link, open, protocol, request,
    template, timer, tls, transport, vu, wait, worker,
};
pub use measure::{
    aggregator, autoscale, h2_stats, live, merge, samples, scaler, server_timing, stats, summary,
    thresholds,
};
pub use run::{barrier, cluster, report, rundir, shard, status};
// Older config forms convert under `config::migrate`; the short path stays.
pub use config::migrate;
