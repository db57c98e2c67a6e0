//! The quick form, `userflux-engine run URL -c 64 -d 30s …`, as a wrk or oha
//! user types it: method, headers, body, a request count, a rate, timeouts,
//! HTTP/2 and its streams per connection as h2load's `-c N -m M`; and
//! `userflux-engine grpc`'s, ghz's vocabulary, as the same form with a
//! gRPC call.
//!
//! It is sugar for a config with one endpoint named `default`, so a quick
//! run goes through exactly the path a config file does (validation, plan,
//! workers, summary) and `config.json` shows what it meant.

use super::limits;
use super::{
    Config, ConfigError, Distribution, Endpoint, HttpVersion, Method, Priority, PriorityShares,
    Stage, Timeouts, default_graceful_stop,
};
use crate::duration::Dur;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a quick run lasts without `-d`.
pub const DEFAULT_DURATION: Dur = Dur::from_secs(10);
/// With `-n` and no `-d`, the most a run may take to do its requests (k6's
/// `shared-iterations` executor has the same default `maxDuration`).
pub const REQUESTS_MAX_DURATION: Dur = Dur::from_secs(600);

/// What the quick form's flags say; [`Quick::config`] turns it into a config.
#[derive(Debug, Clone, PartialEq)]
pub struct Quick {
    pub url: String,
    /// VUs (closed model), or with `rate` the most connections; with
    /// `streams`, connections of that many streams (VUs) each.
    pub connections: u32,
    pub duration: Option<Dur>,
    pub method: Method,
    /// In the order given; names are unique (case-insensitive).
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// `-n`: exactly this many requests, then finish.
    pub requests: Option<u64>,
    /// `--rate`: open model, requests per second.
    pub rate: Option<f64>,
    pub timeout: Option<Dur>,
    pub connect_timeout: Option<Dur>,
    /// false: `Connection: close` on every request.
    pub keepalive: bool,
    /// `--insecure`, `--cacert`, `--cert`, `--key`.
    pub tls: Option<crate::tls::TlsSpec>,
    /// `--http2` ("2") or `--http1.1` ("1.1"); unset: the default, "1.1".
    pub http: Option<HttpVersion>,
    /// `--streams M` (with `--http2`): streams per connection, as h2load's
    /// `-m`: `-c N --streams M` is N connections of M streams, N×M VUs.
    pub streams: Option<u32>,
    /// `userflux-engine grpc`: the endpoint makes this gRPC call (over
    /// HTTP/2; the URL gives only the server).
    pub grpc: Option<super::grpc::GrpcSpec>,
}

impl Quick {
    /// `conns` VUs on `url` for `duration`, like `wrk -c CONNS -d DURATION URL`.
    pub fn new(url: &str, conns: u32, duration: Option<Dur>) -> Quick {
        Quick {
            url: url.to_string(),
            connections: conns,
            duration,
            method: Method::Get,
            headers: Vec::new(),
            body: None,
            requests: None,
            rate: None,
            timeout: None,
            connect_timeout: None,
            keepalive: true,
            tls: None,
            http: None,
            streams: None,
            grpc: None,
        }
    }

    /// The run's length: `-d`; else, with `-n`, the time `-n` sends take at
    /// `--rate` (or at most [`REQUESTS_MAX_DURATION`] without a rate); else
    /// [`DEFAULT_DURATION`].
    fn length(&self) -> Dur {
        if let Some(d) = self.duration {
            return d;
        }
        match (self.requests, self.rate) {
            // Sends k = 0..n-1 are due at k/rate, so a schedule of length
            // n/rate holds them (see `plan::send_time`); the budget stops
            // at n should rounding let one more in.
            // (Saturating: a length past the bound is refused by validation.)
            (Some(n), Some(r)) if r > 0.0 => {
                Dur(Duration::try_from_secs_f64(n as f64 / r).unwrap_or(Duration::MAX))
            }
            (Some(_), _) => REQUESTS_MAX_DURATION,
            _ => DEFAULT_DURATION,
        }
    }

    /// The config this quick form stands for, unvalidated (call
    /// [`Config::resolve`]); errors name the flag.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut headers = BTreeMap::new();
        for (name, value) in &self.headers {
            if headers
                .keys()
                .any(|k: &String| k.eq_ignore_ascii_case(name))
            {
                return Err(ConfigError::one(format!(
                    "-H: \"{name}\" is given twice (one value per header name)"
                )));
            }
            headers.insert(name.clone(), value.clone());
        }
        if !self.keepalive {
            if let Some((k, v)) = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("connection"))
                && !v.eq_ignore_ascii_case("close")
            {
                return Err(ConfigError::one(format!(
                    "--no-keepalive: conflicts with -H '{k}: {v}'"
                )));
            }
            headers
                .entry("Connection".to_string())
                .or_insert_with(|| "close".to_string());
        }
        if let Some(m) = self.streams
            && self.http != Some(HttpVersion::Http2)
            && self.grpc.is_none()
        {
            return Err(ConfigError::one(format!(
                "--streams {m}: needs --http2 (HTTP/1.1 carries one request at a time per connection)"
            )));
        }
        // h2load's `-c N -m M`: N connections, each M streams (VUs).
        let streams = self.streams.unwrap_or(1);
        let vus = u64::from(self.connections) * u64::from(streams);
        if vus > u64::from(limits::MAX_VUS) {
            return Err(ConfigError::one(format!(
                "-c {} --streams {streams}: {vus} VUs (connections × streams); at most {}",
                self.connections,
                limits::MAX_VUS
            )));
        }
        let vus = vus as u32;
        let length = self.length();
        let (stages, duration) = match self.rate {
            // Open model: no VU stages; the run lasts `length`.
            Some(_) => (Vec::new(), Some(length)),
            None => (
                vec![
                    Stage {
                        duration: Dur::from_secs(0),
                        target: vus,
                    },
                    Stage {
                        duration: length,
                        target: vus,
                    },
                ],
                None,
            ),
        };
        let mut timeouts = Timeouts::default();
        if let Some(t) = self.timeout {
            timeouts.request = t;
        }
        if let Some(t) = self.connect_timeout {
            timeouts.connect = t;
        }
        Ok(Config {
            name: "quick".into(),
            target: Some(self.url.clone()),
            threads: None,
            stages,
            endpoints: vec![Endpoint {
                name: "default".into(),
                // a gRPC call's method is POST, and its config says none
                method: self.grpc.is_none().then_some(self.method),
                // a gRPC call's path is its method's
                path: self.grpc.is_none().then(String::new),
                url: None,
                headers,
                body: self.body.clone(),
                weight: 1.0,
                think_time: Dur::default(),
                expect: None,
                priority: Priority::default(),
                autoscale: None,
                rate: self.rate,
                rate_stages: vec![],
                pre_allocated_vus: self.rate.map(|_| vus),
                max_vus: self.rate.map(|_| vus),
                server_timing: true,
                checks: BTreeMap::new(),
                http: None,
                streams: None,
                grpc: self.grpc.clone(),
            }],
            http: self.http,
            streams: self.streams,
            tls: self.tls.clone(),
            shard: None,
            flows: Vec::new(),
            data: BTreeMap::new(),
            max_capture_body: super::DEFAULT_MAX_CAPTURE_BODY,
            base_dir: None,
            data_sets: Default::default(),
            compiled: Default::default(),
            duration,
            requests: self.requests,
            thresholds: BTreeMap::new(),
            timeouts,
            graceful_stop: default_graceful_stop(),
            graceful_ramp_down: super::default_graceful_ramp_down(),
            search: None,
            autoscale: None,
            distribution: Distribution::default(),
            priority_shares: PriorityShares::default(),
            max_workers: None,
            samples: None,
        })
    }
}

/// `-H 'Name: value'`: a header as curl, wrk and oha take it.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    let Some((name, value)) = s.split_once(':') else {
        return Err(format!("missing ':' in \"{s}\" (write 'Name: value')"));
    };
    let (name, value) = (name.trim(), value.trim());
    if let Some(why) = super::header_problem(name, value) {
        return Err(format!("\"{name}\" {why}"));
    }
    Ok((name.to_string(), value.to_string()))
}

/// `-m`: a method the engine sends, in any case.
pub fn parse_method(s: &str) -> Result<Method, String> {
    let upper = s.to_ascii_uppercase();
    Method::ALL
        .into_iter()
        .find(|m| m.as_str() == upper)
        .ok_or_else(|| {
            let all: Vec<_> = Method::ALL.iter().map(|m| m.as_str()).collect();
            format!("unknown method \"{s}\" (one of {})", all.join(", "))
        })
}

/// `--rate`: requests per second, above 0 and at most [`limits::MAX_RATE`].
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= limits::MAX_RATE => Ok(r),
        _ => Err(format!(
            "\"{s}\" is not a rate above 0 and at most {} (requests per second, e.g. 400)",
            limits::MAX_RATE
        )),
    }
}

/// A timeout flag: from [`limits::MIN_TIMEOUT`] to [`limits::MAX_WAIT`].
pub fn parse_timeout(s: &str) -> Result<Dur, String> {
    bounded(s, limits::MAX_WAIT)
}

/// `-d`: from [`limits::MIN_TIMEOUT`] to [`limits::MAX_RUN`].
pub fn parse_duration(s: &str) -> Result<Dur, String> {
    bounded(s, limits::MAX_RUN)
}

fn bounded(s: &str, max: Duration) -> Result<Dur, String> {
    let d = Dur::parse(s)?;
    match limits::check_duration("", d.0, limits::MIN_TIMEOUT, max) {
        Some(why) => Err(why.trim_start_matches(": ").to_string()),
        None => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_quick_form_is_a_step_then_a_hold() {
        let c = Quick::new("http://127.0.0.1:1/x", 64, Some(Dur::from_secs(3)))
            .config()
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(c.duration().as_secs(), 3);
        assert_eq!(c.stages[0].target, 64);
        assert_eq!(c.endpoint_urls().unwrap()[0].path, "/x");
        assert!(
            Quick::new("ftp://x", 1, None)
                .config()
                .unwrap()
                .resolve()
                .is_err()
        );
        let default = Quick::new("http://127.0.0.1:1/", 1, None).config().unwrap();
        assert_eq!(default.duration(), DEFAULT_DURATION.0);
    }

    #[test]
    fn flags_map_onto_the_endpoint() {
        let mut q = Quick::new("http://127.0.0.1:1/", 4, None);
        q.method = Method::Post;
        q.headers = vec![("X-A".into(), "1".into()), ("Accept".into(), "*/*".into())];
        q.body = Some("{}".into());
        q.timeout = Some(Dur::from_secs(2));
        q.connect_timeout = Some(Dur::from_millis(300));
        q.keepalive = false;
        q.requests = Some(100);
        let c = q.config().unwrap().resolve().unwrap();
        let ep = &c.endpoints[0];
        assert_eq!(ep.method, Some(Method::Post));
        assert_eq!(ep.body.as_deref(), Some("{}"));
        assert_eq!(ep.headers.get("X-A").map(String::as_str), Some("1"));
        assert_eq!(
            ep.headers.get("Connection").map(String::as_str),
            Some("close")
        );
        assert_eq!(c.timeouts.request, Dur::from_secs(2));
        assert_eq!(c.timeouts.connect, Dur::from_millis(300));
        assert_eq!(c.requests, Some(100));
        // -n without -d: at most ten minutes
        assert_eq!(c.duration(), REQUESTS_MAX_DURATION.0);
    }

    #[test]
    fn rate_is_the_open_model_with_c_as_the_cap() {
        let mut q = Quick::new("http://127.0.0.1:1/", 16, Some(Dur::from_secs(5)));
        q.rate = Some(400.0);
        let c = q.config().unwrap().resolve().unwrap();
        let ep = &c.endpoints[0];
        assert!(c.stages.is_empty() && ep.is_open());
        assert_eq!((ep.max_vus, ep.pre_allocated_vus), (Some(16), Some(16)));
        assert_eq!(c.duration().as_secs(), 5);
        // with -n: exactly n sends in the schedule
        q.duration = None;
        q.requests = Some(1000);
        let c = q.config().unwrap().resolve().unwrap();
        let stages = crate::plan::rate_schedule(&c.endpoints[0], c.duration());
        assert!(crate::plan::send_time(&stages, 999).is_some());
        assert!(crate::plan::send_time(&stages, 1000).is_none());
        // a rate so low the run would outlast the bound is refused, not a panic
        q.rate = Some(1e-300);
        let e = q.config().unwrap().resolve().unwrap_err().to_string();
        assert!(e.contains("duration: must be at most 30days"), "{e}");
    }

    #[test]
    fn http2_streams_are_connections_times_streams_vus() {
        // h2load's `-c 4 -m 16`: 4 connections of 16 streams, 64 VUs
        let mut q = Quick::new("http://127.0.0.1:1/", 4, Some(Dur::from_secs(2)));
        q.http = Some(HttpVersion::Http2);
        q.streams = Some(16);
        let c = q.config().unwrap().resolve().unwrap();
        assert_eq!((c.http, c.streams), (Some(HttpVersion::Http2), Some(16)));
        assert_eq!(c.stages[1].target, 64);
        let plan = crate::plan::build::prepare_with(&c, false).unwrap();
        assert_eq!(
            (plan.endpoints[0].http, plan.endpoints[0].streams),
            (crate::plan::Http::H2, 16)
        );
        // open model: -c is the most connections, so the most stream slots is c × streams
        q.rate = Some(100.0);
        let c = q.config().unwrap().resolve().unwrap();
        assert_eq!(c.endpoints[0].max_vus, Some(64));
        // --http1.1 says the default out loud
        let mut q = Quick::new("http://127.0.0.1:1/", 4, None);
        q.http = Some(HttpVersion::Http1);
        let c = q.config().unwrap().resolve().unwrap();
        assert_eq!((c.http, c.stages[1].target), (Some(HttpVersion::Http1), 4));
        // --streams needs --http2; too many VUs name both flags
        q.streams = Some(2);
        let e = q.config().unwrap_err().to_string();
        assert!(e.starts_with("--streams 2: needs --http2"), "{e}");
        let mut q = Quick::new("http://127.0.0.1:1/", 2000, None);
        q.http = Some(HttpVersion::Http2);
        q.streams = Some(1000);
        let e = q.config().unwrap_err().to_string();
        assert!(
            e.contains(
                "-c 2000 --streams 1000: 2000000 VUs (connections × streams); at most 1000000"
            ),
            "{e}"
        );
    }

    #[test]
    fn bad_flags_say_which() {
        assert!(
            parse_header("foo")
                .unwrap_err()
                .contains("missing ':' in \"foo\"")
        );
        assert!(parse_header("a b: c").unwrap_err().contains("header name"));
        assert!(parse_header("Content-Length: 3").is_err());
        assert_eq!(
            parse_header("X-Id:  42 ").unwrap(),
            ("X-Id".into(), "42".into())
        );
        assert_eq!(parse_header("X-Empty:").unwrap().1, "");
        assert_eq!(parse_method("post").unwrap(), Method::Post);
        assert!(
            parse_method("FETCH")
                .unwrap_err()
                .contains("unknown method")
        );
        assert!(parse_rate("0").is_err() && parse_rate("inf").is_err() && parse_rate("x").is_err());
        assert!(parse_timeout("0s").is_err() && parse_timeout("2s").is_ok());
        assert!(parse_timeout("2h").unwrap_err().contains("at most 1h"));
        assert!(
            parse_duration("31days")
                .unwrap_err()
                .contains("at most 30days")
        );
        assert!(parse_duration("2h").is_ok());
        assert!(parse_rate("1e12").is_err());
        let mut q = Quick::new("http://127.0.0.1:1/", 1, None);
        q.headers = vec![("x-a".into(), "1".into()), ("X-A".into(), "2".into())];
        assert!(q.config().unwrap_err().to_string().contains("given twice"));
        q.headers = vec![("Connection".into(), "keep-alive".into())];
        q.keepalive = false;
        assert!(
            q.config()
                .unwrap_err()
                .to_string()
                .contains("--no-keepalive")
        );
    }
}
