//! `GET /v1/runs/{id}/events`: a run's live data as Server-Sent Events.
//!
//! The engine appends each timeline second to the run's `live.ndjson` (see
//! `userflux_engine::live`); this tails that file and sends each line with
//! the run's current `status.json` as one JSON object:
//!
//! ```text
//! id: 12
//! event: second
//! data: {"status": {…status.json…}, "second": {…live.ndjson line…}}
//! ```
//!
//! `event: status` frames (no `second`) say the state changed with no new
//! second (queued → running, the end); `: heartbeat` comments keep proxies
//! and the browser from timing out; `event: end` closes a finished run's
//! stream. A client that reconnects with `Last-Event-ID: N` (the browser's
//! `EventSource` does it by itself) gets the seconds after N; a new one
//! gets every second so far, then the live ones.
//!
//! A slow client costs a bounded amount: each has one thread and at most
//! [`MAX_PENDING`] bytes waiting to be written (non-blocking writes). A
//! client still taking its history waits for room (the file is the
//! buffer); one that has caught up and then falls behind loses seconds
//! (`"dropped": N` in the next frame says how many) instead of the daemon
//! buffering them; one that takes nothing for [`STALL`] is dropped. At most
//! [`MAX_CLIENTS`] streams are open at once; more get `503`.

use crate::runs::is_final;
use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use userflux_engine::live::LIVE_FILE;

/// Event streams open at once.
pub const MAX_CLIENTS: usize = 32;
/// Bytes waiting for one client, at most.
pub const MAX_PENDING: usize = 64 * 1024;
/// A client that takes no byte for this long is dropped.
pub const STALL: Duration = Duration::from_secs(15);
/// How often the files are looked at.
const TICK: Duration = Duration::from_millis(200);
/// A comment after this long without a frame.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// One client's stream.
struct Client {
    stream: TcpStream,
    pending: Vec<u8>,
    /// When a byte last left (or the stream started).
    progress: Instant,
    last_frame: Instant,
}

impl Client {
    /// Writes what is pending until the socket would block. `Err` ends the stream.
    fn flush(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            match self.stream.write(&self.pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.pending.drain(..n);
                    self.progress = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.pending.is_empty() {
            self.progress = Instant::now();
        }
        Ok(())
    }

    fn room(&self, n: usize) -> bool {
        self.pending.len() + n <= MAX_PENDING
    }

    fn push(&mut self, frame: &[u8]) {
        self.pending.extend_from_slice(frame);
        self.last_frame = Instant::now();
    }
}

/// The run's status, compact JSON, and whether it is final.
fn status(dir: &Path) -> Option<(String, bool)> {
    let s = crate::runs::read_status(dir)?;
    Some((serde_json::to_string(&s).ok()?, is_final(s.state)))
}

/// `t` of a live line (its event id).
fn second_of(line: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct T {
        t: u64,
    }
    serde_json::from_slice::<T>(line).ok().map(|t| t.t)
}

/// Serves the stream of the run in `dir` until it ends or the client goes.
/// The response head is written here; `resume` is the `Last-Event-ID`.
pub fn serve(stream: TcpStream, dir: PathBuf, resume: Option<u64>) {
    let mut c = Client {
        stream,
        pending: Vec::new(),
        progress: Instant::now(),
        last_frame: Instant::now(),
    };
    c.push(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
          Connection: close\r\nX-Accel-Buffering: no\r\n\r\nretry: 2000\n\n",
    );
    if c.stream.set_nonblocking(true).is_err() {
        return;
    }
    let _ = run(&mut c, &dir, resume);
    let _ = c.stream.shutdown(std::net::Shutdown::Both);
}

fn run(c: &mut Client, dir: &Path, resume: Option<u64>) -> io::Result<()> {
    let mut live: Option<File> = None;
    let mut offset = 0u64;
    let mut caught_up = false;
    let mut dropped = 0u64;
    let mut last_status = String::new();
    let mut ending: Option<Instant> = None;
    let mut chunk = vec![0u8; MAX_PENDING];
    loop {
        c.flush()?;
        if !c.pending.is_empty() && c.progress.elapsed() > STALL {
            return Err(io::ErrorKind::TimedOut.into());
        }
        if let Some(at) = ending {
            // the last frames are out (or the client had 2 s to take them)
            if c.pending.is_empty() || at.elapsed() > Duration::from_secs(2) {
                return Ok(());
            }
            std::thread::sleep(TICK);
            continue;
        }
        let Some((st, done)) = status(dir) else {
            return Ok(()); // the run directory went away
        };
        if live.is_none() {
            live = File::open(dir.join(LIVE_FILE)).ok();
        }
        let mut sent_second = false;
        let mut more = false;
        if let Some(f) = &live {
            let n = f.read_at(&mut chunk, offset)?;
            let whole = chunk[..n]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            more = n == chunk.len();
            let mut at = 0;
            while at < whole {
                let end = at
                    + chunk[at..whole]
                        .iter()
                        .position(|&b| b == b'\n')
                        .expect("whole lines");
                let line = &chunk[at..end];
                let t = second_of(line);
                if t.is_some_and(|t| resume.is_some_and(|r| t <= r)) || line.is_empty() {
                    at = end + 1;
                    continue;
                }
                let mut frame = Vec::with_capacity(line.len() + st.len() + 64);
                if let Some(t) = t {
                    let _ = writeln!(frame, "id: {t}");
                }
                frame.extend_from_slice(b"event: second\ndata: {\"status\":");
                frame.extend_from_slice(st.as_bytes());
                frame.extend_from_slice(b",\"second\":");
                frame.extend_from_slice(line);
                if dropped > 0 {
                    let _ = write!(frame, ",\"dropped\":{dropped}");
                }
                frame.extend_from_slice(b"}\n\n");
                if !c.room(frame.len()) {
                    if !caught_up {
                        more = true; // history waits for room
                        break;
                    }
                    dropped += 1; // a live client that fell behind loses this second
                } else {
                    c.push(&frame);
                    dropped = 0;
                    sent_second = true;
                }
                at = end + 1;
            }
            offset += at as u64;
            if at < whole {
                more = true;
            }
        }
        if !more {
            caught_up = true;
        }
        if st != last_status && !sent_second {
            let frame = format!("event: status\ndata: {{\"status\":{st}}}\n\n");
            if c.room(frame.len()) {
                c.push(frame.as_bytes());
                last_status = st.clone();
            }
        } else if sent_second {
            last_status = st.clone();
        }
        if done && caught_up && !more {
            // A final status is written after the engine's last line: all is read.
            let frame = format!("event: end\ndata: {{\"status\":{st}}}\n\n");
            c.pending.extend_from_slice(frame.as_bytes());
            ending = Some(Instant::now());
            continue;
        }
        if c.last_frame.elapsed() >= HEARTBEAT && c.room(16) {
            c.push(b": heartbeat\n\n");
        }
        if !more || !c.pending.is_empty() {
            std::thread::sleep(TICK);
        }
    }
}
