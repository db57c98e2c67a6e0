//! Values a recorded response returned and a later request of the same flow
//! sent back (a login's token, a created cart's id) become captures: the
//! producing step gets `capture: {"NAME": {"json": "/ptr"}}` (or
//! `{"header": "name"}`) and the later requests `{{vars.NAME}}`, so a run
//! uses the values of its own session instead of the recording's (which the
//! server would refuse or mix up).
//!
//! Two kinds of value, because a short one would match by chance:
//! - strong (at least 8 characters with a digit, or 16 of any kind): any
//!   string of a JSON response or a response header's value; matched as a
//!   substring of a later path, header value or body;
//! - weak (a number or short string under an id-like key: `id`, `…_id`,
//!   `…Id`, `token`, `key`, `uuid`): matched only as a whole path segment,
//!   query value, or JSON body value, and only if the client had not sent
//!   it under that key before the response came (`"qty": 1` is not a
//!   cart's `"id": 1`).
//!
//! A value the client sent before the response that returned it (a user
//! name echoed back) is the client's own and is never captured. Values that
//! still look like tokens or ids afterwards (UUIDs, JWTs, long hex or
//! alphanumeric runs) are listed in the report: they are sent as recorded.

use super::{Report, StepOut};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a recorded response returned that a later request may send back.
#[derive(Debug, Default, Clone)]
pub struct Returned {
    /// The body, when it parsed as JSON.
    pub json: Option<Value>,
    /// Response headers (name, value), as recorded.
    pub headers: Vec<(String, String)>,
}

/// Response headers whose values are the server's bookkeeping, never an
/// id a client sends back.
const PLAIN_HEADERS: &[&str] = &[
    "date",
    "content-type",
    "content-length",
    "content-encoding",
    "server",
    "server-timing",
    "connection",
    "keep-alive",
    "set-cookie",
    "cache-control",
    "expires",
    "last-modified",
    "vary",
    "age",
    "via",
    "etag",
    "strict-transport-security",
    "content-security-policy",
    "report-to",
    "nel",
    "alt-svc",
];

#[derive(Debug, Clone)]
struct Source {
    step: usize,
    value: String,
    strong: bool,
    selector: Value,
    /// The capture's name, before it is made unique.
    hint: String,
}

/// Links the steps of one flow: `returned[i]` is what step `i`'s response
/// held. Edits `steps` in place (captures, templates) and reports.
pub fn link(flow: &str, steps: &mut [StepOut], returned: &[Returned], report: &mut Report) {
    // What each request sent, before any template was put in: its text
    // (for strong values) and its (key, value) slots (for weak ones).
    let texts: Vec<String> = steps
        .iter()
        .map(|s| {
            let mut t = s.path.clone();
            for v in s.headers.values() {
                t.push('\n');
                t.push_str(v);
            }
            t.push('\n');
            t.push_str(s.body.as_deref().unwrap_or(""));
            t
        })
        .collect();
    let slots: Vec<BTreeSet<(String, String)>> = steps
        .iter()
        .map(|s| weak_slots(s).into_iter().collect())
        .collect();
    // Which steps send each value: looked up by word (a response can hold
    // thousands of values, a recording hundreds of requests: searching
    // every text for every value took minutes on a 10 MB HAR), by search
    // only for values with other characters.
    let mut words: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in texts.iter().enumerate() {
        for w in t.split(|c: char| !word_char(c)).filter(|w| !w.is_empty()) {
            let v = words.entry(w).or_default();
            if v.last() != Some(&i) {
                v.push(i);
            }
        }
    }
    let sending = |value: &str| -> Vec<usize> {
        if value.chars().all(word_char) {
            words.get(value).cloned().unwrap_or_default()
        } else {
            (0..texts.len())
                .filter(|&i| texts[i].contains(value))
                .collect()
        }
    };
    // Each source with the steps that send its value, if a later one does.
    let sources: Vec<(Source, Vec<usize>)> = sources(returned)
        .into_iter()
        .filter_map(|src| {
            let at = sending(&src.value);
            at.iter().any(|&i| i > src.step).then_some((src, at))
        })
        .collect();
    let mut names: BTreeMap<(usize, String), String> = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for i in 1..steps.len() {
        // Latest source first: a value returned twice comes from the newer
        // response. Longer values first, so one inside another is not cut.
        let mut cands: Vec<&Source> = sources
            .iter()
            .filter(|(s, at)| s.step < i && at.contains(&i))
            // a strong value the client sent before its response came is
            // the client's own (weak ones are judged by key where used)
            .filter(|(s, at)| !(s.strong && at.iter().any(|&j| j <= s.step)))
            .map(|(s, _)| s)
            .collect();
        cands.sort_by(|a, b| b.step.cmp(&a.step).then(b.value.len().cmp(&a.value.len())));
        let mut used = BTreeSet::new();
        for src in cands {
            if used.contains(&src.value) {
                continue;
            }
            let key = (src.step, src.value.clone());
            let var = names.get(&key).cloned().unwrap_or_else(|| {
                let mut base = sanitize(&src.hint);
                let mut n = 2;
                let first = base.clone();
                while taken.contains(&base) {
                    base = format!("{first}_{n}");
                    n += 1;
                }
                base
            });
            let tpl = format!("{{{{vars.{var}}}}}");
            let hit = if src.strong {
                replace_strong(&mut steps[i], &src.value, &tpl)
            } else {
                replace_weak(&mut steps[i], &src.value, &tpl, &slots[..=src.step])
            };
            if hit {
                used.insert(src.value.clone());
                if let std::collections::btree_map::Entry::Vacant(slot) = names.entry(key) {
                    taken.insert(var.clone());
                    slot.insert(var.clone());
                    steps[src.step]
                        .capture
                        .insert(var.clone(), src.selector.clone());
                    report.note(format!(
                        "{flow}: \"{}\" captures {var} ({}) for \"{}\"",
                        steps[src.step].name,
                        selector_text(&src.selector),
                        steps[i].name
                    ));
                }
            }
        }
    }
    for s in steps.iter() {
        for (place, v) in unmatched(s) {
            report.note(format!(
                "{flow}: \"{}\" {place}: \"{}\" looks like a token or id that no earlier response of this flow returned; sent as recorded",
                s.name,
                clip(&v)
            ));
        }
    }
}

/// Characters of a word: a value made of these is found by word lookup.
fn word_char(c: char) -> bool {
    c.is_alphanumeric() || "-_.~".contains(c)
}

fn selector_text(sel: &Value) -> String {
    match (sel.get("json"), sel.get("header")) {
        (Some(p), _) => format!("JSON {}", p.as_str().unwrap_or("")),
        (_, Some(h)) => format!("header {}", h.as_str().unwrap_or("")),
        _ => sel.to_string(),
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 24 {
        format!("{}…", s.chars().take(24).collect::<String>())
    } else {
        s.to_string()
    }
}

/// A capture name: letters, digits and `_`.
fn sanitize(hint: &str) -> String {
    let s: String = hint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_matches('_');
    if s.is_empty() {
        "value".into()
    } else {
        s.chars().take(40).collect()
    }
}

fn strong(v: &str) -> bool {
    let n = v.chars().count();
    !v.contains(char::is_whitespace)
        && ((n >= 8 && v.bytes().any(|b| b.is_ascii_digit())) || n >= 16)
}

fn id_key(k: &str) -> bool {
    let l = k.to_ascii_lowercase();
    l == "id"
        || l.ends_with("_id")
        || l.ends_with("-id")
        || (k.ends_with("Id") || k.ends_with("ID"))
        || l.contains("token")
        || l.ends_with("key")
        || l.contains("uuid")
}

fn sources(returned: &[Returned]) -> Vec<Source> {
    let mut out = Vec::new();
    for (step, r) in returned.iter().enumerate() {
        if let Some(j) = &r.json {
            walk(j, &mut String::new(), None, &mut |ptr, key, v| {
                let (text, is_str) = match v {
                    Value::String(s) => (s.clone(), true),
                    Value::Number(n) => (n.to_string(), false),
                    _ => return,
                };
                let hint = key.unwrap_or("value").to_string();
                let is_strong = is_str && strong(&text);
                if is_strong || (key.is_some_and(id_key) && !text.is_empty() && text.len() < 64) {
                    out.push(Source {
                        step,
                        value: text,
                        strong: is_strong,
                        selector: json!({"json": ptr}),
                        hint,
                    });
                }
            });
        }
        let mut seen = BTreeSet::new();
        for (name, value) in &r.headers {
            let l = name.to_ascii_lowercase();
            if PLAIN_HEADERS.contains(&l.as_str())
                || l.starts_with("access-control-")
                || l.starts_with("x-content-")
                || l.starts_with(':')
                || !seen.insert(l.clone())
            {
                continue;
            }
            // `Bearer X`-style values: the token is what is sent back.
            let v = value.rsplit(' ').next().unwrap_or(value).to_string();
            if strong(&v) {
                out.push(Source {
                    step,
                    value: v,
                    strong: true,
                    selector: json!({"header": l}),
                    hint: l,
                });
            }
        }
    }
    out
}

/// Calls `f(pointer, key, value)` for every scalar of `v`.
fn walk(
    v: &Value,
    ptr: &mut String,
    key: Option<&str>,
    f: &mut dyn FnMut(&str, Option<&str>, &Value),
) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let len = ptr.len();
                ptr.push('/');
                ptr.push_str(&k.replace('~', "~0").replace('/', "~1"));
                walk(x, ptr, Some(k), f);
                ptr.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let len = ptr.len();
                ptr.push_str(&format!("/{i}"));
                walk(x, ptr, key, f);
                ptr.truncate(len);
            }
        }
        _ => f(ptr, key, v),
    }
}

fn replace_strong(s: &mut StepOut, value: &str, tpl: &str) -> bool {
    let mut hit = false;
    let mut rep = |t: &mut String| {
        if t.contains(value) {
            *t = t.replace(value, tpl);
            hit = true;
        }
    };
    rep(&mut s.path);
    for v in s.headers.values_mut() {
        rep(v);
    }
    if let Some(b) = &mut s.body {
        rep(b);
    }
    hit
}

/// (key, value) pairs a request sends where a weak value may sit: path
/// segments keyed by the segment before, query parameters, JSON body values.
fn weak_slots(s: &StepOut) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (path, query) = s.path.split_once('?').unwrap_or((&s.path, ""));
    let segs: Vec<&str> = path.split('/').collect();
    for w in segs.windows(2) {
        out.push((w[0].to_string(), w[1].to_string()));
    }
    for kv in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        out.push((k.to_string(), v.to_string()));
    }
    if let Some(Ok(j)) = s.body.as_deref().map(serde_json::from_str::<Value>) {
        walk(&j, &mut String::new(), None, &mut |_, key, v| {
            let text = match v {
                Value::String(x) => x.clone(),
                Value::Number(n) => n.to_string(),
                _ => return,
            };
            out.push((key.unwrap_or("").to_string(), text));
        });
    }
    out
}

fn replace_weak(
    s: &mut StepOut,
    value: &str,
    tpl: &str,
    sent: &[BTreeSet<(String, String)>],
) -> bool {
    let known = |k: &str, v: &str| {
        sent.iter()
            .any(|s| s.contains(&(k.to_string(), v.to_string())))
    };
    let mut hit = false;
    let (path, query) = match s.path.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (s.path.clone(), None),
    };
    let mut segs: Vec<String> = path.split('/').map(str::to_string).collect();
    for i in 1..segs.len() {
        if segs[i] == value && !known(&segs[i - 1], value) {
            segs[i] = tpl.to_string();
            hit = true;
        }
    }
    let mut new_path = segs.join("/");
    if let Some(q) = query {
        let parts: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) if v == value && !known(k, v) => {
                    hit = true;
                    format!("{k}={tpl}")
                }
                _ => kv.to_string(),
            })
            .collect();
        new_path.push('?');
        new_path.push_str(&parts.join("&"));
    }
    s.path = new_path;
    if let Some(body) = &mut s.body
        && serde_json::from_str::<Value>(body).is_ok()
    {
        let mut keys = Vec::new();
        for (k, v) in weak_slots(&StepOut {
            body: Some(body.clone()),
            path: String::new(),
            ..StepOut::default()
        }) {
            if v == value && !known(&k, &v) {
                keys.push(k);
            }
        }
        for k in keys {
            if let Some(b) = replace_json_value(body, &k, value, tpl) {
                *body = b;
                hit = true;
            }
        }
    }
    hit
}

/// `"key": VALUE` in JSON text with VALUE (a number, or a string's
/// content) replaced by `tpl`; `None` when not found.
fn replace_json_value(body: &str, key: &str, value: &str, tpl: &str) -> Option<String> {
    let needle = format!("\"{key}\"");
    let mut out = String::new();
    let mut rest = body;
    let mut hit = false;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        let trimmed = after.trim_start();
        let Some(v) = trimmed.strip_prefix(':') else {
            out.push_str(&rest[..at + needle.len()]);
            rest = after;
            continue;
        };
        let v = v.trim_start();
        let lead = rest.len() - v.len();
        let (len, quoted) = if v.starts_with(&format!("\"{value}\"")) {
            (value.len() + 2, true)
        } else if v.starts_with(value)
            && !v[value.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '.')
        {
            (value.len(), false)
        } else {
            out.push_str(&rest[..lead]);
            rest = v;
            continue;
        };
        out.push_str(&rest[..lead]);
        if quoted {
            out.push('"');
            out.push_str(tpl);
            out.push('"');
        } else {
            out.push_str(tpl);
        }
        rest = &v[len..];
        hit = true;
    }
    out.push_str(rest);
    hit.then_some(out)
}

/// Values of a step that look like tokens or ids and are not templates.
fn unmatched(s: &StepOut) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut check = |place: String, text: &str| {
        for w in text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.~".contains(c))) {
            if looks_like_token(w) {
                out.push((place.clone(), w.to_string()));
            }
        }
    };
    let untemplated = |t: &str| {
        t.split("{{").next().unwrap_or("").to_string()
            + &t.split("}}").skip(1).collect::<Vec<_>>().join(" ")
    };
    check("path".into(), &untemplated(&s.path));
    for (k, v) in &s.headers {
        check(format!("header {k}"), &untemplated(v));
    }
    if let Some(b) = &s.body {
        check("body".into(), &untemplated(b));
    }
    out
}

/// A UUID, a JWT, 16+ hex digits, or 20+ letters and digits mixed.
pub fn looks_like_token(w: &str) -> bool {
    let b = w.as_bytes();
    let uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    let jwt = w.starts_with("eyJ") && w.matches('.').count() == 2 && w.len() > 20;
    let hex =
        b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit) && b.iter().any(u8::is_ascii_digit);
    let mixed = b.len() >= 20
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c));
    uuid || jwt || hex || mixed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> StepOut {
        StepOut {
            name: name.into(),
            method: "GET".into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.map(str::to_string),
            ..StepOut::default()
        }
    }

    fn ret(json: &str, headers: &[(&str, &str)]) -> Returned {
        Returned {
            json: serde_json::from_str(json).ok(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_token_and_an_id_become_captures_and_the_clients_own_values_do_not() {
        let mut steps = vec![
            step("login", "/login", &[], Some(r#"{"user":"alice-0123456"}"#)),
            step(
                "cart",
                "/cart",
                &[("authorization", "Bearer 1.3552c07b32219062")],
                Some(r#"{"product":42,"qty":1}"#),
            ),
            step(
                "checkout",
                "/carts/1/checkout?user=alice-0123456",
                &[
                    ("authorization", "Bearer 1.3552c07b32219062"),
                    ("x-session", "S-998877665544"),
                ],
                Some(r#"{"cart": 1, "qty":1}"#),
            ),
        ];
        let returned = vec![
            ret(
                r#"{"token":"1.3552c07b32219062","user":"alice-0123456"}"#,
                &[
                    ("X-Session", "S-998877665544"),
                    ("Date", "Thu, 03 Dec 2026 07:45:06 GMT"),
                ],
            ),
            ret(r#"{"id":1}"#, &[]),
            ret("{}", &[]),
        ];
        let mut report = Report::default();
        link("shop", &mut steps, &returned, &mut report);
        assert_eq!(steps[0].capture["token"], json!({"json": "/token"}));
        assert_eq!(
            steps[0].capture["x_session"],
            json!({"header": "x-session"})
        );
        assert_eq!(steps[1].capture["id"], json!({"json": "/id"}));
        assert_eq!(steps[1].headers["authorization"], "Bearer {{vars.token}}");
        // "qty": 1 was the client's before the cart's id 1 came back
        assert_eq!(steps[1].body.as_deref(), Some(r#"{"product":42,"qty":1}"#));
        assert_eq!(
            steps[2].path,
            "/carts/{{vars.id}}/checkout?user=alice-0123456"
        );
        assert_eq!(
            steps[2].body.as_deref(),
            Some(r#"{"cart": {{vars.id}}, "qty":1}"#)
        );
        assert_eq!(steps[2].headers["x-session"], "{{vars.x_session}}");
        assert_eq!(steps[0].capture.len(), 2, "{:?}", steps[0].capture);
    }

    #[test]
    fn unmatched_tokens_are_listed() {
        let mut steps = vec![
            step("a", "/a", &[], None),
            step(
                "b",
                "/b/9f0c2a4e-1b2c-4d3e-8f9a-0b1c2d3e4f5a",
                &[(
                    "authorization",
                    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
                )],
                None,
            ),
        ];
        let mut report = Report::default();
        link(
            "f",
            &mut steps,
            &[Returned::default(), Returned::default()],
            &mut report,
        );
        let text = report.lines().join("\n");
        assert!(
            text.contains("\"b\" path: \"9f0c2a4e-1b2c-4d3e-8f9a-…\""),
            "{text}"
        );
        assert!(
            text.contains("\"b\" header authorization: \"eyJhbGciOiJIUzI1NiJ9.eyJ…\""),
            "{text}"
        );
    }

    #[test]
    fn token_shapes() {
        for t in [
            "9f0c2a4e-1b2c-4d3e-8f9a-0b1c2d3e4f5a",
            "3552c07b32219062ab",
            "a1b2c3d4e5f6g7h8i9j0k",
        ] {
            assert!(looks_like_token(t), "{t}");
        }
        for t in ["application", "2026", "wonderland", "products"] {
            assert!(!looks_like_token(t), "{t}");
        }
    }
}
