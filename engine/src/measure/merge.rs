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
//!
//! One room past 800 lines (tests in `merge/tests.rs`): reading shards
//! back, checking they belong together and adding them is one job; each
//! part checks what the next relies on.

use crate::aggregator::Outcome;
use crate::config::Config;
use crate::h2_stats::H2Stats;
use crate::rundir::RunDir;
use crate::server_timing::Timings;
use crate::stats::{EndpointStats, ErrorKind, FlowStats, Hist, new_histogram};
use crate::summary::{
    H2_PING_RTT, H2_SETTINGS, H2Summary, MetricSecond, SUMMARY_SCHEMA, Second, SecondEndpoint,
    SecondFlow, SecondHistograms, Summary, decode_histogram, percentile_ms,
};
use crate::thresholds::{EndpointView, Reads, Threshold, ThresholdResult};
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

/// Decodes a histogram of shard `dir`'s summary; one that does not decode
/// is an error naming the file and what it held.
fn hist(dir: &Path, what: &str, b64: Option<&String>) -> Result<Option<Histogram<u64>>, String> {
    b64.map(|b| {
        decode_histogram(b).map_err(|e| {
            format!(
                "{}: {what}: the histogram does not decode: {e}",
                dir.join("summary.json").display()
            )
        })
    })
    .transpose()
}

/// A shard's latency per code (`histograms_status.NAME` or
/// `histograms_grpc_status.NAME`) rebuilt: `code` maps a key to its code,
/// `None` for the pooled `other`, or says why the key is unknown. A
/// shard's own codes come first, in key order, then its pooled ones.
fn by_code(
    dir: &Path,
    field: &str,
    name: &str,
    by: &BTreeMap<String, String>,
    code: impl Fn(&str) -> Result<Option<u16>, String>,
) -> Result<crate::stats::ByStatus, String> {
    let mut b = crate::stats::ByStatus::default();
    for (key, text) in by {
        let what = format!("{field}.{name}.{key}");
        let Some(h) = hist(dir, &what, Some(text))? else {
            continue;
        };
        match code(key).map_err(|e| format!("{}: {what}: {e}", dir.display()))? {
            Some(c) => b.codes.push((c, h.into())),
            None => b.other = Some(h.into()),
        }
    }
    Ok(b)
}

/// What a shard's summary lacks of one endpoint (written by an older
/// engine, or edited): the thresholds that read it cannot be judged on the
/// merge, and say why instead of passing on what is left.
#[derive(Clone, Debug, Default)]
struct Gaps {
    /// Its latency (the corrected one for an open-model endpoint).
    latency: Option<String>,
    /// Its unexpected responses' latency.
    unexpected: Option<String>,
    /// `connect`, `tls_handshake`, `waiting`, `blocked`, `sending`, `receiving`.
    phases: [Option<String>; 6],
    /// Its latency per status.
    status: Option<String>,
    /// Its latency per gRPC status.
    grpc_status: Option<String>,
}

impl Gaps {
    fn add(&mut self, other: Gaps) {
        self.latency = self.latency.take().or(other.latency);
        self.unexpected = self.unexpected.take().or(other.unexpected);
        self.status = self.status.take().or(other.status);
        self.grpc_status = self.grpc_status.take().or(other.grpc_status);
        for (a, b) in self.phases.iter_mut().zip(other.phases) {
            *a = a.take().or(b);
        }
    }

    /// Why `t` cannot be judged on this endpoint, if it cannot.
    fn of(&self, t: &Threshold) -> Option<&String> {
        match t.reads()? {
            Reads::Latency => self.latency.as_ref(),
            Reads::Expected => self.latency.as_ref().or(self.unexpected.as_ref()),
            Reads::Unexpected => self.unexpected.as_ref(),
            Reads::Connecting => self.phases[0].as_ref(),
            Reads::TlsHandshaking => self.phases[1].as_ref(),
            Reads::Waiting => self.phases[2].as_ref(),
            Reads::Blocked => self.phases[3].as_ref(),
            Reads::Sending => self.phases[4].as_ref(),
            Reads::Receiving => self.phases[5].as_ref(),
            Reads::Status(_) => self.status.as_ref(),
            Reads::GrpcStatus(_) => self.grpc_status.as_ref(),
            // carried inside the endpoint's figures: there, or an error
            Reads::ServerTiming(_) => None,
        }
    }
}

const PHASES: [&str; 6] = [
    "connect",
    "tls_handshake",
    "waiting",
    "blocked",
    "sending",
    "receiving",
];

/// A shard's row counts and histograms, back from its summary, and what
/// the summary lacks of them.
fn endpoint_stats(
    dir: &Path,
    summary: &Summary,
    e: &crate::plan::EndpointPlan,
) -> Result<(EndpointStats, Gaps), String> {
    let name = e.name.as_str();
    let mut out = EndpointStats::new();
    let mut gaps = Gaps::default();
    let Some(s) = summary.endpoints.get(name) else {
        return Ok((out, gaps));
    };
    let lacks = |what: &str| {
        format!(
            "{} has no histogram of {what} of \"{name}\" (written by an older engine?); \
             run the shards with the engine that merges them",
            dir.join("summary.json").display()
        )
    };
    let latency = hist(
        dir,
        &format!("histograms.{name}"),
        summary.histograms.get(name),
    )?;
    if let Some(h) = &latency {
        out.latency.add_hdr(h);
    }
    out.corrected = hist(
        dir,
        &format!("histograms_corrected.{name}"),
        summary.histograms_corrected.get(name),
    )?
    .map(Hist::from);
    let missing = if e.open.is_some() {
        s.latency_corrected_ms.is_some() && out.corrected.is_none()
    } else {
        s.latency_ms.is_some() && latency.is_none()
    };
    if missing {
        gaps.latency = Some(lacks("the latency"));
    }
    out.unexpected = hist(
        dir,
        &format!("histograms_unexpected.{name}"),
        summary.histograms_unexpected.get(name),
    )?
    .map(Hist::from);
    // Every request is a response (its latency recorded) or a failure
    // without one; the errors among the responses are the unexpected ones.
    // Without the latency histogram the responses are known only when
    // there were none.
    let responses = match &latency {
        Some(h) => Some(h.len()),
        None => s.latency_ms.is_none().then_some(0),
    };
    let recorded = out.unexpected.as_ref().map_or(0, |h| h.len());
    match responses.map(|n| s.errors.saturating_sub(s.requests.saturating_sub(n))) {
        Some(unexpected) if unexpected == recorded => {}
        Some(unexpected) => {
            gaps.unexpected = Some(format!(
                "{}: \"{name}\" had {unexpected} unexpected response(s) and a histogram of {recorded} \
                 (written by an older engine?); run the shards with the engine that merges them",
                dir.join("summary.json").display()
            ))
        }
        None if s.errors > 0 && out.unexpected.is_none() => {
            gaps.unexpected = Some(lacks("the unexpected responses' latency"));
        }
        None => {}
    }
    out.requests = s.requests;
    out.errors = s.errors;
    out.bytes_in = s.bytes_in;
    out.bytes_out = s.bytes_out;
    out.dropped = s.dropped;
    out.late = s.late;
    for (code, n) in &s.status_codes {
        if let Ok(c) = code.parse::<usize>() {
            out.status
                .add(c.min(crate::stats::STATUS_SLOTS - 1) as u16, *n);
        }
    }
    for k in ErrorKind::ALL {
        out.error_kinds[k as usize] = s.error_kinds.get(k.as_str()).copied().unwrap_or(0);
    }
    let mut timings = Timings::default();
    for (metric, m) in &s.server_timing {
        let what = format!("endpoints.{name}.server_timing.{metric}");
        if let Some(h) = hist(dir, &what, Some(&m.histogram))? {
            timings.names.push(metric.as_str().into());
            timings.hists.push(h.into());
        }
    }
    timings.malformed = s.server_timing_malformed;
    out.server_timing = timings;
    out.checks = e
        .checks
        .iter()
        .map(|(c, _)| s.checks.get(c).map_or([0, 0], |c| [c.passes, c.fails]))
        .collect();
    let phases = summary.histograms_phases.get(name);
    let measured = [
        &s.connect_ms,
        &s.tls_handshake_ms,
        &s.waiting_ms,
        &s.blocked_ms,
        &s.sending_ms,
        &s.receiving_ms,
    ];
    for (i, phase) in PHASES.iter().enumerate() {
        let what = format!("histograms_phases.{name}.{phase}");
        let h = hist(dir, &what, phases.and_then(|p| p.get(*phase)))?;
        // sending and receiving: one per response, so any shard with a
        // response has them (an older engine's summary has none)
        let expected = measured[i].is_some()
            || (i >= 4 && (s.latency_ms.is_some() || s.latency_corrected_ms.is_some()));
        if h.is_none() && expected {
            gaps.phases[i] = Some(lacks(&format!("the {phase} phase")));
        }
        *[
            &mut out.connecting,
            &mut out.tls_handshaking,
            &mut out.waiting,
            &mut out.blocked,
            &mut out.sending,
            &mut out.receiving,
        ][i] = h.map(Hist::from);
    }
    out.tls_resumed = s.tls_resumed;
    if let Some(h2) = &s.h2 {
        out.h2 = Some(Box::new(h2_stats(dir, name, h2, phases)?));
    }
    // gRPC calls per status, back from the codes' names
    if !s.grpc_status.is_empty() {
        let mut codes = Box::new([0u64; 17]);
        for (code, n) in &s.grpc_status {
            let Some(c) = crate::load::grpc::Code::from_name(code) else {
                return Err(format!(
                    "{}: endpoints.{name}.grpc_status: unknown gRPC status {code:?}",
                    dir.display()
                ));
            };
            codes[c as usize] += n;
        }
        out.grpc_status = Some(codes);
    }
    match summary.histograms_status.get(name) {
        // (an HTTP status by its number; any other key is the pooled ones)
        Some(by) => {
            let b = by_code(dir, "histograms_status", name, by, |c| Ok(c.parse().ok()))?;
            out.by_status = Some(Box::new(b));
        }
        None if s.latency_ms.is_some() || s.latency_corrected_ms.is_some() => {
            gaps.status = Some(lacks("the latency per status"));
        }
        None => {}
    }
    match summary.histograms_grpc_status.get(name) {
        Some(by) => {
            let b = by_code(dir, "histograms_grpc_status", name, by, |c| {
                match crate::load::grpc::Code::from_name(c) {
                    Some(code) => Ok(Some(code as u16)),
                    None if c == "other" => Ok(None),
                    None => Err(format!("unknown gRPC status {c:?}")),
                }
            })?;
            out.by_grpc = Some(Box::new(b));
        }
        None if !s.grpc_status.is_empty() => {
            gaps.grpc_status = Some(lacks("the latency per gRPC status"));
        }
        None => {}
    }
    Ok((out, gaps))
}

/// A shard's HTTP/2 counts and histograms of row `name`, back from its
/// summary's `h2` and `histograms_phases`. A figure without its histogram
/// is an error: merged without it, the figure would silently be the other
/// shards' alone (and no engine writes one without the other).
fn h2_stats(
    dir: &Path,
    name: &str,
    h2: &H2Summary,
    phases: Option<&BTreeMap<String, String>>,
) -> Result<H2Stats, String> {
    let mut out = H2Stats {
        goaways: h2.goaways,
        retried: h2.retried,
        ..H2Stats::default()
    };
    for (code, n) in &h2.resets {
        out.resets[H2Stats::code_slot(code)] += n;
    }
    for (key, figure, field, slot) in [
        (
            H2_SETTINGS,
            &h2.settings_ms,
            "settings_ms",
            &mut out.settings,
        ),
        (
            H2_PING_RTT,
            &h2.ping_rtt_ms,
            "ping_rtt_ms",
            &mut out.ping_rtt,
        ),
    ] {
        let what = format!("histograms_phases.{name}.{key}");
        *slot = hist(dir, &what, phases.and_then(|p| p.get(key)))?.map(Hist::from);
        if figure.is_some() && slot.is_none() {
            return Err(format!(
                "{}: endpoints.{name}.h2.{field} has no histogram ({what}); \
                 run the shards with the engine that merges them",
                dir.join("summary.json").display()
            ));
        }
    }
    Ok(out)
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
                // a shard that covered all of the second makes it whole
                covered: parts
                    .iter()
                    .map(|s| s.covered)
                    .reduce(|a, b| Some(a?.max(b?)))
                    .flatten(),
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
    let mut plan = crate::run::prepare_with(&config, false).map_err(|e| e.to_string())?;
    // What each row spoke is the shards' (equal in all: `auto` was decided
    // at their start); a summary from before HTTP/2 says HTTP/1.1.
    for e in &mut plan.endpoints {
        let said = first.summary.endpoints.get(&e.name);
        e.http = match said.map(crate::summary::Stats::protocol) {
            Some(crate::summary::Protocol::H2) => crate::plan::Http::H2,
            _ => crate::plan::Http::H1,
        };
        e.streams = said.map_or(1, crate::summary::Stats::streams);
    }
    let mut endpoints: Vec<EndpointStats> = plan
        .endpoints
        .iter()
        .map(|_| EndpointStats::new())
        .collect();
    let mut final_vus = vec![0u32; plan.endpoints.len()];
    let mut peak_vus = vec![0u32; plan.endpoints.len()];
    let mut flows: Vec<FlowStats> = plan.flows.iter().map(|_| FlowStats::default()).collect();
    let mut load_seconds: f64 = 0.0;
    let mut elapsed: f64 = 0.0;
    let mut scaling = Vec::new();
    let mut gaps: Vec<Gaps> = plan.endpoints.iter().map(|_| Gaps::default()).collect();
    for r in runs {
        let s = &r.summary;
        for (i, e) in plan.endpoints.iter().enumerate() {
            let (stats, lacks) = endpoint_stats(&r.dir, s, e)?;
            endpoints[i].add(&stats);
            gaps[i].add(lacks);
            // VUs are a unit's (a flow's first step carries them)
            if e.unit {
                let vus = match &e.step {
                    Some(st) => s.flows.get(&plan.flows[st.flow].name).map_or(0, |f| f.vus),
                    None => s.endpoints.get(&e.name).map_or(0, |x| x.vus),
                };
                final_vus[i] += vus;
                // (summaries from before peak_vus: the VUs at the end)
                peak_vus[i] += s
                    .endpoints
                    .get(&e.name)
                    .and_then(|x| x.peak_vus)
                    .unwrap_or(vus);
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
                let what = format!("flows.{}.histogram", fp.name);
                if let Some(h) = hist(&r.dir, &what, Some(&fs.histogram))? {
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
        peak_vus,
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
    unjudged(&plan, &gaps, &mut summary.thresholds);
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

/// Fails, saying why, each threshold that reads a histogram some shard
/// lacks of an endpoint it selects: judged on what is left, it could pass
/// where the union fails.
fn unjudged(plan: &crate::plan::Plan, gaps: &[Gaps], results: &mut [ThresholdResult]) {
    let blank = EndpointStats::new();
    for (t, r) in plan.thresholds.iter().zip(results) {
        let why = (0..plan.endpoints.len())
            .filter(|&i| t.selects(&EndpointView::in_plan(plan, i, &blank)))
            .find_map(|i| gaps[i].of(t));
        if let Some(why) = why {
            r.observed = None;
            r.ok = false;
            r.error = Some(why.clone());
        }
    }
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

#[cfg(test)]
mod tests;
