//! `userfluxctl run start|status|list|stop|logs`: runs through the daemon,
//! and following one to its end.

use crate::client::Client;
use crate::{Cli, Fail, Out, expect, print_json};
use clap::{Args, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use userflux_engine::aggregator::progress_line;
use userflux_engine::report::human_summary;
use userflux_engine::status::Status;
use userflux_engine::summary::{EXIT_THRESHOLDS, RunState, Summary};

#[derive(Subcommand)]
pub(crate) enum RunCmd {
    /// Submit a config; with --wait, follow it and exit with its exit code.
    Start(StartArgs),
    /// A run's status (default: the latest run).
    Status { id: Option<String> },
    /// Every run.
    List,
    /// Stop a run (SIGTERM to its engine, SIGKILL after the grace period).
    Stop { id: String },
    /// A run's logs.txt; with --follow, until the run ends.
    Logs {
        id: String,
        #[arg(long, short)]
        follow: bool,
    },
}

#[derive(Args)]
pub(crate) struct StartArgs {
    /// The config file (JSON; older Userflux and Tressi forms are converted).
    config: PathBuf,
    /// Follow the run's progress, print its summary, exit with its exit code.
    #[arg(long)]
    wait: bool,
    /// Base URL that replaces the config's `target`.
    #[arg(long)]
    target: Option<String>,
    /// Run the config as N shards, local engine processes with one start
    /// time, merged into the run when they end (a check of a sharded
    /// config before a cluster run); queued, listed and stopped by the
    /// daemon like any run.
    #[arg(long, value_name = "N", conflicts_with = "search",
          value_parser = clap::value_parser!(u32).range(1..=64))]
    shards: Option<u32>,
    /// A capacity search instead of one run: the config's `search` (or
    /// `{}`, its defaults), judged by its thresholds; every trial is kept
    /// in the run directory (see `userflux-engine search`).
    #[arg(long)]
    search: bool,
}

pub(crate) fn status_of(client: &Client, id: &str) -> Result<Status, Fail> {
    let r = expect(client.get(&format!("/v1/runs/{id}"))?, 200)?;
    serde_json::from_slice(&r.body)
        .map_err(|e| Fail(1, format!("a status the CLI cannot read: {e}")))
}

pub(crate) fn final_state(s: RunState) -> bool {
    matches!(s, RunState::Finished | RunState::Stopped | RunState::Failed)
}

/// The exit code a run ends with: 99 for failed thresholds, 1 for a failed
/// run, 0 otherwise.
pub(crate) fn exit_for(st: &Status) -> u8 {
    match (st.state, st.exit_code) {
        (_, Some(c)) if c == EXIT_THRESHOLDS => EXIT_THRESHOLDS as u8,
        (RunState::Failed, _) => 1,
        _ => 0,
    }
}

pub(crate) fn status_line(st: &Status) -> String {
    let err = st
        .error
        .as_ref()
        .map(|e| format!("  [{}: {}]", e.kind, e.message))
        .unwrap_or_default();
    format!(
        "{}  {:<8}  {}{err}",
        st.run_id,
        st.state.as_str(),
        progress_line(&st.progress)
    )
}

pub(crate) fn run(cli: &Cli, client: &Client, cmd: &RunCmd) -> Out {
    match cmd {
        RunCmd::Start(args) => {
            let mut body = std::fs::read(&args.config)
                .map_err(|e| Fail(2, format!("{}: cannot read: {e}", args.config.display())))?;
            // The daemon reads the config as text: files named relative to
            // the config file (data sets, TLS certificates) go as absolute paths.
            if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) {
                let dir = std::path::absolute(&args.config)
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .unwrap_or_default();
                userflux_engine::files::absolute_names(&mut v, &dir);
                body = serde_json::to_vec(&v).unwrap_or(body);
            }
            if args.target.is_some() || args.search {
                let mut v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                    Fail(2, format!("{}: invalid JSON: {e}", args.config.display()))
                })?;
                let obj = v.as_object_mut().ok_or(Fail(
                    2,
                    format!("{}: not a JSON object", args.config.display()),
                ))?;
                if let Some(target) = &args.target {
                    obj.insert("target".into(), serde_json::Value::String(target.clone()));
                }
                if args.search && !obj.contains_key("search") {
                    obj.insert("search".into(), serde_json::json!({}));
                }
                body = serde_json::to_vec(&v).unwrap_or_default();
            }
            let path = match args.shards {
                Some(n) => format!("/v1/runs?shards={n}"),
                None => "/v1/runs".to_string(),
            };
            let reply = client.post(&path, Some(&body))?;
            if reply.status == 400 {
                let v = reply.json();
                let problems: Vec<String> = v["error"]["problems"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| {
                                p.as_str()
                                    .map(|p| format!("  {}: {p}", args.config.display()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if problems.is_empty() {
                    return Err(Fail(
                        2,
                        v["error"]["message"].as_str().unwrap_or("refused").into(),
                    ));
                }
                return Err(Fail(2, format!("invalid config:\n{}", problems.join("\n"))));
            }
            let v = expect(reply, 201)?.json();
            let id = v["run_id"].as_str().unwrap_or_default().to_string();
            for w in v["warnings"].as_array().into_iter().flatten() {
                eprintln!(
                    "userfluxctl: {}: converted: {}",
                    args.config.display(),
                    w.as_str().unwrap_or_default()
                );
            }
            if cli.json && !args.wait {
                print_json(&v);
                return Ok(0);
            }
            out!("run {id} queued ({} ahead)", v["ahead"]);
            if !args.wait {
                return Ok(0);
            }
            follow(cli, client, &id)
        }
        RunCmd::Status { id } => {
            let id = match id {
                Some(id) => id.clone(),
                None => {
                    let v = expect(client.get("/v1/runs")?, 200)?.json();
                    let runs = v["runs"].as_array().cloned().unwrap_or_default();
                    let last = runs.last().ok_or(Fail(1, "there are no runs yet".into()))?;
                    last["run_id"].as_str().unwrap_or_default().to_string()
                }
            };
            let st = status_of(client, &id)?;
            if cli.json {
                print_json(&serde_json::to_value(&st).unwrap_or_default());
            } else {
                out!("{}", status_line(&st));
            }
            Ok(0)
        }
        RunCmd::List => {
            let v = expect(client.get("/v1/runs")?, 200)?.json();
            if cli.json {
                print_json(&v);
                return Ok(0);
            }
            let runs: Vec<Status> = serde_json::from_value(v["runs"].clone()).unwrap_or_default();
            if runs.is_empty() {
                out!("no runs");
            }
            for st in runs {
                out!(
                    "{:<22} {:<9} {:<16} {:>10} requests {:>8} errors",
                    st.run_id,
                    st.state.as_str(),
                    st.name,
                    st.progress.requests,
                    st.progress.errors
                );
            }
            Ok(0)
        }
        RunCmd::Stop { id } => {
            let v = expect(client.post(&format!("/v1/runs/{id}/stop"), None)?, 202)?.json();
            if cli.json {
                print_json(&v);
            } else {
                out!("run {id}: {}", v["state"].as_str().unwrap_or("?"));
            }
            Ok(0)
        }
        RunCmd::Logs { id, follow } => {
            let mut offset = 0u64;
            loop {
                let r = expect(
                    client.get(&format!("/v1/runs/{id}/logs?offset={offset}"))?,
                    200,
                )?;
                let next = r
                    .header("X-Userflux-Offset")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(offset);
                let mut out = std::io::stdout().lock();
                if out.write_all(&r.body).and_then(|()| out.flush()).is_err() {
                    return Ok(0); // the reader went away
                }
                let got_some = next > offset;
                offset = next;
                if !follow {
                    return Ok(0);
                }
                if !got_some {
                    if final_state(status_of(client, id)?.state) {
                        return Ok(0);
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
        }
    }
}

/// Follows a run to its end: a progress line, then its summary.
pub(crate) fn follow(cli: &Cli, client: &Client, id: &str) -> Out {
    let tty = std::io::stderr().is_terminal();
    let mut last_plain = Instant::now();
    let st = loop {
        let st = status_of(client, id)?;
        if final_state(st.state) {
            break st;
        }
        if st.state == RunState::Running {
            let line = progress_line(&st.progress);
            if tty {
                eprint!("\r\x1b[2K{line}");
            } else if last_plain.elapsed() >= Duration::from_secs(5) {
                eprintln!("{line}");
                last_plain = Instant::now();
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if tty {
        eprintln!();
    }
    match client.get(&format!("/v1/runs/{id}/summary")) {
        Ok(r) if r.status == 200 => {
            if cli.json {
                print_json(&r.json());
            } else if let Ok(s) = serde_json::from_slice::<Summary>(&r.body) {
                put!("{}", human_summary(&s));
                if let Some(search) = &s.search {
                    put!("{}", userflux_engine::run::search::human(search));
                }
            }
        }
        _ => eprintln!("userfluxctl: run {id} has no summary"),
    }
    if !cli.json {
        out!("{}", status_line(&st));
    }
    Ok(exit_for(&st))
}
