//! A gRPC method compiled from `.proto` files when a run is prepared: the
//! files are parsed and checked by `protox` (protoc in Rust, no codegen, no
//! child process) into a `prost-reflect` descriptor pool, and the method
//! `pkg.Service/Method` is looked up in it. What comes out ([`Method`]) is
//! all a worker needs: the input and output message descriptors (to encode
//! the request, decode the response), the `:path`, and whether either side
//! streams.
//!
//! Why these crates: see the commit that added them (measured compile
//! time, binary size, advisories). Errors say what was wrong and where:
//! the file and line of a parse error, the services there are when the
//! service is unknown, the methods a service has when the method is.

use miette::Diagnostic;
use prost_reflect::{DescriptorPool, MessageDescriptor, MethodDescriptor};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// One callable method.
#[derive(Debug, Clone)]
pub struct Method {
    pub descriptor: MethodDescriptor,
    /// `/pkg.Service/Method`, the request's `:path`.
    pub path: String,
}

impl Method {
    pub fn input(&self) -> MessageDescriptor {
        self.descriptor.input()
    }

    pub fn output(&self) -> MessageDescriptor {
        self.descriptor.output()
    }

    pub fn client_streaming(&self) -> bool {
        self.descriptor.is_client_streaming()
    }

    pub fn server_streaming(&self) -> bool {
        self.descriptor.is_server_streaming()
    }
}

/// What is wrong with the `.proto` files or the method named.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtoError {
    #[error("no .proto file given")]
    NoFiles,
    #[error("{file}: not found (looked in the import paths {paths})")]
    NotFound { file: String, paths: String },
    /// A syntax or semantic error; `line` is 1-based when known.
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        file: String,
        line: Option<usize>,
        message: String,
    },
    #[error("method {0:?} is not of the form pkg.Service/Method")]
    BadMethodName(String),
    #[error("unknown service {service:?}; the .proto files define: {available}")]
    UnknownService { service: String, available: String },
    #[error("service {service} has no method {method:?}; it has: {available}")]
    UnknownMethod {
        service: String,
        method: String,
        available: String,
    },
    #[error("{path} is a {kind} streaming method; only unary methods are supported so far")]
    Streaming { path: String, kind: &'static str },
}

/// Compiles `files` (found directly or under `import_paths`; each file's
/// own directory is searched after the import paths) and returns `method`.
/// `allow_server_streaming` admits server-streaming methods for a caller
/// that handles them; client and bidirectional streaming are refused.
pub fn compile(
    files: &[PathBuf],
    import_paths: &[PathBuf],
    method: &str,
    allow_server_streaming: bool,
) -> Result<Method, ProtoError> {
    let pool = compile_pool(files, import_paths)?;
    find_method(&pool, method, allow_server_streaming)
}

/// Compiles `files` into a descriptor pool (their imports included).
pub fn compile_pool(
    files: &[PathBuf],
    import_paths: &[PathBuf],
) -> Result<DescriptorPool, ProtoError> {
    if files.is_empty() {
        return Err(ProtoError::NoFiles);
    }
    let mut includes: Vec<PathBuf> = import_paths.to_vec();
    for f in files {
        let dir = f
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !includes.iter().any(|i| i == dir) {
            includes.push(dir.to_path_buf());
        }
    }
    let paths = includes
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut resolver = protox::file::ChainFileResolver::new();
    for dir in &includes {
        resolver.add(Capped {
            dir: dir.clone(),
            inner: protox::file::IncludeFileResolver::new(dir.clone()),
        });
    }
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    for f in files {
        compiler.open_file(f).map_err(|e| {
            let mut err = to_error(&e, &paths);
            // A file outside every include path has no name of its own in
            // protox's error: name the one the config gave.
            if let ProtoError::Parse { file, .. } | ProtoError::NotFound { file, .. } = &mut err
                && file.is_empty()
            {
                *file = f.display().to_string();
            }
            err
        })?;
    }
    Ok(compiler.descriptor_pool())
}

/// Largest `.proto` file read (a schema, not data: the demo's are under
/// 1 KiB, Google's descriptor.proto is 40 KiB).
pub const MAX_PROTO_FILE: u64 = 4 << 20;

/// protox's include-path resolver, reading only regular files of at most
/// [`MAX_PROTO_FILE`] bytes: a config naming `/dev/zero`, a FIFO or a huge
/// file (as a `proto`, or through an import path) must be an error, not a
/// hang or a whole file read into memory (protox alone reads up to 2 GiB
/// from anything it can open).
struct Capped {
    dir: PathBuf,
    inner: protox::file::IncludeFileResolver,
}

impl protox::file::FileResolver for Capped {
    fn resolve_path(&self, path: &Path) -> Option<String> {
        self.inner.resolve_path(path)
    }

    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        // where IncludeFileResolver looks (a name is `/`-separated and
        // relative: protox checked it)
        let path = self.dir.join(name);
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(protox::Error::file_not_found(name));
            }
            _ => {}
        }
        let bytes = crate::files::read_capped(&path, MAX_PROTO_FILE)
            .map_err(|why| protox::Error::new(format!("{}: {why}", path.display())))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| protox::Error::new(format!("{}: not UTF-8 text", path.display())))?;
        protox::file::File::from_source(name, &text)
    }
}

fn to_error(e: &protox::Error, paths: &str) -> ProtoError {
    let file = e.file().unwrap_or_default().to_string();
    if e.is_file_not_found() {
        // An import not found is reported against the importing file;
        // the message names the import.
        return match e.to_string().strip_prefix("import ") {
            Some(rest) => ProtoError::Parse {
                file,
                line: line_of(e),
                message: format!("import {rest} (import paths: {paths})"),
            },
            None => ProtoError::NotFound {
                file,
                paths: paths.to_string(),
            },
        };
    }
    ProtoError::Parse {
        line: line_of(e),
        message: e.to_string(),
        file,
    }
}

/// The 1-based line of the error's first labelled span, when protox kept
/// the source.
fn line_of(e: &protox::Error) -> Option<usize> {
    let diag: &dyn Diagnostic = e;
    let source = diag.source_code()?;
    let label = diag.labels()?.next()?;
    let span = source.read_span(label.inner(), 0, 0).ok()?;
    Some(span.line() + 1)
}

/// `pkg.Service/Method` (a leading `/` is allowed) as (service, method).
pub fn split_method(name: &str) -> Result<(&str, &str), ProtoError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    match bare.split_once('/') {
        Some((service, method))
            if !service.is_empty() && !method.is_empty() && !method.contains('/') =>
        {
            Ok((service, method))
        }
        _ => Err(ProtoError::BadMethodName(name.to_string())),
    }
}

/// Looks up `pkg.Service/Method` (a leading `/` is allowed).
pub fn find_method(
    pool: &DescriptorPool,
    name: &str,
    allow_server_streaming: bool,
) -> Result<Method, ProtoError> {
    let (service, method) = split_method(name)?;
    let Some(svc) = pool.get_service_by_name(service) else {
        let mut names: Vec<String> = pool.services().map(|s| s.full_name().to_string()).collect();
        names.sort();
        return Err(ProtoError::UnknownService {
            service: service.to_string(),
            available: list(&names),
        });
    };
    let Some(m) = svc.methods().find(|m| m.name() == method) else {
        let names: Vec<String> = svc.methods().map(|m| m.name().to_string()).collect();
        return Err(ProtoError::UnknownMethod {
            service: service.to_string(),
            method: method.to_string(),
            available: list(&names),
        });
    };
    let path = format!("/{}/{}", svc.full_name(), m.name());
    let kind = match (m.is_client_streaming(), m.is_server_streaming()) {
        (false, false) => None,
        (false, true) if allow_server_streaming => None,
        (false, true) => Some("server"),
        (true, false) => Some("client"),
        (true, true) => Some("bidirectional"),
    };
    if let Some(kind) = kind {
        return Err(ProtoError::Streaming { path, kind });
    }
    Ok(Method {
        descriptor: m,
        path,
    })
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The test service (the same file the Python test server serves).
    pub fn echo_proto() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/grpc/echo.proto")
    }

    pub fn echo(method: &str) -> Method {
        compile(&[echo_proto()], &[], method, false).unwrap()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_unary_method_compiles_with_its_path_and_messages() {
        let m = echo("echo.Echo/Say");
        assert_eq!(m.path, "/echo.Echo/Say");
        assert_eq!(m.input().full_name(), "echo.SayRequest");
        assert_eq!(m.output().full_name(), "echo.SayReply");
        assert!(!m.client_streaming() && !m.server_streaming());
        assert_eq!(echo("/echo.Echo/Say").path, "/echo.Echo/Say");
    }

    #[test]
    fn an_unknown_service_lists_the_services_there_are() {
        let e = compile(&[echo_proto()], &[], "echo.Nope/Say", false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown service \"echo.Nope\"; the .proto files define: echo.Echo"
        );
    }

    #[test]
    fn an_unknown_method_lists_the_methods_the_service_has() {
        let e = compile(&[echo_proto()], &[], "echo.Echo/Shout", false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "service echo.Echo has no method \"Shout\"; it has: Say, Fail, Tick"
        );
        let e = compile(&[echo_proto()], &[], "echo.Echo", false).unwrap_err();
        assert_eq!(e, ProtoError::BadMethodName("echo.Echo".into()));
    }

    #[test]
    fn a_streaming_method_is_refused_unless_allowed() {
        let e = compile(&[echo_proto()], &[], "echo.Echo/Tick", false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/echo.Echo/Tick is a server streaming method; only unary methods are supported so far"
        );
        let m = compile(&[echo_proto()], &[], "echo.Echo/Tick", true).unwrap();
        assert!(m.server_streaming());
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.proto");
        let e = compile(&[missing], &[], "a.B/C", false).unwrap_err();
        let ProtoError::NotFound { file, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(file.ends_with("nope.proto"), "{e}");
        assert!(matches!(
            compile(&[], &[], "a.B/C", false),
            Err(ProtoError::NoFiles)
        ));
    }

    #[test]
    fn a_parse_error_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "bad.proto",
            "syntax = \"proto3\";\npackage a;\n\nmessage M {\n  int32 x = 1\n}\n",
        );
        let e = compile(&[f], &[], "a.S/M", false).unwrap_err();
        let ProtoError::Parse { file, line, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(file, "bad.proto");
        assert_eq!(*line, Some(6), "{e}");
        assert!(e.to_string().starts_with("bad.proto:6: "), "{e}");
    }

    #[test]
    fn an_unknown_type_and_a_missing_import_are_errors_with_lines() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "types.proto",
            "syntax = \"proto3\";\npackage a;\nmessage M {\n  Nope x = 1;\n}\n",
        );
        let e = compile(&[f], &[], "a.S/M", false).unwrap_err();
        assert!(e.to_string().starts_with("types.proto:4: "), "{e}");
        let g = write(
            dir.path(),
            "imports.proto",
            "syntax = \"proto3\";\nimport \"other/missing.proto\";\npackage a;\n",
        );
        let e = compile(&[g], &[], "a.S/M", false).unwrap_err();
        assert!(e.to_string().starts_with("imports.proto:2: import"), "{e}");
        assert!(e.to_string().contains("missing.proto"), "{e}");
    }

    #[test]
    fn imports_resolve_through_import_paths_and_well_known_types() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        write(
            &dir.path().join("lib"),
            "common.proto",
            "syntax = \"proto3\";\npackage common;\nmessage Id { int64 value = 1; }\n",
        );
        let main = write(
            dir.path(),
            "svc.proto",
            "syntax = \"proto3\";\npackage svc;\nimport \"common.proto\";\nimport \"google/protobuf/timestamp.proto\";\n\
             message Req { common.Id id = 1; google.protobuf.Timestamp at = 2; }\n\
             service Users { rpc Get(Req) returns (common.Id); }\n",
        );
        let m = compile(&[main], &[dir.path().join("lib")], "svc.Users/Get", false).unwrap();
        assert_eq!(m.output().full_name(), "common.Id");
    }
}
