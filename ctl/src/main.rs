//! `userfluxctl`: the Userflux CLI. It talks to `userfluxd` over its Unix
//! socket for daemons and runs, and works locally for configs.
//!
//! Exit codes: 0 ok; 1 failure (including a failed run and an unreachable
//! daemon); 2 bad usage or config; 99 a run's thresholds failed.
//!
//! # Layout
//!
//! One room per command group; each holds its clap definitions and its
//! handler:
//!
//! - `main.rs`: the command line, the dispatch, exit codes and the output
//!   helpers every command uses.
//! - `client.rs`: one HTTP request over the daemon's socket.
//! - `daemon.rs`: `daemon start|stop|status`.
//! - `runs.rs`: `run start|status|list|stop|logs`, following a run.
//! - `configs.rs`: `config validate|schema|migrate`.
//! - `reports.rs`: `report` and `compare` (the Python analytics).
//! - `dashboard.rs`: `dashboard`, the live dashboard's URL and token.
//! - `merge.rs`: `merge`, a sharded run's directories into one.
//! - `cluster.rs` (+ `cluster/collect.rs`): `cluster manifest|collect`,
//!   sharded runs on Kubernetes.
//! - `import/`: `import har|postman`, a browser recording or a Postman
//!   collection as a config.

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
mod configs;
mod daemon;
mod dashboard;
mod import;
mod merge;
mod reports;
mod runs;

use clap::{Parser, Subcommand};
use client::{Client, ClientError, Reply};
use cluster::ClusterCmd;
use configs::ConfigCmd;
use daemon::DaemonCmd;
use runs::RunCmd;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// A browser recording (HAR) or a Postman collection as a config on
    /// stdout; what was left out, on stderr (see docs/import.md).
    #[command(subcommand)]
    Import(import::ImportCmd),
    /// The daemon's live dashboard: its URL and token (`daemon start --http`).
    Dashboard(dashboard::DashboardArgs),
    /// Kubernetes: the manifests of a sharded run (see docs/shards.md).
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
        Cmd::Daemon(d) => daemon::daemon(&cli, &client, d),
        Cmd::Run(r) => runs::run(&cli, &client, r),
        Cmd::Config(c) => configs::config(&cli, c),
        Cmd::Report { id, open } => reports::analytics_report(&client, id, *open),
        Cmd::Compare { runs, tolerance } => reports::analytics_compare(&client, runs, tolerance),
        Cmd::Merge { dirs, out, partial } => merge::merge(&cli, dirs, out.as_deref(), *partial),
        Cmd::Cluster(c) => cluster::run(c),
        Cmd::Dashboard(d) => dashboard::run(cli.json, &client, d),
        Cmd::Import(c) => import::run(c).map(|()| 0).map_err(|e| Fail(2, e)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Fail(code, msg)) => {
            eprintln!("userfluxctl: {msg}");
            ExitCode::from(code)
        }
    }
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
