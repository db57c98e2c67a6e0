//! A flow VU's cookie jar, for one iteration: `Set-Cookie` name=value
//! pairs kept with their path (RFC 6265 §5.1.4 path matching; the default
//! path is the request's directory), deleted by `Max-Age=0` or a past
//! `Expires`, sent back as one `Cookie` header on later steps. The jar is
//! emptied at each new iteration, so every iteration is a fresh session.
//! A cookie goes back only to the host that set it (a host-only cookie,
//! §5.3 step 6: the host name, any port), so a flow's session on one
//! service never reaches another its steps name (issue #27, found by a
//! first user's try). `Domain`, `Secure` and `HttpOnly` are not judged.
//!
//! Lifetimes come from the server and saturate: a `Max-Age` or `Expires`
//! beyond what `SystemTime` holds is a cookie that outlives the iteration
//! (issue #27: `Max-Age=9223372036854775807` panicked the worker), one
//! before it a deletion. `Expires` is parsed as browsers parse it (RFC 6265
//! §5.1.1), so the dashed `Thu, 01-Jan-1970 00:00:01 GMT` and two-digit
//! years count too.

use std::time::{Duration, SystemTime};

/// Most cookies one jar keeps (RFC 6265 §6.1 asks for at least 50 per
/// domain); past it the oldest goes. (A bit each in [`Jar::matching`].)
pub const MAX_COOKIES: usize = 64;

#[derive(Debug, Clone)]
struct Cookie {
    /// The host name of the request it came with.
    host: String,
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
    pub fn store(&mut self, host: &str, set_cookie: &[u8], request_path: &str, now: SystemTime) {
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
                max_age = delta_seconds(v).or(max_age);
            } else if k.eq_ignore_ascii_case("expires") {
                expires = cookie_date(v).or(expires);
            }
        }
        // Max-Age wins over Expires (RFC 6265 §5.3 step 3); None: it
        // outlives the iteration (later than a SystemTime can say).
        let expires = match (max_age, expires) {
            (Some(s), _) if s <= 0 => Some(SystemTime::UNIX_EPOCH),
            (Some(s), _) => now.checked_add(Duration::from_secs(s.unsigned_abs())),
            (None, Some(Expiry::At(t))) => Some(t),
            (None, Some(Expiry::Past)) => Some(SystemTime::UNIX_EPOCH),
            (None, Some(Expiry::Future) | None) => None,
        };
        let path = path.unwrap_or_else(|| default_path(request_path));
        self.cookies
            .retain(|c| !(c.name == name && c.path == path && c.host.eq_ignore_ascii_case(host)));
        if expires.is_some_and(|e| e <= now) {
            return; // a deletion
        }
        if self.cookies.len() >= MAX_COOKIES {
            self.cookies.remove(0);
        }
        self.cookies.push(Cookie {
            host: host.into(),
            name: name.into(),
            value: value.into(),
            path,
            expires,
        });
    }

    /// Writes `Cookie: a=1; b=2\r\n` for a request to `path` (query
    /// ignored), if any cookie applies; longer paths first (§5.4).
    pub fn write_header(&self, host: &str, request_path: &str, now: SystemTime, out: &mut Vec<u8>) {
        let mask = self.matching(host, request_path, now);
        self.write_matching(mask, out);
    }

    /// The cookies that go with a request to `path` (query ignored), as a
    /// bit per cookie: no allocation, and the path may borrow the buffer
    /// [`Jar::write_matching`] then writes into.
    pub fn matching(&self, host: &str, request_path: &str, now: SystemTime) -> u64 {
        let path = request_path.split('?').next().unwrap_or("");
        self.cookies
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.host.eq_ignore_ascii_case(host)
                    && c.expires.is_none_or(|e| e > now)
                    && path_matches(path, &c.path)
            })
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

/// A `Max-Age` value (RFC 6265 §5.2.2: an optional `-`, then digits; else
/// the attribute is ignored), saturating at the ends of `i64`.
fn delta_seconds(v: &str) -> Option<i64> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse().unwrap_or(if v.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    }))
}

/// When an `Expires` date is, as far as a `SystemTime` can say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    At(SystemTime),
    /// Before what a `SystemTime` holds: long past.
    Past,
    /// After it: never, for a jar that lasts one iteration.
    Future,
}

/// An `Expires` date as RFC 6265 §5.1.1 parses it (what browsers accept:
/// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT`,
/// `Sun Nov  6 08:49:37 1994`, `Thu, 01-Jan-1970 00:00:01 GMT`…): tokens
/// split at delimiters, the first time, day, month and year found in any
/// order. `None` when it is not a date (the attribute is then ignored).
fn cookie_date(v: &str) -> Option<Expiry> {
    let delimiter = |c: char| matches!(c, '\t' | ' '..='/' | ';'..='@' | '['..='`' | '{'..='~');
    // 1*max DIGIT, then nothing or a non-digit and anything
    fn number(t: &str, min: usize, max: usize) -> Option<(u32, &str)> {
        let n = t.bytes().take_while(u8::is_ascii_digit).count();
        if !(min..=max).contains(&n) {
            return None;
        }
        Some((t[..n].parse().ok()?, &t[n..]))
    }
    let time = |t: &str| -> Option<(u32, u32, u32)> {
        let (h, rest) = number(t, 1, 2)?;
        let (m, rest) = number(rest.strip_prefix(':')?, 1, 2)?;
        let (s, _) = number(rest.strip_prefix(':')?, 1, 2)?;
        Some((h, m, s))
    };
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let (mut hms, mut day, mut month, mut year) = (None, None, None, None);
    for t in v.split(delimiter).filter(|t| !t.is_empty()) {
        if hms.is_none()
            && let Some(x) = time(t)
        {
            hms = Some(x);
        } else if day.is_none()
            && let Some((d, _)) = number(t, 1, 2)
        {
            day = Some(d);
        } else if month.is_none()
            && let Some(m) =
                (t.get(..3)).and_then(|p| MONTHS.iter().position(|m| p.eq_ignore_ascii_case(m)))
        {
            month = Some(m as u32 + 1);
        } else if year.is_none()
            && let Some((y, _)) = number(t, 2, 4)
        {
            year = Some(y);
        }
    }
    let (h, mi, s) = hms?;
    let (day, month, mut year) = (day?, month?, year?);
    year += match year {
        70..=99 => 1900,
        0..=69 => 2000,
        _ => 0,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day < 1 || day > days_in_month || year < 1601 || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let secs =
        days_from_civil(i64::from(year), month, day) * 86_400 + i64::from(h * 3600 + mi * 60 + s);
    let at = if secs >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    Some(match at {
        Some(t) => Expiry::At(t),
        None if secs < 0 => Expiry::Past,
        None => Expiry::Future,
    })
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar
/// (Howard Hinnant's `days_from_civil`); also for certificates' validity
/// dates ([`crate::tls`]).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (y, m) = (year - i64::from(month <= 2), i64::from(month));
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
        jar.write_header("h", path, SystemTime::now(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn set_cookies_come_back_on_matching_paths() {
        let now = SystemTime::now();
        let mut jar = Jar::default();
        jar.store("h", b"sid=abc; Path=/; HttpOnly", "/login", now);
        jar.store("h", b"cart=9; Path=/api/cart", "/login", now);
        jar.store("h", b"dir=1", "/api/products/7", now); // default path /api/products
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
        jar.store("h", b"sid=new; Path=/", "/", now);
        assert_eq!(header(&jar, "/"), "Cookie: sid=new\r\n");
    }

    #[test]
    fn max_age_zero_and_past_expires_delete() {
        let now = SystemTime::now();
        let mut jar = Jar::default();
        jar.store("h", b"a=1; Path=/", "/", now);
        jar.store("h", b"b=2; Path=/", "/", now);
        jar.store("h", b"a=; Path=/; Max-Age=0", "/", now);
        jar.store(
            "h",
            b"b=x; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "/",
            now,
        );
        assert!(jar.is_empty());
        // Max-Age wins over a past Expires
        jar.store(
            "h",
            b"c=3; Path=/; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "/",
            now,
        );
        assert_eq!(header(&jar, "/"), "Cookie: c=3\r\n");
        jar.clear();
        assert_eq!(header(&jar, "/"), "");
    }

    /// Issue #27: any lifetime saturates, never panics.
    #[test]
    fn lifetimes_saturate() {
        let now = SystemTime::now();
        let mut jar = Jar::default();
        for (i, attrs) in [
            "Max-Age=9223372036854775807",
            "Max-Age=99999999999999999999999999",
            "Max-Age=-9223372036854775808",
            "Max-Age=-99999999999999999999999999",
            "Expires=Fri, 31 Dec 9999 23:59:59 GMT",
            "Expires=Mon, 01 Jan 1601 00:00:00 GMT",
            "Max-Age=1; Expires=Fri, 31 Dec 9999 23:59:59 GMT",
        ]
        .iter()
        .enumerate()
        {
            jar.store("h", format!("c{i}=v; Path=/; {attrs}").as_bytes(), "/", now);
        }
        // the huge Max-Ages and the far future stay; the negative ones and 1601 delete
        let mut out = Vec::new();
        jar.write_header("h", "/", now, &mut out);
        let h = String::from_utf8(out).unwrap();
        assert_eq!(h, "Cookie: c0=v; c1=v; c4=v; c6=v\r\n");
        // a second later Max-Age=1 is over; the rest is not
        let mut out = Vec::new();
        jar.write_header("h", "/", now + Duration::from_secs(2), &mut out);
        assert_eq!(out, b"Cookie: c0=v; c1=v; c4=v\r\n");
        // at the end of SystemTime
        let mut jar = Jar::default();
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(i64::MAX as u64);
        jar.store("h", b"a=1; Max-Age=5", "/", end);
        jar.store("h", b"b=1; Max-Age=9223372036854775807", "/", end);
        assert_eq!(jar.cookies.len(), 2);
    }

    #[test]
    fn expires_parses_as_browsers_do() {
        let at = |secs: u64| {
            Some(Expiry::At(
                SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            ))
        };
        for (text, want) in [
            ("Sun, 06 Nov 1994 08:49:37 GMT", at(784_111_777)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", at(784_111_777)),
            ("Sun Nov  6 08:49:37 1994", at(784_111_777)),
            ("Thu, 01-Jan-1970 00:00:01 GMT", at(1)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", at(0)),
            ("19-jan-2038 03:14:08", at(2_147_483_648)),
            ("Wed, 29 Feb 2000 00:00:00 GMT", at(951_782_400)),
            ("Tue, 19 Jan 2038 03:14:07 GMT; foo", at(2_147_483_647)),
            ("Fri, 31 Dec 9999 23:59:59 GMT", at(253_402_300_799)),
            ("1 Jan 01 00:00:00", at(978_307_200)),
        ] {
            assert_eq!(cookie_date(text), want, "{text}");
        }
        let past = cookie_date("Mon, 01 Jan 1601 00:00:00 GMT").unwrap();
        assert!(matches!(past, Expiry::At(t) if t < SystemTime::UNIX_EPOCH));
        for bad in [
            "",
            "soon",
            "Thu, 01 Jan 1970",
            "Thu, 32 Jan 1970 00:00:00 GMT",
            "Thu, 29 Feb 2001 00:00:00 GMT",
            "Thu, 01 Jan 1600 00:00:00 GMT",
            "Thu, 01 Jan 1970 24:00:00 GMT",
            "Thu, 01 Foo 1970 00:00:00 GMT",
        ] {
            assert_eq!(cookie_date(bad), None, "{bad}");
        }
        // the dashed form deletes like the spaced one; an unparsable
        // Expires is ignored (a session cookie), not a deletion
        let now = SystemTime::now();
        let mut jar = Jar::default();
        jar.store("h", b"a=1; Path=/", "/", now);
        jar.store(
            "h",
            b"a=; Path=/; Expires=Thu, 01-Jan-1970 00:00:01 GMT",
            "/",
            now,
        );
        assert!(jar.is_empty());
        jar.store("h", b"b=1; Path=/; Expires=whenever", "/", now);
        assert_eq!(header(&jar, "/"), "Cookie: b=1\r\n");
        assert_eq!(delta_seconds("+5"), None);
        assert_eq!(delta_seconds("5s"), None);
        assert_eq!(delta_seconds("-"), None);
        assert_eq!(delta_seconds("-7"), Some(-7));
    }

    #[test]
    fn malformed_cookies_are_ignored_and_the_jar_is_bounded() {
        let now = SystemTime::now();
        let mut jar = Jar::default();
        for bad in [&b"novalue"[..], b"=x", b"\xff=1"] {
            jar.store("h", bad, "/", now);
        }
        assert!(jar.is_empty());
        for i in 0..200 {
            jar.store("h", format!("c{i}=v").as_bytes(), "/", now);
        }
        assert_eq!(jar.cookies.len(), MAX_COOKIES);
        assert!(header(&jar, "/").contains("c199=v"));
    }

    #[test]
    fn a_cookie_goes_back_only_to_the_host_that_set_it() {
        let now = SystemTime::now();
        let mut jar = Jar::default();
        jar.store("api.test", b"sid=1; Path=/", "/login", now);
        jar.store("other.test", b"sid=2; Path=/", "/", now);
        let header = |host: &str| {
            let mut out = Vec::new();
            jar.write_header(host, "/x", now, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(header("api.test"), "Cookie: sid=1\r\n");
        assert_eq!(header("API.test"), "Cookie: sid=1\r\n");
        assert_eq!(header("other.test"), "Cookie: sid=2\r\n");
        assert_eq!(header("third.test"), "");
    }
}
