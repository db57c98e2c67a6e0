//! Postman collection v2.1 (and v2.0) → flows: each top-level folder is a
//! flow of its requests (nested folders in order), requests outside any
//! folder make one flow named after the collection.
//!
//! Variables: `{{name}}` takes the environment file's value, else the
//! collection's (Postman's precedence), written into the config as text;
//! one a test script sets from the response (`pm.environment.set("t",
//! pm.response.json().token)`, `jsonData.a.b`, `pm.response.headers.get`)
//! becomes a capture of that step and `{{vars.t}}` after it; one defined
//! nowhere becomes `{{env.NAME}}` (read from the shell when the run
//! starts). Postman's `{{$timestamp}}`, `{{$isoTimestamp}}`, `{{$guid}}`,
//! `{{$randomInt}}` stay: the engine takes them as aliases. Scripts are
//! not run: each one is listed as not carried over.

use super::{FlowOut, ImportError, Report, StepOut, split_url, unique_name};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `import postman`'s flags.
#[derive(Debug, Clone, Default)]
pub struct PostmanOptions {
    pub environment: Option<std::path::PathBuf>,
    /// Replaces the collection's origin.
    pub target: Option<String>,
}

/// Postman's dynamic variables the engine takes as they are.
const DYNAMIC: &[&str] = &["$timestamp", "$isoTimestamp", "$guid", "$randomInt"];

/// Deepest `{{a}}` → `{{b}}` → … chain followed.
const MAX_NESTING: usize = 10;

/// A request of the collection, flattened.
struct Req<'a> {
    name: String,
    item: &'a Value,
    /// The folders' and the collection's auth, innermost first.
    auth: Option<&'a Value>,
}

pub fn import(file: &Path, opts: &PostmanOptions) -> Result<(Value, Report), ImportError> {
    let root = super::read_json(file)?;
    let err = |what: &str| ImportError::new(file, what);
    let info = root.get("info").filter(|i| i.is_object()).ok_or_else(|| {
        if root.get("requests").is_some() {
            err("a Postman collection v1: export it again as v2.1 (Postman: Export → Collection v2.1)")
        } else {
            err("not a Postman collection: no \"info\" object (a v2.1 collection is {\"info\": {...}, \"item\": [...]})")
        }
    })?;
    let schema = info.get("schema").and_then(Value::as_str).unwrap_or("");
    if !schema.is_empty() && !schema.contains("v2.1") && !schema.contains("v2.0") {
        return Err(err(&format!(
            "info.schema {schema}: not a collection v2.0 or v2.1"
        )));
    }
    let items = root
        .get("item")
        .and_then(Value::as_array)
        .ok_or_else(|| err("not a Postman collection: \"item\" is missing or not an array"))?;
    let cname = info
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("collection")
        .to_string();
    let mut report = Report::default();

    // Variables: the collection's, then the environment's over them.
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for v in root
        .get("variable")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(k), Some(val)) = (v.get("key").and_then(Value::as_str), v.get("value"))
            && v.get("disabled").and_then(Value::as_bool) != Some(true)
        {
            vars.insert(k.to_string(), scalar(val));
        }
    }
    if let Some(env) = &opts.environment {
        let e = super::read_json(env)?;
        let values = e.get("values").and_then(Value::as_array).ok_or_else(|| {
            ImportError::new(
                env,
                "not a Postman environment: \"values\" is missing or not an array",
            )
        })?;
        for v in values {
            if let (Some(k), Some(val)) = (v.get("key").and_then(Value::as_str), v.get("value"))
                && v.get("enabled").and_then(Value::as_bool) != Some(false)
            {
                vars.insert(k.to_string(), scalar(val));
            }
        }
    }
    if !vars.is_empty() {
        report.note(format!(
            "variables written into the config as their values: {}",
            vars.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    for ev in events(&root) {
        report.note(format!(
            "the collection's {ev} script is not carried over (scripts do not run)"
        ));
    }

    // Flows: one per top-level folder, one for loose requests.
    let coll_auth = root.get("auth");
    let mut groups: Vec<(String, Vec<Req>)> = Vec::new();
    let mut loose = Vec::new();
    for it in items {
        if it.get("item").is_some() {
            let mut reqs = Vec::new();
            flatten(it, coll_auth, &mut reqs);
            groups.push((s(it, "name").unwrap_or("folder").to_string(), reqs));
        } else {
            loose.push(Req {
                name: s(it, "name").unwrap_or("request").to_string(),
                item: it,
                auth: coll_auth,
            });
        }
    }
    if !loose.is_empty() {
        groups.insert(0, (cname.clone(), loose));
    }

    // The target: --target, else the origin most requests name.
    let mut origins: Vec<(String, usize)> = Vec::new();
    for (_, reqs) in &groups {
        for r in reqs {
            let url = resolve(&raw_url(r.item), &vars, &BTreeSet::new());
            if let Some((o, _)) = split_url(&url) {
                match origins.iter_mut().find(|(x, _)| *x == o) {
                    Some(c) => c.1 += 1,
                    None => origins.push((o, 1)),
                }
            }
        }
    }
    let main_origin = origins
        .iter()
        .fold(None::<&(String, usize)>, |b, c| match b {
            Some(b) if b.1 >= c.1 => Some(b),
            _ => Some(c),
        })
        .map(|c| c.0.clone());
    let target = match (&opts.target, &main_origin) {
        (Some(t), _) => {
            let t = t.trim_end_matches('/').to_string();
            if split_url(&t).is_none() {
                return Err(err(&format!(
                    "--target {t}: not an http:// or https:// URL"
                )));
            }
            t
        }
        (None, Some(o)) => o.clone(),
        (None, None) => {
            return Err(err(
                "no request has an absolute http(s) URL (a variable such as {{baseUrl}} with no value?): give --environment or --target",
            ));
        }
    };

    let mut flows = Vec::new();
    let mut flow_names = BTreeSet::new();
    let mut from_shell = BTreeSet::new();
    for (title, reqs) in groups {
        let flow_name = unique_name(&title, &mut flow_names, 40);
        let mut step_names = BTreeSet::new();
        let mut captured: BTreeSet<String> = BTreeSet::new();
        let mut steps = Vec::new();
        for r in &reqs {
            let name = unique_name(&r.name, &mut step_names, 80);
            let at = format!("{flow_name}: \"{name}\"");
            match step(
                r,
                &name,
                &vars,
                &captured,
                main_origin.as_deref(),
                &mut report,
                &at,
            ) {
                Some(mut st) => {
                    for t in [Some(&st.path), st.body.as_ref()]
                        .into_iter()
                        .flatten()
                        .chain(st.headers.values())
                    {
                        for n in env_names(t) {
                            from_shell.insert(n);
                        }
                        for (i, _) in t.match_indices("{{$") {
                            let d = t[i + 2..].split("}}").next().unwrap_or("").trim();
                            if !DYNAMIC.contains(&d) {
                                report.note(format!(
                                    "{at}: Postman's {{{{{d}}}}} has no engine equivalent (the engine takes {}): edit it",
                                    DYNAMIC.join(", ")
                                ));
                            }
                        }
                    }
                    for (var, sel) in script_captures(r.item, &at, &mut report) {
                        report.note(format!(
                            "{at}: its test script sets {var} from the response: captured ({sel})"
                        ));
                        captured.insert(var.clone());
                        st.capture.insert(var, sel);
                    }
                    steps.push(st);
                }
                None => continue,
            }
        }
        if steps.is_empty() {
            report.note(format!("folder \"{title}\": no request kept, no flow"));
            continue;
        }
        report.note(format!(
            "flow \"{flow_name}\": {} steps from \"{title}\"",
            steps.len()
        ));
        flows.push(FlowOut {
            name: flow_name,
            steps,
        });
    }
    if !from_shell.is_empty() {
        report.note(format!(
            "variables with no value in the collection or environment, read from the shell's environment when the run starts ({{{{env.NAME}}}}): {}",
            from_shell.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if flows.is_empty() {
        return Err(err("no request left to import (see the report above)"));
    }
    if let (Some(t), Some(o)) = (&opts.target, &main_origin) {
        report.note(format!("{o} replaced by {t}"));
    }
    let name = unique_name(&cname, &mut BTreeSet::new(), 64);
    Ok((super::config(&name, &target, &flows), report))
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn flatten<'a>(folder: &'a Value, auth: Option<&'a Value>, out: &mut Vec<Req<'a>>) {
    let auth = folder.get("auth").filter(|a| !a.is_null()).or(auth);
    for it in folder
        .get("item")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if it.get("item").is_some() {
            flatten(it, auth, out);
        } else {
            out.push(Req {
                name: s(it, "name").unwrap_or("request").to_string(),
                item: it,
                auth,
            });
        }
    }
}

/// The kinds of script an item (or the collection) has.
fn events(item: &Value) -> Vec<&str> {
    item.get("event")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| script_text(e).is_some_and(|t| !t.trim().is_empty()))
        .filter_map(|e| s(e, "listen"))
        .map(|l| if l == "prerequest" { "pre-request" } else { l })
        .collect()
}

fn script_text(event: &Value) -> Option<String> {
    let exec = event.get("script")?.get("exec")?;
    Some(match exec {
        Value::Array(lines) => lines
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        Value::String(t) => t.clone(),
        _ => return None,
    })
}

fn raw_url(item: &Value) -> String {
    let req = item.get("request");
    match req {
        Some(Value::String(u)) => u.clone(),
        Some(r) => match r.get("url") {
            Some(Value::String(u)) => u.clone(),
            Some(u) => s(u, "raw").map(str::to_string).unwrap_or_else(|| {
                let host = u
                    .get("host")
                    .and_then(Value::as_array)
                    .map(|h| {
                        h.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(".")
                    })
                    .unwrap_or_default();
                let path = u
                    .get("path")
                    .and_then(Value::as_array)
                    .map(|p| {
                        p.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join("/")
                    })
                    .unwrap_or_default();
                let proto = s(u, "protocol").unwrap_or("http");
                let port = s(u, "port").map(|p| format!(":{p}")).unwrap_or_default();
                format!("{proto}://{host}{port}/{path}")
            }),
            None => String::new(),
        },
        None => String::new(),
    }
}

/// `text` with every `{{name}}` replaced: a value (nested ones followed),
/// `{{vars.name}}` for a captured one, a dynamic variable kept, and
/// `{{env.name}}` for one defined nowhere.
fn resolve(text: &str, vars: &BTreeMap<String, String>, captured: &BTreeSet<String>) -> String {
    let mut cur = text.to_string();
    for _ in 0..MAX_NESTING {
        let mut out = String::new();
        let mut rest = cur.as_str();
        let mut changed = false;
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                out.push_str(&rest[open..]);
                rest = "";
                break;
            };
            let name = after[..close].trim();
            if let Some(v) = vars.get(name).filter(|_| !captured.contains(name)) {
                out.push_str(v);
                changed = true;
            } else {
                out.push_str(&rest[open..open + 2 + close + 2]);
            }
            rest = &after[close + 2..];
        }
        out.push_str(rest);
        cur = out;
        if !changed {
            break;
        }
    }
    // What is left: dynamic, captured or from the shell.
    let mut out = String::new();
    let mut rest = cur.as_str();
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let name = after[..close].trim();
        if name.starts_with('$') || name.starts_with("vars.") || name.starts_with("env.") {
            out.push_str(&format!("{{{{{name}}}}}"));
        } else if captured.contains(name) {
            out.push_str(&format!("{{{{vars.{}}}}}", capture_name(name)));
        } else {
            out.push_str(&format!("{{{{env.{name}}}}}"));
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

/// `{{env.NAME}}` names in a text.
fn env_names(t: &str) -> Vec<String> {
    t.match_indices("{{env.")
        .filter_map(|(i, _)| {
            let rest = &t[i + 6..];
            Some(rest[..rest.find("}}")?].to_string())
        })
        .collect()
}

/// A capture's name for a Postman variable: letters, digits, `_`, `-`.
fn capture_name(v: &str) -> String {
    v.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn step(
    r: &Req,
    name: &str,
    vars: &BTreeMap<String, String>,
    captured: &BTreeSet<String>,
    main_origin: Option<&str>,
    report: &mut Report,
    at: &str,
) -> Option<StepOut> {
    let req = r.item.get("request").unwrap_or(&Value::Null);
    let method = s(req, "method").unwrap_or("GET").to_ascii_uppercase();
    if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&method.as_str()) {
        report.note(format!(
            "{at}: method {method} is not one the engine sends; left out"
        ));
        return None;
    }
    let url = resolve(&raw_url(r.item), vars, captured);
    let path = match split_url(&url) {
        Some((o, p)) if Some(o.as_str()) == main_origin => p,
        Some(_) if !url.contains("{{") => url.clone(),
        Some((o, _)) => {
            report.note(format!(
                "{at}: {o} is not the collection's main origin and the URL holds a variable; left out"
            ));
            return None;
        }
        None => match url.find("}}").filter(|_| url.starts_with("{{")) {
            // `{{baseUrl}}/path` with no base: the target stands for it
            Some(i) if url[i + 2..].starts_with('/') => url[i + 2..].to_string(),
            _ => {
                report.note(format!(
                    "{at}: URL \"{url}\" is not an absolute http(s) URL; left out"
                ));
                return None;
            }
        },
    };
    let mut st = StepOut {
        name: name.to_string(),
        method,
        path,
        ..StepOut::default()
    };
    for h in req
        .get("header")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if h.get("disabled").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let (Some(k), Some(v)) = (s(h, "key"), h.get("value")) else {
            continue;
        };
        if let Some(why) = super::headers::drop_reason(k) {
            report.dropped_header(why, k);
            continue;
        }
        st.headers
            .insert(k.to_ascii_lowercase(), resolve(&scalar(v), vars, captured));
    }
    let auth = req.get("auth").filter(|a| !a.is_null()).or(r.auth);
    if let Some(a) = auth {
        auth_header(a, &mut st, vars, captured, report, at);
    }
    if let Some(b) = req.get("body").filter(|b| !b.is_null()) {
        body(b, &mut st, vars, captured, report, at);
    }
    for ev in events(r.item) {
        report.note(format!(
            "{at}: its {ev} script does not run (its assertions and logic are not carried over)"
        ));
    }
    Some(st)
}

fn kv(list: Option<&Value>, key: &str) -> Option<String> {
    match list? {
        // v2.1: [{"key": "token", "value": "…"}]
        Value::Array(a) => a
            .iter()
            .find(|e| s(e, "key") == Some(key))
            .and_then(|e| e.get("value"))
            .map(scalar),
        // v2.0: {"token": "…"}
        o => o.get(key).map(scalar),
    }
}

fn auth_header(
    a: &Value,
    st: &mut StepOut,
    vars: &BTreeMap<String, String>,
    captured: &BTreeSet<String>,
    report: &mut Report,
    at: &str,
) {
    let kind = s(a, "type").unwrap_or("noauth");
    let value = match kind {
        "noauth" | "inherit" => return,
        "bearer" => kv(a.get("bearer"), "token").map(|t| format!("Bearer {t}")),
        "basic" => {
            let user = kv(a.get("basic"), "username").unwrap_or_default();
            let pass = kv(a.get("basic"), "password").unwrap_or_default();
            let (user, pass) = (
                resolve(&user, vars, captured),
                resolve(&pass, vars, captured),
            );
            if user.contains("{{") || pass.contains("{{") {
                report.note(format!(
                    "{at}: basic auth with a variable cannot be encoded ahead; left out"
                ));
                return;
            }
            use base64::Engine as _;
            let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            Some(format!("Basic {enc}"))
        }
        "apikey" => {
            let k = kv(a.get("apikey"), "key").unwrap_or_else(|| "x-api-key".into());
            let v = kv(a.get("apikey"), "value").unwrap_or_default();
            if kv(a.get("apikey"), "in").as_deref() == Some("query") {
                let sep = if st.path.contains('?') { '&' } else { '?' };
                st.path = format!("{}{sep}{k}={}", st.path, resolve(&v, vars, captured));
            } else {
                st.headers
                    .insert(k.to_ascii_lowercase(), resolve(&v, vars, captured));
            }
            return;
        }
        other => {
            report.note(format!(
                "{at}: auth type {other} is not carried over (bearer, basic and apikey are)"
            ));
            return;
        }
    };
    if let Some(v) = value {
        st.headers
            .entry("authorization".into())
            .or_insert_with(|| resolve(&v, vars, captured));
    }
}

fn body(
    b: &Value,
    st: &mut StepOut,
    vars: &BTreeMap<String, String>,
    captured: &BTreeSet<String>,
    report: &mut Report,
    at: &str,
) {
    let mode = s(b, "mode").unwrap_or("raw");
    let (text, ctype) = match mode {
        "raw" => {
            let lang = b
                .get("options")
                .and_then(|o| o.get("raw"))
                .and_then(|r| s(r, "language"));
            let ct = match lang {
                Some("json") => Some("application/json"),
                Some("xml") => Some("application/xml"),
                _ => None,
            };
            (s(b, "raw").unwrap_or("").to_string(), ct)
        }
        "urlencoded" => {
            let pairs: Vec<String> = b
                .get("urlencoded")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|p| p.get("disabled").and_then(Value::as_bool) != Some(true))
                .filter_map(|p| {
                    Some(format!(
                        "{}={}",
                        form_encode(s(p, "key")?),
                        form_encode(&p.get("value").map(scalar).unwrap_or_default())
                    ))
                })
                .collect();
            (pairs.join("&"), Some("application/x-www-form-urlencoded"))
        }
        "graphql" => {
            let g = b.get("graphql").cloned().unwrap_or(Value::Null);
            let vars_json = g
                .get("variables")
                .and_then(Value::as_str)
                .and_then(|v| serde_json::from_str::<Value>(v).ok())
                .unwrap_or(json!({}));
            let q = json!({"query": g.get("query").cloned().unwrap_or(json!("")), "variables": vars_json});
            (q.to_string(), Some("application/json"))
        }
        other => {
            report.note(format!(
                "{at}: a {other} body is not carried over (raw, urlencoded and graphql are)"
            ));
            return;
        }
    };
    if text.is_empty() {
        return;
    }
    st.body = Some(resolve(&text, vars, captured));
    if let Some(ct) = ctype {
        st.headers
            .entry("content-type".into())
            .or_insert_with(|| ct.to_string());
    }
}

/// `{{` is a template in the engine; in a form body, `{` is escaped anyway.
fn form_encode(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    // keep `{{…}}` as it is so the variable still resolves
    while let Some(open) = rest.find("{{") {
        out.push_str(&enc(&rest[..open]));
        match rest[open..].find("}}") {
            Some(close) => {
                out.push_str(&rest[open..open + close + 2]);
                rest = &rest[open + close + 2..];
            }
            None => {
                out.push_str(&enc(&rest[open..]));
                rest = "";
            }
        }
    }
    out.push_str(&enc(rest));
    out
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Variables a test script sets from the response, as captures:
/// `pm.environment.set("t", pm.response.json().a.b)` (also
/// `pm.collectionVariables`, `pm.globals`, `pm.variables`,
/// `postman.setEnvironmentVariable`), with `jsonData.a.b` where `jsonData`
/// is the response's JSON, and `pm.response.headers.get("X")`.
fn script_captures(item: &Value, at: &str, report: &mut Report) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for e in item
        .get("event")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if s(e, "listen") != Some("test") {
            continue;
        }
        let Some(text) = script_text(e) else { continue };
        // names bound to the response's JSON: `var jsonData = pm.response.json();`
        let mut json_names = vec!["pm.response.json()".to_string()];
        for line in text.lines() {
            let l = line.trim();
            if (l.contains("pm.response.json()") || l.contains("JSON.parse(responseBody)"))
                && let Some(eq) = l.find('=')
            {
                let lhs = l[..eq].trim();
                let name = lhs.rsplit(' ').next().unwrap_or(lhs);
                if !name.is_empty() {
                    json_names.push(name.to_string());
                }
            }
        }
        for call in [
            "pm.environment.set(",
            "pm.collectionVariables.set(",
            "pm.globals.set(",
            "pm.variables.set(",
            "postman.setEnvironmentVariable(",
            "postman.setGlobalVariable(",
        ] {
            for (i, _) in text.match_indices(call) {
                let args = &text[i + call.len()..];
                let Some(end) = args
                    .find(");")
                    .or_else(|| args.find(")\n"))
                    .or_else(|| args.rfind(')'))
                else {
                    continue;
                };
                let args = &args[..end];
                let Some((var, expr)) = args.split_once(',') else {
                    continue;
                };
                let var = var.trim().trim_matches(['"', '\'', '`']);
                let expr = expr.trim();
                let sel = json_names
                    .iter()
                    .find_map(|n| expr.strip_prefix(n.as_str()))
                    .and_then(pointer)
                    .map(|p| json!({"json": p}))
                    .or_else(|| {
                        let h = expr.strip_prefix("pm.response.headers.get(")?;
                        let h = h.strip_suffix(')')?.trim().trim_matches(['"', '\'']);
                        Some(json!({"header": h.to_ascii_lowercase()}))
                    });
                match sel {
                    Some(sel) => out.push((capture_name(var), sel)),
                    None => report.note(format!(
                        "{at}: its test script sets {var} from \"{expr}\", which is not a response JSON path or header; not captured"
                    )),
                }
            }
        }
    }
    out
}

/// `.a.b[0]["c d"]` → `/a/b/0/c d` (RFC 6901 escaped); `None` for anything
/// else (a call, an operator).
fn pointer(path: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = path.trim();
    if rest.is_empty() {
        return Some(String::new());
    }
    while !rest.is_empty() {
        let seg;
        if let Some(r) = rest.strip_prefix('.') {
            let n = r
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(r.len());
            if n == 0 {
                return None;
            }
            seg = r[..n].to_string();
            rest = &r[n..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            seg = r[..close].trim().trim_matches(['"', '\'']).to_string();
            rest = &r[close + 1..];
        } else {
            return None;
        }
        out.push('/');
        out.push_str(&seg.replace('~', "~0").replace('/', "~1"));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_resolve_nested_captured_dynamic_or_from_the_shell() {
        let vars: BTreeMap<String, String> = [
            ("base".to_string(), "http://h:1".to_string()),
            ("api".to_string(), "{{base}}/api".to_string()),
            ("token".to_string(), "recorded".to_string()),
        ]
        .into();
        let captured: BTreeSet<String> = ["token".to_string()].into();
        assert_eq!(
            resolve(
                "{{api}}/x?t={{token}}&u={{user}}&g={{$guid}}",
                &vars,
                &captured
            ),
            "http://h:1/api/x?t={{vars.token}}&u={{env.user}}&g={{$guid}}"
        );
    }

    #[test]
    fn script_paths_become_pointers() {
        assert_eq!(pointer(".token").as_deref(), Some("/token"));
        assert_eq!(
            pointer(".data.items[0][\"a/b\"]").as_deref(),
            Some("/data/items/0/a~1b")
        );
        assert_eq!(pointer(".token.trim()"), None);
        let item = json!({"event": [{"listen": "test", "script": {"exec": [
            "var jsonData = pm.response.json();",
            "pm.environment.set(\"token\", jsonData.token);",
            "pm.collectionVariables.set('cart', pm.response.json().id);",
            "pm.environment.set(\"sid\", pm.response.headers.get(\"X-Session\"));",
            "pm.environment.set(\"n\", Date.now());"]}}]});
        let mut report = Report::default();
        let caps = script_captures(&item, "f", &mut report);
        assert_eq!(
            caps,
            vec![
                ("token".to_string(), json!({"json": "/token"})),
                ("sid".to_string(), json!({"header": "x-session"})),
                ("n".to_string(), json!(null)),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .chain([("cart".to_string(), json!({"json": "/id"}))])
            .collect::<Vec<_>>()
        );
        assert!(
            report
                .lines()
                .join("\n")
                .contains("sets n from \"Date.now()\"")
        );
    }
}
