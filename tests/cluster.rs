//! Sharded runs as Kubernetes runs them (issue #29), without a cluster:
//! simulated pods are processes started with the pod's command and env
//! from `userfluxctl cluster manifest --json`, the ConfigMap's files
//! written where its volume would be mounted, `JOB_COMPLETION_INDEX` set
//! as the Job controller sets it, against a local gateway. What a Job
//! needs from them: a shard over its thresholds still succeeds (the merge
//! judges them), a crashed shard leaves the others to finish and
//! `collect --partial` to merge, and SIGTERM to the pod's process (PID 1
//! in the pod) ends in its framed summary. The start barrier runs against
//! a fake API server on 127.0.0.1 (TLS, a service account directory of
//! the test's), which reports a pod Ready once its engine has written the
//! file the readinessProbe checks, as the kubelet would.

use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
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
              "data": {{"kinds": {{"file": "kinds.csv"}}}}, "samples": {{"rate": 1.0}},
              "thresholds": {{"http_req_failed": ["rate<0.1"]}},
              "endpoints": [{{"name": "api", "path": "/api/{{{{data.kinds.kind}}}}"}}]}}"#
        ),
    )
    .unwrap();
    file
}

/// The manifest's objects, from `cluster manifest --json`, with a fixed
/// start 2 s ahead.
fn manifest(config: &Path, shards: u32, extra: &[&str]) -> Vec<Value> {
    manifest_with(config, shards, &[&["--start-in", "2s"], extra].concat())
}

/// The manifest's objects, from `cluster manifest --json`.
fn manifest_with(config: &Path, shards: u32, extra: &[&str]) -> Vec<Value> {
    let out = Command::new(bin("userfluxctl"))
        .args(["cluster", "manifest"])
        .arg(config)
        .args(["--image", "test/userflux:1", "--json"])
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
    // a claim is one directory for every pod; other volumes are the pod's own
    let local_of = |volume: &str| {
        let v = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == volume)
            .unwrap();
        match v["persistentVolumeClaim"]["claimName"].as_str() {
            Some(claim) => root.join(format!("pvc-{claim}")),
            None => home.join(volume),
        }
    };
    for m in container["volumeMounts"].as_array().unwrap() {
        let local = local_of(m["name"].as_str().unwrap());
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
        let local = local_of(v["name"].as_str().unwrap());
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
    // the kubelet expands $(VAR) in the command from the container's env,
    // JOB_COMPLETION_INDEX included (the Job controller adds it)
    let mut env: Vec<(String, String)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let value = remap(e["value"].as_str().unwrap());
            (e["name"].as_str().unwrap().to_string(), value)
        })
        .collect();
    env.push(("JOB_COMPLETION_INDEX".into(), index.to_string()));
    let command: Vec<String> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let mut a = remap(a.as_str().unwrap());
            for (k, v) in &env {
                a = a.replace(&format!("$({k})"), v);
            }
            a
        })
        .collect();
    assert_eq!(
        command[0], "userflux-engine",
        "the engine is the pod's PID 1"
    );
    let log = home.join("stdout.log");
    let mut cmd = Command::new(bin("userflux-engine"));
    cmd.args(&command[1..])
        .envs(env)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(home.join("stderr.log")).unwrap());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let work = local_of("work");
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
    userflux::assert_ok(&c);
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
    userflux::assert_ok(&c);
    let dirs = shard_dirs(&out, 2);
    assert_eq!(dirs, vec![out.join("shard-0")]);
    let merged = tmp.path().join("merged");
    let m = ctl(
        &["merge", "--partial", "--out", merged.to_str().unwrap()],
        &[&dirs[0]],
    );
    userflux::assert_ok(&m);
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

    // a log as large as the kubelet rotates: collected, and said
    let big = tmp.path().join("big.log");
    let line = "engine output before the frames\n";
    std::fs::write(
        &big,
        line.repeat(10 * 1024 * 1024 / line.len() + 1)
            + &std::fs::read_to_string(&pods[0].log).unwrap(),
    )
    .unwrap();
    let out = tmp.path().join("big");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(tmp.path().join("out/config.json"), out.join("config.json")).unwrap();
    let c = ctl(
        &[
            "cluster",
            "collect",
            "--partial",
            "--out",
            out.to_str().unwrap(),
        ],
        &[&big],
    );
    let err = String::from_utf8_lossy(&c.stderr);
    userflux::assert_ok(&c);
    assert!(
        err.contains("big.log: 10 MiB, as large as the kubelet's log rotation"),
        "{err}"
    );
    assert!(out.join("shard-0/summary.json").is_file());
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

/// A fake Kubernetes API server: `GET /api/v1/namespaces/perf/pods` with
/// the service account's token answers the Job's pods, pod i Ready (since
/// it was first seen so) once `ready[i]` exists. Its CA, token and
/// namespace are in `account`.
struct FakeApi {
    port: u16,
    account: PathBuf,
}

const TOKEN: &str = "test-token";

fn fake_api(dir: &Path, job: &str, ready: Vec<PathBuf>) -> FakeApi {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let account = dir.join("serviceaccount");
    std::fs::create_dir_all(&account).unwrap();
    std::fs::write(account.join("ca.crt"), ck.cert.pem()).unwrap();
    std::fs::write(account.join("token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(account.join("namespace"), "perf").unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.key_pair.serialize_der()).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<HashMap<usize, String>>> = Arc::default();
    let want = format!("GET /api/v1/namespaces/perf/pods?labelSelector=job-name%3D{job} ");
    let job = job.to_string();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, s);
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match tls.read(&mut b) {
                    Ok(1) => head.push(b[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let (status, body) = if !head.contains(&format!("authorization: bearer {TOKEN}\r\n")) {
                (
                    "403 Forbidden",
                    r#"{"kind":"Status","reason":"Forbidden"}"#.to_string(),
                )
            } else if !head.starts_with(&want.to_ascii_lowercase()) {
                ("404 Not Found", "{}".to_string())
            } else {
                let mut seen = seen.lock().unwrap();
                let items: Vec<Value> = ready
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let conditions = if f.exists() {
                            let at = seen
                                .entry(i)
                                .or_insert_with(userflux_engine::rundir::now_rfc3339);
                            vec![serde_json::json!({"type": "Ready", "status": "True", "lastTransitionTime": at})]
                        } else {
                            vec![serde_json::json!({"type": "Ready", "status": "False"})]
                        };
                        serde_json::json!({
                            "metadata": {"name": format!("{job}-{i}-x"),
                                "labels": {"job-name": job},
                                "annotations": {"batch.kubernetes.io/job-completion-index": i.to_string()}},
                            "status": {"phase": "Running", "conditions": conditions}
                        })
                    })
                    .collect();
                (
                    "200 OK",
                    serde_json::json!({"kind": "PodList", "items": items}).to_string(),
                )
            };
            let _ = write!(
                tls,
                "HTTP/1.0 {status}\r\nContent-Type: application/json\r\n\r\n{body}"
            );
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    FakeApi { port, account }
}

/// The env that points a simulated pod at the fake API server.
fn api_env(api: &FakeApi) -> Vec<(String, String)> {
    vec![
        ("KUBERNETES_SERVICE_HOST".into(), "127.0.0.1".into()),
        ("KUBERNETES_SERVICE_PORT".into(), api.port.to_string()),
        (
            "USERFLUX_SERVICE_ACCOUNT_DIR".into(),
            api.account.display().to_string(),
        ),
    ]
}

fn start_pod_with(docs: &[Value], index: u32, root: &Path, env: &[(String, String)]) -> Pod {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    start_pod(docs, index, root, &env)
}

fn job_name(docs: &[Value]) -> String {
    kind(docs, "Job")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The pods start their runs together once the last is ready, however
/// late it came: both compute one start from the API server's pod list.
#[test]
fn the_barrier_starts_every_pod_at_one_instant_after_the_last_is_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(ROUTES), tmp.path());
    let docs = manifest_with(&config(tmp.path(), &gw.url(), "1s"), 2, &[]);
    let job = job_name(&docs);
    let ready: Vec<PathBuf> = (0..2)
        .map(|i| tmp.path().join(format!("pod-{i}/work/ready")))
        .collect();
    let api = fake_api(tmp.path(), &job, ready);
    let mut env = api_env(&api);
    env.push(("USERFLUX_BARRIER_MARGIN".into(), "2s".into()));
    let mut pods = vec![start_pod_with(&docs, 0, tmp.path(), &env)];
    // the second pod's image pull took a while
    std::thread::sleep(Duration::from_millis(1500));
    pods.push(start_pod_with(&docs, 1, tmp.path(), &env));
    let mut starts = Vec::new();
    for p in &mut pods {
        let s = wait(p, Duration::from_secs(60));
        let err = std::fs::read_to_string(p.log.with_file_name("stderr.log")).unwrap();
        assert_eq!(s.code(), Some(0), "{err}");
        let summary: Value = serde_json::from_str(
            &std::fs::read_to_string(p.work.join("run/summary.json")).unwrap(),
        )
        .unwrap();
        starts.push(summary["shard"]["start_at"].as_str().unwrap().to_string());
        let logs = std::fs::read_to_string(p.work.join("run/logs.txt")).unwrap();
        assert!(
            logs.contains(&format!(
                "barrier: every pod ready; the run starts at {}",
                starts.last().unwrap()
            )),
            "{logs}"
        );
        assert_eq!(summary["shard"]["group"], job.as_str());
    }
    assert_eq!(starts[0], starts[1], "one start for every pod");
}

/// A pod whose peers are not ready within the barrier's timeout fails
/// plainly (exit 1, status `failed`, the reason), sending nothing.
#[test]
fn a_pod_left_waiting_past_the_barrier_timeout_fails_plainly() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(ROUTES), tmp.path());
    let docs = manifest_with(&config(tmp.path(), &gw.url(), "1s"), 2, &[]);
    let job = job_name(&docs);
    let ready: Vec<PathBuf> = (0..2)
        .map(|i| tmp.path().join(format!("pod-{i}/work/ready")))
        .collect();
    let api = fake_api(tmp.path(), &job, ready);
    let mut env = api_env(&api);
    env.push(("USERFLUX_BARRIER_TIMEOUT".into(), "3s".into()));
    // pod 1 never comes (a node that never appeared)
    let mut pod = start_pod_with(&docs, 0, tmp.path(), &env);
    let s = wait(&mut pod, Duration::from_secs(60));
    let err = std::fs::read_to_string(pod.log.with_file_name("stderr.log")).unwrap();
    assert_eq!(s.code(), Some(1), "{err}");
    // what the pod waits for is in `kubectl logs`, even with -q
    assert!(
        err.contains(&format!(
            "barrier: waiting for the 2 pods of job {job} to be ready"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "barrier: 1 of 2 pods of job {job} ready after 3s; the run did not start"
        )),
        "{err}"
    );
    let status: Value =
        serde_json::from_str(&std::fs::read_to_string(pod.work.join("run/status.json")).unwrap())
            .unwrap();
    assert_eq!(status["state"], "failed");
    assert_eq!(status["error"]["kind"], "barrier");
    assert!(!pod.work.join("run/summary.json").exists());
    assert!(
        !std::fs::read_to_string(&pod.log)
            .unwrap()
            .contains("USERFLUX-SUMMARY-BEGIN")
    );

    // a service account that may not list pods: said at once, not waited out
    std::fs::write(api.account.join("token"), "wrong\n").unwrap();
    let mut pod = start_pod_with(&docs, 1, tmp.path(), &env);
    let s = wait(&mut pod, Duration::from_secs(60));
    let err = std::fs::read_to_string(pod.log.with_file_name("stderr.log")).unwrap();
    assert_eq!(s.code(), Some(1), "{err}");
    assert!(
        err.contains("refused to list pods (403)") && err.contains("get and list on pods"),
        "{err}"
    );
}

/// With `--results-pvc`, every pod writes its whole run directory to the
/// claim (`/results/NAME/shard-I`, the kubelet putting in the index), and
/// those directories merge as they are: summary, per-second histograms,
/// samples and logs, no `kubectl logs` involved.
#[test]
fn results_on_a_claim_are_whole_run_directories_that_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(Some(ROUTES), tmp.path());
    let docs = manifest(
        &config(tmp.path(), &gw.url(), "2s"),
        2,
        &["--results-pvc", "perf-results"],
    );
    let job = job_name(&docs);
    let mut pods: Vec<Pod> = (0..2)
        .map(|i| start_pod(&docs, i, tmp.path(), &[]))
        .collect();
    for p in &mut pods {
        assert_eq!(wait(p, Duration::from_secs(60)).code(), Some(0));
    }
    let results = tmp.path().join("pvc-perf-results").join(&job);
    let dirs: Vec<PathBuf> = (0..2).map(|i| results.join(format!("shard-{i}"))).collect();
    for d in &dirs {
        for f in [
            "summary.json",
            "config.json",
            "timeline-histograms.ndjson",
            "samples.ndjson",
            "logs.txt",
        ] {
            assert!(d.join(f).is_file(), "{} lacks {f}", d.display());
        }
    }
    let merged = tmp.path().join("merged");
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let m = ctl(&["merge", "--out", merged.to_str().unwrap()], &dirs);
    assert_eq!(
        m.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&m.stderr)
    );
    let logs = std::fs::read_to_string(merged.join("logs.txt")).unwrap();
    assert!(logs.contains("shard 1:"), "{logs}");
}
