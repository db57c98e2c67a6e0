//! Merging the run directories of a sharded run (`userfluxctl merge`) into
//! one run directory, as if one engine had run the whole config.
//!
//! Each shard's summary is turned back into the counts and HDR histograms
//! it was built from (the histograms are in it, V2 encoded, full range), the
//! shards' counts are added and their histograms decoded and added, and the
//! merged summary is built by the same code that builds a run's
//! ([`crate::run::build_summary`]): every whole-run percentile is computed
//! from the merged histograms, and the thresholds are judged on the merged
//! result. A merged second's counts are sums; its percentiles come from the
//! shards' per-second histograms (`timeline-histograms.ndjson`, which every
//! shard writes) added, so they too are exact. Shards without that file
//! (written by an older engine) give requests-weighted means of their
//! per-second percentiles (said in the README).

use crate::aggregator::Outcome;
use crate::config::Config;
use crate::rundir::RunDir;
use crate::server_timing::Timings;
use crate::stats::{EndpointStats, ErrorKind, FlowStats, Hist, new_histogram};
use crate::summary::{
    MetricSecond, SUMMARY_SCHEMA, Second, SecondEndpoint, SecondFlow, SecondHistograms, Summary,
    decode_histogram, percentile_ms,
};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One shard's run directory, read.
pub struct ShardRun {
    pub dir: PathBuf,
    /// The config as it ran (the merged run's `config.json`, less `shard`).
    pub raw_config: serde_json::Value,
    /// The same, as merge reads it (templates read as text, see `offline`).
    pub config: Config,
    pub summary: Summary,
    /// Its timeline as histograms, by second (absent from an older engine's shard).
    pub seconds: Option<BTreeMap<u64, SecondHistograms>>,
}

/// Reads `timeline-histograms.ndjson` (its histograms stay encoded, a few
/// hundred bytes each, until their second is merged); a line that does not
/// parse is an error naming the file and line.
fn read_seconds(path: &Path) -> Result<Option<BTreeMap<u64, SecondHistograms>>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut seconds = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let s: SecondHistograms =
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        seconds.insert(s.t, s);
    }
    Ok(Some(seconds))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

impl ShardRun {
    pub fn read(dir: &Path) -> Result<ShardRun, String> {
        let file = dir.join("summary.json");
        let value: serde_json::Value = read_json(&file)?;
        if value["schema"] != SUMMARY_SCHEMA {
            return Err(format!(
                "{}: schema {} is not {SUMMARY_SCHEMA}",
                file.display(),
                value["schema"]
            ));
        }
        let summary: Summary =
            serde_json::from_value(value).map_err(|e| format!("{}: {e}", file.display()))?;
        if summary.shard.is_none() {
            return Err(format!(
                "{}: not a shard's run (no \"shard\")",
                file.display()
            ));
        }
        let raw_config: serde_json::Value = read_json(&dir.join("config.json"))?;
        let config = Config::from_value(raw_config.clone())
            .map(offline)
            .and_then(Config::resolve)
            .map_err(|e| format!("{}: {e}", dir.join("config.json").display()))?;
        let seconds = read_seconds(&dir.join(crate::run::TIMELINE_HISTOGRAMS_FILE))?;
        Ok(ShardRun {
            dir: dir.to_path_buf(),
            raw_config,
            config,
            summary,
            seconds,
        })
    }
}

/// The config as merge needs it: names, flows, thresholds, checks, the
/// load's shape. Files it named on the machine that ran it (data sets,
/// certificates) need not exist where the merge runs, so templates become
/// their literal text and the data sets and TLS files are left out.
fn offline(mut c: Config) -> Config {
    fn literal(s: &mut String) {
        while let Some(a) = s.find("{{") {
            let end = s[a..].find("}}").map_or(s.len(), |b| a + b + 2);
            s.replace_range(a..end, "x");
        }
    }
    let request = |path: &mut Option<String>,
                   headers: &mut BTreeMap<String, String>,
                   body: &mut Option<String>| {
        path.iter_mut().for_each(literal);
        headers.values_mut().for_each(literal);
        body.iter_mut().for_each(literal);
    };
    for e in &mut c.endpoints {
        request(&mut e.path, &mut e.headers, &mut e.body);
    }
    for f in &mut c.flows {
        for s in &mut f.steps {
            request(&mut s.path, &mut s.headers, &mut s.body);
        }
    }
    c.data.clear();
    c.tls = None;
    c
}

/// Checks that the runs are shards of one sharded run; returns the count
/// and the missing indexes (an error unless `partial`).
pub fn check(runs: &[ShardRun], partial: bool) -> Result<(u32, Vec<u32>), String> {
    let first = runs.first().ok_or("no shards given")?;
    let info = first.summary.shard.as_ref().expect("read checks it");
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for r in runs {
        let s = r.summary.shard.as_ref().expect("read checks it");
        let file = r.dir.join("summary.json");
        if s.group != info.group {
            return Err(format!(
                "{}: group \"{}\" is not \"{}\" ({}): shards of another run",
                file.display(),
                s.group,
                info.group,
                first.dir.display()
            ));
        }
        if s.config_sha256 != info.config_sha256 || s.count != info.count {
            return Err(format!(
                "{}: another config (or shard count) than {}",
                file.display(),
                first.dir.display()
            ));
        }
        if let Some(other) = seen.insert(s.index, &r.dir) {
            return Err(format!(
                "{}: shard {}/{} is also {}",
                r.dir.display(),
                s.index,
                s.count,
                other.display()
            ));
        }
    }
    let missing: Vec<u32> = (0..info.count).filter(|i| !seen.contains_key(i)).collect();
    if !missing.is_empty() && !partial {
        let list: Vec<String> = missing
            .iter()
            .map(|i| format!("{i}/{}", info.count))
            .collect();
        return Err(format!(
            "missing shard(s) {} (give --partial to merge what there is)",
            list.join(", ")
        ));
    }
    Ok((info.count, missing))
}

fn hist(s: Option<&String>) -> Option<Histogram<u64>> {
    s.and_then(|t| decode_histogram(t).ok())
}

/// A shard's row counts and histograms, back from its summary.
fn endpoint_stats(summary: &Summary, name: &str, checks: &[&str]) -> EndpointStats {
    let mut e = EndpointStats::new();
    let Some(s) = summary.endpoints.get(name) else {
        return e;
    };
    if let Some(h) = hist(summary.histograms.get(name)) {
        e.latency.add_hdr(&h);
    }
    e.corrected = hist(summary.histograms_corrected.get(name)).map(Hist::from);
    e.requests = s.requests;
    e.errors = s.errors;
    e.bytes_in = s.bytes_in;
    e.bytes_out = s.bytes_out;
    e.dropped = s.dropped;
    e.late = s.late;
    for (code, n) in &s.status_codes {
        if let Ok(c) = code.parse::<usize>() {
            e.status
                .add(c.min(crate::stats::STATUS_SLOTS - 1) as u16, *n);
        }
    }
    for k in ErrorKind::ALL {
        e.error_kinds[k as usize] = s.error_kinds.get(k.as_str()).copied().unwrap_or(0);
    }
    let mut timings = Timings::default();
    for (metric, m) in &s.server_timing {
        if let Some(h) = hist(Some(&m.histogram)) {
            timings.names.push(metric.as_str().into());
            timings.hists.push(h.into());
        }
    }
    timings.malformed = s.server_timing_malformed;
    e.server_timing = timings;
    e.checks = checks
        .iter()
        .map(|c| s.checks.get(*c).map_or([0, 0], |c| [c.passes, c.fails]))
        .collect();
    let phases = summary.histograms_phases.get(name);
    e.connecting = hist(phases.and_then(|p| p.get("connect"))).map(Hist::from);
    e.tls_handshaking = hist(phases.and_then(|p| p.get("tls_handshake"))).map(Hist::from);
    e.waiting = hist(phases.and_then(|p| p.get("waiting"))).map(Hist::from);
    e.tls_resumed = s.tls_resumed;
    e
}

/// A requests-weighted mean of per-shard percentiles.
fn weighted(parts: &[(u64, Option<f64>)]) -> Option<f64> {
    let (sum, n) = parts.iter().fold((0.0, 0u64), |(s, n), (w, v)| match v {
        Some(v) => (s + *w as f64 * v, n + w),
        None => (s, n),
    });
    (n > 0).then(|| sum / n as f64)
}

/// Second `second`'s percentiles (and Server-Timing) from the shards'
/// histograms of it, added: exact, as one engine's would be. Each histogram
/// is decoded here, once; one that does not decode names its shard.
fn exact_second(second: &mut Second, shards: &[(&Path, &SecondHistograms)]) -> Result<(), String> {
    let t = second.t;
    let decode = |dir: &Path, b: &String| {
        decode_histogram(b).map_err(|e| {
            format!(
                "{}: second {t}: a histogram does not decode: {e}",
                dir.join(crate::run::TIMELINE_HISTOGRAMS_FILE).display()
            )
        })
    };
    let mut all = new_histogram();
    for (name, e) in second.endpoints.iter_mut() {
        let mut h = new_histogram();
        let mut metrics: BTreeMap<&str, Histogram<u64>> = BTreeMap::new();
        for (dir, eh) in shards
            .iter()
            .filter_map(|(d, s)| Some((d, s.endpoints.get(name)?)))
        {
            if let Some(b) = &eh.latency {
                h.add(decode(dir, b)?).expect("grows to fit");
            }
            for (m, b) in &eh.server_timing {
                let acc = metrics.entry(m).or_insert_with(new_histogram);
                acc.add(decode(dir, b)?).expect("grows to fit");
            }
        }
        e.p50 = percentile_ms(&h, 50.0);
        e.p95 = percentile_ms(&h, 95.0);
        e.p99 = percentile_ms(&h, 99.0);
        e.server_timing = metrics
            .iter()
            .map(|(m, h)| (m.to_string(), MetricSecond::of(h)))
            .collect();
        all.add(&h).expect("grows to fit");
    }
    second.p50 = percentile_ms(&all, 50.0);
    second.p95 = percentile_ms(&all, 95.0);
    second.p99 = percentile_ms(&all, 99.0);
    for (name, f) in second.flows.iter_mut() {
        let mut h = new_histogram();
        for (dir, b) in shards
            .iter()
            .filter_map(|(d, s)| Some((d, s.flows.get(name)?)))
        {
            h.add(decode(dir, b)?).expect("grows to fit");
        }
        f.p50 = percentile_ms(&h, 50.0);
        f.p99 = percentile_ms(&h, 99.0);
    }
    Ok(())
}

fn merge_timeline(runs: &[ShardRun]) -> Result<Vec<Second>, String> {
    // every shard's seconds as histograms, or (an older engine's shard) none
    let exact: Option<Vec<&BTreeMap<u64, SecondHistograms>>> =
        runs.iter().map(|r| r.seconds.as_ref()).collect();
    // ... and only when they cover every second that had a latency
    let exact = exact.filter(|maps| {
        runs.iter().zip(maps).all(|(r, m)| {
            (r.summary.timeline.iter()).all(|s| s.p50.is_none() || m.contains_key(&s.t))
        })
    });
    let mut by_t: BTreeMap<u64, Vec<&Second>> = BTreeMap::new();
    for r in runs {
        for s in &r.summary.timeline {
            by_t.entry(s.t).or_default().push(s);
        }
    }
    by_t.into_iter()
        .map(|(t, parts)| {
            let pct = |f: fn(&Second) -> Option<f64>| {
                weighted(&parts.iter().map(|s| (s.requests, f(s))).collect::<Vec<_>>())
            };
            let mut endpoints: BTreeMap<String, SecondEndpoint> = BTreeMap::new();
            let names: std::collections::BTreeSet<&String> =
                parts.iter().flat_map(|s| s.endpoints.keys()).collect();
            for name in names {
                let es: Vec<&SecondEndpoint> =
                    parts.iter().filter_map(|s| s.endpoints.get(name)).collect();
                let p = |f: fn(&SecondEndpoint) -> Option<f64>| {
                    weighted(&es.iter().map(|e| (e.requests, f(e))).collect::<Vec<_>>())
                };
                endpoints.insert(
                    name.clone(),
                    SecondEndpoint {
                        requests: es.iter().map(|e| e.requests).sum(),
                        errors: es.iter().map(|e| e.errors).sum(),
                        rps: es.iter().map(|e| e.rps).sum(),
                        p50: p(|e| e.p50),
                        p95: p(|e| e.p95),
                        p99: p(|e| e.p99),
                        vus: es.iter().map(|e| e.vus).sum(),
                        server_timing: BTreeMap::new(),
                    },
                );
            }
            let mut flows: BTreeMap<String, SecondFlow> = BTreeMap::new();
            let fnames: std::collections::BTreeSet<&String> =
                parts.iter().flat_map(|s| s.flows.keys()).collect();
            for name in fnames {
                let fs: Vec<&SecondFlow> = parts.iter().filter_map(|s| s.flows.get(name)).collect();
                let p = |f: fn(&SecondFlow) -> Option<f64>| {
                    weighted(&fs.iter().map(|e| (e.iterations, f(e))).collect::<Vec<_>>())
                };
                flows.insert(
                    name.clone(),
                    SecondFlow {
                        iterations: fs.iter().map(|f| f.iterations).sum(),
                        failed: fs.iter().map(|f| f.failed).sum(),
                        rate: fs.iter().map(|f| f.rate).sum(),
                        p50: p(|f| f.p50),
                        p99: p(|f| f.p99),
                        vus: fs.iter().map(|f| f.vus).sum(),
                    },
                );
            }
            let mut second = Second {
                t,
                requests: parts.iter().map(|s| s.requests).sum(),
                errors: parts.iter().map(|s| s.errors).sum(),
                rps: parts.iter().map(|s| s.rps).sum(),
                p50: pct(|s| s.p50),
                p95: pct(|s| s.p95),
                p99: pct(|s| s.p99),
                vus: parts.iter().map(|s| s.vus).sum(),
                endpoints,
                flows,
            };
            if let Some(shards) = &exact {
                let hists: Vec<(&Path, &SecondHistograms)> = (runs.iter().zip(shards))
                    .filter_map(|(r, m)| Some((r.dir.as_path(), m.get(&t)?)))
                    .collect();
                exact_second(&mut second, &hists)?;
            }
            Ok(second)
        })
        .collect()
}

/// Merges the shards into `out` (a new or empty directory): config,
/// status, summary, every shard's logs, and their samples when all have
/// them. Returns the merged summary.
pub fn merge(runs: &[ShardRun], missing: &[u32], out: &Path) -> Result<Summary, String> {
    let first = runs.first().ok_or("no shards given")?;
    let mut config = first.config.clone();
    config.shard = None;
    let plan = crate::run::prepare_with(&config, false).map_err(|e| e.to_string())?;
    let mut endpoints: Vec<EndpointStats> = plan
        .endpoints
        .iter()
        .map(|_| EndpointStats::new())
        .collect();
    let mut final_vus = vec![0u32; plan.endpoints.len()];
    let mut flows: Vec<FlowStats> = plan.flows.iter().map(|_| FlowStats::default()).collect();
    let mut load_seconds: f64 = 0.0;
    let mut elapsed: f64 = 0.0;
    let mut scaling = Vec::new();
    for r in runs {
        let s = &r.summary;
        for (i, e) in plan.endpoints.iter().enumerate() {
            let checks: Vec<&str> = e.checks.iter().map(|(n, _)| n.as_str()).collect();
            endpoints[i].add(&endpoint_stats(s, &e.name, &checks));
            // VUs are a unit's (a flow's first step carries them)
            if e.unit {
                let vus = match &e.step {
                    Some(st) => s.flows.get(&plan.flows[st.flow].name).map_or(0, |f| f.vus),
                    None => s.endpoints.get(&e.name).map_or(0, |x| x.vus),
                };
                final_vus[i] += vus;
            }
        }
        for (f, fp) in flows.iter_mut().zip(&plan.flows) {
            if let Some(fs) = s.flows.get(&fp.name) {
                let mut part = FlowStats {
                    iterations: fs.iterations,
                    failed: fs.failed_iterations,
                    interrupted: fs.interrupted_iterations,
                    duration: Hist::new(),
                };
                if let Some(h) = hist(Some(&fs.histogram)) {
                    part.duration.add_hdr(&h);
                }
                f.add(&part);
            }
        }
        if s.totals.rps > 0.0 {
            load_seconds = load_seconds.max(s.totals.requests as f64 / s.totals.rps);
        }
        elapsed = elapsed.max(s.duration_s);
        let index = s.shard.as_ref().map(|x| x.index);
        scaling.extend(s.scaling_events.iter().cloned().map(|mut e| {
            e.shard = index;
            e
        }));
    }
    scaling.sort_by(|a, b| a.t.total_cmp(&b.t));
    if load_seconds <= 0.0 {
        load_seconds = plan.duration.as_secs_f64().max(1e-3);
    }
    let worst = |f: fn(&Summary) -> Option<String>| runs.iter().find_map(|r| f(&r.summary));
    let outcome = Outcome {
        endpoints,
        flows,
        timeline: merge_timeline(runs)?,
        final_vus,
        stopped: worst(|s| s.stop_reason.clone()),
        load_seconds,
        elapsed_seconds: elapsed,
        scaling_events: scaling,
        aborted_by: None,
        halted: None,
        failed: runs
            .iter()
            .find(|r| r.summary.state == crate::summary::RunState::Failed)
            .map(|r| format!("shard {} failed", r.dir.display())),
    };
    let dir = if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| e.to_string())?
            .next()
            .is_some()
    {
        return Err(format!(
            "{}: not empty; a merge writes a new run directory",
            out.display()
        ));
    } else {
        RunDir::at(out).map_err(|e| format!("{}: {e}", out.display()))?
    };
    let started = runs
        .iter()
        .map(|r| r.summary.started_at.clone())
        .min()
        .unwrap_or_default();
    let mut summary = crate::run::build_summary(&config, &plan, &dir, started, outcome, Vec::new());
    summary.engine.threads = runs.iter().map(|r| r.summary.engine.threads).sum();
    summary.engine.cpu_user_s = runs.iter().map(|r| r.summary.engine.cpu_user_s).sum();
    summary.engine.cpu_system_s = runs.iter().map(|r| r.summary.engine.cpu_system_s).sum();
    summary.ended_at = runs
        .iter()
        .map(|r| r.summary.ended_at.clone())
        .max()
        .unwrap_or_default();
    if !missing.is_empty() {
        let list: Vec<String> = missing
            .iter()
            .map(|i| {
                format!(
                    "{i}/{}",
                    first.summary.shard.as_ref().map_or(0, |s| s.count)
                )
            })
            .collect();
        summary.stop_reason = Some(format!(
            "partial merge: shard(s) {} missing",
            list.join(", ")
        ));
    }
    let mut raw = first.raw_config.clone();
    if let Some(o) = raw.as_object_mut() {
        o.remove("shard");
    }
    write(&dir, &config, &raw, &summary, runs).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(summary)
}

fn write(
    dir: &RunDir,
    config: &Config,
    raw: &serde_json::Value,
    summary: &Summary,
    runs: &[ShardRun],
) -> std::io::Result<()> {
    dir.write_json("config.json", raw)?;
    let mut status = crate::status::Status::new(summary.state, &dir.run_id, config, None);
    status.started_at = Some(summary.started_at.clone());
    status.ended_at = Some(summary.ended_at.clone());
    status.progress.requests = summary.totals.requests;
    status.progress.errors = summary.totals.errors;
    status.exit_code = Some(if summary.failed_thresholds() > 0 {
        99
    } else {
        0
    });
    dir.write_json("status.json", &status)?;
    dir.write_json("summary.json", summary)?;
    for r in runs {
        let index = r.summary.shard.as_ref().map_or(0, |s| s.index);
        if let Ok(text) = std::fs::read_to_string(r.dir.join("logs.txt")) {
            for line in text.lines() {
                dir.log(&format!("shard {index}: {line}"))?;
            }
        }
    }
    dir.log(&format!("merged {} shard(s)", runs.len()))?;
    if runs
        .iter()
        .all(|r| r.dir.join(crate::run::SAMPLES_FILE).exists())
    {
        let mut out = std::fs::File::create(dir.file(crate::run::SAMPLES_FILE))?;
        for r in runs {
            let mut f = std::fs::File::open(r.dir.join(crate::run::SAMPLES_FILE))?;
            std::io::copy(&mut f, &mut out)?;
        }
    }
    Ok(())
}
