//! Merging shards whose rows carry HTTP/2 figures and the HTTP/2 error
//! kinds: real run directories (summary and config written by the code a
//! run uses), read back and merged as `userfluxctl merge` does.

use super::*;
use crate::h2_stats::CODES;
use crate::shard::ShardInfo;
use crate::summary::H2Summary;

const CONFIG: &str = r#"{"target": "http://127.0.0.1:1",
    "stages": [{"duration": "2s", "target": 2}],
    "endpoints": [{"name": "api", "path": "/api"}, {"name": "plain", "path": "/plain"}]}"#;

/// An h2 row's counts: `ok` responses, `resets` RST_STREAMs (code, n),
/// failures by kind, SETTINGS waits and PING round trips (µs).
fn h2_row(
    ok: u64,
    resets: &[(u32, u64)],
    goaways: u64,
    retried: u64,
    settings: &[u64],
    pings: &[u64],
) -> EndpointStats {
    let mut s = EndpointStats::new();
    for _ in 0..ok {
        s.record_response(1_000, None, 200, None);
    }
    let mut h2 = crate::h2_stats::H2Stats {
        goaways,
        retried,
        ..Default::default()
    };
    for &(code, n) in resets {
        for _ in 0..n {
            h2.record_reset(code);
            s.record_failure(ErrorKind::H2Reset);
        }
    }
    for _ in 0..goaways {
        s.record_failure(ErrorKind::H2Goaway);
    }
    s.record_failure(ErrorKind::Protocol);
    for &us in settings {
        h2.settings.get_or_insert_with(Hist::new).record(us);
    }
    for &us in pings {
        h2.ping_rtt.get_or_insert_with(Hist::new).record(us);
    }
    s.h2 = Some(Box::new(h2));
    s
}

fn plain_row(ok: u64) -> EndpointStats {
    let mut s = EndpointStats::new();
    for _ in 0..ok {
        s.record_response(2_000, None, 200, None);
    }
    s
}

/// Writes shard `index` of 2 into `dir` as a run would: its summary (with
/// `shard`) and its config.
fn write_shard(dir: &Path, index: u32, rows: Vec<EndpointStats>) {
    let config = Config::from_json(CONFIG).unwrap();
    let plan = crate::run::prepare_with(&config, false).unwrap();
    let run = RunDir::at(dir).unwrap();
    let outcome = Outcome {
        final_vus: vec![1, 1],
        peak_vus: vec![1, 1],
        endpoints: rows,
        flows: Vec::new(),
        timeline: Vec::new(),
        stopped: None,
        load_seconds: 2.0,
        elapsed_seconds: 2.0,
        scaling_events: Vec::new(),
        aborted_by: None,
        halted: None,
        failed: None,
    };
    let mut summary =
        crate::run::build_summary(&config, &plan, &run, "t0".into(), outcome, Vec::new());
    summary.shard = Some(ShardInfo {
        index,
        count: 2,
        start_at: "t0".into(),
        group: "g".into(),
        config_sha256: crate::shard::config_hash(&config),
    });
    run.write_json("summary.json", &summary).unwrap();
    let raw: serde_json::Value = serde_json::from_str(CONFIG).unwrap();
    run.write_json("config.json", &raw).unwrap();
}

fn shards(tmp: &Path) -> [PathBuf; 2] {
    let dirs = [tmp.join("s0"), tmp.join("s1")];
    write_shard(
        &dirs[0],
        0,
        vec![
            h2_row(
                10,
                &[(8, 3), (7, 1)],
                1,
                2,
                &[1_000, 2_000],
                &[100, 100, 100],
            ),
            plain_row(4),
        ],
    );
    write_shard(
        &dirs[1],
        1,
        vec![
            h2_row(
                20,
                &[(8, 2), (0x42, 1)],
                2,
                5,
                &[3_000, 4_000, 5_000],
                &[300],
            ),
            plain_row(6),
        ],
    );
    dirs
}

fn merged(dirs: &[&Path], out: &Path) -> Result<Summary, String> {
    let runs: Vec<ShardRun> = dirs
        .iter()
        .map(|d| ShardRun::read(d))
        .collect::<Result<_, _>>()?;
    let (_, missing) = check(&runs, true)?;
    merge(&runs, &missing, out)
}

fn read_summary(dir: &Path) -> Summary {
    read_json(&dir.join("summary.json")).unwrap()
}

fn decoded_len(s: &Summary, row: &str, key: &str) -> u64 {
    decode_histogram(&s.histograms_phases[row][key])
        .unwrap()
        .len()
}

#[test]
fn h2_figures_and_kinds_merge_exactly_and_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = shards(tmp.path());

    // each shard's summary, read back, says what was recorded
    let s0 = read_summary(&dirs[0]);
    let h = s0.endpoints["api"].h2.as_ref().unwrap();
    assert_eq!((h.goaways, h.retried), (1, 2));
    assert_eq!(
        h.resets,
        BTreeMap::from([("CANCEL".into(), 3), ("REFUSED_STREAM".into(), 1)])
    );
    assert_eq!(h.settings_ms.unwrap().p50, 1.0);
    assert_eq!(h.ping_rtt_ms.unwrap().max, 0.1);
    assert!(s0.endpoints["plain"].h2.is_none());
    let plain: Vec<&String> = s0.histograms_phases["plain"].keys().collect();
    assert_eq!(plain, ["receiving", "sending"]);
    let raw: serde_json::Value = read_json(&dirs[0].join("summary.json")).unwrap();
    assert!(raw["endpoints"]["plain"].get("h2").is_none(), "{raw}");
    assert_eq!(raw["endpoints"]["api"]["error_kinds"]["h2_reset"], 4);

    let out = tmp.path().join("merged");
    let m = merged(&[&dirs[0], &dirs[1]], &out).unwrap();
    let back = read_summary(&out);
    assert_eq!(
        (&back.endpoints["api"].h2, &back.totals.error_kinds),
        (&m.endpoints["api"].h2, &m.totals.error_kinds),
        "written as returned"
    );
    let api = &m.endpoints["api"];
    assert_eq!(
        (api.requests, api.errors),
        (10 + 4 + 1 + 1 + 20 + 3 + 2 + 1, 4 + 1 + 1 + 3 + 2 + 1)
    );
    assert_eq!(
        api.error_kinds,
        BTreeMap::from([
            ("h2_goaway".into(), 3),
            ("h2_reset".into(), 7),
            ("protocol".into(), 2)
        ])
    );
    let h = api.h2.as_ref().unwrap();
    assert_eq!((h.goaways, h.retried), (3, 7));
    assert_eq!(
        h.resets,
        BTreeMap::from([
            ("CANCEL".into(), 5),
            ("REFUSED_STREAM".into(), 1),
            ("other".into(), 1)
        ])
    );
    // percentiles of the union of both shards' histograms, not a mean of
    // theirs (3 ms and 5 ms read back as HDR's highest equivalent values)
    let settings = h.settings_ms.unwrap();
    assert_eq!(
        (settings.min, settings.p50, settings.max),
        (1.0, 3.001, 5.003),
        "{settings:?}"
    );
    let ping = h.ping_rtt_ms.unwrap();
    assert_eq!((ping.p50, ping.max), (0.1, 0.3), "{ping:?}");
    assert_eq!(decoded_len(&m, "api", H2_SETTINGS), 5);
    assert_eq!(decoded_len(&m, "api", H2_PING_RTT), 4);
    // totals: the only h2 row's figures; an HTTP/1.1 row has none
    assert_eq!(m.totals.h2.as_ref(), Some(h));
    assert_eq!(m.totals.error_kinds, api.error_kinds);
    assert!(m.endpoints["plain"].h2.is_none());
    assert_eq!(m.endpoints["plain"].requests, 10);

    // the merged figures are what one engine that recorded both would write
    let mut one = h2_row(
        10,
        &[(8, 3), (7, 1)],
        1,
        2,
        &[1_000, 2_000],
        &[100, 100, 100],
    );
    one.add(&h2_row(
        20,
        &[(8, 2), (0x42, 1)],
        2,
        5,
        &[3_000, 4_000, 5_000],
        &[300],
    ));
    assert_eq!(
        Some(H2Summary::from_stats(one.h2.as_ref().unwrap())),
        api.h2
    );
    assert_eq!(one.h2.as_ref().unwrap().resets[CODES], 1);
}

#[test]
fn a_shard_without_h2_merges_and_a_figure_without_its_histogram_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = shards(tmp.path());

    // an older engine's shard: no `h2`, no h2 histograms
    let mut v: serde_json::Value = read_json(&dirs[1].join("summary.json")).unwrap();
    v["endpoints"]["api"].as_object_mut().unwrap().remove("h2");
    v["totals"].as_object_mut().unwrap().remove("h2");
    let phases = v["histograms_phases"]["api"].as_object_mut().unwrap();
    phases.remove(H2_SETTINGS);
    phases.remove(H2_PING_RTT);
    std::fs::write(dirs[1].join("summary.json"), v.to_string()).unwrap();
    let m = merged(&[&dirs[0], &dirs[1]], &tmp.path().join("m1")).unwrap();
    let h = m.endpoints["api"].h2.as_ref().unwrap();
    assert_eq!((h.goaways, h.retried), (1, 2));
    assert_eq!(h.settings_ms.unwrap().max, 2.0);
    assert_eq!(decoded_len(&m, "api", H2_SETTINGS), 2);
    // its counts still add
    assert_eq!(m.endpoints["api"].error_kinds["h2_reset"], 7);

    // an edited one: a figure whose histogram is gone would merge wrong
    let mut v: serde_json::Value = read_json(&dirs[0].join("summary.json")).unwrap();
    let phases = v["histograms_phases"]["api"].as_object_mut().unwrap();
    phases.remove(H2_PING_RTT);
    std::fs::write(dirs[0].join("summary.json"), v.to_string()).unwrap();
    let e = merged(&[&dirs[0], &dirs[1]], &tmp.path().join("m2")).unwrap_err();
    assert!(
        e.contains("s0/summary.json: endpoints.api.h2.ping_rtt_ms has no histogram")
            && e.contains("histograms_phases.api.h2_ping_rtt"),
        "{e}"
    );
}
