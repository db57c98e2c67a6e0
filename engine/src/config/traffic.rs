//! The config of realistic traffic: data sets, flows and their steps (their
//! templates, checks and captures are compiled by [`super::compile`]).

use super::{
    Config, Endpoint, EndpointAutoscale, Method, Priority, RateStageSpec, default_true,
    default_weight, is_true,
};
use crate::capture::SelectorSpec;
use crate::data::{DataSet, Order};
use crate::duration::Dur;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Most data sets.
pub const MAX_DATA_SETS: usize = 64;
/// Largest `max_capture_body`: a kept body is held per connection.
pub const MAX_CAPTURE_BODY: usize = 64 * 1024 * 1024;

/// `data.NAME`: a file of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// `.csv` (with a header row), `.json` (an array of objects) or
    /// `.ndjson`; relative to the config file. Resolved, it is absolute.
    pub file: String,
    /// `sequential` (default), `random` or `per_vu`.
    #[serde(default)]
    pub order: Order,
    /// Recorded when the config is resolved: the file's rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<usize>,
    /// Recorded when the config is resolved: the file's SHA-256. A config
    /// that carries one (a run's `config.json`) refuses a changed file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The loaded data sets, in the order of `data`'s names.
#[derive(Debug, Clone, Default)]
pub struct DataSets(pub Vec<Arc<DataSet>>);

impl PartialEq for DataSets {
    fn eq(&self, other: &DataSets) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| a.name == b.name && a.sha256 == b.sha256)
    }
}

/// A multi-step flow: a load unit like an endpoint (weight, VUs from the
/// stages or an iteration rate, autoscale), whose VUs run `steps` in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Unique among flows and endpoints; its steps are reported as `FLOW.STEP`.
    pub name: String,
    pub steps: Vec<Step>,
    /// Keep a cookie jar per VU for each iteration (default true).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub cookies: bool,
    #[serde(default = "default_weight")]
    pub weight: f64,
    #[serde(default)]
    pub priority: Priority,
    /// Pause after each iteration (closed model).
    #[serde(default, skip_serializing_if = "Dur::is_zero")]
    pub think_time: Dur,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<EndpointAutoscale>,
    /// Open model: iterations started per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_stages: Vec<RateStageSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_allocated_vus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vus: Option<u32>,
    /// The HTTP version of every step (`"1.1"`, `"2"`, `"auto"`); default:
    /// the top-level `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<super::HttpVersion>,
    /// HTTP/2 streams per connection of the flow's VUs (1–1000); default:
    /// the top-level `streams`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<u32>,
}

/// One request of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique in its flow.
    pub name: String,
    /// The HTTP method; default GET (as an endpoint's; refused beside `grpc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Method")]
    pub method: Option<Method>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Vec<u16>>,
    /// Pause after this step's response.
    #[serde(default, skip_serializing_if = "Dur::is_zero")]
    pub think_time: Dur,
    /// Values to keep for later steps (`{{vars.NAME}}`), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capture: BTreeMap<String, SelectorSpec>,
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub server_timing: bool,
    /// Named assertions on the step's response (as an endpoint's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, crate::capture::CheckSpec>,
    /// A unary gRPC call instead of an HTTP request (as an endpoint's; the
    /// flow must speak HTTP/2, see docs/config.md, "gRPC").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<super::grpc::GrpcSpec>,
}

impl Flow {
    /// The flow's load fields as an endpoint, so a flow is checked and
    /// resolved as a load unit by the same code as an endpoint.
    pub fn as_unit(&self) -> Endpoint {
        Endpoint {
            name: self.name.clone(),
            method: None,
            path: None,
            url: None,
            headers: BTreeMap::new(),
            body: None,
            weight: self.weight,
            think_time: self.think_time,
            expect: None,
            priority: self.priority,
            autoscale: self.autoscale.clone(),
            rate: self.rate,
            rate_stages: self.rate_stages.clone(),
            pre_allocated_vus: self.pre_allocated_vus,
            max_vus: self.max_vus,
            server_timing: true,
            checks: BTreeMap::new(),
            http: self.http,
            streams: self.streams,
            grpc: None,
        }
    }

    /// The names every step captures, in step order, each once.
    pub fn var_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.steps {
            for k in s.capture.keys() {
                if !out.contains(k) {
                    out.push(k.clone());
                }
            }
        }
        out
    }
}

impl Step {
    /// The step's request as an endpoint named `FLOW.STEP` (load fields at
    /// their defaults: the flow has those).
    pub fn as_endpoint(&self, flow: &Flow) -> Endpoint {
        Endpoint {
            name: format!("{}.{}", flow.name, self.name),
            method: self.method,
            path: self.path.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            weight: 1.0,
            think_time: self.think_time,
            expect: self.expect.clone(),
            priority: Priority::default(),
            autoscale: None,
            rate: None,
            rate_stages: Vec::new(),
            pre_allocated_vus: None,
            max_vus: None,
            server_timing: self.server_timing,
            checks: self.checks.clone(),
            // a step's connection is its flow's VU's
            http: flow.http,
            streams: flow.streams,
            grpc: self.grpc.clone(),
        }
    }
}

/// One place in a config that holds a request, a load unit, or both (an
/// endpoint), with its field path.
pub struct Part {
    pub at: String,
    pub ep: Endpoint,
    /// Holds request fields (an endpoint, a step).
    pub request: bool,
    /// Holds load fields (an endpoint, a flow).
    pub unit: bool,
}

impl Config {
    /// Every endpoint, flow and flow step, as checked by validation.
    pub(crate) fn parts(&self) -> Vec<Part> {
        let mut out: Vec<Part> = self
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| Part {
                at: format!("endpoints[{i}]"),
                ep: e.clone(),
                request: true,
                unit: true,
            })
            .collect();
        for (i, f) in self.flows.iter().enumerate() {
            out.push(Part {
                at: format!("flows[{i}]"),
                ep: f.as_unit(),
                request: false,
                unit: true,
            });
            for (j, s) in f.steps.iter().enumerate() {
                let mut ep = s.as_endpoint(f);
                ep.name = s.name.clone();
                out.push(Part {
                    at: format!("flows[{i}].steps[{j}]"),
                    ep,
                    request: true,
                    unit: false,
                });
            }
        }
        out
    }

    /// The load units: endpoints, then flows (as endpoints, see
    /// [`Flow::as_unit`]).
    pub fn units(&self) -> Vec<Endpoint> {
        self.endpoints
            .iter()
            .cloned()
            .chain(self.flows.iter().map(Flow::as_unit))
            .collect()
    }

    /// Every request row the run reports: endpoints, then each flow's
    /// steps as `FLOW.STEP`.
    pub fn rows(&self) -> Vec<Endpoint> {
        self.endpoints
            .iter()
            .cloned()
            .chain(
                self.flows
                    .iter()
                    .flat_map(|f| f.steps.iter().map(|s| s.as_endpoint(f))),
            )
            .collect()
    }

    /// Each row's field path (`endpoints[0]`, `flows[1].steps[2]`) and, for
    /// a step, its flow's and its own index.
    pub fn row_places(&self) -> Vec<(String, Option<(usize, usize)>)> {
        let mut out: Vec<_> = (0..self.endpoints.len())
            .map(|i| (format!("endpoints[{i}]"), None))
            .collect();
        for (i, f) in self.flows.iter().enumerate() {
            for j in 0..f.steps.len() {
                out.push((format!("flows[{i}].steps[{j}]"), Some((i, j))));
            }
        }
        out
    }

    /// The template scope's environment: the process's.
    pub fn env(name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Loads every data set named in `data` (recording each file's absolute
/// path, rows and SHA-256 in the spec); returns the problems.
pub fn load_data(c: &mut Config) -> Vec<String> {
    let mut problems = Vec::new();
    if c.data.len() > MAX_DATA_SETS {
        problems.push(format!(
            "data: at most {MAX_DATA_SETS} data sets, got {}",
            c.data.len()
        ));
        return problems;
    }
    let mut sets = Vec::new();
    for (name, spec) in &mut c.data {
        let at = format!("data.{name}");
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            problems.push(format!(
                "{at}: a data set's name is letters, digits, '_' and '-' (it is used as {{{{data.NAME.COLUMN}}}})"
            ));
            continue;
        }
        let path = PathBuf::from(&spec.file);
        let path = match (&c.base_dir, path.is_absolute()) {
            (_, true) => path,
            (Some(dir), false) => dir.join(path),
            (None, false) => {
                problems.push(format!(
                    "{at}.file: \"{}\" is relative, and this config has no file to be relative to; give an absolute path",
                    spec.file
                ));
                continue;
            }
        };
        let path = normalize(&path);
        match DataSet::load(name, &path, spec.order) {
            Ok(d) => {
                if let Some(want) = &spec.sha256
                    && *want != d.sha256
                {
                    problems.push(format!(
                        "{at}.sha256: {} has changed since this config was resolved (SHA-256 {} now, {want} recorded); remove sha256 to take the file as it is",
                        path.display(),
                        d.sha256
                    ));
                    continue;
                }
                spec.file = path.display().to_string();
                spec.rows = Some(d.rows);
                spec.sha256 = Some(d.sha256.clone());
                sets.push(Arc::new(d));
            }
            Err(e) => problems.push(format!("{at}.file: {e}")),
        }
    }
    c.data_sets = DataSets(sets);
    problems
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(json: &str, dir: &Path) -> Vec<String> {
        let (mut c, _) = Config::parse_migrating(json).unwrap();
        c.base_dir = Some(dir.to_path_buf());
        match c.resolve() {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    #[test]
    fn template_and_flow_errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.csv"), "user,pass\nann,x\nbob,y\n").unwrap();
        std::fs::write(dir.path().join("paths.csv"), "p\n/ok\n/has space\n").unwrap();
        let cfg = r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 1}],
          "data": {"users": {"file": "users.csv"}, "paths": {"file": "paths.csv", "order": "random"}},
          "endpoints": [
            {"name": "e", "path": "/u/{{data.users.nme}}", "headers": {"x-id": "{{rand_int(3,1)}}"}},
            {"name": "f", "path": "/x{{data.paths.p}}", "body": "{{vars.token}}"}],
          "flows": [{"name": "shop", "steps": [
            {"name": "login", "method": "POST", "path": "/login", "capture": {"token": {"json": "token"}}},
            {"name": "buy", "path": "/buy", "headers": {"authorization": "Bearer {{vars.tokn}}"},
             "capture": {"bad name": {"header": "x"}, "r": {"regex": "nogroup"}}},
            {"name": "buy", "path": "/again"}]}]}"#;
        let p = problems_of(cfg, dir.path()).join("\n");
        for want in [
            "endpoints[0].path: data set \"users\"",
            "has no column \"nme\"",
            "endpoints[0].headers.x-id: rand_int(3,1): the first must not exceed the second",
            "paths.csv:3: column \"p\" has a space or control character, and it is used in a path",
            "endpoints[1].body: \"vars.token\" outside a flow",
            "flows[0].steps[0].capture.token: json: \"token\" is not a JSON Pointer",
            "flows[0].steps[1].headers.authorization: unknown variable \"vars.tokn\" (captured before this step: token)",
            "flows[0].steps[1].capture.bad name: a capture's name",
            "flows[0].steps[1].capture.r: regex: \"nogroup\" has no group",
            "flows[0].steps[2].name: \"buy\" is used by an earlier step of this flow",
        ] {
            assert!(p.contains(want), "missing {want:?} in:\n{p}");
        }
    }

    #[test]
    fn data_files_resolve_relative_to_the_config_and_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("u.csv"), "id\n1\n2\n3\n").unwrap();
        let cfg = r#"{"target": "http://127.0.0.1:1", "duration": "1s",
          "data": {"u": {"file": "./u.csv", "order": "per_vu"}},
          "endpoints": [{"name": "e", "path": "/u/{{data.u.id}}", "rate": 1}]}"#;
        let (mut c, _) = Config::parse_migrating(cfg).unwrap();
        c.base_dir = Some(dir.path().to_path_buf());
        let r = c.resolve().unwrap();
        let spec = &r.data["u"];
        assert_eq!(spec.file, dir.path().join("u.csv").display().to_string());
        assert_eq!(spec.rows, Some(3));
        assert_eq!(spec.sha256.as_deref().map(str::len), Some(64));
        // the resolved config runs again as it is; a changed file is refused
        let text = serde_json::to_string(&r).unwrap();
        assert!(Config::from_json(&text).is_ok());
        std::fs::write(dir.path().join("u.csv"), "id\n9\n").unwrap();
        let e = Config::from_json(&text).unwrap_err().to_string();
        assert!(
            e.contains("data.u.sha256:") && e.contains("has changed"),
            "{e}"
        );
        // without a config file, a relative path has nothing to be relative to
        let e = Config::from_json(cfg).unwrap_err().to_string();
        assert!(e.contains("data.u.file: \"./u.csv\" is relative"), "{e}");
        // a missing file names itself
        let missing = cfg.replace("./u.csv", "/nonexistent/u.csv");
        let e = Config::from_json(&missing).unwrap_err().to_string();
        assert!(e.contains("data.u.file: /nonexistent/u.csv:"), "{e}");
        assert!(!e.contains("unknown data set"), "one error, not two: {e}");
    }
}
