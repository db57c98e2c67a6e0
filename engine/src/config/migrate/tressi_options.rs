//! Tressi's current form: `options` (`durationSec`, `rampUpDurationSec`,
//! `headers`, `threads`, …) with per-request `rps`, `rampUpDurationSec`,
//! `earlyExit` (as thresholds that stop the run).

use super::{Migration, dur, rate_stages, requests_of, secs};
use serde_json::{Map, Value, json};

impl Migration {
    pub(super) fn tressi_options(&mut self, o: Map<String, Value>) -> Result<Value, String> {
        self.unmapped(&o, &["$schema", "options", "requests"], "");
        self.schema_url(&o);
        let options = o
            .get("options")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let known = [
            "durationSec",
            "rampUpDurationSec",
            "rampUpTimeSec",
            "headers",
            "threads",
            "workerEarlyExit",
        ];
        self.unmapped(&options, &known, "options.");
        let duration = options
            .get("durationSec")
            .map(|v| secs(v, "options.durationSec"))
            .transpose()?
            .unwrap_or(10.0);
        let global_ramp = options
            .get("rampUpDurationSec")
            .or(options.get("rampUpTimeSec"))
            .map(|v| secs(v, "options.rampUpDurationSec"))
            .transpose()?
            .unwrap_or(0.0);
        let global = options
            .get("headers")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(r) = options
            .get("rampUpDurationSec")
            .or(options.get("rampUpTimeSec"))
        {
            self.warn(format!(
                "options.rampUpDurationSec {r}: each request's rate ramps from 0 over {} unless it sets its own",
                dur(global_ramp)
            ));
        }
        let requests = requests_of(&o)?;
        let mut taken = Vec::new();
        let mut endpoints = Vec::new();
        let mut thresholds = Map::new();
        if let Some(e) = options.get("workerEarlyExit") {
            self.early_exit(e, "options.workerEarlyExit", "{", &mut thresholds)?;
        }
        for (i, r) in requests.iter().enumerate() {
            let mut ep = self.endpoint(i, r, &global, &mut taken)?;
            let ro = r.as_object().expect("checked by endpoint");
            let at = format!("requests[{i}].");
            self.unmapped(
                ro,
                &[
                    "url",
                    "method",
                    "headers",
                    "payload",
                    "rps",
                    "rampUpDurationSec",
                    "earlyExit",
                ],
                &at,
            );
            let rps = ro
                .get("rps")
                .map(|v| v.as_f64().ok_or(format!("{at}rps: expected a number")))
                .transpose()?
                .unwrap_or(1.0);
            let own_ramp = ro
                .get("rampUpDurationSec")
                .map(|v| secs(v, &format!("{at}rampUpDurationSec")))
                .transpose()?;
            let wanted = own_ramp.filter(|r| *r > 0.0).unwrap_or(global_ramp);
            if let Some(own) = own_ramp.filter(|r| *r > 0.0)
                && global_ramp > 0.0
                && own != global_ramp
            {
                self.warn(format!(
                    "{at}rampUpDurationSec {own}: overrides options.rampUpDurationSec {global_ramp} for this request"
                ));
            }
            let ramp = wanted.min(duration);
            let overrides = own_ramp.is_some_and(|r| r > 0.0) && global_ramp > 0.0;
            if let Some(own) = own_ramp
                && !overrides
                && own <= duration
            {
                self.warn(if own > 0.0 {
                    format!(
                        "{at}rampUpDurationSec {own}: its rate ramps from 0 over {}",
                        dur(own)
                    )
                } else {
                    format!(
                        "{at}rampUpDurationSec 0: uses options.rampUpDurationSec ({})",
                        dur(global_ramp)
                    )
                });
            }
            if wanted > duration {
                self.warn(format!(
                    "{at}rampUpDurationSec {wanted}: longer than the run ({}); the ramp is shortened to {} and the rate {rps} req/s is reached at the end",
                    dur(duration),
                    dur(ramp)
                ));
            }
            ep.insert("rate_stages".into(), rate_stages(rps, ramp, duration));
            self.warn(format!(
                "{at}rps {rps}: open-model rate {rps} req/s{}",
                if ramp > 0.0 {
                    format!(", ramped over {}", dur(ramp))
                } else {
                    String::new()
                }
            ));
            if let Some(e) = ro.get("earlyExit") {
                let name = ep["name"].as_str().unwrap_or_default().to_string();
                self.early_exit(
                    e,
                    &format!("{at}earlyExit"),
                    &format!("{{endpoint:{name}"),
                    &mut thresholds,
                )?;
            }
            endpoints.push(Value::Object(ep));
        }
        let mut c = json!({"name": "tressi", "duration": dur(duration), "endpoints": endpoints});
        if !thresholds.is_empty() {
            c["thresholds"] = Value::Object(thresholds);
        }
        if let Some(t) = options.get("threads") {
            c["threads"] = t.clone();
            self.warn(format!("options.threads {t}: worker threads"));
        }
        self.warn(format!(
            "options.durationSec {duration}: the run lasts {}",
            dur(duration)
        ));
        if !global.is_empty() {
            self.warn(
                "options.headers: added to every endpoint's headers (the endpoint's own win)",
            );
        }
        Ok(c)
    }

    /// Tressi's `earlyExit` (`{enabled, errorRateThreshold, exitStatusCodes,
    /// monitoringWindowMs}`) as thresholds that stop the run, under tags
    /// opened by `tags` (`{endpoint:NAME` or `{`): an error rate above the
    /// threshold (a fraction, or a percent when above 1, as Tressi's
    /// versions wrote it) and any response with an exit status code.
    pub(super) fn early_exit(
        &mut self,
        e: &Value,
        at: &str,
        tags: &str,
        thresholds: &mut Map<String, Value>,
    ) -> Result<(), String> {
        let Some(o) = e.as_object() else {
            return Err(format!("{at}: expected an object"));
        };
        self.unmapped(
            o,
            &[
                "enabled",
                "errorRateThreshold",
                "exitStatusCodes",
                "monitoringWindowMs",
                "monitoringWindowSeconds",
            ],
            &format!("{at}."),
        );
        if o.get("enabled").and_then(Value::as_bool) != Some(true) {
            let fields: Vec<&str> = o.keys().map(String::as_str).collect();
            self.warn(format!(
                "{at}: disabled (enabled false); nothing to convert (its {})",
                fields.join(", ")
            ));
            for k in o.keys().filter(|k| *k != "enabled") {
                self.warn(format!(
                    "{at}.{k} {}: unused, the early exit is disabled",
                    o[k]
                ));
            }
            self.warn(format!("{at}.enabled false: no thresholds made"));
            return Ok(());
        }
        self.warn(format!(
            "{at}.enabled true: its conditions become thresholds with abortOnFail"
        ));
        let key = |metric: &str, extra: &str| {
            let inner = format!("{}{extra}", tags.trim_start_matches('{'));
            if inner.is_empty() {
                metric.to_string()
            } else {
                format!("{metric}{{{}}}", inner.trim_start_matches(','))
            }
        };
        let mut made = Vec::new();
        if let Some(r) = o.get("errorRateThreshold").and_then(Value::as_f64)
            && r <= 0.0
        {
            self.warn(format!(
                "{at}.errorRateThreshold {r}: 0 sets no error-rate limit"
            ));
        }
        if let Some(r) = o.get("errorRateThreshold").and_then(Value::as_f64)
            && r > 0.0
        {
            // Tressi 0.0.13-0.0.19 wrote a fraction (0.0-1.0, with
            // monitoringWindowMs); 0.0.20 a percent (1-100, with
            // monitoringWindowSeconds).
            let percent = if o.contains_key("monitoringWindowSeconds") {
                true
            } else if o.contains_key("monitoringWindowMs") {
                false
            } else {
                self.version.is_some_and(|v| v >= (0, 0, 20)) || r > 1.0
            };
            let rate = if percent { r / 100.0 } else { r };
            self.warn(format!(
                "{at}.errorRateThreshold {r}: {} error rate {rate}",
                if percent {
                    "a percent (Tressi 0.0.20):"
                } else {
                    "a fraction (Tressi 0.0.13-0.0.19):"
                }
            ));
            let k = key("http_req_failed", "");
            thresholds.insert(
                k.clone(),
                json!([{"threshold": format!("rate<{rate}"), "abortOnFail": true}]),
            );
            made.push(format!("{k}: rate<{rate}"));
        }
        for code in o
            .get("exitStatusCodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
        {
            let k = key("http_reqs", &format!(",status:{code}"));
            thresholds.insert(
                k.clone(),
                json!([{"threshold": "count==0", "abortOnFail": true}]),
            );
            made.push(format!("{k}: count==0"));
        }
        if let Some(codes) = o.get("exitStatusCodes") {
            self.warn(format!(
                "{at}.exitStatusCodes {codes}: a response with one of these stops the run (http_reqs{{status:N}} count==0, abortOnFail)"
            ));
        }
        if made.is_empty() {
            self.warn(format!(
                "{at}: enabled without a rate or status codes; nothing to convert"
            ));
        } else {
            self.warn(format!(
                "{at}: thresholds that stop the run (abortOnFail): {}",
                made.join(", ")
            ));
        }
        for k in ["monitoringWindowMs", "monitoringWindowSeconds"] {
            if let Some(w) = o.get(k) {
                self.warn(format!(
                    "{at}.{k} {w}: no equivalent; thresholds judge the whole run so far, every second"
                ));
            }
        }
        Ok(())
    }
}
