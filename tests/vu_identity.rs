//! VU identity and the shards' split (issue #27): every VU of a run has
//! one number, unique and dense over endpoints, flows, workers and shards,
//! and `per_vu` data rows follow it; the shards together allocate exactly
//! what one process would, so no endpoint vanishes from a sharded run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use userflux::{Scripted, Seen, bin, load_run, ok};

fn query(path: &str, key: &str) -> String {
    path.split(['?', '&'])
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in {path}"))
        .to_string()
}

/// Runs `config` as shards `0/n` … `n-1/n` at once (no `--start-at`: each
/// starts now), each into `dir/shard-I`; every one must exit 0.
fn run_shards(dir: &Path, config: &str, n: u32) {
    let file = dir.join("c.json");
    std::fs::write(&file, config).unwrap();
    let children: Vec<_> = (0..n)
        .map(|i| {
            let mut c = Command::new(bin("userflux-engine"));
            c.args(["run", "-q", "--config"]).arg(&file);
            if n > 1 {
                c.args(["--shard", &format!("{i}/{n}"), "--group", "vu-identity"]);
            }
            c.arg("--run-dir").arg(dir.join(format!("shard-{i}")));
            c.output_async()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "shard {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

trait Spawn {
    fn output_async(&mut self) -> std::process::Child;
}

impl Spawn for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// 8 VUs over two endpoints and a flow, 2 workers each, in 1 process and
/// in 2 shards: the VU numbers seen are exactly 0..8, each always with the
/// same load unit and the same `per_vu` row (its own: user k for VU k).
#[test]
fn every_vu_has_its_own_number_and_row_over_endpoints_flows_workers_and_shards() {
    for shards in [1u32, 2] {
        let tmp = tempfile::tempdir().unwrap();
        let mut users = String::from("name\n");
        for i in 0..8 {
            users.push_str(&format!("user{i}\n"));
        }
        std::fs::write(tmp.path().join("users.csv"), users).unwrap();
        let server = Scripted::start(Arc::new(|_: &Seen| ok("", "ok")));
        let q = "vu={{vu}}&u={{data.users.name}}";
        let config = format!(
            r#"{{"target": "{}", "threads": 2,
              "stages": [{{"duration": "0s", "target": 8}}, {{"duration": "1500ms", "target": 8}}],
              "data": {{"users": {{"file": "users.csv", "order": "per_vu"}}}},
              "endpoints": [{{"name": "a", "path": "/a?{q}", "think_time": "20ms"}},
                            {{"name": "b", "path": "/b?{q}", "think_time": "20ms"}}],
              "flows": [{{"name": "f", "weight": 2, "think_time": "20ms",
                "steps": [{{"name": "s1", "path": "/f1?{q}"}}, {{"name": "s2", "path": "/f2?{q}"}}]}}]}}"#,
            server.url()
        );
        run_shards(tmp.path(), &config, shards);
        let mut unit_of: BTreeMap<u64, char> = BTreeMap::new();
        let mut user_of: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
        let seen = server.seen();
        assert!(seen.len() > 40, "{} requests", seen.len());
        for r in &seen {
            let vu: u64 = query(&r.path, "vu").parse().unwrap();
            let unit = r.path.chars().nth(1).unwrap();
            let first = *unit_of.entry(vu).or_insert(unit);
            assert_eq!(first, unit, "VU {vu} ran two units ({shards} shards)");
            user_of.entry(vu).or_default().insert(query(&r.path, "u"));
        }
        assert_eq!(
            unit_of.keys().copied().collect::<Vec<_>>(),
            (0..8).collect::<Vec<u64>>(),
            "{shards} shards"
        );
        for (vu, users) in &user_of {
            assert_eq!(
                users.iter().collect::<Vec<_>>(),
                [&format!("user{vu}")],
                "{shards} shards"
            );
        }
        // the split by weight: 2 VUs for a, 2 for b, 4 for the flow
        let count = |u: char| unit_of.values().filter(|&&c| c == u).count();
        assert_eq!((count('a'), count('b'), count('f')), (2, 2, 4));
    }
}

/// 4 VUs over two endpoints of weight 1 in 4 shards, and 10 VUs 9:1 in 5
/// shards: every endpoint gets its VUs and requests, as in one process.
#[test]
fn no_endpoint_vanishes_from_a_sharded_run() {
    for (vus, weights, shards) in [(4u32, [1, 1], 4u32), (10, [9, 1], 5)] {
        let tmp = tempfile::tempdir().unwrap();
        let server = Scripted::start(Arc::new(|_: &Seen| ok("", "ok")));
        let config = format!(
            r#"{{"target": "{}", "threads": 1,
              "stages": [{{"duration": "0s", "target": {vus}}}, {{"duration": "1s", "target": {vus}}}],
              "endpoints": [{{"name": "browse", "path": "/browse", "weight": {}, "think_time": "50ms"}},
                            {{"name": "checkout", "path": "/checkout", "weight": {}, "think_time": "50ms"}}]}}"#,
            server.url(),
            weights[0],
            weights[1]
        );
        run_shards(tmp.path(), &config, shards);
        let mut requests: BTreeMap<String, u64> = BTreeMap::new();
        let mut ran_on: BTreeMap<String, u32> = BTreeMap::new();
        let mut notes = 0;
        for i in 0..shards {
            let dir = tmp.path().join(format!("shard-{i}"));
            let (s, _) = load_run(&dir);
            for (name, e) in &s.endpoints {
                *requests.entry(name.clone()).or_default() += e.requests;
                *ran_on.entry(name.clone()).or_default() += u32::from(e.requests > 0);
            }
            let log = std::fs::read_to_string(dir.join("logs.txt")).unwrap();
            notes += log
                .lines()
                .filter(|l| l.contains("gets no VU here"))
                .count();
        }
        // the one-process split, each endpoint's VUs on as many shards as
        // it has VUs (up to all of them)
        let checkout = vus * weights[1] / (weights[0] + weights[1]);
        let want = BTreeMap::from([
            ("browse".to_string(), (vus - checkout).min(shards)),
            ("checkout".to_string(), checkout.min(shards)),
        ]);
        assert_eq!(ran_on, want, "{requests:?}");
        // each shard without a VU of an endpoint said so
        assert_eq!(notes as u32, 2 * shards - want.values().sum::<u32>());
        // and the merge has nothing to warn of
        let (stderr, merged) = merge(tmp.path(), shards);
        assert!(!stderr.contains("ran nowhere"), "{stderr}");
        assert_eq!(merged.endpoints["checkout"].requests, requests["checkout"]);
    }
}

/// `userfluxctl merge` of `dir/shard-*` into `dir/merged`: its stderr and
/// the merged summary.
fn merge(dir: &Path, shards: u32) -> (String, userflux_engine::summary::Summary) {
    let out = Command::new(bin("userfluxctl"))
        .arg("merge")
        .args((0..shards).map(|i| dir.join(format!("shard-{i}"))))
        .arg("--out")
        .arg(dir.join("merged"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(matches!(out.status.code(), Some(0 | 99)), "{stderr}");
    (stderr, load_run(&dir.join("merged")).0)
}

/// A merged run in which a row got no request from any shard says so: a
/// flow whose first step always fails never sends its second.
#[test]
fn a_merge_says_which_rows_ran_nowhere() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Scripted::start(Arc::new(|_: &Seen| {
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".into()
    }));
    let config = format!(
        r#"{{"target": "{}", "threads": 1,
          "stages": [{{"duration": "0s", "target": 2}}, {{"duration": "1s", "target": 2}}],
          "flows": [{{"name": "f", "think_time": "100ms",
            "steps": [{{"name": "login", "path": "/login"}}, {{"name": "cart", "path": "/cart"}}]}}]}}"#,
        server.url()
    );
    run_shards(tmp.path(), &config, 2);
    let (stderr, merged) = merge(tmp.path(), 2);
    assert!(merged.endpoints["f.login"].requests > 0);
    assert!(
        stderr.contains("warning: f.cart ran nowhere: no shard sent it a request"),
        "{stderr}"
    );
    assert!(!stderr.contains("f.login ran nowhere"), "{stderr}");
}
