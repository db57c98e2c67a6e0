//! The daemon's HTTP/JSON API, one function per route. Run ids in paths are
//! checked against the run-id form before anything touches the disk, so a
//! request can only ever name a directory directly under the runs directory.
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/health` | `{status, version, pid, runs_dir, active, queued}` |
//! | `POST /v1/runs[?shards=N]` (body: a config, any accepted form) | `201 {run_id, state, warnings}` |
//! | `GET /v1/runs` | `{runs: [status…]}` |
//! | `GET /v1/runs/{id}` | the run's `status.json` |
//! | `POST /v1/runs/{id}/stop` | `202 {run_id, state}` |
//! | `GET /v1/runs/{id}/summary` | the run's `summary.json` |
//! | `GET /v1/runs/{id}/logs[?offset=N]` | `logs.txt` from byte N; header `X-Userflux-Offset` is where to continue |
//! | `POST /v1/runs/{id}/vus` (body `{unit, vus}`) | `202`; a line in the run's `control.ndjson` the engine applies within a second |
//! | `POST /v1/runs/{id}/rate` (body `{unit, rate}`) | `202`; the same for an open-model unit's rate |
//! | `POST /v1/runs/from-file` (body `{path, target?}`) | `201` as `POST /v1/runs`, the config read from a file on this machine |
//! | `GET /v1/runs/{id}/report` | the run's `report.html` (`userfluxctl report` writes it) |
//! | `GET /v1/runs/{id}/files/{name}.png` | a chart PNG of the run's report |
//!
//! Over TCP (`tcp.rs`) the same routes, plus the page and the event stream.
//! | `POST /v1/shutdown` | `202`; the daemon stops its runs and exits |

use crate::http::{Request, Response};
use crate::runs::{Manager, Stopped, read_status};
use crate::steer;
use serde_json::json;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use userflux_engine::config::Config;
use userflux_engine::run::prepare;
use userflux_engine::rundir::is_run_id;

/// What the accept loop should do after answering.
pub enum After {
    Continue,
    Shutdown,
}

pub fn handle(m: &Arc<Manager>, req: &Request) -> (Response, After) {
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let r = match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["v1", "health"]) => health(m),
        ("POST", ["v1", "runs"]) => submit(m, &req.body, &req.query),
        ("GET", ["v1", "runs"]) => list(m),
        ("POST", ["v1", "runs", "from-file"]) => from_file(m, &req.body),
        ("POST", ["v1", "shutdown"]) => {
            m.shutdown();
            return (
                Response::json(202, &json!({"status": "shutting down"})),
                After::Shutdown,
            );
        }
        (method, ["v1", "runs", id, rest @ ..]) => {
            if !is_run_id(id) {
                Response::error(
                    400,
                    "run_id",
                    format!("\"{id}\" is not a run id (YYYYMMDD-HHMMSS-xxxx)"),
                )
            } else {
                match (method, rest) {
                    ("GET", []) => status(m, id),
                    ("POST", ["stop"]) => stop(m, id),
                    ("GET", ["summary"]) => summary(m, id),
                    ("GET", ["logs"]) => logs(m, id, &req.query),
                    ("POST", ["vus"]) => steer::set_vus(m, id, &req.body),
                    ("POST", ["rate"]) => steer::set_rate(m, id, &req.body),
                    ("GET", ["report"]) => steer::report(m, id),
                    ("GET", ["files", name]) => steer::file(m, id, name),
                    _ => Response::error(404, "route", format!("no route {method} {}", req.path)),
                }
            }
        }
        (_, ["v1", "health"]) | (_, ["v1", "runs"]) | (_, ["v1", "shutdown"]) => Response::error(
            405,
            "method",
            format!("{} is not allowed on {}", req.method, req.path),
        ),
        _ => Response::error(
            404,
            "route",
            format!("no route {} {}", req.method, req.path),
        ),
    };
    (r, After::Continue)
}

fn health(m: &Manager) -> Response {
    let (active, queued) = m.overview();
    Response::json(
        200,
        &json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "runs_dir": m.runs_dir.display().to_string(),
            "active": active,
            "queued": queued,
            "dashboard": m.dashboard.get(),
        }),
    )
}

/// `?shards=N`: the run is N local shard engines, merged (1 to 64).
fn shards_of(query: &str) -> Result<Option<u32>, String> {
    let Some(v) = query.split('&').find_map(|kv| kv.strip_prefix("shards=")) else {
        return Ok(None);
    };
    match v.parse::<u32>() {
        Ok(n) if (1..=64).contains(&n) => Ok(Some(n)),
        _ => Err(format!("shards={v}: 1 to 64 local shards")),
    }
}

/// `{path, target?}`: submits the config in a file on this machine (the
/// dashboard's "start a run"); `target` replaces the config's.
fn from_file(m: &Manager, body: &[u8]) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ask {
        path: std::path::PathBuf,
        #[serde(default)]
        target: Option<String>,
    }
    let ask: Ask = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(e) => return Response::error(400, "body", format!("expected {{path, target?}}: {e}")),
    };
    let p = &ask.path;
    let ok_file =
        std::fs::metadata(p).map(|md| md.is_file() && md.len() <= crate::http::MAX_BODY as u64);
    if !matches!(ok_file, Ok(true)) || p.extension().is_none_or(|e| e != "json") {
        return Response::error(
            400,
            "path",
            format!(
                "{}: not a readable .json config file of at most 1 MiB on the daemon's machine",
                p.display()
            ),
        );
    }
    let text = match std::fs::read_to_string(p) {
        Ok(t) => t,
        Err(e) => return Response::error(400, "path", format!("{}: {e}", p.display())),
    };
    let text = match ask.target {
        None => text,
        Some(t) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(mut o)) => {
                o.insert("target".into(), serde_json::Value::String(t));
                serde_json::Value::Object(o).to_string()
            }
            _ => text,
        },
    };
    submit(m, text.as_bytes(), "")
}

fn submit(m: &Manager, body: &[u8], query: &str) -> Response {
    let shards = match shards_of(query) {
        Ok(s) => s,
        Err(e) => return Response::error(400, "query", e),
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return Response::error(400, "config", "the body is not UTF-8 JSON");
    };
    let parsed =
        Config::parse_migrating(text).and_then(|(c, warnings)| Ok((c.resolve()?, warnings)));
    let (config, warnings) = match parsed {
        Ok(x) => x,
        Err(e) => return config_error(&e.problems),
    };
    // Resolves every address: a bad host is a 400 now, not a failed run later.
    if let Err(e) = prepare(&config) {
        return config_error(&e.problems);
    }
    if shards.is_some() && (config.shard.is_some() || config.search.is_some()) {
        return Response::error(
            400,
            "config",
            "shards: the config is a shard or a capacity search already; shards split a whole run",
        );
    }
    match m.submit(&config, &warnings, shards) {
        Ok((run_id, ahead)) => Response::json(
            201,
            &json!({"run_id": run_id, "state": "queued", "ahead": ahead, "warnings": warnings}),
        ),
        Err(e) => Response::error(500, "io", format!("cannot create the run directory: {e}")),
    }
}

fn config_error(problems: &[String]) -> Response {
    Response::json(
        400,
        &json!({"error": {"kind": "config", "message": problems.join("; "), "problems": problems}}),
    )
}

fn list(m: &Manager) -> Response {
    let runs: Vec<_> = m
        .run_ids()
        .iter()
        .filter_map(|id| read_status(&m.dir(id)))
        .collect();
    Response::json(200, &json!({"runs": runs}))
}

fn status(m: &Manager, id: &str) -> Response {
    match read_status(&m.dir(id)) {
        Some(s) => Response::json(200, &serde_json::to_value(s).unwrap_or_default()),
        None => Response::error(404, "run", format!("no run {id}")),
    }
}

fn stop(m: &Arc<Manager>, id: &str) -> Response {
    match m.stop(id) {
        Stopped::Dequeued => Response::json(202, &json!({"run_id": id, "state": "stopped"})),
        Stopped::Stopping => Response::json(202, &json!({"run_id": id, "state": "stopping"})),
        Stopped::AlreadyOver(s) => Response::error(
            409,
            "state",
            format!("run {id} already ended ({})", s.as_str()),
        ),
        Stopped::NotFound => Response::error(404, "run", format!("no run {id}")),
    }
}

fn summary(m: &Manager, id: &str) -> Response {
    let dir = m.dir(id);
    match std::fs::read(dir.join("summary.json")) {
        Ok(body) => Response {
            status: 200,
            content_type: "application/json",
            body,
            headers: vec![],
        },
        Err(_) => match read_status(&dir) {
            Some(s) => Response::error(
                404,
                "summary",
                format!("run {id} has no summary yet (state {})", s.state.as_str()),
            ),
            None => Response::error(404, "run", format!("no run {id}")),
        },
    }
}

/// Most bytes of logs in one answer.
const LOG_CHUNK: u64 = 256 * 1024;

fn logs(m: &Manager, id: &str, query: &str) -> Response {
    let offset: u64 = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("offset="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let dir = m.dir(id);
    if read_status(&dir).is_none() {
        return Response::error(404, "run", format!("no run {id}"));
    }
    let mut body = Vec::new();
    if let Ok(mut f) = std::fs::File::open(dir.join("logs.txt")) {
        let len = f.metadata().map(|md| md.len()).unwrap_or(0);
        if offset < len && f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.take(LOG_CHUNK).read_to_end(&mut body);
        }
    }
    let next = offset + body.len() as u64;
    Response {
        status: 200,
        content_type: "text/plain; charset=utf-8",
        body,
        headers: vec![("X-Userflux-Offset", next.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::shards_of;

    #[test]
    fn shards_come_from_the_query() {
        assert_eq!(shards_of(""), Ok(None));
        assert_eq!(shards_of("shards=3"), Ok(Some(3)));
        assert_eq!(shards_of("x=1&shards=64"), Ok(Some(64)));
        for bad in ["shards=0", "shards=65", "shards=two"] {
            assert!(shards_of(bad).unwrap_err().contains("1 to 64"), "{bad}");
        }
    }
}
