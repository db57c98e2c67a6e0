//! The compile walk: every `{{ }}` template, check, capture (its selector
//! and its scope: which values the steps before it captured), data binding
//! and threshold of a config, compiled once, each problem with its field
//! path.
//!
//! Validation ([`Config::resolve`]) runs the walk and reports its problems;
//! a resolved config keeps what it built ([`Kept`]) and the plan takes it
//! from there (`plan::build`), so nothing is compiled twice and nothing
//! the plan runs was compiled without its problems being reported (issue
//! 26: the plan compiled everything a second time and dropped what failed
//! with `.ok()?`, trusting validation to have refused it).

use super::Endpoint;
use super::{Config, Problem};
use crate::capture::{Check, Selector};
use crate::template::{Expr, Scope, Template, unsafe_in_body, unsafe_in_header, unsafe_in_path};
use crate::thresholds::{Known, Metric, Threshold};
use crate::url::HttpUrl;
use std::sync::Arc;

/// What one request row (an endpoint, or a flow step; in the order of
/// [`Config::rows`]) compiles to.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// The whole request target's template: the path as written joined to
    /// the target's path ([`crate::url::HttpUrl::join`]; the quick form's
    /// URL is all target, and may hold templates too). `None` for a row
    /// given by `url` (never templated).
    pub path: Option<Template>,
    pub headers: Vec<(String, Template)>,
    pub body: Option<Template>,
    /// Named checks, in name order.
    pub checks: Vec<(String, Check)>,
    /// A flow step's captures: (value number in its flow's `vars`, selector).
    pub captures: Vec<(usize, Selector)>,
    /// A unit's gRPC call (its `grpc`), compiled from its `.proto` files.
    pub grpc: Option<super::grpc::GrpcRow>,
}

/// A config's compiled form.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    pub rows: Vec<Row>,
    /// Per flow, the names its steps capture, each once, in step order
    /// (index = value number).
    pub flow_vars: Vec<Vec<String>>,
    pub thresholds: Vec<Threshold>,
    /// The target the paths were joined to, so the plan can tell a config
    /// whose target changed since.
    pub target: Option<String>,
}

/// The walk's problems, `path: why` lines, kept apart by where validation
/// reports them, so the order of a config's problems is what it was.
#[derive(Debug, Default)]
pub struct Problems {
    /// `thresholds.KEY[i]: …`.
    pub thresholds: Vec<Problem>,
    /// Templates, flows, steps and captures.
    pub traffic: Vec<Problem>,
    /// Per request row, the checks that do not compile: (name, why).
    pub checks: Vec<Vec<(String, String)>>,
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.thresholds.is_empty()
            && self.traffic.is_empty()
            && self.checks.iter().all(Vec::is_empty)
    }

    /// Every problem as a `path: why` line (for a config compiled outside
    /// validation): templates, flows and captures, checks, thresholds.
    pub fn lines(self, c: &Config) -> Vec<String> {
        let mut out: Vec<String> = self.traffic.iter().map(Problem::to_string).collect();
        for (bad, (at, _)) in self.checks.into_iter().zip(c.row_places()) {
            out.extend(
                bad.into_iter()
                    .map(|(name, why)| format!("{at}.checks.{name}: {why}")),
            );
        }
        out.extend(self.thresholds.iter().map(Problem::to_string));
        out
    }
}

/// A resolved config's compiled form, kept for the plan. Not part of what
/// the config says: serde skips it, and two configs compare equal whatever
/// they keep. A field changed after [`Config::resolve`] that the walk reads
/// (a request's path, headers, body, checks, captures; the thresholds)
/// needs resolving again; the target and `url`s may change (the plan
/// joins the path to the target then).
#[derive(Debug, Clone, Default)]
pub struct Kept(pub Option<Arc<Compiled>>);

impl PartialEq for Kept {
    fn eq(&self, _: &Kept) -> bool {
        true
    }
}

impl Config {
    /// Every threshold, parsed; errors name `thresholds.KEY[i]`.
    pub fn parsed_thresholds(&self) -> Result<Vec<Threshold>, Vec<String>> {
        match thresholds(self) {
            (out, errors) if errors.is_empty() => Ok(out),
            (_, errors) => Err(errors.iter().map(Problem::to_string).collect()),
        }
    }
}

/// Compiles every request row, flow and threshold of `c` (its data sets
/// loaded: templates name their columns).
pub fn compile(c: &Config) -> (Compiled, Problems) {
    let mut problems = Problems::default();
    let mut rows = Vec::new();
    // (a bad target is validation's to report)
    let target = c.target.as_deref().and_then(|t| HttpUrl::parse(t).ok());
    let target = target.as_ref();
    let out = &mut problems.traffic;
    for (i, ep) in c.endpoints.iter().enumerate() {
        let at = format!("endpoints[{i}]");
        let (row, bad_checks) = request(c, &at, ep, target, None, out);
        rows.push(row);
        problems.checks.push(bad_checks);
    }
    let mut units: Vec<&str> = c.endpoints.iter().map(|e| e.name.as_str()).collect();
    let mut names: Vec<String> = c.endpoints.iter().map(|e| e.name.clone()).collect();
    let mut flow_vars = Vec::with_capacity(c.flows.len());
    for (i, f) in c.flows.iter().enumerate() {
        let at = format!("flows[{i}]");
        if units.contains(&f.name.as_str()) {
            out.push(Problem::new(
                format!("{at}.name"),
                format!("\"{}\" is used by an endpoint or an earlier flow", f.name),
            ));
        }
        units.push(&f.name);
        if !super::valid_name(&f.name) {
            out.push(Problem::new(
                format!("{at}.name"),
                format!(
                    "\"{}\" must be 1-{} printable characters, without control characters or surrounding spaces",
                    f.name,
                    super::MAX_ENDPOINT_NAME
                ),
            ));
        }
        if f.steps.is_empty() {
            out.push(Problem::new(
                format!("{at}.steps"),
                "a flow needs at least one step",
            ));
        }
        let all = f.var_names();
        // The capture scope: what the steps before this one captured.
        let mut before: Vec<String> = Vec::new();
        for (j, s) in f.steps.iter().enumerate() {
            let sat = format!("{at}.steps[{j}]");
            let joined = format!("{}.{}", f.name, s.name);
            if f.steps[..j].iter().any(|o| o.name == s.name) {
                out.push(Problem::new(
                    format!("{sat}.name"),
                    format!("\"{}\" is used by an earlier step of this flow", s.name),
                ));
            } else if names.contains(&joined) {
                out.push(Problem::new(
                    format!("{sat}.name"),
                    format!("the step's row \"{joined}\" is also an endpoint's name"),
                ));
            }
            names.push(joined);
            let (mut row, bad_checks) = request(
                c,
                &sat,
                &s.as_endpoint(f),
                target,
                Some((&before, &all)),
                out,
            );
            // a VU's connection carries every step of its flow
            if s.grpc.is_some() && c.http_of(&f.as_unit()) != super::HttpVersion::Http2 {
                out.push(Problem::new(
                    format!("{sat}.grpc"),
                    "a gRPC step runs over HTTP/2, and a flow's steps share their VU's connection: give the flow (or the top level) \"http\": \"2\"",
                ));
            }
            for (name, sel) in &s.capture {
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    out.push(Problem::new(
                        format!("{sat}.capture.{name}"),
                        "a capture's name is letters, digits, '_' and '-' (it is used as {{vars.NAME}})",
                    ));
                }
                match Selector::compile(sel) {
                    Ok(sel) => {
                        // `all` holds every name a step captures
                        let n = all.iter().position(|v| v == name).unwrap_or_default();
                        row.captures.push((n, sel));
                    }
                    Err(e) => out.push(Problem::new(format!("{sat}.capture.{name}"), e)),
                }
            }
            rows.push(row);
            problems.checks.push(bad_checks);
            // a value captured again later replaces the earlier one
            for k in s.capture.keys() {
                if !before.contains(k) {
                    before.push(k.clone());
                }
            }
        }
        flow_vars.push(all);
    }
    let (thresholds, bad) = thresholds(c);
    problems.thresholds = bad;
    let compiled = Compiled {
        rows,
        flow_vars,
        thresholds,
        target: c.target.clone(),
    };
    (compiled, problems)
}

/// Compiles a request's templates and checks (an endpoint or a step at
/// `at`, its path joined to `target`); `vars` is the flow's capture scope
/// for a step. Template problems go to `out`; the checks that do not
/// compile are returned.
fn request(
    c: &Config,
    at: &str,
    ep: &Endpoint,
    target: Option<&HttpUrl>,
    vars: Option<(&[String], &[String])>,
    out: &mut Vec<Problem>,
) -> (Row, Vec<(String, String)>) {
    let env = Config::env;
    let scope = Scope {
        data: &c.data_sets.0,
        vars,
        env: &env,
    };
    // A set named in `data` that failed to load was reported already.
    let loaded_later = |e: &str| {
        c.data
            .keys()
            .any(|k| e.starts_with(&format!("unknown data set \"{k}\"")))
    };
    let parse =
        |out: &mut Vec<Problem>, field: String, text: &str, bad: fn(u8) -> bool, what: &str| {
            match Template::parse(text, &scope) {
                Ok(t) => {
                    for e in t.exprs() {
                        if let Expr::Data { set, col } = *e
                            && let Err(why) = c.data_sets.0[set].check_column(col, bad, what)
                        {
                            out.push(Problem::new(field.clone(), why));
                        }
                    }
                    Some(t)
                }
                Err(e) if loaded_later(&e) => None,
                Err(e) => {
                    out.push(Problem::new(field, e));
                    None
                }
            }
        };
    // The path joined to the target's, as `HttpUrl::join` joins them: a
    // target path without templates is put before the compiled path as
    // literal text (most configs: no string built, the path parsed as
    // written); one with templates is compiled with it.
    let (base, text): (&str, std::borrow::Cow<'_, str>) = match (target, ep.path.as_deref()) {
        (_, None) => ("", "".into()),
        (Some(t), Some("")) => ("", t.path.as_str().into()),
        (Some(t), Some(p)) if Template::is_templated(t.base()) => ("", t.join(p).into()),
        (Some(t), Some(p)) => (t.base(), p.into()),
        (None, Some(p)) => ("", p.into()),
    };
    let path = ep.path.as_ref().and_then(|_| {
        let t = parse(
            out,
            format!("{at}.path"),
            &text,
            unsafe_in_path,
            "has a space or control character, and it is used in a path",
        )?;
        for part in &t.parts {
            if let crate::template::Part::Lit(b) = part
                && b.iter().any(|&b| unsafe_in_path(b))
            {
                out.push(Problem::new(
                    format!("{at}.path"),
                    "contains spaces or control characters",
                ));
            }
        }
        if base.is_empty() {
            return Some(t);
        }
        let mut full = Template::literal(base.as_bytes());
        full.append(t);
        Some(full)
    });
    if let Some(u) = &ep.url
        && Template::is_templated(u)
    {
        out.push(Problem::new(
            format!("{at}.url"),
            "templates go in a path (give target and path), not in url",
        ));
    }
    let headers = ep
        .headers
        .iter()
        .filter_map(|(k, v)| {
            let t = parse(
                out,
                format!("{at}.headers.{k}"),
                v,
                unsafe_in_header,
                "has a CR, LF or NUL, and it is used in a header",
            )?;
            Some((k.clone(), t))
        })
        .collect();
    let body = ep
        .body
        .as_deref()
        .and_then(|b| parse(out, format!("{at}.body"), b, unsafe_in_body, ""));
    let mut checks = Vec::with_capacity(ep.checks.len());
    let mut bad_checks = Vec::new();
    for (name, spec) in &ep.checks {
        match Check::compile(spec) {
            Ok(Check::GrpcStatus(_)) if ep.grpc.is_none() => bad_checks.push((
                name.clone(),
                "grpc_status: this unit makes no gRPC call (give it grpc, or check status)".into(),
            )),
            Ok(check) => checks.push((name.clone(), check)),
            Err(e) => bad_checks.push((name.clone(), e)),
        }
    }
    let grpc = ep.grpc.as_ref().and_then(|g| {
        super::grpc::conflicts(at, ep, out);
        super::grpc::compile(c, at, g, &scope, out)
    });
    let row = Row {
        path,
        headers,
        body,
        checks,
        captures: Vec::new(),
        grpc,
    };
    (row, bad_checks)
}

/// Every threshold, parsed, and the problems of those that do not parse
/// (`thresholds.KEY[i]: …`).
pub fn thresholds(c: &Config) -> (Vec<Threshold>, Vec<Problem>) {
    let rows = c.rows();
    let names: Vec<&str> = rows.iter().map(|e| e.name.as_str()).collect();
    let flows: Vec<&str> = c.flows.iter().map(|f| f.name.as_str()).collect();
    let checks: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.checks.keys().map(String::as_str))
        .collect();
    let mut methods: Vec<&str> = rows
        .iter()
        .map(|r| match &r.grpc {
            Some(g) => g.method.as_str(),
            None => r.method.as_str(),
        })
        .collect();
    methods.sort_unstable();
    methods.dedup();
    let known = Known {
        endpoints: &names,
        flows: &flows,
        checks: &checks,
        methods: &methods,
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (key, specs) in &c.thresholds {
        // Without a check anywhere a checks threshold would judge
        // nothing and pass (issue #27).
        if checks.is_empty()
            && let Ok((Metric::Checks, _)) = Threshold::parse_key(key, &known)
        {
            errors.push(Problem::new(
                format!("thresholds.{key}"),
                "this config has no checks, so a checks threshold would judge nothing; give an endpoint or a step `checks` (see Checks), or remove it",
            ));
            continue;
        }
        // Likewise a gRPC latency threshold, or one on gRPC statuses,
        // without a gRPC endpoint.
        let grpc_only = key.trim_start().starts_with("grpc_req_duration")
            || Threshold::parse_key(key, &known).is_ok_and(|(_, f)| f.grpc_status.is_some());
        if grpc_only && rows.iter().all(|r| r.grpc.is_none()) {
            errors.push(Problem::new(
                format!("thresholds.{key}"),
                "this config has no gRPC endpoint (an endpoint with `grpc`), so this threshold would judge nothing",
            ));
            continue;
        }
        // ... and one that names an endpoint making no gRPC call
        if let Ok((_, f)) = Threshold::parse_key(key, &known)
            && f.grpc
            && let Some(name) = &f.endpoint
            && rows.iter().any(|r| &r.name == name && r.grpc.is_none())
        {
            errors.push(Problem::new(
                format!("thresholds.{key}"),
                format!(
                    "endpoint \"{name}\" makes no gRPC call, so this threshold would judge nothing"
                ),
            ));
            continue;
        }
        // An empty list is k6's way to report a metric without judging
        // it: the key must still make sense.
        if specs.is_empty()
            && let Err(e) = Threshold::parse_key(key, &known)
        {
            errors.push(Problem::new(format!("thresholds.{key}"), e));
        }
        for (i, spec) in specs.iter().enumerate() {
            match Threshold::parse(key, spec, &known) {
                Ok(t) => out.push(t),
                Err(e) => errors.push(Problem::new(format!("thresholds.{key}[{i}]"), e)),
            }
        }
    }
    (out, errors)
}
