//! A unit's `grpc`: a unary gRPC call instead of an HTTP request, what
//! the user writes (`proto` or `reflection`, `import_paths`, `method`,
//! `message`, `metadata`, `deadline`) and its compilation at validation.
//! Every problem names its field (`endpoints[0].grpc.message.id: …`) and,
//! for a `.proto` error, the file and line.
//!
//! With `proto`, everything is compiled at validation: the `.proto` files
//! (relative paths from the config's directory, as data files), the
//! method looked up, the message compiled against its input type, the
//! request header fields made.
//!
//! With `"reflection": true` the descriptors are the server's, and
//! validation stays offline (`userfluxctl config check`, the daemon's
//! submit): it checks what it can without them — `proto` and `reflection`
//! are exclusive, the method is of the form `pkg.Service/Method`, the
//! message is an object (or a JSON template) whose expressions compile,
//! metadata and deadline as with `proto` — and keeps the rest as a
//! [`Reflect`]. The run asks each distinct server and service once when it
//! starts, before any load (`plan::reflect`, next to the ALPN probe in
//! `run::execute`), and compiles the method and message then: a server
//! without reflection, an unreachable one, an unknown service or method,
//! or a message field the method does not have fails the run there,
//! naming the field and the server.
//!
//! What is not there yet is refused, never ignored: streaming methods,
//! templated metadata. A flow with a gRPC step must speak HTTP/2 (its
//! VUs' connections carry every step).

use super::{Config, Endpoint, HttpVersion, Problem};
use crate::duration::Dur;
use crate::load::data::DataSet;
use crate::load::grpc::{self, MessageTemplate, RequestHeaders};
use crate::template::{Scope, Template};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// `grpc`: the unit calls a unary gRPC method over HTTP/2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrpcSpec {
    /// The `.proto` file(s) defining the method, relative to the config's
    /// directory (or absolute); or `reflection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Protos>,
    /// Directories searched for the files and their imports (relative to
    /// the config's directory); each file's own directory is searched too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub import_paths: Vec<String>,
    /// `pkg.Service/Method`; unary methods only.
    pub method: String,
    /// The request message: a JSON object, or a string holding a JSON
    /// template (`{{seq}}`, data sets, env). Default: the empty message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub message: Option<serde_json::Value>,
    /// Request metadata (header fields), lower-case names; not templated.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The call's deadline, sent as `grpc-timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Dur>,
    /// `true`: the method's descriptors come from the server (gRPC server
    /// reflection, v1 or v1alpha) instead of `proto`, asked once when the
    /// run starts; a server without reflection fails the run before any
    /// load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reflection: Option<bool>,
}

/// One `.proto` file or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Protos {
    One(String),
    Many(Vec<String>),
}

impl Protos {
    pub fn files(&self) -> &[String] {
        match self {
            Protos::One(f) => std::slice::from_ref(f),
            Protos::Many(v) => v,
        }
    }
}

/// A unit's call, compiled (or as far as validation can, for reflection).
#[derive(Debug, Clone)]
pub struct GrpcRow {
    /// `/pkg.Service/Method`, the request's `:path`.
    pub path: String,
    pub headers: RequestHeaders,
    pub call: GrpcCall,
}

/// The method and message: compiled from `proto`, or left for the run to
/// compile from what the server gives by reflection.
#[derive(Debug, Clone)]
pub enum GrpcCall {
    Compiled {
        method: grpc::Method,
        message: MessageTemplate,
    },
    Reflect(Arc<Reflect>),
}

/// What a `"reflection": true` unit needs when the run starts to compile
/// its method and message from the server's descriptors.
#[derive(Debug)]
pub struct Reflect {
    /// Where the unit's `grpc` is (`endpoints[0].grpc`), for problems.
    pub at: String,
    /// The method as written.
    pub method: String,
    /// `pkg.Service`: what the server is asked for.
    pub service: String,
    pub message: serde_json::Value,
    /// The message as a template, parsed at validation: the plan reads
    /// which data sets it takes rows from.
    pub template: Template,
    /// The template scope the message compiles in (validation's).
    pub data: Vec<Arc<DataSet>>,
    pub vars: Option<(Vec<String>, Vec<String>)>,
}

impl Reflect {
    /// Compiles the method and message from `pool` (what `server` gave by
    /// reflection); a problem is a `field: why` line.
    pub fn compile(
        &self,
        pool: &prost_reflect::DescriptorPool,
        server: &str,
    ) -> Result<(grpc::Method, MessageTemplate), String> {
        let at = &self.at;
        let by = format!("(as {server} describes it by reflection)");
        let method = grpc::compile::find_method(pool, &self.method, false).map_err(|e| {
            let more = match e {
                grpc::ProtoError::Streaming { .. } => " (unary calls only)",
                _ => "",
            };
            format!("{at}.method: {e}{more} {by}")
        })?;
        let env = Config::env;
        let scope = Scope {
            data: &self.data,
            vars: (self.vars.as_ref()).map(|(a, b)| (a.as_slice(), b.as_slice())),
            env: &env,
        };
        let message = MessageTemplate::new(&method.input(), &self.message, &scope)
            .and_then(|m| m.check_sample(&self.data).map(|()| m))
            .map_err(|e| {
                let (field, why) = message_problem(&e);
                format!("{at}.{field}: {why} {by}")
            })?;
        Ok((method, message))
    }
}

/// A message problem as (field under `grpc`, why).
fn message_problem(e: &grpc::MessageError) -> (String, String) {
    match e {
        grpc::MessageError::Field { path, what } if !path.is_empty() => {
            (format!("message.{path}"), what.clone())
        }
        _ => ("message".into(), e.to_string()),
    }
}

/// Makes each `grpc`'s relative `proto` files and `import_paths` absolute
/// (from the config's directory), as data files are: the resolved config a
/// run records then compiles wherever it is read (`merge` reads it from a
/// shard's run directory).
pub fn absolute_paths(c: &mut Config) {
    let Some(dir) = c.base_dir.clone() else {
        return;
    };
    let fix = |p: &mut String| {
        if !std::path::Path::new(p.as_str()).is_absolute() {
            *p = dir.join(&*p).display().to_string();
        }
    };
    let steps = c.flows.iter_mut().flat_map(|f| f.steps.iter_mut());
    let specs = (c.endpoints.iter_mut().filter_map(|e| e.grpc.as_mut()))
        .chain(steps.filter_map(|s| s.grpc.as_mut()));
    for g in specs {
        match &mut g.proto {
            Some(Protos::One(f)) => fix(f),
            Some(Protos::Many(v)) => v.iter_mut().for_each(fix),
            None => {}
        }
        g.import_paths.iter_mut().for_each(fix);
    }
}

/// The problems of a `grpc` unit's other fields (at `at`): what the call
/// decides itself (method, path, body, headers, HTTP/1.1).
pub fn conflicts(at: &str, ep: &Endpoint, out: &mut Vec<Problem>) {
    let mut bad = |field: &str, why: &str| out.push(Problem::new(format!("{at}.{field}"), why));
    if let Some(m) = ep.method {
        bad(
            "method",
            &format!(
                "a grpc call is always a POST to the method's path (\"{}\" was given); leave method out",
                m.as_str()
            ),
        );
    }
    if ep.expect.is_some() {
        bad(
            "expect",
            "expect lists HTTP status codes, and a grpc call's outcome is its grpc-status (its HTTP status is 200 whatever the outcome); leave expect out, and check the code with a grpc_status check or the thresholds' grpc_status tag",
        );
    }
    if ep.path.is_some() {
        bad(
            "path",
            "a grpc call's path is its method's (/pkg.Service/Method); leave path out (the target gives the server)",
        );
    }
    if ep.body.is_some() {
        bad("body", "a grpc call's body is grpc.message");
    }
    if !ep.headers.is_empty() {
        bad("headers", "a grpc call's header fields are grpc.metadata");
    }
    // (a step's `http` is its flow's: checked with the flow)
    if ep.http == Some(HttpVersion::Http1) && !at.contains(".steps[") {
        bad(
            "http",
            "gRPC runs over HTTP/2; leave http out or give \"2\"",
        );
    }
    if let Some(u) = &ep.url
        && crate::url::HttpUrl::parse(u).is_ok_and(|u| u.path != "/")
    {
        bad(
            "url",
            "a grpc call's path is its method's; give the server only (http://HOST:PORT)",
        );
    }
}

/// Compiles a unit's `grpc` (at `at`): its problems go to `out`.
pub fn compile(
    c: &Config,
    at: &str,
    spec: &GrpcSpec,
    scope: &Scope<'_>,
    out: &mut Vec<Problem>,
) -> Option<GrpcRow> {
    let at = format!("{at}.grpc");
    let mut bad = |field: &str, why: String| {
        out.push(Problem::new(
            if field.is_empty() {
                at.clone()
            } else {
                format!("{at}.{field}")
            },
            why,
        ))
    };
    let reflect = spec.reflection == Some(true);
    if reflect && spec.proto.is_some() {
        bad(
            "reflection",
            "give proto or reflection, not both (the .proto files, or the server's descriptors)"
                .into(),
        );
        return None;
    }
    if reflect && !spec.import_paths.is_empty() {
        bad(
            "import_paths",
            "import paths are for proto files; by reflection the server gives the imports".into(),
        );
        return None;
    }
    if !reflect && spec.proto.is_none() {
        bad(
            "proto",
            "missing: give the .proto file(s) that define the method, or \"reflection\": true to ask the server for them"
                .into(),
        );
        return None;
    }
    let mut problems = false;
    for (k, v) in &spec.metadata {
        if Template::is_templated(v) {
            bad(
                &format!("metadata.{k}"),
                "templated metadata is not supported yet; give a fixed value".into(),
            );
            problems = true;
        }
    }
    let call = if reflect {
        let service = match grpc::compile::split_method(&spec.method) {
            Ok((service, _)) => service,
            Err(e) => {
                bad("method", e.to_string());
                return None;
            }
        };
        let message = spec.message.clone().unwrap_or_default();
        let template = match MessageTemplate::check_shape(&message, scope) {
            Ok(t) => t,
            Err(e) => {
                let (field, why) = message_problem(&e);
                bad(&field, why);
                return None;
            }
        };
        if problems {
            return None;
        }
        GrpcCall::Reflect(Arc::new(Reflect {
            at: at.clone(),
            method: spec.method.clone(),
            service: service.to_string(),
            message,
            template,
            data: scope.data.to_vec(),
            vars: (scope.vars).map(|(a, b)| (a.to_vec(), b.to_vec())),
        }))
    } else {
        compile_proto(c, spec, scope, &mut bad, problems)?
    };
    let path = match &call {
        GrpcCall::Compiled { method, .. } => method.path.clone(),
        GrpcCall::Reflect(r) => format!("/{}", r.method.trim_start_matches('/')),
    };
    // the engine's own bound on a call must not end it before the server
    // can answer DEADLINE_EXCEEDED (it would count as `timeout` instead)
    if let Some(d) = spec.deadline
        && d.0 >= c.timeouts.request.0
    {
        bad(
            "deadline",
            format!(
                "{d} is not below timeouts.request ({}): the engine would time the call out first; raise timeouts.request",
                c.timeouts.request
            ),
        );
        return None;
    }
    let headers = match RequestHeaders::new(
        &path,
        spec.deadline.map(|d| d.0),
        spec.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ) {
        Ok(h) => h,
        Err(e) => {
            let field = match &e {
                grpc::MetadataError::Deadline(_) => "deadline".to_string(),
                grpc::MetadataError::BadKey(k)
                | grpc::MetadataError::Reserved(k)
                | grpc::MetadataError::Pseudo(k)
                | grpc::MetadataError::NotBase64(k)
                | grpc::MetadataError::Duplicate(_, k)
                | grpc::MetadataError::BadValue(k) => format!("metadata.{k}"),
            };
            bad(&field, e.to_string());
            return None;
        }
    };
    Some(GrpcRow {
        path,
        headers,
        call,
    })
}

/// The `proto` part of [`compile`]: the files compiled, the method looked
/// up, the message compiled against its input.
fn compile_proto(
    c: &Config,
    spec: &GrpcSpec,
    scope: &Scope<'_>,
    bad: &mut impl FnMut(&str, String),
    mut problems: bool,
) -> Option<GrpcCall> {
    let protos = spec.proto.as_ref()?;
    let place = |what: &str, p: &str| -> Result<PathBuf, String> {
        let path = PathBuf::from(p);
        match (&c.base_dir, path.is_absolute()) {
            (_, true) => Ok(path),
            (Some(dir), false) => Ok(dir.join(path)),
            (None, false) => Err(format!(
                "{what} \"{p}\" is relative, and this config has no file to be relative to; give an absolute path"
            )),
        }
    };
    let mut files = Vec::new();
    for (i, f) in protos.files().iter().enumerate() {
        match place("file", f) {
            Ok(p) => files.push(p),
            Err(e) => {
                bad(&format!("proto[{i}]"), e);
                problems = true;
            }
        }
    }
    let mut imports = Vec::new();
    for (i, d) in spec.import_paths.iter().enumerate() {
        // (a directory that is not there would be searched in vain, and
        // the import it was for reported "not found" with no word of it)
        let checked = place("directory", d).and_then(|p| match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => Ok(p),
            Ok(_) => Err(format!("{} is not a directory", p.display())),
            Err(e) => Err(format!("directory {}: {e}", p.display())),
        });
        match checked {
            Ok(p) => imports.push(p),
            Err(e) => {
                bad(&format!("import_paths[{i}]"), e);
                problems = true;
            }
        }
    }
    if problems {
        return None;
    }
    let method = match grpc::compile(&files, &imports, &spec.method, false) {
        Ok(m) => m,
        Err(e) => {
            let field = match e {
                grpc::ProtoError::BadMethodName(_)
                | grpc::ProtoError::UnknownService { .. }
                | grpc::ProtoError::UnknownMethod { .. } => "method",
                grpc::ProtoError::Streaming { .. } => {
                    bad(
                        "method",
                        format!(
                            "{e} (unary calls only: server, client and bidirectional streaming are not supported yet)"
                        ),
                    );
                    return None;
                }
                _ => "proto",
            };
            bad(field, e.to_string());
            return None;
        }
    };
    let message = match MessageTemplate::new(
        &method.input(),
        spec.message.as_ref().unwrap_or(&serde_json::Value::Null),
        scope,
    )
    .and_then(|m| m.check_sample(scope.data).map(|()| m))
    {
        Ok(m) => m,
        Err(e) => {
            let (field, why) = message_problem(&e);
            bad(&field, why);
            return None;
        }
    };
    Some(GrpcCall::Compiled { method, message })
}

#[cfg(test)]
#[path = "grpc_tests.rs"]
mod tests;
