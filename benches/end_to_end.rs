//! End-to-end throughput, as users can reproduce it without the shared kit:
//! a minimal keep-alive server in this process, pinned to the last core,
//! and the release `userflux-engine` pinned to core 0 with one thread; when
//! `wrk` is installed the two generators run alternately (A B A B …) so
//! machine noise hits both alike. Prints requests/s, CPU µs per request and
//! the ratio. `cargo build --release && cargo bench --bench end_to_end`
//! (`E2E_CONNS`, `E2E_SECS`, `E2E_ROUNDS` change the defaults 64, 5, 3).

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Answers every request head (ended by a blank line) with RESPONSE.
fn serve(mut listener: TcpListener) {
    let mut poll = Poll::new().unwrap();
    poll.registry()
        .register(&mut listener, Token(usize::MAX), Interest::READABLE)
        .unwrap();
    let mut conns: Vec<Option<(mio::net::TcpStream, usize)>> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    loop {
        poll.poll(&mut events, None).unwrap();
        for ev in events.iter() {
            if ev.token() == Token(usize::MAX) {
                while let Ok((mut s, _)) = listener.accept() {
                    let _ = s.set_nodelay(true);
                    let id = conns.len();
                    poll.registry()
                        .register(&mut s, Token(id), Interest::READABLE)
                        .unwrap();
                    conns.push(Some((s, 0)));
                }
                continue;
            }
            let Some((s, matched)) = conns[ev.token().0].as_mut() else {
                continue;
            };
            loop {
                match s.read(&mut buf) {
                    Ok(0) => {
                        conns[ev.token().0] = None;
                        break;
                    }
                    Ok(n) => {
                        out.clear();
                        // Count "\r\n\r\n" across reads with a tiny state machine.
                        for &b in &buf[..n] {
                            *matched = match (*matched, b) {
                                (0 | 2, b'\r') => *matched + 1,
                                (1 | 3, b'\n') => *matched + 1,
                                (_, b'\r') => 1,
                                _ => 0,
                            };
                            if *matched == 4 {
                                *matched = 0;
                                out.extend_from_slice(RESPONSE);
                            }
                        }
                        if !out.is_empty() && s.write_all(&out).is_err() {
                            conns[ev.token().0] = None;
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs a generator pinned to core 0; returns (requests/s, CPU seconds).
fn measure(cmd: &mut Command, rps_of: impl Fn(&str) -> Option<f64>) -> (f64, f64) {
    let cpu0 = userflux_engine::sys::children_cpu_seconds();
    let out = cmd.output().expect("run the generator");
    let cpu = userflux_engine::sys::children_cpu_seconds() - cpu0;
    (
        rps_of(&String::from_utf8_lossy(&out.stdout)).unwrap_or(0.0),
        cpu,
    )
}

fn requests_per_sec(stdout: &str) -> Option<f64> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful: run only under bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let engine =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/userflux-engine");
    if !engine.exists() {
        eprintln!(
            "end_to_end: {} is not built; run `cargo build --release` first",
            engine.display()
        );
        return;
    }
    let (conns, secs, rounds) = (
        env("E2E_CONNS", 64),
        env("E2E_SECS", 5),
        env("E2E_ROUNDS", 3),
    );
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let server_core = cores.last().copied();
    std::thread::spawn(move || {
        if let Some(c) = server_core {
            core_affinity::set_for_current(c);
        }
        serve(listener)
    });
    std::thread::sleep(Duration::from_millis(100));
    let pin = |program: &str| {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", program]);
        c
    };
    let have_wrk = Command::new("wrk").arg("--version").output().is_ok();
    let tmp = std::env::temp_dir().join(format!("userflux-e2e-{}", std::process::id()));
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut e = pin(engine.to_str().unwrap());
        e.args([
            "run",
            &url,
            "-c",
            &conns.to_string(),
            "-d",
            &format!("{secs}s"),
            "--threads",
            "1",
            "-q",
            "--runs-dir",
        ])
        .arg(&tmp);
        ours.push(measure(&mut e, requests_per_sec));
        if have_wrk {
            let mut w = pin("wrk");
            w.args(["-t1", &format!("-c{conns}"), &format!("-d{secs}s"), &url]);
            theirs.push(measure(&mut w, requests_per_sec));
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let report = |name: &str, runs: &[(f64, f64)]| {
        let rps = median(runs.iter().map(|r| r.0).collect());
        let cpu_us = median(
            runs.iter()
                .map(|r| r.1 / (r.0 * secs as f64).max(1.0) * 1e6)
                .collect(),
        );
        println!(
            "{name:<9} requests/s median {rps:>10.0}   CPU per request {cpu_us:.2} µs   rounds {runs:?}"
        );
        rps
    };
    println!(
        "end_to_end: {conns} connections, {secs} s × {rounds} rounds, generator on core 0, server on core {:?}",
        server_core.map(|c| c.id)
    );
    let a = report("userflux", &ours);
    if have_wrk {
        let b = report("wrk", &theirs);
        let ratios: Vec<f64> = ours
            .iter()
            .zip(&theirs)
            .filter(|(_, w)| w.0 > 0.0)
            .map(|(u, w)| u.0 / w.0)
            .collect();
        println!(
            "userflux/wrk median ratio {:.3} (medians {:.3})",
            median(ratios),
            a / b
        );
    } else {
        println!("wrk is not installed: no comparison (apt-get install wrk)");
    }
}
