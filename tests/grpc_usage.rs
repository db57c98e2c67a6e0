//! The `grpc` quick form's usage errors, as a ghz user meets them (a first
//! user's try, /work/fresh-grpc.md): each names the flag typed and, where
//! ghz spells it otherwise, says ours. No server is needed: every case ends
//! before a call is made, but `-D` whose run is recorded to show what it
//! read (its calls go to a closed port).

use std::path::{Path, PathBuf};
use std::time::Duration;
use userflux::{closed_port, engine, output_within, read_json};

fn proto() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpc/echo.proto")
}

/// `grpc 127.0.0.1:PORT echo.Echo/Say --proto echo.proto ARGS`: exit code
/// and stderr.
fn grpc(args: &[&str]) -> (Option<i32>, String) {
    let port = closed_port();
    // (a run kept with -o is not also --no-save)
    let save: &[&str] = if args.contains(&"-o") {
        &[]
    } else {
        &["--no-save"]
    };
    let out = output_within(
        engine()
            .args(["grpc", &format!("127.0.0.1:{port}"), "echo.Echo/Say"])
            .arg("--proto")
            .arg(proto())
            .args(save)
            .args(["-q", "-n", "1"])
            .args(args),
        Duration::from_secs(60),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Each mistake is a usage error (exit 2) saying what to type instead.
#[test]
fn ghz_habits_get_hints() {
    let cases: &[(&[&str], &[&str])] = &[
        // ghz's --insecure is plaintext, which is our default
        (
            &["--insecure"],
            &[
                "--insecure: plaintext (h2c) is the default here",
                "--skipTLS",
            ],
        ),
        // ghz's -t is its timeout
        (
            &["-t", "2s"],
            &["is --threads here", "--timeout", "--deadline"],
        ),
        (
            &["-m", r#"{"x-k":"v"}"#],
            &["the JSON form is not taken: give -m name:value"],
        ),
        (
            &["-m", "X-Upper:V", "-m", "x-upper:w"],
            &["--metadata: \"X-Upper\" and \"x-upper\" are the same key"],
        ),
        (
            &["-m", "x-a:1", "-m", "x-a:2"],
            &["--metadata: \"x-a\" is given twice"],
        ),
        (
            &["-m", "x-trace-bin:not base64!"],
            &["--metadata: ", "x-trace-bin", "a -bin value must be base64"],
        ),
        (
            &["-m", ":authority:foo"],
            &["\":authority\" is a pseudo-header"],
        ),
        // a template that can never be encoded is found before a call
        (
            &["-d", r#"{"text": {{seq}} }"#],
            &[
                "-d: text: expected a string",
                "gives 0",
                "put the template in quotes",
            ],
        ),
        (
            &["-d", r#"{"{{seq}}": "x"}"#],
            &["-d: 0: unknown field (not in the .proto)"],
        ),
        (
            &["-d", r#"{"count": {{rand_str(3)}} }"#],
            &["-d: count: expected an integer"],
        ),
        (
            &["-d", r#"{"text": "{{.RequestNumber}}"}"#],
            &["ghz's {{.RequestNumber}} is {{seq}} here"],
        ),
        (&["-d", "{}", "-D", "/dev/null"], &["cannot be used with"]),
    ];
    let mut missed = Vec::new();
    for (args, want) in cases {
        let (code, stderr) = grpc(args);
        if code != Some(2) || !want.iter().all(|w| stderr.contains(w)) {
            missed.push(format!("{args:?}: exit {code:?}: {stderr}"));
        }
    }
    assert!(missed.is_empty(), "{missed:#?}");
}

/// `-D FILE` is `-d` read from a file: the run's config holds its message,
/// errors name the file, and a pipe or device is refused, not read.
#[test]
fn data_file_is_read_as_d() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msg.json");
    std::fs::write(
        &file,
        r#"{"text": "from a file", "user": {"id": "{{seq}}"}}"#,
    )
    .unwrap();
    let run = dir.path().join("run");
    let file_s = file.display().to_string();
    let run_s = run.display().to_string();
    let (code, stderr) = grpc(&["-D", &file_s, "-o", &run_s, "--timeout", "5s"]);
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {stderr}");
    let config = read_json(&run.join("config.json"));
    assert_eq!(
        config["endpoints"][0]["grpc"]["message"],
        serde_json::json!({"text": "from a file", "user": {"id": "{{seq}}"}}),
        "{config}"
    );
    // no method claimed for a gRPC call
    assert!(config["endpoints"][0].get("method").is_none(), "{config}");

    std::fs::write(&file, r#"{"txt": "x"}"#).unwrap();
    let (code, stderr) = grpc(&["-D", &file_s]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("-D {file_s}: txt: unknown field")),
        "{stderr}"
    );
    for (path, want) in [
        ("/dev/zero", "is a device, not a regular file"),
        ("/nonexistent/m.json", "cannot read"),
    ] {
        let (code, stderr) = grpc(&["-D", path]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(&format!("-D {path}: {want}")), "{stderr}");
    }
}
