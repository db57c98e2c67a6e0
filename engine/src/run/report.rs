//! The human summary printed at the end of a run: totals and per-endpoint
//! latency, phases, each HTTP/2 endpoint's connections × streams and its
//! connection events, status codes, error kinds, and wrk's `Requests/sec:`
//! line so scripts written for wrk keep working.

use crate::summary::{Stats, Summary};
use std::fmt::Write;

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The name column's width: the longest endpoint or flow name (a flow's
/// steps are `FLOW.STEP`), 16 at least, so every row lines up (issue #28).
fn name_width(s: &Summary) -> usize {
    s.endpoints
        .keys()
        .chain(s.flows.keys())
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(16)
}

/// A number as it reads best: an integer without decimals (a count), else
/// three of them.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn percentiles(l: Option<&crate::summary::Latency>) -> String {
    match l {
        Some(l) => [l.p50, l.p90, l.p95, l.p99, l.p99_9, l.max]
            .map(ms)
            .join(" "),
        None => "-".into(),
    }
}

/// One endpoint's line. Where the open model corrected the latency, the
/// corrected figures come first (marked) and the measured ones follow.
fn row(out: &mut String, w: usize, name: &str, s: &Stats) {
    let first = s.latency_corrected_ms.as_ref().or(s.latency_ms.as_ref());
    let mark = if s.latency_corrected_ms.is_some() {
        "  (corrected: from the intended send time)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  {name:<w$} {:>10} {:>10.1} {:>8} {:>7.2}%  {}{mark}",
        s.requests,
        s.rps,
        s.errors,
        100.0 * s.error_rate,
        percentiles(first)
    );
    if s.latency_corrected_ms.is_some() {
        let _ = writeln!(
            out,
            "  {:<w$} {:>10} {:>10} {:>8} {:>8}  {}  (measured: from the actual send)",
            "",
            "",
            "",
            "",
            "",
            percentiles(s.latency_ms.as_ref())
        );
    }
    if s.dropped > 0 || s.late > 0 {
        let _ = writeln!(
            out,
            "  {:<w$} dropped sends {}, late sends {}",
            "", s.dropped, s.late
        );
    }
}

fn counts(map: &std::collections::BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Per endpoint, what its responses' `Server-Timing` said, next to the
/// latency measured: which downstream part the time went to.
fn server_timing(out: &mut String, w: usize, s: &Summary) {
    if s.endpoints.values().all(|e| e.server_timing.is_empty()) {
        return;
    }
    let h = w + 3;
    let _ = writeln!(
        out,
        "{:<h$} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "Server-Timing (ms)", "count", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, e) in s
        .endpoints
        .iter()
        .filter(|(_, e)| !e.server_timing.is_empty())
    {
        let measured = e.latency_ms.as_ref();
        let n = w + 1;
        let _ = writeln!(
            out,
            "  {name:<n$} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}  (measured)",
            e.requests,
            measured.map_or("-".into(), |l| ms(l.p50)),
            measured.map_or("-".into(), |l| ms(l.p90)),
            measured.map_or("-".into(), |l| ms(l.p99)),
            measured.map_or("-".into(), |l| ms(l.p99_9)),
            measured.map_or("-".into(), |l| ms(l.max)),
        );
        let mw = w - 1;
        for (metric, m) in &e.server_timing {
            let _ = writeln!(
                out,
                "    {metric:<mw$} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}",
                m.count,
                ms(m.p50),
                ms(m.p90),
                ms(m.p99),
                ms(m.p99_9),
                ms(m.max)
            );
        }
        if e.server_timing_malformed > 0 {
            let _ = writeln!(
                out,
                "    ({} malformed Server-Timing entries skipped)",
                e.server_timing_malformed
            );
        }
    }
}

/// `Phases (ms, p50 / p99): connect … (N connections)  TLS …  waiting …`
/// over the whole run, then per endpoint when there are several.
fn phases(out: &mut String, w: usize, s: &Summary) {
    let line = |st: &Stats| {
        let mut parts = Vec::new();
        let pair = |l: &crate::summary::Latency| format!("{} / {}", ms(l.p50), ms(l.p99));
        if let Some(l) = &st.connect_ms {
            parts.push(format!("connect {}", pair(l)));
        }
        if let Some(l) = &st.tls_handshake_ms {
            parts.push(format!("TLS handshake {}", pair(l)));
        }
        // sending and receiving are a microsecond for most requests (the
        // request went whole into the socket, the response came in one
        // read): shown only when one took a millisecond (summary.json has them)
        for (name, l, always) in [
            ("blocked", &st.blocked_ms, true),
            ("sending", &st.sending_ms, false),
            ("waiting", &st.waiting_ms, true),
            ("receiving", &st.receiving_ms, false),
        ] {
            if let Some(l) = l.as_ref().filter(|l| always || l.max >= 1.0) {
                parts.push(format!("{name} {}", pair(l)));
            }
        }
        parts.join("  ")
    };
    let total = line(&s.totals);
    if total.is_empty() {
        return;
    }
    let _ = writeln!(out, "Phases (ms, p50 / p99): {total}");
    if s.endpoints.len() > 1 && s.totals.tls_handshake_ms.is_some() {
        for (name, e) in &s.endpoints {
            let _ = writeln!(out, "  {name:<w$} {}", line(e));
        }
    }
}

/// Per HTTP/2 endpoint, how its VUs lay over connections:
/// `h2, 16 streams per connection (peak VUs 64 → 4 connections)`. Streams that
/// share a connection share its TCP stream, and one lost packet stalls all
/// of them (head-of-line blocking), which reads as server latency: the
/// layout must be in every result (issue #30).
fn layout(out: &mut String, w: usize, s: &Summary) {
    let h2: Vec<(&String, &Stats)> = s
        .endpoints
        .iter()
        .filter(|(_, e)| e.protocol() == crate::summary::Protocol::H2)
        .collect();
    if h2.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "HTTP/2 layout (streams on one connection share its TCP: a lost packet stalls them all, which reads as server latency):"
    );
    let plural = |n: u64, one: &str, many: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {many}")
        }
    };
    for (name, e) in h2 {
        let streams = e.streams().max(1);
        // at its peak: at the end a -n or open-model run holds none
        let vus = e.peak_vus.unwrap_or(e.vus);
        let connections = u64::from(vus).div_ceil(u64::from(streams));
        let _ = writeln!(
            out,
            "  {name:<w$} h2, {} per connection (peak VUs {vus} → {})",
            plural(u64::from(streams), "stream", "streams"),
            plural(connections, "connection", "connections")
        );
    }
}

/// Per HTTP/2 endpoint, what its connections reported besides the
/// requests: GOAWAYs, RST_STREAMs by code, requests retried on a new
/// connection, and the p50 of the wait for the server's SETTINGS and of
/// PING round trips. Nothing for an HTTP/1.1-only run.
fn h2(out: &mut String, w: usize, s: &Summary) {
    if s.endpoints.values().all(|e| e.h2.is_none()) {
        return;
    }
    let h = w + 2;
    let _ = writeln!(
        out,
        "{:<h$} {:>8} {:>8} {:>9} {:>9}  resets",
        "HTTP/2 (ms: p50)", "goaways", "retried", "SETTINGS", "PING RTT"
    );
    let p50 = |l: &Option<crate::summary::Latency>| l.as_ref().map_or("-".into(), |l| ms(l.p50));
    for (name, e) in &s.endpoints {
        let Some(x) = &e.h2 else { continue };
        let _ = writeln!(
            out,
            "  {name:<w$} {:>8} {:>8} {:>9} {:>9}  {}",
            x.goaways,
            x.retried,
            p50(&x.settings_ms),
            p50(&x.ping_rtt_ms),
            counts(&x.resets)
        );
    }
}

/// Per gRPC endpoint, its calls per `grpc-status` (`OK: 980, UNAVAILABLE:
/// 20`). Nothing for a run without gRPC.
fn grpc(out: &mut String, w: usize, s: &Summary) {
    if s.endpoints.values().all(|e| e.grpc_status.is_empty()) {
        return;
    }
    let _ = writeln!(out, "gRPC status (calls per grpc-status):");
    for (name, e) in &s.endpoints {
        if !e.grpc_status.is_empty() {
            let _ = writeln!(out, "  {name:<w$} {}", counts(&e.grpc_status));
        }
    }
}

/// k6's way: `✓ name` when a check always passed, else
/// `✗ name  98.1% — ✓ 9810 ✗ 190`; each under its endpoint (`- name  not
/// judged` for one whose endpoint made no request).
fn checks(out: &mut String, s: &Summary) {
    let Some(rate) = s.totals.checks_rate else {
        return;
    };
    let (p, f) = s
        .totals
        .checks
        .values()
        .fold((0, 0), |(p, f), c| (p + c.passes, f + c.fails));
    let _ = writeln!(out, "Checks {:.1}% — ✓ {p} ✗ {f}", 100.0 * rate);
    for (endpoint, e) in &s.endpoints {
        for (name, c) in &e.checks {
            if c.passes + c.fails == 0 {
                // no response reached it: neither passed nor failed
                let _ = writeln!(out, "  - {endpoint} › {name}  not judged (no request)");
            } else if c.fails == 0 {
                let _ = writeln!(out, "  ✓ {endpoint} › {name}");
            } else {
                let pct = 100.0 * c.passes as f64 / (c.passes + c.fails) as f64;
                let _ = writeln!(
                    out,
                    "  ✗ {endpoint} › {name}  {pct:.1}% — ✓ {} ✗ {}",
                    c.passes, c.fails
                );
            }
        }
    }
}

pub fn human_summary(s: &Summary) -> String {
    let mut out = String::new();
    let w = name_width(s);
    let _ = writeln!(
        out,
        "Userflux run {} ({}) {} after {:.1}s on {} thread(s)",
        s.run_id,
        s.name,
        s.state.as_str(),
        s.duration_s,
        s.engine.threads
    );
    let _ = writeln!(
        out,
        "  {:<w$} {:>10} {:>10} {:>8} {:>8}  latency ms: p50 p90 p95 p99 p99.9 max",
        "endpoint", "requests", "req/s", "errors", "err%"
    );
    for (name, e) in &s.endpoints {
        row(&mut out, w, name, e);
    }
    if s.endpoints.len() > 1 {
        row(&mut out, w, "total", &s.totals);
    }
    if let Some(l) = &s.totals.latency_ms {
        let _ = writeln!(
            out,
            "Latency (ms): min {} mean {} stdev {} max {}",
            ms(l.min),
            ms(l.mean),
            ms(l.stdev),
            ms(l.max)
        );
    }
    phases(&mut out, w, s);
    layout(&mut out, w, s);
    h2(&mut out, w, s);
    grpc(&mut out, w, s);
    if !s.flows.is_empty() {
        let _ = writeln!(
            out,
            "  {:<w$} {:>10} {:>8} {:>8} {:>10}  iteration ms: p50 p90 p95 p99 p99.9 max",
            "flow", "iterations", "failed", "cut off", "it/s"
        );
        for (name, f) in &s.flows {
            let _ = writeln!(
                out,
                "  {name:<w$} {:>10} {:>8} {:>8} {:>10.1}  {}",
                f.iterations,
                f.failed_iterations,
                f.interrupted_iterations,
                f.iterations_per_s,
                percentiles(f.iteration_duration_ms.as_ref())
            );
        }
    }
    checks(&mut out, s);
    server_timing(&mut out, w, s);
    for (name, e) in s.endpoints.iter().filter(|(_, e)| e.target_rps.is_some()) {
        let target = e.target_rps.unwrap_or(0.0);
        let changes = s
            .scaling_events
            .iter()
            .filter(|ev| &ev.endpoint == name)
            .count();
        let _ = writeln!(
            out,
            "Autoscale {name}: target {target:.1} req/s, achieved {:.1} req/s over the last 5 s ({:.1} over the run), {} workers at the end, {changes} scaling event(s)",
            e.achieved_rps.unwrap_or(0.0),
            e.rps,
            e.vus
        );
    }
    if let Some(smp) = &s.samples {
        let _ = write!(
            out,
            "Samples: {} lines ({:.1} MB) in {} at rate {}",
            smp.written,
            smp.bytes as f64 / 1e6,
            smp.file,
            smp.rate
        );
        match &smp.error {
            Some(e) => {
                let _ = writeln!(out, "; stopped early ({}): {}", e.kind, e.message);
            }
            None => out.push('\n'),
        }
    }
    if !s.thresholds.is_empty() {
        let _ = writeln!(
            out,
            "Thresholds: {} of {} passed",
            s.thresholds.len() - s.failed_thresholds(),
            s.thresholds.len()
        );
        for t in &s.thresholds {
            let verdict = if t.ok && !t.aborted { "ok  " } else { "FAIL" };
            let observed = match (&t.error, t.observed) {
                (Some(why), _) => format!("not judged: {why}"),
                (None, Some(v)) => format!("observed {}", number(v)),
                (None, None) => "nothing measured".into(),
            };
            let abort = if t.aborted { ", stopped the run" } else { "" };
            let _ = writeln!(
                out,
                "  {verdict} {} {} ({observed}{abort})",
                t.metric, t.expression
            );
        }
    }
    if let Some(why) = &s.stop_reason {
        let word = if s.state == crate::summary::RunState::Failed {
            "Failed"
        } else {
            "Stopped"
        };
        let _ = writeln!(out, "{word}: {why}");
    }
    if let Some(i) = &s.interrupted {
        let _ = writeln!(
            out,
            "Interrupted: {} request(s) were still waiting for their response when {}; \
             they count as failed (error kind `interrupted`) and have no latency",
            i.requests, i.reason
        );
    }
    if let Some(b) = &s.requests_budget
        && let Some(why) = &b.missed
    {
        let _ = writeln!(
            out,
            "Requests: sent {} of {} requests: {why}",
            b.sent, b.asked
        );
    }
    let t = &s.totals;
    if t.requests == 0 {
        let _ = writeln!(out, "No requests: nothing was sent or attempted");
    } else if t.status_codes.is_empty() {
        let _ = writeln!(
            out,
            "No responses: none of the {} request(s) got a complete response (see Errors)",
            t.requests
        );
    }
    let _ = writeln!(out, "Status codes: {}", counts(&s.totals.status_codes));
    let _ = writeln!(out, "Errors: {}", counts(&s.totals.error_kinds));
    let _ = writeln!(
        out,
        "CPU: {:.2}s user, {:.2}s system",
        s.engine.cpu_user_s, s.engine.cpu_system_s
    );
    let _ = writeln!(out, "Requests/sec: {:.2}", s.totals.rps);
    let _ = writeln!(
        out,
        "Transfer/sec: {:.2}KB in",
        s.totals.bytes_in as f64 / 1024.0 / s.duration_s.max(1e-3)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{EndpointStats, ErrorKind, Hist};

    /// The summary a run over `rows` (endpoints `api` and `plain`) writes.
    fn summary(rows: Vec<EndpointStats>) -> Summary {
        let config = crate::config::Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 2}],
                "endpoints": [{"name": "api", "path": "/"}, {"name": "plain", "path": "/p"}]}"#,
        )
        .unwrap();
        let plan = crate::run::prepare_with(&config, false).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = crate::rundir::RunDir::at(&tmp.path().join("r")).unwrap();
        let outcome = crate::aggregator::Outcome {
            final_vus: vec![1; rows.len()],
            peak_vus: vec![1; rows.len()],
            endpoints: rows,
            flows: Vec::new(),
            timeline: Vec::new(),
            stopped: None,
            load_seconds: 1.0,
            elapsed_seconds: 1.0,
            scaling_events: Vec::new(),
            aborted_by: None,
            halted: None,
            failed: None,
        };
        crate::run::build_summary(&config, &plan, &dir, "t0".into(), outcome, Vec::new())
    }

    fn row(ok: u64) -> EndpointStats {
        let mut s = EndpointStats::new();
        for _ in 0..ok {
            s.record_response(1_000, None, 200, None);
        }
        s
    }

    #[test]
    fn a_check_no_request_reached_is_not_judged_not_passed() {
        use crate::summary::CheckCount;
        let mut s = summary(vec![row(3), row(2)]);
        let count = |passes, fails| CheckCount { passes, fails };
        let api = s.endpoints.get_mut("api").unwrap();
        api.checks.insert("ok".into(), count(3, 0));
        api.checks.insert("fast".into(), count(2, 1));
        s.endpoints
            .get_mut("plain")
            .unwrap()
            .checks
            .insert("ok".into(), count(0, 0));
        s.totals.checks_rate = Some(5.0 / 6.0);
        s.totals.checks.insert("ok".into(), count(3, 0));
        s.totals.checks.insert("fast".into(), count(2, 1));
        let text = human_summary(&s);
        for line in [
            "  ✗ api › fast  66.7% — ✓ 2 ✗ 1",
            "  ✓ api › ok",
            "  - plain › ok  not judged (no request)",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
    }

    #[test]
    fn an_h2_endpoint_gets_a_line_and_http1_runs_none() {
        let text = human_summary(&summary(vec![row(3), row(2)]));
        assert!(!text.contains("HTTP/2"), "{text}");

        let mut api = row(3);
        api.record_failure(ErrorKind::H2Reset);
        api.record_failure(ErrorKind::Protocol);
        let mut h2 = crate::h2_stats::H2Stats {
            goaways: 2,
            retried: 5,
            ..Default::default()
        };
        h2.record_reset(7);
        h2.record_reset(8);
        h2.record_reset(8);
        h2.settings.get_or_insert_with(Hist::new).record(1_500);
        h2.ping_rtt.get_or_insert_with(Hist::new).record(250);
        api.h2 = Some(Box::new(h2));
        let text = human_summary(&summary(vec![api, row(2)]));
        // the header and one line, the h2 endpoint's: none for `plain`
        let all: Vec<&str> = text.lines().collect();
        let at = all.iter().position(|l| l.starts_with("HTTP/2")).unwrap();
        assert_eq!(
            all[at..at + 3],
            [
                "HTTP/2 (ms: p50)    goaways  retried  SETTINGS  PING RTT  resets",
                "  api                     2        5      1.50      0.25  CANCEL: 2, REFUSED_STREAM: 1",
                "Status codes: 200: 5",
            ],
            "{text}"
        );
        assert!(text.contains("Errors: h2_reset: 1, protocol: 1"), "{text}");
    }
}
