//! What a request came to, recorded in one place: the endpoint's counts
//! and histograms, its checks, its `Server-Timing`, and a line of
//! `samples.ndjson` when sampled — for a response and for a failure alike.

use super::Worker;
use crate::capture::Reader;
use crate::samples::Sample;
use crate::stats::{EndpointStats, ErrorKind, micros};

/// A request's end, as recorded.
#[derive(Debug, Clone, Copy)]
pub(super) enum Outcome {
    /// A response came (`error`: its status was not accepted, or a flow
    /// step's capture found nothing). Times in µs; `corrected` from when an
    /// open-model send was due, `waiting` until its first byte, `sending`
    /// the request's first to last byte written, `receiving` the
    /// response's first to last byte read (each 0 when there was no
    /// second write, no second read).
    Response {
        status: u16,
        latency: u64,
        corrected: Option<u64>,
        waiting: u64,
        sending: u64,
        receiving: u64,
        error: Option<ErrorKind>,
    },
    /// No response: the request failed (`latency` until the failure, none
    /// for a request the end of the run cut off).
    Failed {
        kind: ErrorKind,
        latency: Option<u64>,
    },
}

impl Worker {
    /// Records connection `idx`'s request as `outcome`; its budget ticket
    /// is used. Inlined into its two callers: out of line, building and
    /// matching the outcome cost ~22 instructions a request more than the
    /// code it replaced (callgrind, 20,000 requests against the floor
    /// server: 429 against 407 in the response path's functions).
    #[inline(always)]
    pub(super) fn record(&mut self, idx: usize, outcome: Outcome) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        let row = &self.plan.endpoints[c.row];
        let stats = &mut self.stats[c.row];
        let grpc = row.grpc.as_ref().and(c.grpc_status);
        let (status, error, latency, corrected) = match outcome {
            Outcome::Response {
                status,
                latency,
                corrected,
                waiting,
                sending,
                receiving,
                error,
            } => {
                if !row.checks.is_empty() {
                    let mut reader = Reader::new(c.kept());
                    for (i, (_, check)) in row.checks.iter().enumerate() {
                        let ok = check.passes(status, grpc, latency, &mut reader, &mut self.value);
                        stats.record_check(i, ok);
                    }
                }
                stats.record_response(latency, corrected, status, error);
                if self.plan.latency_by_status {
                    stats.record_status_latency(status, corrected.unwrap_or(latency));
                    if let Some(code) = grpc {
                        stats.record_grpc_latency(code as u8, corrected.unwrap_or(latency));
                    }
                }
                EndpointStats::record_phase(&mut stats.waiting, waiting);
                // 0: sent whole at once, received in one read (implicit 1 µs)
                if sending != 0 {
                    EndpointStats::record_phase(&mut stats.sending, sending);
                }
                if receiving != 0 {
                    EndpointStats::record_phase(&mut stats.receiving, receiving);
                }
                let timing = c.timing();
                if !timing.is_empty() {
                    stats.server_timing.record(timing);
                }
                (Some(status), error, Some(latency), corrected)
            }
            Outcome::Failed { kind, latency } => {
                stats.record_failure(kind);
                // without a response every check of the request fails (as
                // k6's would on a response with status 0)
                for i in 0..row.checks.len() {
                    stats.record_check(i, false);
                }
                (None, Some(kind), latency, None)
            }
        };
        c.ticket = false;
        if let Some(s) = self.samples.as_mut()
            && s.wants()
        {
            s.write(&Sample {
                t_us: micros(c.sent_at.saturating_duration_since(self.start)),
                endpoint: &row.json_name,
                status,
                error,
                latency_us: latency,
                corrected_us: corrected,
                bytes: c.received,
                worker: self.id as u32,
                vu: c.vu(self.plan.shard),
                grpc_status: grpc.filter(|_| status.is_some()).map(|g| g as u8),
            });
        }
    }
}
