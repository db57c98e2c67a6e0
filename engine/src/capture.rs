//! Reading values out of a response: a flow step's `capture` (one grammar
//! for every place that looks into a response, so checks can use it too).
//!
//! A selector is `{"json": "/token"}` (a JSON Pointer, RFC 6901, into the
//! body), `{"header": "x-session"}` (the first such response header) or
//! `{"regex": "id=(\\d+)"}` (the first group of the first match in the
//! body). The framer keeps a response's head, and its body up to
//! `max_capture_body`, only for the steps that need them.

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

/// Reads one response once for several selectors: the body is parsed as
/// JSON at most once.
pub struct Reader<'a> {
    kept: Kept<'a>,
    json: Option<Result<serde_json::Value, String>>,
}

impl<'a> Reader<'a> {
    pub fn new(kept: Kept<'a>) -> Reader<'a> {
        Reader { kept, json: None }
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
                let body = self.kept.body;
                let doc = self
                    .json
                    .get_or_insert_with(|| serde_json::from_slice(body).map_err(|e| e.to_string()));
                let doc = doc.as_ref().map_err(|e| Miss::NotJson(e.clone()))?;
                match doc.pointer(pointer) {
                    None | Some(serde_json::Value::Null) => return Err(Miss::NotFound),
                    Some(serde_json::Value::String(s)) => out.extend_from_slice(s.as_bytes()),
                    Some(v) => out.extend_from_slice(v.to_string().as_bytes()),
                }
            }
        }
        Ok(())
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
