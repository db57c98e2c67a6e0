//! `userflux-engine run --shards N`: one run made of N shard engines on
//! this machine, one start time, merged into the run directory when they
//! end — a check of a sharded config before a cluster run (issue #29).
//! It is one process to whoever started it, so the daemon queues, lists,
//! stops and keeps it like any run (`userfluxctl run start --shards N`
//! used to spawn the shards itself, outside the daemon).
//!
//! The shards are child processes in a process group of their own, so a
//! terminal's Ctrl-C reaches this process only and is forwarded once (a
//! second copy would end them at once); each writes its run under
//! `RUN_DIR/shards/shard-I`. While they run, `status.json` sums their
//! progress; at the end their runs are merged (`userflux_engine::merge`)
//! into the run directory: summary, status, samples, and their logs after
//! this run's own lines. A shard that ended without a summary fails the
//! run (the others' directories are kept).

use anyhow::Context as _;
use parking_lot::Mutex;
use signal_hook::consts::{SIGINT, SIGTERM};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;
use userflux_engine::config::Config;
use userflux_engine::rundir::RunDir;
use userflux_engine::status::{RunError, RunErrorKind, Status};
use userflux_engine::summary::RunState;

/// Most local shards: they compete for this machine's cores.
pub const MAX_LOCAL_SHARDS: u32 = 64;
/// From now to the shards' common start: long enough for N processes to
/// load the config and open their run directories.
const START_IN: Duration = Duration::from_secs(2);

/// Runs `config` (resolved, every flag applied) as `n` shards in `dir`,
/// and merges them there.
pub fn execute(config: &Config, dir: &RunDir, n: u32) -> anyhow::Result<ExitCode> {
    dir.write_json("config.json", config)
        .context("cannot write config.json")?;
    // the shards read the config from their own file, its files by absolute path
    let shards_dir = dir.path.join("shards");
    std::fs::create_dir_all(&shards_dir)
        .with_context(|| format!("cannot create {}", shards_dir.display()))?;
    let config_file = shards_dir.join("config.json");
    userflux_engine::rundir::write_json_atomic(&config_file, &absolute_files(config))
        .with_context(|| format!("cannot write {}", config_file.display()))?;
    let status = Mutex::new(userflux_engine::run::initial_status(dir, config));
    dir.write_json("status.json", &*status.lock())
        .context("cannot write status.json")?;
    let (sig_tx, sig_rx) = crossbeam_channel::unbounded();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("userflux-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let _ = sig_tx.send(sig);
            }
        })?;
    let exe = std::env::current_exe().context("cannot find the engine's own binary")?;
    let start =
        humantime::format_rfc3339_millis(std::time::SystemTime::now() + START_IN).to_string();
    let group = format!("{}-shards", dir.run_id);
    let mut children: Vec<(u32, Child)> = Vec::new();
    for i in 0..n {
        let mut c = Command::new(&exe);
        c.args(["run", "-q", "--config"])
            .arg(&config_file)
            .args(["--shard", &format!("{i}/{n}"), "--start-at", &start])
            .args(["--group", &group])
            .arg("--run-dir")
            .arg(shards_dir.join(format!("shard-{i}")))
            // Kubernetes' settings are not this run's
            .env_remove(userflux_engine::barrier::BARRIER_ENV)
            .env_remove(userflux_engine::cluster::CLUSTER_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0);
        match c.spawn() {
            Ok(child) => children.push((i, child)),
            Err(e) => {
                for (_, mut c) in children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return fail(dir, &status, format!("cannot start shard {i}/{n}: {e}"));
            }
        }
    }
    dir.log(&format!(
        "run {} started: {n} local shard(s) in {}, starting {start}",
        dir.run_id,
        shards_dir.display()
    ))?;
    let mut codes: Vec<Option<Option<i32>>> = vec![None; n as usize];
    while codes.iter().any(Option::is_none) {
        if let Ok(sig) = sig_rx.recv_timeout(Duration::from_secs(1)) {
            let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
            let _ = dir.log(&format!("received {name}: passed on to the shards"));
            for (_, c) in &children {
                let _ = userflux_engine::sys::kill(c.id(), sig);
            }
        }
        for (i, c) in &mut children {
            if codes[*i as usize].is_none()
                && let Ok(Some(s)) = c.try_wait()
            {
                codes[*i as usize] = Some(s.code());
            }
        }
        progress(&status, &shards_dir, n);
        let _ = dir.write_json("status.json", &*status.lock());
    }
    let dirs: Vec<PathBuf> = (0..n)
        .map(|i| shards_dir.join(format!("shard-{i}")))
        .collect();
    let lost: Vec<String> = dirs
        .iter()
        .zip(&codes)
        .enumerate()
        .filter(|(_, (d, _))| !d.join("summary.json").exists())
        .map(|(i, (_, code))| format!("shard {i}/{n} (exit {})", exit_text(code.flatten())))
        .collect();
    if !lost.is_empty() {
        return fail(
            dir,
            &status,
            format!(
                "{} ended without a summary; the shards' runs are in {}",
                lost.join(", "),
                shards_dir.display()
            ),
        );
    }
    merge_into(dir, &dirs, &status)
}

/// `config` as JSON with the data and TLS files it names made absolute
/// (from the directory of the file it was read from).
fn absolute_files(config: &Config) -> serde_json::Value {
    let mut v = serde_json::to_value(config).unwrap_or_default();
    if let Some(base) = &config.base_dir {
        userflux_engine::files::absolute_names(&mut v, base);
    }
    v
}

fn exit_text(code: Option<i32>) -> String {
    code.map_or_else(|| "by a signal".into(), |c| c.to_string())
}

/// The shards' progress summed into this run's status.
fn progress(status: &Mutex<Status>, shards: &Path, n: u32) {
    let mut st = status.lock();
    let p = &mut st.progress;
    let (mut requests, mut errors, mut rps, mut vus, mut elapsed) = (0, 0, 0.0, 0, 0.0f64);
    for i in 0..n {
        let Some(s) = std::fs::read_to_string(shards.join(format!("shard-{i}/status.json")))
            .ok()
            .and_then(|t| serde_json::from_str::<Status>(&t).ok())
        else {
            continue;
        };
        requests += s.progress.requests;
        errors += s.progress.errors;
        rps += s.progress.rps;
        vus += s.progress.vus;
        elapsed = elapsed.max(s.progress.elapsed_s);
        p.duration_s = s.progress.duration_s;
    }
    (p.requests, p.errors, p.rps, p.vus, p.elapsed_s) = (requests, errors, rps, vus, elapsed);
    st.updated_at = userflux_engine::rundir::now_rfc3339();
}

/// The run failed: `status.json` says why, exit 1.
fn fail(dir: &RunDir, status: &Mutex<Status>, why: String) -> anyhow::Result<ExitCode> {
    let error = RunError {
        kind: RunErrorKind::Shards,
        message: why.clone(),
    };
    let st = userflux_engine::run::finish_status(status, RunState::Failed, 1, Some(error));
    dir.write_json("status.json", &st)
        .context("cannot write status.json")?;
    let _ = dir.log(&why);
    eprintln!("userflux-engine: run {}: {why}", dir.run_id);
    Ok(ExitCode::from(1))
}

/// Merges the shards' runs into `dir`: the merge writes a new directory
/// (`shards/RUN_ID`, so its run id is this run's), whose files then
/// replace this run's, its log lines appended to this run's.
fn merge_into(
    dir: &RunDir,
    shards: &[PathBuf],
    status: &Mutex<Status>,
) -> anyhow::Result<ExitCode> {
    use userflux_engine::merge;
    let runs = match shards
        .iter()
        .map(|d| merge::ShardRun::read(d))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|runs| merge::check(&runs, false).map(|_| runs))
    {
        Ok(r) => r,
        Err(e) => return fail(dir, status, format!("the shards do not merge: {e}")),
    };
    let tmp = dir.path.join("shards").join(&dir.run_id);
    let summary = match merge::merge(&runs, &[], &tmp) {
        Ok(s) => s,
        Err(e) => return fail(dir, status, format!("the merge failed: {e}")),
    };
    for entry in std::fs::read_dir(&tmp).with_context(|| tmp.display().to_string())? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "logs.txt" {
            let text = std::fs::read_to_string(entry.path())?;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(dir.file("logs.txt"))?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
        } else {
            std::fs::rename(entry.path(), dir.path.join(&name))
                .with_context(|| format!("cannot move {} into the run", entry.path().display()))?;
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let code = if summary.failed_thresholds() > 0 {
        userflux_engine::summary::EXIT_THRESHOLDS
    } else {
        0
    };
    // the human summary, as a single run prints it
    let human = format!(
        "{}Run directory: {}\n",
        userflux_engine::report::human_summary(&summary),
        dir.path.display()
    );
    let mut out = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut out, human.as_bytes());
    Ok(ExitCode::from(code as u8))
}
