//! Faults around a run: the target restarting mid-run, and a stalled client
//! of the daemon.

use std::process::{Command, Stdio};
use std::time::Duration;
use userflux::{Gateway, bin, read_json};
use userflux_engine::summary::{RunState, Summary};

#[test]
fn a_target_restarting_mid_run_counts_the_gap_and_connections_come_back() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let addr = gw.addr;
    let dir = tmp.path().join("run");
    let child = Command::new(bin("userflux-engine"))
        .args([
            "run",
            "-q",
            "-c",
            "4",
            "-d",
            "5s",
            "--threads",
            "1",
            "--run-dir",
        ])
        .arg(&dir)
        .arg(format!("http://{addr}/api/users"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    drop(gw); // the target goes away...
    std::thread::sleep(Duration::from_millis(1000));
    let _back = Gateway::start_on(&addr.to_string(), None, tmp.path()); // ...and comes back on the same port
    let out = child.wait_with_output().unwrap();
    userflux::assert_ok(&out);
    let s: Summary = serde_json::from_value(read_json(&dir.join("summary.json"))).unwrap();
    assert_eq!(s.state, RunState::Finished);
    assert!(s.totals.errors > 0, "the gap is counted");
    let kinds: Vec<&str> = s.totals.error_kinds.keys().map(String::as_str).collect();
    assert!(
        kinds
            .iter()
            .all(|k| ["connect", "read", "write"].contains(k)),
        "{kinds:?}"
    );
    let per_second: Vec<u64> = s.timeline.iter().map(|t| t.requests - t.errors).collect();
    assert!(
        per_second[0] > 100,
        "load before the restart: {per_second:?}"
    );
    assert!(
        per_second.iter().any(|&ok| ok < 10),
        "a second of the gap has (nearly) no successes: {per_second:?}"
    );
    assert!(
        per_second[4] > 100,
        "connections came back after the restart: {per_second:?}"
    );
}

#[test]
fn a_full_disk_at_the_end_fails_the_run_with_a_clear_error_and_a_valid_status() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let dir = tmp.path().join("run");
    // 4 KiB per file: config.json and status.json fit, summary.json (with its
    // histograms and timeline) does not.
    let script = format!(
        "ulimit -f 4 && exec {} run -q -c 2 -d 1s --threads 1 --run-dir {} {}/api/users",
        bin("userflux-engine").display(),
        dir.display(),
        gw.url()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("summary.json"), "{stderr}");
    let st: userflux_engine::status::Status =
        serde_json::from_value(read_json(&dir.join("status.json"))).unwrap();
    assert_eq!(st.state, RunState::Failed);
    let e = st.error.unwrap();
    assert_eq!(e.kind, "io");
    assert!(
        e.message.contains("cannot write summary.json"),
        "{}",
        e.message
    );
    assert!(!dir.join("summary.json.tmp").exists());
}
