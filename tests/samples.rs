//! samples.ndjson end to end: the real engine writing from several workers
//! at once, killed mid-run, and stopped by a file size limit.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use userflux::{Gateway, bin, read_json};
use userflux_engine::samples::{SampleLine, recover};
use userflux_engine::summary::Summary;

fn engine_args(gw: &Gateway, dir: &Path, secs: u32, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["run", "-q", "--threads", "2", "-c", "16", "-d"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.push(format!("{secs}s"));
    a.push("--run-dir".into());
    a.push(dir.display().to_string());
    a.extend(extra.iter().map(|s| s.to_string()));
    a.push(format!("{}/health", gw.url()));
    a
}

fn summary(dir: &Path) -> Summary {
    serde_json::from_value(read_json(&dir.join("summary.json"))).unwrap()
}

fn lines(dir: &Path) -> Vec<SampleLine> {
    let bytes = std::fs::read(dir.join("samples.ndjson")).unwrap();
    assert!(!bytes.contains(&0), "a finished file has no NUL bytes");
    assert!(bytes.is_empty() || bytes.ends_with(b"\n"));
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| {
            assert!(
                !l.iter().all(u8::is_ascii_whitespace) || l.is_empty(),
                "blank line"
            );
            !l.is_empty()
        })
        .map(|l| {
            serde_json::from_slice(l)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(l)))
        })
        .collect()
}

#[test]
fn at_rate_1_every_request_has_exactly_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let dir = tmp.path().join("run");
    let out = Command::new(bin("userflux-engine"))
        .args(engine_args(&gw, &dir, 2, &["--samples"]))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&dir);
    let smp = s.samples.as_ref().expect("samples in the summary");
    let got = lines(&dir);
    assert!(s.totals.requests > 1000);
    assert_eq!(got.len() as u64, s.totals.requests);
    assert_eq!(smp.written, s.totals.requests);
    assert_eq!(
        smp.bytes,
        std::fs::metadata(dir.join("samples.ndjson")).unwrap().len()
    );
    assert!(smp.error.is_none());
    // both workers wrote, and each line is a real request
    assert!(got.iter().any(|l| l.w == 0) && got.iter().any(|l| l.w == 1));
    for l in &got {
        assert_eq!(
            (l.ep.as_str(), l.st, l.err.as_deref()),
            ("default", Some(200), None),
            "{l:?}"
        );
        assert!(
            l.lat.is_some_and(|lat| lat > 0) && l.t <= 3_000_000 && l.b > 0,
            "{l:?}"
        );
    }
    assert_eq!(
        got.iter().map(|l| l.b).sum::<u64>(),
        s.totals.bytes_in,
        "per-line bytes add up"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("Samples: {} lines", smp.written))
    );
}

#[test]
fn at_rate_0_1_about_a_tenth_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let dir = tmp.path().join("run");
    let args = engine_args(&gw, &dir, 2, &["--sample-rate", "0.1"]);
    let out = Command::new(bin("userflux-engine"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&dir);
    let n = s.totals.requests as f64;
    let got = lines(&dir).len() as f64;
    let sd = (n * 0.1 * 0.9).sqrt();
    assert!(
        (got - n * 0.1).abs() < 5.0 * sd,
        "{got} lines of {n} requests at rate 0.1"
    );
    assert_eq!(s.samples.unwrap().written as f64, got);
}

#[test]
fn after_kill_9_the_reader_rule_recovers_the_complete_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let dir = tmp.path().join("run");
    let mut child = Command::new(bin("userflux-engine"))
        .args(engine_args(&gw, &dir, 30, &["--samples"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let bytes = std::fs::read(dir.join("samples.ndjson")).unwrap();
    let (complete, incomplete) = recover(&bytes);
    assert!(complete.len() > 1000, "{} lines", complete.len());
    assert!(
        incomplete <= 2,
        "at most one damaged line per worker, got {incomplete}"
    );
    for l in &complete {
        let s: SampleLine = serde_json::from_slice(l)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(l)));
        assert_eq!(s.st, Some(200));
    }
}

#[test]
fn a_file_size_limit_stops_sampling_with_an_error_and_keeps_the_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let dir = tmp.path().join("run");
    let args = engine_args(&gw, &dir, 2, &["--samples"]).join(" ");
    // 1 MiB per file: a few thousand lines fit, the summary (a few KB) too.
    let script = format!(
        "ulimit -f 1024 && exec {} {args}",
        bin("userflux-engine").display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&dir);
    let smp = s.samples.as_ref().unwrap();
    let err = smp.error.as_ref().expect("an error kind in the summary");
    assert_eq!(err.kind, "file_too_large", "{err:?}");
    let got = lines(&dir);
    assert_eq!(got.len() as u64, smp.written);
    assert!(smp.written < s.totals.requests, "sampling stopped early");
    assert!(smp.bytes <= 1024 * 1024);
    let logs = std::fs::read_to_string(dir.join("logs.txt")).unwrap();
    assert!(
        logs.contains("sampling stopped early (file_too_large)"),
        "{logs}"
    );
}
