//! Beyond one machine (issue #18): one config run as 3 shard processes with
//! one start time, merged by `userfluxctl merge` into what one engine
//! would have measured; and what merge refuses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};
use userflux::{Gateway, bin, load_run};
use userflux_engine::status::Status;
use userflux_engine::summary::{RunState, Summary};

const CONFIG: &str = r#"{"name": "sharded", "threads": 1,
  "stages": [{"duration": "0s", "target": 7}, {"duration": "3s", "target": 7}],
  "samples": {"rate": 1.0},
  "thresholds": {"http_req_failed": ["rate<0.5"], "http_reqs": ["count>10"]},
  "endpoints": [
    {"name": "users", "path": "/api/users", "weight": 2},
    {"name": "products", "path": "/api/products/{{seq}}", "weight": 1, "expect": [200, 401]},
    {"name": "open", "path": "/health", "rate": 100, "pre_allocated_vus": 3, "max_vus": 6}]}"#;

fn rfc3339(t: SystemTime) -> String {
    humantime_like(t)
}

/// RFC 3339 in UTC with milliseconds, without a date crate.
fn humantime_like(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn shard(
    config: &Path,
    runs: &Path,
    i: u32,
    n: u32,
    start: &str,
    target: &str,
) -> std::process::Child {
    Command::new(bin("userflux-engine"))
        .args(["run", "-q", "--config"])
        .arg(config)
        .args([
            "--target",
            target,
            "--shard",
            &format!("{i}/{n}"),
            "--start-at",
            start,
        ])
        .arg("--run-dir")
        .arg(runs.join(format!("shard-{i}")))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn merge(args: &[&Path], extra: &[&str]) -> Output {
    let mut c = Command::new(bin("userfluxctl"));
    c.arg("merge").args(args).args(extra);
    c.output().unwrap()
}

/// Merges `dirs` into `out` through `userfluxctl merge`, which must succeed; the merged run.
fn merged_into<P: AsRef<Path>>(
    dirs: &[P],
    out: &Path,
) -> (Summary, userflux_engine::status::Status) {
    let dirs: Vec<&Path> = dirs.iter().map(AsRef::as_ref).collect();
    let o = merge(&dirs, &["--out", out.to_str().unwrap()]);
    userflux::assert_ok(&o);
    load_run(out)
}

fn histogram_of(values: &[u64]) -> hdrhistogram::Histogram<u64> {
    let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for &v in values {
        h.record(v.max(1)).unwrap();
    }
    h
}

#[test]
fn three_shards_merge_into_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let config = tmp.path().join("c.json");
    std::fs::write(&config, CONFIG).unwrap();
    let runs = tmp.path().join("runs");
    let start = rfc3339(SystemTime::now() + Duration::from_millis(1500));
    let mut children: Vec<_> = (0..3)
        .map(|i| shard(&config, &runs, i, 3, &start, &gw.url()))
        .collect();
    for c in &mut children {
        assert!(c.wait().unwrap().success());
    }
    let dirs: Vec<PathBuf> = (0..3).map(|i| runs.join(format!("shard-{i}"))).collect();
    let shards: Vec<Summary> = dirs.iter().map(|d| load_run(d).0).collect();
    // one start: the shards' first seconds line up
    for s in &shards {
        let info = s.shard.as_ref().unwrap();
        assert_eq!(info.start_at, start);
        assert_eq!(info.group, shards[0].shard.as_ref().unwrap().group);
    }
    // VUs split 7 = 3 + 2 + 2 by stage (the users/products split inside each)
    let vus: Vec<u32> = shards
        .iter()
        .map(|s| s.endpoints["users"].vus + s.endpoints["products"].vus)
        .collect();
    assert_eq!(vus.iter().sum::<u32>(), 7, "{vus:?}");
    let merged = tmp.path().join("merged");
    let (m, status) = merged_into(&dirs, &merged);
    assert_eq!(status.state, userflux_engine::summary::RunState::Finished);
    // counts are the sums
    let sum = |f: &dyn Fn(&Summary) -> u64| shards.iter().map(f).sum::<u64>();
    assert_eq!(m.totals.requests, sum(&|s| s.totals.requests));
    assert_eq!(m.totals.errors, sum(&|s| s.totals.errors));
    assert_eq!(m.totals.bytes_in, sum(&|s| s.totals.bytes_in));
    for name in ["users", "products", "open"] {
        assert_eq!(
            m.endpoints[name].requests,
            sum(&|s| s.endpoints[name].requests),
            "{name}"
        );
    }
    // the open schedule split send by send: 100/s for 3 s = 300 sends in all
    assert_eq!(
        m.endpoints["open"].requests + m.endpoints["open"].dropped,
        300
    );
    // percentiles: equal to those of the union of every shard's samples
    let mut all = Vec::new();
    for d in &dirs {
        for line in std::fs::read_to_string(d.join("samples.ndjson"))
            .unwrap()
            .lines()
        {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(l) = v["lat"].as_u64()
                && v["ep"] == "users"
            {
                all.push(l);
            }
        }
    }
    let union = histogram_of(&all);
    let lat = m.endpoints["users"].latency_ms.as_ref().unwrap();
    for (p, got) in [
        (50.0, lat.p50),
        (90.0, lat.p90),
        (99.0, lat.p99),
        (100.0, lat.max),
    ] {
        let want = union.value_at_quantile(p / 100.0) as f64 / 1000.0;
        assert!((got - want).abs() < 1e-9, "p{p}: merged {got} union {want}");
    }
    // the timeline: second by second, sums
    for s in &m.timeline {
        let parts: u64 = shards
            .iter()
            .filter_map(|x| x.timeline.iter().find(|y| y.t == s.t))
            .map(|y| y.requests)
            .sum();
        assert_eq!(s.requests, parts, "second {}", s.t);
    }
    // thresholds judged on the merged result
    let reqs = m
        .thresholds
        .iter()
        .find(|t| t.metric == "http_reqs")
        .unwrap();
    assert_eq!(reqs.observed, Some(m.totals.requests as f64));
    // the merged directory is a run directory the analytics take as it is
    assert!(merged.join("config.json").exists() && merged.join("samples.ndjson").exists());
    let logs = std::fs::read_to_string(merged.join("logs.txt")).unwrap();
    assert!(
        logs.contains("shard 2: ") && logs.contains("merged 3 shard(s)"),
        "{logs}"
    );
}

/// Issue #27: the first SIGINT while waiting for `--start-at` was ignored
/// and the run stayed `running` until the start time. Now it ends the run
/// at once as `stopped`, before anything is sent (no summary: nothing ran).
#[test]
fn a_signal_while_waiting_for_the_start_time_ends_the_run_as_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("c.json");
    std::fs::write(&config, CONFIG).unwrap();
    let start = rfc3339(SystemTime::now() + Duration::from_secs(600));
    let mut child = shard(&config, tmp.path(), 0, 2, &start, "http://127.0.0.1:9");
    let dir = tmp.path().join("shard-0");
    let waiting = |dir: &Path| {
        std::fs::read_to_string(dir.join("logs.txt"))
            .is_ok_and(|l| l.contains("waiting for the start time"))
    };
    let t0 = std::time::Instant::now();
    while !waiting(&dir) {
        assert!(t0.elapsed() < Duration::from_secs(60), "never waited");
        std::thread::sleep(Duration::from_millis(20));
    }
    let st: Status = serde_json::from_value(userflux::read_json(&dir.join("status.json"))).unwrap();
    assert_eq!(st.state, RunState::Running);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    assert!(sent.unwrap().success());
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the first SIGINT was ignored while waiting for the start time");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(130));
    let st: Status = serde_json::from_value(userflux::read_json(&dir.join("status.json"))).unwrap();
    assert_eq!((st.state, st.exit_code), (RunState::Stopped, Some(130)));
    let error = st.error.expect("why it stopped");
    assert_eq!(error.kind, "stopped");
    assert!(
        error.message
            == format!(
                "received SIGINT while waiting for the start time {start}: the run did not start"
            ),
        "{}",
        error.message
    );
    assert!(!dir.join("summary.json").exists(), "nothing ran");
}

#[test]
fn merge_refuses_what_is_not_one_sharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let config = tmp.path().join("c.json");
    std::fs::write(&config, CONFIG.replace("\"3s\"", "\"1s\"")).unwrap();
    let runs = tmp.path().join("runs");
    let start = rfc3339(SystemTime::now() + Duration::from_millis(800));
    let mut kids: Vec<_> = (0..2)
        .map(|i| shard(&config, &runs, i, 2, &start, &gw.url()))
        .collect();
    // another group: the same config started at another time
    let other = tmp.path().join("other");
    let start2 = rfc3339(SystemTime::now() + Duration::from_millis(900));
    kids.push(shard(&config, &other, 1, 2, &start2, &gw.url()));
    for k in &mut kids {
        assert!(k.wait().unwrap().success());
    }
    let (s0, s1, o1) = (
        runs.join("shard-0"),
        runs.join("shard-1"),
        other.join("shard-1"),
    );
    let refused = |args: &[&Path], extra: &[&str], want: &str| {
        let out = merge(args, extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{want}: {err}");
        assert!(err.contains(want), "{want}: {err}");
    };
    refused(&[&s0, &o1], &[], "shards of another run");
    refused(&[&s0, &s0], &[], "shard 0/2 is also");
    refused(&[&s0], &[], "missing shard(s) 1/2");
    let plain = tmp.path().join("plain");
    let out = Command::new(bin("userflux-engine"))
        .args(["run", "-q", "-c", "1", "-d", "1s", "--run-dir"])
        .arg(&plain)
        .arg(format!("{}/health", gw.url()))
        .output()
        .unwrap();
    userflux::assert_ok(&out);
    refused(&[&plain], &[], "not a shard's run");
    // a partial merge says what is missing
    let partial = tmp.path().join("partial");
    let out = merge(&[&s0], &["--partial", "--out", partial.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (m, _) = load_run(&partial);
    assert!(m.stop_reason.unwrap().contains("shard(s) 1/2 missing"));
    // and a full merge of the two works; the other group is left out
    merged_into(&[&s0, &s1], &tmp.path().join("full"));
    // a start time in the past is refused before anything is created
    let out = Command::new(bin("userflux-engine"))
        .args(["run", "-q", "--config"])
        .arg(&config)
        .args([
            "--target",
            &gw.url(),
            "--shard",
            "0/2",
            "--start-at",
            "2020-01-01T00:00:00Z",
            "--run-dir",
        ])
        .arg(tmp.path().join("late"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ago"));
    assert!(!tmp.path().join("late").exists());
}

/// `run start --shards N` goes through the daemon like any run (issue
/// #29): queued, listed, kept in `runs/<id>/` (the merged run, the
/// shards' under `shards/`), and stoppable (the stop reaches every shard,
/// and their runs still merge).
#[test]
fn run_start_with_shards_goes_through_the_daemon_and_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    let runs = tmp.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let socket = runs.join("userfluxd.sock");
    let mut daemon = Command::new(bin("userfluxd"))
        .arg("--runs-dir")
        .arg(&runs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "userfluxd did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ctl = |args: &[&str]| {
        Command::new(bin("userfluxctl"))
            .current_dir(tmp.path())
            .env("USERFLUX_SOCKET", &socket)
            .args(args)
            .output()
            .unwrap()
    };
    let config = tmp.path().join("c.json");
    std::fs::write(&config, CONFIG.replace("\"3s\"", "\"1s\"")).unwrap();
    let c = config.to_str().unwrap();
    let out = ctl(&[
        "run",
        "start",
        c,
        "--target",
        &gw.url(),
        "--shards",
        "2",
        "--wait",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split(' ').next())
        .unwrap()
        .to_string();
    let listed = ctl(&["run", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&id));
    let merged = runs.join(&id);
    let (m, st) = load_run(&merged);
    assert_eq!(st.state, RunState::Finished);
    let parts: u64 = (0..2)
        .map(|i| {
            load_run(&merged.join(format!("shards/shard-{i}")))
                .0
                .totals
                .requests
        })
        .sum();
    assert_eq!(m.totals.requests, parts);
    assert!(m.totals.requests > 0);
    let logs = std::fs::read_to_string(merged.join("logs.txt")).unwrap();
    assert!(
        logs.contains("to run as 2 local shard(s)") && logs.contains("merged 2 shard(s)"),
        "{logs}"
    );

    // a long one, stopped: every shard stops gracefully and the run still merges
    std::fs::write(&config, CONFIG.replace("\"3s\"", "\"60s\"")).unwrap();
    let out = ctl(&[
        "--json",
        "run",
        "start",
        c,
        "--target",
        &gw.url(),
        "--shards",
        "2",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = v["run_id"].as_str().unwrap().to_string();
    let dir = runs.join(&id);
    let t0 = std::time::Instant::now();
    while !(0..2).all(|i| {
        std::fs::read_to_string(dir.join(format!("shards/shard-{i}/status.json")))
            .is_ok_and(|t| t.contains("\"requests\"") && !t.contains("\"requests\": 0"))
    }) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the shards did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stop = ctl(&["run", "stop", &id]);
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    let t0 = std::time::Instant::now();
    loop {
        let st: Status =
            serde_json::from_str(&std::fs::read_to_string(dir.join("status.json")).unwrap())
                .unwrap();
        if st.state != RunState::Running && dir.join("summary.json").exists() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the stop did not end the run"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (m, st) = load_run(&dir);
    assert_eq!(m.state, RunState::Stopped, "{:?}", st.error);
    assert!(m.totals.requests > 0);
    let _ = daemon.kill();
    let _ = daemon.wait();
}

#[test]
fn a_merge_needs_neither_the_data_files_nor_the_machines_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());
    std::fs::write(tmp.path().join("u.csv"), "id\n1\n2\n3\n").unwrap();
    let config = tmp.path().join("c.json");
    std::fs::write(
        &config,
        r#"{"name": "data", "stages": [{"duration": "0s", "target": 2}, {"duration": "1s", "target": 2}],
          "data": {"u": {"file": "u.csv"}},
          "endpoints": [{"name": "u", "path": "/api/products/{{data.u.id}}", "expect": [401]}]}"#,
    )
    .unwrap();
    let runs = tmp.path().join("runs");
    let start = rfc3339(SystemTime::now() + Duration::from_millis(800));
    // the shards run with different thread counts, as on different machines
    let mut kids: Vec<_> = (0..2)
        .map(|i| {
            let mut c = Command::new(bin("userflux-engine"));
            c.args(["run", "-q", "--config"])
                .arg(&config)
                .args([
                    "--target",
                    &gw.url(),
                    "--shard",
                    &format!("{i}/2"),
                    "--start-at",
                    &start,
                ])
                .args(["--threads", &(i + 1).to_string(), "--run-dir"])
                .arg(runs.join(format!("shard-{i}")));
            c.spawn().unwrap()
        })
        .collect();
    for k in &mut kids {
        assert!(k.wait().unwrap().success());
    }
    std::fs::remove_file(tmp.path().join("u.csv")).unwrap();
    let merged = tmp.path().join("merged");
    let dirs = [runs.join("shard-0"), runs.join("shard-1")];
    let (m, _) = merged_into(&dirs, &merged);
    assert_eq!(m.totals.errors, 0);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        config["endpoints"][0]["path"],
        "/api/products/{{data.u.id}}"
    );
    assert!(config.get("shard").is_none());
}

/// A merged second's percentiles are those of all the shards' responses in
/// it (their per-second histograms added), not a mean of the shards'
/// percentiles: here shard 0 only ever asks a fast route and shard 1 a slow
/// one (sequential data rows go j·N + I), so the slow 5 % set each second's
/// p99, where a requests-weighted mean of the shards' p99s would hide them.
#[test]
fn merged_seconds_have_the_percentiles_of_all_the_shards_responses() {
    let tmp = tempfile::tempdir().unwrap();
    let routes = r#"{"routes": [
        {"path": "/api/fast", "calls": [{"service": "f", "latency": "1ms"}]},
        {"path": "/api/slow", "calls": [{"service": "s", "latency": "20ms"}]}]}"#;
    let gw = Gateway::start(Some(routes), tmp.path());
    std::fs::write(
        tmp.path().join("kinds.csv"),
        format!("kind\n{}", "fast\nslow\n".repeat(50)),
    )
    .unwrap();
    let config = tmp.path().join("c.json");
    std::fs::write(
        &config,
        r#"{"name": "split", "threads": 1,
          "stages": [{"duration": "0s", "target": 4}, {"duration": "3s", "target": 4}],
          "data": {"kinds": {"file": "kinds.csv"}},
          "endpoints": [{"name": "api", "path": "/api/{{data.kinds.kind}}"}]}"#,
    )
    .unwrap();
    let runs = tmp.path().join("runs");
    let start = rfc3339(SystemTime::now() + Duration::from_millis(1500));
    let mut children: Vec<_> = (0..2)
        .map(|i| shard(&config, &runs, i, 2, &start, &gw.url()))
        .collect();
    for c in &mut children {
        assert!(c.wait().unwrap().success());
    }
    let dirs: Vec<PathBuf> = (0..2).map(|i| runs.join(format!("shard-{i}"))).collect();
    let shards: Vec<Summary> = dirs.iter().map(|d| load_run(d).0).collect();
    assert!(
        shards[0].endpoints["api"].latency_ms.as_ref().unwrap().p50 < 10.0,
        "shard 0 is fast"
    );
    assert!(
        shards[1].endpoints["api"].latency_ms.as_ref().unwrap().p50 >= 19.0,
        "shard 1 is slow"
    );
    // each shard's seconds as histograms, from its timeline-histograms.ndjson
    let per_second: Vec<BTreeMap<u64, hdrhistogram::Histogram<u64>>> = dirs
        .iter()
        .map(|d| {
            let text = std::fs::read_to_string(d.join("timeline-histograms.ndjson")).unwrap();
            text.lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    let b64 = v["endpoints"]["api"]["latency"]
                        .as_str()
                        .unwrap_or_default();
                    let h = if b64.is_empty() {
                        hdrhistogram::Histogram::new(3).unwrap()
                    } else {
                        userflux_engine::summary::decode_histogram(b64).unwrap()
                    };
                    (v["t"].as_u64().unwrap(), h)
                })
                .collect()
        })
        .collect();
    let (m, _) = merged_into(&dirs, &tmp.path().join("merged"));
    let mut whole = 0;
    for s in m.timeline.iter().filter(|s| s.t < 3) {
        let mut union = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        for p in &per_second {
            union.add(&p[&s.t]).unwrap();
        }
        let e = &s.endpoints["api"];
        let want = |q: f64| union.value_at_quantile(q) as f64 / 1000.0;
        assert_eq!(
            (e.p50, e.p95, e.p99),
            (Some(want(0.5)), Some(want(0.95)), Some(want(0.99))),
            "second {}",
            s.t
        );
        assert_eq!(
            (s.p50, s.p99),
            (e.p50, e.p99),
            "one endpoint: the second's total is its"
        );
        assert!(
            e.p99.unwrap() >= 19.0,
            "second {}: the slow shard's 5 % set p99: {e:?}",
            s.t
        );
        whole += 1;
    }
    assert_eq!(whole, 3);

    // the same through Kubernetes: each pod prints its histograms, then its summary, framed
    // (the Job's script); `cluster collect` reads them back from the logs
    let pod_log = |d: &Path, timeline: bool| {
        let mut log = String::from("engine output before the frames\n");
        if timeline {
            log += &format!(
                "USERFLUX-TIMELINE-BEGIN\n{}USERFLUX-TIMELINE-END\n",
                std::fs::read_to_string(d.join("timeline-histograms.ndjson")).unwrap()
            );
        }
        log + &format!(
            "USERFLUX-SUMMARY-BEGIN\n{}\nUSERFLUX-SUMMARY-END\n",
            std::fs::read_to_string(d.join("summary.json")).unwrap()
        )
    };
    let collect = |name: &str, with_timeline: [bool; 2]| {
        let out_dir = tmp.path().join(name);
        std::fs::create_dir_all(&out_dir).unwrap();
        let mut config = userflux::read_json(&dirs[0].join("config.json"));
        config.as_object_mut().unwrap().remove("shard");
        std::fs::write(out_dir.join("config.json"), config.to_string()).unwrap();
        let logs: Vec<PathBuf> = (0..2)
            .map(|i| {
                let f = out_dir.join(format!("pod-{i}.log"));
                std::fs::write(&f, pod_log(&dirs[i], with_timeline[i])).unwrap();
                f
            })
            .collect();
        let out = Command::new(bin("userfluxctl"))
            .args(["cluster", "collect", "--out"])
            .arg(&out_dir)
            .args(&logs)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let shards: Vec<PathBuf> = (0..2).map(|i| out_dir.join(format!("shard-{i}"))).collect();
        (
            merged_into(&shards, &out_dir.join("merged")).0,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (k, said) = collect("k8s", [true, true]);
    assert_eq!(
        k.timeline, m.timeline,
        "collected from logs = merged from the directories"
    );
    assert!(said.is_empty(), "{said}");
    // a log the kubelet rotated lost shard 1's histograms: said, and its seconds are means
    let (k, said) = collect("rotated", [true, false]);
    assert!(
        said.contains("shard 1 has no per-second histograms in the logs"),
        "{said}"
    );
    assert_eq!(k.totals.requests, m.totals.requests);
    // the fallback: each second's p99 the requests-weighted mean of the shards'
    for sec in &k.timeline {
        let parts: Vec<(u64, f64)> = shards
            .iter()
            .filter_map(|x| x.timeline.iter().find(|y| y.t == sec.t))
            .filter_map(|y| Some((y.requests, y.endpoints["api"].p99?)))
            .collect();
        let n: u64 = parts.iter().map(|(n, _)| n).sum();
        let mean = parts.iter().map(|(n, p)| *n as f64 * p).sum::<f64>() / n as f64;
        let got = sec.endpoints["api"].p99.unwrap();
        assert!(
            (got - mean).abs() < 1e-9,
            "second {}: {got} vs {mean}",
            sec.t
        );
    }

    // a damaged histograms file is an error naming the file (and line, or second)
    let shards: Vec<PathBuf> = (0..2)
        .map(|i| tmp.path().join(format!("k8s/shard-{i}")))
        .collect();
    let file = shards[1].join("timeline-histograms.ndjson");
    let text = std::fs::read_to_string(&file).unwrap();
    for (damaged, said) in [
        (
            text.replacen("{\"t\":", "{\"t\":\"x\",\"u\":", 1),
            "timeline-histograms.ndjson:1: ",
        ),
        (
            text.replacen("\"latency\":\"", "\"latency\":\"AAAA", 1),
            "timeline-histograms.ndjson: second 0: a histogram does not decode",
        ),
    ] {
        std::fs::write(&file, damaged).unwrap();
        let out = merge(
            &[&shards[0], &shards[1]],
            &["--out", tmp.path().join("bad").to_str().unwrap()],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(said), "{err}");
        assert!(
            !tmp.path().join("bad").exists(),
            "a refused merge writes nothing"
        );
    }
}

/// The thresholds judged on a merge are those judged on the union of the
/// shards (issue #27): every histogram a threshold reads is in the shards'
/// summaries. Shard 0 sees its unexpected responses (503s) after ~1 ms,
/// shard 1 after ~15 ms (sequential rows go j·N + I); each threshold
/// expression kind is judged on the merge and compared with the value
/// computed here from the shards' histograms and counts added. Before,
/// `{expected_response:false}` read "nothing measured" and passed.
#[test]
fn merged_thresholds_equal_the_union_of_the_shards() {
    use hdrhistogram::Histogram;
    use userflux_engine::summary::decode_histogram;
    let tmp = tempfile::tempdir().unwrap();
    let routes = r#"{"routes": [
        {"path": "/api/ok", "calls": [{"service": "a", "latency": "1ms"}]},
        {"path": "/api/fastfail", "calls": [{"service": "b", "latency": "1ms", "error_rate": 1.0}]},
        {"path": "/api/slowfail", "calls": [{"service": "c", "latency": "15ms", "error_rate": 1.0}]}]}"#;
    let gw = Gateway::start(Some(routes), tmp.path());
    std::fs::write(
        tmp.path().join("kinds.csv"),
        format!("kind\n{}", "ok\nok\nfastfail\nslowfail\n".repeat(25)),
    )
    .unwrap();
    // (key, expression): every metric, and the tags each takes
    let thresholds: &[(&str, &str)] = &[
        ("http_req_duration{expected_response:false}", "p(50)<1"),
        ("http_req_duration{expected_response:false}", "max<1000"),
        ("http_req_duration{expected_response:false}", "min<1000"),
        ("http_req_duration{expected_response:false}", "avg<1000"),
        ("http_req_duration{expected_response:false}", "med<1000"),
        ("http_req_duration{expected_response:true}", "p(99)<1000"),
        ("http_req_duration{expected_response:true}", "max<1000"),
        ("http_req_duration{endpoint:api}", "p(95)<1000"),
        ("http_req_duration{method:GET}", "avg<1000"),
        ("http_req_duration{url:/api/ok}", "max<1000"),
        ("http_req_duration", "p(90)<1000"),
        ("http_req_failed{expected_response:false}", "rate>0"),
        ("http_req_failed", "rate<1"),
        ("http_req_failed{status:503}", "rate>0"),
        ("http_reqs{status:503}", "count>0"),
        ("http_reqs{expected_response:true}", "count>0"),
        ("http_reqs{flow:shop}", "count>0"),
        ("http_reqs", "rate>0"),
        ("iterations{flow:shop}", "count>0"),
        ("iterations", "count>0"),
        ("iteration_duration{scenario:shop}", "p(90)<1000"),
        ("http_req_waiting{endpoint:api}", "p(90)<1000"),
        ("http_req_connecting", "max<1000"),
        ("http_req_receiving", "max<1000"),
        ("http_req_sending{endpoint:api}", "p(50)<1000"),
        ("http_req_duration{status:503}", "p(99)<1000"),
        ("server_timing{metric:gateway}", "p(99)<1000"),
        ("server_timing{endpoint:api,metric:c}", "min<1000"),
        ("checks", "rate>0"),
        ("checks{check:ok}", "rate>0"),
        ("data_received", "count>0"),
        ("data_sent{endpoint:api}", "rate>0"),
        ("dropped_iterations", "count==0"),
        ("vus", "max>0"),
        ("vus_max", "value>0"),
    ];
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, e) in thresholds {
        by_key.entry(k).or_default().push(e);
    }
    let config = tmp.path().join("c.json");
    std::fs::write(
        &config,
        serde_json::json!({"name": "expected", "threads": 1,
          "stages": [{"duration": "0s", "target": 8}, {"duration": "2s", "target": 8}],
          "data": {"kinds": {"file": "kinds.csv"}},
          "thresholds": by_key,
          "endpoints": [{"name": "api", "path": "/api/{{data.kinds.kind}}",
                         "checks": {"ok": {"status": 200}}}],
          "flows": [{"name": "shop", "steps": [{"name": "home", "path": "/api/ok"}]}]})
        .to_string(),
    )
    .unwrap();
    let runs = tmp.path().join("runs");
    let start = rfc3339(SystemTime::now() + Duration::from_millis(1500));
    let mut children: Vec<_> = (0..2)
        .map(|i| shard(&config, &runs, i, 2, &start, &gw.url()))
        .collect();
    for c in &mut children {
        c.wait().unwrap(); // 99 when a shard's own thresholds fail: the merge's decide
    }
    let dirs: Vec<PathBuf> = (0..2).map(|i| runs.join(format!("shard-{i}"))).collect();
    let shards: Vec<Summary> = dirs.iter().map(|d| load_run(d).0).collect();
    let unexpected = |s: &Summary| decode_histogram(&s.histograms_unexpected["api"]).unwrap();
    // (the slow route answers after 15 ms at least, whatever the machine's
    // load; a receive time read back from the kernel's clock may put it a
    // little under: 14 ms still tells it from the fast route's 1 ms)
    let (fast, slow) = (unexpected(&shards[0]), unexpected(&shards[1]));
    assert!(
        !fast.is_empty() && slow.min() >= 14_000,
        "shard 0: {} unexpected, shard 1: {} from {} µs",
        fast.len(),
        slow.len(),
        slow.min()
    );
    // the union: every shard's histograms (and counts) added
    let union = |pick: &dyn Fn(&Summary) -> Vec<Option<String>>| {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for s in &shards {
            for b in pick(s).into_iter().flatten() {
                h.add(decode_histogram(&b).unwrap()).unwrap();
            }
        }
        h
    };
    let sum = |f: &dyn Fn(&Summary) -> u64| shards.iter().map(f).sum::<u64>();
    let latency = |rows: &[&str]| {
        let rows: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
        union(&move |s| rows.iter().map(|r| s.histograms.get(r).cloned()).collect())
    };
    let all = latency(&["api", "shop.home"]);
    let failed = union(&|s| vec![s.histograms_unexpected.get("api").cloned()]);
    let mut expected = all.clone();
    expected.subtract(&failed).unwrap();
    let phase = |p: &'static str| {
        union(&move |s| {
            (s.histograms_phases.values())
                .map(|x| x.get(p).cloned())
                .collect()
        })
    };
    let metric = |ep: Option<&'static str>, m: &'static str| {
        union(&move |s| {
            (s.endpoints.iter())
                .filter(|(n, _)| ep.is_none_or(|e| e == n.as_str()))
                .map(|(_, x)| x.server_timing.get(m).map(|t| t.histogram.clone()))
                .collect()
        })
    };
    let flow = union(&|s| vec![Some(s.flows["shop"].histogram.clone())]);
    // p(50)<1 of the unexpected responses fails (each took 1 ms at least): exit 99
    let out = merge(
        &[&dirs[0], &dirs[1]],
        &["--out", tmp.path().join("merged").to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (m, _) = load_run(&tmp.path().join("merged"));
    let seconds = m.totals.requests as f64 / m.totals.rps;
    let of = |h: &Histogram<u64>, expr: &str| {
        let ms = |us: u64| us as f64 / 1000.0;
        let agg = expr.split(['<', '>', '=']).next().unwrap();
        match agg {
            "max" => ms(h.max()),
            "min" => ms(h.min()),
            "avg" => h.mean() / 1000.0,
            "med" => ms(h.value_at_quantile(0.5)),
            p => {
                let p: f64 = p[2..p.len() - 1].parse().unwrap();
                ms(h.value_at_quantile(p / 100.0))
            }
        }
    };
    let errors_503 = sum(&|s| s.endpoints["api"].status_codes["503"]);
    let checks = |f: fn(&userflux_engine::summary::CheckCount) -> u64| {
        sum(&|s| f(&s.endpoints["api"].checks["ok"]))
    };
    let vus_max = (shards.iter().flat_map(|s| s.timeline.iter().map(|x| x.t)))
        .map(|t| {
            (shards.iter())
                .filter_map(|s| s.timeline.iter().find(|x| x.t == t))
                .map(|x| x.vus)
                .sum::<u32>()
        })
        .max()
        .unwrap();
    let requests = sum(&|s| s.totals.requests);
    for (key, expr) in thresholds {
        let want = match *key {
            "http_req_duration{expected_response:false}" => of(&failed, expr),
            "http_req_duration{expected_response:true}" => of(&expected, expr),
            "http_req_duration{endpoint:api}" => of(&latency(&["api"]), expr),
            "http_req_duration{url:/api/ok}" => of(&latency(&["shop.home"]), expr),
            "http_req_duration" | "http_req_duration{method:GET}" => of(&all, expr),
            "http_req_failed{expected_response:false}" | "http_req_failed{status:503}" => 1.0,
            "http_req_failed" => sum(&|s| s.totals.errors) as f64 / requests as f64,
            "http_reqs{status:503}" => errors_503 as f64,
            "http_reqs{expected_response:true}" => (requests - sum(&|s| s.totals.errors)) as f64,
            "http_reqs{flow:shop}" => sum(&|s| s.endpoints["shop.home"].requests) as f64,
            "http_reqs" => requests as f64 / seconds,
            "iterations{flow:shop}" => {
                sum(&|s| s.flows["shop"].iterations + s.flows["shop"].failed_iterations) as f64
            }
            "iterations" => sum(&|s| {
                s.endpoints["api"].requests
                    + s.flows["shop"].iterations
                    + s.flows["shop"].failed_iterations
            }) as f64,
            "iteration_duration{scenario:shop}" => of(&flow, expr),
            "http_req_waiting{endpoint:api}" => of(
                &union(&|s| vec![s.histograms_phases["api"].get("waiting").cloned()]),
                expr,
            ),
            "http_req_connecting" => of(&phase("connect"), expr),
            "http_req_receiving" => of(&phase("receiving"), expr),
            "http_req_sending{endpoint:api}" => of(
                &union(&|s| vec![s.histograms_phases["api"].get("sending").cloned()]),
                expr,
            ),
            "http_req_duration{status:503}" => of(
                &union(&|s| vec![s.histograms_status["api"].get("503").cloned()]),
                expr,
            ),
            "server_timing{metric:gateway}" => of(&metric(None, "gateway"), expr),
            "server_timing{endpoint:api,metric:c}" => of(&metric(Some("api"), "c"), expr),
            "checks" | "checks{check:ok}" => {
                checks(|c| c.passes) as f64 / checks(|c| c.passes + c.fails) as f64
            }
            "data_received" => sum(&|s| s.totals.bytes_in) as f64,
            "data_sent{endpoint:api}" => sum(&|s| s.endpoints["api"].bytes_out) as f64 / seconds,
            "dropped_iterations" => 0.0,
            "vus" => f64::from(vus_max),
            "vus_max" => 8.0,
            other => panic!("no union value for {other}"),
        };
        let got = m
            .thresholds
            .iter()
            .find(|t| t.metric == *key && t.expression == *expr)
            .unwrap_or_else(|| panic!("{key}: {expr} judged"));
        assert_eq!(got.error, None, "{key}: {expr}");
        let observed = got
            .observed
            .unwrap_or_else(|| panic!("{key}: {expr}: measured"));
        assert!(
            (observed - want).abs() <= want.abs() * 1e-9,
            "{key}: {expr}: merged {observed}, union {want}"
        );
    }
    // the slow shard's 503s fail p(50)<1 ms of the unexpected responses
    let p50 = |m: &Summary| {
        m.thresholds
            .iter()
            .find(|t| t.metric == "http_req_duration{expected_response:false}")
            .cloned()
            .unwrap()
    };
    assert!(!p50(&m).ok && p50(&m).observed.unwrap() >= 1.0);

    // a shard written without the unexpected responses' histogram (an older
    // engine): what reads it is not judged, and says why; the rest is
    let old = tmp.path().join("old-shard-1");
    std::fs::create_dir(&old).unwrap();
    for f in ["config.json", "status.json", "timeline-histograms.ndjson"] {
        std::fs::copy(dirs[1].join(f), old.join(f)).unwrap();
    }
    let mut summary = userflux::read_json(&dirs[1].join("summary.json"));
    for older in ["histograms_unexpected", "histograms_phases"] {
        summary.as_object_mut().unwrap().remove(older);
    }
    std::fs::write(old.join("summary.json"), summary.to_string()).unwrap();
    let out = merge(
        &[&dirs[0], &old],
        &["--out", tmp.path().join("from-old").to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(99), "{text}");
    assert!(
        text.contains("FAIL http_req_duration{expected_response:false} p(50)<1 (not judged: ")
            && text.contains("unexpected response(s) and a histogram of 0")
            && text.contains("has no histogram of the waiting phase of \"api\""),
        "{text}"
    );
    let (o, _) = load_run(&tmp.path().join("from-old"));
    for t in &o.thresholds {
        let lacking = [
            "http_req_duration{expected_response:",
            "http_req_waiting",
            "http_req_connecting",
            "http_req_receiving",
            "http_req_sending",
        ];
        let reads_lacking = lacking.iter().any(|m| t.metric.starts_with(m));
        assert_eq!(t.error.is_some(), reads_lacking, "{t:?}");
        if reads_lacking {
            assert!(!t.ok && t.observed.is_none(), "{t:?}");
        } else {
            let whole = m.thresholds.iter().find(|x| x.metric == t.metric).unwrap();
            assert_eq!(t.ok, whole.ok, "{t:?}");
        }
    }
}
