//! Reading a config: a file (bounded), strict JSON text (see [`super::json`]),
//! older forms converted ([`super::migrate`]), then typed with field paths;
//! and resolving it: validation ([`super::validate`]), each unit's
//! open-model defaults and merged autoscale, the machine's threads.
//!
//! [`Config::load`] returns the *resolved* config (defaults filled, threads
//! decided), which is what a run writes to `config.json`.

use super::autoscale::{AutoscaleSpec, EndpointAutoscale};
use super::{
    Config, ConfigError, DEFAULT_PRE_ALLOCATED_VUS, Endpoint, Problem, compile, json, traffic,
};
use std::path::Path;

impl Config {
    /// Reads, parses, validates and resolves a config file; errors name the file.
    /// Migration warnings are dropped here; use [`Config::read`] to show them.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::read(path)?.0.resolve().map_err(|e| e.in_file(path))
    }

    /// Reads and parses a config file without validating or resolving it,
    /// so a caller can apply overrides (`--target`, `--threads`) first.
    /// Older forms (Tressi's, the quick form) are converted first; the
    /// warnings say what was converted.
    pub fn read(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let text =
            read_bounded(path).map_err(|e| ConfigError::one(format!("{}: {e}", path.display())))?;
        let (mut config, warnings) = Config::parse_migrating(&text).map_err(|e| e.in_file(path))?;
        config.base_dir = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        Ok((config, warnings))
    }

    /// Parses JSON text in any accepted form, converting older ones;
    /// returns the unvalidated config and the migration warnings.
    pub fn parse_migrating(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let value = json_object(text)?;
        let (value, warnings) = super::migrate::migrate(value).map_err(ConfigError::one)?;
        Ok((Config::from_value(value)?, warnings))
    }

    /// Parses, validates and resolves a config from JSON text.
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text)?.resolve()
    }

    /// Parses JSON text into a config, unvalidated.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_value(json_object(text)?)
    }

    /// A config from parsed JSON in the current form, unvalidated; errors name the field path.
    pub fn from_value(value: serde_json::Value) -> Result<Config, ConfigError> {
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            ConfigError::one(if path == "." {
                inner
            } else {
                format!("{path}: {inner}")
            })
        })?;
        Ok(config)
    }

    /// Validates every field, merges each endpoint's autoscale over the
    /// global one, and fills the defaults that depend on the machine.
    pub fn resolve(mut self) -> Result<Config, ConfigError> {
        // Data sets first: templates name their columns.
        let mut problems = traffic::load_data(&mut self);
        // (what a run records, so its config compiles from anywhere: merge)
        super::grpc::absolute_paths(&mut self);
        let (found, compiled) = self.problems();
        problems.extend(found.iter().map(Problem::to_string));
        if let Some(g) = &self.autoscale {
            g.field_problems("autoscale", &mut problems);
        }
        // An HTTP unit's config says its method (GET when left out); a
        // gRPC unit's says none (its call is a POST, `grpc::conflicts`).
        let steps = self.flows.iter_mut().flat_map(|f| f.steps.iter_mut());
        for m in (self.endpoints.iter_mut())
            .filter(|e| e.grpc.is_none())
            .map(|e| &mut e.method)
            .chain(steps.filter(|s| s.grpc.is_none()).map(|s| &mut s.method))
        {
            m.get_or_insert_default();
        }
        let (global, max_workers) = (self.autoscale.clone(), self.max_workers);
        for (i, ep) in self.endpoints.iter_mut().enumerate() {
            resolve_unit(
                ep,
                &format!("endpoints[{i}]"),
                &global,
                max_workers,
                &mut problems,
            );
        }
        for (i, f) in self.flows.iter_mut().enumerate() {
            let mut unit = f.as_unit();
            resolve_unit(
                &mut unit,
                &format!("flows[{i}]"),
                &global,
                max_workers,
                &mut problems,
            );
            f.autoscale = unit.autoscale;
            f.pre_allocated_vus = unit.pre_allocated_vus;
            f.max_vus = unit.max_vus;
        }
        if let Some(max) = self.max_workers {
            let floor: u64 = self
                .units()
                .iter()
                .filter_map(Endpoint::autoscale)
                .map(|a| a.min_workers as u64)
                .sum();
            if max == 0 {
                problems.push("max_workers: must be at least 1".into());
            } else if floor > max as u64 {
                problems.push(format!(
                    "max_workers: {max} is below the sum of the endpoints' min_workers ({floor})"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        if self.threads.is_none() {
            self.threads = Some(std::thread::available_parallelism().map_or(1, |n| n.get()));
        }
        self.compiled = compile::Kept(Some(std::sync::Arc::new(compiled)));
        Ok(self)
    }
}

/// Fills a load unit's open-model defaults and merges its autoscale over
/// the global one; `at` is its field path (`endpoints[0]`, `flows[1]`).
fn resolve_unit(
    ep: &mut Endpoint,
    at: &str,
    global: &Option<AutoscaleSpec>,
    max_workers: Option<u32>,
    problems: &mut Vec<String>,
) {
    let autoscaled = ep.autoscale_on(global.is_some());
    if ep.is_open() {
        let pre = *ep
            .pre_allocated_vus
            .get_or_insert(DEFAULT_PRE_ALLOCATED_VUS);
        // With autoscale the cap is the autoscaler's, so max_vus stays unset.
        if !autoscaled {
            ep.max_vus.get_or_insert(pre);
        }
    }
    let at = format!("{at}.autoscale");
    let spec = match (&ep.autoscale, global) {
        (Some(EndpointAutoscale::Off), _) | (None, None) => return,
        (Some(EndpointAutoscale::On(own)), global) => {
            own.field_problems(&at, problems);
            own.merged_over(&global.clone().unwrap_or_default())
        }
        (None, Some(global)) => global.clone(),
    };
    let spec = spec.with_defaults(max_workers);
    spec.merged_problems(&at, problems);
    ep.autoscale = Some(EndpointAutoscale::On(spec));
}
/// A config file's text, refused past [`json::MAX_CONFIG_BYTES`] (reading
/// `/dev/zero` must end with an error, not with all of memory).
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(json::MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > json::MAX_CONFIG_BYTES {
        return Err(format!(
            "larger than {} MiB; a config is a few KB (data sets are separate files)",
            json::MAX_CONFIG_BYTES / (1024 * 1024)
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Config text as a JSON object (strict: see [`json`]).
fn json_object(text: &str) -> Result<serde_json::Value, ConfigError> {
    let value = json::parse(text).map_err(ConfigError::one)?;
    if !value.is_object() {
        let kind = match value {
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return Err(ConfigError::one(format!(
            "a config is a JSON object ({{\"target\": …, \"endpoints\": […]}}), got {kind}"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::super::ISSUE_EXAMPLE;
    use super::super::*;
    use std::path::Path;

    #[test]
    fn config_text_is_read_strictly() {
        let e =
            Config::parse(r#"{"target": "http://127.0.0.1:1", "target": "http://127.0.0.1:2"}"#)
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("target: the key \"target\" is given twice"),
            "{e}"
        );
        let e = Config::parse("[]").unwrap_err().to_string();
        assert!(e.contains("a config is a JSON object"), "{e}");
        assert!(e.contains("got an array"), "{e}");
        let bom = format!("\u{feff}{ISSUE_EXAMPLE}");
        assert!(
            Config::from_json(&bom).is_ok(),
            "a byte-order mark is skipped"
        );
    }

    #[test]
    fn a_config_file_is_read_up_to_its_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(json::MAX_CONFIG_BYTES + 1).unwrap();
        let e = Config::read(&big).unwrap_err().to_string();
        assert!(e.contains("big.json: larger than 16 MiB"), "{e}");
        let e = Config::read(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/dev/zero: larger than 16 MiB"), "{e}");
    }

    #[test]
    fn autoscale_resolves_per_endpoint_and_false_keeps_it_fixed() {
        let c = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "max_workers": 40,
                "autoscale": {"target_rps": 100, "max_p99": "250ms"},
                "stages": [{"duration": "10s", "target": 8}],
                "endpoints": [{"name": "a", "path": "/a", "autoscale": {"target_rps": 300, "min_workers": 2}},
                              {"name": "b", "path": "/b"},
                              {"name": "c", "path": "/c", "autoscale": false}]}"#,
        )
        .unwrap();
        let a = c.endpoints[0].autoscale().unwrap();
        assert_eq!(
            (a.target_rps, a.min_workers, a.max_workers, a.max_p99_ms),
            (300.0, 2, 40, Some(250.0))
        );
        assert_eq!(c.endpoints[1].autoscale().unwrap().target_rps, 100.0);
        assert!(c.endpoints[2].autoscale().is_none());
        // the resolved form is complete, and resolving it again changes nothing
        let again = Config::from_json(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
        let text = serde_json::to_string(&c.endpoints[1]).unwrap();
        assert!(
            text.contains("\"cooldown\":\"2s\"") && text.contains("\"max_workers\":40"),
            "{text}"
        );
        let e = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "max_workers": 2,
                "stages": [{"duration": "10s", "target": 8}],
                "endpoints": [{"name": "a", "path": "/a", "autoscale": {"target_rps": 1, "min_workers": 2}},
                              {"name": "b", "path": "/b", "autoscale": {"target_rps": 1, "min_workers": 2}}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("max_workers: 2 is below the sum of the endpoints' min_workers (4)"),
            "{e}"
        );
    }

    #[test]
    fn open_model_endpoints_need_no_stages_and_get_vu_defaults() {
        let c = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "duration": "10s",
                "endpoints": [{"name": "a", "path": "/", "rate": 100},
                              {"name": "b", "path": "/", "rate_stages": [{"duration": "30s", "target": 50}], "pre_allocated_vus": 4}]}"#,
        )
        .unwrap();
        assert_eq!(
            c.duration().as_secs(),
            30,
            "the longest of duration and rate_stages"
        );
        assert_eq!(
            (c.endpoints[0].pre_allocated_vus, c.endpoints[0].max_vus),
            (Some(10), Some(10))
        );
        assert_eq!(
            (c.endpoints[1].pre_allocated_vus, c.endpoints[1].max_vus),
            (Some(4), Some(4))
        );
        let e = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "endpoints": [{"name": "a", "path": "/", "rate": 100, "pre_allocated_vus": 20, "max_vus": 5}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("endpoints[0].max_vus: 5 is below pre_allocated_vus 20"),
            "{e}"
        );
        assert!(e.contains("duration: the run has no length"), "{e}");
        let e = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "duration": "5s", "endpoints": [{"name": "a", "path": "/"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("stages: needed by the closed-model endpoint(s) a"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let e = Config::from_json("{\"name\": }").unwrap_err().to_string();
        assert!(e.starts_with("invalid JSON") && e.contains("line 1"), "{e}");
    }
}
