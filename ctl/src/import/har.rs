//! HAR 1.2 (a browser's network panel, "Save all as HAR") → flows: one per
//! page (`log.pages`, entries by `pageref`) or one for the whole recording,
//! steps in the recorded order with their methods, paths, bodies and the
//! headers that matter (see `headers.rs`), think times from the recorded
//! gaps, and captures for the values a response returned and a later
//! request sent back (see `captures.rs`).
//!
//! Left out, each said in the report: static assets (unless
//! `--include-assets`), requests to other origins than the recording's
//! main one, CORS preflights, requests the browser got no response to,
//! methods the engine does not send.

use super::captures::{self, Returned};
use super::headers::drop_reason;
use super::{FlowOut, ImportError, Report, StepOut, has_braces, split_url, unique_name};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Longest think time taken from a recorded gap: a user who read a page
/// for a minute would make the import's one iteration take minutes; the
/// report says how many gaps were capped.
pub const MAX_THINK_MS: u64 = 5_000;
/// Gaps shorter than this are the browser's own scheduling, not a user.
const MIN_THINK_MS: u64 = 10;

/// The methods the engine sends.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// `import har`'s flags.
#[derive(Debug, Clone, Default)]
pub struct HarOptions {
    /// Replaces the recorded origin.
    pub target: Option<String>,
    pub include_assets: bool,
    /// One flow for the whole recording instead of one per page.
    pub one_flow: bool,
}

/// One recorded exchange, read from an entry.
struct Entry {
    page: Option<String>,
    start_ms: Option<i64>,
    time_ms: f64,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    body_type: Option<String>,
    status: u16,
    resource_type: String,
    mime: String,
    returned: Returned,
}

/// The config for a HAR file, and the report.
pub fn import(file: &Path, opts: &HarOptions) -> Result<(Value, Report), ImportError> {
    let root = super::read_json(file)?;
    let err = |what: String| ImportError::new(file, what);
    let log = root.get("log").filter(|l| l.is_object()).ok_or_else(|| {
        err("not a HAR file: no \"log\" object (a HAR is {\"log\": {\"entries\": [...]}})".into())
    })?;
    let raw = log
        .get("entries")
        .and_then(Value::as_array)
        .ok_or_else(|| err("not a HAR file: log.entries is missing or not an array".into()))?;
    let entries = raw
        .iter()
        .enumerate()
        .map(|(i, e)| entry(e, &format!("log.entries[{i}]")).map_err(err))
        .collect::<Result<Vec<_>, _>>()?;
    if entries.is_empty() {
        return Err(err("log.entries is empty: nothing was recorded".into()));
    }
    let mut report = Report::default();

    // The recording's main origin: the most frequent among requests that
    // are not assets (ties: the first seen).
    let mut counts: Vec<(String, usize)> = Vec::new();
    for e in &entries {
        if let Some((o, p)) = split_url(&e.url)
            && asset_reason(&p, &e.resource_type, &e.mime).is_none()
        {
            match counts.iter_mut().find(|(x, _)| *x == o) {
                Some(c) => c.1 += 1,
                None => counts.push((o, 1)),
            }
        }
    }
    let origin = counts
        .iter()
        .fold(None::<&(String, usize)>, |best, c| match best {
            Some(b) if b.1 >= c.1 => Some(b),
            _ => Some(c),
        })
        .map(|c| c.0.clone())
        .ok_or_else(|| err("no http(s) request that is not a static asset".into()))?;
    let target = match &opts.target {
        Some(t) => {
            let t = t.trim_end_matches('/').to_string();
            if split_url(&t).is_none() {
                return Err(ImportError::new(
                    file,
                    format!("--target {t}: not an http:// or https:// URL"),
                ));
            }
            t
        }
        None => origin.clone(),
    };
    let target_origin = split_url(&target).map_or(target.clone(), |(o, _)| o);

    // Flows: pages in order, then entries of no known page.
    let pages: Vec<(String, String)> = log
        .get("pages")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let id = p.get("id")?.as_str()?.to_string();
                    let title = p
                        .get("title")
                        .and_then(Value::as_str)
                        .filter(|t| !t.trim().is_empty())
                        .map_or_else(|| format!("page {}", i + 1), str::to_string);
                    Some((id, title))
                })
                .collect()
        })
        .unwrap_or_default();
    let stem = file.file_stem().map_or("recording".to_string(), |s| {
        s.to_string_lossy().into_owned()
    });
    let mut groups: Vec<(String, Vec<&Entry>)> = Vec::new();
    if opts.one_flow || pages.is_empty() {
        groups.push((stem.clone(), entries.iter().collect()));
    } else {
        for (id, title) in &pages {
            let es: Vec<&Entry> = entries
                .iter()
                .filter(|e| e.page.as_deref() == Some(id))
                .collect();
            groups.push((title.clone(), es));
        }
        let rest: Vec<&Entry> = entries
            .iter()
            .filter(|e| {
                !e.page
                    .as_ref()
                    .is_some_and(|p| pages.iter().any(|(id, _)| id == p))
            })
            .collect();
        if !rest.is_empty() {
            groups.push((format!("{stem} (no page)"), rest));
        }
    }

    let mut dropped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut capped = 0usize;
    let mut flow_names = BTreeSet::new();
    let mut flows = Vec::new();
    for (title, mut es) in groups {
        es.sort_by_key(|e| e.start_ms.unwrap_or(i64::MIN));
        let mut kept: Vec<(&Entry, String)> = Vec::new();
        for e in es {
            let what = format!("{} {}", e.method, e.url);
            let Some((o, path)) = split_url(&e.url) else {
                dropped
                    .entry("not an http(s) URL (data:, blob:, ws: …)".into())
                    .or_default()
                    .push(what);
                continue;
            };
            let why = if e.status == 0 {
                Some("the browser got no response (blocked, cancelled or failed)".to_string())
            } else if e.method == "OPTIONS"
                && e.headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("access-control-request-method"))
            {
                Some("CORS preflights (the browser's own, not the application's)".into())
            } else if !METHODS.contains(&e.method.as_str()) {
                Some(format!(
                    "method {} (the engine sends {})",
                    e.method,
                    METHODS.join(", ")
                ))
            } else if o != origin {
                Some(format!(
                    "another origin than the recording's main one ({origin})"
                ))
            } else if !opts.include_assets
                && let Some(r) = asset_reason(&path, &e.resource_type, &e.mime)
            {
                Some(format!("static assets ({r}; --include-assets keeps them)"))
            } else {
                None
            };
            match why {
                Some(w) => dropped.entry(w).or_default().push(what),
                None => kept.push((e, path)),
            }
        }
        if kept.is_empty() {
            report.note(format!("page \"{title}\": no request kept, no flow"));
            continue;
        }
        let flow_name = unique_name(&title, &mut flow_names, 40);
        let mut step_names = BTreeSet::new();
        let mut steps = Vec::new();
        let mut returned = Vec::new();
        let mut set_cookies = BTreeSet::new();
        for (i, (e, path)) in kept.iter().enumerate() {
            let bare = path.split('?').next().unwrap_or(path);
            let mut s = StepOut {
                name: unique_name(&format!("{} {bare}", e.method), &mut step_names, 80),
                method: e.method.clone(),
                path: path.clone(),
                body: e.body.clone(),
                ..StepOut::default()
            };
            for (k, v) in &e.headers {
                if let Some(why) = drop_reason(k) {
                    report.dropped_header(why, k);
                    if k.eq_ignore_ascii_case("cookie") {
                        for c in v.split(';') {
                            let name = c.split('=').next().unwrap_or("").trim().to_string();
                            if !name.is_empty() && !set_cookies.contains(&name) {
                                report.note(format!(
                                    "{flow_name}: \"{}\" sent the cookie {name}, which no earlier response of this flow set (an earlier page: --one-flow keeps it; or before the recording): the run will not send it",
                                    s.name
                                ));
                                set_cookies.insert(name);
                            }
                        }
                    }
                    continue;
                }
                let mut v = v.clone();
                if k.eq_ignore_ascii_case("origin") && v.eq_ignore_ascii_case(&origin) {
                    v = target_origin.clone();
                }
                let key = k.to_ascii_lowercase();
                // one value per name: repeated headers are joined as HTTP allows
                match s.headers.get_mut(&key) {
                    Some(old) => {
                        old.push_str(", ");
                        old.push_str(&v);
                    }
                    None => {
                        s.headers.insert(key, v);
                    }
                }
            }
            if s.body.is_some()
                && !s.headers.contains_key("content-type")
                && let Some(t) = &e.body_type
            {
                s.headers.insert("content-type".into(), t.clone());
            }
            for (k, v) in &e.returned.headers {
                if k.eq_ignore_ascii_case("set-cookie") {
                    for line in v.split('\n') {
                        let name = line.split('=').next().unwrap_or("").trim();
                        set_cookies.insert(name.to_string());
                    }
                }
            }
            if e.status >= 400 {
                s.expect = Some(vec![e.status]);
                report.note(format!(
                    "{flow_name}: \"{}\" was answered {} in the recording; the step expects {} so the flow goes on as recorded",
                    s.name, e.status, e.status
                ));
            }
            if let Some(next) = kept.get(i + 1)
                && let (Some(a), Some(b)) = (e.start_ms, next.0.start_ms)
            {
                let gap = b as f64 - (a as f64 + e.time_ms.max(0.0));
                if gap >= MIN_THINK_MS as f64 {
                    let g = gap.round() as u64;
                    if g > MAX_THINK_MS {
                        capped += 1;
                    }
                    s.think_ms = g.min(MAX_THINK_MS);
                }
            }
            let templated = [Some(&s.path), s.body.as_ref()]
                .into_iter()
                .flatten()
                .chain(s.headers.values())
                .any(|t| has_braces(t));
            if templated {
                report.note(format!(
                    "{flow_name}: \"{}\" holds \"{{{{\" as recorded, which the engine reads as a template: edit it",
                    s.name
                ));
            }
            steps.push(s);
            returned.push(e.returned.clone());
        }
        captures::link(&flow_name, &mut steps, &returned, &mut report);
        report.note(format!(
            "flow \"{flow_name}\": {} steps from page \"{title}\"",
            steps.len()
        ));
        flows.push(FlowOut {
            name: flow_name,
            steps,
        });
    }
    for (why, list) in &dropped {
        let shown: Vec<&str> = list.iter().take(5).map(String::as_str).collect();
        report.note(format!(
            "dropped {} request(s), {why}: {}{}",
            list.len(),
            shown.join(", "),
            if list.len() > 5 { ", …" } else { "" }
        ));
    }
    if capped > 0 {
        report.note(format!(
            "{capped} recorded pause(s) over {} s capped at {} s of think time",
            MAX_THINK_MS / 1000,
            MAX_THINK_MS / 1000
        ));
    }
    if flows.is_empty() {
        return Err(err(
            "no request left to import (see the report above)".into()
        ));
    }
    if opts.target.is_some() {
        report.note(format!("{origin} replaced by {target}"));
    }
    let name = unique_name(&stem, &mut BTreeSet::new(), 64);
    Ok((super::config(&name, &target, &flows), report))
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|h| Some((s(h, "name")?.to_string(), s(h, "value")?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads one entry; an error names the field (`log.entries[3].request.url`).
fn entry(e: &Value, at: &str) -> Result<Entry, String> {
    let req = e
        .get("request")
        .filter(|r| r.is_object())
        .ok_or_else(|| format!("{at}.request: missing"))?;
    let method = s(req, "method")
        .ok_or_else(|| format!("{at}.request.method: missing"))?
        .to_ascii_uppercase();
    let url = s(req, "url")
        .ok_or_else(|| format!("{at}.request.url: missing"))?
        .to_string();
    let resp = e.get("response");
    let status = resp
        .and_then(|r| r.get("status"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(999) as u16;
    let post = req.get("postData");
    let body = post.and_then(|p| match s(p, "text") {
        Some(t) => Some(t.to_string()),
        None => {
            let ps = pairs(p.get("params"));
            (!ps.is_empty()).then(|| {
                ps.iter()
                    .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&")
            })
        }
    });
    let body_type = post
        .and_then(|p| s(p, "mimeType"))
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let content = resp.and_then(|r| r.get("content"));
    let mime = content
        .and_then(|c| s(c, "mimeType"))
        .unwrap_or("")
        .to_string();
    let text = content.and_then(|c| s(c, "text")).map(|t| {
        if content.and_then(|c| s(c, "encoding")) == Some("base64") {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(t.trim())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        } else {
            t.to_string()
        }
    });
    let json = text
        .as_deref()
        .filter(|t| mime.contains("json") || t.trim_start().starts_with(['{', '[']))
        .and_then(|t| serde_json::from_str(t).ok());
    let started = s(e, "startedDateTime").unwrap_or("");
    Ok(Entry {
        page: s(e, "pageref").map(str::to_string),
        start_ms: parse_time_ms(started),
        time_ms: e.get("time").and_then(Value::as_f64).unwrap_or(0.0),
        method,
        url,
        headers: pairs(req.get("headers")),
        body,
        body_type,
        status,
        resource_type: s(e, "_resourceType").unwrap_or("").to_ascii_lowercase(),
        mime,
        returned: Returned {
            json,
            headers: pairs(resp.and_then(|r| r.get("headers"))),
        },
    })
}

fn form_encode(s: &str) -> String {
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

/// Why a request is a static asset, or `None`.
fn asset_reason(path: &str, resource_type: &str, mime: &str) -> Option<&'static str> {
    const TYPES: &[&str] = &[
        "image",
        "stylesheet",
        "script",
        "font",
        "media",
        "manifest",
        "texttrack",
    ];
    const EXTS: &[&str] = &[
        "js", "mjs", "css", "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif", "bmp",
        "woff", "woff2", "ttf", "otf", "eot", "map", "mp4", "webm", "mp3", "ogg", "wav", "wasm",
    ];
    if TYPES.contains(&resource_type) {
        return Some("by the browser's resource type");
    }
    let m = mime.to_ascii_lowercase();
    if m.starts_with("image/")
        || m.starts_with("font/")
        || m.starts_with("video/")
        || m.starts_with("audio/")
        || m.starts_with("text/css")
        || m.contains("javascript")
        || m.contains("wasm")
    {
        return Some("by content type");
    }
    let bare = path.split('?').next().unwrap_or(path);
    let last = bare.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((_, ext)) if EXTS.contains(&ext.to_ascii_lowercase().as_str()) => {
            Some("by file extension")
        }
        _ => None,
    }
}

/// `startedDateTime` (ISO 8601: `2026-12-03T07:45:06.123Z` or with an
/// offset `+01:00`) as Unix milliseconds.
fn parse_time_ms(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &t[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let f = &frac[..digits];
        ms = format!("{f:0<3}")[..3].parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest.as_bytes().first() {
        None | Some(b'Z') | Some(b'z') => 0,
        Some(&c @ (b'+' | b'-')) => {
            let r = &rest[1..];
            let (oh, om) = r.split_once(':').unwrap_or((r.get(..2)?, r.get(2..)?));
            let m = oh.parse::<i64>().ok()? * 60 + om.parse::<i64>().ok()?;
            if c == b'-' { -m } else { m }
        }
        _ => return None,
    };
    // days from civil (Howard Hinnant)
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60) * 1000) + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_with_zones_and_fractions() {
        assert_eq!(parse_time_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            parse_time_ms("2026-12-03T07:45:06.123Z"),
            Some(1_796_283_906_123)
        );
        assert_eq!(
            parse_time_ms("2026-12-03T08:45:06.1+01:00"),
            Some(1_796_283_906_100)
        );
        assert_eq!(
            parse_time_ms("2026-12-03T07:45:06.123456Z"),
            Some(1_796_283_906_123)
        );
        assert_eq!(parse_time_ms("yesterday"), None);
    }

    #[test]
    fn assets_by_type_mime_or_extension() {
        assert!(asset_reason("/a.css?v=1", "", "").is_some());
        assert!(asset_reason("/logo", "image", "").is_some());
        assert!(asset_reason("/x", "", "application/javascript").is_some());
        assert!(asset_reason("/api/users", "fetch", "application/json").is_none());
        assert!(asset_reason("/index.html", "document", "text/html").is_none());
    }
}
