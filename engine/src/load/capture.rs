//! Reading values out of a response: a flow step's `capture` and an
//! endpoint's or step's `checks` (one selector grammar for both).
//!
//! A selector is `{"json": "/token"}` (a JSON Pointer, RFC 6901, into the
//! body), `{"header": "x-session"}` (the first such response header) or
//! `{"regex": "id=(\\d+)"}` (the first group of the first match in the
//! body). The framer keeps a response's head, and its body up to
//! `max_capture_body`, only for the steps that need them.

use crate::load::grpc::Code;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a capture reads, as the config writes it: exactly one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectorSpec {
    /// A JSON Pointer into the response body (`/token`, `/items/0/id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// A response header's name (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A regular expression on the body; its first group is the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// A compiled selector.
#[derive(Debug, Clone)]
pub enum Selector {
    Json(String),
    Header(String),
    Regex(regex::bytes::Regex),
}

impl Selector {
    /// Compiles a selector; the error says what is wrong (the caller adds
    /// the field path).
    pub fn compile(spec: &SelectorSpec) -> Result<Selector, String> {
        match (&spec.json, &spec.header, &spec.regex) {
            (Some(p), None, None) => {
                if !p.is_empty() && !p.starts_with('/') {
                    return Err(format!(
                        "json: \"{p}\" is not a JSON Pointer (they start with '/', as in \"/token\")"
                    ));
                }
                Ok(Selector::Json(p.clone()))
            }
            (None, Some(h), None) => {
                if h.is_empty() || !h.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                    return Err(format!("header: \"{h}\" is not a header name"));
                }
                Ok(Selector::Header(h.to_ascii_lowercase()))
            }
            (None, None, Some(r)) => {
                let re = regex::bytes::RegexBuilder::new(r)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("regex: {e}"))?;
                if re.captures_len() < 2 {
                    return Err(format!(
                        "regex: \"{r}\" has no group; the first group \"( )\" is the value"
                    ));
                }
                Ok(Selector::Regex(re))
            }
            (None, None, None) => Err("give one of json, header or regex".into()),
            _ => Err("give only one of json, header or regex".into()),
        }
    }

    /// Whether the selector reads the body (else only the head).
    pub fn needs_body(&self) -> bool {
        !matches!(self, Selector::Header(_))
    }

    /// The selector as written, for messages.
    pub fn describe(&self) -> String {
        match self {
            Selector::Json(p) => format!("json \"{p}\""),
            Selector::Header(h) => format!("header \"{h}\""),
            Selector::Regex(r) => format!("regex \"{}\"", r.as_str()),
        }
    }
}

/// A check as the config writes it: what it looks at (`status`,
/// `duration_lt`, `body_contains`, or a selector `json`/`header`/`regex`)
/// and, for a selector, what must hold (`exists`, `equals`, `matches`;
/// `exists: true` when none is given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// The status code is this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The response took less than this (from the send to its last byte).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_lt: Option<crate::duration::Dur>,
    /// The body holds this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// A gRPC call's `grpc-status` is this: its name (`"OK"`,
    /// `"NOT_FOUND"`) or its number (`0`, `5`); only on a unit with `grpc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub grpc_status: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// The selector finds something (`true`) or nothing (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// The selected value equals this: for `json`, as JSON (`true`, `42`,
    /// `"ok"`); for `header` and `regex`, a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
    /// The selected value (a JSON value as its text, strings unquoted)
    /// matches this regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
}

/// A compiled check.
#[derive(Debug, Clone)]
pub enum Check {
    Status(u16),
    /// Latency under this many µs.
    Faster(u64),
    BodyContains(Vec<u8>),
    /// The call's `grpc-status` is this code.
    GrpcStatus(Code),
    Select(Selector, Pred),
}

/// What must hold of a selected value.
#[derive(Debug, Clone)]
pub enum Pred {
    Exists(bool),
    Equals(serde_json::Value),
    Matches(regex::Regex),
}

impl Check {
    /// Compiles a check; the error says what is wrong (the caller adds the
    /// field path).
    pub fn compile(spec: &CheckSpec) -> Result<Check, String> {
        let selector = spec.json.is_some() || spec.header.is_some() || spec.regex.is_some();
        let subjects = [
            spec.status.is_some(),
            spec.duration_lt.is_some(),
            spec.body_contains.is_some(),
            spec.grpc_status.is_some(),
            selector,
        ];
        let preds = [
            spec.exists.is_some(),
            spec.equals.is_some(),
            spec.matches.is_some(),
        ];
        match subjects.iter().filter(|&&b| b).count() {
            0 => {
                return Err(
                    "give what to check: status, duration_lt, body_contains, grpc_status, or json/header/regex (with exists, equals or matches)".into(),
                );
            }
            1 => {}
            _ => return Err("one check looks at one thing: split it into two checks".into()),
        }
        if !selector && preds.iter().any(|&b| b) {
            return Err("exists, equals and matches go with json, header or regex".into());
        }
        if preds.iter().filter(|&&b| b).count() > 1 {
            return Err("give one of exists, equals or matches".into());
        }
        if let Some(code) = spec.status {
            if !(100..=599).contains(&code) {
                return Err(format!("status: {code} is not an HTTP status (100-599)"));
            }
            return Ok(Check::Status(code));
        }
        if let Some(d) = spec.duration_lt {
            return Ok(Check::Faster(d.0.as_micros().min(u64::MAX as u128) as u64));
        }
        if let Some(v) = &spec.grpc_status {
            return grpc_code(v).map(Check::GrpcStatus);
        }
        if let Some(text) = &spec.body_contains {
            if text.is_empty() {
                return Err("body_contains: give the text to look for".into());
            }
            return Ok(Check::BodyContains(text.as_bytes().to_vec()));
        }
        let sel = Selector::compile(&SelectorSpec {
            json: spec.json.clone(),
            header: spec.header.clone(),
            regex: spec.regex.clone(),
        })?;
        let pred = match (&spec.exists, &spec.equals, &spec.matches) {
            (Some(e), _, _) => Pred::Exists(*e),
            (_, Some(v), _) => {
                if !matches!(sel, Selector::Json(_)) && !v.is_string() {
                    return Err(format!(
                        "equals: a header or a regex group is text; write \"{v}\" as a string"
                    ));
                }
                Pred::Equals(v.clone())
            }
            (_, _, Some(m)) => Pred::Matches(
                regex::RegexBuilder::new(m)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("matches: {e}"))?,
            ),
            _ => Pred::Exists(true),
        };
        Ok(Check::Select(sel, pred))
    }

    /// Whether the check reads the body (else the head or nothing kept).
    pub fn needs_body(&self) -> bool {
        match self {
            Check::BodyContains(_) => true,
            Check::Select(s, _) => s.needs_body(),
            _ => false,
        }
    }

    /// Whether the check reads the response head.
    pub fn needs_head(&self) -> bool {
        matches!(self, Check::Select(Selector::Header(_), _))
    }

    /// Judges a complete response (`grpc`: a gRPC call's status, when it
    /// had a readable one). `scratch` is reused for selected values.
    pub fn passes(
        &self,
        status: u16,
        grpc: Option<Code>,
        latency_us: u64,
        reader: &mut Reader<'_>,
        scratch: &mut Vec<u8>,
    ) -> bool {
        match self {
            Check::Status(code) => status == *code,
            Check::Faster(us) => latency_us < *us,
            Check::GrpcStatus(code) => grpc == Some(*code),
            Check::BodyContains(text) => {
                reader.kept.over.is_none()
                    && reader
                        .kept
                        .body
                        .windows(text.len())
                        .any(|w| w == text.as_slice())
            }
            Check::Select(Selector::Json(pointer), Pred::Equals(want)) => {
                reader.json_value(pointer).is_ok_and(|v| json_eq(&v, want))
            }
            Check::Select(sel, pred) => {
                scratch.clear();
                let found = reader.select(sel, scratch).is_ok();
                match pred {
                    Pred::Exists(want) => found == *want,
                    Pred::Equals(want) => {
                        found
                            && want
                                .as_str()
                                .is_some_and(|w| w.as_bytes() == scratch.as_slice())
                    }
                    Pred::Matches(re) => {
                        found && std::str::from_utf8(scratch).is_ok_and(|s| re.is_match(s))
                    }
                }
            }
        }
    }
}

/// JSON equality with numbers compared by value: `0` equals `0.0` (a
/// protobuf `double` that holds a whole number is written `0.0`; grpcurl
/// and k6 print `0`, and a check `equals: 0` must hold on it).
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) if x.is_f64() || y.is_f64() => p == q,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| json_eq(p, q)))
        }
        _ => a == b,
    }
}

/// A gRPC status as a check or a threshold's tag names it: the spec's
/// name (`"UNAVAILABLE"`) or its number (`14`, or `"14"` as a tag writes it).
pub fn grpc_code(v: &serde_json::Value) -> Result<Code, String> {
    let bad = || {
        format!(
            "grpc_status: {v} is not a gRPC status; give its name ({}) or its number (0-16)",
            crate::load::grpc::CODES.map(Code::name).join(", ")
        )
    };
    match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .filter(|&n| n <= 16)
            .map(|n| Code::from_u32(n as u32))
            .ok_or_else(bad),
        serde_json::Value::String(s) => match s.parse::<u64>() {
            Ok(n) => grpc_code(&serde_json::Value::from(n)),
            Err(_) => Code::from_name(&s.to_ascii_uppercase()).ok_or_else(bad),
        },
        _ => Err(bad()),
    }
}

/// A response as kept for captures.
#[derive(Debug, Clone, Copy)]
pub struct Kept<'a> {
    /// The status line and headers.
    pub head: &'a [u8],
    /// The body (de-chunked), up to the limit.
    pub body: &'a [u8],
    /// The body was longer than the limit: `body` is empty.
    pub over: Option<usize>,
}

/// Why a selector found nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    NotFound,
    NotJson(String),
    TooLarge(usize),
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Miss::NotFound => write!(f, "found nothing"),
            Miss::NotJson(e) => write!(f, "the body is not JSON ({e})"),
            Miss::TooLarge(n) => write!(
                f,
                "the body is over max_capture_body ({n} bytes); raise it to capture from it"
            ),
        }
    }
}

/// Reads one response for several selectors and checks. A JSON Pointer is
/// followed through the body without building a document: keys and values
/// off the path are skipped as they are parsed, and the value at the end
/// is handed back as its raw text, so a check costs no allocation.
pub struct Reader<'a> {
    kept: Kept<'a>,
}

impl<'a> Reader<'a> {
    pub fn new(kept: Kept<'a>) -> Reader<'a> {
        Reader { kept }
    }

    /// The raw JSON text of the value at `pointer` in the body.
    pub fn json_raw(&self, pointer: &str) -> Result<&'a serde_json::value::RawValue, Miss> {
        if let Some(n) = self.kept.over {
            return Err(Miss::TooLarge(n));
        }
        seek(self.kept.body, pointer)
    }

    /// The JSON value at `pointer` in the body.
    pub fn json_value(&self, pointer: &str) -> Result<serde_json::Value, Miss> {
        let raw = self.json_raw(pointer)?;
        serde_json::from_str(raw.get()).map_err(|e| Miss::NotJson(e.to_string()))
    }

    /// Appends the value `sel` selects to `out`.
    pub fn select(&mut self, sel: &Selector, out: &mut Vec<u8>) -> Result<(), Miss> {
        if sel.needs_body()
            && let Some(n) = self.kept.over
        {
            return Err(Miss::TooLarge(n));
        }
        match sel {
            Selector::Header(name) => {
                let v = header(self.kept.head, name).ok_or(Miss::NotFound)?;
                out.extend_from_slice(v);
            }
            Selector::Regex(re) => {
                let caps = re.captures(self.kept.body).ok_or(Miss::NotFound)?;
                let m = caps.get(1).ok_or(Miss::NotFound)?;
                out.extend_from_slice(m.as_bytes());
            }
            Selector::Json(pointer) => {
                let raw = self.json_raw(pointer)?.get();
                if raw == "null" {
                    return Err(Miss::NotFound);
                }
                if raw.starts_with('"') {
                    // a string as it is: borrowed unless it has escapes
                    match serde_json::from_str::<&str>(raw) {
                        Ok(s) => out.extend_from_slice(s.as_bytes()),
                        Err(_) => {
                            let s: String = serde_json::from_str(raw)
                                .map_err(|e| Miss::NotJson(e.to_string()))?;
                            out.extend_from_slice(s.as_bytes());
                        }
                    }
                } else {
                    out.extend_from_slice(raw.as_bytes());
                }
            }
        }
        Ok(())
    }
}

/// Follows a JSON Pointer (RFC 6901) through `body`.
fn seek<'a>(body: &'a [u8], pointer: &str) -> Result<&'a serde_json::value::RawValue, Miss> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = Seek { rest: pointer }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| Miss::NotJson(e.to_string()))?;
    found.ok_or(Miss::NotFound)
}

/// The pointer still to follow, `/a/0/b` (empty: this value is the one).
struct Seek<'p> {
    rest: &'p str,
}

impl<'p> Seek<'p> {
    /// The next token, unescaped (`~1` is `/`, `~0` is `~`), and what follows.
    fn split(&self) -> (std::borrow::Cow<'p, str>, &'p str) {
        let rest = &self.rest[1..];
        let (token, after) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let token = if token.contains('~') {
            std::borrow::Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
        } else {
            std::borrow::Cow::Borrowed(token)
        };
        (token, after)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Seek<'_> {
    type Value = Option<&'de serde_json::value::RawValue>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.rest.is_empty() {
            return <&serde_json::value::RawValue>::deserialize(d).map(Some);
        }
        d.deserialize_any(self)
    }
}

/// A key compared with a token as it is parsed.
struct KeyIs<'t>(&'t str);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

impl<'de> serde::de::Visitor<'de> for Seek<'_> {
    type Value = Option<&'de serde_json::value::RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let (token, after) = self.split();
        let mut found = None;
        while let Some(hit) = m.next_key_seed(KeyIs(&token))? {
            if hit && found.is_none() {
                found = m.next_value_seed(Seek { rest: after })?;
            } else {
                m.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        let (token, after) = self.split();
        // RFC 6901: an index is digits without a leading zero
        let index: Option<usize> = (token == "0" || !token.starts_with('0'))
            .then(|| token.parse().ok())
            .flatten();
        let mut found = None;
        let mut i = 0;
        loop {
            if Some(i) == index {
                match s.next_element_seed(Seek { rest: after })? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if s.next_element::<serde::de::IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }

    // A scalar where the pointer goes on: nothing there.
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Every value of response headers named `name` (lower case), in order.
pub fn headers<'h>(head: &'h [u8], name: &str) -> Vec<&'h [u8]> {
    let mut slots = [httparse::EMPTY_HEADER; crate::framing::MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    if resp.parse(head).is_err() {
        return Vec::new();
    }
    resp.headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
        .collect()
}

fn header<'h>(head: &'h [u8], name: &str) -> Option<&'h [u8]> {
    headers(head, name).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(json: &str) -> Selector {
        Selector::compile(&serde_json::from_str(json).unwrap()).unwrap()
    }

    const HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\nX-Session: abc\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n";

    fn get(s: &Selector, body: &[u8]) -> Result<String, Miss> {
        let mut r = Reader::new(Kept {
            head: HEAD,
            body,
            over: None,
        });
        let mut out = Vec::new();
        r.select(s, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn selects_by_pointer_header_and_regex() {
        let body = br#"{"token":"t0k","n":{"id":42},"list":[1,{"x":true}],"nul":null}"#;
        assert_eq!(get(&sel(r#"{"json":"/token"}"#), body).unwrap(), "t0k");
        assert_eq!(get(&sel(r#"{"json":"/n/id"}"#), body).unwrap(), "42");
        assert_eq!(
            get(&sel(r#"{"json":"/list/1"}"#), body).unwrap(),
            r#"{"x":true}"#
        );
        assert_eq!(get(&sel(r#"{"json":"/nope"}"#), body), Err(Miss::NotFound));
        assert_eq!(get(&sel(r#"{"json":"/nul"}"#), body), Err(Miss::NotFound));
        assert!(matches!(
            get(&sel(r#"{"json":"/a"}"#), b"<html>"),
            Err(Miss::NotJson(_))
        ));
        assert_eq!(get(&sel(r#"{"header":"X-SESSION"}"#), b"").unwrap(), "abc");
        assert_eq!(
            get(&sel(r#"{"header":"x-missing"}"#), b""),
            Err(Miss::NotFound)
        );
        assert_eq!(
            get(&sel(r#"{"regex":"id=(\\d+)"}"#), b"a id=77 id=8").unwrap(),
            "77"
        );
        assert_eq!(
            get(&sel(r#"{"regex":"id=(\\d+)"}"#), b"none"),
            Err(Miss::NotFound)
        );
        assert_eq!(headers(HEAD, "set-cookie"), [b"a=1" as &[u8], b"b=2"]);
    }

    #[test]
    fn an_over_long_body_fails_body_selectors_only() {
        let mut r = Reader::new(Kept {
            head: HEAD,
            body: b"",
            over: Some(65536),
        });
        let mut out = Vec::new();
        let e = r.select(&sel(r#"{"json":"/t"}"#), &mut out).unwrap_err();
        assert!(
            e.to_string().contains("max_capture_body (65536 bytes)"),
            "{e}"
        );
        r.select(&sel(r#"{"header":"x-session"}"#), &mut out)
            .unwrap();
    }

    fn check(json: &str) -> Check {
        Check::compile(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn checks_judge_status_time_body_and_selected_values() {
        let body = br#"{"id":42,"ok":true,"name":"ann","tags":["a"],"deep":{"a/b":[0,{"x~y":"z\u0021"}]}}"#;
        let mut reader = Reader::new(Kept {
            head: HEAD,
            body,
            over: None,
        });
        let mut scratch = Vec::new();
        let mut run = |c: &str| check(c).passes(200, None, 150_000, &mut reader, &mut scratch);
        for (c, want) in [
            (r#"{"status": 200}"#, true),
            (r#"{"status": 201}"#, false),
            (r#"{"duration_lt": "200ms"}"#, true),
            (r#"{"duration_lt": "150ms"}"#, false),
            (r#"{"body_contains": "\"ok\":true"}"#, true),
            (r#"{"body_contains": "nope"}"#, false),
            (r#"{"json": "/id"}"#, true),
            (r#"{"json": "/id", "exists": true}"#, true),
            (r#"{"json": "/missing", "exists": false}"#, true),
            (r#"{"json": "/missing"}"#, false),
            (r#"{"json": "/ok", "equals": true}"#, true),
            (r#"{"json": "/id", "equals": 42}"#, true),
            (r#"{"json": "/id", "equals": "42"}"#, false),
            (r#"{"json": "/name", "matches": "^a.n$"}"#, true),
            (r#"{"header": "x-session", "equals": "abc"}"#, true),
            (r#"{"header": "x-session", "matches": "HIT|MISS"}"#, false),
            (r#"{"regex": "\"name\":\"(\\w+)\"", "equals": "ann"}"#, true),
            (r#"{"json": "/deep/a~1b/1/x~0y", "equals": "z!"}"#, true),
            (r#"{"json": "/deep/a~1b/01"}"#, false),
            (r#"{"json": "/tags/0", "equals": "a"}"#, true),
            (r#"{"json": "/tags/1"}"#, false),
            (r#"{"json": "/id/x"}"#, false),
        ] {
            assert_eq!(run(c), want, "{c}");
        }
    }

    #[test]
    fn equals_compares_numbers_by_value() {
        let kept = Kept {
            head: b"",
            body: br#"{"ratio": 0.0, "n": 3, "s": {"a": 1.0, "l": [2.0]}}"#,
            over: None,
        };
        let mut scratch = Vec::new();
        for (json, want) in [
            (r#"{"json": "/ratio", "equals": 0}"#, true),
            (r#"{"json": "/n", "equals": 3.0}"#, true),
            (r#"{"json": "/s", "equals": {"a": 1, "l": [2]}}"#, true),
            (r#"{"json": "/ratio", "equals": 0.5}"#, false),
            (r#"{"json": "/n", "equals": "3"}"#, false),
        ] {
            let check = Check::compile(&serde_json::from_str(json).unwrap()).unwrap();
            let ok = check.passes(200, None, 1, &mut Reader::new(kept), &mut scratch);
            assert_eq!(ok, want, "{json}");
        }
    }

    #[test]
    fn grpc_status_checks_read_the_calls_status() {
        let kept = Kept {
            head: b"",
            body: b"",
            over: None,
        };
        let mut scratch = Vec::new();
        for (json, grpc, want) in [
            (r#"{"grpc_status": "OK"}"#, Some(Code::Ok), true),
            (r#"{"grpc_status": "ok"}"#, Some(Code::Ok), true),
            (r#"{"grpc_status": 0}"#, Some(Code::Ok), true),
            (r#"{"grpc_status": "14"}"#, Some(Code::Unavailable), true),
            (r#"{"grpc_status": "UNAVAILABLE"}"#, Some(Code::Ok), false),
            // an answer without a readable status fails every status check
            (r#"{"grpc_status": "OK"}"#, None, false),
        ] {
            let check = Check::compile(&serde_json::from_str(json).unwrap()).unwrap();
            let ok = check.passes(200, grpc, 1, &mut Reader::new(kept), &mut scratch);
            assert_eq!(ok, want, "{json} on {grpc:?}");
        }
    }

    #[test]
    fn bad_checks_are_refused() {
        for (json, want) in [
            (r#"{}"#, "give what to check"),
            (
                r#"{"status": 200, "json": "/a"}"#,
                "one check looks at one thing",
            ),
            (
                r#"{"status": 200, "exists": true}"#,
                "go with json, header or regex",
            ),
            (
                r#"{"json": "/a", "exists": true, "equals": 1}"#,
                "one of exists, equals or matches",
            ),
            (r#"{"header": "x", "equals": 3}"#, "write \"3\" as a string"),
            (r#"{"status": 99}"#, "not an HTTP status"),
            (r#"{"json": "/a", "matches": "("}"#, "matches:"),
            (r#"{"body_contains": ""}"#, "give the text"),
            (
                r#"{"grpc_status": "FINE"}"#,
                "\"FINE\" is not a gRPC status",
            ),
            (r#"{"grpc_status": 17}"#, "17 is not a gRPC status"),
            (r#"{"grpc_status": -1}"#, "not a gRPC status"),
            (r#"{"grpc_status": true}"#, "not a gRPC status"),
            (
                r#"{"grpc_status": 0, "status": 200}"#,
                "one check looks at one thing",
            ),
        ] {
            let e = Check::compile(&serde_json::from_str(json).unwrap()).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
        let e = serde_json::from_str::<CheckSpec>(r#"{"stauts": 200}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `stauts`"), "{e}");
    }

    #[test]
    fn bad_selectors_are_refused() {
        for (json, want) in [
            (r#"{}"#, "give one of"),
            (r#"{"json":"/a","header":"b"}"#, "only one"),
            (r#"{"json":"token"}"#, "not a JSON Pointer"),
            (r#"{"header":"a b"}"#, "not a header name"),
            (r#"{"regex":"id=\\d+"}"#, "has no group"),
            (r#"{"regex":"(unclosed"}"#, "regex:"),
        ] {
            let e = Selector::compile(&serde_json::from_str(json).unwrap()).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
    }
}
