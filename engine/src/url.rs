//! `http://` and `https://` URLs: the target and endpoint addresses.
//!
//! Userflux speaks HTTP/1.1 over TCP or TLS, so a URL here is scheme, host,
//! optional port and a path with its query; nothing else is accepted, and
//! each refusal says why.

use std::fmt;

/// A parsed `http[s]://host[:port][/path][?query]` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https`: the connection is TLS.
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub path: String,
}

impl HttpUrl {
    pub fn parse(s: &str) -> Result<HttpUrl, String> {
        let lower = s.get(..8).unwrap_or("").to_ascii_lowercase();
        let (tls, rest) = if lower.starts_with("http://") {
            (false, &s[7..])
        } else if lower.starts_with("https://") {
            (true, &s[8..])
        } else {
            return Err(format!(
                "\"{s}\": expected a URL starting with http:// or https://"
            ));
        };
        let rest = rest.split('#').next().unwrap_or("");
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(format!(
                "\"{s}\": user information in URLs is not supported"
            ));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) =
            split_host_port(authority, default_port).map_err(|e| format!("\"{s}\": {e}"))?;
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!(
                "\"{s}\": the path contains spaces or control characters"
            ));
        }
        let path = if path.is_empty() {
            "/".to_string()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(HttpUrl {
            tls,
            host,
            port,
            path,
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// The `Host` header value: host, plus the port when it is not the
    /// scheme's default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// This URL's path joined with an endpoint path (`/v1` + `/users` = `/v1/users`).
    /// An empty endpoint path means this URL's own path and query.
    pub fn join(&self, path: &str) -> String {
        if path.is_empty() {
            return self.path.clone();
        }
        format!("{}{path}", self.base())
    }

    /// What [`HttpUrl::join`] puts before a non-empty endpoint path: this
    /// URL's path without its query and trailing `/`.
    pub fn base(&self) -> &str {
        self.path
            .split('?')
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme(), self.authority(), self.path)
    }
}

fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or("unclosed '[' in the host")?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err("unexpected characters after the IPv6 address".into()),
        };
        (&rest[..end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return Err(format!("invalid host \"{host}\""));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("invalid port \"{p}\"")),
        },
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_paths() {
        let cases = [
            ("http://127.0.0.1:8080", "127.0.0.1", 8080, "/"),
            ("http://localhost/api?x=1", "localhost", 80, "/api?x=1"),
            ("HTTP://127.0.0.1:1/a/b#frag", "127.0.0.1", 1, "/a/b"),
            ("http://[::1]:9000/x", "::1", 9000, "/x"),
            ("http://127.0.0.1:5?q", "127.0.0.1", 5, "/?q"),
            ("https://localhost/x", "localhost", 443, "/x"),
            ("HTTPS://127.0.0.1:8443", "127.0.0.1", 8443, "/"),
        ];
        for (s, host, port, path) in cases {
            let u = HttpUrl::parse(s).unwrap();
            assert_eq!(
                (u.host.as_str(), u.port, u.path.as_str()),
                (host, port, path),
                "{s}"
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_load() {
        for (s, why) in [
            (
                "ftp://127.0.0.1/",
                "expected a URL starting with http:// or https://",
            ),
            ("127.0.0.1:80", "http://"),
            ("http://:80/", "no host"),
            ("http://h:0/", "invalid port"),
            ("http://h:99999/", "invalid port"),
            ("http://u:p@h/", "user information"),
            ("http://h/a b", "spaces"),
        ] {
            let e = HttpUrl::parse(s).unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn joins_base_paths_and_renders_authority() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/v1/").unwrap();
        assert_eq!(u.join("/users"), "/v1/users");
        assert_eq!(HttpUrl::parse("http://h/").unwrap().join("/a"), "/a");
        assert_eq!(HttpUrl::parse("http://h/q?x=1").unwrap().join(""), "/q?x=1");
        assert_eq!(u.authority(), "127.0.0.1:8080");
        assert_eq!(
            HttpUrl::parse("http://[::1]/").unwrap().authority(),
            "[::1]"
        );
        let tls = HttpUrl::parse("https://h:443/a").unwrap();
        assert!(tls.tls);
        assert_eq!(
            (tls.authority(), tls.to_string()),
            ("h".into(), "https://h/a".into())
        );
        assert_eq!(HttpUrl::parse("https://h:80/").unwrap().authority(), "h:80");
    }
}
