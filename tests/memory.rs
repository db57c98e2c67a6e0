//! Memory bounds of many endpoints (issue #27): the real engine, 1,000
//! endpoints (then 2,000) with one VU each on 2 workers, against the demo
//! gateway's `/api/users` (a few milliseconds a response, a Server-Timing
//! header with two metrics) for 2 s; its peak RSS, from `wait4`, stays
//! under 300 MB (600 MB). Peak memory is set by what the run keeps per
//! endpoint, not by timing, so it is the same on a loaded machine; the
//! run's length is a bench's business (`benches/endpoints.sh`).

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use userflux::{Gateway, engine};

/// Runs `n` endpoints on 2 workers for 2 s; the engine's peak RSS in MB.
fn peak_rss_mb(gw: &Gateway, n: usize, dir: &std::path::Path) -> f64 {
    let endpoints: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"name":"e{i}","path":"/api/users"}}"#))
        .collect();
    let config = format!(
        r#"{{"target":"{}","stages":[{{"duration":"0s","target":{n}}},{{"duration":"2s","target":{n}}}],"endpoints":[{}]}}"#,
        gw.url(),
        endpoints.join(",")
    );
    let file = dir.join(format!("c{n}.json"));
    std::fs::write(&file, config).unwrap();
    let log = std::fs::File::create(dir.join(format!("stderr{n}"))).unwrap();
    // Reaped by wait4 below, which also gives this child's own peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = engine()
        .args(["run", "-q", "-t", "2", "--config"])
        .arg(&file)
        .arg("--runs-dir")
        .arg(dir.join("runs"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn the engine");
    let mut status = 0;
    // SAFETY: rusage is plain integers and timevals, for which all-zero is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: `pid` is our own unreaped child; both pointers are to live locals.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    let exit = std::process::ExitStatus::from_raw(status);
    let stderr = std::fs::read_to_string(dir.join(format!("stderr{n}"))).unwrap();
    assert!(exit.success(), "{n} endpoints: {exit}: {stderr}");
    usage.ru_maxrss as f64 / 1024.0 // KB on Linux
}

#[test]
fn many_endpoints_against_millisecond_latencies_stay_within_their_memory_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    for (n, bound_mb) in [(1000, 300.0), (2000, 600.0)] {
        let mb = peak_rss_mb(&gw, n, tmp.path());
        eprintln!("{n} endpoints on 2 workers: peak RSS {mb:.1} MB");
        assert!(
            mb < bound_mb,
            "{n} endpoints on 2 workers peaked at {mb:.1} MB, over the {bound_mb} MB bound"
        );
    }
}
