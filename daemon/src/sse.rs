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
/// The socket's send buffer asked of the kernel (which doubles it).
const SNDBUF: libc::c_int = 32 * 1024;
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

fn set_sndbuf(s: &TcpStream, n: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket, and a c_int option value of the size given.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&n as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
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
    // The kernel's side bounded too: left to grow, a loopback socket's send
    // buffer took 400 KiB of frames a client never read (the unit test below).
    let _ = set_sndbuf(&c.stream, SNDBUF);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn status_json(state: &str) -> String {
        serde_json::json!({
            "state": state, "run_id": "20261203-000000-abcd", "name": "t", "pid": null,
            "started_at": null, "updated_at": "2026-12-03T00:00:00Z", "ended_at": null,
            "progress": {"elapsed_s": 0.0, "duration_s": 1.0, "requests": 0, "errors": 0,
                         "rps": 0.0, "p99_ms": null, "vus": 0},
            "exit_code": null, "error": null
        })
        .to_string()
    }

    fn append(dir: &Path, from: u64, n: u64, pad: usize) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(LIVE_FILE))
            .unwrap();
        let fill = "x".repeat(pad);
        for t in from..from + n {
            writeln!(f, "{{\"t\":{t},\"fill\":\"{fill}\"}}").unwrap();
        }
    }

    /// Reads what arrives until the stream has been quiet for `quiet`.
    fn drain(s: &mut TcpStream, quiet: Duration) -> String {
        s.set_read_timeout(Some(quiet)).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn a_client_that_stops_reading_loses_seconds_not_the_daemons_memory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("status.json"), status_json("running")).unwrap();
        append(dir.path(), 0, 1, 10);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let path = dir.path().to_path_buf();
        let serving = std::thread::spawn(move || serve(server, path, None));
        let first = drain(&mut client, Duration::from_millis(800));
        assert!(first.contains("id: 0\nevent: second\n"), "{first}");
        // The client stops reading while 1000 seconds of 1 KiB arrive: far
        // more than the 64 KiB pending plus what the sockets hold (~290 KB
        // arrived here: the kernel buffers of both ends and the pending). (The
        // daemon reads at most 64 KiB of the file a tick: 16 ticks, 3.2 s.)
        append(dir.path(), 1, 1000, 1024);
        std::thread::sleep(Duration::from_secs(5));
        let behind = drain(&mut client, Duration::from_millis(800));
        assert!(
            behind.len() < 1000 * 1024 / 2,
            "{} bytes: the daemon buffered what the client did not take",
            behind.len()
        );
        // The next second that fits says how many were skipped.
        append(dir.path(), 1001, 1, 10);
        let next = drain(&mut client, Duration::from_millis(800));
        assert!(next.contains("id: 1001\n"), "{next}");
        assert!(next.contains("\"dropped\":"), "{next}");
        // The run ends: an end event, and the stream closes.
        std::fs::write(dir.path().join("status.json"), status_json("finished")).unwrap();
        let end = drain(&mut client, Duration::from_secs(2));
        assert!(end.contains("event: end\n"), "{end}");
        serving.join().unwrap();
    }

    #[test]
    fn a_new_client_gets_the_history_whole_and_resumes_after_its_last_id() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("status.json"), status_json("finished")).unwrap();
        append(dir.path(), 0, 300, 1024); // more than one pending buffer's worth
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        for (resume, first) in [(None, 0), (Some(250), 251)] {
            let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            let path = dir.path().to_path_buf();
            let serving = std::thread::spawn(move || serve(server, path, resume));
            let text = drain(&mut client, Duration::from_secs(3));
            serving.join().unwrap();
            let ids: Vec<u64> = text
                .lines()
                .filter_map(|l| l.strip_prefix("id: ")?.parse().ok())
                .collect();
            assert_eq!(ids, (first..300).collect::<Vec<_>>());
            assert!(!text.contains("dropped"));
            assert!(text.ends_with("\n\n") && text.contains("event: end\n"));
        }
    }
}
