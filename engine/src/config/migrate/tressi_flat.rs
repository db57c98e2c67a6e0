//! Tressi's early flat form: `requests[]` (`url`, `method`, `payload`,
//! `headers`) with top-level `workers`, `duration`, `rampUpTime`, `rps`,
//! `autoscale: true|false`, `headers`. A flat file whose requests carry
//! their own load is read as the options form ([`super::tressi_options`]).

use super::{Migration, count, dur, rate_stages, requests_of, secs};
use serde_json::{Map, Value, json};

impl Migration {
    pub(super) fn tressi_flat(&mut self, o: Map<String, Value>) -> Result<Value, String> {
        // A flat file whose requests carry their own load (rps, a ramp, an
        // early exit) is read as the options form: the requests decide.
        let per_request = requests_of(&o)?.iter().any(|r| {
            ["rps", "rampUpDurationSec", "earlyExit"]
                .iter()
                .any(|k| r.get(k).is_some())
        });
        if per_request {
            return self.tressi_flat_per_request(o);
        }
        let known = [
            "$schema",
            "name",
            "description",
            "autoscale",
            "workers",
            "duration",
            "rps",
            "rampUpTime",
            "headers",
            "requests",
        ];
        self.unmapped(&o, &known, "");
        self.schema_url(&o);
        if o.contains_key("description") {
            self.warn("description: no Userflux equivalent; ignored");
        }
        let requests = requests_of(&o)?;
        let global = o
            .get("headers")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let workers = o
            .get("workers")
            .map(|v| count(v, "workers"))
            .transpose()?
            .unwrap_or(10)
            .max(1);
        let duration = o
            .get("duration")
            .map(|v| secs(v, "duration"))
            .transpose()?
            .unwrap_or(10.0);
        let wanted_ramp = o
            .get("rampUpTime")
            .map(|v| secs(v, "rampUpTime"))
            .transpose()?
            .unwrap_or(0.0);
        let ramp = wanted_ramp.min(duration);
        if wanted_ramp > duration {
            self.warn(format!(
                "rampUpTime {wanted_ramp}: longer than the run ({}); the ramp is shortened to {}",
                dur(duration),
                dur(ramp)
            ));
        }
        let rps = o
            .get("rps")
            .map(|v| v.as_f64().ok_or(format!("rps: expected a number, got {v}")))
            .transpose()?;
        let autoscale = o.get("autoscale").and_then(Value::as_bool).unwrap_or(false);
        let n = requests.len();
        let mut taken = Vec::new();
        let mut endpoints = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            endpoints.push(self.endpoint(i, r, &global, &mut taken)?);
            if let Some(ro) = r.as_object() {
                self.unmapped(
                    ro,
                    &["url", "method", "headers", "payload"],
                    &format!("requests[{i}]."),
                );
            }
        }
        let mut c = Map::new();
        c.insert(
            "name".into(),
            o.get("name").cloned().unwrap_or(json!("tressi")),
        );
        match (autoscale, rps) {
            (true, Some(rps)) => {
                let per = rps / n as f64;
                for ep in &mut endpoints {
                    ep.insert("autoscale".into(), json!({"target_rps": per}));
                }
                c.insert("max_workers".into(), json!(workers));
                c.insert("stages".into(), json!([{"duration": "0s", "target": n}, {"duration": dur(duration), "target": n}]));
                self.warn(format!(
                    "autoscale true: each endpoint autoscales to target_rps {per} (rps {rps} split evenly), \
                     under a global max_workers of {workers}, starting from one worker each"
                ));
                self.warn(format!(
                    "rps {rps}: split evenly, target_rps {per} per endpoint"
                ));
                self.warn(format!("workers {workers}: the global max_workers"));
                if ramp > 0.0 {
                    self.warn(format!("rampUpTime {ramp}: no equivalent under autoscale (the autoscaler ramps); ignored"));
                }
            }
            (_, Some(rps)) => {
                let per = rps / n as f64;
                let vus = workers.div_ceil(n as u64).max(1);
                for ep in &mut endpoints {
                    ep.insert("rate_stages".into(), rate_stages(per, ramp, duration));
                    ep.insert("pre_allocated_vus".into(), json!(vus));
                    ep.insert("max_vus".into(), json!(vus));
                }
                self.warn(format!(
                    "rps {rps} without autoscale: each endpoint becomes open-model at rate {per} req/s \
                     (rps split evenly) with up to {vus} connections (workers {workers} split evenly)"
                ));
                if o.contains_key("workers") {
                    self.warn(format!(
                        "workers {workers}: up to {vus} connections per endpoint"
                    ));
                }
                if ramp > 0.0 {
                    self.warn(format!(
                        "rampUpTime {ramp}: each endpoint's rate ramps from 0 over {}",
                        dur(ramp)
                    ));
                }
                if let Some(a) = o.get("autoscale") {
                    self.warn(format!("autoscale {a}: the rate is fixed"));
                }
            }
            (a, None) => {
                let mut stages = vec![];
                if ramp > 0.0 {
                    stages.push(json!({"duration": dur(ramp), "target": workers}));
                } else {
                    stages.push(json!({"duration": "0s", "target": workers}));
                }
                stages.push(json!({"duration": dur(duration - ramp), "target": workers}));
                c.insert("stages".into(), Value::Array(stages));
                self.warn(format!(
                    "workers {workers}: {workers} VUs split evenly over the requests"
                ));
                if ramp > 0.0 {
                    self.warn(format!(
                        "rampUpTime {ramp}: the VUs ramp from 0 over {}",
                        dur(ramp)
                    ));
                }
                if a {
                    self.warn(
                        "autoscale true: without rps there is no target to scale to; VUs stay fixed",
                    );
                } else if let Some(v) = o.get("autoscale") {
                    self.warn(format!("autoscale {v}: VUs stay fixed"));
                }
            }
        }
        c.insert(
            "endpoints".into(),
            Value::Array(endpoints.into_iter().map(Value::Object).collect()),
        );
        if o.contains_key("duration") {
            self.warn(format!(
                "duration {duration} (seconds): the run lasts {}",
                dur(duration)
            ));
        }
        Ok(Value::Object(c))
    }

    /// A flat file with per-request load: its top-level fields become the
    /// options form's where they have an equivalent there.
    pub(super) fn tressi_flat_per_request(
        &mut self,
        mut o: Map<String, Value>,
    ) -> Result<Value, String> {
        let mut options = Map::new();
        for (from, to) in [
            ("duration", "durationSec"),
            ("rampUpTime", "rampUpDurationSec"),
            ("headers", "headers"),
        ] {
            if let Some(v) = o.remove(from) {
                if from != to {
                    self.warn(format!(
                        "{from} {v}: read as options.{to} (the requests carry their own rps)"
                    ));
                }
                options.insert(to.into(), v);
            }
        }
        for k in ["workers", "rps", "autoscale"] {
            if let Some(v) = o.remove(k) {
                self.warn(format!(
                    "{k} {v}: ignored: the requests carry their own rps, each an open-model rate"
                ));
            }
        }
        if let Some(d) = o.remove("description") {
            self.warn(format!("description {d}: no Userflux equivalent; ignored"));
        }
        let name = o.remove("name");
        o.insert("options".into(), Value::Object(options));
        let mut c = self.tressi_options(o)?;
        if let Some(n) = name {
            c["name"] = n;
        }
        Ok(c)
    }
}
