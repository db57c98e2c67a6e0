//! The HTTP version a load unit speaks (`http`: `"1.1"`, `"2"`, `"auto"`)
//! and how many requests one connection carries at once (`streams`): both
//! given at the top level, overridden per endpoint and per flow (a flow's
//! steps use the flow's), and checked together, because `streams` above 1
//! means HTTP/2 (issue #30). What `"auto"` becomes is decided by ALPN when
//! a run starts (`plan::alpn`), never here: validation stays offline.

use super::{Config, Endpoint, Problem};
use serde::{Deserialize, Serialize};

/// Most `streams` per connection: h2load's `-m` is typically 1–100, and
/// servers advertise 100–250 (nginx `http2_max_concurrent_streams` 128,
/// Envoy 100 by default, Go 250); 1,000 leaves room for a server tuned up
/// without letting one connection hold an unbounded number of requests.
pub const MAX_STREAMS: u32 = 1000;

/// The config's `http`: which protocol a unit's connections speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    /// `"1.1"` (the default): one request at a time per connection.
    #[default]
    Http1,
    /// `"2"`: HTTP/2 — by ALPN over TLS (a server that refuses it fails the
    /// requests as `protocol` errors), with prior knowledge (h2c) over
    /// plain `http://`.
    Http2,
    /// `"auto"`: HTTP/2 when an `https://` server offers it by ALPN, else
    /// HTTP/1.1; plain `http://` is HTTP/1.1.
    Auto,
}

impl HttpVersion {
    pub const ALL: [HttpVersion; 3] = [HttpVersion::Http1, HttpVersion::Http2, HttpVersion::Auto];

    /// As the config writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http1 => "1.1",
            HttpVersion::Http2 => "2",
            HttpVersion::Auto => "auto",
        }
    }

    /// `"1.1", "2" or "auto"`, for messages.
    fn choices() -> String {
        let all: Vec<String> = Self::ALL
            .iter()
            .map(|v| format!("\"{}\"", v.as_str()))
            .collect();
        format!("{}, {} or {}", all[0], all[1], all[2])
    }
}

impl schemars::JsonSchema for HttpVersion {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HttpVersion".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let all: Vec<&str> = HttpVersion::ALL.iter().map(|v| v.as_str()).collect();
        schemars::json_schema!({"type": "string", "enum": all})
    }
}

impl Serialize for HttpVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HttpVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HttpVersion, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HttpVersion;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", HttpVersion::choices())
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<HttpVersion, E> {
                HttpVersion::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "unknown HTTP version \"{s}\" (one of {})",
                            HttpVersion::choices()
                        ))
                    })
            }
            // `"http": 2` is the likeliest slip: say to quote it.
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<HttpVersion, E> {
                Err(E::custom(format!(
                    "write the version as a string (\"{n}\"): one of {}",
                    HttpVersion::choices()
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<HttpVersion, E> {
                Err(E::custom(format!(
                    "{n} is not an HTTP version: one of {}",
                    HttpVersion::choices()
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<HttpVersion, E> {
                Err(E::custom(format!(
                    "write the version as a string (\"{n}\"): one of {}",
                    HttpVersion::choices()
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Config {
    /// The `http` a unit (an endpoint, or a flow as [`super::Flow::as_unit`])
    /// speaks: its own, else the top level's, else `"1.1"`.
    pub fn http_of(&self, unit: &Endpoint) -> HttpVersion {
        // gRPC runs over HTTP/2 only (its own `http: "1.1"` is refused)
        if unit.grpc.is_some() {
            return HttpVersion::Http2;
        }
        unit.http.or(self.http).unwrap_or_default()
    }

    /// The `streams` per connection of a unit: its own, else the top
    /// level's, else 1.
    pub fn streams_of(&self, unit: &Endpoint) -> u32 {
        unit.streams.or(self.streams).unwrap_or(1)
    }
}

/// The problems of `http` and `streams`: each `streams` within
/// 1–[`MAX_STREAMS`], and no unit with more than one stream per connection
/// over HTTP/1.1 (which carries one request at a time). `units` are the
/// config's load units with their field paths (`endpoints[0]`, `flows[1]`).
pub fn problems(c: &Config, units: &[(String, Endpoint)]) -> Vec<Problem> {
    let mut out = Vec::new();
    let range = |at: String, n: u32, out: &mut Vec<Problem>| {
        if !(1..=MAX_STREAMS).contains(&n) {
            out.push(Problem::new(
                at,
                format!("must be 1 to {MAX_STREAMS} (requests in flight per connection), got {n}"),
            ));
        }
    };
    if let Some(n) = c.streams {
        range("streams".into(), n, &mut out);
    }
    let needs_h2 = |n: u32| {
        format!(
            "{n} streams per connection need HTTP/2: set `http` to \"2\" or \"auto\" \
             (HTTP/1.1 carries one request at a time per connection)"
        )
    };
    let mut top_level_said = false;
    for (at, unit) in units {
        if let Some(n) = unit.streams {
            range(format!("{at}.streams"), n, &mut out);
        }
        let streams = c.streams_of(unit);
        if streams <= 1 || c.http_of(unit) != HttpVersion::Http1 {
            continue;
        }
        // Said where the user can fix it: the unit's own field, else the
        // top level's (once).
        if unit.streams.is_some() {
            out.push(Problem::new(format!("{at}.streams"), needs_h2(streams)));
        } else if unit.http.is_some() {
            out.push(Problem::new(
                format!("{at}.http"),
                format!(
                    "\"1.1\" with the top-level streams {streams}: {}; or give this unit \"streams\": 1",
                    needs_h2(streams)
                ),
            ));
        } else if !top_level_said {
            top_level_said = true;
            out.push(Problem::new("streams", needs_h2(streams)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str, endpoint: &str, flow: &str) -> Result<Config, String> {
        Config::from_json(&format!(
            r#"{{"target": "http://127.0.0.1:1", "stages": [{{"duration": "1s", "target": 4}}], {extra}
                "endpoints": [{{"name": "a", "path": "/" {endpoint}}}],
                "flows": [{{"name": "f", "steps": [{{"name": "s", "path": "/"}}] {flow}}}]}}"#
        ))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn http_and_streams_default_and_override_per_unit() {
        let c = config("", "", "").unwrap();
        let units = c.units();
        assert_eq!(c.http_of(&units[0]), HttpVersion::Http1);
        assert_eq!((c.streams_of(&units[0]), c.streams_of(&units[1])), (1, 1));
        let c = config(
            r#""http": "2", "streams": 16,"#,
            r#", "http": "auto", "streams": 4"#,
            r#", "http": "1.1", "streams": 1"#,
        )
        .unwrap();
        let units = c.units();
        assert_eq!(
            (c.http_of(&units[0]), c.streams_of(&units[0])),
            (HttpVersion::Auto, 4)
        );
        assert_eq!(
            (c.http_of(&units[1]), c.streams_of(&units[1])),
            (HttpVersion::Http1, 1)
        );
        // a flow's steps take the flow's
        let rows = c.rows();
        assert_eq!(
            (rows[1].http, rows[1].streams),
            (Some(HttpVersion::Http1), Some(1))
        );
        // the resolved config says what was written, and reads back the same
        let again = Config::from_json(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }

    /// Each bad value and the `path: reason` its error must contain.
    #[test]
    fn bad_values_name_the_field_and_what_is_allowed() {
        let cases = [
            (
                r#""http": "3","#,
                "",
                "",
                r#"http: unknown HTTP version "3" (one of "1.1", "2" or "auto")"#,
            ),
            (
                r#""http": 2,"#,
                "",
                "",
                r#"http: write the version as a string ("2")"#,
            ),
            (
                "",
                r#", "http": "h2""#,
                "",
                r#"endpoints[0].http: unknown HTTP version "h2""#,
            ),
            (
                "",
                "",
                r#", "http": 1.1"#,
                r#"flows[0].http: write the version as a string ("1.1")"#,
            ),
            (
                r#""http": "2", "streams": 0,"#,
                "",
                "",
                "streams: must be 1 to 1000 (requests in flight per connection), got 0",
            ),
            (
                r#""http": "2","#,
                r#", "streams": 1001"#,
                "",
                "endpoints[0].streams: must be 1 to 1000",
            ),
            (
                "",
                r#", "streams": -1"#,
                "",
                "endpoints[0].streams: invalid value",
            ),
            (
                r#""streams": 8,"#,
                "",
                "",
                "streams: 8 streams per connection need HTTP/2: set `http` to \"2\" or \"auto\"",
            ),
            (
                "",
                r#", "streams": 8"#,
                "",
                "endpoints[0].streams: 8 streams per connection need HTTP/2",
            ),
            (
                r#""http": "2", "streams": 8,"#,
                r#", "http": "1.1""#,
                "",
                "endpoints[0].http: \"1.1\" with the top-level streams 8",
            ),
            (
                r#""http": "auto","#,
                "",
                r#", "http": "1.1", "streams": 2"#,
                "flows[0].streams: 2 streams per connection need HTTP/2",
            ),
            ("", "", "", ""),
        ];
        for (top, ep, flow, want) in cases {
            match config(top, ep, flow) {
                Ok(_) if want.is_empty() => {}
                Ok(_) => panic!("{top} {ep} {flow}: accepted, want {want:?}"),
                Err(e) => assert!(
                    !want.is_empty() && e.contains(want),
                    "{top} {ep} {flow}: got {e:?}, want {want:?}"
                ),
            }
        }
        // a step has no http of its own: its flow's applies
        let e = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "stages": [{"duration": "1s", "target": 1}],
                "flows": [{"name": "f", "steps": [{"name": "s", "path": "/", "http": "2"}]}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("flows[0].steps[0].http: unknown field `http`"),
            "{e}"
        );
    }
}
