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
mod tests {
    use crate::config::Config;
    use std::path::Path;

    const PROTO: &str = include_str!("../../../tests/grpc/echo.proto");

    fn problems_of(endpoint: &str, dir: &Path) -> Vec<String> {
        let json = format!(
            r#"{{"target": "http://127.0.0.1:1", "duration": "1s",
                "endpoints": [{{"name": "e", "rate": 1, {endpoint}}}]}}"#
        );
        let (mut c, _) = Config::parse_migrating(&json).unwrap();
        c.base_dir = Some(dir.to_path_buf());
        match c.resolve() {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    /// A problem holding every `|`-separated part of `want`.
    fn has(problems: &[String], want: &str) {
        assert!(
            problems
                .iter()
                .any(|p| want.split('|').all(|w| p.contains(w))),
            "no {want:?} in {problems:#?}"
        );
    }

    /// Every mistake in `grpc` names its field; `.proto` errors name the
    /// file and line; what is not supported yet is refused, not ignored.
    #[test]
    fn grpc_errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("echo.proto"), PROTO).unwrap();
        std::fs::write(
            dir.path().join("bad.proto"),
            "syntax = \"proto3\";\npackage b;\nmessage M {\n  strin x = 1;\n}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("imp.proto"),
            "syntax = \"proto3\";\nimport \"zero\";\n",
        )
        .unwrap();
        let ok = r#""grpc": {"proto": "echo.proto", "method": "echo.Echo/Say",
                    "message": "{\"text\": \"{{seq}}\", \"user\": {\"id\": {{vu}}}}",
                    "metadata": {"x-k": "v"}, "deadline": "2s"}"#;
        assert_eq!(problems_of(ok, dir.path()), Vec::<String>::new());
        let cases = [
            (
                r#""grpc": {"proto": "bad.proto", "method": "b.S/M"}"#,
                "endpoints[0].grpc.proto: bad.proto:4: name 'strin' is not defined",
            ),
            (
                r#""grpc": {"proto": "nope.proto", "method": "b.S/M"}"#,
                "endpoints[0].grpc.proto: /|nope.proto: not found",
            ),
            // a device or a FIFO is refused, never read (it may never end)
            (
                r#""grpc": {"proto": "/dev/zero", "method": "b.S/M"}"#,
                "endpoints[0].grpc.proto: |/dev/zero: is a device, not a regular file",
            ),
            (
                r#""grpc": {"proto": "imp.proto", "import_paths": ["/dev"], "method": "b.S/M"}"#,
                "endpoints[0].grpc.proto: |/dev/zero: is a device, not a regular file",
            ),
            (
                r#""grpc": {"proto": "echo.proto", "import_paths": [".", "/nonexistent"], "method": "echo.Echo/Say"}"#,
                "endpoints[0].grpc.import_paths[1]: directory /nonexistent: No such file",
            ),
            (
                r#""grpc": {"proto": "echo.proto", "import_paths": ["echo.proto"], "method": "echo.Echo/Say"}"#,
                "endpoints[0].grpc.import_paths[0]: |echo.proto is not a directory",
            ),
            (
                r#""grpc": {"proto": "echo.proto", "method": "echo.Echo/Say", "metadata": {"x-trace-bin": "not base64!"}}"#,
                "endpoints[0].grpc.metadata.x-trace-bin: |a -bin value must be base64",
            ),
            (
                r#""grpc": {"proto": "echo.proto", "method": "echo.Echo/Say", "metadata": {"X-Upper": "V", "x-upper": "w"}}"#,
                "endpoints[0].grpc.metadata.x-upper: |metadata keys \"X-Upper\" and \"x-upper\" are the same key",
            ),
            (
                r#""grpc": {"proto": ["echo.proto"], "method": "echo.Echo/Shout"}"#,
                "endpoints[0].grpc.method: service echo.Echo has no method \"Shout\"",
            ),
            (
                r#""grpc": {"proto": "echo.proto", "method": "echo.Nope/Say"}"#,
                "endpoints[0].grpc.method: unknown service",
            ),
            (
                r#""grpc": {"proto": "echo.proto", "method": "echo.Echo/Tick"}"#,
                "endpoints[0].grpc.method: /echo.Echo/Tick is a server streaming method",
            ),
            (
                r#""grpc": {"proto": "echo.proto", "method": "echo.Echo/Say", "message": {"user": {"idd": 1}}}"#,
                "endpoints[0].grpc.message.user",
            ),
            (
                r#""grpc": {"proto": "echo.proto", "method": "echo.Echo/Say", "message": {"count": "x"}}"#,
                "endpoints[0].grpc.message.count",
            ),
            (
                r#""grpc": {"reflection": true, "proto": "echo.proto", "method": "echo.Echo/Say"}"#,
                "endpoints[0].grpc.reflection: give proto or reflection, not both",
            ),
            (
                r#""grpc": {"reflection": true, "import_paths": ["."], "method": "echo.Echo/Say"}"#,
                "endpoints[0].grpc.import_paths: import paths are for proto files",
            ),
            (
                r#""grpc": {"reflection": true, "method": "echo.Echo"}"#,
                "endpoints[0].grpc.method: method \"echo.Echo\" is not of the form pkg.Service/Method",
            ),
            (
                r#""grpc": {"reflection": true, "method": "echo.Echo/Say", "message": "{\"text\": \"{{nope}}\"}"}"#,
                "endpoints[0].grpc.message: unknown variable \"nope\"",
            ),
            (
                r#""grpc": {"reflection": true, "method": "echo.Echo/Say", "message": "{\"id\": {{seq}}"}"#,
                "endpoints[0].grpc.message: not a JSON object",
            ),
            (
                r#""grpc": {"reflection": true, "method": "echo.Echo/Say", "message": [1]}"#,
                "endpoints[0].grpc.message: not a JSON object: expected an object or a string",
            ),
            (
                r#""grpc": {"reflection": true, "method": "echo.Echo/Say", "metadata": {"x-id": "{{seq}}"}}"#,
                "endpoints[0].grpc.metadata.x-id: templated metadata is not supported yet",
            ),
            (
                r#""grpc": {"reflection": true, "method": "echo.Echo/Say", "deadline": "30s"}"#,
                "endpoints[0].grpc.deadline: 30s is not below timeouts.request (30s)",
            ),
            (
                r#""grpc": {"method": "echo.Echo/Say"}"#,
                "endpoints[0].grpc.proto: missing: give the .proto file(s) that define the method, or \"reflection\": true",
            ),
            (
                r#""grpc": {"reflection": false, "method": "echo.Echo/Say"}"#,
                "endpoints[0].grpc.proto: missing",
            ),
            (
                r#""grpc": {"proto": "echo.proto", "method": "echo.Echo/Say", "metadata": {"x-id": "{{seq}}"}}"#,
                "endpoints[0].grpc.metadata.x-id: templated metadata is not supported yet",
            ),
            (
                r#""grpc": {"proto": "echo.proto", "method": "echo.Echo/Say", "metadata": {"grpc-x": "1"}}"#,
                "endpoints[0].grpc.metadata.grpc-x: metadata key \"grpc-x\" is reserved",
            ),
            (
                r#""grpc": {"proto": "echo.proto", "method": "echo.Echo/Say", "deadline": "0s"}"#,
                "endpoints[0].grpc.deadline",
            ),
            (
                r#""grpc": {"proto": "echo.proto", "method": "echo.Echo/Say", "deadline": "30s"}"#,
                "endpoints[0].grpc.deadline: 30s is not below timeouts.request (30s)",
            ),
            (
                r#""path": "/x", "grpc": {"proto": "echo.proto", "method": "echo.Echo/Say"}"#,
                "endpoints[0].path: a grpc call's path is its method's",
            ),
            (
                r#""method": "PUT", "body": "x", "grpc": {"proto": "echo.proto", "method": "echo.Echo/Say"}"#,
                "endpoints[0].body: a grpc call's body is grpc.message",
            ),
            (
                r#""http": "1.1", "grpc": {"proto": "echo.proto", "method": "echo.Echo/Say"}"#,
                "endpoints[0].http: gRPC runs over HTTP/2",
            ),
            // HTTP-only fields: GET was taken (the default's value) and
            // expect turned every OK call into a `status` error
            (
                r#""method": "GET", "grpc": {"proto": "echo.proto", "method": "echo.Echo/Say"}"#,
                "endpoints[0].method: a grpc call is always a POST|\"GET\" was given",
            ),
            (
                r#""method": "POST", "grpc": {"proto": "echo.proto", "method": "echo.Echo/Say"}"#,
                "endpoints[0].method: a grpc call is always a POST",
            ),
            (
                r#""expect": [404], "grpc": {"proto": "echo.proto", "method": "echo.Echo/Say"}"#,
                "endpoints[0].expect: expect lists HTTP status codes|grpc_status",
            ),
        ];
        let mut missed = Vec::new();
        for (endpoint, want) in cases {
            let got = problems_of(endpoint, dir.path());
            if !got.iter().any(|p| want.split('|').all(|w| p.contains(w))) {
                missed.push(format!("{want}: got {got:?}"));
            }
        }
        assert!(missed.is_empty(), "{missed:#?}");
        has(
            &problems_of(
                r#""method": "PUT", "grpc": {"proto": "echo.proto", "method": "echo.Echo/Say"}"#,
                dir.path(),
            ),
            "endpoints[0].method: a grpc call is always a POST",
        );
        let e = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "duration": "1s", "endpoints": [{"name": "e",
                "grpc": {"proto": "echo.proto", "method": "echo.Echo/Say", "stream": true}}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("endpoints[0].grpc.stream: unknown field `stream`"),
            "{e}"
        );
        // a flow's gRPC steps need the flow to speak HTTP/2
        let flow = |http: &str| {
            let json = format!(
                r#"{{"target": "http://127.0.0.1:1", "duration": "1s", {http}
                    "flows": [{{"name": "f", "rate": 1, "steps": [{{"name": "s",
                      "grpc": {{"proto": "echo.proto", "method": "echo.Echo/Say"}}}}]}}]}}"#
            );
            let (mut c, _) = Config::parse_migrating(&json).unwrap();
            c.base_dir = Some(dir.path().to_path_buf());
            c.resolve().err().map(|e| e.problems).unwrap_or_default()
        };
        has(
            &flow(""),
            "flows[0].steps[0].grpc: a gRPC step runs over HTTP/2",
        );
        assert_eq!(flow(r#""http": "2","#), Vec::<String>::new());
        // a step's HTTP-only fields too
        let json = r#"{"target": "http://127.0.0.1:1", "duration": "1s", "http": "2",
            "flows": [{"name": "f", "rate": 1, "steps": [{"name": "s", "method": "GET",
              "expect": [200], "grpc": {"proto": "echo.proto", "method": "echo.Echo/Say"}}]}]}"#;
        let (mut c, _) = Config::parse_migrating(json).unwrap();
        c.base_dir = Some(dir.path().to_path_buf());
        let got = c.resolve().unwrap_err().problems;
        has(
            &got,
            "flows[0].steps[0].method: a grpc call is always a POST",
        );
        has(
            &got,
            "flows[0].steps[0].expect: expect lists HTTP status codes",
        );
    }

    /// A templated message is rendered once with sample values and encoded
    /// at validation: one that cannot be encoded names its field (it used
    /// to pass, then fail every call with nothing sent). Captured values
    /// are unknown then: a template using them is left to the calls.
    #[test]
    fn a_template_that_cannot_be_encoded_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("echo.proto"), PROTO).unwrap();
        std::fs::write(dir.path().join("users.csv"), "id,name\nx9,ann\n11,bob\n").unwrap();
        std::fs::write(dir.path().join("later.csv"), "id\n1\n2\nx9\n").unwrap();
        let problems = |message: &str| {
            let json = format!(
                r#"{{"target": "http://127.0.0.1:1", "duration": "1s",
                    "data": {{"users": {{"file": "users.csv"}}, "later": {{"file": "later.csv"}}}},
                    "endpoints": [{{"name": "e", "rate": 1, "grpc": {{"proto": "echo.proto",
                      "method": "echo.Echo/Say", "message": {message}}}}}]}}"#
            );
            let (mut c, _) = Config::parse_migrating(&json).unwrap();
            c.base_dir = Some(dir.path().to_path_buf());
            c.resolve().err().map(|e| e.problems).unwrap_or_default()
        };
        for (message, want) in [
            (
                r#""{\"text\": {{seq}} }""#,
                "endpoints[0].grpc.message.text: expected a string: with sample values (seq 0, vu 0, each data set's first row) the template gives 0; put the template in quotes",
            ),
            (
                r#""{\"{{seq}}\": \"x\"}""#,
                "endpoints[0].grpc.message.0: unknown field (not in the .proto): with sample values",
            ),
            (
                r#""{\"count\": {{rand_str(3)}} }""#,
                "endpoints[0].grpc.message.count: expected an integer",
            ),
            // the first row's id is no integer
            (
                r#""{\"user\": {\"id\": {{data.users.id}} }, \"text\": \"{{data.users.name}}\"}""#,
                "endpoints[0].grpc.message.user.id: expected an integer: with sample values (seq 0, vu 0, each data set's first row) the template gives x9",
            ),
            // every row is tried, not only the first: a later row that does
            // not fit is named by file and line
            (
                r#""{\"user\": {\"id\": {{data.later.id}} }}""#,
                "endpoints[0].grpc.message.user.id: expected an integer: with row |later.csv:4 of data set \"later\" the template gives x9",
            ),
            (
                r#""{\"labels\": {\"k\": \"v\"}, \"numbers\": [{{data.later.id}}]}""#,
                "endpoints[0].grpc.message.numbers|later.csv:4",
            ),
            // a full encode (a template in a repeated field) is checked too
            (
                r#""{\"numbers\": [1, {{data.users.name}}]}""#,
                "endpoints[0].grpc.message.numbers",
            ),
        ] {
            has(&problems(message), want);
        }
        for fine in [
            r#""{\"text\": \"{{seq}}\", \"count\": {{seq}}, \"user\": {\"id\": \"{{vu}}\"}}""#,
            r#""{\"labels\": {\"{{seq}}\": \"x\"}}""#,
            r#""{\"text\": \"{{data.users.id}}\"}""#,
        ] {
            assert_eq!(problems(fine), Vec::<String>::new(), "{fine}");
        }
        // a flow step's template using a captured value is not rendered at
        // validation (the value is known only when the flow runs)
        let json = r#"{"target": "http://127.0.0.1:1", "duration": "1s", "http": "2",
            "flows": [{"name": "f", "rate": 1, "steps": [
              {"name": "a", "path": "/", "capture": {"t": {"json": "/t"}}},
              {"name": "b", "grpc": {"proto": "echo.proto", "method": "echo.Echo/Say",
                 "message": "{\"count\": {{vars.t}}, \"text\": {{seq}} }"}}]}]}"#;
        let (mut c, _) = Config::parse_migrating(json).unwrap();
        c.base_dir = Some(dir.path().to_path_buf());
        let got = c.resolve().err().map(|e| e.problems).unwrap_or_default();
        // (the field without vars is still checked)
        has(
            &got,
            "flows[0].steps[1].grpc.message.text: expected a string",
        );
        assert!(!got.iter().any(|p| p.contains("count")), "{got:?}");
    }

    /// The resolved config (config.json) says no method for a gRPC unit
    /// (it said "GET" for a call that is a POST), and GET for an HTTP one
    /// that left it out.
    #[test]
    fn the_resolved_config_claims_no_method_for_a_grpc_unit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("echo.proto"), PROTO).unwrap();
        let json = r#"{"target": "http://127.0.0.1:1", "duration": "1s", "http": "2",
            "endpoints": [{"name": "g", "rate": 1, "grpc": {"proto": "echo.proto", "method": "echo.Echo/Say"}},
                          {"name": "h", "rate": 1, "path": "/"}],
            "flows": [{"name": "f", "rate": 1, "steps": [
                {"name": "g", "grpc": {"proto": "echo.proto", "method": "echo.Echo/Say"}},
                {"name": "h", "path": "/"}]}]}"#;
        let (mut c, _) = Config::parse_migrating(json).unwrap();
        c.base_dir = Some(dir.path().to_path_buf());
        let c = c.resolve().unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v.pointer("/endpoints/0/method"), None, "{v}");
        assert_eq!(v.pointer("/endpoints/1/method").unwrap(), "GET");
        assert_eq!(v.pointer("/flows/0/steps/0/method"), None, "{v}");
        assert_eq!(v.pointer("/flows/0/steps/1/method").unwrap(), "GET");
        // and it resolves again as it is (merge reads it from a shard)
        let again: Config = serde_json::from_value(v).unwrap();
        again.resolve().unwrap();
    }

    /// A `"reflection": true` unit validates offline (nothing listens at
    /// its target): the plan's row waits for the run's start to resolve
    /// it, with its path and header fields made and no request encoded.
    #[test]
    fn a_reflection_unit_validates_offline_and_waits_in_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ids.csv"), "id\n7\n8\n").unwrap();
        let json = r#"{"target": "http://127.0.0.1:1", "duration": "1s",
            "data": {"ids": {"file": "ids.csv"}},
            "endpoints": [{"name": "e", "rate": 1, "grpc": {"reflection": true,
              "method": "echo.Echo/Say", "message": "{\"text\": \"{{data.ids.id}}\"}",
              "metadata": {"x-k": "v"}, "deadline": "2s"}}]}"#;
        let (mut c, _) = Config::parse_migrating(json).unwrap();
        c.base_dir = Some(dir.path().to_path_buf());
        let c = c.resolve().unwrap();
        let plan = crate::plan::build::prepare_with(&c, false).unwrap();
        let row = &plan.endpoints[0];
        let r = row.reflect.as_ref().expect("waits for reflection");
        assert_eq!(
            (r.at.as_str(), r.service.as_str(), r.method.as_str()),
            ("endpoints[0].grpc", "echo.Echo", "echo.Echo/Say")
        );
        assert!(row.grpc.is_none() && row.h2.is_none());
        assert_eq!(&row.data_sets[..], [0], "the message's data set is known");
        let text = String::from_utf8_lossy(&row.request);
        assert!(
            text.starts_with("POST /echo.Echo/Say HTTP/1.1\r\n"),
            "{text}"
        );
        assert!(text.contains("grpc-timeout: 2000000u\r\n") && text.contains("x-k: v\r\n"));
    }

    /// The plan runs a grpc row as the call: POST to the method's path over
    /// HTTP/2, the gRPC fields in its header block, a fixed message's
    /// framed bytes as its body.
    #[test]
    fn a_grpc_row_is_a_post_over_h2() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("echo.proto"), PROTO).unwrap();
        let json = r#"{"target": "http://127.0.0.1:1", "duration": "1s", "streams": 8,
            "endpoints": [{"name": "e", "rate": 1, "grpc": {"proto": "echo.proto",
              "method": "echo.Echo/Say", "message": {"text": "hi"}, "deadline": "1500ms",
              "metadata": {"x-k": "v"}}}]}"#;
        let (mut c, _) = Config::parse_migrating(json).unwrap();
        c.base_dir = Some(dir.path().to_path_buf());
        let c = c.resolve().unwrap();
        let plan = crate::plan::build::prepare_with(&c, false).unwrap();
        let row = &plan.endpoints[0];
        assert_eq!(
            (row.http, row.streams, row.method, row.path.as_str()),
            (crate::plan::Http::H2, 8, "POST", "/echo.Echo/Say")
        );
        let text = String::from_utf8_lossy(&row.request);
        assert!(
            text.starts_with("POST /echo.Echo/Say HTTP/1.1\r\n"),
            "{text}"
        );
        for f in [
            "content-type: application/grpc\r\n",
            "te: trailers\r\n",
            "grpc-timeout: 1500000u\r\n",
            "x-k: v\r\n",
        ] {
            assert!(text.contains(f), "{f} in {text}");
        }
        assert!(
            !text.to_ascii_lowercase().contains("content-length"),
            "{text}"
        );
        // "hi" as field 1, framed: flag 0, length 4
        assert_eq!(
            &row.h2.as_ref().expect("encoded once").body[..],
            &[0, 0, 0, 0, 4, 0x0a, 2, b'h', b'i']
        );
        assert!(row.grpc.is_some());
    }
}
