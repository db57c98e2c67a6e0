//! TLS for `https://` URLs: the client side of rustls, driven by each
//! worker's mio loop over its non-blocking sockets (no extra thread, no
//! async runtime). A connection is plain or TLS, decided once when it
//! connects; plain connections keep their own path through the worker.
//!
//! This module builds the one `rustls::ClientConfig` a run shares (roots,
//! a private CA, client certificates, the lowest version, resumption) from
//! the config's `tls`, and names what went wrong when a handshake fails.
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
            if let Some(file) = &self.ca_file {
                for c in certs("tls.ca_file", file, base)? {
                    roots.add(c).map_err(|e| {
                        format!("tls.ca_file: {}: {e}", path_of(file, base).display())
                    })?;
                }
            }
            builder.with_root_certificates(roots)
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

/// Why a handshake or a record failed, in words a user acts on.
pub fn describe(e: &rustls::Error) -> String {
    use rustls::{CertificateError, Error};
    match e {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate has an unknown issuer (give its CA with tls.ca_file or --cacert, or tls.insecure)".into()
        }
        Error::InvalidCertificate(CertificateError::NotValidForName)
        | Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
            "the server's certificate is not valid for the name asked for (see tls.server_name)".into()
        }
        Error::InvalidCertificate(CertificateError::Expired)
        | Error::InvalidCertificate(CertificateError::ExpiredContext { .. }) => {
            "the server's certificate has expired".into()
        }
        Error::AlertReceived(a) => format!("the server sent the alert {a:?}"),
        Error::PeerIncompatible(p) => format!("protocol version or parameters: {p:?}"),
        Error::InvalidMessage(m) => format!("not TLS from the server ({m:?})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
