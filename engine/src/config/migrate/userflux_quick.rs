//! The flat Userflux quick form `{"url", "vus", "duration"}` (older
//! Userflux), as one GET endpoint.

use super::{Migration, count, dur, secs};
use serde_json::{Map, Value, json};

impl Migration {
    pub(super) fn quick(&mut self, o: Map<String, Value>) -> Result<Value, String> {
        self.unmapped(&o, &["url", "vus", "duration", "threads", "name"], "");
        let url = o
            .get("url")
            .and_then(Value::as_str)
            .ok_or("url: expected a URL string")?;
        let vus = o
            .get("vus")
            .map(|v| count(v, "vus"))
            .transpose()?
            .unwrap_or(1);
        let duration = match o.get("duration") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => dur(secs(v, "duration")?),
            None => "10s".into(),
        };
        self.warn(format!(
            "converted the quick form {{url, vus, duration}}: one GET endpoint \"default\" with {vus} VUs for {duration}"
        ));
        let mut c = json!({
            "name": o.get("name").cloned().unwrap_or(json!("quick")),
            "stages": [{"duration": "0s", "target": vus}, {"duration": duration, "target": vus}],
            "endpoints": [{"name": "default", "method": "GET", "url": url}],
        });
        if let Some(t) = o.get("threads") {
            c["threads"] = t.clone();
        }
        Ok(c)
    }
}
