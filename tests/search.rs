//! Capacity search (issue #32) against targets whose limit is known: a
//! server that serves one request at a time with a fixed service time
//! (capacity 1/service time; past it latency grows without bound), and
//! the answers a search gives at its ends.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use userflux::{bin, load_run, read_request};
use userflux_engine::run::search::Verdict;

/// A keep-alive server on 127.0.0.1:0 that serves one request at a time,
/// each taking `service` (a lock held while it sleeps): its capacity is
/// 1/service requests per second, whatever the connections.
fn one_at_a_time(service: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lock = Arc::new(Mutex::new(()));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
                while read_request(&mut s) {
                    let guard = lock.lock().unwrap();
                    std::thread::sleep(service);
                    drop(guard);
                    if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Searches run one at a time: a search measures latency, and another
/// search on the same two cores would be its noise.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A server that serves one request at a time in `service` and answers
/// 503 at once to a request that comes while another is served: errors
/// start where arrivals come closer than `service` (1/service per second).
fn one_at_a_time_or_503(service: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lock = Arc::new(Mutex::new(()));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
                while read_request(&mut s) {
                    let reply: &[u8] = match lock.try_lock() {
                        Ok(guard) => {
                            std::thread::sleep(service);
                            drop(guard);
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                        }
                        Err(_) => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
                    };
                    if s.write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn search(dir: &Path, args: &[&str]) -> (i32, String) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(bin("userflux-engine"))
        .arg("search")
        .args(args)
        .arg("--run-dir")
        .arg(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_rate_found_is_the_servers_capacity_within_the_precision() {
    // 4 ms a request: 250 req/s at most (a little less, with the sleeps'
    // overshoot); past it the queue, and the corrected p99, grow.
    let port = one_at_a_time(Duration::from_millis(4));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (code, text) = search(
        &dir,
        &[
            &format!("http://127.0.0.1:{port}/"),
            "--threshold",
            "http_req_duration: p(95)<80",
            "--from",
            "40",
            "--max",
            "2000",
            "--precision",
            "0.1",
            "--trial",
            "1500ms",
            "--warmup",
            "0s",
            "--cooldown",
            "300ms",
            "--confirm",
            "2s",
            "-t",
            "1",
        ],
    );
    let (s, _) = load_run(&dir);
    let r = s.search.as_ref().expect("the search's result");
    let [Some(pass), Some(fail)] = r.bracket else {
        panic!("a bracket: {r:?}")
    };
    // A rate just under the limit may pass a short trial and not a longer
    // one (its queue grows with the machine's jitter): then the search
    // says so and exits 99, which is as true as a confirmation.
    match r.trials.last().unwrap().verdict {
        Verdict::Confirmed => {
            assert_eq!((code, r.rate), (0, Some(pass)), "{text}");
            assert!(
                text.contains("sustains") && text.contains("within SLO"),
                "{text}"
            );
        }
        Verdict::NotConfirmed => {
            assert_eq!((code, r.rate), (99, None), "{text}");
            assert!(
                text.contains("passed its trial but not the 2s confirmation"),
                "{text}"
            );
        }
        v => panic!("{v:?}: {text}"),
    }
    // it passes at the rate found and fails within 2 × precision above it
    assert!(fail <= pass * (1.0 + 2.0 * 0.1), "{r:?}");
    // the true limit is 250/s: what passed is at most that, and near it
    assert!((120.0..=255.0).contains(&pass), "{pass}: {text}");
    // every trial is a run directory; the verdicts match the thresholds
    for t in &r.trials {
        assert!(dir.join(&t.run).join("summary.json").is_file(), "{}", t.run);
        let (ts, _) = load_run(&dir.join(&t.run));
        let ok = ts.thresholds.iter().all(|x| x.ok);
        if t.verdict == Verdict::Pass {
            assert!(ok && t.dropped == 0, "{t:?}");
        }
    }
    // at most ⌈log2(2000/40)⌉ + ⌈log2(1/0.1)⌉ + 1 search trials, and the confirmation
    assert!(r.trials.len() <= 6 + 4 + 1 + 1, "{} trials", r.trials.len());
}

#[test]
fn a_search_whose_first_rate_fails_exits_99_and_says_so() {
    let port = one_at_a_time(Duration::from_millis(20)); // 50 req/s
    let tmp = tempfile::tempdir().unwrap();
    let (code, text) = search(
        &tmp.path().join("s"),
        &[
            &format!("http://127.0.0.1:{port}/"),
            "--threshold",
            "http_req_duration: p(99)<30",
            "--from",
            "200",
            "--trial",
            "1s",
            "--warmup",
            "0s",
            "--cooldown",
            "0s",
            "-t",
            "1",
        ],
    );
    assert_eq!(code, 99, "{text}");
    assert!(
        text.contains("even the first, 200 req/s, fails the SLO"),
        "{text}"
    );
}

/// Sends dropped because every connection is busy say so, and here whose
/// limit it was: the target's latency held all the connections.
#[test]
fn dropped_sends_say_whose_limit_it_was() {
    // a slow target: 2 connections against 10 ms one at a time, at 400/s
    let port = one_at_a_time(Duration::from_millis(10));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (code, text) = search(
        &dir,
        &[
            &format!("http://127.0.0.1:{port}/"),
            "--threshold",
            "http_req_failed: rate<0.5",
            "--from",
            "400",
            "-c",
            "2",
            "--trial",
            "1s",
            "--warmup",
            "0s",
            "--cooldown",
            "0s",
            "-t",
            "1",
        ],
    );
    assert_eq!(code, 99, "{text}");
    let (s, _) = load_run(&dir);
    let t = &s.search.as_ref().unwrap().trials[0];
    assert!(!t.generator_limit && t.dropped > 0, "{t:?}");
    assert!(
        text.contains("all 2 VUs busy (connections; stream slots over HTTP/2)"),
        "{text}"
    );
    // (the generator's side is judged from the same figures: a unit test
    // in engine/src/run/search.rs; a test server this machine can load past
    // the generator's limit would be the target's limit first)
}

/// The budget bounds the search: it ends with the bracket so far.
#[test]
fn the_budget_is_honoured() {
    let port = one_at_a_time(Duration::from_millis(1));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (code, text) = search(
        &dir,
        &[
            &format!("http://127.0.0.1:{port}/"),
            "--threshold",
            "http_req_duration: p(99)<100",
            "--from",
            "20",
            "--trial",
            "1s",
            "--warmup",
            "0s",
            "--cooldown",
            "0s",
            "--budget",
            "2500ms",
            "-t",
            "1",
        ],
    );
    let (s, _) = load_run(&dir);
    let r = s.search.as_ref().unwrap();
    // two 1 s trials fit in 2.5 s, a third does not
    assert_eq!(r.trials.len(), 2, "{text}");
    assert!(r.outcome.starts_with("the budget ran out"), "{}", r.outcome);
    // the bracket so far is no result: no rate, exit 99
    assert_eq!((code, r.rate), (99, None), "{text}");
}

#[test]
fn bad_search_flags_name_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, want) in [
        (vec!["http://127.0.0.1:1/"], "needs an SLO"),
        (
            vec!["http://127.0.0.1:1/", "--threshold", "p99<5"],
            "METRIC: EXPRESSION",
        ),
        (
            vec![
                "http://127.0.0.1:1/",
                "--threshold",
                "http_req_duration: p(99)<5",
                "--precision",
                "7",
            ],
            "--precision",
        ),
        (
            vec![
                "http://127.0.0.1:1/",
                "--threshold",
                "http_req_duration: p(99)<5",
                "--from",
                "500",
                "--max",
                "100",
            ],
            "--from: 500 is above --max 100",
        ),
        (
            vec![
                "http://127.0.0.1:1/",
                "--threshold",
                "http_req_duration: nonsense",
            ],
            "http_req_duration",
        ),
    ] {
        let (code, text) = search(&tmp.path().join("x"), &args);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(text.contains(want), "{args:?}: {text}");
    }
}

/// `--vus`: the most VUs (closed model) within the SLO. Against a server
/// that serves one request at a time in 5 ms, N VUs wait about N × 5 ms
/// each, so p(95) < 42 ms holds up to about 8 VUs.
#[test]
fn a_vu_search_finds_how_many_users() {
    let port = one_at_a_time(Duration::from_millis(5));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (code, text) = search(
        &dir,
        &[
            &format!("http://127.0.0.1:{port}/"),
            "--vus",
            "--threshold",
            "http_req_duration: p(95)<42",
            "--from",
            "1",
            "--max",
            "64",
            "--precision",
            "0.1",
            "--trial",
            "1s",
            "--warmup",
            "0s",
            "--cooldown",
            "200ms",
            "--confirm",
            "0s",
            "-t",
            "1",
        ],
    );
    assert_eq!(code, 0, "{text}");
    let (s, _) = load_run(&dir);
    let r = s.search.as_ref().unwrap();
    let [Some(pass), Some(fail)] = r.bracket else {
        panic!("{r:?}")
    };
    // whole VU counts: it stops when no count lies between the ends
    assert_eq!(pass.fract(), 0.0);
    assert!(fail - pass <= (0.1 * pass).max(1.0), "{r:?}");
    assert!((3.0..=9.0).contains(&pass), "{pass}: {text}");
    assert!(r.trials.iter().all(|t| t.vus.is_some()));
    assert!(text.contains("VUs within SLO"), "{text}");
}

/// SIGINT ends the trial under way and the search: the cut-short trial is
/// not judged (it says nothing of the target), the answer is the bracket
/// so far, and the search's files are complete.
#[test]
fn a_signal_ends_the_search_with_what_it_found() {
    let port = one_at_a_time(Duration::from_millis(1));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let child = Command::new(bin("userflux-engine"))
        .args(["search", &format!("http://127.0.0.1:{port}/")])
        .args(["--threshold", "http_req_failed: rate<0.5", "--from", "20"])
        .args([
            "--trial",
            "1s",
            "--warmup",
            "0s",
            "--cooldown",
            "0s",
            "-t",
            "1",
            "-q",
        ])
        .arg("--run-dir")
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // in the second trial (40/s)
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    userflux::assert_ok(&out);
    let (s, st) = load_run(&dir);
    let r = s.search.as_ref().unwrap();
    let last = r.trials.last().unwrap();
    assert_eq!(last.verdict, Verdict::Stopped, "{r:?}");
    assert!(
        r.outcome.starts_with("stopped by a signal"),
        "{}",
        r.outcome
    );
    // the stopped trial is in no end of the bracket
    assert_ne!(r.bracket[1], Some(last.rate));
    assert!(st.exit_code.is_some(), "the search's status is final");
}

/// A target that answers nothing, or only errors, is never "within SLO"
/// (a latency threshold with nothing measured proves nothing; errors past
/// search.max_error_rate fail a trial whatever the thresholds say).
#[test]
fn a_target_that_is_down_or_only_fails_never_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let down = format!("http://127.0.0.1:{}/", userflux::closed_port());
    let failing = userflux::Scripted::start(Arc::new(|_: &userflux::Seen| {
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".into()
    }));
    for (i, url) in [down, failing.url()].iter().enumerate() {
        let dir = tmp.path().join(format!("s{i}"));
        let (code, text) = search(
            &dir,
            &[
                url,
                "--threshold",
                "http_req_duration: p(99)<100",
                "--from",
                "20",
                "--trial",
                "1s",
                "--warmup",
                "0s",
                "--cooldown",
                "0s",
                "-t",
                "1",
            ],
        );
        assert_eq!(code, 99, "{text}");
        let (s, _) = load_run(&dir);
        let r = s.search.as_ref().unwrap();
        assert_eq!((r.rate, r.bracket), (None, [None, Some(20.0)]), "{text}");
        assert!(
            text.contains("even the first, 20 req/s, fails the SLO"),
            "{text}"
        );
        let why = r.trials[0].why.clone().unwrap_or_default();
        let want = if i == 0 {
            "no response at all"
        } else {
            "max_error_rate"
        };
        assert!(why.contains(want), "{why}");
    }
}

/// A target whose errors start above a rate (it sheds what comes while it
/// is busy: 4 ms a request, so errors grow past ~250/s): the search finds
/// where the error-rate SLO breaks, within the precision.
#[test]
fn the_rate_found_is_where_errors_start() {
    let port = one_at_a_time_or_503(Duration::from_millis(4));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (_, text) = search(
        &dir,
        &[
            &format!("http://127.0.0.1:{port}/"),
            "--threshold",
            "http_req_failed: rate<0.05",
            "--max-error-rate",
            "1",
            "--from",
            "25",
            "--max",
            "3200",
            "--precision",
            "0.1",
            "--trial",
            "1s",
            "--warmup",
            "0s",
            "--cooldown",
            "100ms",
            "--confirm",
            "0s",
            "-t",
            "1",
        ],
    );
    let (s, _) = load_run(&dir);
    let r = s.search.as_ref().unwrap();
    let [Some(pass), Some(fail)] = r.bracket else {
        panic!("{r:?}\n{text}")
    };
    assert!(fail - pass <= 0.1 * pass + 1e-9, "{r:?}");
    assert!((25.0..=260.0).contains(&pass), "{pass}: {text}");
    let last_fail = r.trials.iter().rev().find(|t| t.rate == fail).unwrap();
    assert!(
        last_fail
            .why
            .as_deref()
            .unwrap_or("")
            .contains("http_req_failed"),
        "{last_fail:?}"
    );
    assert!(last_fail.error_rate > 0.0);
}
