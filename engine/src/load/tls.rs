//! TLS for `https://` URLs: the client side of rustls, driven by each
//! worker's mio loop over its non-blocking sockets (no extra thread, no
//! async runtime). A connection is plain or TLS, decided once when it
//! connects; plain connections keep their own path through the worker.
//!
//! This module builds the one `rustls::ClientConfig` a run shares (roots,
//! a private CA, client certificates, the lowest version, resumption) from
//! the config's `tls`, and names what went wrong when a handshake fails,
//! in words (never a rustls `Debug` text such as `Other(OtherError(…))`).
//!
//! A certificate given as `tls.ca_file` (`--cacert`) that the server
//! presents as its own is trusted as curl trusts it. `openssl req -x509`
//! makes such self-signed certificates with `CA:TRUE`, which webpki refuses
//! as a server's (`CaUsedAsEndEntity`), and rustls supports self-signed
//! server certificates only through a custom verifier (rustls/rustls#1382,
//! rustls/webpki#205): `PinnedOrWebPki` runs webpki's verification first
//! and, only when it fails for exactly such a pinned certificate, checks
//! what still matters — the name and the validity period; the handshake's
//! signature is verified as always (issue #27).
//!
//! The crypto provider is `ring`, chosen by measurement
//! (`benches/tls-providers`, client and server in memory on one core,
//! medians of 5 rounds): ring 645,634 keep-alive exchanges a second (200 B
//! request, 600 B response) against aws-lc-rs' 595,405, and 2,513 full
//! handshakes a second against 2,825. A load generator's time goes to
//! records on kept-alive connections, where ring is 8 % faster; its
//! handshakes already outpace wrk's OpenSSL 2.2× (`benches/tls.sh`). It
//! also builds faster, with a C compiler alone.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `tls` in a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// Skip verifying the server's certificate (testing only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// A PEM file of CA certificates trusted besides the webpki roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// The name sent as SNI and verified in the certificate (default: the URL's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Mutual TLS: the client's certificate chain (PEM) and its key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// The lowest version accepted: `"1.2"` (default) or `"1.3"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// Resume sessions when a VU reconnects (default true); `false`
    /// measures full handshakes.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub resume: bool,
}

impl Default for TlsSpec {
    fn default() -> TlsSpec {
        TlsSpec {
            insecure: false,
            ca_file: None,
            server_name: None,
            client_cert: None,
            client_key: None,
            min_version: None,
            resume: true,
        }
    }
}

fn yes() -> bool {
    true
}
fn is_yes(b: &bool) -> bool {
    *b
}

/// Largest certificate or key file: a system CA bundle is about 200 KB.
pub const MAX_PEM: u64 = 16 * 1024 * 1024;

/// Files named relative to the config are read from `base`.
fn path_of(file: &str, base: Option<&Path>) -> PathBuf {
    let p = PathBuf::from(file);
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p,
    }
}

fn certs(
    field: &str,
    file: &str,
    base: Option<&Path>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let path = path_of(file, base);
    let shown = path.display();
    let pem =
        crate::files::read_capped(&path, MAX_PEM).map_err(|e| format!("{field}: {shown}: {e}"))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{field}: {shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{field}: {shown}: no PEM certificate in it"));
    }
    Ok(certs)
}

impl TlsSpec {
    /// Every problem, as `tls.FIELD: why` (files are read here, so a bad
    /// one is a config error naming it).
    pub fn problems(&self, base: Option<&Path>) -> Vec<String> {
        match self.client_config(base) {
            Ok(_) => Vec::new(),
            Err(e) => vec![e],
        }
    }

    /// The run's client configuration.
    pub fn client_config(&self, base: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&'static rustls::SupportedProtocolVersion] = match self
            .min_version
            .as_deref()
        {
            None | Some("1.2") => &[&rustls::version::TLS13, &rustls::version::TLS12],
            Some("1.3") => &[&rustls::version::TLS13],
            Some(v) => {
                return Err(format!(
                    "tls.min_version: \"{v}\" is not a TLS version Userflux speaks (\"1.2\" or \"1.3\")"
                ));
            }
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| format!("tls.min_version: {e}"))?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        } else {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let mut pinned = Vec::new();
            if let Some(file) = &self.ca_file {
                let shown = path_of(file, base);
                for c in certs("tls.ca_file", file, base)? {
                    roots.add(c.clone()).map_err(|e| {
                        format!("tls.ca_file: {}: {}", shown.display(), describe(&e))
                    })?;
                    pinned.push(c);
                }
            }
            let webpki =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| format!("tls.ca_file: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedOrWebPki { webpki, pinned }))
        };
        let mut config = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                use rustls::pki_types::pem::PemObject;
                let chain = certs("tls.client_cert", cert, base)?;
                let kpath = path_of(key, base);
                let key = crate::files::read_capped(&kpath, MAX_PEM)
                    .and_then(|pem| PrivateKeyDer::from_pem_slice(&pem).map_err(|e| e.to_string()))
                    .map_err(|e| format!("tls.client_key: {}: {e}", kpath.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("tls.client_key: {}: {e}", kpath.display()))?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => return Err("tls.client_key: needed with client_cert".into()),
            (None, Some(_)) => return Err("tls.client_cert: needed with client_key".into()),
        };
        if !self.resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        Ok(Arc::new(config))
    }

    /// The name to verify for a URL's host.
    pub fn name_for(&self, host: &str) -> Result<ServerName<'static>, String> {
        let name = self.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_string()).map_err(|e| {
            let field = if self.server_name.is_some() {
                "tls.server_name"
            } else {
                "the URL's host"
            };
            format!("{field}: \"{name}\" is not a DNS name or an IP address ({e})")
        })
    }
}

/// `tls.insecure`: every certificate is accepted (signatures are still
/// checked, so the handshake itself is real).
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The server certificate verifier of a run that is not `insecure`:
/// webpki's, over the webpki roots and `tls.ca_file`; and, when that
/// fails for a certificate that is byte for byte one of `tls.ca_file`'s
/// (a self-signed server certificate the user pinned, as curl accepts),
/// that certificate if it is valid for the name and now.
#[derive(Debug)]
struct PinnedOrWebPki {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    /// The certificates of `tls.ca_file`.
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused =
            match self
                .webpki
                .verify_server_cert(end_entity, intermediates, name, ocsp, now)
            {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
        if !self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Err(refused);
        }
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&parsed, name)?;
        valid_at(end_entity, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Whether `now` is within the certificate's validity period (RFC 5280
/// §4.1.2.5), read from its DER: what webpki would have checked of a
/// pinned certificate.
fn valid_at(der: &[u8], now: UnixTime) -> Result<(), rustls::Error> {
    use rustls::CertificateError;
    let (not_before, not_after) = validity(der).ok_or(CertificateError::BadEncoding)?;
    let t = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let unix = |s: i64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s.max(0) as u64));
    if t < not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before: unix(not_before),
        }
        .into());
    }
    if t > not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after: unix(not_after),
        }
        .into());
    }
    Ok(())
}

/// A certificate's `notBefore` and `notAfter`, in Unix seconds: the
/// fifth field of its `tbsCertificate` (after the optional version, the
/// serial number, the signature algorithm and the issuer).
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    /// One DER element: its tag, its contents and what follows it.
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, b) = b.split_first()?;
        let (&len, b) = b.split_first()?;
        let (len, b) = if len < 0x80 {
            (usize::from(len), b)
        } else {
            let n = usize::from(len & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let (bytes, b) = b.split_at_checked(n)?;
            (bytes.iter().fold(0, |a, &x| a << 8 | usize::from(x)), b)
        };
        let (content, rest) = b.split_at_checked(len)?;
        Some((tag, content, rest))
    }
    /// UTCTime (`YYMMDDHHMMSSZ`, 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
    fn time(tag: u8, v: &[u8]) -> Option<i64> {
        let v = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
        if !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (year, v) = match tag {
            0x17 if v.len() == 12 => {
                let yy: i64 = v[..2].parse().ok()?;
                (if yy < 50 { 2000 + yy } else { 1900 + yy }, &v[2..])
            }
            0x18 if v.len() == 14 => (v[..4].parse().ok()?, &v[4..]),
            _ => return None,
        };
        let n = |i: usize| v[i..i + 2].parse::<u32>().ok();
        let (month, day, h, m, s) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
            return None;
        }
        let days = crate::cookies::days_from_civil(year, month, day);
        Some(days * 86_400 + i64::from(h * 3600 + m * 60 + s))
    }
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(cert)? else {
        return None;
    };
    let (tag, _, after) = tlv(tbs)?;
    let mut rest = if tag == 0xa0 { after } else { tbs };
    for _ in 0..3 {
        rest = tlv(rest)?.2; // serial number, signature algorithm, issuer
    }
    let (0x30, validity, _) = tlv(rest)? else {
        return None;
    };
    let (t1, not_before, rest) = tlv(validity)?;
    let (t2, not_after, _) = tlv(rest)?;
    Some((time(t1, not_before)?, time(t2, not_after)?))
}

/// A rustls or webpki name in words: `HandshakeFailure` → `handshake
/// failure` (its details, `(…)` or `{…}`, left out).
fn words(name: &dyn std::fmt::Debug) -> String {
    name_words(&format!("{name:?}"))
}

/// [`words`] of a text that is a `Debug` name (as webpki's errors display
/// themselves); any other text as it is.
fn name_words(text: &str) -> String {
    let name = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    let rest = text[name.len()..].trim_start();
    let is_name = name.starts_with(|c: char| c.is_ascii_uppercase())
        && (rest.is_empty() || rest.starts_with(['(', '{']));
    if !is_name {
        return text.to_string();
    }
    let mut out = String::new();
    for (i, c) in name.char_indices() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Why a handshake or a record failed, in words a user acts on: every
/// rustls error (and every webpki one it carries) has a sentence or its
/// name in words, never a `Debug` text.
pub fn describe(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => describe_certificate(c),
        E::AlertReceived(a) => format!(
            "the server ended the handshake with the TLS alert \"{}\" (a version, cipher or certificate it would not accept?)",
            words(a)
        ),
        E::PeerIncompatible(p) => format!(
            "the server and Userflux have no TLS version or parameters in common ({}); see tls.min_version",
            words(p)
        ),
        E::PeerMisbehaved(p) => format!("the server broke the TLS protocol ({})", words(p)),
        E::InvalidMessage(m) => format!(
            "what the server sent is not TLS ({}): is this port plain HTTP?",
            words(m)
        ),
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the server sent a TLS message out of order".into()
        }
        E::NoCertificatesPresented => "the server presented no certificate".into(),
        E::UnsupportedNameType => "the server name cannot be sent in TLS".into(),
        E::DecryptError => "a record from the server did not decrypt".into(),
        E::EncryptError => "a record could not be encrypted".into(),
        E::PeerSentOversizedRecord => "the server sent a TLS record over the size limit".into(),
        E::HandshakeNotComplete => "the TLS handshake did not complete".into(),
        E::NoApplicationProtocol => "the server supports no protocol Userflux offers (ALPN)".into(),
        E::FailedToGetCurrentTime => "this machine's clock could not be read".into(),
        E::FailedToGetRandomBytes => "the operating system gave no random bytes".into(),
        E::BadMaxFragmentSize => "the TLS fragment size is out of range".into(),
        E::InconsistentKeys(_) => "tls.client_key is not the key of tls.client_cert".into(),
        E::InvalidCertRevocationList(c) => {
            format!("a certificate revocation list is not usable ({})", words(c))
        }
        E::InvalidEncryptedClientHello(x) => {
            format!("encrypted client hello failed ({})", words(x))
        }
        E::General(why) => format!("TLS failed: {why}"),
        E::Other(o) => format!("TLS failed: {}", name_words(&o.0.to_string())),
        other => format!("TLS failed: {}", words(other)),
    }
}

/// Why the server's certificate was refused.
fn describe_certificate(c: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    let why = match c {
        C::UnknownIssuer => "has an unknown issuer (give its CA, or the certificate itself, with tls.ca_file or --cacert; or tls.insecure)".into(),
        C::NotValidForName => "is not valid for the name asked for (see tls.server_name)".into(),
        C::NotValidForNameContext { expected, presented } => format!(
            "is not valid for {:?}, only for {} (set tls.server_name to one of them, or use a URL with it)",
            expected.to_str(),
            if presented.is_empty() {
                "no name".into()
            } else {
                // webpki gives `DnsName("a.example")`, `IpAddress(127.0.0.1)`
                let bare = |p: &String| {
                    let inner = p.split_once('(').map_or(p.as_str(), |(_, v)| v);
                    inner.trim_end_matches(')').trim_matches('"').to_string()
                };
                presented.iter().map(bare).collect::<Vec<_>>().join(", ")
            }
        ),
        C::Expired | C::ExpiredContext { .. } => "has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "is not valid yet (is this machine's clock right?)".into()
        }
        C::Revoked => "has been revoked".into(),
        C::BadEncoding => "is not a well-formed certificate".into(),
        C::BadSignature => "does not verify: its signature is wrong".into(),
        C::UnhandledCriticalExtension => "has a critical extension Userflux does not know".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "is not for TLS servers (its extended key usage)".into()
        }
        C::UnknownRevocationStatus | C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => {
            "has a revocation status that cannot be known".into()
        }
        C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "is signed with an algorithm Userflux does not support".into()
        }
        C::InvalidOcspResponse => "came with an invalid OCSP response".into(),
        C::ApplicationVerificationFailure => "was refused".into(),
        C::Other(o) => match name_words(&o.0.to_string()).as_str() {
            "ca used as end entity" => "is a CA certificate (basicConstraints CA:TRUE, as `openssl req -x509` makes by default): give that very certificate with --cacert (tls.ca_file) to trust it as it is, or make one with `-addext basicConstraints=critical,CA:FALSE`, or use tls.insecure".into(),
            "end entity used as ca" => "is signed by a certificate that is not a CA (basicConstraints CA:FALSE)".into(),
            "unsupported cert version" => "is not an X.509 v3 certificate".into(),
            "unsupported critical extension" => "has a critical extension Userflux does not know".into(),
            "path len constraint violated" => "has a chain longer than a CA allows (pathLenConstraint)".into(),
            "name constraint violation" => "names a host its CA may not certify (name constraints)".into(),
            "signature algorithm mismatch" => "says two different signature algorithms".into(),
            "maximum path depth exceeded" | "maximum path build calls exceeded" | "maximum signature checks exceeded" => {
                "has a chain too long or too tangled to verify".into()
            }
            other => format!("is refused: {other}"),
        },
        #[allow(deprecated)]
        C::UnsupportedSignatureAlgorithm => "is signed with an algorithm Userflux does not support".into(),
        other => format!("is refused: {}", words(other)),
    };
    format!("the server's certificate {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
    /// -nodes -days 10000 -subj /CN=localhost -addext
    /// subjectAltName=IP:127.0.0.1`: self-signed, CA:TRUE, valid from
    /// 2026-12-02T22:12:58Z (UTCTime) to 2054-04-19T22:12:58Z (GeneralizedTime).
    const SELF_SIGNED: &str = "-----BEGIN CERTIFICATE-----
MIIBjzCCATagAwIBAgIUe5eAwdFXj7t362XTqG7LWEqG1y8wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMjIyMTI1OFoYDzIwNTQwNDE5
MjIxMjU4WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARUGGsadNSIqBjyBhX48ixnksJilIFMRnloOodQq+s2uNITJFBRcn5u
kMDSVUfn6ZWTEF4TOGO0F/u7zGWlTOFNo2QwYjAdBgNVHQ4EFgQU2+jbk/O0C4Nk
RAm3oBOXHwx2zhAwHwYDVR0jBBgwFoAU2+jbk/O0C4NkRAm3oBOXHwx2zhAwDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0cAMEQC
IBLVdkqEXXswhowiVhKYKMyjSVz3zwqAEDykmWHKSjVeAiAibpjIwESwAphEDZoo
cEDeJbX1D8DzMWeNDKREgtdeXg==
-----END CERTIFICATE-----
";
    const NOT_BEFORE: u64 = 1_796_249_578;
    const NOT_AFTER: u64 = 2_660_249_578;

    fn self_signed() -> CertificateDer<'static> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(SELF_SIGNED.as_bytes()).unwrap()
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
    }

    /// A verifier trusting `SELF_SIGNED` as a root, pinning it or not.
    fn verifier(pin: bool) -> PinnedOrWebPki {
        let mut roots = RootCertStore::empty();
        roots.add(self_signed()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        PinnedOrWebPki {
            webpki: rustls::client::WebPkiServerVerifier::builder_with_provider(
                roots.into(),
                provider,
            )
            .build()
            .unwrap(),
            pinned: if pin { vec![self_signed()] } else { Vec::new() },
        }
    }

    /// Issue #27: a self-signed CA:TRUE certificate given as the CA file
    /// is trusted as the server's own, for its name and period only.
    #[test]
    fn a_pinned_self_signed_certificate_is_trusted_for_its_name_and_period() {
        let ip = ServerName::try_from("127.0.0.1").unwrap();
        let cert = self_signed();
        let check = |v: &PinnedOrWebPki, name: &ServerName<'_>, secs: u64| {
            v.verify_server_cert(&cert, &[], name, &[], at(secs))
                .map(|_| ())
                .map_err(|e| describe(&e))
        };
        let inside = NOT_BEFORE + 86_400;
        assert_eq!(check(&verifier(true), &ip, inside), Ok(()));
        // webpki alone refuses it, and says what to do in words
        let e = check(&verifier(false), &ip, inside).unwrap_err();
        assert!(
            e.contains("is a CA certificate (basicConstraints CA:TRUE") && e.contains("--cacert"),
            "{e}"
        );
        let other = ServerName::try_from("example.com").unwrap();
        let e = check(&verifier(true), &other, inside).unwrap_err();
        assert!(
            e.contains("not valid for \"example.com\", only for 127.0.0.1"),
            "{e}"
        );
        let e = check(&verifier(true), &ip, NOT_AFTER + 1).unwrap_err();
        assert!(e.ends_with("has expired"), "{e}");
        let e = check(&verifier(true), &ip, NOT_BEFORE - 1).unwrap_err();
        assert!(e.contains("is not valid yet"), "{e}");
        assert_eq!(check(&verifier(true), &ip, NOT_AFTER), Ok(()));
    }

    #[test]
    fn validity_is_read_from_the_der() {
        let cert = self_signed();
        assert_eq!(validity(&cert), Some((NOT_BEFORE as i64, NOT_AFTER as i64)));
        for cut in [0, 1, 10, 40, cert.len() - 1] {
            let _ = validity(&cert[..cut]); // never panics
        }
        assert_eq!(validity(b"\x30\x84\xff\xff\xff\xff"), None);
        assert!(valid_at(b"not DER", at(0)).is_err());
    }

    /// Every error reads as words: no `Debug` text such as
    /// `Other(OtherError(CaUsedAsEndEntity))`.
    #[test]
    fn every_tls_error_reads_as_words() {
        use rustls::{
            AlertDescription, CertificateError as C, Error as E, InvalidMessage, OtherError,
            PeerIncompatible, PeerMisbehaved,
        };
        let other = |e: &str| OtherError(Arc::new(std::io::Error::other(e.to_string())));
        let name = ServerName::try_from("example.com").unwrap();
        let errors = [
            E::AlertReceived(AlertDescription::HandshakeFailure),
            E::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
            E::PeerMisbehaved(PeerMisbehaved::BadCertChainExtensions),
            E::InvalidMessage(InvalidMessage::InvalidContentType),
            E::InappropriateMessage {
                expect_types: vec![],
                got_type: rustls::ContentType::Alert,
            },
            E::NoCertificatesPresented,
            E::UnsupportedNameType,
            E::DecryptError,
            E::EncryptError,
            E::PeerSentOversizedRecord,
            E::HandshakeNotComplete,
            E::NoApplicationProtocol,
            E::FailedToGetCurrentTime,
            E::FailedToGetRandomBytes,
            E::BadMaxFragmentSize,
            E::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch),
            E::InvalidCertRevocationList(rustls::CertRevocationListError::BadSignature),
            E::General("the reason".into()),
            E::Other(other("SomethingElse")),
            C::UnknownIssuer.into(),
            C::NotValidForName.into(),
            C::NotValidForNameContext {
                expected: name,
                presented: vec![],
            }
            .into(),
            C::Expired.into(),
            C::NotValidYet.into(),
            C::Revoked.into(),
            C::BadEncoding.into(),
            C::BadSignature.into(),
            C::UnhandledCriticalExtension.into(),
            C::InvalidPurpose.into(),
            C::UnknownRevocationStatus.into(),
            C::ExpiredRevocationList.into(),
            C::InvalidOcspResponse.into(),
            C::ApplicationVerificationFailure.into(),
            C::UnsupportedSignatureAlgorithmContext {
                signature_algorithm_id: vec![1],
                supported_algorithms: vec![],
            }
            .into(),
            C::Other(other("PathLenConstraintViolated")).into(),
            C::Other(other("SomeFutureError { x: 1 }")).into(),
        ];
        // a Debug text has CamelCase names, `::`, `{` or `Other(`
        let camel = |w: &str| {
            !["basicConstraints", "pathLenConstraint"].contains(&w)
                && w.as_bytes()
                    .windows(2)
                    .any(|p| p[0].is_ascii_lowercase() && p[1].is_ascii_uppercase())
        };
        for e in &errors {
            let said = describe(e);
            assert!(
                !said.is_empty()
                    && !said.contains("::")
                    && !said.contains('{')
                    && !said.contains("Other(")
                    && !said.split(|c: char| !c.is_ascii_alphanumeric()).any(camel),
                "{e:?}: {said}"
            );
        }
        assert_eq!(
            describe(&E::Other(other("SomethingElse"))),
            "TLS failed: something else"
        );
        assert_eq!(
            describe(&C::Other(other("SomeFutureError { x: 1 }")).into()),
            "the server's certificate is refused: some future error"
        );
    }

    #[test]
    fn bad_settings_and_files_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem\n").unwrap();
        for (spec, want) in [
            (
                TlsSpec {
                    min_version: Some("1.1".into()),
                    ..TlsSpec::default()
                },
                "tls.min_version: \"1.1\"",
            ),
            (
                TlsSpec {
                    ca_file: Some("/nonexistent/ca.pem".into()),
                    ..TlsSpec::default()
                },
                "tls.ca_file: /nonexistent/ca.pem",
            ),
            (
                TlsSpec {
                    ca_file: Some("empty.pem".into()),
                    ..TlsSpec::default()
                },
                "no PEM certificate",
            ),
            (
                TlsSpec {
                    client_cert: Some("c.pem".into()),
                    ..TlsSpec::default()
                },
                "tls.client_key: needed with client_cert",
            ),
        ] {
            let e = spec.client_config(Some(dir.path())).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        assert!(TlsSpec::default().client_config(None).is_ok());
        let e = TlsSpec {
            server_name: Some("bad name!".into()),
            ..TlsSpec::default()
        }
        .name_for("127.0.0.1")
        .unwrap_err();
        assert!(e.starts_with("tls.server_name"), "{e}");
    }

    /// Issue #27: a certificate file that is a FIFO or a device is refused
    /// at once, naming the field and the file (it blocked, or never ended).
    #[test]
    fn fifos_and_devices_are_refused_as_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("ca.pem");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let e = TlsSpec {
            ca_file: Some("ca.pem".into()),
            ..TlsSpec::default()
        }
        .client_config(Some(dir.path()))
        .unwrap_err();
        let want = format!("tls.ca_file: {}: is a FIFO (named pipe)", fifo.display());
        assert!(e.starts_with(&want), "{e}");
        let e = TlsSpec {
            client_cert: Some("/dev/zero".into()),
            client_key: Some("/dev/zero".into()),
            ..TlsSpec::default()
        }
        .client_config(None)
        .unwrap_err();
        assert!(
            e.starts_with("tls.client_cert: /dev/zero: is a device"),
            "{e}"
        );
    }
}
