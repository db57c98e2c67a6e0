//! Shards: one config run by N engines (N machines, or N Kubernetes pods of
//! an Indexed Job), each running share I of it, so that the N results
//! merged (`userfluxctl merge`) are what one engine N times as large would
//! have measured. Pure arithmetic, applied to a resolved config and a plan.
//!
//! - VU counts (stage targets, `max_workers`, `requests`, open-model
//!   `pre_allocated_vus`/`max_vus`) split by largest remainder, so the N
//!   shares add up exactly to the whole; a share may be 0.
//! - An open-model schedule is split send by send: shard I makes the sends
//!   k with k mod N = I, so the union is the unsplit schedule.
//! - `seq` and `sequential` data rows interleave the same way: shard I's
//!   j-th value is j·N + I, so no two shards share one.
//! - Autoscale: `target_rps` is split evenly; `min_workers`/`max_workers`
//!   by largest remainder but at least 1 each (the autoscaler needs a
//!   worker to measure), so with N above `max_workers` the shards together
//!   may hold more than the whole.

use crate::config::{Config, EndpointAutoscale};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Share `index` of `count` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Most shards of one run.
pub const MAX_SHARDS: u32 = 10_000;

impl Shard {
    /// `"I/N"`, 0 ≤ I < N.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("\"{s}\": a shard is I/N, such as 0/3"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("\"{s}\": \"{i}\" is not a shard index"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("\"{s}\": \"{n}\" is not a shard count"))?;
        if count == 0 || count > MAX_SHARDS {
            return Err(format!("\"{s}\": the count must be 1 to {MAX_SHARDS}"));
        }
        if index >= count {
            return Err(format!(
                "\"{s}\": the index is 0-based, below the count (0/{count} to {}/{count})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// This shard's part of `total` (largest remainder over equal shares:
    /// the first `total mod N` shards get one more).
    pub fn share(self, total: u64) -> u64 {
        let n = u64::from(self.count);
        total / n + u64::from(u64::from(self.index) < total % n)
    }

    fn share32(self, total: u32) -> u32 {
        self.share(u64::from(total)) as u32
    }

    /// The `j`-th value this shard takes of a counter the N shards share
    /// (`seq`, a sequential data set's rows).
    #[inline]
    pub fn nth(self, j: u64) -> u64 {
        j * u64::from(self.count) + u64::from(self.index)
    }

    /// The config this shard runs: `config`'s counts split (see the module).
    pub fn apply(self, config: &Config) -> Config {
        let mut c = config.clone();
        for s in &mut c.stages {
            s.target = self.share32(s.target);
        }
        c.max_workers = c.max_workers.map(|m| self.share32(m));
        c.requests = c.requests.map(|r| self.share(r));
        let split =
            |pre: &mut Option<u32>, max: &mut Option<u32>, a: &mut Option<EndpointAutoscale>| {
                *pre = pre.map(|v| self.share32(v));
                *max = max.map(|v| self.share32(v));
                if let Some(EndpointAutoscale::On(spec)) = a {
                    spec.target_rps = spec.target_rps.map(|t| t / f64::from(self.count));
                    spec.min_workers = spec.min_workers.map(|v| self.share32(v).max(1));
                    spec.max_workers = spec.max_workers.map(|v| self.share32(v).max(1));
                }
            };
        for e in &mut c.endpoints {
            split(&mut e.pre_allocated_vus, &mut e.max_vus, &mut e.autoscale);
        }
        for f in &mut c.flows {
            split(&mut f.pre_allocated_vus, &mut f.max_vus, &mut f.autoscale);
        }
        c
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a sharded run's summary records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
    /// When t = 0 was, RFC 3339 (every shard's `--start-at`).
    pub start_at: String,
    /// The whole sharded run: `--group`, or the config's hash and the start time.
    pub group: String,
    /// The SHA-256 of the unsplit config (`merge` refuses shards of other configs).
    pub config_sha256: String,
}

/// The SHA-256 of a config as JSON, without what differs from machine to
/// machine: its `shard`, the threads resolved from the machine's cores, and
/// where its files are (a data set is its SHA-256; certificates are the
/// machine's).
pub fn config_hash(config: &Config) -> String {
    use sha2::{Digest, Sha256};
    let mut c = config.clone();
    c.shard = None;
    c.threads = None;
    c.tls = None;
    for d in c.data.values_mut() {
        d.file.clear();
    }
    let text = serde_json::to_string(&c).expect("a config serializes");
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
        for (s, want) in [
            ("3/3", "below the count"),
            ("0/0", "1 to"),
            ("a/3", "not a shard index"),
            ("1", "I/N"),
            ("1/x", "not a shard count"),
        ] {
            let e = Shard::parse(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn shares_add_up_exactly_for_any_n() {
        for n in 1..=40u32 {
            for total in [0u64, 1, 2, 3, 7, 10, 64, 99, 1000, 1_000_001] {
                let parts: Vec<u64> = (0..n)
                    .map(|i| Shard { index: i, count: n }.share(total))
                    .collect();
                assert_eq!(parts.iter().sum::<u64>(), total, "{total} over {n}");
                let (lo, hi) = (parts.iter().min().unwrap(), parts.iter().max().unwrap());
                assert!(hi - lo <= 1, "{total} over {n}: {parts:?}");
            }
        }
        // more shards than VUs: some get none
        let parts: Vec<u64> = (0..5)
            .map(|i| Shard { index: i, count: 5 }.share(3))
            .collect();
        assert_eq!(parts, [1, 1, 1, 0, 0]);
    }

    #[test]
    fn counters_interleave_without_overlap() {
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..3 {
            for j in 0..100 {
                assert!(seen.insert(Shard { index: i, count: 3 }.nth(j)));
            }
        }
        assert_eq!(seen, (0..300).collect());
    }

    #[test]
    fn a_config_splits_into_shares_that_add_up() {
        let c = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "requests": 1001, "max_workers": 50,
              "stages": [{"duration": "1s", "target": 10}, {"duration": "1s", "target": 7}],
              "endpoints": [{"name": "a", "path": "/"},
                            {"name": "o", "path": "/o", "rate": 100, "pre_allocated_vus": 5, "max_vus": 11},
                            {"name": "s", "path": "/s", "autoscale": {"target_rps": 90, "min_workers": 2, "max_workers": 9}}]}"#,
        )
        .unwrap();
        for n in [1u32, 2, 3, 4, 16] {
            let shards: Vec<Config> = (0..n)
                .map(|i| Shard { index: i, count: n }.apply(&c))
                .collect();
            let sum = |f: &dyn Fn(&Config) -> u64| shards.iter().map(f).sum::<u64>();
            assert_eq!(sum(&|s| s.requests.unwrap()), 1001);
            assert_eq!(sum(&|s| s.max_workers.unwrap() as u64), 50);
            assert_eq!(sum(&|s| s.stages[0].target as u64), 10);
            assert_eq!(sum(&|s| s.stages[1].target as u64), 7);
            assert_eq!(sum(&|s| s.endpoints[1].max_vus.unwrap() as u64), 11);
            assert_eq!(
                sum(&|s| s.endpoints[1].pre_allocated_vus.unwrap() as u64),
                5
            );
            let t: f64 = shards
                .iter()
                .map(|s| s.endpoints[2].autoscale().unwrap().target_rps)
                .sum();
            assert!((t - 90.0).abs() < 1e-9);
            assert!(
                shards
                    .iter()
                    .all(|s| s.endpoints[2].autoscale().unwrap().max_workers >= 1)
            );
            // the rate itself is not split: the schedule is, send by send
            assert!(shards.iter().all(|s| s.endpoints[1].rate == Some(100.0)));
        }
    }
}
