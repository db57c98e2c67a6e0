//! `userfluxctl cluster collect`: each shard's run back from `kubectl logs`
//! output (the frames a pod in cluster mode prints: its per-second
//! histograms, then its summary) into run directories `merge` joins. A
//! failed pod is said and passed over, so the others still merge
//! (`--partial`); a log as large as the kubelet rotates is said too.

use crate::{Fail, Out};
use serde_json::Value;
use std::path::{Path, PathBuf};
use userflux_engine::cluster::{BEGIN, END, TIMELINE_BEGIN, TIMELINE_END};

/// The kubelet's default `containerLogMaxSize`: a log this large may have
/// been rotated, its beginning (the histograms) gone.
const LOG_ROTATE: usize = 10 * 1024 * 1024;

/// Every summary framed in `kubectl logs` output, into `OUT/shard-I/`:
/// its `summary.json`, and as `config.json` the run's config (saved first
/// as `OUT/config.json` from the ConfigMap) with the shard's `shard`. A pod
/// that failed (no summary, or one cut off) is said and passed over; the
/// shards missing at the end fail the collect unless `partial`.
pub fn collect(logs: &[PathBuf], out: &Path, partial: bool) -> Out {
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
        if text.len() >= LOG_ROTATE {
            eprintln!(
                "userfluxctl: {}: {} MiB, as large as the kubelet's log rotation (10 MiB by default): \
                 its beginning may be lost (the per-second histograms first); cluster manifest \
                 --results-pvc keeps whole run directories",
                file.display(),
                text.len() / (1024 * 1024)
            );
        }
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
