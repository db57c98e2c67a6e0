//! `userflux-engine`: run a load test from a config file, or quickly against
//! one URL like wrk, and leave a complete run directory behind.
//!
//! Exit codes: 0 the run finished (or was stopped on request) and its
//! summary is written; 1 the run could not be carried out; 2 bad usage or
//! config (nothing is created); 130 a second SIGINT/SIGTERM ended the
//! process at once (`status.json` still says `stopped`).

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use parking_lot::Mutex;
use signal_hook::consts::{SIGINT, SIGTERM};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use userflux_engine::config::Config;
use userflux_engine::duration::Dur;
use userflux_engine::report::human_summary;
use userflux_engine::run::{execute, finish_status, finish_status_with, initial_status, prepare};
use userflux_engine::rundir::RunDir;
use userflux_engine::status::RunError;
use userflux_engine::summary::{EXIT_THRESHOLDS, RunState};

#[derive(Parser)]
#[command(
    name = "userflux-engine",
    version,
    about = "Thread-per-core HTTP/1.1 load generator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a load test: `run URL -c CONNS -d DURATION` or `run --config FILE`.
    Run(RunArgs),
    /// Check a config file and print it resolved (defaults filled), or the errors.
    Validate {
        /// The config file (JSON).
        config: PathBuf,
    },
    /// Print the JSON Schema of a file of the run contract.
    Schema {
        /// config, status, summary or sample
        #[arg(value_parser = ["config", "status", "summary", "sample"])]
        name: String,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Target URL for the quick form (one GET endpoint), e.g. http://127.0.0.1:8080/
    #[arg(conflicts_with = "config", required_unless_present = "config")]
    url: Option<String>,
    /// Connections (VUs) in the quick form.
    #[arg(
        short = 'c',
        long = "connections",
        default_value_t = 10,
        conflicts_with = "config"
    )]
    connections: u32,
    /// Duration of the quick form, e.g. 10s, 2m.
    #[arg(short = 'd', long = "duration", default_value = "10s", value_parser = Dur::parse, conflicts_with = "config")]
    duration: Dur,
    /// A config file (JSON); see the README's config reference.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Base URL that replaces the config's `target`.
    #[arg(long, requires = "config")]
    target: Option<String>,
    /// Worker threads (overrides the config's `threads`); default: all cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Where to create `<run_id>/`.
    #[arg(long, default_value = "runs", conflicts_with = "run_dir")]
    runs_dir: PathBuf,
    /// Write the run into exactly this directory (used by the daemon).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Write a line per request to samples.ndjson (see `--sample-rate`).
    #[arg(long)]
    samples: bool,
    /// Fraction of requests sampled, 0..1 (implies `--samples`).
    #[arg(long, value_name = "RATE")]
    sample_rate: Option<f64>,
    /// No live progress line on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
}

fn main() -> ExitCode {
    // A file over `ulimit -f` must be a write error the run reports (state
    // failed, or sampling stopped), not SIGXFSZ killing the process with no
    // final status (found by tests/faults.rs).
    userflux_engine::sys::ignore_sigxfsz();
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { config } => match Config::load(&config) {
            Ok(c) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&c).expect("a config serializes")
                );
                ExitCode::SUCCESS
            }
            Err(e) => config_error(&e.to_string()),
        },
        Command::Run(args) => run(args),
        Command::Schema { name } => {
            let schema = userflux_engine::schema::by_name(&name).expect("clap checked the name");
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("a schema serializes")
            );
            ExitCode::SUCCESS
        }
    }
}

fn config_error(msg: &str) -> ExitCode {
    eprintln!("userflux-engine: invalid config:");
    for line in msg.lines() {
        eprintln!("  {line}");
    }
    ExitCode::from(2)
}

fn run(args: RunArgs) -> ExitCode {
    // Overrides apply before validation, so `--target` can supply a target
    // the file leaves out.
    let config = match &args.config {
        Some(path) => Config::read(path).map(|(mut c, warnings)| {
            for w in warnings {
                eprintln!("userflux-engine: {}: converted: {w}", path.display());
            }
            if args.target.is_some() {
                c.target.clone_from(&args.target);
            }
            c
        }),
        None => Config::quick(
            args.url.as_deref().unwrap_or_default(),
            args.connections,
            args.duration,
        ),
    };
    let config = config.and_then(|mut c| {
        if args.threads.is_some() {
            c.threads = args.threads;
        }
        if args.samples || args.sample_rate.is_some() {
            let rate = args
                .sample_rate
                .or(c.samples.map(|s| s.rate))
                .unwrap_or(1.0);
            c.samples = Some(userflux_engine::config::Samples {
                enabled: true,
                rate,
            });
        }
        c.resolve().map_err(|e| match &args.config {
            Some(path) => e.in_file(path),
            None => e,
        })
    });
    let config = match config {
        Ok(c) => c,
        Err(e) => return config_error(&e.to_string()),
    };
    if let Err(e) = userflux_engine::run::ensure_file_limit(&config) {
        eprintln!("userflux-engine: {e}");
        return ExitCode::from(1);
    }
    let plan = match prepare(&config) {
        Ok(p) => p,
        Err(e) => return config_error(&e.to_string()),
    };
    match start(&args, &config, plan) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("userflux-engine: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn start(
    args: &RunArgs,
    config: &Config,
    plan: userflux_engine::plan::Plan,
) -> anyhow::Result<ExitCode> {
    let dir = match &args.run_dir {
        Some(p) => RunDir::at(p),
        None => RunDir::create_in(&args.runs_dir),
    }
    .with_context(|| {
        format!(
            "cannot create the run directory in {}",
            args.run_dir.as_ref().unwrap_or(&args.runs_dir).display()
        )
    })?;
    dir.write_json("config.json", config)
        .context("cannot write config.json")?;
    let status = Arc::new(Mutex::new(initial_status(&dir, config)));
    dir.write_json("status.json", &*status.lock())
        .context("cannot write status.json")?;

    let (stop_tx, stop_rx) = crossbeam_channel::unbounded();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot install signal handlers")?;
    {
        let (status, dir) = (Arc::clone(&status), dir.clone());
        std::thread::Builder::new()
            .name("userflux-signals".into())
            .spawn(move || {
                for (n, sig) in signals.forever().enumerate() {
                    let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                    if n == 0 {
                        let _ = stop_tx.send(format!("received {name}"));
                        continue;
                    }
                    // A second signal: leave a valid status and exit at once.
                    let error = RunError {
                        kind: "signal".into(),
                        message: format!("second {name}: exited at once"),
                    };
                    let st = finish_status(&status, RunState::Stopped, 130, Some(error));
                    let _ = dir.write_json("status.json", &st);
                    let _ = dir.log(&format!("second {name}: exiting at once"));
                    std::process::exit(130);
                }
            })?;
    }

    let progress = !args.quiet;
    let summary = match execute(config, plan, &dir, &status, stop_rx, progress) {
        Ok(s) => s,
        Err(e) => {
            let error = RunError {
                kind: "engine".into(),
                message: e.to_string(),
            };
            let st = finish_status(&status, RunState::Failed, 1, Some(error));
            let _ = dir.write_json("status.json", &st);
            let _ = dir.log(&format!("run failed: {e}"));
            anyhow::bail!("run {} failed: {e}", dir.run_id);
        }
    };
    if let Err(e) = dir.write_json("summary.json", &summary) {
        let error = RunError {
            kind: "io".into(),
            message: format!("cannot write summary.json: {e}"),
        };
        let st = finish_status(&status, RunState::Failed, 1, Some(error));
        let _ = dir.write_json("status.json", &st);
        anyhow::bail!("cannot write {}: {e}", dir.file("summary.json").display());
    }
    let failed = summary.failed_thresholds();
    let code = if failed > 0 { EXIT_THRESHOLDS } else { 0 };
    let error = if failed > 0 {
        Some(RunError {
            kind: "thresholds".into(),
            message: format!("{failed} of {} thresholds failed", summary.thresholds.len()),
        })
    } else {
        (summary.state == RunState::Stopped).then(|| RunError {
            kind: "stopped".into(),
            message: summary
                .stop_reason
                .clone()
                .unwrap_or_else(|| "stopped before the end".into()),
        })
    };
    let st = finish_status_with(&status, &summary, code, error);
    dir.write_json("status.json", &st)
        .context("cannot write status.json")?;
    dir.log(&format!(
        "run {} {}: {} requests, {} errors, {:.1} req/s",
        dir.run_id,
        summary.state.as_str(),
        summary.totals.requests,
        summary.totals.errors,
        summary.totals.rps
    ))?;
    // A closed stdout (`| head`) must not turn a finished run into a panic:
    // everything is on disk already, so a failed write is only reported.
    let mut out = std::io::stdout().lock();
    let printed = writeln!(
        out,
        "{}Run directory: {}",
        human_summary(&summary),
        dir.path.display()
    );
    if let Err(e) = printed.and_then(|()| out.flush()) {
        eprintln!(
            "userflux-engine: could not print the summary ({e}); it is in {}",
            dir.file("summary.json").display()
        );
    }
    Ok(ExitCode::from(code as u8))
}
