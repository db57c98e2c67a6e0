// Handshakes and bulk records per second with rustls' ring and aws-lc-rs
// providers, client and server in memory, alternating rounds.
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

fn pump(c: &mut rustls::ClientConnection, s: &mut rustls::ServerConnection) {
    let mut buf = Vec::new();
    loop {
        let mut moved = false;
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            moved = true;
            let mut r = &buf[..];
            while !r.is_empty() {
                s.read_tls(&mut r).unwrap();
            }
            s.process_new_packets().unwrap();
        }
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            moved = true;
            let mut r = &buf[..];
            while !r.is_empty() {
                c.read_tls(&mut r).unwrap();
            }
            c.process_new_packets().unwrap();
        }
        if !moved {
            break;
        }
    }
}

fn configs(
    p: Arc<CryptoProvider>,
    cert: &CertificateDer<'static>,
    key: &PrivateKeyDer<'static>,
    resume: bool,
) -> (Arc<rustls::ClientConfig>, Arc<rustls::ServerConfig>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut cc = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resume {
        cc.resumption = rustls::client::Resumption::disabled();
    }
    let sc = rustls::ServerConfig::builder_with_provider(p)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.clone_key())
        .unwrap();
    (Arc::new(cc), Arc::new(sc))
}

fn main() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::try_from(ck.key_pair.serialize_der()).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let providers = [
        ("ring", Arc::new(rustls::crypto::ring::default_provider())),
        (
            "aws-lc-rs",
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        ),
    ];
    let mut results: Vec<(String, Vec<f64>)> = Vec::new();
    for round in 0..5 {
        for (pname, p) in &providers {
            // full handshakes per second (client and server work both counted)
            let (cc, sc) = configs(p.clone(), &cert, &key, false);
            let t = Instant::now();
            let mut n = 0;
            while t.elapsed().as_millis() < 700 {
                let mut c = rustls::ClientConnection::new(cc.clone(), name.clone()).unwrap();
                let mut s = rustls::ServerConnection::new(sc.clone()).unwrap();
                pump(&mut c, &mut s);
                assert!(!c.is_handshaking());
                n += 1;
            }
            let hs = n as f64 / t.elapsed().as_secs_f64();
            // keep-alive: 200-byte requests and 600-byte responses through one session
            let mut c = rustls::ClientConnection::new(cc.clone(), name.clone()).unwrap();
            let mut s = rustls::ServerConnection::new(sc.clone()).unwrap();
            pump(&mut c, &mut s);
            let req = [b'a'; 200];
            let resp = [b'b'; 600];
            let mut sink = [0u8; 4096];
            let t = Instant::now();
            let mut m = 0;
            while t.elapsed().as_millis() < 700 {
                c.writer().write_all(&req).unwrap();
                pump(&mut c, &mut s);
                let _ = s.reader().read(&mut sink);
                s.writer().write_all(&resp).unwrap();
                pump(&mut c, &mut s);
                let _ = c.reader().read(&mut sink);
                m += 1;
            }
            let ex = m as f64 / t.elapsed().as_secs_f64();
            let key = format!("{pname}");
            match results.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => {
                    v.push(hs);
                    v.push(ex);
                }
                None => results.push((key, vec![hs, ex])),
            }
            println!("round {round} {pname:10} full handshakes/s {hs:8.0}  exchanges/s {ex:9.0}");
        }
    }
}
