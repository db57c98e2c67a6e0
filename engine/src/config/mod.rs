//! The run configuration: what a user writes, validated, with defaults filled.
//!
//! - [`model`]: the types a user writes, and what follows from them alone;
//!   [`traffic`] (data sets, flows, steps), [`autoscale`], [`search`] are
//!   their parts; [`quick`] builds one from the command line's flags.
//! - [`read`]: a file or text to a config ([`json`]: strict text), older
//!   forms converted ([`migrate`]: one room per form), and resolution
//!   (defaults filled).
//! - [`validate`]: every problem with its field path; [`limits`]: the
//!   bounds; [`compile`]: templates, checks, captures and thresholds,
//!   compiled once for validation and the plan; [`protocol`]: `http` and
//!   `streams`, checked together; [`grpc`]: a unit's gRPC call, compiled
//!   from its `.proto` files.
//!
//! The config describes what the user wrote; `crate::plan` (what the
//! workers run) is built from it, and nothing here depends on the plan.
//!
//! Parsing is two steps so that every error names where it is: JSON syntax
//! errors carry a line and column, and everything after that (unknown
//! fields, wrong types, bad values) carries the field path, such as
//! `endpoints[1].method: unknown method "GTE"`. A field the engine does not
//! implement is an unknown field and is rejected, never ignored.
//!
//! [`Config::load`] returns the *resolved* config (defaults filled, threads
//! decided), which is what a run writes to `config.json`.

pub mod autoscale;
pub mod compile;
pub mod grpc;
pub mod json;
pub mod limits;
pub mod migrate;
pub mod model;
pub mod protocol;
pub mod quick;
pub mod read;
pub mod search;
pub mod traffic;
pub mod validate;

pub use autoscale::{Autoscale, AutoscaleSpec, EndpointAutoscale};
pub use model::*;
pub use protocol::HttpVersion;
pub use traffic::{DataSpec, Flow, Step};
pub(crate) use validate::valid_name;
pub use validate::{MAX_ENDPOINT_NAME, header_problem};

use std::fmt;
use std::path::Path;

pub use limits::{MAX_THREADS, MAX_VUS};

/// One thing wrong with a config: where (its field path, such as
/// `endpoints[1].method`) and why. Shown as `path: why`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: String,
    pub why: String,
}

impl Problem {
    pub fn new(at: impl Into<String>, why: impl Into<String>) -> Problem {
        Problem {
            at: at.into(),
            why: why.into(),
        }
    }

    /// A `path: why` line from a check that still writes lines (limits,
    /// autoscale, search, TLS, data sets); a line without a path is all why.
    pub fn from_line(line: String) -> Problem {
        match line.split_once(": ") {
            Some((at, why)) => Problem::new(at, why),
            None => Problem::new("", line),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            f.write_str(&self.why)
        } else {
            write!(f, "{}: {}", self.at, self.why)
        }
    }
}

/// Everything wrong with a config, one `path: reason` line per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    fn one(p: impl Into<String>) -> ConfigError {
        ConfigError {
            problems: vec![p.into()],
        }
    }
}

impl ConfigError {
    /// Prefixes every problem with the file it is in.
    pub fn in_file(mut self, path: &Path) -> ConfigError {
        for p in &mut self.problems {
            *p = format!("{}: {p}", path.display());
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("\n"))
    }
}

#[cfg(test)]
const ISSUE_EXAMPLE: &str = r#"{"name": "demo", "target": "http://127.0.0.1:8080", "threads": 2,
 "stages": [{"duration": "5s", "target": 32}, {"duration": "20s", "target": 32}],
 "endpoints": [
   {"name": "users", "method": "GET", "path": "/api/users", "weight": 2},
   {"name": "orders", "method": "POST", "path": "/api/orders", "headers": {"content-type": "application/json"}, "body": "{\"item\":42}", "weight": 1}],
 "timeouts": {"connect": "2s", "request": "5s"}}"#;
