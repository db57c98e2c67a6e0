//! Steering a running run, and a run's report, for the dashboard.
//!
//! A VU or rate change is a line appended to the run's `control.ndjson`; the
//! engine's aggregator reads new lines once a second and applies them like
//! an autoscale decision, recorded as a scaling event with reason `manual`
//! (`userflux_engine::live`). A file rather than a pipe to the child: a
//! restarted daemon adopts a running engine it never spawned, and the file
//! stays as the record of what was asked. The daemon checks what it can
//! (the run is running here, the unit is one of its config's — an
//! open-model one for a rate —, the count or rate is in range) so a mistake is a 4xx now, not a line in the log later.

use crate::http::Response;
use crate::runs::{Manager, log, read_status};
use serde_json::json;
use std::io::Write;
use userflux_engine::config::Config;
use userflux_engine::live::{CONTROL_FILE, ControlLine, MAX_MANUAL_VUS, check_rate};

/// `POST /v1/runs/{id}/vus` with `{"unit": NAME, "vus": N}`.
pub fn set_vus(m: &Manager, id: &str, body: &[u8]) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ask {
        unit: String,
        vus: u32,
    }
    let ask: Ask = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(e) => {
            let rate = String::from_utf8_lossy(body).contains("\"rate\"");
            let msg = if rate {
                "a rate goes to POST /v1/runs/{id}/rate (this route takes {\"unit\", \"vus\"})"
                    .to_string()
            } else {
                format!("expected {{\"unit\": NAME, \"vus\": N}}: {e}")
            };
            return Response::error(400, "body", msg);
        }
    };
    if ask.vus > MAX_MANUAL_VUS {
        return Response::error(
            400,
            "vus",
            format!("vus {}: at most {MAX_MANUAL_VUS}", ask.vus),
        );
    }
    let line = ControlLine::SetVus {
        unit: ask.unit.clone(),
        vus: ask.vus,
    };
    send(m, id, &ask.unit, false, &line).unwrap_or_else(|()| {
        Response::json(
            202,
            &json!({"run_id": id, "unit": ask.unit, "vus": ask.vus, "state": "sent"}),
        )
    })
}

/// `POST /v1/runs/{id}/rate` with `{"unit": NAME, "rate": R}`: an
/// open-model unit's rate (per second) from now to the end of the load.
pub fn set_rate(m: &Manager, id: &str, body: &[u8]) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ask {
        unit: String,
        rate: f64,
    }
    let ask: Ask = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(e) => {
            return Response::error(
                400,
                "body",
                format!("expected {{\"unit\": NAME, \"rate\": R}}: {e}"),
            );
        }
    };
    if let Err(why) = check_rate(ask.rate) {
        return Response::error(400, "rate", why);
    }
    let line = ControlLine::SetRate {
        unit: ask.unit.clone(),
        rate: ask.rate,
    };
    send(m, id, &ask.unit, true, &line).unwrap_or_else(|()| {
        Response::json(
            202,
            &json!({"run_id": id, "unit": ask.unit, "rate": ask.rate, "state": "sent"}),
        )
    })
}

/// Checks that run `id` can be steered and `unit` is one of its units (an
/// open-model one when `open`), then appends `line` to its
/// `control.ndjson`. `Err(())` is sent; `Ok` the refusal.
fn send(m: &Manager, id: &str, unit: &str, open: bool, line: &ControlLine) -> Result<Response, ()> {
    let dir = m.dir(id);
    let Some(status) = read_status(&dir) else {
        return Ok(Response::error(404, "run", format!("no run {id}")));
    };
    if !m.is_running(id) {
        return Ok(Response::error(
            409,
            "state",
            format!("run {id} is not running ({})", status.state.as_str()),
        ));
    }
    if dir.join("shards").is_dir() {
        return Ok(Response::error(
            409,
            "shards",
            "a run of local shards cannot be steered (each shard's aggregator decides alone)",
        ));
    }
    // each unit, and whether it is open-model (a rate or rate stages)
    let units: Vec<(String, bool)> = match Config::load(&dir.join("config.json")) {
        Ok(c) => c
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    e.rate.is_some() || !e.rate_stages.is_empty(),
                )
            })
            .chain(c.flows.iter().map(|f| {
                (
                    f.name.clone(),
                    f.rate.is_some() || !f.rate_stages.is_empty(),
                )
            }))
            .collect(),
        Err(_) => vec![],
    };
    let Some(&(_, is_open)) = units.iter().find(|(n, _)| n == unit) else {
        let names: Vec<&str> = units.iter().map(|(n, _)| n.as_str()).collect();
        return Ok(Response::error(
            400,
            "unit",
            format!(
                "unit \"{unit}\": not an endpoint or flow of run {id} ({})",
                names.join(", ")
            ),
        ));
    };
    if open && !is_open {
        return Ok(Response::error(
            400,
            "unit",
            format!(
                "unit \"{unit}\" is closed-model (VUs, no rate): change its VUs (POST /v1/runs/{id}/vus)"
            ),
        ));
    }
    let mut text = serde_json::to_vec(line).unwrap_or_default();
    text.push(b'\n');
    // One write of a whole line with O_APPEND: two requests never interleave.
    let written = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join(CONTROL_FILE))
            .and_then(|mut f| f.write_all(&text))
    };
    if let Err(e) = written {
        return Ok(Response::error(
            500,
            "io",
            format!("cannot write {CONTROL_FILE}: {e}"),
        ));
    }
    let asked = match line {
        ControlLine::SetVus { vus, .. } => format!("{vus} VUs"),
        ControlLine::SetRate { rate, .. } => format!("{rate} req/s"),
    };
    log(&dir, &format!("steering asked: {unit} to {asked}"));
    Err(())
}

/// `GET /v1/runs/{id}/report`: the run's `report.html`.
pub fn report(m: &Manager, id: &str) -> Response {
    match std::fs::read(m.dir(id).join("report.html")) {
        Ok(body) => Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body,
            headers: crate::page::report_headers(),
        },
        Err(_) => Response::error(
            404,
            "report",
            format!("run {id} has no report.html yet (`userfluxctl report {id}` writes it)"),
        ),
    }
}

/// Whether `name` may be served from a run directory: a chart's file name,
/// one path segment, no dot file.
fn servable(name: &str) -> bool {
    name.len() <= 128
        && name.ends_with(".png")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `GET /v1/runs/{id}/files/{name}.png`: a chart of the run's report. A
/// symlink is not followed out of the run directory.
pub fn file(m: &Manager, id: &str, name: &str) -> Response {
    if !servable(name) {
        return Response::error(
            400,
            "file",
            format!("\"{name}\": only a report's chart (NAME.png) is served"),
        );
    }
    let path = m.dir(id).join(name);
    let regular = std::fs::symlink_metadata(&path).is_ok_and(|md| md.file_type().is_file());
    match std::fs::read(&path) {
        Ok(body) if regular => Response {
            status: 200,
            content_type: "image/png",
            body,
            headers: vec![("X-Content-Type-Options", "nosniff".into())],
        },
        _ => Response::error(404, "file", format!("run {id} has no {name}")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_chart_names_are_servable() {
        for ok in ["latency.png", "workers-1.png", "a_b.png"] {
            assert!(super::servable(ok), "{ok}");
        }
        for bad in [
            "../x.png",
            ".hidden.png",
            "config.json",
            "a/b.png",
            "x.png%00",
            "dashboard.token",
        ] {
            assert!(!super::servable(bad), "{bad}");
        }
    }
}
