//! `userfluxctl import`: a browser recording (HAR) or a Postman collection
//! turned into an ordinary Userflux config, printed on stdout, with a
//! report on stderr of everything left out and why.
//!
//! Teams already have their scenarios as recordings and collections; k6
//! (har-to-k6), Gatling and JMeter import them, and retyping a session by
//! hand loses the headers and ids that make it work (issue #34).
//!
//! The config runs, as written, one iteration of each flow with one VU (as
//! a k6 script with default options does): each flow is open-model at one
//! iteration per second for one second, with one connection, and
//! `graceful_stop` long enough for its steps and think times. The user then
//! swaps that for `stages` or a `rate` (see docs/import.md).
//!
//! # Layout
//!
//! - `har.rs`: HAR 1.2 → flows (pages, assets, think times).
//! - `headers.rs`: which recorded request headers are kept, and why the
//!   others are dropped.
//! - `captures.rs`: values an earlier response returned, used by a later
//!   request → captures and `{{vars.NAME}}`; token-like values that match
//!   nothing are listed.
//! - `postman.rs`: Postman collection v2.1 → flows (folders), steps
//!   (requests), variables.
//! - `mod.rs` (here): reading the input, the report, names, the config.

mod captures;
mod har;
mod headers;
mod postman;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

pub use har::HarOptions;
pub use postman::PostmanOptions;

/// Largest input read: a HAR with response bodies of a long session runs to
/// tens of MiB; past this it is almost surely not one session.
pub const MAX_INPUT: u64 = 256 * 1024 * 1024;

/// Why an input cannot be imported: names the file and what is wrong.
#[derive(Debug)]
pub struct ImportError {
    pub file: PathBuf,
    pub what: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.what)
    }
}

impl ImportError {
    pub fn new(file: &Path, what: impl Into<String>) -> ImportError {
        ImportError {
            file: file.to_path_buf(),
            what: what.into(),
        }
    }
}

/// Reads a JSON input file: a regular file of at most [`MAX_INPUT`] bytes,
/// UTF-8 (a byte-order mark skipped), one JSON document.
pub fn read_json(file: &Path) -> Result<Value, ImportError> {
    let meta = std::fs::metadata(file).map_err(|e| ImportError::new(file, e.to_string()))?;
    if !meta.is_file() {
        return Err(ImportError::new(
            file,
            "not a regular file (a directory, FIFO or device)",
        ));
    }
    if meta.len() > MAX_INPUT {
        return Err(ImportError::new(
            file,
            format!(
                "{} bytes, over the {} MiB an import reads",
                meta.len(),
                MAX_INPUT >> 20
            ),
        ));
    }
    let bytes = std::fs::read(file).map_err(|e| ImportError::new(file, e.to_string()))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| ImportError::new(file, format!("not UTF-8 text ({e})")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str(text).map_err(|e| ImportError::new(file, format!("not JSON: {e}")))
}

/// What was left out or changed, by reason, printed on stderr.
#[derive(Debug, Default)]
pub struct Report {
    lines: Vec<String>,
    /// Dropped header names by reason (printed once per reason).
    headers: BTreeMap<&'static str, BTreeSet<String>>,
}

impl Report {
    pub fn note(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    pub fn dropped_header(&mut self, reason: &'static str, name: &str) {
        self.headers
            .entry(reason)
            .or_default()
            .insert(name.to_ascii_lowercase());
    }

    /// The report as lines, headers first.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .headers
            .iter()
            .map(|(why, names)| {
                format!(
                    "dropped headers ({why}): {}",
                    names.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        out.extend(self.lines.iter().cloned());
        out
    }
}

/// One request of a flow, as the config will hold it.
#[derive(Debug, Clone, Default)]
pub struct StepOut {
    pub name: String,
    pub method: String,
    /// Path and query (with `target`), or a full URL in `url`.
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub think_ms: u64,
    pub capture: BTreeMap<String, Value>,
    pub expect: Option<Vec<u16>>,
}

#[derive(Debug, Clone, Default)]
pub struct FlowOut {
    pub name: String,
    pub steps: Vec<StepOut>,
}

/// A name the engine accepts and a threshold tag can hold: printable, no
/// `,` or `}` (tag syntax), no surrounding spaces, at most `max`
/// characters of `max`, unique among `taken` (a ` #2` suffix otherwise).
/// A step is reported as `FLOW.STEP`, so flows get 40 and steps 80 of the
/// engine's 128.
pub fn unique_name(raw: &str, taken: &mut BTreeSet<String>, max: usize) -> String {
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_control() || c == ',' || c == '}' || c == '{' || c == '"' {
                '_'
            } else {
                c
            }
        })
        .take(max)
        .collect();
    let clean = clean.trim();
    let base = if clean.is_empty() { "step" } else { clean };
    let mut name = base.to_string();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base} #{n}");
        n += 1;
    }
    name
}

/// Most `graceful_stop` the engine takes (its bound).
const MAX_GRACE_MS: u64 = 3_600_000;
/// Time allowed per step on top of its think time: the default request
/// timeout (30 s), so a slow step is not cut off by the stop.
const GRACE_PER_STEP_MS: u64 = 30_000;

/// The config: `flows` each run once by one VU (see the module doc).
pub fn config(name: &str, target: &str, flows: &[FlowOut]) -> Value {
    let longest = flows
        .iter()
        .map(|f| {
            f.steps
                .iter()
                .map(|s| s.think_ms + GRACE_PER_STEP_MS)
                .sum::<u64>()
        })
        .max()
        .unwrap_or(0)
        .min(MAX_GRACE_MS);
    let flows: Vec<Value> = flows
        .iter()
        .map(|f| {
            let steps: Vec<Value> = f.steps.iter().map(step_json).collect();
            json!({"name": f.name, "rate": 1, "pre_allocated_vus": 1, "max_vus": 1,
                   "steps": steps})
        })
        .collect();
    json!({
        "name": name,
        "target": target,
        "duration": "1s",
        "graceful_stop": format!("{}s", longest.div_ceil(1000).max(5)),
        "flows": flows,
    })
}

fn step_json(s: &StepOut) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("name".into(), json!(s.name));
    o.insert("method".into(), json!(s.method));
    if s.path.starts_with('/') {
        o.insert("path".into(), json!(s.path));
    } else {
        o.insert("url".into(), json!(s.path));
    }
    if !s.headers.is_empty() {
        o.insert("headers".into(), json!(s.headers));
    }
    if let Some(b) = &s.body {
        o.insert("body".into(), json!(b));
    }
    if let Some(e) = &s.expect {
        o.insert("expect".into(), json!(e));
    }
    if s.think_ms > 0 {
        o.insert("think_time".into(), json!(format!("{}ms", s.think_ms)));
    }
    if !s.capture.is_empty() {
        o.insert("capture".into(), json!(s.capture));
    }
    Value::Object(o)
}

/// The origin (`scheme://host[:port]`) of an absolute http(s) URL and the
/// rest (path and query, `/` at least); `None` for anything else.
pub fn split_url(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    if host.is_empty() {
        return None;
    }
    let mut path = rest[end..].split('#').next().unwrap_or("").to_string();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Some((format!("{scheme}://{}", host.to_ascii_lowercase()), path))
}

/// Text the engine would read as a template (`{{`) where none was meant:
/// reported, since the engine has no escape for it.
pub fn has_braces(s: &str) -> bool {
    s.contains("{{")
}

/// Prints the config on stdout and the report on stderr; checks that the
/// config validates (a failure is a bug of the import, said plainly).
pub fn emit(config: &Value, report: &Report) -> Result<(), String> {
    let text = serde_json::to_string_pretty(config).map_err(|e| e.to_string())?;
    for line in report.lines() {
        eprintln!("import: {line}");
    }
    if let Err(e) = userflux_engine::config::Config::from_value(config.clone())
        .and_then(userflux_engine::config::Config::resolve)
    {
        eprintln!("import: the config does not validate as written; edit it before a run:");
        for p in e.problems {
            eprintln!("import:   {p}");
        }
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(())
}

/// `userfluxctl import …`.
#[derive(clap::Subcommand)]
pub enum ImportCmd {
    /// A browser recording (HAR 1.2) as a config: one flow per page, the
    /// headers that matter, think times, captures (see docs/import.md).
    Har {
        /// The HAR file (a browser's "Save all as HAR with content").
        file: PathBuf,
        /// Base URL that replaces the recorded origin.
        #[arg(long)]
        target: Option<String>,
        /// Keep static assets (scripts, styles, images, fonts).
        #[arg(long)]
        include_assets: bool,
        /// One flow for the whole recording instead of one per page.
        #[arg(long)]
        one_flow: bool,
    },
    /// A Postman collection (v2.1 or v2.0) as a config: one flow per
    /// top-level folder, one step per request (see docs/import.md).
    Postman {
        /// The collection file (Postman: Export → Collection v2.1).
        file: PathBuf,
        /// A Postman environment file whose values fill `{{variables}}`.
        #[arg(long)]
        environment: Option<PathBuf>,
        /// Base URL that replaces the collection's origin.
        #[arg(long)]
        target: Option<String>,
    },
}

/// Runs an import: the config on stdout, the report on stderr; an error
/// names the file and what is wrong (the caller exits 2).
pub fn run(cmd: &ImportCmd) -> Result<(), String> {
    let (config, report) = match cmd {
        ImportCmd::Har {
            file,
            target,
            include_assets,
            one_flow,
        } => har::import(
            file,
            &HarOptions {
                target: target.clone(),
                include_assets: *include_assets,
                one_flow: *one_flow,
            },
        ),
        ImportCmd::Postman {
            file,
            environment,
            target,
        } => postman::import(
            file,
            &PostmanOptions {
                environment: environment.clone(),
                target: target.clone(),
            },
        ),
    }
    .map_err(|e| e.to_string())?;
    emit(&config, &report)
}
