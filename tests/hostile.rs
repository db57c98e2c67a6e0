//! Hostile targets: a scripted server on 127.0.0.1:0 misbehaves in one way
//! per case, and an engine run against it must end on schedule, count the
//! failure under its documented error kind, reopen the connection (more
//! failures than VUs), keep memory bounded, and write a valid summary.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use userflux::{bin, read_json, read_request};
use userflux_engine::summary::{RunState, Summary};

/// A server whose every connection runs `behave`; stops accepting on drop.
struct Hostile {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    fn start(behave: fn(TcpStream)) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                        std::thread::spawn(move || behave(s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Hostile { port, stop }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Answers every request on the connection with `bytes`, then keeps it open.
fn answer_each(mut s: TcpStream, bytes: &[u8]) {
    while read_request(&mut s) {
        if s.write_all(bytes).is_err() {
            return;
        }
    }
}

const SECS: u64 = 2;
const VUS: u64 = 2;

/// Runs the engine against `h`; checks the run ended on time with a valid
/// summary, bounded memory and reconnects; returns the summary.
fn run_against(h: &Hostile) -> Summary {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("c.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"target": "http://127.0.0.1:{}", "threads": 1, "graceful_stop": "500ms",
                "timeouts": {{"connect": "1s", "request": "500ms"}},
                "stages": [{{"duration": "0s", "target": {VUS}}}, {{"duration": "{SECS}s", "target": {VUS}}}],
                "endpoints": [{{"name": "e", "path": "/"}}]}}"#,
            h.port
        ),
    )
    .unwrap();
    let dir = tmp.path().join("run");
    let t0 = Instant::now();
    let mut child = Command::new(bin("userflux-engine"))
        .args(["run", "-q", "--config"])
        .arg(&config)
        .arg("--run-dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // VmHWM (peak RSS since exec) read while it runs; the last reading wins.
    let mut max_rss_kib = 0u64;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        let text =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        if let Some(kib) = text.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
            max_rss_kib = max_rss_kib.max(
                kib.trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse()
                    .unwrap_or(0),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = t0.elapsed();
    assert_eq!(status.code(), Some(0), "the engine exited {status:?}");
    assert!(max_rss_kib > 0, "VmHWM was read");
    assert!(
        took < Duration::from_secs(SECS + 3),
        "ended on schedule: took {took:?}"
    );
    assert!(
        max_rss_kib < 64 * 1024,
        "memory bounded: peak RSS {max_rss_kib} KiB"
    );
    let s: Summary =
        serde_json::from_value(read_json(&dir.join("summary.json"))).expect("a valid summary");
    assert_eq!(s.state, RunState::Finished);
    assert!(
        s.totals.errors > VUS,
        "connections were reopened: only {} errors",
        s.totals.errors
    );
    s
}

fn kinds(s: &Summary) -> Vec<(&str, u64)> {
    s.totals
        .error_kinds
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect()
}

/// Asserts every failure is of `kind` (and there were failures).
fn only(s: &Summary, kind: &str) {
    assert_eq!(
        s.totals.error_kinds.get(kind).copied(),
        Some(s.totals.errors),
        "{:?}",
        kinds(s)
    );
}

#[test]
fn malformed_status_line() {
    let s = run_against(&Hostile::start(|s| {
        answer_each(s, b"HTTX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    }));
    only(&s, "parse");
}

#[test]
fn invalid_header_bytes() {
    let s = run_against(&Hostile::start(|s| {
        answer_each(
            s,
            b"HTTP/1.1 200 OK\r\nBad\x01Name: x\r\nContent-Length: 0\r\n\r\n",
        )
    }));
    only(&s, "parse");
}

#[test]
fn a_header_block_over_the_limit() {
    let s = run_against(&Hostile::start(|mut s| {
        while read_request(&mut s) {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
            let filler =
                b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
            for _ in 0..2000 {
                if s.write_all(filler).is_err() {
                    return;
                }
            }
        }
    }));
    only(&s, "parse");
}

#[test]
fn content_length_larger_than_the_body_then_close() {
    let s = run_against(&Hostile::start(|mut s| {
        if read_request(&mut s) {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
        }
    }));
    only(&s, "read");
}

#[test]
fn conflicting_content_lengths() {
    let s = run_against(&Hostile::start(|s| {
        answer_each(
            s,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        )
    }));
    only(&s, "parse");
}

#[test]
fn chunk_size_overflow_and_garbage() {
    let s = run_against(&Hostile::start(|s| {
        answer_each(
            s,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
        )
    }));
    only(&s, "parse");
    let s = run_against(&Hostile::start(|s| {
        answer_each(
            s,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        )
    }));
    only(&s, "parse");
}

#[test]
fn a_body_that_never_ends() {
    let s = run_against(&Hostile::start(|mut s| {
        if read_request(&mut s) {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n");
            let chunk = [b'x'; 4096];
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(SECS + 2) && s.write_all(&chunk).is_ok() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }));
    only(&s, "timeout");
}

/// Issue #27: a server that sends faster than the worker reads kept the
/// worker reading that one connection (every read a full buffer), so no
/// timer fired and no other connection was served until it stopped. Each
/// connection now has a read budget per turn of the loop.
#[test]
fn a_body_streamed_faster_than_it_is_read() {
    let s = run_against(&Hostile::start(|mut s| {
        if read_request(&mut s) {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n");
            let chunk = vec![b'x'; 1 << 20];
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(SECS + 8) && s.write_all(&chunk).is_ok() {}
        }
    }));
    only(&s, "timeout");
}

#[test]
fn a_slowloris_response_dripping_a_byte_at_a_time() {
    let s = run_against(&Hostile::start(|mut s| {
        if read_request(&mut s) {
            for b in b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" {
                if s.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }));
    only(&s, "timeout");
}

#[test]
fn reset_in_the_middle_of_a_response() {
    let s = run_against(&Hostile::start(|mut s| {
        if read_request(&mut s) {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
            std::thread::sleep(Duration::from_millis(20));
            // SO_LINGER 0: the close sends RST instead of FIN
            let _ = userflux_engine::sys::set_linger(&s, Some(Duration::ZERO));
        }
    }));
    only(&s, "read");
}

#[test]
fn a_flood_of_interim_responses() {
    let s = run_against(&Hostile::start(|mut s| {
        if read_request(&mut s) {
            for _ in 0..1000 {
                if s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
                    return;
                }
            }
        }
    }));
    only(&s, "parse");
}

#[test]
fn bytes_sent_before_any_request() {
    let s = run_against(&Hostile::start(|mut s| {
        let _ = s.write_all(b"garbage before the request\r\n\r\n");
        answer_each(s, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }));
    assert!(
        s.totals.error_kinds.get("parse").copied().unwrap_or(0) > 0,
        "{:?}",
        kinds(&s)
    );
}

#[test]
fn an_http_0_9_answer() {
    let s = run_against(&Hostile::start(|mut s| {
        if read_request(&mut s) {
            let _ = s.write_all(b"<html>hello from 1991</html>\n");
        }
    }));
    only(&s, "parse");
}

#[test]
fn a_server_that_accepts_and_never_answers() {
    let s = run_against(&Hostile::start(|mut s| {
        let t0 = Instant::now();
        let mut b = [0u8; 1024];
        while t0.elapsed() < Duration::from_secs(SECS + 2) {
            match s.read(&mut b) {
                Ok(0) => return,
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }));
    only(&s, "timeout");
}

#[test]
fn a_server_that_closes_every_connection_at_once() {
    let s = run_against(&Hostile::start(drop));
    let counted: u64 = ["read", "write"]
        .iter()
        .filter_map(|k| s.totals.error_kinds.get(*k))
        .sum();
    assert_eq!(counted, s.totals.errors, "{:?}", kinds(&s));
    // backoff keeps this from becoming a busy loop
    assert!(
        s.totals.errors < 2_000,
        "{} attempts in {SECS} s",
        s.totals.errors
    );
}
