//! `userflux-engine search`: the capacity search's command line (the
//! search itself is [`userflux_engine::run::search`]): flags, the run
//! directory, signals, the trial table and the one-line answer.

use clap::Args;
use signal_hook::consts::{SIGINT, SIGTERM};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use userflux_engine::aggregator::Halt;
use userflux_engine::config::quick::{self, Quick};
use userflux_engine::config::search::SearchOver;
use userflux_engine::config::{Config, Method};
use userflux_engine::duration::Dur;
use userflux_engine::run::search::{self, Trial};
use userflux_engine::run::{finish_status, finish_status_with};
use userflux_engine::rundir::RunDir;
use userflux_engine::status::{RunError, RunErrorKind};
use userflux_engine::summary::RunState;
use userflux_engine::thresholds::ThresholdSpec;

#[derive(Args)]
pub struct SearchArgs {
    /// Target URL for the quick form (one endpoint), e.g. http://127.0.0.1:8080/
    #[arg(conflicts_with = "config", required_unless_present = "config")]
    url: Option<String>,
    /// A config file (JSON): its units' mix and its thresholds (the SLO).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Base URL that replaces the config's `target`.
    #[arg(long, requires = "config")]
    target: Option<String>,
    /// The SLO, k6's grammar: 'METRIC: EXPRESSION', e.g. 'http_req_duration: p(99)<50'
    /// (repeatable; replaces the config's thresholds).
    #[arg(long = "threshold", value_name = "METRIC: EXPR", value_parser = search::parse_threshold)]
    thresholds: Vec<(String, String)>,
    /// Search the VU count (closed model: "how many users") instead of the rate.
    #[arg(long)]
    vus: bool,
    /// The first rate (or VU count) tried [default: 100].
    #[arg(long, value_name = "R")]
    from: Option<f64>,
    /// The highest tried [default: 1000000].
    #[arg(long, value_name = "R")]
    max: Option<f64>,
    /// Stop when the bracket is this narrow, relative to its lower end [default: 0.02].
    #[arg(long, value_name = "P")]
    precision: Option<f64>,
    /// Length of each trial [default: 5s].
    #[arg(long, value_name = "D", value_parser = Dur::parse)]
    trial: Option<Dur>,
    /// An unjudged trial at --from first; 0s: none [default: 2s].
    #[arg(long, value_name = "D", value_parser = Dur::parse)]
    warmup: Option<Dur>,
    /// Trials per value; one whose trials disagree is noisy (counted as failing) [default: 1].
    #[arg(long, value_name = "N")]
    repeat: Option<u32>,
    /// Pause between trials, so the target's queues drain [default: 1s].
    #[arg(long, value_name = "D", value_parser = Dur::parse)]
    cooldown: Option<Dur>,
    /// The confirmation run at the value found; 0s: none [default: 3 × --trial].
    #[arg(long, value_name = "D", value_parser = Dur::parse)]
    confirm: Option<Dur>,
    /// The longest the whole search may take (then: the bracket so far).
    #[arg(long, value_name = "D", value_parser = Dur::parse)]
    budget: Option<Dur>,
    /// A trial with more failed requests than this (0..1) fails [default: 0.01].
    #[arg(long, value_name = "RATE")]
    max_error_rate: Option<f64>,
    /// Rate search: most connections per unit in a trial [default: 1000].
    #[arg(
        short = 'c',
        long = "connections",
        value_name = "N",
        conflicts_with = "vus"
    )]
    connections: Option<u32>,
    /// Quick form: the request method.
    #[arg(short = 'm', long, value_name = "METHOD", value_parser = quick::parse_method, conflicts_with = "config")]
    method: Option<Method>,
    /// Quick form: a request header 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = quick::parse_header, conflicts_with = "config")]
    headers: Vec<(String, String)>,
    /// Quick form: the request body.
    #[arg(long, conflicts_with = "config")]
    body: Option<String>,
    /// Quick form: longest wait for a complete response [default: 30s].
    #[arg(long, value_name = "D", value_parser = quick::parse_timeout, conflicts_with = "config")]
    timeout: Option<Dur>,
    /// Worker threads (overrides the config's `threads`); default: all cores.
    #[arg(short = 't', long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
        .range(1..=userflux_engine::config::MAX_THREADS as u64))]
    threads: Option<usize>,
    /// Where to create `<run_id>/`.
    #[arg(long, default_value = "runs", conflicts_with = "run_dir")]
    runs_dir: PathBuf,
    /// Write the search into exactly this directory, new or empty.
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// No line per trial on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Print summary.json on stdout (the human summary goes to stderr).
    #[arg(long)]
    json: bool,
}

/// `userflux-engine search`: the config (or the quick form's URL) with a
/// `search` made of the flags, then [`execute`].
pub fn run(args: SearchArgs) -> ExitCode {
    let config = match &args.config {
        Some(path) => super::read_config(path, args.target.as_deref()),
        None => {
            let mut q = Quick::new(args.url.as_deref().unwrap_or_default(), 1, None);
            q.method = args.method.unwrap_or_default();
            q.headers.clone_from(&args.headers);
            q.body.clone_from(&args.body);
            q.timeout = args.timeout;
            q.config()
        }
    };
    let mut config = match config {
        Ok(c) => c,
        Err(e) => return super::usage_error(&e.to_string()),
    };
    if args.threads.is_some() {
        config.threads = args.threads;
    }
    if !args.thresholds.is_empty() {
        config.thresholds.clear();
        for (metric, expr) in &args.thresholds {
            let list = config.thresholds.entry(metric.clone()).or_default();
            list.push(ThresholdSpec::Expr(expr.clone()));
        }
    }
    // the flags over the config's own `search`, if any
    let mut s = config.search.take().unwrap_or_default();
    let mut typed: Vec<(&str, &str)> = Vec::new();
    macro_rules! flag {
        ($field:ident, $flag:literal, $value:expr) => {
            if let Some(v) = $value {
                s.$field = v;
                typed.push((concat!("search.", stringify!($field)), $flag));
            }
        };
    }
    if args.vus {
        s.over = SearchOver::Vus;
        typed.push(("search.over", "--vus"));
    }
    flag!(from, "--from", args.from);
    flag!(max, "--max", args.max);
    flag!(precision, "--precision", args.precision);
    flag!(trial, "--trial", args.trial);
    flag!(warmup, "--warmup", args.warmup);
    flag!(repeat, "--repeat", args.repeat);
    flag!(cooldown, "--cooldown", args.cooldown);
    flag!(confirm, "--confirm", args.confirm.map(Some));
    flag!(budget, "--budget", args.budget.map(Some));
    flag!(max_vus, "-c", args.connections);
    flag!(max_error_rate, "--max-error-rate", args.max_error_rate);
    config.search = Some(s);
    let config = match config.resolve() {
        Ok(c) => c,
        Err(e) => {
            // the problems by the names the user typed
            let mut msg = e.to_string();
            if args.config.is_none() {
                // the quick form has no search but the flags' (and their defaults)
                for (field, flag) in [
                    ("search.from", "--from"),
                    ("search.max", "--max"),
                    ("search.trial", "--trial"),
                    ("search.confirm", "--confirm"),
                ] {
                    if !typed.iter().any(|(f, _)| *f == field) {
                        typed.push((field, flag));
                    }
                }
            }
            typed.sort_by_key(|(field, _)| std::cmp::Reverse(field.len()));
            for (field, flag) in &typed {
                msg = msg.replace(field, flag);
            }
            msg = msg.replace(
                "search: a search needs an SLO: thresholds",
                "a search needs an SLO: --threshold 'http_req_duration: p(99)<50' (repeatable), or thresholds",
            );
            return match &args.config {
                Some(path) => super::config_error(&format!("{}: {msg}", path.display())),
                None => super::usage_error(&msg.replace("endpoints[0].path:", "URL:")),
            };
        }
    };
    let dir = match &args.run_dir {
        Some(p) => RunDir::at(p),
        None => RunDir::create_in(&args.runs_dir),
    };
    match dir {
        Ok(dir) => execute(&config, &dir, args.quiet, args.json),
        Err(e) => {
            eprintln!("userflux-engine: cannot create the search's run directory: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs the search of a resolved `config` (its `search` set) into `dir`:
/// exit 0 found, 99 not even the first value holds (or the confirmation
/// did not), 1 failure, 2 a trial's config refused. `userflux-engine run
/// --config` of a config with `search` comes here too (so does the daemon).
pub fn execute(config: &Config, dir: &RunDir, quiet: bool, json: bool) -> ExitCode {
    let spec = config.search.clone().unwrap_or_default();
    // the first trial's config, checked before anything runs
    let first = search::trial_config(config, &spec, spec.from, spec.trial.0);
    if let Err(e) = first
        .clone()
        .resolve()
        .and_then(|c| userflux_engine::run::prepare(&c))
    {
        return super::config_error(&e.to_string().replace("endpoints[0].path:", "URL:"));
    }
    let _ = dir.write_json("config.json", config);
    // the search's own status: running, then its outcome (each trial has its own)
    let status = parking_lot::Mutex::new(userflux_engine::run::initial_status(dir, config));
    let _ = dir.write_json("status.json", &*status.lock());
    let (stop_tx, stop_rx) = crossbeam_channel::unbounded();
    let stopped = Arc::new(AtomicBool::new(false));
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            let stopped = Arc::clone(&stopped);
            std::thread::spawn(move || {
                for (n, _) in signals.forever().enumerate() {
                    if n > 0 {
                        std::process::exit(130);
                    }
                    // the trial under way stops; no other starts
                    stopped.store(true, Ordering::SeqCst);
                    let _ = stop_tx.send(Halt::Stop("received a signal".into()));
                }
            });
        }
        Err(e) => eprintln!("userflux-engine: no signal handlers ({e}); Ctrl-C ends at once"),
    }
    if !quiet {
        eprintln!("{}", search::table_head(spec.over));
    }
    let mut progress = |t: &Trial| {
        if !quiet {
            eprintln!("{}", search::table_row(t));
        }
    };
    let mut summary = match search::search(config, dir, &stop_rx, &stopped, &mut progress) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("userflux-engine: the search failed: {e}");
            let _ = dir.log(&format!("search failed: {e}"));
            let error = RunError {
                kind: RunErrorKind::Engine,
                message: e,
            };
            let st = finish_status(&status, RunState::Failed, 1, Some(error));
            let _ = dir.write_json("status.json", &st);
            return ExitCode::from(1);
        }
    };
    if stopped.load(Ordering::SeqCst) {
        summary.state = RunState::Stopped;
        summary.stop_reason = Some("received a signal".into());
    }
    if let Err(e) = dir.write_json("summary.json", &summary) {
        eprintln!("userflux-engine: cannot write summary.json: {e}");
        return ExitCode::from(1);
    }
    let result = summary
        .search
        .as_ref()
        .expect("a search's summary has its result");
    let code = if stopped.load(Ordering::SeqCst) {
        0
    } else {
        result.exit_code()
    };
    let error = (code != 0).then(|| RunError {
        kind: RunErrorKind::Thresholds,
        message: result.outcome.clone(),
    });
    let st = finish_status_with(&status, &summary, code, error);
    let _ = dir.write_json("status.json", &st);
    // (the table went to stderr trial by trial unless quiet)
    let mut human = if quiet {
        search::human(result)
    } else {
        format!("{}\n", result.outcome)
    };
    human.push_str(&format!("Run directory: {}\n", dir.path.display()));
    if json {
        eprint!("{human}");
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("a summary serializes")
        );
    } else {
        print!("{human}");
    }
    ExitCode::from(code as u8)
}
