//! The HTTP/2 request head of a unary gRPC call (the gRPC over HTTP/2
//! spec, "Requests"): `:method POST`, `:path /pkg.Service/Method`, then
//! `content-type: application/grpc`, `te: trailers`, `grpc-timeout` when
//! the call has a deadline, and the user's metadata. It is built once per
//! endpoint at prepare and handed to the h2 encoder
//! (`protocol::h2::RequestHead::new(POST, scheme, authority, path,
//! headers.fields())`), so a static call's header block is encoded once.

use std::time::Duration;
use thiserror::Error;

/// A gRPC call is always a POST.
pub const METHOD: &str = "POST";

/// A metadata entry the config gave that cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetadataError {
    #[error("metadata key {0:?} is not a lower-case token (a-z, 0-9, -, _, .)")]
    BadKey(String),
    #[error(
        "metadata key {0:?} is reserved (grpc-*, the headers the call sets: content-type, te, user-agent, \
         and HTTP/1.1's connection fields, which HTTP/2 does not carry: host, connection, keep-alive, \
         proxy-connection, transfer-encoding, upgrade)"
    )]
    Reserved(String),
    #[error(
        "metadata key {0:?} is a pseudo-header; the call sets :method, :scheme, :authority and :path itself"
    )]
    Pseudo(String),
    #[error(
        "metadata {0:?}: the value holds a control character (only visible ASCII, spaces and tabs, and UTF-8 go in a field value)"
    )]
    BadValue(String),
    /// gRPC sends a `-bin` key's value base64-encoded, and the config's
    /// value is sent as given: it must be that base64 already.
    #[error(
        "metadata {0:?}: a -bin value must be base64 (standard alphabet, padding optional): it is sent as given, and the server decodes it"
    )]
    NotBase64(String),
    /// Keys are sent lower-cased, so two that differ only in case would
    /// be one key given twice.
    #[error("metadata keys {0:?} and {1:?} are the same key (gRPC lower-cases keys); give it once")]
    Duplicate(String, String),
    #[error("deadline {0:?} is zero or longer than gRPC's grpc-timeout can say")]
    Deadline(Duration),
}

/// The request fields of one method's calls, in the order they are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeaders {
    path: String,
    fields: Vec<(String, String)>,
}

impl RequestHeaders {
    /// `path` is the method's `/pkg.Service/Method`; `metadata` the
    /// config's map (keys are lower-cased as gRPC requires, so two keys
    /// equal but for case are refused; a `-bin` key's value is sent as
    /// given, so it must be base64, as the spec sends binary values).
    pub fn new<'a>(
        path: &str,
        deadline: Option<Duration>,
        metadata: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<RequestHeaders, MetadataError> {
        let mut fields = vec![
            ("content-type".to_string(), "application/grpc".to_string()),
            ("te".to_string(), "trailers".to_string()),
        ];
        if let Some(d) = deadline {
            let t = timeout(d).ok_or(MetadataError::Deadline(d))?;
            fields.push(("grpc-timeout".to_string(), t));
        }
        let mut seen: Vec<(String, &str)> = Vec::new();
        for (key, value) in metadata {
            let k = key.to_ascii_lowercase();
            if k.starts_with(':') {
                return Err(MetadataError::Pseudo(key.to_string()));
            }
            if k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
            {
                return Err(MetadataError::BadKey(key.to_string()));
            }
            // (HTTP/2 drops the connection-specific ones: given, they
            // were silently not sent; found by a first-user try)
            const SET_OR_DROPPED: [&str; 9] = [
                "content-type",
                "te",
                "user-agent",
                "host",
                "connection",
                "keep-alive",
                "proxy-connection",
                "transfer-encoding",
                "upgrade",
            ];
            if k.starts_with("grpc-") || SET_OR_DROPPED.contains(&k.as_str()) {
                return Err(MetadataError::Reserved(key.to_string()));
            }
            // RFC 9110 field values: no control character but HTAB (a
            // \x01 passed validation and broke every call's head)
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(MetadataError::BadValue(key.to_string()));
            }
            if k.ends_with("-bin") && !is_base64(value) {
                return Err(MetadataError::NotBase64(key.to_string()));
            }
            if let Some((_, first)) = seen.iter().find(|(s, _)| *s == k) {
                return Err(MetadataError::Duplicate(first.to_string(), key.to_string()));
            }
            seen.push((k.clone(), key));
            fields.push((k, value.to_string()));
        }
        fields.push((
            "user-agent".to_string(),
            concat!("userflux/", env!("CARGO_PKG_VERSION")).to_string(),
        ));
        Ok(RequestHeaders {
            path: path.to_string(),
            fields,
        })
    }

    /// The `:path` pseudo-header.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The regular fields, as the h2 request encoder takes them.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// Whether `v` is base64 in the standard alphabet, padded or not (what
/// gRPC implementations decode a `-bin` value as; grpc-go takes either).
fn is_base64(v: &str) -> bool {
    use base64::Engine as _;
    let e = &base64::engine::general_purpose::STANDARD_NO_PAD;
    e.decode(v.trim_end_matches('=')).is_ok()
        && (!v.ends_with('=') || base64::engine::general_purpose::STANDARD.decode(v).is_ok())
}

/// Most digits a `grpc-timeout` value may have (the spec's TimeoutValue).
const MAX_DIGITS: u128 = 99_999_999;

/// A deadline in `grpc-timeout`'s form: at most 8 digits and a unit
/// (`H`, `M`, `S`, `m`, `u`, `n`), the finest unit that fits, rounded up
/// so the server never sees a shorter deadline than ours. `None` for zero
/// or a deadline over 99,999,999 hours.
pub fn timeout(d: Duration) -> Option<String> {
    let ns = d.as_nanos();
    if ns == 0 {
        return None;
    }
    for (unit, per) in [
        ('n', 1u128),
        ('u', 1_000),
        ('m', 1_000_000),
        ('S', 1_000_000_000),
        ('M', 60_000_000_000),
        ('H', 3_600_000_000_000),
    ] {
        let v = ns.div_ceil(per);
        if v <= MAX_DIGITS {
            return Some(format!("{v}{unit}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_use_the_finest_unit_that_fits_eight_digits() {
        assert_eq!(timeout(Duration::from_millis(500)).unwrap(), "500000u");
        assert_eq!(timeout(Duration::from_secs(2)).unwrap(), "2000000u");
        assert_eq!(timeout(Duration::from_millis(20)).unwrap(), "20000000n");
        assert_eq!(timeout(Duration::from_secs(100)).unwrap(), "100000m");
        assert_eq!(timeout(Duration::from_secs(200_000)).unwrap(), "200000S");
        assert_eq!(
            timeout(Duration::from_secs(3600 * 100_000)).unwrap(),
            "6000000M"
        );
        assert_eq!(
            timeout(Duration::from_nanos(1_500_000_001)).unwrap(),
            "1500001u"
        );
        assert_eq!(timeout(Duration::ZERO), None);
        assert_eq!(timeout(Duration::from_secs(u64::MAX)), None);
        for s in [
            timeout(Duration::from_secs(59)).unwrap(),
            timeout(Duration::from_nanos(7)).unwrap(),
        ] {
            assert!(s.len() <= 9, "{s}");
        }
    }

    #[test]
    fn a_unary_call_sends_grpc_content_type_te_timeout_and_metadata() {
        let h = RequestHeaders::new(
            "/echo.Echo/Say",
            Some(Duration::from_secs(2)),
            [("X-Tenant", "acme"), ("trace-bin", "AAEC")],
        )
        .unwrap();
        assert_eq!(h.path(), "/echo.Echo/Say");
        let f: Vec<_> = h.fields().collect();
        assert_eq!(
            &f[..5],
            &[
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("grpc-timeout", "2000000u"),
                ("x-tenant", "acme"),
                ("trace-bin", "AAEC"),
            ]
        );
        assert!(f[5].1.starts_with("userflux/"));
        let none = RequestHeaders::new("/a.B/C", None, []).unwrap();
        assert!(none.fields().all(|(n, _)| n != "grpc-timeout"));
    }

    #[test]
    fn reserved_or_malformed_metadata_is_refused_by_name() {
        let e = |k: &str, v: &str| RequestHeaders::new("/a.B/C", None, [(k, v)]).unwrap_err();
        assert_eq!(
            e("grpc-status", "0"),
            MetadataError::Reserved("grpc-status".into())
        );
        assert_eq!(e("te", "x"), MetadataError::Reserved("te".into()));
        assert_eq!(e("bad key", "x"), MetadataError::BadKey("bad key".into()));
        assert_eq!(e(":path", "x"), MetadataError::Pseudo(":path".into()));
        assert_eq!(e("k", "a\r\nb"), MetadataError::BadValue("k".into()));
        assert_eq!(e("k", "a\x01b"), MetadataError::BadValue("k".into()));
        assert_eq!(e("k", "a\x7fb"), MetadataError::BadValue("k".into()));
        assert!(RequestHeaders::new("/a.B/C", None, [("k", "a\tb c")]).is_ok());
        for k in ["host", "connection", "upgrade"] {
            assert_eq!(e(k, "x"), MetadataError::Reserved(k.into()));
        }
        assert_eq!(
            e(":authority", "x"),
            MetadataError::Pseudo(":authority".into())
        );
        // a -bin value is sent as given: it must be base64 already
        assert_eq!(
            e("x-trace-bin", "not base64!"),
            MetadataError::NotBase64("x-trace-bin".into())
        );
        for ok in ["AAE=", "AAE", "AAEC", ""] {
            RequestHeaders::new("/a.B/C", None, [("x-bin", ok)]).unwrap();
        }
        for bad in ["AA=E", "A", "AAE==", "-_8"] {
            assert_eq!(
                e("X-Bin", bad),
                MetadataError::NotBase64("X-Bin".into()),
                "{bad}"
            );
        }
        // keys equal but for case are one key given twice
        assert_eq!(
            RequestHeaders::new("/a.B/C", None, [("X-Upper", "V"), ("x-upper", "w")]).unwrap_err(),
            MetadataError::Duplicate("X-Upper".into(), "x-upper".into())
        );
        assert!(RequestHeaders::new("/a.B/C", Some(Duration::ZERO), []).is_err());
    }
}
