//! Per-worker, per-endpoint statistics: what a worker counts between two
//! reports to the aggregator.
//!
//! Histograms cover 1 µs to 1 h at 3 significant digits. A dense one is
//! sized to the largest latency it has recorded (HdrHistogram's
//! auto-resize): 188 KB for the full hour, 40 KB under 16 ms, whatever it
//! holds. A run holds several per endpoint per stats buffer, so each
//! starts as the list of its values ([`Hist`]) and turns dense only at
//! [`RAW_VALUES`]: 1,000 endpoints on 2 workers against millisecond
//! latencies took 1.66 GB with dense ones (issue #27), 27 MB with lists.
//! Recording allocates only while a buffer's list first grows, when it
//! turns dense, and when a dense one's range doubles: a worker swaps its
//! whole `Vec<EndpointStats>` out every second, as HdrHistogram_rust's
//! `sync` recorder does, and the aggregator sends the emptied ones back
//! with their capacity. Status codes are a short list of those seen.
//!
//! One room on purpose, though past ~800 lines: the counts, the list-or-dense
//! histogram ([`Hist`]), the phase and per-status histograms and the error
//! kinds are the one record a worker fills per endpoint and swaps out whole;
//! split, each piece would reach into the others' fields on the per-request
//! path.

use hdrhistogram::Histogram;
use std::time::Duration;

/// Highest latency recorded, in µs (one hour); slower values saturate.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Status codes are counted by index; httparse accepts any three digits.
pub const STATUS_SLOTS: usize = 1000;

/// Why a request failed. Documented in the README; names appear in summaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The TCP connection could not be established (refused, unreachable,
    /// or not within `timeouts.connect`).
    Connect,
    /// No complete response within `timeouts.request`.
    Timeout,
    /// Reading failed, or the connection closed before the response ended.
    Read,
    /// Writing the request failed.
    Write,
    /// The TLS handshake failed (a rejected certificate, an alert, a
    /// protocol mismatch, no handshake within `timeouts.connect`), or a TLS
    /// record could not be read.
    Tls,
    /// The response is not valid HTTP/1.x framing.
    Parse,
    /// A complete response whose status is not accepted (`expect`).
    Status,
    /// Still waiting for its response when the run ended: the graceful stop
    /// ran out, or a second signal ended the run at once. It has no latency.
    Interrupted,
    /// A flow step's response lacks what a capture looks for (or a
    /// captured value could not be sent): the iteration ends as failed.
    Capture,
    /// HTTP/2: the server reset the request's stream (RST_STREAM; the
    /// codes are counted in the endpoint's `h2.resets`).
    H2Reset,
    /// HTTP/2: the server's GOAWAY ended the connection with the request
    /// in flight at or below its last stream id (it may have been
    /// processed; one above it is retried, not failed).
    H2Goaway,
    /// HTTP/2: the connection broke the protocol (a bad frame, bad HPACK,
    /// a flow-control violation, a malformed response), or a server
    /// refused HTTP/2 where `http: "2"` required it.
    Protocol,
    /// gRPC: the call ended with a `grpc-status` other than OK (the codes
    /// are counted in the endpoint's `grpc_status`), or its response broke
    /// gRPC's framing (a bad length prefix, a compressed message without
    /// `grpc-encoding`, no `grpc-status`).
    Grpc,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Read,
        ErrorKind::Write,
        ErrorKind::Tls,
        ErrorKind::Parse,
        ErrorKind::Status,
        ErrorKind::Interrupted,
        ErrorKind::Capture,
        ErrorKind::H2Reset,
        ErrorKind::H2Goaway,
        ErrorKind::Protocol,
        ErrorKind::Grpc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Read => "read",
            ErrorKind::Write => "write",
            ErrorKind::Tls => "tls",
            ErrorKind::Parse => "parse",
            ErrorKind::Status => "status",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Capture => "capture",
            ErrorKind::H2Reset => "h2_reset",
            ErrorKind::H2Goaway => "h2_goaway",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Grpc => "grpc",
        }
    }
}

/// A latency histogram, 3 significant digits, growing to the largest value
/// recorded (see the module doc); record into it with [`record`].
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("constant bounds are valid")
}

/// The full-range form (1 µs to 1 h, fixed), in which summaries carry
/// histograms so every run's encode the same way and merge without loss.
pub fn full_range(h: &Histogram<u64>) -> Histogram<u64> {
    let mut full =
        Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant bounds are valid");
    full.add(h).expect("values are within the full range");
    full
}

/// Records `us` into `h`, saturating at [`MAX_LATENCY_US`].
#[inline]
pub fn record(h: &mut Histogram<u64>, us: u64) {
    // Cannot fail: the range only grows up to MAX_LATENCY_US, far below
    // what a usize-indexed counts array can hold.
    let _ = h.record(us.clamp(1, MAX_LATENCY_US));
}

/// Values a [`Hist`] keeps as they came before it becomes a histogram:
/// 16 KB of `u32`, the size of the smallest dense histogram (values under
/// 2 ms), so the list is never larger than the histogram it stands for.
pub const RAW_VALUES: usize = 4096;

/// A latency histogram as a worker or the aggregator keeps it: the values
/// themselves (µs, `u32`: the hour fits) while there are few, a 3-digit
/// HdrHistogram once there are [`RAW_VALUES`]. Most endpoints of a run
/// with many endpoints see tens of responses a second: a dense histogram
/// is 16–190 KB whatever it holds (its counts span 1 µs to the largest
/// value), and five of them per endpoint per buffer made 1,000 endpoints
/// on 2 workers peak at 1.6 GB (issue #27). The values give the same
/// histogram exactly ([`Hist::hdr`]), so percentiles and merges lose
/// nothing. Recording pushes onto a list whose capacity a recycled buffer
/// keeps, so it allocates only while a buffer first grows, and once when
/// it turns into a histogram (it stays one, reset, for its next second).
#[derive(Clone, Debug)]
pub enum Hist {
    Values(Vec<u32>),
    Dense(Box<Histogram<u64>>),
}

impl Default for Hist {
    fn default() -> Hist {
        Hist::new()
    }
}

impl From<Histogram<u64>> for Hist {
    fn from(h: Histogram<u64>) -> Hist {
        Hist::Dense(Box::new(h))
    }
}

impl Hist {
    pub const fn new() -> Hist {
        Hist::Values(Vec::new())
    }

    /// Records `us`, saturating at [`MAX_LATENCY_US`].
    #[inline]
    pub fn record(&mut self, us: u64) {
        match self {
            Hist::Values(v) if v.len() < RAW_VALUES => {
                v.push(us.clamp(1, MAX_LATENCY_US) as u32);
            }
            Hist::Values(_) => {
                self.densify();
                self.record(us);
            }
            Hist::Dense(h) => record(h, us),
        }
    }

    /// Records `n` values of `us` (a reader filling in implicit values).
    pub fn record_n(&mut self, us: u64, n: u64) {
        let us = us.clamp(1, MAX_LATENCY_US);
        if let Hist::Values(v) = self
            && v.len() as u64 + n <= RAW_VALUES as u64
        {
            v.extend(std::iter::repeat_n(us as u32, n as usize));
            return;
        }
        self.densify();
        if let Hist::Dense(h) = self {
            let _ = h.record_n(us, n); // within the bounds: cannot fail
        }
    }

    /// Turns the values into a histogram (cold: once per buffer).
    #[cold]
    fn densify(&mut self) {
        if let Hist::Values(v) = self {
            let mut h = new_histogram();
            for &us in v.iter() {
                record(&mut h, u64::from(us));
            }
            *self = Hist::Dense(Box::new(h));
        }
    }

    pub fn add(&mut self, other: &Hist) {
        match (&mut *self, other) {
            (_, Hist::Values(o)) if o.is_empty() => {}
            (Hist::Values(v), Hist::Values(o)) if v.len() + o.len() <= RAW_VALUES => {
                v.extend_from_slice(o);
            }
            (Hist::Dense(h), Hist::Values(o)) => {
                for &us in o {
                    record(h, u64::from(us));
                }
            }
            (Hist::Dense(h), Hist::Dense(o)) => h.add(&**o).expect("grows to fit"),
            _ => {
                self.densify();
                self.add(other);
            }
        }
    }

    /// Adds a histogram (a decoded one, in `merge`).
    pub fn add_hdr(&mut self, h: &Histogram<u64>) {
        if h.is_empty() {
            return;
        }
        self.densify();
        if let Hist::Dense(d) = self {
            d.add(h).expect("grows to fit");
        }
    }

    /// How many values were recorded.
    pub fn len(&self) -> u64 {
        match self {
            Hist::Values(v) => v.len() as u64,
            Hist::Dense(h) => h.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties it, keeping its storage (a recycled buffer does not allocate again).
    pub fn reset(&mut self) {
        match self {
            Hist::Values(v) => v.clear(),
            Hist::Dense(h) => h.reset(),
        }
    }

    /// Its figures (see [`View`]).
    pub fn view(&self) -> View<'_> {
        match self {
            Hist::Values(v) => {
                let mut v = v.clone();
                v.sort_unstable();
                View::Sorted(v)
            }
            Hist::Dense(h) => View::Hdr(h),
        }
    }

    /// The values in the full-range form of [`full_range`], with `u16`
    /// counts (no bucket can hold more than [`RAW_VALUES`]): a quarter of
    /// the 188 KB to clear, and the same encoding (the V2 format does not
    /// record the counter width). `None` once dense.
    pub fn full_range_of_values(&self) -> Option<Histogram<u16>> {
        const _: () = assert!(RAW_VALUES <= u16::MAX as usize);
        let Hist::Values(v) = self else {
            return None;
        };
        let mut full =
            Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant bounds are valid");
        for &us in v {
            let _ = full.record(u64::from(us)); // within the bounds: recorded clamped
        }
        Some(full)
    }

    /// The HdrHistogram of the values: borrowed once dense, else built
    /// (exactly what recording them into one would hold).
    pub fn hdr(&self) -> std::borrow::Cow<'_, Histogram<u64>> {
        match self {
            Hist::Values(v) => {
                let mut h = new_histogram();
                for &us in v {
                    record(&mut h, u64::from(us));
                }
                std::borrow::Cow::Owned(h)
            }
            Hist::Dense(h) => std::borrow::Cow::Borrowed(&**h),
        }
    }
}

/// What summaries read from a latency histogram, exactly as HdrHistogram
/// computes it; implemented by `Histogram<u64>` and by [`View`].
pub trait Figures {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn min(&self) -> u64;
    fn max(&self) -> u64;
    fn mean(&self) -> f64;
    fn stdev(&self) -> f64;
    fn value_at_quantile(&self, q: f64) -> u64;
}

impl Figures for Histogram<u64> {
    fn len(&self) -> u64 {
        Histogram::len(self)
    }
    fn min(&self) -> u64 {
        Histogram::min(self)
    }
    fn max(&self) -> u64 {
        Histogram::max(self)
    }
    fn mean(&self) -> f64 {
        Histogram::mean(self)
    }
    fn stdev(&self) -> f64 {
        Histogram::stdev(self)
    }
    fn value_at_quantile(&self, q: f64) -> u64 {
        Histogram::value_at_quantile(self, q)
    }
}

/// The equivalence classes of a 3-digit histogram (they do not depend on
/// its size), for figures computed from values.
fn classes() -> &'static Histogram<u64> {
    static H: std::sync::OnceLock<Histogram<u64>> = std::sync::OnceLock::new();
    H.get_or_init(new_histogram)
}

/// A [`Hist`] read for its figures: its values sorted, or its histogram.
/// From values, each figure is what the histogram of those values gives,
/// bit for bit (the same buckets, the same order of float sums), without
/// building it: a histogram's mean, stdev and quantiles walk its whole
/// counts array, 10,000 slots for a few milliseconds, which made the
/// summary of 2,000 endpoints take 2 s.
pub enum View<'a> {
    Sorted(Vec<u32>),
    Hdr(&'a Histogram<u64>),
}

impl View<'_> {
    /// Each bucket (its median-equivalent value) with its count, ascending.
    fn buckets(v: &[u32]) -> impl Iterator<Item = (u64, u64)> + '_ {
        let c = classes();
        let mut i = 0;
        std::iter::from_fn(move || {
            let first = u64::from(*v.get(i)?);
            let next = c.next_non_equivalent(first);
            let start = i;
            while i < v.len() && u64::from(v[i]) < next {
                i += 1;
            }
            Some((c.median_equivalent(first), (i - start) as u64))
        })
    }
}

impl Figures for View<'_> {
    fn len(&self) -> u64 {
        match self {
            View::Sorted(v) => v.len() as u64,
            View::Hdr(h) => h.len(),
        }
    }
    fn min(&self) -> u64 {
        match self {
            View::Sorted(v) => v
                .first()
                .map_or(0, |&m| classes().lowest_equivalent(m.into())),
            View::Hdr(h) => h.min(),
        }
    }
    fn max(&self) -> u64 {
        match self {
            View::Sorted(v) => v
                .last()
                .map_or(0, |&m| classes().highest_equivalent(m.into())),
            View::Hdr(h) => h.max(),
        }
    }
    fn mean(&self) -> f64 {
        match self {
            View::Sorted(v) if v.is_empty() => 0.0,
            View::Sorted(v) => {
                let n = v.len() as f64;
                View::buckets(v).fold(0.0, |total, (median, count)| {
                    total + median as f64 * count as f64 / n
                })
            }
            View::Hdr(h) => h.mean(),
        }
    }
    fn stdev(&self) -> f64 {
        match self {
            View::Sorted(v) if v.is_empty() => 0.0,
            View::Sorted(v) => {
                let mean = self.mean();
                let dev = View::buckets(v).fold(0.0, |gdt, (median, count)| {
                    let dev = median as f64 - mean;
                    gdt + (dev * dev) * count as f64
                });
                (dev / v.len() as f64).sqrt()
            }
            View::Hdr(h) => h.stdev(),
        }
    }
    fn value_at_quantile(&self, q: f64) -> u64 {
        match self {
            View::Sorted(v) if v.is_empty() => 0,
            View::Sorted(v) => {
                let q = q.min(1.0);
                let at = ((q * v.len() as f64).ceil() as u64).clamp(1, v.len() as u64);
                let value = u64::from(v[at as usize - 1]);
                if q == 0.0 {
                    classes().lowest_equivalent(value)
                } else {
                    classes().highest_equivalent(value)
                }
            }
            View::Hdr(h) => h.value_at_quantile(q),
        }
    }
}

/// Microseconds, at least 1 (the histogram's lowest value).
pub fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

/// Responses per status code: the codes seen, in the order first seen (an
/// endpoint sees one to a few, so a lookup is a short scan). An array of
/// all 1,000 codes was 8 KB per endpoint per stats buffer: with 20,000
/// rows (10,000 two-step flows) it was most of a 1.3 GB peak.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusCounts(Vec<(u16, u64)>);

impl StatusCounts {
    /// Adds `n` responses with `code` (codes past 999 count as 999).
    #[inline]
    pub fn add(&mut self, code: u16, n: u64) {
        let code = code.min(STATUS_SLOTS as u16 - 1);
        match self.0.iter_mut().find(|(c, _)| *c == code) {
            Some((_, k)) => *k += n,
            None => self.0.push((code, n)),
        }
    }

    pub fn get(&self, code: u16) -> u64 {
        self.0
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(0, |&(_, n)| n)
    }

    /// The codes with responses, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (u16, u64)> {
        let mut v: Vec<(u16, u64)> = self.0.iter().copied().filter(|&(_, n)| n > 0).collect();
        v.sort_unstable();
        v.into_iter()
    }

    pub fn add_all(&mut self, other: &StatusCounts) {
        for &(c, n) in &other.0 {
            if n > 0 {
                self.add(c, n);
            }
        }
    }

    /// Zeroes the counts, keeping the codes (a recycled buffer does not allocate again).
    pub fn reset(&mut self) {
        self.0.iter_mut().for_each(|(_, n)| *n = 0);
    }
}

impl std::ops::Index<usize> for StatusCounts {
    type Output = u64;
    fn index(&self, code: usize) -> &u64 {
        self.0
            .iter()
            .find(|(c, _)| usize::from(*c) == code)
            .map_or(&0, |(_, n)| n)
    }
}

/// Status codes of an endpoint that get a latency histogram of their own
/// for thresholds' `status` tag; the latency of any later code goes to
/// [`ByStatus::other`]. An endpoint sees one to a few codes: 8 keeps every
/// realistic mix exact while a target answering with dozens of codes costs
/// at most 9 histograms per endpoint.
pub const STATUS_HISTOGRAMS: usize = 8;

/// Latency per response status (µs, corrected for an open-model endpoint),
/// kept only for a run whose thresholds read `http_req_duration{status:…}`:
/// the first [`STATUS_HISTOGRAMS`] codes seen, each its own histogram, the
/// rest pooled in `other`.
#[derive(Clone, Debug, Default)]
pub struct ByStatus {
    pub codes: Vec<(u16, Hist)>,
    pub other: Option<Hist>,
}

impl ByStatus {
    /// Where `code`'s responses go: its own histogram (a new one while
    /// fewer than [`STATUS_HISTOGRAMS`] are kept), else `other`.
    fn slot(&mut self, code: u16) -> &mut Hist {
        if let Some(i) = self.codes.iter().position(|(c, _)| *c == code) {
            return &mut self.codes[i].1;
        }
        if self.codes.len() < STATUS_HISTOGRAMS {
            self.codes.push((code, Hist::new()));
            return &mut self.codes.last_mut().expect("just pushed").1;
        }
        self.other.get_or_insert_with(Hist::new)
    }

    #[inline]
    pub fn record(&mut self, code: u16, us: u64) {
        self.slot(code).record(us);
    }

    /// Adds `o` in: its codes go where this one's `slot` puts them (a code
    /// `o` kept may be pooled here), its `other` to `other`.
    pub fn add(&mut self, o: &ByStatus) {
        for (code, h) in o.codes.iter().filter(|(_, h)| !h.is_empty()) {
            self.slot(*code).add(h);
        }
        if let Some(h) = o.other.as_ref().filter(|h| !h.is_empty()) {
            self.other.get_or_insert_with(Hist::new).add(h);
        }
    }

    /// Empties the histograms, keeping the codes (a recycled buffer does
    /// not allocate again).
    pub fn reset(&mut self) {
        self.codes.iter_mut().for_each(|(_, h)| h.reset());
        if let Some(h) = &mut self.other {
            h.reset();
        }
    }

    /// The histogram holding `code`'s responses: its own, or `other` when
    /// it was pooled there (`seen`: the endpoint had responses with it).
    pub fn of(&self, code: u16, seen: bool) -> Option<&Hist> {
        match self.codes.iter().find(|(c, _)| *c == code) {
            Some((_, h)) => Some(h),
            None if seen => self.other.as_ref(),
            None => None,
        }
    }
}

/// Counts for one endpoint over one interval (or, merged, over a run).
#[derive(Clone, Debug)]
pub struct EndpointStats {
    /// Latency of every complete response, accepted or not, in µs, from
    /// the actual send.
    pub latency: Hist,
    /// Open model: the same responses' latency from their intended send
    /// time (coordinated-omission corrected); empty for closed-model endpoints.
    /// Allocated on first use: closed-model endpoints never need its 188 KB
    /// (half the size of every stats buffer a worker swaps out).
    pub corrected: Option<Hist>,
    /// Requests that ended: complete responses plus failed attempts.
    pub requests: u64,
    /// Failed requests: transport errors plus unaccepted statuses.
    pub errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub status: StatusCounts,
    pub error_kinds: [u64; ErrorKind::ALL.len()],
    /// Open model: sends that could not start within the request timeout.
    pub dropped: u64,
    /// Open model: sends that left 1 ms or more after their intended time.
    pub late: u64,
    /// What responses' `Server-Timing` headers said, per metric name.
    pub server_timing: crate::server_timing::Timings,
    /// The latency (as [`EndpointStats::effective_latency`] has it) of the
    /// responses whose status was not accepted, for thresholds'
    /// `expected_response` tag. Allocated at the first such response: a
    /// healthy endpoint never pays for it.
    pub unexpected: Option<Hist>,
    /// Per check of the row (in its order): passes and fails.
    pub checks: Vec<[u64; 2]>,
    /// Phases, in µs (k6's names): TCP connects and TLS handshakes, once
    /// per connection made; waiting (sent → first response byte), per
    /// response. Allocated at first use.
    pub connecting: Option<Hist>,
    pub tls_handshaking: Option<Hist>,
    pub waiting: Option<Hist>,
    /// Open model: from when a send was due to when a connection took it
    /// (k6's `http_req_blocked`: a send waiting for a free connection),
    /// per send. A closed-model VU owns its connection: never blocked,
    /// nothing recorded.
    pub blocked: Option<Hist>,
    /// First to last byte of the request written (`http_req_sending`), of
    /// the requests a full socket held back; every other response's is
    /// 1 µs, left implicit (see [`EndpointStats::sending_all`]).
    pub sending: Option<Hist>,
    /// First to last byte of the response read (`http_req_receiving`), of
    /// the responses that took more than one read; every other response's
    /// is 1 µs, left implicit (see [`EndpointStats::receiving_all`]).
    /// Recording a value per response for these two cost 5 % of plaintext
    /// req/s (benches/ab.sh, 6 rounds, 0.949 median): nearly all are the
    /// same microsecond.
    pub receiving: Option<Hist>,
    /// TLS handshakes that resumed a session (the rest were full ones).
    pub tls_resumed: u64,
    /// Latency per status, only when a threshold reads it (see
    /// [`ByStatus`]; `Plan::latency_by_status`).
    pub by_status: Option<Box<ByStatus>>,
    /// Latency per `grpc-status` code (the code's number in place of an
    /// HTTP status), only when a threshold reads it (`grpc_status` tag).
    pub by_grpc: Option<Box<ByStatus>>,
    /// HTTP/2 connection events (GOAWAYs, resets by code, retries,
    /// SETTINGS and PING times), for an `h2` row only.
    pub h2: Option<Box<crate::h2_stats::H2Stats>>,
    /// gRPC calls per `grpc-status` code (0–16, index = code), for a
    /// `grpc` row only; allocated at its first call.
    pub grpc_status: Option<Box<[u64; 17]>>,
}

impl Default for EndpointStats {
    fn default() -> EndpointStats {
        EndpointStats::new()
    }
}

impl EndpointStats {
    pub fn new() -> EndpointStats {
        EndpointStats {
            latency: Hist::new(),
            corrected: None,
            requests: 0,
            errors: 0,
            bytes_in: 0,
            bytes_out: 0,
            status: StatusCounts::default(),
            error_kinds: [0; ErrorKind::ALL.len()],
            dropped: 0,
            late: 0,
            server_timing: Default::default(),
            unexpected: None,
            checks: Vec::new(),
            connecting: None,
            tls_handshaking: None,
            waiting: None,
            blocked: None,
            sending: None,
            receiving: None,
            tls_resumed: 0,
            by_status: None,
            by_grpc: None,
            h2: None,
            grpc_status: None,
        }
    }

    /// A complete response.
    #[inline(always)]
    pub fn record_response(
        &mut self,
        latency_us: u64,
        corrected_us: Option<u64>,
        status: u16,
        error: Option<ErrorKind>,
    ) {
        self.requests += 1;
        self.latency.record(latency_us);
        if let Some(c) = corrected_us {
            self.corrected.get_or_insert_with(Hist::new).record(c);
        }
        self.status.add(status, 1);
        if let Some(kind) = error {
            self.errors += 1;
            self.error_kinds[kind as usize] += 1;
            let h = self.unexpected.get_or_insert_with(Hist::new);
            h.record(corrected_us.unwrap_or(latency_us));
        }
    }

    /// `phase` (`sending` or `receiving`) with the 1 µs values it leaves
    /// implicit filled in: one per response (each response records its
    /// latency); none before the first response.
    fn per_response(&self, phase: &Option<Hist>) -> Option<Hist> {
        let kept = phase.as_ref().map_or(0, Hist::len);
        let implicit = self.latency.len().saturating_sub(kept);
        if implicit == 0 {
            return phase.clone();
        }
        let mut h = phase.clone().unwrap_or_default();
        h.record_n(1, implicit);
        Some(h)
    }

    /// `http_req_sending` of every response.
    pub fn sending_all(&self) -> Option<Hist> {
        self.per_response(&self.sending)
    }

    /// `http_req_receiving` of every response.
    pub fn receiving_all(&self) -> Option<Hist> {
        self.per_response(&self.receiving)
    }

    /// A response's latency (µs, as [`EndpointStats::effective_latency`]
    /// has it) under its status, for thresholds' `status` tag.
    #[inline]
    pub fn record_status_latency(&mut self, status: u16, us: u64) {
        self.by_status.get_or_insert_default().record(status, us);
    }

    /// A gRPC call's latency (as [`EndpointStats::record_status_latency`])
    /// under its `grpc-status` code, for thresholds' `grpc_status` tag.
    #[inline]
    pub fn record_grpc_latency(&mut self, code: u8, us: u64) {
        self.by_grpc
            .get_or_insert_default()
            .record(u16::from(code), us);
    }

    /// A phase's duration, in µs.
    #[inline]
    pub fn record_phase(phase: &mut Option<Hist>, us: u64) {
        phase.get_or_insert_with(Hist::new).record(us);
    }

    /// Check `i` of the row passed or failed.
    #[inline]
    pub fn record_check(&mut self, i: usize, passed: bool) {
        if self.checks.len() <= i {
            self.checks.resize(i + 1, [0; 2]);
        }
        self.checks[i][usize::from(!passed)] += 1;
    }

    /// A gRPC call ended with `grpc-status` `code` (0–16).
    #[inline]
    pub fn record_grpc_status(&mut self, code: usize) {
        self.grpc_status.get_or_insert_with(|| Box::new([0; 17]))[code.min(16)] += 1;
    }

    /// A request that got no complete response (or whose response a flow
    /// could not use: see [`ErrorKind::Capture`]).
    pub fn record_failure(&mut self, kind: ErrorKind) {
        self.requests += 1;
        self.errors += 1;
        self.error_kinds[kind as usize] += 1;
    }

    pub fn add(&mut self, other: &EndpointStats) {
        self.latency.add(&other.latency);
        if let Some(o) = &other.corrected {
            self.corrected.get_or_insert_with(Hist::new).add(o);
        }
        self.dropped += other.dropped;
        self.late += other.late;
        self.server_timing.add(&other.server_timing);
        if let Some(u) = &other.unexpected {
            self.unexpected.get_or_insert_with(Hist::new).add(u);
        }
        for (mine, theirs) in [
            (&mut self.connecting, &other.connecting),
            (&mut self.tls_handshaking, &other.tls_handshaking),
            (&mut self.waiting, &other.waiting),
            (&mut self.blocked, &other.blocked),
            (&mut self.sending, &other.sending),
            (&mut self.receiving, &other.receiving),
        ] {
            if let Some(h) = theirs {
                mine.get_or_insert_with(Hist::new).add(h);
            }
        }
        self.tls_resumed += other.tls_resumed;
        if let Some(b) = &other.by_status {
            self.by_status.get_or_insert_default().add(b);
        }
        if let Some(b) = &other.by_grpc {
            self.by_grpc.get_or_insert_default().add(b);
        }
        if let Some(h) = &other.h2 {
            self.h2.get_or_insert_default().add(h);
        }
        if let Some(g) = &other.grpc_status {
            let mine = self.grpc_status.get_or_insert_with(|| Box::new([0; 17]));
            for (a, b) in mine.iter_mut().zip(g.iter()) {
                *a += b;
            }
        }
        if self.checks.len() < other.checks.len() {
            self.checks.resize(other.checks.len(), [0; 2]);
        }
        for (a, b) in self.checks.iter_mut().zip(&other.checks) {
            a[0] += b[0];
            a[1] += b[1];
        }
        self.requests += other.requests;
        self.errors += other.errors;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.status.add_all(&other.status);
        for (a, b) in self.error_kinds.iter_mut().zip(other.error_kinds) {
            *a += b;
        }
    }

    /// The latency as users of the schedule saw it: corrected for an
    /// open-model endpoint (none before its first response), else measured.
    pub fn effective_latency(&self, open: bool) -> Option<&Hist> {
        if open {
            self.corrected.as_ref()
        } else {
            Some(&self.latency)
        }
    }

    pub fn reset(&mut self) {
        self.latency.reset();
        if let Some(c) = &mut self.corrected {
            c.reset(); // kept, so a recycled buffer does not allocate again
        }
        self.dropped = 0;
        self.late = 0;
        self.server_timing.reset();
        if let Some(u) = &mut self.unexpected {
            u.reset();
        }
        self.checks.iter_mut().for_each(|c| *c = [0; 2]);
        self.tls_resumed = 0;
        if let Some(b) = &mut self.by_status {
            b.reset();
        }
        if let Some(b) = &mut self.by_grpc {
            b.reset();
        }
        if let Some(h) = &mut self.h2 {
            h.reset();
        }
        if let Some(g) = &mut self.grpc_status {
            **g = [0; 17];
        }
        for h in [
            &mut self.connecting,
            &mut self.tls_handshaking,
            &mut self.waiting,
            &mut self.blocked,
            &mut self.sending,
            &mut self.receiving,
        ]
        .into_iter()
        .flatten()
        {
            h.reset();
        }
        self.requests = 0;
        self.errors = 0;
        self.bytes_in = 0;
        self.bytes_out = 0;
        self.status.reset();
        self.error_kinds = [0; ErrorKind::ALL.len()];
    }
}

/// Counts for one flow over one interval (or, merged, over a run).
#[derive(Clone, Debug, Default)]
pub struct FlowStats {
    /// Iterations whose every step succeeded.
    pub iterations: u64,
    /// Iterations ended by a failed step (any error kind, an unexpected
    /// status, a capture that found nothing).
    pub failed: u64,
    /// Iterations cut off by the end of the run (between steps, or a step
    /// whose request it interrupted) or by a VU leaving (a ramp-down, the autoscaler).
    pub interrupted: u64,
    /// Duration of the completed iterations, in µs, think time included.
    pub duration: Hist,
}

impl FlowStats {
    pub fn add(&mut self, o: &FlowStats) {
        self.iterations += o.iterations;
        self.failed += o.failed;
        self.interrupted += o.interrupted;
        self.duration.add(&o.duration);
    }
}

/// The set of accepted status codes, as a bitmap over 0..1024.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSet([u64; 16]);

impl StatusSet {
    /// `expect` as configured; empty means 100–399 (k6's default).
    pub fn from_expect(codes: &[u16]) -> StatusSet {
        let mut s = StatusSet([0; 16]);
        let default: Vec<u16> = (100..400).collect();
        for &c in if codes.is_empty() {
            &default[..]
        } else {
            codes
        } {
            s.0[(c as usize / 64) % 16] |= 1 << (c % 64);
        }
        s
    }

    #[inline]
    pub fn contains(&self, code: u16) -> bool {
        code < 1024 && self.0[code as usize / 64] & (1 << (code % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_eight_statuses_keep_their_latency_the_rest_pool() {
        let mut b = ByStatus::default();
        for code in 200..210u16 {
            b.record(code, u64::from(code));
        }
        assert_eq!(b.codes.len(), STATUS_HISTOGRAMS);
        assert_eq!(b.of(203, true).map(Hist::len), Some(1));
        assert_eq!(b.of(203, true).unwrap().hdr().max(), 203);
        // 208 and 209 were pooled; a code no response had reads nothing
        let other = b.of(209, true).unwrap();
        assert_eq!((other.len(), other.hdr().min()), (2, 208));
        assert!(b.of(404, false).is_none());
        // another buffer's codes go where this one puts them
        let mut c = ByStatus::default();
        c.record(209, 1000);
        c.record(200, 7);
        b.add(&c);
        assert_eq!(b.of(200, true).unwrap().len(), 2);
        assert_eq!(b.other.as_ref().unwrap().len(), 3);
        // a reset keeps the codes, empties the histograms
        b.reset();
        assert_eq!(b.codes.len(), STATUS_HISTOGRAMS);
        assert!(b.codes.iter().all(|(_, h)| h.is_empty()));
        let mut e = EndpointStats::new();
        e.record_status_latency(500, 9);
        let mut total = EndpointStats::new();
        total.add(&e);
        assert_eq!(total.by_status.unwrap().of(500, true).unwrap().len(), 1);
    }

    #[test]
    fn records_and_merges() {
        let mut a = EndpointStats::new();
        a.record_response(1000, None, 200, None);
        a.record_response(3000, Some(9000), 503, Some(ErrorKind::Status));
        a.record_failure(ErrorKind::Connect);
        let mut b = EndpointStats::new();
        b.record_response(2000, None, 200, None);
        b.add(&a);
        assert_eq!((b.requests, b.errors), (4, 2));
        assert_eq!(b.status[200], 2);
        assert_eq!(b.status[503], 1);
        assert_eq!(b.error_kinds[ErrorKind::Connect as usize], 1);
        assert_eq!(b.error_kinds[ErrorKind::Status as usize], 1);
        assert_eq!(b.latency.len(), 3);
        assert_eq!(b.corrected.as_ref().map(|h| h.len()), Some(1));
        assert!(
            EndpointStats::new().corrected.is_none(),
            "allocated only when used"
        );
        b.reset();
        assert_eq!((b.requests, b.latency.len(), b.status[200]), (0, 0, 0));
    }

    /// Values from 1 µs to past the hour, spread over every bucket size.
    fn spread(n: u64, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let magnitude = (x >> 59) % 33; // 2^0 .. 2^32
                1 + ((x >> 20) & ((1 << magnitude) - 1))
            })
            .collect()
    }

    #[test]
    fn values_give_the_histogram_and_its_figures_exactly() {
        for (n, seed) in [(0, 1), (1, 2), (7, 3), (500, 4), (RAW_VALUES as u64 + 9, 5)] {
            let values = spread(n, seed);
            let mut hist = Hist::new();
            let mut hdr = new_histogram();
            for &v in &values {
                hist.record(v);
                record(&mut hdr, v);
            }
            assert_eq!(
                matches!(hist, Hist::Dense(_)),
                n > RAW_VALUES as u64,
                "dense past {RAW_VALUES} values"
            );
            assert_eq!(*hist.hdr(), hdr);
            assert_eq!(
                crate::summary::encode_hist(&hist),
                crate::summary::encode_histogram(&hdr)
            );
            let view = hist.view();
            assert_eq!(Figures::len(&view), hdr.len());
            if n > 0 {
                assert_eq!(Figures::min(&view), hdr.min(), "{n}");
                assert_eq!(Figures::max(&view), hdr.max(), "{n}");
            }
            assert_eq!(Figures::mean(&view).to_bits(), hdr.mean().to_bits(), "{n}");
            assert_eq!(
                Figures::stdev(&view).to_bits(),
                hdr.stdev().to_bits(),
                "{n}"
            );
            for q in [0.0, 0.001, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0, 1.5] {
                assert_eq!(
                    Figures::value_at_quantile(&view, q),
                    hdr.value_at_quantile(q),
                    "{n} values, q {q}"
                );
            }
            // merged in any order, with either form on either side
            let mut a = Hist::new();
            let mut b = Hist::from(new_histogram());
            for (i, &v) in values.iter().enumerate() {
                if i % 3 == 0 { b.record(v) } else { a.record(v) }
            }
            let mut ab = a.clone();
            ab.add(&b);
            b.add(&a);
            assert_eq!((*ab.hdr() == hdr, *b.hdr() == hdr), (true, true), "{n}");
        }
    }

    #[test]
    fn default_accepts_100_to_399() {
        let s = StatusSet::from_expect(&[]);
        assert!(s.contains(200) && s.contains(304) && s.contains(100));
        assert!(!s.contains(400) && !s.contains(503) && !s.contains(99));
        let only = StatusSet::from_expect(&[404]);
        assert!(only.contains(404) && !only.contains(200));
        assert!(!s.contains(2000));
    }
}
