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
use userflux_engine::config::{Config, Method};
use userflux_engine::duration::Dur;
use userflux_engine::run::search::{self, SearchSpec, Trial, Verdict};
use userflux_engine::rundir::RunDir;
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
    /// The first rate tried, req/s (flows: iterations/s).
    #[arg(long, value_name = "R", default_value = "100", value_parser = quick::parse_rate)]
    from: f64,
    /// The highest rate tried.
    #[arg(long, value_name = "R", default_value = "1000000", value_parser = quick::parse_rate)]
    max: f64,
    /// Stop when the bracket is this narrow, relative to its lower end (0.02 = 2 %).
    #[arg(long, value_name = "P", default_value = "0.02", value_parser = parse_precision)]
    precision: f64,
    /// Length of each trial.
    #[arg(long, value_name = "D", default_value = "5s", value_parser = quick::parse_duration)]
    trial: Dur,
    /// An unjudged run at --from first (0s: none).
    #[arg(long, value_name = "D", default_value = "2s", value_parser = parse_pause)]
    warmup: Dur,
    /// Trials per rate; a rate whose trials disagree is noisy (counted as failing).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10))]
    repeat: u32,
    /// Pause between trials, so the target's queues drain.
    #[arg(long, value_name = "D", default_value = "1s", value_parser = parse_pause)]
    cooldown: Dur,
    /// The confirmation run at the rate found [default: 3 × --trial; 0s: none].
    #[arg(long, value_name = "D", value_parser = parse_pause)]
    confirm: Option<Dur>,
    /// The longest the whole search may take (then: the bracket so far).
    #[arg(long, value_name = "D", value_parser = quick::parse_duration)]
    budget: Option<Dur>,
    /// Most connections per unit in a trial (a unit's own max_vus wins).
    #[arg(short = 'c', long = "connections", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(userflux_engine::config::MAX_VUS)))]
    connections: u32,
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

fn parse_precision(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.001..=1.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "\"{s}\" is not a precision from 0.001 to 1 (0.02 = 2 %)"
        )),
    }
}

/// A pause that may be 0 (`0s`), up to the longest run.
fn parse_pause(s: &str) -> Result<Dur, String> {
    let d = Dur::parse(s)?;
    if d.0 > userflux_engine::config::limits::MAX_RUN {
        return Err(format!("\"{s}\" is longer than the longest run"));
    }
    Ok(d)
}

/// `userflux-engine search`: exit 0 found, 99 not even the first rate
/// holds (or the confirmation did not), 1 failure, 2 bad usage.
pub fn run(args: SearchArgs) -> ExitCode {
    let usage = |msg: String| {
        eprintln!("userflux-engine: invalid arguments:\n  {msg}");
        ExitCode::from(2)
    };
    if args.from > args.max {
        return usage(format!("--from {} is above --max {}", args.from, args.max));
    }
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
        None => {
            let mut q = Quick::new(
                args.url.as_deref().unwrap_or_default(),
                args.connections,
                None,
            );
            q.method = args.method.unwrap_or_default();
            q.headers.clone_from(&args.headers);
            q.body.clone_from(&args.body);
            q.timeout = args.timeout;
            q.rate = Some(args.from);
            // -c is the most connections; a trial opens them as it needs
            q.config().map(|mut c| {
                c.endpoints[0].pre_allocated_vus = None;
                c
            })
        }
    };
    let mut config = match config {
        Ok(c) => c,
        Err(e) => return usage(e.to_string()),
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
    if config.thresholds.is_empty() {
        return usage(
            "a search needs an SLO: --threshold 'http_req_duration: p(99)<50' (repeatable), \
             or thresholds in the config"
                .into(),
        );
    }
    if config.shard.is_some() {
        return usage("a search runs on one engine: the config's shard is not supported".into());
    }
    // the first trial's config, checked before anything is created
    let first = search::at_rate(&config, args.from, args.trial.0, args.connections);
    if let Err(e) = first.clone().resolve().and_then(|c| {
        userflux_engine::run::prepare(&c)?;
        Ok(c)
    }) {
        let e = e.to_string().replace("endpoints[0].path:", "URL:");
        return match args.config {
            Some(_) => {
                eprintln!("userflux-engine: invalid config:\n  {e}");
                ExitCode::from(2)
            }
            None => usage(e),
        };
    }
    let spec = SearchSpec {
        from: args.from,
        max: args.max,
        precision: args.precision,
        trial: args.trial.0,
        warmup: args.warmup.0,
        repeat: args.repeat,
        cooldown: args.cooldown.0,
        confirm: args.confirm.map_or(args.trial.0 * 3, |d| d.0),
        budget: args.budget.map(|d| d.0),
        max_vus: args.connections,
    };
    let dir = match &args.run_dir {
        Some(p) => RunDir::at(p),
        None => RunDir::create_in(&args.runs_dir),
    };
    let dir = match dir {
        Ok(d) => d,
        Err(e) => {
            eprintln!("userflux-engine: cannot create the search's run directory: {e}");
            return ExitCode::from(1);
        }
    };
    let _ = dir.write_json("config.json", &config);
    // the search's own status: running, then its outcome (the trials each
    // have theirs)
    let status = parking_lot::Mutex::new(userflux_engine::run::initial_status(&dir, &first));
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
    if !args.quiet {
        eprintln!("{}", table_head());
    }
    let mut progress = |t: &Trial| {
        if !args.quiet {
            eprintln!("{}", table_row(t));
        }
    };
    let summary = match search::search(&config, &spec, &dir, &stop_rx, &stopped, &mut progress) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("userflux-engine: the search failed: {e}");
            let _ = dir.log(&format!("search failed: {e}"));
            return ExitCode::from(1);
        }
    };
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
    let st = userflux_engine::run::finish_status_with(&status, &summary, code, None);
    let _ = dir.write_json("status.json", &st);
    let mut human = String::new();
    if args.quiet || args.json {
        human.push_str(&table_head());
        human.push('\n');
        for t in &result.trials {
            human.push_str(&table_row(t));
            human.push('\n');
        }
    }
    human.push_str(&format!(
        "{}\nRun directory: {}\n",
        result.outcome,
        dir.path.display()
    ));
    if args.json {
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

fn table_head() -> String {
    format!(
        "{:>3} {:>10} {:>10} {:>9} {:>9} {:>11} {:>7}  {}",
        "#", "rate/s", "sent/s", "p99 ms", "p99co ms", "errors", "dropped", "verdict"
    )
}

fn table_row(t: &Trial) -> String {
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    let n: String = t
        .run
        .trim_start_matches("trials/")
        .chars()
        .take(2)
        .collect();
    let verdict = match t.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
        Verdict::Noisy => "noisy",
        Verdict::Warmup => "warm-up",
        Verdict::Confirmed => "confirmed",
        Verdict::NotConfirmed => "NOT CONFIRMED",
    };
    let why = t.why.as_deref().map_or(String::new(), |w| format!(": {w}"));
    format!(
        "{:>3} {:>10.1} {:>10.1} {:>9} {:>9} {:>10.2}% {:>7}  {verdict}{why}",
        n,
        t.rate,
        t.achieved,
        ms(t.p99_ms),
        ms(t.p99_corrected_ms),
        t.error_rate * 100.0,
        t.dropped
    )
}
