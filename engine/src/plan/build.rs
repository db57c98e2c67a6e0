//! Config → plan: turns a resolved config into what the workers run —
//! every address resolved, every request rendered, each load unit's
//! schedule and VUs laid out (a shard's share by position) — so a bad host
//! fails before the run starts and before anything is written.
//!
//! It compiles nothing itself: templates, checks, captures and thresholds
//! come compiled from validation ([`crate::config::compile`], kept by
//! [`Config::resolve`]), so what runs is what was checked.

use crate::config::compile::{Compiled, compile};
use crate::config::grpc::GrpcCall;
use crate::config::{
    Config, ConfigError, DEFAULT_PRE_ALLOCATED_VUS, Endpoint, HttpVersion, Method,
};
use crate::plan::{EndpointPlan, FlowPlan, GrpcPlan, Http, OpenPlan, Plan, StepPlan};
use crate::request::{RequestTemplate, render};
use crate::stats::StatusSet;
use crate::template::{Expr, Template};
use crate::url::HttpUrl;
use std::net::ToSocketAddrs;

/// Turns a resolved config into the workers' plan: resolves every address
/// and renders every request, so a bad host fails before the run starts.
pub fn prepare(config: &Config) -> Result<Plan, ConfigError> {
    prepare_with(config, true)
}

/// [`prepare`], or with `resolve` false a plan whose addresses are left
/// unresolved (for merging results where the target's host may not resolve).
pub fn prepare_with(config: &Config, resolve: bool) -> Result<Plan, ConfigError> {
    let shard = config
        .shard
        .as_deref()
        .map(crate::shard::Shard::parse)
        .transpose()
        .map_err(|e| ConfigError {
            problems: vec![format!("shard: {e}")],
        })?;
    // A shard runs its share of the counts; the config it records is the
    // whole, and the plan keeps the whole stages and `max_workers` to lay
    // the VUs out by position (see `shard`).
    let whole = config;
    let applied = shard.map(|s| s.apply(config));
    let config = applied.as_ref().unwrap_or(config);
    let urls = config
        .endpoint_urls()
        .map_err(|e| ConfigError { problems: vec![e] })?;
    let rows = config.rows();
    // What validation compiled; a config that was never resolved (or has
    // other rows since) is compiled here, and refused with the problems
    // validation would give.
    let fresh;
    let compiled: &Compiled = match &config.compiled.0 {
        Some(c) if compiled_for(c, config, &rows) => c,
        _ => {
            let (c, found) = compile(config);
            if !found.is_empty() {
                return Err(ConfigError {
                    problems: found.lines(config),
                });
            }
            fresh = c;
            &fresh
        }
    };
    let places = config.row_places();
    let mut endpoints = Vec::with_capacity(urls.len());
    let mut problems = Vec::new();
    let tls_spec = config.tls.clone().unwrap_or_default();
    let tls = if urls.iter().any(|u| u.tls) {
        match tls_spec.client_config(config.base_dir.as_deref()) {
            Ok(c) => Some(c),
            Err(e) => return Err(ConfigError { problems: vec![e] }),
        }
    } else {
        None
    };
    for (((ep, url), (at, place)), row) in rows.iter().zip(&urls).zip(&places).zip(&compiled.rows) {
        let resolved = if resolve {
            resolve_host(at, ep.url.is_some(), url)
        } else {
            Ok(std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
        };
        let addr = match resolved {
            Ok(addr) => addr,
            Err(why) => {
                problems.push(why);
                continue;
            }
        };
        // An endpoint is its own load unit; a flow's first step carries the flow's.
        let unit = match place {
            None => Some(ep.clone()),
            Some((f, 0)) => Some(config.flows[*f].as_unit()),
            Some(_) => None,
        };
        let flow = place.map(|(f, _)| &config.flows[f]);
        let cookies = flow.is_some_and(|f| f.cookies);
        let dynamic = row.path.as_ref().is_some_and(Template::is_dynamic)
            || row.headers.iter().any(|(_, t)| t.is_dynamic())
            || row.body.as_ref().is_some_and(Template::is_dynamic);
        // (a gRPC call's head is fixed: no cookies, see docs/config.md)
        let template = ((dynamic || cookies) && row.grpc.is_none()).then(|| {
            RequestTemplate::new(
                ep.http_method(),
                url,
                row.path
                    .clone()
                    .unwrap_or_else(|| Template::literal(url.path.as_bytes())),
                row.headers.clone(),
                row.body.clone(),
            )
        });
        let grpc_row = row.grpc.as_ref();
        let mut data_sets: Vec<usize> = Vec::new();
        let message = match grpc_row.map(|g| &g.call) {
            Some(GrpcCall::Compiled { message, .. }) => message.templates(),
            // (compiled when the run starts; its data sets are known now)
            Some(GrpcCall::Reflect(r)) => vec![&r.template],
            None => Vec::new(),
        };
        for t in template
            .iter()
            .flat_map(RequestTemplate::templates)
            .chain(message)
        {
            for e in t.exprs() {
                if let Expr::Data { set, .. } = e
                    && !data_sets.contains(set)
                {
                    data_sets.push(*set);
                }
            }
        }
        let step = place.map(|(f, j)| StepPlan {
            flow: f,
            index: j,
            last: j + 1 == config.flows[f].steps.len(),
            captures: row.captures.clone(),
        });
        let checks = row.checks.clone();
        let captures = step
            .iter()
            .flat_map(|s| s.captures.iter().map(|(_, sel)| sel));
        let keep_head = cookies
            || captures.clone().next().is_some()
            || checks.iter().any(|(_, c)| c.needs_head());
        let keep_body =
            captures.clone().any(|s| s.needs_body()) || checks.iter().any(|(_, c)| c.needs_body());
        let quoted = serde_json::to_string(&ep.name).expect("a string serializes");
        let load = unit.as_ref().unwrap_or(ep);
        // a gRPC call: a POST to its method's path, over HTTP/2
        let grpc_url;
        let (url, method, request) = match grpc_row {
            Some(g) => {
                grpc_url = HttpUrl {
                    path: g.path.clone(),
                    ..url.clone()
                };
                (&grpc_url, Method::Post, grpc_request(&grpc_url, g))
            }
            None => (
                url,
                ep.http_method(),
                render(ep.http_method(), url, &ep.headers, ep.body.as_deref()),
            ),
        };
        endpoints.push(EndpointPlan {
            name: ep.name.clone(),
            json_name: quoted[1..quoted.len() - 1].into(),
            addr,
            request: request.into_boxed_slice(),
            template,
            data_sets: data_sets.into(),
            unit: unit.is_some(),
            step,
            checks,
            keep_head,
            keep_body,
            method: method.as_str(),
            url: url.to_string(),
            host: url.host.clone(),
            path: url.path.clone(),
            tls_name: if url.tls {
                match tls_spec.name_for(&url.host) {
                    Ok(n) => Some(n),
                    Err(e) => {
                        problems.push(format!("{at}: {e}"));
                        None
                    }
                }
            } else {
                None
            },
            head: ep.http_method() == Method::Head,
            server_timing: ep.server_timing,
            close: ep.headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close")
            }),
            think: ep.think_time.0,
            weight: load.weight,
            priority: load.priority,
            accept: StatusSet::from_expect(ep.expect.as_deref().unwrap_or_default()),
            autoscale: unit.as_ref().and_then(|u| u.autoscale()),
            initial_workers: 0,
            open: unit.as_ref().filter(|u| u.is_open()).map(|u| OpenPlan {
                stages: crate::plan::rate_schedule(u, config.duration()),
                pre_allocated: u.pre_allocated_vus.unwrap_or(DEFAULT_PRE_ALLOCATED_VUS),
                max_vus: u.max_vus.unwrap_or(DEFAULT_PRE_ALLOCATED_VUS),
                slot: Some(shard.map_or((0, 1), |s| (u64::from(s.index), u64::from(s.count)))),
            }),
            // a flow's steps speak the flow's (`as_endpoint` carries it)
            http: match config.http_of(ep) {
                HttpVersion::Http1 => Http::H1,
                HttpVersion::Http2 => Http::H2,
                HttpVersion::Auto => Http::Auto,
            },
            streams: match config.http_of(ep) {
                // validation refused more than one stream over HTTP/1.1
                HttpVersion::Http1 => 1,
                _ => config.streams_of(ep),
            },
            h2: None,
            grpc: match grpc_row.map(|g| &g.call) {
                Some(GrpcCall::Compiled { method, message }) => Some(Box::new(GrpcPlan {
                    method: method.clone(),
                    message: message.clone(),
                })),
                _ => None,
            },
            reflect: match grpc_row.map(|g| &g.call) {
                Some(GrpcCall::Reflect(r)) => Some(std::sync::Arc::clone(r)),
                _ => None,
            },
        });
    }
    let mut flows = Vec::with_capacity(config.flows.len());
    let mut first = config.endpoints.len();
    for (f, flow) in config.flows.iter().enumerate() {
        let rows = endpoints
            .get(first..first + flow.steps.len())
            .unwrap_or_default();
        let mut data_sets: Vec<usize> = Vec::new();
        for d in rows.iter().flat_map(|r| r.data_sets.iter()) {
            if !data_sets.contains(d) {
                data_sets.push(*d);
            }
        }
        flows.push(FlowPlan {
            name: flow.name.clone(),
            first,
            steps: flow.steps.len(),
            cookies: flow.cookies,
            think: flow.think_time.0,
            vars: compiled.flow_vars[f].clone(),
            data_sets: data_sets.into(),
        });
        first += flow.steps.len();
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    if let Some(s) = shard {
        // open-model VUs laid out by position, as closed ones are
        let mut offset = 0u64;
        for e in endpoints.iter_mut().filter(|e| e.autoscale.is_none()) {
            if let Some(o) = e.open.as_mut() {
                let most = u64::from(o.max_vus);
                o.pre_allocated = s.part(offset, u64::from(o.pre_allocated).min(most)) as u32;
                o.max_vus = s.part(offset, most) as u32;
                o.slot = s.slot(offset, most);
                offset += most;
            }
        }
    }
    let mut plan = Plan {
        endpoints,
        stages: whole.stages.clone(),
        workers: config.threads.unwrap_or(1),
        connect_timeout: config.timeouts.connect.0,
        request_timeout: config.timeouts.request.0,
        graceful_stop: config.graceful_stop.0,
        graceful_ramp_down: config.graceful_ramp_down.0,
        duration: config.duration(),
        distribution: config.distribution,
        priority_shares: config.priority_shares,
        max_workers: whole.max_workers,
        thresholds: compiled.thresholds.clone(),
        latency_by_status: compiled.thresholds.iter().any(|t| {
            matches!(
                t.reads(),
                Some(crate::thresholds::Reads::Status(_) | crate::thresholds::Reads::GrpcStatus(_))
            )
        }),
        requests: config.requests,
        fault: None,
        // (a shard's stage targets stay whole in its config: its share)
        vus_max: u32::try_from(shard.map_or(max_connections(config), |s| {
            s.share(max_connections(config))
        }))
        .unwrap_or(u32::MAX),
        flows,
        data: config.data_sets.0.clone(),
        max_capture_body: config.max_capture_body,
        shard,
        tls_h2: tls.as_ref().map(|c| {
            let mut h2 = (**c).clone();
            h2.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            std::sync::Arc::new(h2)
        }),
        tls,
    };
    // An autoscaled endpoint starts with its share of the first stage that
    // asks for VUs, within its bounds; then the autoscaler decides.
    let first = config
        .stages
        .iter()
        .map(|s| s.target)
        .find(|&t| t > 0)
        .unwrap_or(0);
    let start = plan.distribute(first);
    for (ep, n) in plan.endpoints.iter_mut().zip(start) {
        if let Some(a) = ep.autoscale {
            ep.initial_workers = n.clamp(a.min_workers, a.max_workers);
        }
    }
    // after every row has its `http`; `Auto` rows are encoded once ALPN
    // has decided them (`plan::alpn::resolve`)
    encode_h2(&mut plan);
    Ok(plan)
}

/// Encodes each static `h2` row's request once (its header block and
/// body), from the HTTP/1.1 rendering every row has.
pub fn encode_h2(plan: &mut Plan) {
    for row in &mut plan.endpoints {
        // (a row waiting for reflection is encoded once it is resolved)
        if row.http != Http::H2 || row.template.is_some() || row.reflect.is_some() {
            row.h2 = None;
            continue;
        }
        let scheme = if row.tls_name.is_some() {
            "https"
        } else {
            "http"
        };
        let mut block = Vec::new();
        // the plan rendered it: it parses
        if let Ok(at) = crate::protocol::h2::encode::from_h1(&row.request, scheme, &mut block) {
            // a gRPC call's body is its message, framed: once when fixed
            // (a templated one is written per request)
            let body = match &row.grpc {
                Some(g) => g.message.fixed_body().unwrap_or_default().into(),
                None => row.request[at..].into(),
            };
            row.h2 = Some(crate::plan::H2Request {
                block: block.into(),
                body,
            });
        }
    }
}

/// A gRPC call's request as HTTP/1.1 text (what `encode_h2` turns into
/// its header block): `POST /pkg.Service/Method`, the authority, and the
/// call's fields (`content-type: application/grpc`, `te: trailers`,
/// `grpc-timeout`, metadata, `user-agent`); no `Content-Length` (the
/// message is sent as DATA, encoded once or per request).
fn grpc_request(url: &HttpUrl, g: &crate::config::grpc::GrpcRow) -> Vec<u8> {
    let mut out = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\n",
        url.path,
        url.authority()
    );
    for (k, v) in g.headers.fields() {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Whether `c` was compiled from this config as it is now: the same rows
/// and flows, the paths joined to the same target (a config changed so
/// since it was resolved is compiled again).
fn compiled_for(c: &Compiled, config: &Config, rows: &[Endpoint]) -> bool {
    c.rows.len() == rows.len()
        && c.flow_vars.len() == config.flows.len()
        && c.target == config.target
}

/// A request row's address, or `field: why` naming the field its host
/// came from (the row at `at`'s `url`, else `target`).
fn resolve_host(at: &str, has_url: bool, url: &HttpUrl) -> Result<std::net::SocketAddr, String> {
    let field = if has_url {
        format!("{at}.url")
    } else {
        "target".to_string()
    };
    match (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map(|mut a| a.next())
    {
        Ok(Some(addr)) => Ok(addr),
        Ok(None) => Err(format!("{field}: host \"{}\" has no address", url.host)),
        Err(e) => Err(format!(
            "{field}: cannot resolve host \"{}\": {e}",
            url.host
        )),
    }
}

/// For `validate`: the hosts of a valid config that do not resolve on this
/// machine, as warnings. A config is checked in CI or on a laptop away from
/// the network it will load; the run itself still fails at start, naming
/// the host, if it cannot resolve it there.
pub fn host_warnings(config: &Config) -> Vec<String> {
    let Ok(urls) = config.endpoint_urls() else {
        return Vec::new();
    };
    let rows = config.rows();
    let places = config.row_places();
    let mut seen = std::collections::BTreeSet::new();
    (0..urls.len())
        .filter(|&i| seen.insert((urls[i].host.clone(), urls[i].port)))
        .filter_map(|i| resolve_host(&places[i].0, rows[i].url.is_some(), &urls[i]).err())
        .map(|why| {
            format!(
                "{why} (not resolvable here; the run fails at start if it is not where it runs)"
            )
        })
        .collect()
}

/// The most connections a plan can hold at once.
pub fn max_connections(config: &Config) -> u64 {
    let vus = config
        .stages
        .iter()
        .map(|s| s.target as u64)
        .max()
        .unwrap_or(0);
    let vus = config.max_workers.map_or(vus, |m| vus.min(m as u64));
    let units = config.units();
    let autoscaled: u64 = units
        .iter()
        .filter_map(|e| e.autoscale())
        .map(|a| a.max_workers as u64)
        .sum();
    let open: u64 = units
        .iter()
        .filter(|e| e.is_open() && e.autoscale().is_none())
        .filter_map(|e| e.max_vus)
        .map(u64::from)
        .sum();
    vus + autoscaled + open
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Expr, Part};

    /// Each row's `http` and `streams`: its unit's, else the top level's;
    /// a flow's steps take the flow's; static HTTP/2 requests are encoded
    /// once, templated ones at each send.
    #[test]
    fn rows_speak_their_units_http() {
        let c = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "duration": "1s", "http": "2", "streams": 8,
                "endpoints": [{"name": "a", "path": "/a", "rate": 1},
                              {"name": "b", "path": "/b", "rate": 1, "http": "1.1", "streams": 1},
                              {"name": "c", "path": "/c/{{seq}}", "rate": 1, "streams": 100},
                              {"name": "d", "path": "/d", "rate": 1, "http": "auto"}],
                "flows": [{"name": "f", "rate": 1, "http": "auto", "streams": 4, "steps": [
                  {"name": "s1", "path": "/in"}, {"name": "s2", "path": "/out"}]}]}"#,
        )
        .unwrap();
        let plan = prepare_with(&c, false).unwrap();
        let got: Vec<(&str, Http, u32, bool)> = plan
            .endpoints
            .iter()
            .map(|r| (r.name.as_str(), r.http, r.streams, r.h2.is_some()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", Http::H2, 8, true),
                ("b", Http::H1, 1, false),
                ("c", Http::H2, 100, false),
                ("d", Http::Auto, 8, false),
                ("f.s1", Http::Auto, 4, false),
                ("f.s2", Http::Auto, 4, false),
            ]
        );
        // without `http` anywhere: HTTP/1.1, one stream, as before
        let c = Config::from_json(
            r#"{"target": "http://127.0.0.1:1", "duration": "1s",
                "endpoints": [{"name": "a", "path": "/a", "rate": 1}]}"#,
        )
        .unwrap();
        let plan = prepare_with(&c, false).unwrap();
        assert_eq!(
            (plan.endpoints[0].http, plan.endpoints[0].streams),
            (Http::H1, 1)
        );
    }

    /// What runs is what validation compiled (issue 26): the plan's
    /// template is the path joined to the target's path, the target's own
    /// templates included, and a bad one there is refused by validation.
    #[test]
    fn the_plan_runs_what_validation_compiled() {
        let c = Config::from_json(
            r#"{"target": "http://127.0.0.1:1/v{{seq}}", "duration": "1s",
                "endpoints": [{"name": "a", "path": "/a/{{vu}}", "rate": 1,
                               "checks": {"ok": {"status": 200}}}],
                "flows": [{"name": "f", "rate": 1, "steps": [
                  {"name": "s1", "path": "/in", "capture": {"t": {"header": "x-token"}}},
                  {"name": "s2", "path": "/use/{{vars.t}}"}]}]}"#,
        )
        .unwrap();
        let kept = c
            .compiled
            .0
            .clone()
            .expect("resolve keeps what it compiled");
        assert_eq!(kept.target.as_deref(), Some("http://127.0.0.1:1/v{{seq}}"));
        let plan = prepare_with(&c, false).unwrap();
        let a = plan.endpoints[0]
            .template
            .as_ref()
            .expect("a templated row");
        let exprs: Vec<&Expr> = a
            .templates()
            .flat_map(|t| t.parts.iter())
            .filter_map(|p| match p {
                Part::Expr(e) => Some(e),
                Part::Lit(_) => None,
            })
            .collect();
        assert_eq!(exprs, [&Expr::Seq, &Expr::Vu]);
        assert_eq!(plan.endpoints[0].checks.len(), 1);
        assert_eq!(plan.flows[0].vars, ["t"]);
        assert_eq!(plan.endpoints[1].step.as_ref().unwrap().captures.len(), 1);
        // a config changed since it was resolved is compiled again
        let mut moved = c.clone();
        moved.target = Some("http://127.0.0.1:1".into());
        let plan = prepare_with(&moved, false).unwrap();
        let line = plan.endpoints[0]
            .template
            .as_ref()
            .unwrap()
            .templates()
            .next()
            .unwrap();
        assert!(
            line.parts
                .iter()
                .all(|p| !matches!(p, Part::Expr(Expr::Seq)))
        );

        let e = Config::from_json(
            r#"{"target": "http://127.0.0.1:1/{{nope}}", "duration": "1s",
                "endpoints": [{"name": "a", "path": "/a", "rate": 1}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("endpoints[0].path: unknown variable \"nope\""),
            "{e}"
        );
    }
}
