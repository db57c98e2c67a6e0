//! `userfluxctl cluster`: a sharded run on Kubernetes. The distribution is
//! Kubernetes' own Indexed Job (each pod gets its index as
//! `JOB_COMPLETION_INDEX`, the engine's shard), not a home-made cluster.
//!
//! `manifest` prints a ConfigMap (the config, and any data or certificate
//! files it names) and the Job. Each pod runs its shard with one start time
//! for all and prints its per-second histograms
//! (`timeline-histograms.ndjson`) and then its summary, each between two
//! marker lines on stdout; `collect` reads `kubectl logs` output back into
//! run directories that `userfluxctl merge` joins. The summary comes last:
//! a log the kubelet rotated loses the histograms first (the merge then
//! gives per-second percentiles as requests-weighted means), not the summary.

use crate::{Fail, Out};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use userflux_engine::config::Config;

/// The lines a pod prints around its summary.
pub const BEGIN: &str = "USERFLUX-SUMMARY-BEGIN";
pub const END: &str = "USERFLUX-SUMMARY-END";
/// The lines a pod prints around its timeline's histograms (before the summary).
pub const TIMELINE_BEGIN: &str = "USERFLUX-TIMELINE-BEGIN";
pub const TIMELINE_END: &str = "USERFLUX-TIMELINE-END";
/// Where the ConfigMap is mounted in a pod.
const MOUNT: &str = "/etc/userflux";
/// A ConfigMap holds at most 1 MiB.
const MAX_CONFIGMAP: usize = 1000 * 1024;

pub fn run(cmd: &super::ClusterCmd) -> Out {
    match cmd {
        super::ClusterCmd::Manifest {
            config,
            shards,
            image,
            namespace,
            start_in,
            cores,
        } => {
            let yaml = manifest(config, *shards, image, namespace, start_in, *cores)?;
            put!("{yaml}");
            Ok(0)
        }
        super::ClusterCmd::Collect { logs, out } => collect(logs, out),
    }
}

fn slug(s: &str) -> String {
    let s: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let s = s.trim_matches('-');
    let s = if s.is_empty() { "run" } else { s };
    s.chars()
        .take(40)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// The YAML of the ConfigMap and the Indexed Job.
pub fn manifest(
    file: &Path,
    shards: u32,
    image: &str,
    namespace: &str,
    start_in: &str,
    cores: u32,
) -> Result<String, Fail> {
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
    let wait = humantime::parse_duration(start_in)
        .map_err(|e| Fail(2, format!("--start-in {start_in}: {e}")))?;
    let (config, _) = Config::read(file)
        .map_err(|e| Fail(2, format!("invalid config:\n  {}", e.problems.join("\n  "))))?;
    let resolved = config
        .clone()
        .resolve()
        .map_err(|e| Fail(2, format!("invalid config:\n  {}", e.problems.join("\n  "))))?;
    // files the config names travel in the ConfigMap
    let mut value = serde_json::to_value(&config).unwrap_or_default();
    let mut files: Vec<(String, String)> = Vec::new();
    let base = std::path::absolute(file)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let mut carry = |field: &mut Value, key: String| -> Result<(), Fail> {
        let Some(f) = field.as_str() else {
            return Ok(());
        };
        let path = base.join(f);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Fail(2, format!("{}: {e}", path.display())))?;
        *field = Value::String(format!("{MOUNT}/{key}"));
        files.push((key, text));
        Ok(())
    };
    if let Some(data) = value.get_mut("data").and_then(Value::as_object_mut) {
        for (name, spec) in data.iter_mut() {
            let ext = spec["file"]
                .as_str()
                .and_then(|f| Path::new(f).extension())
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(f) = spec.get_mut("file") {
                carry(f, format!("data-{}.{ext}", slug(name)))?;
            }
            if let Some(o) = spec.as_object_mut() {
                o.remove("sha256");
                o.remove("rows");
            }
        }
    }
    if let Some(tls) = value.get_mut("tls").and_then(Value::as_object_mut) {
        for k in ["ca_file", "client_cert", "client_key"] {
            if let Some(f) = tls.get_mut(k) {
                carry(f, format!("tls-{}.pem", k.replace('_', "-")))?;
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
    let start_at =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + wait).to_string();
    let name = format!("userflux-{}", slug(&resolved.name));
    let group = format!(
        "{name}-{}",
        start_at.replace([':', '-'], "").to_ascii_lowercase()
    );
    let labels = json!({"app.kubernetes.io/name": "userflux", "userflux.dev/group": slug(&group)});
    let mut data = serde_json::Map::new();
    data.insert("config.json".into(), Value::String(config_json));
    for (k, t) in files {
        data.insert(k, Value::String(t));
    }
    let configmap = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": data,
    });
    let script = format!(
        "userflux-engine run --config {MOUNT}/config.json --start-at \"$START_AT\" --group \"$GROUP\" \
         --run-dir /tmp/userflux-run -q --json > /tmp/summary.json; code=$?; \
         echo {TIMELINE_BEGIN}; cat /tmp/userflux-run/{timeline} 2>/dev/null; echo {TIMELINE_END}; \
         echo {BEGIN}; cat /tmp/summary.json; echo {END}; exit $code",
        timeline = userflux_engine::run::TIMELINE_HISTOGRAMS_FILE
    );
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": shards,
            "parallelism": shards,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": labels},
                            "topologyKey": "kubernetes.io/hostname"
                        }
                    }]}},
                    "containers": [{
                        "name": "engine",
                        "image": image,
                        "command": ["/bin/sh", "-c", script],
                        "env": [
                            {"name": "USERFLUX_SHARD_COUNT", "value": shards.to_string()},
                            {"name": "START_AT", "value": start_at},
                            {"name": "GROUP", "value": group}
                        ],
                        "resources": {
                            "requests": {"cpu": cores.to_string(), "memory": "1Gi"},
                            "limits": {"cpu": cores.to_string(), "memory": "2Gi"}
                        },
                        "volumeMounts": [{"name": "config", "mountPath": MOUNT, "readOnly": true}]
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": name}}]
                }
            }
        }
    });
    let mut out = String::new();
    out.push_str(&format!(
        "# userfluxctl cluster manifest: {shards} shard(s) of {}, starting {start_at}\n",
        file.display()
    ));
    for doc in [configmap, job] {
        out.push_str("---\n");
        yaml(&doc, 0, &mut out);
    }
    Ok(out)
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
/// as `OUT/config.json` from the ConfigMap) with the shard's `shard`.
fn collect(logs: &[PathBuf], out: &Path) -> Out {
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
    let mut found = 0;
    for file in logs {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Fail(2, format!("{}: {e}", file.display())))?;
        let mut rest = text.as_str();
        while let Some(b) = rest.find(BEGIN) {
            // the pod's histograms, framed whole before its summary (a rotated log may have lost them)
            let timeline = rest[..b].rfind(TIMELINE_BEGIN).and_then(|tb| {
                let body = &rest[tb + TIMELINE_BEGIN.len()..b];
                body.find(TIMELINE_END).map(|te| body[..te].trim())
            });
            let after = &rest[b + BEGIN.len()..];
            let Some(e) = after.find(END) else {
                return Err(Fail(
                    2,
                    format!(
                        "{}: a summary begins and does not end (a pod cut off?)",
                        file.display()
                    ),
                ));
            };
            let summary: Value = serde_json::from_str(after[..e].trim()).map_err(|err| {
                Fail(
                    2,
                    format!("{}: a framed summary is not JSON: {err}", file.display()),
                )
            })?;
            let shard = &summary["shard"];
            let (Some(i), Some(n)) = (shard["index"].as_u64(), shard["count"].as_u64()) else {
                return Err(Fail(
                    2,
                    format!("{}: a summary without a shard", file.display()),
                ));
            };
            let dir = out.join(format!("shard-{i}"));
            std::fs::create_dir_all(&dir)
                .map_err(|e| Fail(1, format!("{}: {e}", dir.display())))?;
            let mut config: Value = serde_json::from_str(&config_text)
                .map_err(|e| Fail(2, format!("{}: {e}", config_file.display())))?;
            config["shard"] = Value::String(format!("{i}/{n}"));
            for (name, v) in [("summary.json", &summary), ("config.json", &config)] {
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
            found += 1;
            rest = &after[e..];
        }
    }
    if found == 0 {
        return Err(Fail(
            2,
            format!("no framed summary ({BEGIN} … {END}) in the logs given"),
        ));
    }
    out!(
        "collected {found} shard(s) into {}; next: userfluxctl merge {}/shard-*",
        out.display(),
        out.display()
    );
    Ok(0)
}
