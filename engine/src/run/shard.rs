//! Shards: one config run by N engines (N machines, or N Kubernetes pods of
//! an Indexed Job), each running share I of it, so that the N results
//! merged (`userfluxctl merge`) are what one engine N times as large would
//! have measured. Pure arithmetic, applied to a resolved config and a plan.
//!
//! - VUs split by their place in the whole run's allocation (issue #27):
//!   the whole run's VUs are laid out in a row — each load unit's part,
//!   from the distribution over the whole stage target, one after the
//!   other — and the VU at position g runs on shard g mod N. So the union
//!   of the shards' allocations is exactly the one-process allocation, and
//!   an endpoint with fewer VUs than shards still runs (4 VUs 1:1 over 4
//!   shards: each endpoint on two of them; it used to be split per shard,
//!   ties to the first, and the second endpoint ran nowhere). Open-model
//!   `max_vus` (and `pre_allocated_vus`, the first positions of the same
//!   range) are laid out the same way, and the schedule follows them: a
//!   unit whose `max_vus` reach M < N shards has its sends k made by the
//!   (k mod M)-th of those, so no shard is handed sends without VUs.
//! - `max_workers` caps the whole run's VUs before they are laid out;
//!   `requests` splits by largest remainder, so the N shares add up exactly
//!   to the whole; a share may be 0.
//! - An open-model schedule whose VUs every shard holds is split send by
//!   send: shard I makes the sends k with k mod N = I, so the union is the
//!   unsplit schedule.
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

    /// Of the whole run's VUs at positions `offset..offset + n`, how many
    /// are this shard's (position g is shard g mod N's).
    pub fn part(self, offset: u64, n: u64) -> u64 {
        let (i, count) = (u64::from(self.index), u64::from(self.count));
        // positions below x that are this shard's
        let below = |x: u64| (x + count - 1 - i) / count;
        below(offset + n) - below(offset)
    }

    /// This shard's place among the shards that hold some of the `n` VUs
    /// at positions `offset..offset + n`: (its position, how many hold
    /// some), or None when it holds none.
    pub fn slot(self, offset: u64, n: u64) -> Option<(u64, u64)> {
        let (i, count) = (u64::from(self.index), u64::from(self.count));
        if n >= count {
            return Some((i, count));
        }
        let j = (i + count - offset % count) % count;
        (j < n).then_some((j, n))
    }

    /// The `j`-th value this shard takes of a counter the N shards share
    /// (`seq`, a sequential data set's rows).
    #[inline]
    pub fn nth(self, j: u64) -> u64 {
        j * u64::from(self.count) + u64::from(self.index)
    }

    /// The config this shard runs: `config`'s counts split (see the module).
    /// Stage targets, `max_workers` and open-model VUs without autoscale
    /// stay whole here: the plan lays them out by position
    /// ([`crate::plan::Plan::distribute`], [`Shard::part`]).
    pub fn apply(self, config: &Config) -> Config {
        let mut c = config.clone();
        c.requests = c.requests.map(|r| self.share(r));
        let split =
            |pre: &mut Option<u32>, max: &mut Option<u32>, a: &mut Option<EndpointAutoscale>| {
                if let Some(EndpointAutoscale::On(spec)) = a {
                    *pre = pre.map(|v| self.share32(v));
                    *max = max.map(|v| self.share32(v));
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
    fn positions_go_round_the_shards() {
        for n in 1..=7u32 {
            for offset in 0..20u64 {
                for len in 0..25u64 {
                    let shards = (0..n).map(|i| Shard { index: i, count: n });
                    let parts: Vec<u64> = shards.clone().map(|s| s.part(offset, len)).collect();
                    assert_eq!(parts.iter().sum::<u64>(), len, "{offset}+{len} over {n}");
                    for (s, part) in shards.zip(&parts) {
                        let want = (offset..offset + len)
                            .filter(|g| g % u64::from(n) == u64::from(s.index))
                            .count() as u64;
                        assert_eq!(*part, want);
                        // a slot exactly when it holds some, and the slots
                        // of those that hold some are 0..holders
                        assert_eq!(s.slot(offset, len).is_some(), *part > 0 || len >= n as u64);
                    }
                    let mut slots: Vec<(u64, u64)> = (0..n)
                        .filter_map(|i| Shard { index: i, count: n }.slot(offset, len))
                        .collect();
                    slots.sort_unstable();
                    let holders = len.min(u64::from(n));
                    let want: Vec<(u64, u64)> = (0..holders).map(|j| (j, holders)).collect();
                    if len > 0 {
                        assert_eq!(slots, want, "{offset}+{len} over {n}");
                    }
                }
            }
        }
    }

    fn plan(config: &str, shard: Option<&str>) -> crate::plan::Plan {
        let mut c = Config::from_json(config).unwrap();
        c.shard = shard.map(str::to_string);
        crate::run::prepare_with(&c, false).unwrap()
    }

    /// Issue #27: the shards' allocations add up to the one-process one,
    /// endpoint by endpoint, at every VU count (4 VUs 1:1 over 4 shards
    /// gave the second endpoint nothing; 10 VUs 9:1 over 5 shards the
    /// second endpoint nothing).
    #[test]
    fn shards_allocate_exactly_what_one_process_does() {
        let cases = [
            (
                r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 4}],
                 "endpoints": [{"name": "a", "path": "/a"}, {"name": "b", "path": "/b"}]}"#,
                4,
            ),
            (
                r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 10}],
                 "endpoints": [{"name": "browse", "path": "/a", "weight": 9},
                               {"name": "checkout", "path": "/b", "weight": 1}]}"#,
                5,
            ),
            (
                r#"{"target": "http://127.0.0.1:1", "max_workers": 23, "distribution": "priority",
                 "stages": [{"duration": "1s", "target": 40}],
                 "endpoints": [{"name": "a", "path": "/a", "priority": "high"},
                               {"name": "b", "path": "/b", "priority": "low", "weight": 3},
                               {"name": "c", "path": "/c", "priority": "medium"}],
                 "flows": [{"name": "f", "weight": 2, "steps": [{"name": "s", "path": "/s"}]}]}"#,
                7,
            ),
        ];
        for (config, n) in cases {
            let one = plan(config, None);
            let shards: Vec<_> = (0..n)
                .map(|i| plan(config, Some(&format!("{i}/{n}"))))
                .collect();
            for total in 0..=45 {
                let want = one.distribute(total);
                let mut got = vec![0; want.len()];
                for s in &shards {
                    for (g, p) in got.iter_mut().zip(s.distribute(total)) {
                        *g += p;
                    }
                }
                assert_eq!(got, want, "{total} VUs over {n} shards");
                // and each shard runs its share of the VUs
                for (i, s) in shards.iter().enumerate() {
                    let share = Shard {
                        index: i as u32,
                        count: n,
                    }
                    .share(u64::from(total.min(one.max_workers.unwrap_or(u32::MAX))));
                    assert_eq!(
                        s.distribute(total)
                            .iter()
                            .map(|&v| u64::from(v))
                            .sum::<u64>(),
                        share
                    );
                }
            }
        }
        // every endpoint of the first two cases runs somewhere at its peak
        let four: Vec<_> = (0..4)
            .map(|i| plan(cases[0].0, Some(&format!("{i}/4"))))
            .collect();
        let b: u32 = four.iter().map(|p| p.distribute(4)[1]).sum();
        assert_eq!(b, 2);
        // (with one VU each, every shard lacks one endpoint and says which)
        for (i, p) in four.iter().enumerate() {
            let lacks = if i < 2 { "endpoint b" } else { "endpoint a" };
            let notes = p.absent_units();
            assert!(
                notes.len() == 1 && notes[0].contains(lacks),
                "{i}: {notes:?}"
            );
        }
        // a shard that holds none of an endpoint says so
        let two = plan(
            r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 2}],
                "endpoints": [{"name": "a", "path": "/a"}, {"name": "b", "path": "/b"}]}"#,
            Some("1/4"),
        );
        assert_eq!(two.distribute(2), [0, 1]);
        let three = plan(
            r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 2}],
                "endpoints": [{"name": "a", "path": "/a"}, {"name": "b", "path": "/b"}]}"#,
            Some("3/4"),
        );
        let notes = three.absent_units();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("endpoint a gets no VU"), "{notes:?}");
    }

    /// Open-model VUs are laid out by position too, and the schedule goes
    /// only to shards that hold some: together they make every send once.
    #[test]
    fn open_model_vus_and_sends_follow_the_positions() {
        let config = r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 0}],
             "endpoints": [{"name": "o", "path": "/o", "rate": 100, "pre_allocated_vus": 2, "max_vus": 3},
                           {"name": "p", "path": "/p", "rate": 50, "pre_allocated_vus": 1, "max_vus": 1},
                           {"name": "q", "path": "/q", "rate": 10}]}"#;
        let one = plan(config, None);
        for n in [1u32, 2, 3, 4, 5] {
            let shards: Vec<_> = (0..n)
                .map(|i| plan(config, Some(&format!("{i}/{n}"))))
                .collect();
            for ep in 0..3 {
                let whole = one.endpoints[ep].open.as_ref().unwrap();
                let opens = shards
                    .iter()
                    .map(|s| s.endpoints[ep].open.as_ref().unwrap());
                let max: u32 = opens.clone().map(|o| o.max_vus).sum();
                let pre: u32 = opens.clone().map(|o| o.pre_allocated).sum();
                assert_eq!(
                    (max, pre),
                    (whole.max_vus, whole.pre_allocated),
                    "{ep} over {n}"
                );
                // every send k is made by exactly one shard
                for k in 0..60u64 {
                    let makers = opens
                        .clone()
                        .filter(|o| o.slot.is_some_and(|(at, of)| k % of == at))
                        .count();
                    assert_eq!(makers, 1, "send {k} of {ep} over {n}");
                }
                // and a shard with a part of the sends has VUs for them
                assert!(opens.clone().all(|o| o.slot.is_none() == (o.max_vus == 0)));
            }
        }
    }

    impl Config {
        fn max_vus_of(&self, ep: usize) -> u64 {
            u64::from(self.endpoints[ep].max_vus.unwrap())
        }
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
            // VUs stay whole in the config: the plan lays them out by position
            assert_eq!(sum(&|s| s.stages[0].target as u64), 10 * u64::from(n));
            assert_eq!(sum(&|s| s.max_vus_of(1)), 11 * u64::from(n));
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
