//! A flow VU's cookie jar, for one iteration: `Set-Cookie` name=value
//! pairs kept with their path (RFC 6265 §5.1.4 path matching; the default
//! path is the request's directory), deleted by `Max-Age=0` or a past
//! `Expires`, sent back as one `Cookie` header on later steps. The jar is
//! emptied at each new iteration, so every iteration is a fresh session.
//! `Domain`, `Secure` and `HttpOnly` are not judged: a flow talks to the
//! hosts its config names.

use std::time::{Duration, SystemTime};

/// Most cookies one jar keeps (RFC 6265 §6.1 asks for at least 50 per
/// domain); past it the oldest goes. (A bit each in [`Jar::matching`].)
pub const MAX_COOKIES: usize = 64;

#[derive(Debug, Clone)]
struct Cookie {
    name: String,
    value: String,
    path: String,
    expires: Option<SystemTime>,
}

#[derive(Debug, Default)]
pub struct Jar {
    cookies: Vec<Cookie>,
}

impl Jar {
    pub fn clear(&mut self) {
        self.cookies.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Takes one `Set-Cookie` value received for a request to `path`.
    /// A malformed one (no `=`, empty name) is ignored, as browsers do.
    pub fn store(&mut self, set_cookie: &[u8], request_path: &str, now: SystemTime) {
        let Ok(text) = std::str::from_utf8(set_cookie) else {
            return;
        };
        let mut attrs = text.split(';');
        let Some((name, value)) = attrs.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return;
        }
        let mut path = None;
        let mut max_age: Option<i64> = None;
        let mut expires = None;
        for a in attrs {
            let (k, v) = a.split_once('=').unwrap_or((a, ""));
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("path") && v.starts_with('/') {
                path = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("max-age") {
                max_age = v.parse().ok().or(max_age);
            } else if k.eq_ignore_ascii_case("expires") {
                expires = httpdate::parse_http_date(v).ok();
            }
        }
        // Max-Age wins over Expires (RFC 6265 §5.3 step 3).
        let expires = match max_age {
            Some(s) if s <= 0 => Some(SystemTime::UNIX_EPOCH),
            Some(s) => Some(now + Duration::from_secs(s as u64)),
            None => expires,
        };
        let path = path.unwrap_or_else(|| default_path(request_path));
        self.cookies.retain(|c| !(c.name == name && c.path == path));
        if expires.is_some_and(|e| e <= now) {
            return; // a deletion
        }
        if self.cookies.len() >= MAX_COOKIES {
            self.cookies.remove(0);
        }
        self.cookies.push(Cookie {
            name: name.into(),
            value: value.into(),
            path,
            expires,
        });
    }

    /// Writes `Cookie: a=1; b=2\r\n` for a request to `path` (query
    /// ignored), if any cookie applies; longer paths first (§5.4).
    pub fn write_header(&self, request_path: &str, now: SystemTime, out: &mut Vec<u8>) {
        let mask = self.matching(request_path, now);
        self.write_matching(mask, out);
    }

    /// The cookies that go with a request to `path` (query ignored), as a
    /// bit per cookie: no allocation, and the path may borrow the buffer
    /// [`Jar::write_matching`] then writes into.
    pub fn matching(&self, request_path: &str, now: SystemTime) -> u64 {
        let path = request_path.split('?').next().unwrap_or("");
        self.cookies
            .iter()
            .enumerate()
            .filter(|(_, c)| c.expires.is_none_or(|e| e > now) && path_matches(path, &c.path))
            .fold(0, |m, (i, _)| m | 1 << i)
    }

    /// Writes the `Cookie` header of [`Jar::matching`]'s cookies, longer
    /// paths first, in the order they were set among equal ones (§5.4).
    pub fn write_matching(&self, mut mask: u64, out: &mut Vec<u8>) {
        if mask == 0 {
            return;
        }
        out.extend_from_slice(b"Cookie: ");
        let mut first = true;
        while mask != 0 {
            let i = (0..self.cookies.len())
                .filter(|&i| mask & 1 << i != 0)
                .max_by_key(|&i| (self.cookies[i].path.len(), std::cmp::Reverse(i)))
                .expect("a bit is set");
            mask &= !(1 << i);
            let c = &self.cookies[i];
            if !first {
                out.extend_from_slice(b"; ");
            }
            first = false;
            out.extend_from_slice(c.name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(c.value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// RFC 6265 §5.1.4: the request path's directory.
fn default_path(request_path: &str) -> String {
    let path = request_path.split('?').next().unwrap_or("");
    match path.rfind('/') {
        Some(i) if i > 0 && path.starts_with('/') => path[..i].to_string(),
        _ => "/".to_string(),
    }
}

fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request.as_bytes().get(cookie.len()) == Some(&b'/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(jar: &Jar, path: &str) -> String {
        let mut out = Vec::new();
        jar.write_header(path, SystemTime::now(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn set_cookies_come_back_on_matching_paths() {
        let now = SystemTime::now();
        let mut jar = Jar::default();
        jar.store(b"sid=abc; Path=/; HttpOnly", "/login", now);
        jar.store(b"cart=9; Path=/api/cart", "/login", now);
        jar.store(b"dir=1", "/api/products/7", now); // default path /api/products
        assert_eq!(
            header(&jar, "/api/cart/items?x=1"),
            "Cookie: cart=9; sid=abc\r\n"
        );
        assert_eq!(header(&jar, "/api/cartoon"), "Cookie: sid=abc\r\n");
        assert_eq!(
            header(&jar, "/api/products/8"),
            "Cookie: dir=1; sid=abc\r\n"
        );
        assert_eq!(header(&jar, "/api/products"), "Cookie: dir=1; sid=abc\r\n");
        // the same name and path replaces
        jar.store(b"sid=new; Path=/", "/", now);
        assert_eq!(header(&jar, "/"), "Cookie: sid=new\r\n");
    }

    #[test]
    fn max_age_zero_and_past_expires_delete() {
        let now = SystemTime::now();
        let mut jar = Jar::default();
        jar.store(b"a=1; Path=/", "/", now);
        jar.store(b"b=2; Path=/", "/", now);
        jar.store(b"a=; Path=/; Max-Age=0", "/", now);
        jar.store(
            b"b=x; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "/",
            now,
        );
        assert!(jar.is_empty());
        // Max-Age wins over a past Expires
        jar.store(
            b"c=3; Path=/; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "/",
            now,
        );
        assert_eq!(header(&jar, "/"), "Cookie: c=3\r\n");
        jar.clear();
        assert_eq!(header(&jar, "/"), "");
    }

    #[test]
    fn malformed_cookies_are_ignored_and_the_jar_is_bounded() {
        let now = SystemTime::now();
        let mut jar = Jar::default();
        for bad in [&b"novalue"[..], b"=x", b"\xff=1"] {
            jar.store(bad, "/", now);
        }
        assert!(jar.is_empty());
        for i in 0..200 {
            jar.store(format!("c{i}=v").as_bytes(), "/", now);
        }
        assert_eq!(jar.cookies.len(), MAX_COOKIES);
        assert!(header(&jar, "/").contains("c199=v"));
    }
}
