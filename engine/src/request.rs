//! Requests rendered to bytes once per endpoint, before the run, and
//! written as they are for every request.

use crate::config::Method;
use crate::url::HttpUrl;
use std::collections::BTreeMap;

/// `User-Agent` sent unless the endpoint sets its own.
pub const USER_AGENT: &str = concat!("userflux/", env!("CARGO_PKG_VERSION"));

/// The whole HTTP/1.1 request: request line, headers, body.
pub fn render(
    method: Method,
    url: &HttpUrl,
    headers: &BTreeMap<String, String>,
    body: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let has = |name: &str| headers.keys().any(|k| k.eq_ignore_ascii_case(name));
    out.extend_from_slice(format!("{} {} HTTP/1.1\r\n", method.as_str(), url.path).as_bytes());
    if !has("host") {
        out.extend_from_slice(format!("Host: {}\r\n", url.authority()).as_bytes());
    }
    if !has("user-agent") {
        out.extend_from_slice(format!("User-Agent: {USER_AGENT}\r\n").as_bytes());
    }
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    let needs_length = matches!(method, Method::Post | Method::Put | Method::Patch);
    if body.is_some() || needs_length {
        out.extend_from_slice(
            format!("Content-Length: {}\r\n", body.map_or(0, str::len)).as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    if let Some(b) = body {
        out.extend_from_slice(b.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_line_headers_and_body() {
        let url = HttpUrl::parse("http://127.0.0.1:8080/api/orders?x=1").unwrap();
        let mut h = BTreeMap::new();
        h.insert("content-type".to_string(), "application/json".to_string());
        let r = String::from_utf8(render(Method::Post, &url, &h, Some("{\"item\":42}"))).unwrap();
        assert_eq!(
            r,
            format!(
                "POST /api/orders?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: {USER_AGENT}\r\ncontent-type: application/json\r\nContent-Length: 11\r\n\r\n{{\"item\":42}}"
            )
        );
    }

    #[test]
    fn user_host_wins_and_get_has_no_length() {
        let url = HttpUrl::parse("http://127.0.0.1/").unwrap();
        let mut h = BTreeMap::new();
        h.insert("HOST".to_string(), "example.test".to_string());
        let r = String::from_utf8(render(Method::Get, &url, &h, None)).unwrap();
        assert!(!r.contains("Host: 127.0.0.1"));
        assert!(r.contains("HOST: example.test\r\n"));
        assert!(!r.contains("Content-Length"));
        assert!(r.ends_with("\r\n\r\n"));
    }
}
