//! `userfluxctl`: the Userflux CLI. It talks to `userfluxd` over its Unix
//! socket for daemons and runs, and works locally for configs.
//!
//! Exit codes: 0 ok; 1 failure (including a failed run and an unreachable
//! daemon); 2 bad usage or config; 99 a run's thresholds failed.
//!
//! # Layout
//!
//! - `client.rs`: one HTTP request over the daemon's socket.
//! - `main.rs`: the commands.

/// `println!` that leaves a closed stdout alone (`userfluxctl run list | head`
/// is not worth a panic).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `print!` that leaves a closed stdout alone.
macro_rules! put {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod client;
mod cluster;
mod dashboard;

use clap::{Args, Parser, Subcommand};
use client::{Client, ClientError, Reply};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use userflux_engine::aggregator::progress_line;
use userflux_engine::config::Config;
use userflux_engine::report::human_summary;
use userflux_engine::status::Status;
use userflux_engine::summary::{EXIT_THRESHOLDS, RunState, Summary};

#[derive(Parser)]
#[command(
    name = "userfluxctl",
    version,
    about = "Userflux: the daemon, runs, configs"
)]
struct Cli {
    /// The daemon's socket [env: USERFLUX_SOCKET; default: runs/userfluxd.sock]
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// Machine-readable JSON output for read commands.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start, stop or check userfluxd.
    #[command(subcommand)]
    Daemon(DaemonCmd),
    /// Start, follow, list and stop runs.
    #[command(subcommand)]
    Run(RunCmd),
    /// Validate, migrate and describe configs (no daemon needed).
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Write a run's report.html and PNG charts (the Python analytics).
    Report {
        id: String,
        /// Open the report in a browser afterwards (xdg-open).
        #[arg(long)]
        open: bool,
    },
    /// Merge the run directories of a sharded run into one run directory
    /// (exit 99 when the merged result fails a threshold).
    Merge {
        /// The shards' run directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write the merged run [default: a new run in runs/].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Merge the shards there are; the summary says which are missing.
        #[arg(long)]
        partial: bool,
    },
    /// The daemon's live dashboard: its URL and token (`daemon start --http`).
    Dashboard(dashboard::DashboardArgs),
    /// Kubernetes: the manifests of a sharded run (see README).
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Compare two runs or more; exit 1 when a later one regressed from the first.
    Compare {
        /// Run IDs (or directories), the first the baseline; more than two
        /// make a trend, each judged against the first.
        #[arg(num_args = 2.., required = true)]
        runs: Vec<String>,
        /// Allowed change before a regression, e.g. 5%.
        #[arg(long, default_value = "5%")]
        tolerance: String,
    },
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Print the YAML of a ConfigMap (the config), a Secret (a client key,
    /// if any) and an Indexed Job (N shards), all named after the run.
    Manifest(Box<ManifestArgs>),
    /// Read each shard's run from `kubectl logs` output (one file per pod,
    /// or one file with all) into run directories under OUT, for `merge`.
    Collect {
        /// Files of `kubectl logs` output.
        #[arg(required = true)]
        logs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Succeed with the shards found when some are missing (a failed
        /// pod); then `merge --partial` joins them.
        #[arg(long)]
        partial: bool,
    },
}

#[derive(clap::Args)]
struct ManifestArgs {
    config: PathBuf,
    /// Shards (pods), each a share of the config.
    #[arg(long)]
    shards: u32,
    /// The engine's image (see Containerfile).
    #[arg(long)]
    image: String,
    #[arg(long, default_value = "default")]
    namespace: String,
    /// A fixed start time, this long from now, instead of the barrier
    /// (every pod waits for it; one that starts later fails).
    #[arg(long, value_name = "DURATION")]
    start_in: Option<String>,
    /// The barrier (the default): how long a pod waits for every pod to be
    /// ready before it fails.
    #[arg(
        long,
        default_value = "10m",
        value_name = "DURATION",
        conflicts_with = "start_in"
    )]
    barrier_timeout: String,
    /// Whole CPU cores each pod gets (requests = limits: Guaranteed QoS;
    /// one pinned worker per core).
    #[arg(long, default_value_t = 2)]
    cores: u32,
    /// Memory each pod gets (requests = limits), e.g. 2Gi.
    #[arg(long, default_value = "2Gi")]
    memory: String,
    /// Pods on distinct nodes: `preferred` (the scheduler tries) or
    /// `required` (a pod waits for a node of its own).
    #[arg(long, default_value = "preferred", value_parser = ["preferred", "required"])]
    spread: String,
    /// A node label the pods need, KEY=VALUE (repeatable).
    #[arg(long = "node-selector", value_name = "KEY=VALUE")]
    node_selector: Vec<String>,
    /// A taint the pods tolerate, KEY[=VALUE][:EFFECT] as `kubectl taint`
    /// writes it (repeatable; without a value, any value).
    #[arg(long = "toleration", value_name = "KEY[=VALUE][:EFFECT]")]
    tolerations: Vec<String>,
    /// A Secret for pulling the image (repeatable).
    #[arg(long = "image-pull-secret", value_name = "NAME")]
    image_pull_secrets: Vec<String>,
    /// The pods' service account (default: one of the run's own, which the
    /// barrier's Role lets list pods; a given one is bound to that Role).
    #[arg(long, value_name = "NAME")]
    service_account: Option<String>,
    /// A label on every object and pod, KEY=VALUE (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Each pod writes its whole run directory (summary, per-second
    /// histograms, samples, logs) to this PersistentVolumeClaim (ReadWriteMany),
    /// under /results/NAME/shard-I; a reader pod mounts it for `kubectl cp`.
    #[arg(long, value_name = "CLAIM")]
    results_pvc: Option<String>,
    /// Print JSON (a `v1` List) instead of YAML; `kubectl apply -f` takes either.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum DaemonCmd {
    /// Start userfluxd in the background and wait until it answers.
    Start {
        /// Where runs are kept.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        /// Serve the live dashboard on this address (userfluxd --http).
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// Allow a non-loopback --http address (userfluxd --http-public).
        #[arg(long, requires = "http")]
        http_public: bool,
    },
    /// Ask userfluxd to stop (its active run is stopped first).
    Stop,
    /// Whether userfluxd answers, and what it is running.
    Status,
}

#[derive(Subcommand)]
enum RunCmd {
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
struct StartArgs {
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

#[derive(Subcommand)]
enum ConfigCmd {
    /// Check a config; print it resolved, or the errors with their field paths.
    Validate { file: PathBuf },
    /// Print the JSON Schema of the config.
    Schema,
    /// Convert an older Userflux or Tressi config to the current form.
    Migrate { file: PathBuf },
}

/// A failure with the exit code it deserves.
struct Fail(u8, String);

impl From<ClientError> for Fail {
    fn from(e: ClientError) -> Fail {
        Fail(1, e.to_string())
    }
}

type Out = Result<u8, Fail>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let socket = cli
        .socket
        .clone()
        .or_else(|| std::env::var_os("USERFLUX_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("runs/userfluxd.sock"));
    let client = Client::new(&socket);
    let result = match &cli.command {
        Cmd::Daemon(d) => daemon(&cli, &client, d),
        Cmd::Run(r) => run(&cli, &client, r),
        Cmd::Config(c) => config(&cli, c),
        Cmd::Report { id, open } => analytics_report(&client, id, *open),
        Cmd::Compare { runs, tolerance } => analytics_compare(&client, runs, tolerance),
        Cmd::Merge { dirs, out, partial } => merge(&cli, dirs, out.as_deref(), *partial),
        Cmd::Cluster(c) => cluster::run(c),
        Cmd::Dashboard(d) => dashboard::run(cli.json, &client, d),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Fail(code, msg)) => {
            eprintln!("userfluxctl: {msg}");
            ExitCode::from(code)
        }
    }
}

fn merge(cli: &Cli, dirs: &[PathBuf], out: Option<&Path>, partial: bool) -> Out {
    use userflux_engine::merge;
    let runs = dirs
        .iter()
        .map(|d| merge::ShardRun::read(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Fail(2, e))?;
    let (_, missing) = merge::check(&runs, partial).map_err(|e| Fail(2, e))?;
    let out = match out {
        Some(p) => p.to_path_buf(),
        None => {
            userflux_engine::rundir::RunDir::create_in(Path::new("runs"))
                .map_err(|e| Fail(1, format!("cannot create a run directory in runs/: {e}")))?
                .path
        }
    };
    let summary = merge::merge(&runs, &missing, &out).map_err(|e| Fail(1, e))?;
    // An endpoint or flow step no shard sent a request to ran nowhere: say
    // so (issue #27: endpoints vanished from sharded runs without a word).
    for (name, e) in &summary.endpoints {
        if e.requests == 0 {
            eprintln!("warning: {name} ran nowhere: no shard sent it a request");
        }
    }
    if cli.json {
        print_json(&serde_json::to_value(&summary).unwrap_or_default());
    } else {
        put!("{}", human_summary(&summary));
        out!("Merged {} shard(s) into {}", runs.len(), out.display());
    }
    Ok(if summary.failed_thresholds() > 0 {
        EXIT_THRESHOLDS as u8
    } else {
        0
    })
}

fn print_json(v: &serde_json::Value) {
    out!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// The reply's body when the status is `ok`, else its error as a failure.
fn expect(reply: Reply, ok: u16) -> Result<Reply, Fail> {
    if reply.status == ok {
        return Ok(reply);
    }
    let code = if reply.status == 400 { 2 } else { 1 };
    Err(Fail(code, reply.error_message()))
}

fn daemon(cli: &Cli, client: &Client, cmd: &DaemonCmd) -> Out {
    match cmd {
        DaemonCmd::Status => {
            let h = expect(client.get("/v1/health")?, 200)?.json();
            if cli.json {
                print_json(&h);
            } else {
                out!(
                    "userfluxd {} (pid {}) on {}: runs in {}; active {}; {} queued",
                    h["version"].as_str().unwrap_or("?"),
                    h["pid"],
                    client.socket.display(),
                    h["runs_dir"].as_str().unwrap_or("?"),
                    h["active"].as_str().unwrap_or("none"),
                    h["queued"].as_array().map_or(0, Vec::len)
                );
            }
            Ok(0)
        }
        DaemonCmd::Start {
            runs_dir,
            http,
            http_public,
        } => {
            if client.get("/v1/health").is_ok() {
                out!(
                    "userfluxd is already running on {}",
                    client.socket.display()
                );
                return Ok(0);
            }
            std::fs::create_dir_all(runs_dir)
                .map_err(|e| Fail(1, format!("cannot create {}: {e}", runs_dir.display())))?;
            let exe = std::env::current_exe()
                .map_err(|e| Fail(1, e.to_string()))?
                .with_file_name("userfluxd");
            let log = runs_dir.join("userfluxd.log");
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|e| Fail(1, format!("cannot open {}: {e}", log.display())))?;
            let err = out.try_clone().map_err(|e| Fail(1, e.to_string()))?;
            let mut child = Command::new(&exe)
                .arg("--runs-dir")
                .arg(runs_dir)
                .arg("--socket")
                .arg(&client.socket)
                .args(http.iter().flat_map(|a| ["--http", a]))
                .args(http_public.then_some("--http-public"))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| Fail(1, format!("cannot start {}: {e}", exe.display())))?;
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if client.get("/v1/health").is_ok() {
                    out!(
                        "userfluxd started (pid {}) on {}; its log is {}",
                        child.id(),
                        client.socket.display(),
                        log.display()
                    );
                    if let Some(url) = client
                        .get("/v1/health")
                        .ok()
                        .and_then(|r| r.json()["dashboard"].as_str().map(str::to_string))
                    {
                        out!("dashboard on {url} (`userfluxctl dashboard` prints its token)");
                    }
                    return Ok(0);
                }
                if let Ok(Some(st)) = child.try_wait() {
                    let tail = std::fs::read_to_string(&log).unwrap_or_default();
                    let last = tail.lines().last().unwrap_or("").to_string();
                    return Err(Fail(1, format!("userfluxd exited ({st}) at start: {last}")));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(Fail(
                1,
                format!(
                    "userfluxd did not answer on {} within 10 s; see {}",
                    client.socket.display(),
                    log.display()
                ),
            ))
        }
        DaemonCmd::Stop => {
            expect(client.post("/v1/shutdown", None)?, 202)?;
            let t0 = Instant::now();
            while client.get("/v1/health").is_ok() {
                if t0.elapsed() > Duration::from_secs(60) {
                    return Err(Fail(1, "userfluxd is still answering after 60 s".into()));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            out!("userfluxd stopped");
            Ok(0)
        }
    }
}

fn status_of(client: &Client, id: &str) -> Result<Status, Fail> {
    let r = expect(client.get(&format!("/v1/runs/{id}"))?, 200)?;
    serde_json::from_slice(&r.body)
        .map_err(|e| Fail(1, format!("a status the CLI cannot read: {e}")))
}

fn final_state(s: RunState) -> bool {
    matches!(s, RunState::Finished | RunState::Stopped | RunState::Failed)
}

/// The exit code a run ends with: 99 for failed thresholds, 1 for a failed
/// run, 0 otherwise.
fn exit_for(st: &Status) -> u8 {
    match (st.state, st.exit_code) {
        (_, Some(c)) if c == EXIT_THRESHOLDS => EXIT_THRESHOLDS as u8,
        (RunState::Failed, _) => 1,
        _ => 0,
    }
}

fn status_line(st: &Status) -> String {
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

fn run(cli: &Cli, client: &Client, cmd: &RunCmd) -> Out {
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
                let absolute = |file: &mut serde_json::Value| {
                    if let Some(f) = file.as_str()
                        && Path::new(f).is_relative()
                    {
                        *file = serde_json::Value::String(dir.join(f).display().to_string());
                    }
                };
                if let Some(data) = v.get_mut("data").and_then(|d| d.as_object_mut()) {
                    for spec in data.values_mut() {
                        if let Some(file) = spec.get_mut("file") {
                            absolute(file);
                        }
                    }
                }
                if let Some(tls) = v.get_mut("tls").and_then(|t| t.as_object_mut()) {
                    for k in ["ca_file", "client_cert", "client_key"] {
                        if let Some(file) = tls.get_mut(k) {
                            absolute(file);
                        }
                    }
                }
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
fn follow(cli: &Cli, client: &Client, id: &str) -> Out {
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

fn config(cli: &Cli, cmd: &ConfigCmd) -> Out {
    match cmd {
        ConfigCmd::Schema => {
            print_json(&userflux_engine::schema::by_name("config").unwrap_or_default());
            Ok(0)
        }
        ConfigCmd::Validate { file } => {
            let (config, warnings) = read(file)?;
            let config = config.resolve().map_err(|e| invalid(file, &e.problems))?;
            for w in &warnings {
                eprintln!("userfluxctl: {}: converted: {w}", file.display());
            }
            for w in userflux_engine::run::host_warnings(&config) {
                eprintln!("userfluxctl: {}: warning: {w}", file.display());
            }
            if cli.json {
                print_json(&serde_json::to_value(&config).unwrap_or_default());
            } else {
                let flows = match config.flows.len() {
                    0 => String::new(),
                    n => format!(", {n} flow(s)"),
                };
                out!(
                    "{}: valid ({} endpoint(s){flows}, {:.0} s)",
                    file.display(),
                    config.endpoints.len(),
                    config.duration().as_secs_f64()
                );
            }
            Ok(0)
        }
        ConfigCmd::Migrate { file } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Fail(2, format!("{}: cannot read: {e}", file.display())))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Fail(2, format!("{}: invalid JSON: {e}", file.display())))?;
            let (migrated, warnings) = userflux_engine::migrate::migrate(value)
                .map_err(|e| Fail(2, format!("{}: {e}", file.display())))?;
            for w in &warnings {
                eprintln!("userfluxctl: {}: converted: {w}", file.display());
            }
            if warnings.is_empty() {
                eprintln!(
                    "userfluxctl: {}: already in the current form",
                    file.display()
                );
            }
            // What it converted to must itself be a valid config.
            Config::from_value(migrated.clone())
                .and_then(Config::resolve)
                .map_err(|e| invalid(file, &e.problems))?;
            print_json(&migrated);
            Ok(0)
        }
    }
}

/// Where a run's directory is: under the daemon's runs directory when one
/// answers, else under `runs/`; or a run directory given as a path (a
/// merged run, a search's `--run-dir`). Ids are checked so no other path
/// is built from them.
fn run_dir(client: &Client, id: &str) -> Result<PathBuf, Fail> {
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
fn analytics_python() -> Result<PathBuf, Fail> {
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

fn analytics(args: &[&std::ffi::OsStr]) -> Result<std::process::Output, Fail> {
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

fn analytics_report(client: &Client, id: &str, open: bool) -> Out {
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

fn analytics_compare(client: &Client, runs: &[String], tolerance: &str) -> Out {
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

fn read(file: &Path) -> Result<(Config, Vec<String>), Fail> {
    Config::read(file)
        .map_err(|e| Fail(2, format!("invalid config:\n  {}", e.problems.join("\n  "))))
}

fn invalid(file: &Path, problems: &[String]) -> Fail {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("  {}: {p}", file.display()))
        .collect();
    Fail(2, format!("invalid config:\n{}", lines.join("\n")))
}
