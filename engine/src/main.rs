//! `userflux-engine`: run a load test from a config file, or quickly against
//! one URL like wrk, and leave a complete run directory behind.
//!
//! Exit codes: 0 the run finished (or was stopped on request) and its
//! summary is written; 1 the run could not be carried out; 2 bad usage or
//! config (nothing is created); 99 thresholds failed; 130 a second
//! SIGINT/SIGTERM ended the run at once (requests in flight counted as
//! `interrupted`, the summary still written; a third signal, or a summary
//! not written within 3 s, exits with only `status.json`).
//! In cluster mode (`USERFLUX_CLUSTER=1`, a Kubernetes Job's pod) a shard
//! whose run completed exits 0 whatever its thresholds, and prints its
//! results framed on stdout (see `userflux_engine::cluster`).
//!
//! One job past 800 lines: the command line. Its flag table and the map
//! from config field paths back to the flags the user typed (so every
//! error names a flag) are the bulk; the subcommands' own work lives in
//! `grpc_cmd.rs`, `search_cmd.rs` and the library.

mod grpc_cmd;
mod local_shards;
mod search_cmd;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use parking_lot::Mutex;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use userflux_engine::aggregator::Halt;
use userflux_engine::config::quick::{self, Quick};
use userflux_engine::config::{Config, ConfigError, HttpVersion, Method};
use userflux_engine::duration::Dur;
use userflux_engine::report::human_summary;
use userflux_engine::run::{
    execute, finish_status, finish_status_with, initial_status, lifecycle, prepare,
};
use userflux_engine::rundir::RunDir;
use userflux_engine::status::{RunError, RunErrorKind};
use userflux_engine::summary::RunState;

#[derive(Parser)]
#[command(
    name = "userflux-engine",
    version,
    about = "Thread-per-core HTTP/1.1, HTTP/2 and gRPC load generator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a load test: `run URL -c CONNS -d DURATION` or `run --config FILE`.
    Run(Box<RunArgs>),
    /// Capacity search: the highest rate within the SLO, by open-model
    /// trials (`search URL --threshold 'http_req_duration: p(99)<50'`).
    Search(Box<search_cmd::SearchArgs>),
    /// Load a unary gRPC method (ghz's vocabulary): `grpc HOST:PORT
    /// pkg.Service/Method [--proto x.proto] -d '{"id": {{seq}}}' -c 8 --streams 16 -z 10s`;
    /// without --proto, the server describes the method by reflection.
    Grpc(Box<grpc_cmd::GrpcArgs>),
    /// Check a config file and print it resolved (defaults filled), or the errors.
    Validate {
        /// The config file (JSON).
        config: PathBuf,
    },
    /// Print the JSON Schema of a file of the run contract.
    Schema {
        /// config, status, summary, sample, timeline-histograms, live or control
        #[arg(value_parser = ["config", "status", "summary", "sample", "timeline-histograms", "live", "control"])]
        name: String,
    },
}

/// Largest `--body-file` (the body is sent whole with every request).
const MAX_BODY_FILE: u64 = 16 * 1024 * 1024;

#[derive(Args)]
struct RunArgs {
    /// Target URL for the quick form (one endpoint), e.g. http://127.0.0.1:8080/
    #[arg(conflicts_with = "config", required_unless_present = "config")]
    url: Option<String>,
    /// Connections (VUs) in the quick form; with --rate, the most connections.
    #[arg(
        short = 'c',
        long = "connections",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(userflux_engine::config::MAX_VUS)),
        conflicts_with = "config"
    )]
    connections: u32,
    /// Duration of the quick form, e.g. 10s, 2m [default: 10s; with -n, at most 10m].
    #[arg(short = 'd', long = "duration", value_parser = quick::parse_duration, conflicts_with = "config")]
    duration: Option<Dur>,
    /// Quick form: the duration, as oha's -z (the same as -d, wrk's).
    #[arg(short = 'z', value_name = "DURATION", value_parser = quick::parse_duration,
          conflicts_with_all = ["config", "duration"])]
    duration_z: Option<Dur>,
    /// Quick form: the request method (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS).
    #[arg(short = 'm', long, value_name = "METHOD", value_parser = quick::parse_method, conflicts_with = "config")]
    method: Option<Method>,
    /// Quick form: a request header 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = quick::parse_header, conflicts_with = "config")]
    headers: Vec<(String, String)>,
    /// Quick form: the request body (Content-Length is set).
    #[arg(long, conflicts_with_all = ["config", "body_file"])]
    body: Option<String>,
    /// Quick form: the request body, read from FILE at start.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    body_file: Option<PathBuf>,
    /// Exactly N requests in total, then finish (overrides the config's `requests`).
    #[arg(short = 'n', long = "requests", value_name = "N", value_parser = clap::value_parser!(u64).range(1..=userflux_engine::config::limits::MAX_REQUESTS))]
    requests: Option<u64>,
    /// Quick form: open model at R requests per second; -c is the most connections.
    #[arg(long, value_name = "R", value_parser = quick::parse_rate, conflicts_with = "config")]
    rate: Option<f64>,
    /// Quick form: longest wait for a complete response [default: 30s].
    #[arg(long, value_name = "D", value_parser = quick::parse_timeout, conflicts_with = "config")]
    timeout: Option<Dur>,
    /// Quick form: longest wait for a TCP connection [default: 5s].
    #[arg(long, value_name = "D", value_parser = quick::parse_timeout, conflicts_with = "config")]
    connect_timeout: Option<Dur>,
    /// Quick form: `Connection: close` on every request (a new connection each time).
    #[arg(long, conflicts_with = "config")]
    no_keepalive: bool,
    /// Quick form: the same as --no-keepalive (oha's name).
    #[arg(long, conflicts_with = "config")]
    disable_keepalive: bool,
    /// Quick form, https: do not verify the server's certificate.
    #[arg(long, conflicts_with = "config")]
    insecure: bool,
    /// Quick form, https: trust the CA certificates in this PEM file too.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    cacert: Option<PathBuf>,
    /// Quick form, https: client certificate chain (PEM) for mutual TLS; needs --key.
    #[arg(long, value_name = "FILE", conflicts_with = "config", requires = "key")]
    cert: Option<PathBuf>,
    /// Quick form, https: the client certificate's private key (PEM); needs --cert.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "config",
        requires = "cert"
    )]
    key: Option<PathBuf>,
    /// Quick form: HTTP/2 — by ALPN over https (a server that refuses h2
    /// fails the requests as `protocol` errors), h2c with prior knowledge over http.
    #[arg(long, conflicts_with = "config")]
    http2: bool,
    /// Quick form: HTTP/1.1 (the default).
    #[arg(long = "http1.1", conflicts_with_all = ["config", "http2"])]
    http1_1: bool,
    /// Quick form: HTTP/2 streams per connection, 1-1000 (h2load's -m): -c N
    /// --streams M is N connections × M streams, N×M VUs. Needs --http2.
    #[arg(long, value_name = "M", requires = "http2", conflicts_with = "config",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(userflux_engine::config::protocol::MAX_STREAMS)))]
    streams: Option<u32>,
    /// Run share I of N of the config (0-based; also USERFLUX_SHARD=I/N or
    /// the config's `shard`); `userfluxctl merge` joins the shards' runs.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Run the whole config as N shard engines on this machine, one start
    /// time, merged into this run when they end (1 to 64).
    #[arg(long, value_name = "N", conflicts_with_all = ["shard", "start_at", "group"],
          value_parser = clap::value_parser!(u32).range(1..=i64::from(local_shards::MAX_LOCAL_SHARDS)))]
    shards: Option<u32>,
    /// Wait until this wall-clock time (RFC 3339) before t = 0, so every
    /// shard's stages line up (also USERFLUX_START_AT).
    #[arg(long, value_name = "TIME")]
    start_at: Option<String>,
    /// Names the whole sharded run (also USERFLUX_GROUP; default: the
    /// config's hash and the start time).
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// A config file (JSON); see docs/config.md.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Base URL that replaces the config's `target`.
    #[arg(long, requires = "config")]
    target: Option<String>,
    /// Worker threads (overrides the config's `threads`); default: all cores.
    #[arg(short = 't', long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
        .range(1..=userflux_engine::config::MAX_THREADS as u64))]
    threads: Option<usize>,
    /// Where to create `<run_id>/`.
    #[arg(long, default_value = "runs", conflicts_with = "run_dir")]
    runs_dir: PathBuf,
    /// Write the run into exactly this directory, new or empty (a run is never overwritten).
    #[arg(short = 'o', long)]
    run_dir: Option<PathBuf>,
    /// Do not keep the run: it is written to a temporary directory, removed
    /// once the summary is printed.
    #[arg(long, conflicts_with_all = ["run_dir", "runs_dir", "prepared"])]
    no_save: bool,
    /// The daemon's: --run-dir was prepared for this run (config, queued status, logs).
    #[arg(long, hide = true, requires = "run_dir")]
    prepared: bool,
    /// Write a line per request to samples.ndjson (see `--sample-rate`).
    #[arg(long)]
    samples: bool,
    /// Fraction of requests sampled, 0..1 (implies `--samples`).
    #[arg(long, value_name = "RATE")]
    sample_rate: Option<f64>,
    /// No live progress line on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Print summary.json on stdout (the human summary goes to stderr).
    #[arg(long)]
    json: bool,
    /// `grpc`'s call (set by `userflux-engine grpc`, not a flag of `run`).
    #[arg(skip)]
    grpc: Option<userflux_engine::config::grpc::GrpcSpec>,
    /// `grpc -D FILE`: where its message came from, for errors.
    #[arg(skip)]
    grpc_data_file: Option<PathBuf>,
}

impl RunArgs {
    /// The quick form's flags; a `--body-file` that cannot be used is an
    /// error naming it.
    fn quick(&self) -> Result<Quick, ConfigError> {
        let mut q = Quick::new(
            self.url.as_deref().unwrap_or_default(),
            self.connections,
            self.duration.or(self.duration_z),
        );
        q.method = self.method.unwrap_or_default();
        q.headers.clone_from(&self.headers);
        q.body = match &self.body_file {
            Some(path) => Some(read_body(path).map_err(|why| ConfigError {
                problems: vec![format!("--body-file {}: {why}", path.display())],
            })?),
            None => self.body.clone(),
        };
        q.requests = self.requests;
        q.rate = self.rate;
        q.timeout = self.timeout;
        q.connect_timeout = self.connect_timeout;
        q.keepalive = !(self.no_keepalive || self.disable_keepalive);
        q.http = if self.http2 {
            Some(HttpVersion::Http2)
        } else if self.http1_1 {
            Some(HttpVersion::Http1)
        } else {
            None
        };
        q.streams = self.streams;
        q.grpc.clone_from(&self.grpc);
        let file = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        if self.insecure || self.cacert.is_some() || self.cert.is_some() {
            q.tls = Some(userflux_engine::tls::TlsSpec {
                insecure: self.insecure,
                ca_file: file(&self.cacert),
                client_cert: file(&self.cert),
                client_key: file(&self.key),
                ..Default::default()
            });
        }
        Ok(q)
    }
}

/// The name of some entry of `dir`, if it exists and is not empty.
fn first_entry(dir: &std::path::Path) -> Option<String> {
    let mut entries = std::fs::read_dir(dir).ok()?;
    let first = entries.next()?.ok()?;
    Some(first.file_name().to_string_lossy().into_owned())
}

/// A body file's text: a regular file, bounded in size (a FIFO or
/// `/dev/zero` must not hang or exhaust memory).
fn read_body(path: &std::path::Path) -> Result<String, String> {
    let bytes = userflux_engine::files::read_capped(path, MAX_BODY_FILE)?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (byte {}); binary bodies are not supported",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Prints a line on stdout; a closed pipe (`validate … | head`) is not an
/// error worth a panic.
fn print_out(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
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
                for w in userflux_engine::run::host_warnings(&c) {
                    eprintln!("userflux-engine: {}: warning: {w}", config.display());
                }
                print_out(&serde_json::to_string_pretty(&c).expect("a config serializes"));
                ExitCode::SUCCESS
            }
            Err(e) => config_error(&e.to_string()),
        },
        Command::Run(args) => run(*args),
        Command::Grpc(args) => match args.into_run() {
            Ok(run_args) => run(run_args),
            Err(e) => usage_error(&e),
        },
        Command::Search(args) => search_cmd::run(*args),
        Command::Schema { name } => {
            let schema = userflux_engine::schema::by_name(&name).expect("clap checked the name");
            print_out(&serde_json::to_string_pretty(&schema).expect("a schema serializes"));
            ExitCode::SUCCESS
        }
    }
}

/// A config file, older forms converted (each conversion said on stderr),
/// its `target` replaced by `--target` when given.
fn read_config(path: &std::path::Path, target: Option<&str>) -> Result<Config, ConfigError> {
    let (mut c, warnings) = Config::read(path)?;
    for w in warnings {
        eprintln!("userflux-engine: {}: converted: {w}", path.display());
    }
    if let Some(t) = target {
        c.target = Some(t.to_string());
    }
    Ok(c)
}

fn config_error(msg: &str) -> ExitCode {
    eprintln!("userflux-engine: invalid config:");
    for line in msg.lines() {
        eprintln!("  {line}");
    }
    ExitCode::from(2)
}

/// Quick-form flags that clap accepted but that do not make a valid run.
fn usage_error(msg: &str) -> ExitCode {
    eprintln!("userflux-engine: invalid arguments:");
    for line in msg.lines() {
        eprintln!("  {line}");
    }
    ExitCode::from(2)
}

/// The quick form's flag, as the user typed it, for a config field path
/// its error names (issue #34: `-H` over 8 KiB was reported as
/// `endpoints[0].headers.X:`, a bad port as `target:`).
fn typed_flag(path: &str, args: &RunArgs) -> Option<String> {
    let duration = if args.duration_z.is_some() {
        "-z"
    } else {
        "-d"
    };
    let flag = match path {
        "target" | "endpoints[0].url" | "endpoints[0].path" => "URL",
        "duration" => match (args.duration.or(args.duration_z), args.rate, args.requests) {
            (None, Some(r), Some(n)) => return Some(format!("--rate {r} with -n {n}")),
            _ => duration,
        },
        "requests" => "-n",
        "threads" => "-t",
        "timeouts.request" => "--timeout",
        "timeouts.connect" => "--connect-timeout",
        "endpoints[0].rate" | "endpoints[0].rate_stages" => "--rate",
        "endpoints[0].method" => "-m",
        "endpoints[0].max_vus" | "endpoints[0].pre_allocated_vus" => "-c",
        "endpoints[0].body" if args.body_file.is_some() => "--body-file",
        "endpoints[0].body" => "--body",
        "tls.ca_file" => "--cacert",
        "tls.client_cert" => "--cert",
        "tls.client_key" => "--key",
        "samples.rate" => "--sample-rate",
        "endpoints[0].grpc.proto" => "--proto",
        "endpoints[0].grpc.method" => "pkg.Service/Method",
        "endpoints[0].grpc.deadline" => "--deadline",
        "endpoints[0].grpc" | "endpoints[0].grpc.reflection" => "HOST:PORT",
        "endpoints[0].grpc.message" => match &args.grpc_data_file {
            Some(f) => return Some(format!("-D {}", f.display())),
            None => "-d",
        },
        p if p.starts_with("endpoints[0].grpc.message.") => {
            // the field inside the message stays named
            let field = &p["endpoints[0].grpc.message.".len()..];
            return Some(match &args.grpc_data_file {
                Some(f) => format!("-D {}: {field}", f.display()),
                None => format!("-d: {field}"),
            });
        }
        p if p.starts_with("endpoints[0].grpc.metadata") => "--metadata",
        p if p.starts_with("endpoints[0].grpc.import_paths") => "--import-paths",
        p if p.starts_with("endpoints[0].grpc.proto[") => "--proto",
        "http" if args.http1_1 => "--http1.1",
        "http" => "--http2",
        "streams" => "--streams",
        p if p.starts_with("stages") && p.ends_with(".target") => "-c",
        p if p.starts_with("stages") => duration,
        p => {
            let name = p.strip_prefix("endpoints[0].headers.")?;
            return Some(format!("-H '{name}: …'"));
        }
    };
    Some(flag.to_string())
}

/// A quick-form error with each field path replaced by the flag typed.
fn quick_error(msg: &str, args: &RunArgs) -> ExitCode {
    usage_error(&flagged(msg, args))
}

/// `msg`'s lines with each field path replaced by the flag typed.
fn flagged(msg: &str, args: &RunArgs) -> String {
    let lines: Vec<String> = msg
        .lines()
        .map(|line| {
            let line = if args.disable_keepalive {
                line.replace("--no-keepalive:", "--disable-keepalive:")
            } else {
                line.to_string()
            };
            // (the grpc quick form's deadline error names the field)
            let line = line.replace("raise timeouts.request", "raise --timeout");
            match line.split_once(": ") {
                Some((path, why)) => match typed_flag(path, args) {
                    Some(flag) => format!("{flag}: {why}"),
                    None => line,
                },
                None => line,
            }
        })
        .collect();
    lines.join("\n")
}

/// `--no-save`: the run goes to a temporary directory, removed at the end
/// (a third signal's immediate exit leaves it in the temporary directory).
fn run(mut args: RunArgs) -> ExitCode {
    if !args.no_save {
        return run_kept(args);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = std::env::temp_dir().join(format!(
        "userflux-unsaved-{}-{nanos:09}",
        std::process::id()
    ));
    args.run_dir = Some(tmp.clone());
    let code = run_kept(args);
    let _ = std::fs::remove_dir_all(&tmp);
    code
}

fn run_kept(args: RunArgs) -> ExitCode {
    // Overrides apply before validation, so `--target` can supply a target
    // the file leaves out.
    let config = match &args.config {
        Some(path) => read_config(path, args.target.as_deref()),
        None => args.quick().and_then(|q| q.config()),
    };
    let config = config.and_then(|mut c| {
        if args.threads.is_some() {
            c.threads = args.threads;
        }
        if args.requests.is_some() {
            c.requests = args.requests;
        }
        // --shard, USERFLUX_SHARD, or a Kubernetes Indexed Job's pod index
        // with USERFLUX_SHARD_COUNT
        let indexed = || {
            let i = std::env::var("JOB_COMPLETION_INDEX").ok()?;
            let n = std::env::var("USERFLUX_SHARD_COUNT").ok()?;
            Some(format!("{i}/{n}"))
        };
        if let Some(s) = args
            .shard
            .clone()
            .or_else(|| std::env::var("USERFLUX_SHARD").ok())
            .or_else(indexed)
        {
            c.shard = Some(s);
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
        // the quick form's flags, by the names the user typed
        Err(e) if args.config.is_none() => return quick_error(&e.to_string(), &args),
        Err(e) => return config_error(&e.to_string()),
    };
    if let Some(dir) = args.run_dir.as_ref().filter(|_| !args.prepared)
        && let Some(file) = first_entry(dir)
    {
        return usage_error(&format!(
            "--run-dir {}: already holds {file}; a run is never written over another \
             (give a new or empty directory, or use --runs-dir)",
            dir.display()
        ));
    }
    if args.shards.is_some() && config.search.is_some() {
        return usage_error("--shards: a capacity search runs in one engine, not as shards");
    }
    // a config that asks for a capacity search (the daemon runs those too)
    if config.search.is_some() {
        let dir = match &args.run_dir {
            Some(p) => RunDir::at(p),
            None => RunDir::create_in(&args.runs_dir),
        };
        return match dir {
            Ok(dir) => search_cmd::execute(&config, &dir, args.quiet, args.json),
            Err(e) => {
                eprintln!("userflux-engine: cannot create the search's run directory: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(n) = args.shards {
        if let Some(s) = &config.shard {
            return usage_error(&format!(
                "--shards {n}: the config is already a shard ({s}); --shards splits a whole run"
            ));
        }
        let dir = match &args.run_dir {
            Some(p) => RunDir::at(p),
            None => RunDir::create_in(&args.runs_dir),
        };
        return match dir
            .map_err(anyhow::Error::from)
            .and_then(|dir| local_shards::execute(&config, &dir, n))
        {
            Ok(code) => code,
            Err(e) => {
                eprintln!("userflux-engine: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    if let Err(e) = start_time(&args) {
        return usage_error(&e);
    }
    let cluster = match userflux_engine::cluster::from_env() {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    let shards = config
        .shard
        .as_deref()
        .and_then(|s| userflux_engine::shard::Shard::parse(s).ok())
        .map(|s| s.count);
    let barrier = match userflux_engine::barrier::Barrier::from_env(shards) {
        Ok(b) => b,
        Err(e) => return usage_error(&e),
    };
    if barrier.is_some() && matches!(start_time(&args), Ok(Some(_))) {
        return usage_error(&format!(
            "{} and --start-at (or USERFLUX_START_AT) both set a start time: give one",
            userflux_engine::barrier::BARRIER_ENV
        ));
    }
    if let Err(e) = userflux_engine::run::ensure_file_limit(&config) {
        eprintln!("userflux-engine: {e}");
        return ExitCode::from(1);
    }
    let mut plan = match prepare(&config) {
        Ok(p) => p,
        // the quick form's one endpoint is its URL
        Err(e) if args.config.is_none() => return quick_error(&e.to_string(), &args),
        Err(e) => return config_error(&e.to_string()),
    };
    for line in plan.absent_units() {
        eprintln!("userflux-engine: warning: {line}");
    }
    plan.fault = match userflux_engine::fault::Fault::from_env() {
        Ok(f) => f,
        Err(e) => return usage_error(&e),
    };
    match start(&args, &config, plan, cluster, barrier) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("userflux-engine: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `--start-at` (or USERFLUX_START_AT): when t = 0 is, if given. A time
/// more than 1 s past, or more than a day ahead, is an error.
fn start_time(args: &RunArgs) -> Result<Option<(std::time::SystemTime, String)>, String> {
    let Some(text) = args
        .start_at
        .clone()
        .or_else(|| std::env::var("USERFLUX_START_AT").ok())
    else {
        return Ok(None);
    };
    let t = humantime::parse_rfc3339_weak(&text)
        .map_err(|e| format!("--start-at {text}: not an RFC 3339 time ({e})"))?;
    let now = std::time::SystemTime::now();
    if let Ok(late) = now.duration_since(t)
        && late > std::time::Duration::from_secs(1)
    {
        return Err(format!(
            "--start-at {text}: {:.1} s ago; the shards would not line up (give a time ahead)",
            late.as_secs_f64()
        ));
    }
    if t.duration_since(now)
        .is_ok_and(|d| d > std::time::Duration::from_secs(24 * 3600))
    {
        return Err(format!("--start-at {text}: more than a day ahead"));
    }
    Ok(Some((t, text)))
}

/// A sharded run says who it is.
fn sharding(
    args: &RunArgs,
    config: &Config,
    start: Option<(std::time::SystemTime, String)>,
) -> Option<userflux_engine::shard::ShardInfo> {
    let shard = config
        .shard
        .as_deref()
        .and_then(|s| userflux_engine::shard::Shard::parse(s).ok())?;
    let start_at = start.map_or_else(userflux_engine::rundir::now_rfc3339, |(_, text)| text);
    let hash = userflux_engine::shard::config_hash(config);
    Some(userflux_engine::shard::ShardInfo {
        index: shard.index,
        count: shard.count,
        group: args
            .group
            .clone()
            .or_else(|| std::env::var("USERFLUX_GROUP").ok())
            .unwrap_or_else(|| format!("{}@{start_at}", &hash[..16])),
        start_at,
        config_sha256: hash,
    })
}

fn start(
    args: &RunArgs,
    config: &Config,
    plan: userflux_engine::plan::Plan,
    cluster: bool,
    barrier: Option<userflux_engine::barrier::Barrier>,
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
    // Where the run goes, before it starts (issue #34: only the last line
    // said); the daemon's runs (`--prepared`) are its own to say.
    if !args.quiet && !cluster && !args.prepared {
        if args.no_save {
            eprintln!("userflux-engine: run {} (not kept: --no-save)", dir.run_id);
        } else {
            eprintln!(
                "userflux-engine: run {} in {}",
                dir.run_id,
                dir.path.display()
            );
        }
    }
    let status = Arc::new(Mutex::new(initial_status(&dir, config)));
    dir.write_json("status.json", &*status.lock())
        .context("cannot write status.json")?;
    lifecycle::mark_failed_on_panic(&status, &dir);
    let signals =
        lifecycle::watch_signals(&status, &dir).context("cannot install signal handlers")?;
    let stop_rx = signals.stop.clone();

    let progress = !args.quiet;
    let start_at = match &barrier {
        None => start_time(args).map_err(anyhow::Error::msg)?,
        Some(b) => {
            let stopped = |d| match stop_rx.recv_timeout(d) {
                Ok(Halt::Stop(why) | Halt::Abort(why)) => Some(why),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(d);
                    None
                }
            };
            // a few lines, on stderr even with -q: `kubectl logs` shows what a pod waits for
            let log = |line: &str| {
                let _ = dir.log(line);
                eprintln!("userflux-engine: {line}");
            };
            match b.wait(stopped, log) {
                Ok(Ok(t)) => Some(t),
                Ok(Err(why)) => {
                    let code = lifecycle::stopped_before_start(
                        &status,
                        &dir,
                        &why,
                        "the pods' common start",
                    )
                    .context("cannot write status.json")?;
                    return Ok(ExitCode::from(code as u8));
                }
                Err(e) => {
                    let error = RunError {
                        kind: RunErrorKind::Barrier,
                        message: e.clone(),
                    };
                    let st = finish_status(&status, RunState::Failed, 1, Some(error));
                    dir.write_json("status.json", &st)
                        .context("cannot write status.json")?;
                    let _ = dir.log(&e);
                    eprintln!("userflux-engine: run {}: {e}", dir.run_id);
                    return Ok(ExitCode::from(1));
                }
            }
        }
    };
    if let Some((t, text)) = &start_at
        && let Some(why) = lifecycle::wait_for_start(*t, text, &dir, &stop_rx)
    {
        let code =
            lifecycle::stopped_before_start(&status, &dir, &why, &format!("the start time {text}"))
                .context("cannot write status.json")?;
        return Ok(ExitCode::from(code as u8));
    }
    let shard = sharding(args, config, start_at);
    let mut summary = match execute(config, plan, &dir, &status, stop_rx, progress) {
        Ok(s) => s,
        Err(e) => {
            let error = RunError {
                kind: RunErrorKind::Engine,
                message: e.to_string(),
            };
            let st = finish_status(&status, RunState::Failed, 1, Some(error));
            let _ = dir.write_json("status.json", &st);
            let _ = dir.log(&format!("run failed: {e}"));
            // (the quick form names its flags: a method the server's
            // reflection does not have is `pkg.Service/Method: …`)
            let e = match args.config {
                None => flagged(&e.to_string(), args),
                Some(_) => e.to_string(),
            };
            anyhow::bail!("run {} failed: {e}", dir.run_id);
        }
    };
    summary.shard = shard;
    if let Err(e) = dir.write_json("summary.json", &summary) {
        let error = RunError {
            kind: RunErrorKind::Io,
            message: format!("cannot write summary.json: {e}"),
        };
        let st = finish_status(&status, RunState::Failed, 1, Some(error));
        let _ = dir.write_json("status.json", &st);
        anyhow::bail!("cannot write {}: {e}", dir.file("summary.json").display());
    }
    let (code, error) = lifecycle::verdict(&summary, signals.aborted(), cluster);
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
    let human = if args.no_save {
        format!(
            "{}Run directory: not kept (--no-save)\n",
            human_summary(&summary)
        )
    } else {
        format!(
            "{}Run directory: {}\n",
            human_summary(&summary),
            dir.path.display()
        )
    };
    // A closed stdout (`| head`) must not turn a finished run into a panic:
    // everything is on disk already, so a failed write is only reported.
    let printed = if cluster {
        eprint!("{human}");
        let json = serde_json::to_string_pretty(&summary).expect("a summary serializes");
        userflux_engine::cluster::write_frames(&mut std::io::stdout().lock(), &dir.path, &json)
    } else if args.json {
        eprint!("{human}");
        let json = serde_json::to_string_pretty(&summary).expect("a summary serializes");
        let mut out = std::io::stdout().lock();
        writeln!(out, "{json}").and_then(|()| out.flush())
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(human.as_bytes()).and_then(|()| out.flush())
    };
    if let Err(e) = printed {
        eprintln!(
            "userflux-engine: could not print the summary ({e}); it is in {}",
            dir.file("summary.json").display()
        );
    }
    Ok(ExitCode::from(code as u8))
}
