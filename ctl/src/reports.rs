//! `userfluxctl report` and `compare`: the Python analytics over run
//! directories (the daemon's, or paths given).

use crate::client::Client;
use crate::{Fail, Out};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where a run's directory is: under the daemon's runs directory when one
/// answers, else under `runs/`; or a run directory given as a path (a
/// merged run, a search's `--run-dir`). Ids are checked so no other path
/// is built from them.
pub(crate) fn run_dir(client: &Client, id: &str) -> Result<PathBuf, Fail> {
    if !userflux_engine::rundir::is_run_id(id) {
        let path = Path::new(id);
        if path.join("summary.json").is_file() || path.join("status.json").is_file() {
            return Ok(path.to_path_buf());
        }
        return Err(Fail(
            2,
            format!(
                "\"{id}\" is neither a run id (YYYYMMDD-HHMMSS-xxxx) nor a run directory \
                 (one with summary.json or status.json)"
            ),
        ));
    }
    let runs = client
        .get("/v1/health")
        .ok()
        .and_then(|r| r.json()["runs_dir"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("runs"));
    let dir = runs.join(id);
    if !dir.is_dir() {
        return Err(Fail(1, format!("no run {id} in {}", runs.display())));
    }
    Ok(dir)
}

/// The analytics' Python: `USERFLUX_PYTHON`, else the venv `make setup`
/// creates in the checkout this binary was built in.
pub(crate) fn analytics_python() -> Result<PathBuf, Fail> {
    if let Some(p) = std::env::var_os("USERFLUX_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| Fail(1, e.to_string()))?;
    // target/<profile>/userfluxctl → the checkout
    let venv = exe
        .ancestors()
        .nth(3)
        .map(|root| root.join("analytics/.venv/bin/python"));
    match venv.filter(|p| p.exists()) {
        Some(p) => Ok(p),
        None => Err(Fail(1, "the Python analytics are not set up: run `make setup` (it creates analytics/.venv), or set USERFLUX_PYTHON".into())),
    }
}

pub(crate) fn analytics(args: &[&std::ffi::OsStr]) -> Result<std::process::Output, Fail> {
    let python = analytics_python()?;
    let cannot = |e: std::io::Error| {
        Fail(
            1,
            format!("cannot run {}: {e}; run `make setup`", python.display()),
        )
    };
    let mut child = Command::new(&python)
        .arg("-m")
        .arg("userflux_analytics")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(cannot)?;
    // stderr is passed on as it comes (the progress line over a large
    // samples file), and kept to tell a missing setup
    let mut from = child.stderr.take().expect("piped");
    let relay = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut from, &mut buf) {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&buf[..n]);
            let _ = std::io::stderr().write_all(&buf[..n]);
        }
        kept
    });
    let mut stdout = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = std::io::Read::read_to_end(&mut o, &mut stdout);
    }
    let status = child.wait().map_err(cannot)?;
    let stderr = relay.join().unwrap_or_default();
    let text = String::from_utf8_lossy(&stderr);
    if text.contains("No module named") {
        return Err(Fail(
            1,
            format!("{}: {}; run `make setup`", python.display(), text.trim()),
        ));
    }
    put!("{}", String::from_utf8_lossy(&stdout));
    Ok(std::process::Output {
        status,
        stdout,
        stderr,
    })
}

pub(crate) fn analytics_report(client: &Client, id: &str, open: bool) -> Out {
    let dir = run_dir(client, id)?;
    let out = analytics(&["report".as_ref(), dir.as_os_str()])?;
    if !out.status.success() {
        return Ok(out.status.code().map_or(1, |c| c as u8));
    }
    if open {
        let report = dir.join("report.html");
        if Command::new("xdg-open").arg(&report).status().is_err() {
            out!("open {} in a browser", report.display());
        }
    }
    Ok(0)
}

pub(crate) fn analytics_compare(client: &Client, runs: &[String], tolerance: &str) -> Out {
    let dirs = runs
        .iter()
        .map(|r| run_dir(client, r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut args: Vec<&std::ffi::OsStr> = vec!["compare".as_ref()];
    args.extend(dirs.iter().map(|d| d.as_os_str()));
    args.push(std::ffi::OsStr::new("--tolerance"));
    args.push(std::ffi::OsStr::new(tolerance));
    let out = analytics(&args)?;
    Ok(out.status.code().map_or(1, |c| c as u8))
}
