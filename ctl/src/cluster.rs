//! `userfluxctl cluster`: a sharded run on Kubernetes. The distribution is
//! Kubernetes' own Indexed Job (each pod gets its index as
//! `JOB_COMPLETION_INDEX`, the engine's shard), not a home-made cluster.
//!
//! `manifest` prints a ConfigMap (the config, and any data or certificate
//! files it names), a Secret (a client private key, if the config names
//! one), the start barrier's ServiceAccount, Role (get/list pods) and
//! RoleBinding, the Job, and with `--results-pvc` a reader pod, all named
//! after the run so runs don't collide. The pods are Guaranteed QoS and
//! pass the restricted Pod Security level. Each pod's command is the
//! engine itself (PID 1: SIGTERM reaches it) in cluster mode
//! (`USERFLUX_CLUSTER=1`): it runs its shard with one start time for all
//! (the barrier's, see `userflux_engine::barrier`, or `--start-in`'s),
//! exits 0 when its run completed whatever its thresholds
//! (the merge judges them; a 99 used to fail the Job and kill the other
//! pods), and prints its per-second histograms and then its summary, each
//! between two marker lines on stdout; `collect` reads `kubectl logs` output
//! back into run directories that `userfluxctl merge` joins. The summary
//! comes last: a log the kubelet rotated loses the histograms first (the
//! merge then gives per-second percentiles as requests-weighted means), not
//! the summary.

mod collect;

use crate::{Fail, Out};
use clap::Subcommand;
use serde_json::{Value, json};
use std::path::Path;
use std::path::PathBuf;
use userflux_engine::barrier::{BARRIER_ENV, READY_FILE_ENV, TIMEOUT_ENV};
use userflux_engine::cluster::CLUSTER_ENV;
use userflux_engine::config::Config;

#[derive(Subcommand)]
pub(crate) enum ClusterCmd {
    /// Print the YAML of a ConfigMap (the config), a Secret (a client key,
    /// if any) and an Indexed Job (N shards), all named after the run.
    Manifest(Box<ManifestArgs>),
    /// Read each shard's run from `kubectl logs` output (one file per pod,
    /// or one file with all) into run directories under OUT, for `merge`.
    Collect {
        /// Files of `kubectl logs` output.
        #[arg(required = true)]
        logs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Succeed with the shards found when some are missing (a failed
        /// pod); then `merge --partial` joins them.
        #[arg(long)]
        partial: bool,
    },
}

#[derive(clap::Args)]
pub(crate) struct ManifestArgs {
    config: PathBuf,
    /// Shards (pods), each a share of the config.
    #[arg(long)]
    shards: u32,
    /// The engine's image (see Containerfile).
    #[arg(long)]
    image: String,
    #[arg(long, default_value = "default")]
    namespace: String,
    /// A fixed start time, this long from now, instead of the barrier
    /// (every pod waits for it; one that starts later fails).
    #[arg(long, value_name = "DURATION")]
    start_in: Option<String>,
    /// The barrier (the default): how long a pod waits for every pod to be
    /// ready before it fails.
    #[arg(
        long,
        default_value = "10m",
        value_name = "DURATION",
        conflicts_with = "start_in"
    )]
    barrier_timeout: String,
    /// Whole CPU cores each pod gets (requests = limits: Guaranteed QoS;
    /// one pinned worker per core).
    #[arg(long, default_value_t = 2)]
    cores: u32,
    /// Memory each pod gets (requests = limits), e.g. 2Gi.
    #[arg(long, default_value = "2Gi")]
    memory: String,
    /// Pods on distinct nodes: `preferred` (the scheduler tries) or
    /// `required` (a pod waits for a node of its own).
    #[arg(long, default_value = "preferred", value_parser = ["preferred", "required"])]
    spread: String,
    /// A node label the pods need, KEY=VALUE (repeatable).
    #[arg(long = "node-selector", value_name = "KEY=VALUE")]
    node_selector: Vec<String>,
    /// A taint the pods tolerate, `KEY[=VALUE][:EFFECT]` as `kubectl taint`
    /// writes it (repeatable; without a value, any value).
    #[arg(long = "toleration", value_name = "KEY[=VALUE][:EFFECT]")]
    tolerations: Vec<String>,
    /// A Secret for pulling the image (repeatable).
    #[arg(long = "image-pull-secret", value_name = "NAME")]
    image_pull_secrets: Vec<String>,
    /// The pods' service account (default: one of the run's own, which the
    /// barrier's Role lets list pods; a given one is bound to that Role).
    #[arg(long, value_name = "NAME")]
    service_account: Option<String>,
    /// A label on every object and pod, KEY=VALUE (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Each pod writes its whole run directory (summary, per-second
    /// histograms, samples, logs) to this PersistentVolumeClaim (ReadWriteMany),
    /// under /results/NAME/shard-I; a reader pod mounts it for `kubectl cp`.
    #[arg(long, value_name = "CLAIM")]
    results_pvc: Option<String>,
    /// Print JSON (a `v1` List) instead of YAML; `kubectl apply -f` takes either.
    #[arg(long)]
    json: bool,
}

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
/// Where `--results-pvc` is mounted.
const RESULTS_MOUNT: &str = "/results";
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

pub fn run(cmd: &ClusterCmd) -> Out {
    match cmd {
        ClusterCmd::Manifest(args) => {
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
        ClusterCmd::Collect { logs, out, partial } => collect::collect(logs, out, *partial),
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
    // the shards' pods only (not the results reader): they spread over nodes
    let mut shard_labels = labels.clone();
    shard_labels.insert("app.kubernetes.io/component".into(), "shard".into());
    let group_selector = json!({"matchLabels": {"userflux.dev/group": name, "app.kubernetes.io/component": "shard"}});
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
    let run_dir = match &args.results_pvc {
        Some(claim) => {
            mounts.push(json!({"name": "results", "mountPath": RESULTS_MOUNT}));
            volumes.push(json!({"name": "results", "persistentVolumeClaim": {"claimName": claim}}));
            // the kubelet puts the pod's index in (an Indexed Job's env)
            format!("{RESULTS_MOUNT}/{name}/shard-$(JOB_COMPLETION_INDEX)")
        }
        None => format!("{WORK_MOUNT}/run"),
    };
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
                "--run-dir", run_dir, "--threads", cores.to_string(), "-q"
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
                "metadata": {"labels": shard_labels},
                "spec": pod
            }
        }
    }));
    if let Some(claim) = &args.results_pvc {
        docs.push(reader(&name, claim, &meta, &labels, &docs));
    }
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

/// A pod that only holds the results claim mounted (read-only), so that
/// `kubectl cp` can copy the run directories off it: `NAME-results`,
/// placed and secured as the shards' pods are.
fn reader(
    name: &str,
    claim: &str,
    meta: &Value,
    labels: &serde_json::Map<String, Value>,
    docs: &[Value],
) -> Value {
    let shard_pod = &docs.last().expect("the Job")["spec"]["template"]["spec"];
    let mut meta = meta.clone();
    meta["name"] = format!("{name}-results").into();
    let small = json!({"cpu": "100m", "memory": "64Mi"});
    let mut pod = json!({
        "restartPolicy": "Never",
        "automountServiceAccountToken": false,
        "securityContext": shard_pod["securityContext"],
        "containers": [{
            "name": "results",
            "image": shard_pod["containers"][0]["image"],
            // a day to copy the results; `kubectl delete -f` ends it sooner
            "command": ["sleep", "86400"],
            "resources": {"requests": small, "limits": small},
            "securityContext": shard_pod["containers"][0]["securityContext"],
            "volumeMounts": [{"name": "results", "mountPath": RESULTS_MOUNT, "readOnly": true}]
        }],
        "volumes": [{"name": "results", "persistentVolumeClaim": {"claimName": claim, "readOnly": true}}]
    });
    for k in ["nodeSelector", "tolerations", "imagePullSecrets"] {
        if let Some(v) = shard_pod.get(k) {
            pod[k] = v.clone();
        }
    }
    let mut meta_labels = labels.clone();
    meta_labels.insert("app.kubernetes.io/component".into(), "results".into());
    meta["labels"] = Value::Object(meta_labels);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod})
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_as_kubectl_taint_writes_them() {
        let t = |s: &str| toleration(s).map_err(|Fail(_, m)| m);
        assert_eq!(
            t("dedicated=load:NoSchedule").unwrap(),
            json!({"key": "dedicated", "operator": "Equal", "value": "load", "effect": "NoSchedule"})
        );
        assert_eq!(
            t("spot:NoExecute").unwrap(),
            json!({"key": "spot", "operator": "Exists", "effect": "NoExecute"})
        );
        assert_eq!(
            t("spot").unwrap(),
            json!({"key": "spot", "operator": "Exists"})
        );
        assert!(t("a=b:Sometimes").unwrap_err().contains("\"Sometimes\""));
        assert!(t("=b").unwrap_err().contains("no key"));
    }

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(slug("Shop: checkout (v2)", 30), "shop--checkout--v2");
        assert_eq!(slug("---", 30), "run");
        assert_eq!(slug(&"a-".repeat(40), 30).len(), 29);
        assert!(key_value("--label", "team=perf").is_ok());
        for bad in ["team", "=perf", "team="] {
            assert!(key_value("--label", bad).is_err(), "{bad}");
        }
    }
}
