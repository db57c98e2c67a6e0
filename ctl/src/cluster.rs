//! `userfluxctl cluster`: a sharded run on Kubernetes. The distribution is
//! Kubernetes' own Indexed Job (each pod gets its index as
//! `JOB_COMPLETION_INDEX`, the engine's shard), not a home-made cluster.
//!
//! `manifest` prints a ConfigMap (the config, and any data or certificate
//! files it names), a Secret (a client private key, if the config names
//! one) and the Job, all named after the run so runs don't collide. Each
//! pod's command is the engine itself (PID 1: SIGTERM reaches it) in
//! cluster mode (`USERFLUX_CLUSTER=1`): it runs its shard with one start
//! time for all, exits 0 when its run completed whatever its thresholds
//! (the merge judges them; a 99 used to fail the Job and kill the other
//! pods), and prints its per-second histograms and then its summary, each
//! between two marker lines on stdout; `collect` reads `kubectl logs` output
//! back into run directories that `userfluxctl merge` joins. The summary
//! comes last: a log the kubelet rotated loses the histograms first (the
//! merge then gives per-second percentiles as requests-weighted means), not
//! the summary.

use crate::{Fail, ManifestArgs, Out};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use userflux_engine::barrier::{BARRIER_ENV, READY_FILE_ENV, TIMEOUT_ENV};
use userflux_engine::cluster::{BEGIN, CLUSTER_ENV, END, TIMELINE_BEGIN, TIMELINE_END};
use userflux_engine::config::Config;

/// Where the ConfigMap is mounted in a pod.
const MOUNT: &str = "/etc/userflux";
/// Where the Secret (the client key) is mounted in a pod.
const SECRET_MOUNT: &str = "/etc/userflux-secret";
/// The pod's writable directory (an emptyDir: the root filesystem is
/// read-only), holding the run directory.
const WORK_MOUNT: &str = "/userflux";
/// The file the engine writes when its run is prepared, which the
/// readinessProbe checks (on the emptyDir).
const READY_FILE: &str = "/userflux/ready";
/// The user the image runs as (Containerfile: nobody).
const NOBODY: u32 = 65534;
/// A ConfigMap holds at most 1 MiB.
const MAX_CONFIGMAP: usize = 1000 * 1024;
/// The config's TLS files: the key is secret, the certificates are not.
const TLS_FILES: [(&str, bool); 3] = [
    ("ca_file", false),
    ("client_cert", false),
    ("client_key", true),
];

pub fn run(cmd: &super::ClusterCmd) -> Out {
    match cmd {
        super::ClusterCmd::Manifest(args) => {
            let docs = manifest(args)?;
            if args.json {
                let list = json!({"apiVersion": "v1", "kind": "List", "items": docs.docs});
                put!(
                    "{}\n",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
            } else {
                let mut out = docs.header;
                for doc in &docs.docs {
                    out.push_str("---\n");
                    yaml(doc, 0, &mut out);
                }
                put!("{out}");
            }
            Ok(0)
        }
        super::ClusterCmd::Collect { logs, out, partial } => collect(logs, out, *partial),
    }
}

fn slug(s: &str, max: usize) -> String {
    let s: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let s = s.trim_matches('-');
    let s = if s.is_empty() { "run" } else { s };
    s.chars()
        .take(max)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// `KEY=VALUE` of `flag`, both non-empty.
fn key_value<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str), Fail> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k, v)),
        _ => Err(Fail(2, format!("{flag} {text}: KEY=VALUE"))),
    }
}

/// A toleration from `KEY[=VALUE][:EFFECT]` (what `kubectl taint` writes).
fn toleration(text: &str) -> Result<Value, Fail> {
    let (kv, effect) = match text.rsplit_once(':') {
        Some((kv, e)) => (kv, Some(e)),
        None => (text, None),
    };
    if let Some(e) = effect
        && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&e)
    {
        return Err(Fail(
            2,
            format!(
                "--toleration {text}: the effect \"{e}\" is not NoSchedule, PreferNoSchedule or NoExecute"
            ),
        ));
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (kv, None),
    };
    if key.is_empty() {
        return Err(Fail(2, format!("--toleration {text}: no key")));
    }
    let mut t = serde_json::Map::new();
    t.insert("key".into(), key.into());
    match value {
        Some(v) => {
            t.insert("operator".into(), "Equal".into());
            t.insert("value".into(), v.into());
        }
        None => {
            t.insert("operator".into(), "Exists".into());
        }
    }
    if let Some(e) = effect {
        t.insert("effect".into(), e.into());
    }
    Ok(Value::Object(t))
}

/// What `manifest` prints: a comment line and the objects.
pub struct Manifest {
    pub header: String,
    pub docs: Vec<Value>,
}

/// The ConfigMap, the Secret (when the config names a client key) and
/// the Indexed Job.
pub fn manifest(args: &ManifestArgs) -> Result<Manifest, Fail> {
    let (file, shards, cores) = (&args.config, args.shards, args.cores);
    if !(1..=userflux_engine::shard::MAX_SHARDS).contains(&shards) {
        return Err(Fail(
            2,
            format!(
                "--shards: 1 to {}, got {shards}",
                userflux_engine::shard::MAX_SHARDS
            ),
        ));
    }
    if !(1..=256).contains(&cores) {
        return Err(Fail(2, format!("--cores: 1 to 256, got {cores}")));
    }
    if !args.memory.starts_with(|c: char| c.is_ascii_digit())
        || !args
            .memory
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .chars()
            .all(|c| c.is_ascii_alphabetic())
    {
        return Err(Fail(
            2,
            format!("--memory {}: a quantity such as 2Gi or 512Mi", args.memory),
        ));
    }
    let wait = match &args.start_in {
        Some(s) => Some(
            humantime::parse_duration(s).map_err(|e| Fail(2, format!("--start-in {s}: {e}")))?,
        ),
        None => None,
    };
    humantime::parse_duration(&args.barrier_timeout).map_err(|e| {
        Fail(
            2,
            format!("--barrier-timeout {}: {e}", args.barrier_timeout),
        )
    })?;
    let (config, _) = Config::read(file)
        .map_err(|e| Fail(2, format!("invalid config:\n  {}", e.problems.join("\n  "))))?;
    let resolved = config
        .clone()
        .resolve()
        .map_err(|e| Fail(2, format!("invalid config:\n  {}", e.problems.join("\n  "))))?;
    // files the config names travel in the ConfigMap, a private key in the Secret
    let mut value = serde_json::to_value(&config).unwrap_or_default();
    let mut files: Vec<(String, String)> = Vec::new();
    let mut secrets: Vec<(String, String)> = Vec::new();
    let base = std::path::absolute(file)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let carry =
        |field: &mut Value, key: String, secret: bool| -> Result<Option<(String, String)>, Fail> {
            let Some(f) = field.as_str() else {
                return Ok(None);
            };
            let path = base.join(f);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Fail(2, format!("{}: {e}", path.display())))?;
            let mount = if secret { SECRET_MOUNT } else { MOUNT };
            *field = Value::String(format!("{mount}/{key}"));
            Ok(Some((key, text)))
        };
    if let Some(data) = value.get_mut("data").and_then(Value::as_object_mut) {
        for (name, spec) in data.iter_mut() {
            let ext = spec["file"]
                .as_str()
                .and_then(|f| Path::new(f).extension())
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(f) = spec.get_mut("file") {
                files.extend(carry(f, format!("data-{}.{ext}", slug(name, 40)), false)?);
            }
            if let Some(o) = spec.as_object_mut() {
                o.remove("sha256");
                o.remove("rows");
            }
        }
    }
    if let Some(tls) = value.get_mut("tls").and_then(Value::as_object_mut) {
        for (k, secret) in TLS_FILES {
            if let Some(f) = tls.get_mut(k) {
                let carried = carry(f, format!("tls-{}.pem", k.replace('_', "-")), secret)?;
                if secret {
                    secrets.extend(carried);
                } else {
                    files.extend(carried);
                }
            }
        }
    }
    let config_json = serde_json::to_string_pretty(&value).unwrap_or_default();
    let size = config_json.len() + files.iter().map(|(_, t)| t.len()).sum::<usize>();
    if size > MAX_CONFIGMAP {
        return Err(Fail(
            2,
            format!(
                "the config and its files are {size} bytes, over a ConfigMap's 1 MiB: put the data files in the image and name them by absolute path"
            ),
        ));
    }
    let now = std::time::SystemTime::now();
    let start_at = wait.map(|w| humantime::format_rfc3339_seconds(now + w).to_string());
    // One name per run, for every object and the group: the config's name
    // and the start time (or now, for a barrier). At most 63 characters
    // with the pod index (an Indexed Job's pod hostname is NAME-INDEX, a
    // DNS label).
    let stamp = start_at
        .clone()
        .unwrap_or_else(|| humantime::format_rfc3339_seconds(now).to_string());
    let name = format!(
        "userflux-{}-{}",
        slug(&resolved.name, 30),
        stamp.replace([':', '-'], "").to_ascii_lowercase()
    );
    let mut labels = serde_json::Map::new();
    for l in &args.labels {
        let (k, v) = key_value("--label", l)?;
        labels.insert(k.into(), v.into());
    }
    labels.insert("app.kubernetes.io/name".into(), "userflux".into());
    labels.insert("userflux.dev/group".into(), name.clone().into());
    let group_selector = json!({"matchLabels": {"userflux.dev/group": name}});
    let meta = json!({"name": name, "namespace": args.namespace, "labels": labels});
    let mut data = serde_json::Map::new();
    data.insert("config.json".into(), Value::String(config_json));
    for (k, t) in files {
        data.insert(k, Value::String(t));
    }
    let mut docs = vec![json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": data,
    })];
    let mut mounts = vec![
        json!({"name": "config", "mountPath": MOUNT, "readOnly": true}),
        json!({"name": "work", "mountPath": WORK_MOUNT}),
    ];
    let mut volumes = vec![
        json!({"name": "config", "configMap": {"name": name}}),
        json!({"name": "work", "emptyDir": {}}),
    ];
    if !secrets.is_empty() {
        let data: serde_json::Map<String, Value> = secrets
            .into_iter()
            .map(|(k, t)| (k, Value::String(t)))
            .collect();
        docs.push(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta,
            "type": "Opaque",
            "stringData": data,
        }));
        mounts.push(json!({"name": "secret", "mountPath": SECRET_MOUNT, "readOnly": true}));
        // readable by the pod's group (fsGroup) only: 0440
        volumes
            .push(json!({"name": "secret", "secret": {"secretName": name, "defaultMode": 0o440}}));
    }
    let term = json!({"labelSelector": group_selector, "topologyKey": "kubernetes.io/hostname"});
    let anti_affinity = if args.spread == "required" {
        json!({"requiredDuringSchedulingIgnoredDuringExecution": [term]})
    } else {
        json!({"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]})
    };
    let quantities = json!({"cpu": cores.to_string(), "memory": args.memory});
    let mut env = vec![
        json!({"name": CLUSTER_ENV, "value": "1"}),
        json!({"name": "USERFLUX_SHARD_COUNT", "value": shards.to_string()}),
        json!({"name": "USERFLUX_GROUP", "value": name}),
    ];
    // the service account the barrier lists pods with (a given one, or the run's own)
    let account = args.service_account.clone().unwrap_or_else(|| name.clone());
    match &start_at {
        Some(t) => env.push(json!({"name": "USERFLUX_START_AT", "value": t})),
        None => {
            env.extend([
                json!({"name": BARRIER_ENV, "value": name}),
                json!({"name": TIMEOUT_ENV, "value": args.barrier_timeout}),
                json!({"name": READY_FILE_ENV, "value": READY_FILE}),
            ]);
            docs.extend(rbac(&name, &account, &meta, args.service_account.is_none()));
        }
    }
    let mut pod = json!({
        "restartPolicy": "Never",
        // the engine's graceful stop, then its summary, before a SIGKILL
        "terminationGracePeriodSeconds": resolved.graceful_stop.0.as_secs() + 30,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": NOBODY,
            "runAsGroup": NOBODY,
            "fsGroup": NOBODY,
            "seccompProfile": {"type": "RuntimeDefault"}
        },
        "affinity": {"podAntiAffinity": anti_affinity},
        "containers": [{
            "name": "engine",
            "image": args.image,
            // the engine is PID 1: no shell between it and SIGTERM
            "command": [
                "userflux-engine", "run", "--config", format!("{MOUNT}/config.json"),
                "--run-dir", format!("{WORK_MOUNT}/run"), "--threads", cores.to_string(), "-q"
            ],
            "env": env,
            "resources": {"requests": quantities, "limits": quantities},
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]},
                "readOnlyRootFilesystem": true,
                "runAsNonRoot": true
            },
            "volumeMounts": mounts
        }],
        "volumes": volumes
    });
    let p = pod.as_object_mut().expect("an object");
    if !args.node_selector.is_empty() {
        let mut sel = serde_json::Map::new();
        for s in &args.node_selector {
            let (k, v) = key_value("--node-selector", s)?;
            sel.insert(k.into(), v.into());
        }
        p.insert("nodeSelector".into(), Value::Object(sel));
    }
    if !args.tolerations.is_empty() {
        let t = args
            .tolerations
            .iter()
            .map(|t| toleration(t))
            .collect::<Result<Vec<_>, _>>()?;
        p.insert("tolerations".into(), Value::Array(t));
    }
    if !args.image_pull_secrets.is_empty() {
        let s = args
            .image_pull_secrets
            .iter()
            .map(|n| json!({"name": n}))
            .collect();
        p.insert("imagePullSecrets".into(), Value::Array(s));
    }
    if start_at.is_none() {
        p.insert("serviceAccountName".into(), account.into());
        p.insert("automountServiceAccountToken".into(), true.into());
        // Ready once the engine has prepared its run (it writes the file),
        // which is what the barrier waits for on every pod
        p["containers"][0]["readinessProbe"] = json!({
            "exec": {"command": ["cat", READY_FILE]},
            "periodSeconds": 1,
            "failureThreshold": 1
        });
    } else if let Some(sa) = &args.service_account {
        p.insert("serviceAccountName".into(), sa.clone().into());
    }
    docs.push(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "completionMode": "Indexed",
            "completions": shards,
            "parallelism": shards,
            // Each index on its own, never retried: a failed shard neither
            // fails the others nor restarts (a retry would start late, out
            // of step with the run); the Job ends when every index has.
            "backoffLimitPerIndex": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": pod
            }
        }
    }));
    let when = start_at.map_or_else(
        || "starting when every pod is ready".to_string(),
        |t| format!("starting {t}"),
    );
    Ok(Manifest {
        header: format!(
            "# userfluxctl cluster manifest: {shards} shard(s) of {}, {when}\n# name: {name}\n",
            file.display()
        ),
        docs,
    })
}

/// What the barrier needs and no more: a Role that may get and list pods
/// in the namespace, bound to the pods' service account (the run's own,
/// created here when `own`).
fn rbac(name: &str, account: &str, meta: &Value, own: bool) -> Vec<Value> {
    let mut docs = Vec::new();
    if own {
        docs.push(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}));
    }
    docs.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta,
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    }));
    docs.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": meta["namespace"]}]
    }));
    docs
}

/// YAML of a JSON value: block maps and lists, strings JSON-quoted (a
/// JSON string is a YAML double-quoted scalar).
fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = serde_json::to_string(k).unwrap_or_default();
                match v {
                    Value::Object(o) if !o.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        yaml(v, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        yaml(v, indent, out);
                    }
                    _ => out.push_str(&format!("{pad}{key}: {}\n", scalar(v))),
                }
            }
        }
        Value::Array(a) => {
            for item in a {
                match item {
                    Value::Object(o) if !o.is_empty() => {
                        let mut inner = String::new();
                        yaml(item, indent + 2, &mut inner);
                        // the first key goes on the dash's line
                        let rest = inner.trim_start_matches(' ');
                        out.push_str(&format!("{pad}- {rest}"));
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", scalar(item))),
                }
            }
        }
        _ => out.push_str(&format!("{pad}{}\n", scalar(v))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

/// Every summary framed in `kubectl logs` output, into `OUT/shard-I/`:
/// its `summary.json`, and as `config.json` the run's config (saved first
/// as `OUT/config.json` from the ConfigMap) with the shard's `shard`. A pod
/// that failed (no summary, or one cut off) is said and passed over; the
/// shards missing at the end fail the collect unless `partial`.
fn collect(logs: &[PathBuf], out: &Path, partial: bool) -> Out {
    let config_file = out.join("config.json");
    let config_text = std::fs::read_to_string(&config_file).map_err(|e| {
        Fail(
            2,
            format!(
                "{}: {e} (save the run's config there first: kubectl get configmap NAME -o jsonpath='{{.data.config\\.json}}' > {})",
                config_file.display(),
                config_file.display()
            ),
        )
    })?;
    let config: Value = serde_json::from_str(&config_text)
        .map_err(|e| Fail(2, format!("{}: {e}", config_file.display())))?;
    let mut found = std::collections::BTreeSet::new();
    let mut count = None;
    for file in logs {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Fail(2, format!("{}: {e}", file.display())))?;
        let mut in_file = 0;
        let mut rest = text.as_str();
        while let Some(b) = rest.find(BEGIN) {
            // the pod's histograms, framed whole before its summary (a rotated log may have lost them)
            let timeline = rest[..b].rfind(TIMELINE_BEGIN).and_then(|tb| {
                let body = &rest[tb + TIMELINE_BEGIN.len()..b];
                body.find(TIMELINE_END).map(|te| body[..te].trim())
            });
            let after = &rest[b + BEGIN.len()..];
            let Some(e) = after.find(END) else {
                eprintln!(
                    "userfluxctl: {}: a summary begins and does not end (a pod cut off?); passed over",
                    file.display()
                );
                break;
            };
            rest = &after[e..];
            let summary: Value = match serde_json::from_str(after[..e].trim()) {
                Ok(s) => s,
                Err(err) => {
                    eprintln!(
                        "userfluxctl: {}: a framed summary is not JSON ({err}); passed over",
                        file.display()
                    );
                    continue;
                }
            };
            let shard = &summary["shard"];
            let (Some(i), Some(n)) = (shard["index"].as_u64(), shard["count"].as_u64()) else {
                return Err(Fail(
                    2,
                    format!("{}: a summary without a shard", file.display()),
                ));
            };
            match count {
                Some(c) if c != n => {
                    return Err(Fail(
                        2,
                        format!(
                            "{}: shard {i}/{n} is not of this run's {c} shards",
                            file.display()
                        ),
                    ));
                }
                _ => count = Some(n),
            }
            write_shard(out, &config, &summary, timeline, i, n, file)?;
            found.insert(i);
            in_file += 1;
        }
        if in_file == 0 {
            eprintln!(
                "userfluxctl: {}: no framed summary (a pod that failed before the end of its run?)",
                file.display()
            );
        }
    }
    let Some(n) = count else {
        return Err(Fail(
            2,
            format!("no framed summary ({BEGIN} … {END}) in the logs given"),
        ));
    };
    let missing: Vec<String> = (0..n)
        .filter(|i| !found.contains(i))
        .map(|i| i.to_string())
        .collect();
    out!(
        "collected {} of {n} shard(s) into {}; next: userfluxctl merge {}/shard-*{}",
        found.len(),
        out.display(),
        out.display(),
        if missing.is_empty() { "" } else { " --partial" }
    );
    if !missing.is_empty() {
        let msg = format!(
            "shard(s) {} of {n} have no summary in the logs given",
            missing.join(", ")
        );
        if !partial {
            return Err(Fail(
                1,
                format!("{msg} (the others are collected; --partial accepts that)"),
            ));
        }
        eprintln!("userfluxctl: {msg}");
    }
    Ok(0)
}

/// One shard's collected run directory, `OUT/shard-I/`.
fn write_shard(
    out: &Path,
    config: &Value,
    summary: &Value,
    timeline: Option<&str>,
    i: u64,
    n: u64,
    file: &Path,
) -> Result<(), Fail> {
    let dir = out.join(format!("shard-{i}"));
    std::fs::create_dir_all(&dir).map_err(|e| Fail(1, format!("{}: {e}", dir.display())))?;
    let mut config = config.clone();
    config["shard"] = Value::String(format!("{i}/{n}"));
    for (name, v) in [("summary.json", summary), ("config.json", &config)] {
        std::fs::write(
            dir.join(name),
            serde_json::to_string_pretty(v).unwrap_or_default(),
        )
        .map_err(|e| Fail(1, format!("{}: {e}", dir.display())))?;
    }
    let histograms = dir.join(userflux_engine::run::TIMELINE_HISTOGRAMS_FILE);
    match timeline.filter(|t| !t.is_empty()) {
        Some(t) => std::fs::write(&histograms, format!("{t}\n"))
            .map_err(|e| Fail(1, format!("{}: {e}", histograms.display())))?,
        None => {
            let _ = std::fs::remove_file(&histograms);
            eprintln!(
                "userfluxctl: {}: shard {i} has no per-second histograms in the logs; the merge gives its seconds' percentiles as requests-weighted means",
                file.display()
            );
        }
    }
    Ok(())
}
