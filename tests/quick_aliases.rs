//! The quick form as oha users type it (issue #34): `-z` and
//! `--disable-keepalive` are aliases; an error that only the config's
//! checks find names the flag typed, not a config field; a run says where
//! it goes before it starts; `--no-save` keeps nothing.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;
use userflux::{Scripted, engine, load_run, ok, only_run, output_within, read_json};

fn quick(runs: &Path, args: &[&str]) -> Output {
    output_within(
        engine().arg("run").args(args).arg("--runs-dir").arg(runs),
        Duration::from_secs(60),
    )
}

#[test]
fn z_is_the_duration_and_disable_keepalive_closes_each_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = Scripted::start(Arc::new(|_| ok("", "ok")));
    let runs = tmp.path().join("runs");
    let out = quick(
        &runs,
        &[
            &rec.url(),
            "-z",
            "20s",
            "-n",
            "50",
            "-c",
            "1",
            "-t",
            "1",
            "-q",
            "--disable-keepalive",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = only_run(&runs);
    let (summary, _) = load_run(&dir);
    let config = read_json(&dir.join("config.json"));
    assert_eq!(config["stages"][1]["duration"], "20s", "{config}");
    assert_eq!((summary.totals.requests, summary.totals.errors), (50, 0));
    let seen = rec.seen();
    assert_eq!(seen.len(), 50);
    assert!(seen.iter().all(|s| s.headers["connection"] == "close"));
    // a connection per request (the server never closes one itself)
    assert_eq!(rec.connections(), seen.len() as u64);
}

#[test]
fn errors_found_by_the_configs_checks_name_the_flag_typed() {
    let tmp = tempfile::tempdir().unwrap();
    let big = format!("X-Big: {}", "a".repeat(9000));
    let url = "http://127.0.0.1:9/";
    let cases: &[(&[&str], &str)] = &[
        (&[url, "-H", &big], "-H 'X-Big: …': at most 8192 bytes"),
        (
            &["http://127.0.0.1:99999/"],
            "URL: \"http://127.0.0.1:99999/\": invalid port",
        ),
        (
            &[url, "--rate", "0.000001", "-n", "5"],
            "--rate 0.000001 with -n 5: must be at most 30days",
        ),
        (
            &[url, "-z", "40d"],
            "'-z <DURATION>': must be at most 30days",
        ),
        (
            &[url, "-z", "1s", "-d", "1s"],
            "'-z <DURATION>' cannot be used with '--duration",
        ),
        (
            &[url, "--disable-keepalive", "-H", "Connection: keep-alive"],
            "--disable-keepalive: conflicts with -H 'Connection: keep-alive'",
        ),
    ];
    for (args, needle) in cases {
        let runs = tmp.path().join("runs");
        let out = quick(&runs, &[&args[..], &["-q"]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
        assert!(
            !err.contains("endpoints[0]") && !err.contains("target:"),
            "{err}"
        );
        assert!(!runs.exists(), "{args:?} created {}", runs.display());
    }
}

#[test]
fn the_run_directory_is_said_at_the_start_and_no_save_keeps_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = Scripted::start(Arc::new(|_| ok("", "ok")));
    let runs = tmp.path().join("runs");
    let out = quick(&runs, &[&rec.url(), "-d", "300ms", "-c", "1", "-t", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let dir = only_run(&runs);
    let id = dir.file_name().unwrap().to_str().unwrap();
    let first = err.lines().next().unwrap();
    assert_eq!(
        first,
        format!("userflux-engine: run {id} in {}", dir.display())
    );

    // --no-save: the summary is printed, nothing is left anywhere
    let before: Vec<_> = unsaved();
    let out = output_within(
        engine().args([
            "run",
            &rec.url(),
            "-d",
            "300ms",
            "-c",
            "1",
            "-t",
            "1",
            "--no-save",
            "--json",
        ]),
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["totals"]["requests"].as_u64().unwrap() > 0);
    assert!(err.contains("(not kept: --no-save)"), "{err}");
    assert!(err.contains("Run directory: not kept (--no-save)"), "{err}");
    assert_eq!(unsaved(), before, "a --no-save run left its directory");
    let out = quick(&runs, &[&rec.url(), "--no-save"]);
    assert_eq!(out.status.code(), Some(2));

    // -o DIR: the run exactly there
    let there = tmp.path().join("there");
    let out = output_within(
        engine()
            .args([
                "run",
                &rec.url(),
                "-d",
                "300ms",
                "-c",
                "1",
                "-t",
                "1",
                "-q",
                "-o",
            ])
            .arg(&there),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(there.join("summary.json").is_file());
}

/// This machine's leftover `--no-save` directories.
fn unsaved() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("userflux-unsaved-"))
        })
        .collect();
    v.sort();
    v
}
