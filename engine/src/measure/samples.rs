//! `samples.ndjson`: one short JSON line per sampled request, written
//! through memory maps by every worker at once.
//!
//! Each worker reserves 256 KiB chunks of the file (one atomic add per
//! chunk, none per request), maps its chunk, and encodes lines straight into
//! it without allocating. The file is grown ahead of need with `fallocate`,
//! so a write into a mapping can never meet a full disk (which would be
//! SIGBUS); when growing fails, sampling stops with an error the summary
//! reports. At the end the chunks' unused tails are squeezed out and the file
//! is cut to its exact length: valid NDJSON, no NUL bytes, no blank lines.
//!
//! # Reading after a crash
//!
//! After `kill -9` the file still holds every line completed before the
//! kill, but also the unused (NUL) parts of reserved chunks, and at most one
//! partial line per worker. The rule that recovers exactly the complete
//! lines ([`recover`]): **a line is complete only when it ends with `\n`; a
//! NUL byte ends a line without completing it.** Incomplete pieces are
//! dropped and counted. A worker writes a line's bytes in order with the
//! `\n` last, so a line with its `\n` is whole.

use crate::stats::ErrorKind;
use crate::sys;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Bytes a worker reserves at a time (a multiple of the page size).
pub const CHUNK: usize = 256 * 1024;
/// The file grows by this much at a time, ahead of need.
const GROWTH: u64 = 32 * 1024 * 1024;
/// Space left free on the disk for the summary, status and logs.
const HEADROOM: u64 = 4 * 1024 * 1024;
/// Longest encoded line: a name of 128 characters, each up to 4 bytes and
/// escaped to at most 6 (`\u001f`; control characters are refused, so 2
/// in practice), and numbers of 20 digits.
pub const MAX_LINE: usize = 128 * 6 + 256;

/// One sampled request, as a line of `samples.ndjson`. Field names are
/// short because lines are written at full request rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleLine {
    /// When the request was sent (or its connection attempted), µs from the run start.
    pub t: u64,
    /// Endpoint name.
    pub ep: String,
    /// Response status, when a response completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub st: Option<u16>,
    /// Error kind of a failed request (`connect`, `timeout`, `read`,
    /// `write`, `parse`, `tls`, `interrupted`, `capture`, `h2_reset`,
    /// `h2_goaway`, `protocol`, `grpc`, or `status` with `st` set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
    /// Latency in µs: to the complete response, or to the failure. Absent
    /// for an `interrupted` request, which has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<u64>,
    /// Coordinated-omission-corrected latency in µs (open model only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub co: Option<u64>,
    /// Response bytes received (head and body).
    pub b: u64,
    /// Worker (thread) index.
    pub w: u32,
    /// The VU's number, unique among the run's VUs at any moment and dense
    /// (0-based, over every endpoint, flow, worker and shard). Absent in
    /// files written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vu: Option<u64>,
    /// A gRPC call's `grpc-status` code (0 is OK), when its answer had a
    /// readable one; absent for other requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gs: Option<u8>,
}

/// What a sample records; encoded by [`encode`].
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    pub t_us: u64,
    /// The endpoint's name, already escaped for a JSON string
    /// ([`crate::plan::EndpointPlan::json_name`]).
    pub endpoint: &'a str,
    pub status: Option<u16>,
    pub error: Option<ErrorKind>,
    /// None for a request that never ended (`interrupted`).
    pub latency_us: Option<u64>,
    pub corrected_us: Option<u64>,
    pub bytes: u64,
    pub worker: u32,
    /// The VU's number over the run (see [`crate::vu`]).
    pub vu: u64,
    /// A gRPC call's status code.
    pub grpc_status: Option<u8>,
}

/// Encodes one line, `\n` included, into `out` (at least [`MAX_LINE`]
/// bytes); returns its length.
pub fn encode(s: &Sample<'_>, out: &mut [u8]) -> usize {
    debug_assert!(out.len() >= MAX_LINE);
    let mut w = Cursor { buf: out, len: 0 };
    let mut num = itoa::Buffer::new();
    w.put(b"{\"t\":");
    w.put(num.format(s.t_us).as_bytes());
    w.put(b",\"ep\":\"");
    w.put(s.endpoint.as_bytes());
    w.put(b"\"");
    if let Some(st) = s.status {
        w.put(b",\"st\":");
        w.put(num.format(st).as_bytes());
    }
    if let Some(e) = s.error {
        w.put(b",\"err\":\"");
        w.put(e.as_str().as_bytes());
        w.put(b"\"");
    }
    if let Some(lat) = s.latency_us {
        w.put(b",\"lat\":");
        w.put(num.format(lat).as_bytes());
    }
    if let Some(co) = s.corrected_us {
        w.put(b",\"co\":");
        w.put(num.format(co).as_bytes());
    }
    w.put(b",\"b\":");
    w.put(num.format(s.bytes).as_bytes());
    w.put(b",\"w\":");
    w.put(num.format(s.worker).as_bytes());
    w.put(b",\"vu\":");
    w.put(num.format(s.vu).as_bytes());
    if let Some(gs) = s.grpc_status {
        w.put(b",\"gs\":");
        w.put(num.format(gs).as_bytes());
    }
    w.put(b"}\n");
    w.len
}

struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Cursor<'_> {
    #[inline]
    fn put(&mut self, b: &[u8]) {
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }
}

/// Why sampling stopped early; reported in the summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SampleError {
    /// `disk_full`, `file_too_large` or `io`.
    pub kind: String,
    pub message: String,
}

impl SampleError {
    fn from_io(what: &str, e: &io::Error) -> SampleError {
        let kind = match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => "disk_full",
            Some(libc::EFBIG) => "file_too_large",
            _ => "io",
        };
        SampleError {
            kind: kind.into(),
            message: format!("{what}: {e}"),
        }
    }
}

/// The file every worker writes into.
pub struct SampleFile {
    file: File,
    rate: f64,
    /// Offset of the next chunk to hand out.
    next: AtomicU64,
    /// Bytes allocated so far; growing takes this lock (once per 32 MiB).
    allocated: Mutex<u64>,
    /// Set once growing failed; workers see it when they need a chunk.
    stopped: AtomicBool,
    error: Mutex<Option<SampleError>>,
}

impl SampleFile {
    /// Creates `path` (it must not exist) for sampling at `rate` (0..=1).
    pub fn create(path: &Path, rate: f64) -> io::Result<Arc<SampleFile>> {
        sys::ignore_sigxfsz();
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Arc::new(SampleFile {
            file,
            rate,
            next: AtomicU64::new(0),
            allocated: Mutex::new(0),
            stopped: AtomicBool::new(false),
            error: Mutex::new(None),
        }))
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Reserves and maps the next chunk, growing the file when needed.
    fn chunk(&self) -> Result<(u64, memmap2::MmapMut), ()> {
        if self.stopped.load(Ordering::Relaxed) {
            return Err(());
        }
        let offset = self.next.fetch_add(CHUNK as u64, Ordering::Relaxed);
        let end = offset + CHUNK as u64;
        {
            let mut allocated = self.allocated.lock();
            if *allocated < end
                && let Err(e) = self.grow(&mut allocated, end)
            {
                self.stop(e);
                return Err(());
            }
        }
        sys::map_window(&self.file, offset, CHUNK)
            .map(|m| (offset, m))
            .map_err(|e| {
                self.stop(SampleError::from_io("cannot map samples.ndjson", &e));
            })
    }

    /// Allocates up to at least `end`: a growth step when the disk has room
    /// for it and the headroom, else just what is needed.
    fn grow(&self, allocated: &mut u64, end: u64) -> Result<(), SampleError> {
        let free = sys::free_space(&self.file).map_err(|e| SampleError::from_io("statvfs", &e))?;
        let want = (end - *allocated).max(GROWTH);
        let len = if free >= want + HEADROOM {
            want
        } else {
            end - *allocated
        };
        if free < len + HEADROOM {
            return Err(SampleError {
                kind: "disk_full".into(),
                message: format!(
                    "{free} bytes free: less than a chunk plus {HEADROOM} kept for the summary"
                ),
            });
        }
        sys::allocate(&self.file, *allocated, len)
            .map_err(|e| SampleError::from_io("cannot grow samples.ndjson", &e))?;
        *allocated += len;
        Ok(())
    }

    fn stop(&self, e: SampleError) {
        self.stopped.store(true, Ordering::Relaxed);
        let mut err = self.error.lock();
        if err.is_none() {
            *err = Some(e);
        }
    }

    /// Squeezes out the unused chunk tails and cuts the file to its exact
    /// length. Call once every writer has been finished.
    pub fn finish(&self, mut chunks: Vec<(u64, usize)>) -> SampleOutcome {
        chunks.sort_unstable();
        let allocated = *self.allocated.lock();
        let mut bytes = 0u64;
        let result = (|| -> io::Result<()> {
            if allocated > 0 {
                let mut map = sys::map_window(&self.file, 0, allocated as usize)?;
                for &(offset, used) in &chunks {
                    let from = offset as usize;
                    map.copy_within(from..from + used, bytes as usize);
                    bytes += used as u64;
                }
                map.flush()?;
            }
            self.file.set_len(bytes)?;
            self.file.sync_all()
        })();
        if let Err(e) = result {
            self.stop(SampleError::from_io("cannot finish samples.ndjson", &e));
        }
        SampleOutcome {
            bytes,
            error: self.error.lock().clone(),
        }
    }
}

/// The file's state at the end.
pub struct SampleOutcome {
    pub bytes: u64,
    pub error: Option<SampleError>,
}

/// A worker's writer: its current chunk and what it wrote.
pub struct SampleWriter {
    file: Arc<SampleFile>,
    map: Option<(u64, memmap2::MmapMut)>,
    used: usize,
    /// Finished chunks: (offset, bytes used).
    chunks: Vec<(u64, usize)>,
    pub written: u64,
    rng: u64,
    stopped: bool,
}

impl SampleWriter {
    pub fn new(file: Arc<SampleFile>, seed: u64) -> SampleWriter {
        SampleWriter {
            file,
            map: None,
            used: 0,
            chunks: Vec::new(),
            written: 0,
            rng: seed | 1,
            stopped: false,
        }
    }

    /// Whether this request is sampled: every one at rate 1, else each with
    /// probability `rate`, independently (xorshift64*, no bias by time or
    /// outcome).
    #[inline]
    pub fn wants(&mut self) -> bool {
        if self.stopped {
            return false;
        }
        let rate = self.file.rate;
        if rate >= 1.0 {
            return true;
        }
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let u = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
        u < rate
    }

    /// Appends one encoded line (`wants` said yes), encoded straight into
    /// the mapped chunk. About 200 ns a line (`cargo bench --bench hot_path
    /// samples`), of which perf puts ~40 % in the kernel zero-filling each
    /// fresh page of the file on first touch: the price of a file-backed map,
    /// paid a page (~60 lines) at a time rather than in one stall per chunk.
    #[inline]
    pub fn write(&mut self, sample: &Sample<'_>) {
        if self.map.is_none() || self.used + MAX_LINE > CHUNK {
            self.next_chunk();
            if self.map.is_none() {
                return;
            }
        }
        let (_, map) = self.map.as_mut().expect("a mapped chunk");
        self.used += encode(sample, &mut map[self.used..]);
        self.written += 1;
    }

    fn next_chunk(&mut self) {
        if let Some((offset, _)) = self.map.take() {
            self.chunks.push((offset, self.used));
        }
        self.used = 0;
        match self.file.chunk() {
            Ok(m) => self.map = Some(m),
            Err(()) => self.stopped = true,
        }
    }

    /// Unmaps the current chunk; returns every chunk with its bytes used.
    pub fn finish(mut self) -> (u64, Vec<(u64, usize)>) {
        if let Some((offset, _)) = self.map.take() {
            self.chunks.push((offset, self.used));
        }
        (self.written, self.chunks)
    }
}

/// The reader rule: the complete lines of a samples file, and how many
/// incomplete pieces were dropped (see the module docs).
pub fn recover(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut lines = Vec::new();
    let mut incomplete = 0;
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\n' => {
                if i > start {
                    lines.push(&bytes[start..i]);
                }
                start = i + 1;
            }
            0 => {
                if i > start {
                    incomplete += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < bytes.len() {
        incomplete += 1;
    }
    (lines, incomplete)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: Option<u16>, error: Option<ErrorKind>) -> Sample<'static> {
        Sample {
            t_us: 1_234_567,
            endpoint: "users",
            status,
            error,
            latency_us: Some(1834),
            corrected_us: None,
            bytes: 512,
            worker: 0,
            vu: 3,
            grpc_status: None,
        }
    }

    #[test]
    fn encodes_the_documented_line() {
        let mut buf = [0u8; MAX_LINE];
        let n = encode(&sample(Some(200), None), &mut buf);
        assert_eq!(
            &buf[..n],
            b"{\"t\":1234567,\"ep\":\"users\",\"st\":200,\"lat\":1834,\"b\":512,\"w\":0,\"vu\":3}\n"
        );
        let n = encode(&sample(None, Some(ErrorKind::Timeout)), &mut buf);
        let line: SampleLine = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(line.err.as_deref(), Some("timeout"));
        assert_eq!(line.st, None);
        let mut s = sample(Some(503), Some(ErrorKind::Status));
        s.corrected_us = Some(99);
        let n = encode(&s, &mut buf);
        let line: SampleLine = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(
            (line.st, line.err.as_deref(), line.co),
            (Some(503), Some("status"), Some(99))
        );
        // An interrupted request has no latency: the line has no `lat`.
        let mut s = sample(None, Some(ErrorKind::Interrupted));
        s.latency_us = None;
        let n = encode(&s, &mut buf);
        assert_eq!(
            &buf[..n],
            b"{\"t\":1234567,\"ep\":\"users\",\"err\":\"interrupted\",\"b\":512,\"w\":0,\"vu\":3}\n"
        );
        // A gRPC call's status code (14: UNAVAILABLE) comes last.
        let mut s = sample(Some(200), Some(ErrorKind::Grpc));
        s.grpc_status = Some(14);
        let n = encode(&s, &mut buf);
        assert!(buf[..n].ends_with(b",\"vu\":3,\"gs\":14}\n"));
        let line: SampleLine = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!((line.err.as_deref(), line.gs), (Some("grpc"), Some(14)));
    }

    #[test]
    fn the_longest_line_fits() {
        // the longest name, every character escaped to its longest form
        let name = "\\u001f".repeat(128);
        let s = Sample {
            t_us: u64::MAX,
            endpoint: &name,
            status: Some(999),
            error: Some(ErrorKind::Interrupted), // the longest kind's name
            latency_us: Some(u64::MAX),
            corrected_us: Some(u64::MAX),
            bytes: u64::MAX,
            worker: u32::MAX,
            vu: u64::MAX,
            grpc_status: Some(u8::MAX),
        };
        let mut buf = [0u8; MAX_LINE];
        let n = encode(&s, &mut buf);
        assert!(n < MAX_LINE);
        serde_json::from_slice::<SampleLine>(&buf[..n]).unwrap();
    }

    #[test]
    fn recovers_exactly_the_complete_lines() {
        let file = b"{\"a\":1}\n{\"a\":2}\n{\"part\0\0\0\0{\"a\":3}\n\0\0\0{\"a\":4}\n{\"tail";
        let (lines, incomplete) = recover(file);
        assert_eq!(
            lines,
            vec![&b"{\"a\":1}"[..], b"{\"a\":2}", b"{\"a\":3}", b"{\"a\":4}"]
        );
        assert_eq!(incomplete, 2);
        assert_eq!(recover(b""), (vec![], 0));
        assert_eq!(recover(b"\0\0\0"), (vec![], 0));
    }

    #[test]
    fn several_writers_share_a_file_without_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.ndjson");
        let file = SampleFile::create(&path, 1.0).unwrap();
        let per_writer = 30_000u64; // several chunks each
        let threads: Vec<_> = (0..4u32)
            .map(|w| {
                let file = Arc::clone(&file);
                std::thread::spawn(move || {
                    let mut writer = SampleWriter::new(file, w as u64);
                    for i in 0..per_writer {
                        assert!(writer.wants());
                        writer.write(&Sample {
                            t_us: i,
                            endpoint: "e",
                            status: Some(200),
                            error: None,
                            latency_us: Some(i * 3),
                            corrected_us: None,
                            bytes: 7,
                            worker: w,
                            vu: u64::from(w),
                            grpc_status: None,
                        });
                    }
                    writer.finish()
                })
            })
            .collect();
        let mut chunks = Vec::new();
        let mut written = 0;
        for t in threads {
            let (n, c) = t.join().unwrap();
            written += n;
            chunks.extend(c);
        }
        let outcome = file.finish(chunks);
        assert!(outcome.error.is_none());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, outcome.bytes);
        assert!(!bytes.contains(&0), "NUL bytes left");
        assert!(!bytes.windows(2).any(|w| w == b"\n\n"), "blank line");
        assert_eq!(bytes.last(), Some(&b'\n'));
        let mut per_worker = [0u64; 4];
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let s: SampleLine = serde_json::from_slice(line).unwrap();
            assert_eq!(s.lat, Some(s.t * 3), "fields of one line stay together");
            per_worker[s.w as usize] += 1;
        }
        assert_eq!(written, 4 * per_writer);
        assert_eq!(per_worker, [per_writer; 4]);
    }

    #[test]
    fn sampling_at_a_rate_is_unbiased() {
        let dir = tempfile::tempdir().unwrap();
        let file = SampleFile::create(&dir.path().join("s"), 0.1).unwrap();
        let mut w = SampleWriter::new(file, 7);
        let n = 100_000;
        let hits = (0..n).filter(|_| w.wants()).count() as f64;
        // binomial(100000, 0.1): sd ≈ 95; 5 sd either side
        assert!((hits - 10_000.0).abs() < 475.0, "{hits}");
    }
}
