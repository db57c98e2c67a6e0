//! The unit tests of `config::grpc` (kept apart: with them the room
//! passed 800 lines).

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
