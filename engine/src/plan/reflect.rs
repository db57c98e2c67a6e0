//! `"reflection": true` gRPC units resolved when the run starts: each
//! distinct server and service is asked once over server reflection
//! ([`exchange`]; v1, then v1alpha when the server answers UNIMPLEMENTED),
//! the files it gives are built into a descriptor pool
//! (`load::grpc::reflection`), and every row of that service compiles its
//! method and message from it (`config::grpc::Reflect::compile`), exactly
//! as from `.proto` files. The rows then carry their `grpc` and encoded
//! request like any other, before a worker starts.
//!
//! Why at start, and not at validation: the method cannot be resolved
//! without the server, and validation (`userfluxctl config check`, the
//! daemon's submit) stays offline. It runs in [`crate::run::execute`] next
//! to the ALPN probe (`plan::alpn`), once per run (a shard asks for
//! itself); a problem fails the run before any load, naming the field and
//! the server: `endpoints[0].grpc.reflection: 127.0.0.1:50051 does not
//! serve reflection (UNIMPLEMENTED)`.

pub mod exchange;

use crate::config::grpc::Reflect;
use crate::load::grpc::Code;
use crate::load::grpc::reflection::{
    self, CollectError, Collected, Request, Response, V1, V1ALPHA, WireError,
};
use crate::plan::{GrpcPlan, Plan};
use exchange::{Dial, Exchange, ExchangeError};
use prost_reflect::DescriptorPool;
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;
use thiserror::Error;

/// Most rounds of `file_by_filename` (imports of imports …): deeper
/// nesting than this is no service's.
pub const MAX_ROUNDS: usize = 16;

/// Why a server's descriptors could not be had; each reads after the
/// server's address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReflectError {
    #[error("{0}")]
    Exchange(#[from] ExchangeError),
    #[error("{0}")]
    Collect(#[from] CollectError),
    #[error("has no service \"{service}\" (it serves: {available})")]
    UnknownService { service: String, available: String },
    #[error("has no file \"{file}\", which the service's files import ({why})")]
    MissingFile { file: String, why: String },
    #[error("answered {asked} with {what}")]
    Unexpected { asked: String, what: String },
    #[error("gave files whose imports nest deeper than {MAX_ROUNDS} levels")]
    TooDeep,
}

impl From<WireError> for ReflectError {
    fn from(e: WireError) -> ReflectError {
        ReflectError::Collect(CollectError::Wire(e))
    }
}

/// A server asked, as the key of what it gave.
type Key = (SocketAddr, Option<ServerName<'static>>, String);

/// Resolves every row waiting for reflection; returns a log line per
/// server and service asked, or every problem (`field: why` lines).
pub fn resolve(plan: &mut Plan) -> Result<Vec<String>, Vec<String>> {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let mut asked: HashMap<Key, Result<DescriptorPool, ReflectError>> = HashMap::new();
    let (tls, connect_timeout, timeout) =
        (plan.tls.clone(), plan.connect_timeout, plan.request_timeout);
    for row in plan.endpoints.iter_mut() {
        let Some(r) = row.reflect.clone() else {
            continue;
        };
        let server = format!("{}:{}", row.host, row.addr.port());
        let key = (row.addr, row.tls_name.clone(), r.service.clone());
        let got = asked.entry(key).or_insert_with(|| {
            let dial = Dial {
                addr: row.addr,
                authority: server.clone(),
                tls: row.tls_name.clone().zip(tls.clone()),
                connect_timeout,
                timeout,
            };
            let t0 = Instant::now();
            let got = fetch(&dial, &r.service);
            if let Ok((_, files, bytes, api)) = &got {
                lines.push(format!(
                    "grpc reflection: {server} described {} in {files} file(s), {bytes} bytes (grpc.reflection.{api}, {} ms)",
                    r.service,
                    t0.elapsed().as_millis()
                ));
            }
            got.map(|(pool, ..)| pool)
        });
        match got {
            Err(e) => problems.push(format!("{}.reflection: {server} {e}", r.at)),
            Ok(pool) => match compile(&r, pool, &server) {
                Ok(g) => {
                    row.grpc = Some(Box::new(g));
                    row.reflect = None;
                }
                Err(p) => problems.push(p),
            },
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    crate::plan::build::encode_h2(plan);
    Ok(lines)
}

fn compile(r: &Reflect, pool: &DescriptorPool, server: &str) -> Result<GrpcPlan, String> {
    let (method, message) = r.compile(pool, server)?;
    Ok(GrpcPlan { method, message })
}

/// Asks one server for `service`'s file and its imports; the pool, the
/// files and bytes taken, and which API answered.
pub fn fetch(
    dial: &Dial,
    service: &str,
) -> Result<(DescriptorPool, usize, usize, &'static str), ReflectError> {
    let mut x = Exchange::open(dial)?;
    let ask = Request::FileContainingSymbol(service).encode();
    let (path, api, first) = match one(&mut x, V1, &ask)? {
        Err(Code::Unimplemented) => match one(&mut x, V1ALPHA, &ask)? {
            Err(Code::Unimplemented) => {
                return Err(ExchangeError::NoReflection("UNIMPLEMENTED".into()).into());
            }
            a => (V1ALPHA, "v1alpha", a),
        },
        a => (V1, "v1", a),
    };
    let asked = format!("file_containing_symbol \"{service}\"");
    let first = first.map_err(|code| ExchangeError::Status(code.name().into()))?;
    let mut got = Collected::default();
    match reflection::decode_response(&first)? {
        Response::Files(files) => got.add(&files)?,
        Response::Error { code, .. } if code == Code::NotFound as i32 => {
            return Err(unknown_service(&mut x, path, service));
        }
        other => return Err(unexpected(asked, &other)),
    }
    let mut rounds = 0;
    loop {
        let want = got.next_wanted();
        if want.is_empty() {
            break;
        }
        rounds += 1;
        if rounds > MAX_ROUNDS {
            return Err(ReflectError::TooDeep);
        }
        let requests: Vec<Vec<u8>> = (want.iter())
            .map(|f| Request::FileByFilename(f).encode())
            .collect();
        let answers = x.call(path, &requests)?;
        for (file, a) in want.iter().zip(answers) {
            let a = a.map_err(|code| ExchangeError::Status(code.name().into()))?;
            match reflection::decode_response(&a)? {
                Response::Files(files) => got.add(&files)?,
                Response::Error { code, message } => {
                    return Err(ReflectError::MissingFile {
                        file: file.clone(),
                        why: format!("{}: {message}", Code::from_u32(code as u32)),
                    });
                }
                other => return Err(unexpected(format!("file_by_filename \"{file}\""), &other)),
            }
        }
    }
    let pool = got.pool()?;
    let (files, bytes) = (got.files(), got.bytes());
    x.close();
    Ok((pool, files, bytes, api))
}

/// One request on its own stream, its one answer.
fn one(x: &mut Exchange, path: &str, request: &[u8]) -> Result<exchange::Answer, ReflectError> {
    let mut a = x.call(path, &[request.to_vec()])?;
    a.pop().ok_or(ReflectError::Exchange(ExchangeError::Closed))
}

/// The service was not found: the error names those the server has (when
/// it says).
fn unknown_service(x: &mut Exchange, path: &str, service: &str) -> ReflectError {
    let available = match one(x, path, &Request::ListServices.encode()) {
        Ok(Ok(msg)) => match reflection::decode_response(&msg) {
            Ok(Response::Services(mut names)) => {
                names.sort();
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            }
            _ => "it did not list them".into(),
        },
        _ => "it did not list them".into(),
    };
    ReflectError::UnknownService {
        service: service.to_string(),
        available,
    }
}

fn unexpected(asked: String, got: &Response<'_>) -> ReflectError {
    let what = match got {
        Response::Error { code, message } => {
            format!("{}: {message}", Code::from_u32(*code as u32))
        }
        Response::Files(_) => "files".into(),
        Response::Services(_) => "a list of services".into(),
        Response::Other => "no answer to it".into(),
    };
    ReflectError::Unexpected { asked, what }
}

#[cfg(test)]
mod tests;
