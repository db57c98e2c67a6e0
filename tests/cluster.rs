//! Sharded runs as Kubernetes runs them (issue #29), without a cluster:
//! simulated pods are processes started with the pod's command and env
//! from `userfluxctl cluster manifest --json`, the ConfigMap's files
//! written where its volume would be mounted, `JOB_COMPLETION_INDEX` set
//! as the Job controller sets it, against a local gateway. What a Job
//! needs from them: a shard over its thresholds still succeeds (the merge
//! judges them), a crashed shard leaves the others to finish and
//! `collect --partial` to merge, and SIGTERM to the pod's process (PID 1
//! in the pod) ends in its framed summary.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use userflux::{Gateway, bin};

const ROUTES: &str = r#"{"routes": [
    {"path": "/api/fast", "calls": [{"service": "f", "latency": "1ms"}]}]}"#;

/// A config whose shard 1 of 2 asks only a route the gateway lacks (its
/// sequential rows are 1, 3, 5, …: all `missing`), so it fails
/// `http_req_failed` alone; shard 0 asks only `/api/fast`.
fn config(dir: &Path, target: &str, duration: &str) -> PathBuf {
    std::fs::write(
        dir.join("kinds.csv"),
        format!("kind\n{}", "fast\nmissing\n".repeat(20)),
    )
    .unwrap();
    let file = dir.join("c.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"name": "k8s", "target": "{target}", "threads": 1,
              "stages": [{{"duration": "0s", "target": 2}}, {{"duration": "{duration}", "target": 2}}],
              "data": {{"kinds": {{"file": "kinds.csv"}}}},
              "thresholds": {{"http_req_failed": ["rate<0.1"]}},
              "endpoints": [{{"name": "api", "path": "/api/{{{{data.kinds.kind}}}}"}}]}}"#
        ),
    )
    .unwrap();
    file
}

/// The manifest's objects, from `cluster manifest --json`.
fn manifest(config: &Path, shards: u32, extra: &[&str]) -> Vec<Value> {
    let out = Command::new(bin("userfluxctl"))
        .args(["cluster", "manifest"])
        .arg(config)
        .args(["--image", "test/userflux:1", "--json", "--start-in", "2s"])
        .args(["--shards", &shards.to_string()])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"].as_array().unwrap().clone()
}

fn kind<'a>(docs: &'a [Value], k: &str) -> &'a Value {
    docs.iter().find(|d| d["kind"] == k).unwrap()
}

/// One simulated pod: its process and where its stdout (`kubectl logs`) goes.
struct Pod {
    child: Child,
    log: PathBuf,
    /// The pod's emptyDir, as mounted (holds the run directory).
    work: PathBuf,
}

/// Starts pod `index` of the Job in `docs` under `root/pod-INDEX/`: every
/// volume a directory (the ConfigMap's and Secret's files written into
/// theirs), every path in the command and the config under a mount
/// rewritten to that directory.
fn start_pod(docs: &[Value], index: u32, root: &Path, extra_env: &[(&str, &str)]) -> Pod {
    let home = root.join(format!("pod-{index}"));
    let pod = &kind(docs, "Job")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    for m in container["volumeMounts"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let local = home.join(name);
        std::fs::create_dir_all(&local).unwrap();
        mounts.push((m["mountPath"].as_str().unwrap().to_string(), local));
    }
    let remap = |text: &str| {
        let mut text = text.to_string();
        // longest mount first: /etc/userflux-secret before /etc/userflux
        let mut sorted = mounts.clone();
        sorted.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
        for (m, local) in &sorted {
            text = text.replace(&format!("{m}/"), &format!("{}/", local.display()));
        }
        text
    };
    for v in pod["volumes"].as_array().unwrap() {
        let local = home.join(v["name"].as_str().unwrap());
        let (source, field) = if v.get("configMap").is_some() {
            ("ConfigMap", "data")
        } else if v.get("secret").is_some() {
            ("Secret", "stringData")
        } else {
            continue;
        };
        for (file, text) in kind(docs, source)[field].as_object().unwrap() {
            std::fs::write(local.join(file), remap(text.as_str().unwrap())).unwrap();
        }
    }
    let command: Vec<String> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| remap(a.as_str().unwrap()))
        .collect();
    assert_eq!(
        command[0], "userflux-engine",
        "the engine is the pod's PID 1"
    );
    let log = home.join("stdout.log");
    let mut cmd = Command::new(bin("userflux-engine"));
    cmd.args(&command[1..])
        .env("JOB_COMPLETION_INDEX", index.to_string())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(home.join("stderr.log")).unwrap());
    for e in container["env"].as_array().unwrap() {
        cmd.env(e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let work = mounts
        .iter()
        .find(|(m, _)| m == "/userflux")
        .map(|(_, l)| l.clone())
        .unwrap();
    Pod {
        child: cmd.spawn().unwrap(),
        log,
        work,
    }
}

/// Waits for a pod's process, at most `limit` (then kills it and fails).
fn wait(pod: &mut Pod, limit: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = pod.child.try_wait().unwrap() {
            return s;
        }
        if t0.elapsed() > limit {
            let _ = pod.child.kill();
            panic!("a pod did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ctl(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(bin("userfluxctl"))
        .args(args)
        .args(paths)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The README's collect: the ConfigMap's config saved as OUT/config.json,
/// then `cluster collect` of the pods' logs.
fn collect(docs: &[Value], pods: &[Pod], out: &Path, partial: bool) -> Output {
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(
        out.join("config.json"),
        kind(docs, "ConfigMap")["data"]["config.json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let mut args = vec!["cluster", "collect", "--out", out.to_str().unwrap()];
    if partial {
        args.push("--partial");
    }
    let logs: Vec<&Path> = pods.iter().map(|p| p.log.as_path()).collect();
    ctl(&args, &logs)
}

fn shard_dirs(out: &Path, n: u32) -> Vec<PathBuf> {
    (0..n)
        .map(|i| out.join(format!("shard-{i}")))
        .filter(|d| d.exists())
        .collect()
}

/// A shard over its own thresholds completes its Job index (exit 0); the
/// run's verdict is the merge's, which fails them (exit 99).
#[test]
fn a_shard_over_its_thresholds_succeeds_and_the_merge_fails_them() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(ROUTES), tmp.path());
    let docs = manifest(&config(tmp.path(), &gw.url(), "2s"), 2, &[]);
    let mut pods: Vec<Pod> = (0..2)
        .map(|i| start_pod(&docs, i, tmp.path(), &[]))
        .collect();
    for p in &mut pods {
        let s = wait(p, Duration::from_secs(60));
        assert_eq!(s.code(), Some(0), "a completed shard exits 0: {s:?}");
    }
    // shard 1 judged itself failed, and said so in its summary
    let own: Value = serde_json::from_str(
        &std::fs::read_to_string(pods[1].work.join("run/summary.json")).unwrap(),
    )
    .unwrap();
    let failed = own["thresholds"]
        .as_array()
        .map(|t| t.iter().filter(|t| t["ok"] == false).count());
    assert_eq!(failed, Some(1), "{}", own["thresholds"]);
    let out = tmp.path().join("out");
    let c = collect(&docs, &pods, &out, false);
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let dirs = shard_dirs(&out, 2);
    assert_eq!(dirs.len(), 2);
    let merged = tmp.path().join("merged");
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let m = ctl(&["merge", "--out", merged.to_str().unwrap()], &dirs);
    assert_eq!(
        m.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&m.stderr)
    );
}

/// A shard that crashes fails its own index only: the other finishes, and
/// `collect` passes over the failed pod's log, refusing without
/// `--partial` and collecting with it, for `merge --partial`.
#[test]
fn a_crashed_shard_leaves_the_others_to_finish_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(ROUTES), tmp.path());
    let docs = manifest(&config(tmp.path(), &gw.url(), "2s"), 2, &[]);
    let mut pods = vec![
        start_pod(&docs, 0, tmp.path(), &[]),
        start_pod(
            &docs,
            1,
            tmp.path(),
            &[("USERFLUX_TEST_FAULT", "aggregator-panic")],
        ),
    ];
    let crashed = wait(&mut pods[1], Duration::from_secs(60));
    assert!(!crashed.success(), "the crashed shard fails: {crashed:?}");
    let fine = wait(&mut pods[0], Duration::from_secs(60));
    assert_eq!(fine.code(), Some(0), "the other shard finishes");
    let out = tmp.path().join("out");
    let c = collect(&docs, &pods, &out, false);
    let err = String::from_utf8_lossy(&c.stderr);
    assert_eq!(c.status.code(), Some(1), "{err}");
    assert!(
        err.contains("shard(s) 1 of 2 have no summary") && err.contains("--partial"),
        "{err}"
    );
    assert!(err.contains("pod-1/stdout.log: no framed summary"), "{err}");
    let c = collect(&docs, &pods, &out, true);
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let dirs = shard_dirs(&out, 2);
    assert_eq!(dirs, vec![out.join("shard-0")]);
    let merged = tmp.path().join("merged");
    let m = ctl(
        &["merge", "--partial", "--out", merged.to_str().unwrap()],
        &[&dirs[0]],
    );
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    let (summary, _) = userflux::load_run(&merged);
    assert!(summary.totals.requests > 0);
    assert!(
        summary
            .stop_reason
            .as_deref()
            .is_some_and(|r| r.contains('1')),
        "the merge names the missing shard: {:?}",
        summary.stop_reason
    );
}

/// `kubectl delete` sends SIGTERM to the pod's PID 1, the engine itself:
/// it stops gracefully and prints its framed summary (a `/bin/sh -c` in
/// between used to swallow the signal, and the pod ended in SIGKILL).
#[test]
fn sigterm_to_the_pods_process_ends_in_its_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(ROUTES), tmp.path());
    let docs = manifest(&config(tmp.path(), &gw.url(), "60s"), 1, &[]);
    let mut pod = start_pod(&docs, 0, tmp.path(), &[]);
    // until the run is under way (past the start time, requests made)
    let status = pod.work.join("run/status.json");
    let t0 = Instant::now();
    loop {
        let s: Option<Value> = std::fs::read_to_string(&status)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if s.is_some_and(|s| s["progress"]["requests"].as_u64().unwrap_or(0) > 0) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill(2) on our own child's pid, not yet waited for
    let sent = unsafe { libc::kill(pod.child.id() as i32, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let s = wait(&mut pod, Duration::from_secs(30));
    assert_eq!(s.code(), Some(0), "a graceful stop: {s:?}");
    let log = std::fs::read_to_string(&pod.log).unwrap();
    for marker in [
        "USERFLUX-TIMELINE-BEGIN",
        "USERFLUX-TIMELINE-END",
        "USERFLUX-SUMMARY-BEGIN",
        "USERFLUX-SUMMARY-END",
    ] {
        assert!(log.contains(marker), "{marker} in {log}");
    }
    let body = &log[log.find("USERFLUX-SUMMARY-BEGIN").unwrap() + 22
        ..log.find("USERFLUX-SUMMARY-END").unwrap()];
    let summary: Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(summary["state"], "stopped");
    assert!(summary["totals"]["requests"].as_u64().unwrap() > 0);
}
