//! `userflux-engine grpc HOST:PORT pkg.Service/Method --proto x.proto -d
//! '{"id": {{seq}}}' -c 8 --streams 16 -z 10s`: the quick form of a gRPC
//! load, in ghz's vocabulary where it fits (`--proto`, `--import-paths`,
//! `-d`, `-D`, `-m`/`--metadata`, `-n`, `-z`). Without `--proto` the method
//! is asked of the server by reflection when the run starts, as ghz does.
//! It is the `run` quick form with a gRPC call: the same config (one
//! endpoint named `default`, with `grpc`), validation, run directory and
//! summary. See docs/engine.md, "gRPC quick form", for the flags side by
//! side with ghz's.

use crate::RunArgs;
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use userflux_engine::config::grpc::{GrpcSpec, Protos};
use userflux_engine::config::quick;
use userflux_engine::duration::Dur;

#[derive(Args)]
pub struct GrpcArgs {
    /// The server, HOST:PORT (h2c; with --tls, TLS with ALPN h2).
    host: String,
    /// The method, pkg.Service/Method (ghz's --call).
    call: String,
    /// The .proto file(s) defining the method (repeatable); without it,
    /// the server is asked by reflection.
    #[arg(long, value_name = "FILE")]
    proto: Vec<PathBuf>,
    /// Directories searched for the .proto files' imports (repeatable;
    /// ghz's -i).
    #[arg(
        short = 'i',
        long = "import-paths",
        alias = "import-path",
        value_name = "DIR",
        requires = "proto"
    )]
    import_paths: Vec<PathBuf>,
    /// The request message: JSON, or a JSON template ('{"id": {{seq}}}').
    #[arg(short = 'd', long = "data", value_name = "JSON")]
    data: Option<String>,
    /// The request message read from FILE, as -d takes it (ghz's -D; a
    /// regular file of at most 16 MiB).
    #[arg(
        short = 'D',
        long = "data-file",
        value_name = "FILE",
        conflicts_with = "data"
    )]
    data_file: Option<PathBuf>,
    /// Metadata 'name:value' (repeatable; a JSON object is not taken).
    #[arg(short = 'm', long = "metadata", value_name = "NAME:VALUE", value_parser = parse_metadata)]
    metadata: Vec<(String, String)>,
    /// The calls' deadline, sent as grpc-timeout (e.g. 2s, 500ms).
    #[arg(long, value_name = "D", value_parser = quick::parse_timeout)]
    deadline: Option<Dur>,
    /// Connections (each carries --streams calls at once).
    #[arg(short = 'c', long = "connections", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(userflux_engine::config::MAX_VUS)))]
    connections: u32,
    /// Calls in flight per connection, 1-1000: -c N --streams M is N×M
    /// concurrent calls.
    #[arg(long, value_name = "M",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(userflux_engine::config::protocol::MAX_STREAMS)))]
    streams: Option<u32>,
    /// How long to run, e.g. 10s, 2m [default: 10s; with -n, at most 10m].
    #[arg(short = 'z', long = "duration", value_name = "D", value_parser = quick::parse_duration)]
    duration: Option<Dur>,
    /// Exactly N calls in total, then finish (ghz's -n).
    #[arg(short = 'n', long = "total", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=userflux_engine::config::limits::MAX_REQUESTS))]
    total: Option<u64>,
    /// Open model at R calls per second (ghz's --rps); -c × --streams is the most in flight.
    #[arg(long, alias = "rps", value_name = "R", value_parser = quick::parse_rate)]
    rate: Option<f64>,
    /// The engine's bound on one call [default: 30s]; keep it above --deadline.
    #[arg(long, value_name = "D", value_parser = quick::parse_timeout)]
    timeout: Option<Dur>,
    /// Longest wait for a TCP connection [default: 5s].
    #[arg(long, value_name = "D", value_parser = quick::parse_timeout)]
    connect_timeout: Option<Dur>,
    /// TLS (ALPN h2) instead of h2c.
    #[arg(long)]
    tls: bool,
    /// With --tls: do not verify the server's certificate (ghz's --skipTLS).
    #[arg(long, alias = "skipTLS")]
    insecure: bool,
    /// With --tls: trust the CA certificates in this PEM file too (ghz's --cacert).
    #[arg(long, value_name = "FILE", requires = "tls")]
    cacert: Option<PathBuf>,
    /// Worker threads; default: all cores.
    #[arg(short = 't', long, value_parser = parse_threads)]
    threads: Option<usize>,
    /// Where to create `<run_id>/`.
    #[arg(long, default_value = "runs", conflicts_with = "run_dir")]
    runs_dir: PathBuf,
    /// Write the run into exactly this directory, new or empty.
    #[arg(short = 'o', long)]
    run_dir: Option<PathBuf>,
    /// Do not keep the run directory.
    #[arg(long, conflicts_with_all = ["run_dir", "runs_dir"])]
    no_save: bool,
    /// No live progress line on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Print summary.json on stdout (the human summary goes to stderr).
    #[arg(long)]
    json: bool,
}

/// `name:value` (or `name: value`); a leading `:` is part of the name
/// (a pseudo-header, refused by name when the call is built).
fn parse_metadata(s: &str) -> Result<(String, String), String> {
    if s.trim_start().starts_with('{') {
        // ghz's -m takes a JSON object
        return Err(format!(
            "\"{s}\": the JSON form is not taken: give -m name:value, once per entry"
        ));
    }
    let skip = usize::from(s.starts_with(':'));
    let (k, v) = s[skip..]
        .split_once(':')
        .ok_or_else(|| format!("\"{s}\": expected NAME:VALUE"))?;
    Ok((format!("{}{}", &s[..skip], k.trim()), v.trim().to_string()))
}

/// `-t N`, worker threads; ghz's `-t` is its timeout, so a duration gets
/// a hint.
fn parse_threads(s: &str) -> Result<usize, String> {
    let max = userflux_engine::config::MAX_THREADS;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        Ok(_) => Err(format!("{s} is not in 1..={max}")),
        Err(_) if quick::parse_timeout(s).is_ok() => Err(format!(
            "\"{s}\" is a duration, and -t is --threads here (worker threads); ghz's -t, the call's timeout, is --timeout (the engine's bound) or --deadline (sent as grpc-timeout)"
        )),
        Err(e) => Err(e.to_string()),
    }
}

impl GrpcArgs {
    /// The `run` quick form these flags stand for.
    pub fn into_run(mut self) -> Result<RunArgs, String> {
        // the paths as typed, from here (a quick form has no config file)
        let absolute = |p: &PathBuf| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        };
        if self.insecure && !self.tls {
            return Err(
                "--insecure: plaintext (h2c) is the default here, so ghz's --insecure needs no flag; this --insecure is ghz's --skipTLS and goes with --tls"
                    .to_string(),
            );
        }
        // -D FILE: as `run --body-file` reads a body (a regular file, bounded)
        if let Some(path) = &self.data_file {
            let text =
                crate::read_body(path).map_err(|why| format!("-D {}: {why}", path.display()))?;
            self.data = Some(text);
        }
        // an object as written; a template (or anything else) as text
        let message =
            self.data
                .as_ref()
                .map(|d| match serde_json::from_str::<serde_json::Value>(d) {
                    Ok(v @ serde_json::Value::Object(_)) => v,
                    _ => serde_json::Value::String(d.clone()),
                });
        let mut metadata = BTreeMap::new();
        for (k, v) in &self.metadata {
            // (keys are sent lower-cased: X-A and x-a are one key)
            if let Some(first) = metadata
                .keys()
                .find(|f: &&String| f.eq_ignore_ascii_case(k))
            {
                return Err(if first == k {
                    format!("--metadata: \"{k}\" is given twice")
                } else {
                    format!(
                        "--metadata: \"{first}\" and \"{k}\" are the same key (gRPC lower-cases keys); give it once"
                    )
                });
            }
            metadata.insert(k.clone(), v.clone());
        }
        let scheme = if self.tls { "https" } else { "http" };
        let host = self.host.trim_end_matches('/');
        if host.contains("://") {
            return Err(format!(
                "HOST:PORT: give the server as HOST:PORT, not a URL (\"{host}\"); --tls for TLS"
            ));
        }
        Ok(RunArgs {
            url: Some(format!("{scheme}://{host}")),
            connections: self.connections,
            duration: None,
            duration_z: self.duration,
            method: None,
            headers: Vec::new(),
            body: None,
            body_file: None,
            requests: self.total,
            rate: self.rate,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            no_keepalive: false,
            disable_keepalive: false,
            insecure: self.insecure,
            cacert: self.cacert,
            cert: None,
            key: None,
            http2: true,
            http1_1: false,
            streams: self.streams,
            shard: None,
            shards: None,
            start_at: None,
            group: None,
            config: None,
            target: None,
            threads: self.threads,
            runs_dir: self.runs_dir,
            run_dir: self.run_dir,
            no_save: self.no_save,
            prepared: false,
            samples: false,
            sample_rate: None,
            quiet: self.quiet,
            json: self.json,
            grpc_data_file: self.data_file,
            grpc: Some(GrpcSpec {
                // no --proto: the server's reflection, as ghz
                reflection: self.proto.is_empty().then_some(true),
                proto: (!self.proto.is_empty())
                    .then(|| Protos::Many(self.proto.iter().map(absolute).collect())),
                import_paths: self.import_paths.iter().map(absolute).collect(),
                method: self.call,
                message,
                metadata,
                deadline: self.deadline,
            }),
        })
    }
}
