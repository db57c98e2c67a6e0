//! The gateway's routes file: which paths exist and how each simulates its
//! fan-out to downstream services.
//!
//! ```json
//! {"routes": [{"method": "GET", "path": "/api/users",
//!              "calls": [{"service": "users", "latency": "2ms", "error_rate": 0.0, "capacity": 64}],
//!              "body_bytes": 512}]}
//! ```
//! A service is named by its calls; every call to one service shares its
//! `capacity` (concurrent calls beyond it wait in a queue), so its capacity
//! must be the same wherever it is named. A call's `latency` is a fixed
//! duration or a distribution, `{"p50": "2ms", "p99": "20ms"}`: log-normal,
//! fitted to the two, so responses have the spread and tail real services
//! have (and a fan-out's p99 grows with its number of parallel calls).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use userflux_engine::duration::Dur;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesFile {
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(default = "default_method")]
    pub method: String,
    /// The path; a segment `{name}` matches any one segment
    /// (`/api/products/{id}`). The query string is ignored when matching.
    pub path: String,
    /// Downstream calls made for every request.
    #[serde(default)]
    pub calls: Vec<Call>,
    /// `parallel` (default): all calls at once; `sequential`: one after another.
    #[serde(default)]
    pub mode: Mode,
    /// Size of a successful response's body.
    #[serde(default)]
    pub body_bytes: usize,
    /// Periodic pauses: no response of this route leaves during them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall: Option<Stall>,
    /// A login: the 200 response's body is `{"token": "…"}` and it sets
    /// the cookie `session` to the same token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub login: bool,
    /// Answer 401 (without calling anything) unless the request carries a
    /// token from a login: `Authorization: Bearer TOKEN` or the cookie
    /// `session=TOKEN`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auth: bool,
    /// The 200 response's body is `{"id": N}`, N counting up from 1.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ids: bool,
}

/// `{"every": "5s", "for": "1s"}`: from the gateway's start, the route's
/// responses are held during the first `for` of every `every`, and leave
/// when the pause ends (a stalled dependency, a GC pause).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stall {
    pub every: Dur,
    #[serde(rename = "for")]
    pub duration: Dur,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Parallel,
    Sequential,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    pub service: String,
    /// Time the call takes once the service starts it.
    #[serde(default)]
    pub latency: Latency,
    /// Chance (0..1) the call fails; a failed call makes the route answer 503.
    #[serde(default)]
    pub error_rate: f64,
    /// Calls the service runs at once; more wait in its queue.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
}

/// A call's latency: fixed, or log-normal with the given median and 99th
/// percentile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Latency {
    Fixed(Dur),
    Spread { p50: Dur, p99: Dur },
}

impl Default for Latency {
    fn default() -> Latency {
        Latency::Fixed(Dur::default())
    }
}

/// z of the 99th percentile of the standard normal distribution.
const Z99: f64 = 2.326_347_874_040_841;

impl Latency {
    /// One call's latency; `normal` draws a standard normal number.
    pub fn sample(&self, normal: impl FnOnce() -> f64) -> std::time::Duration {
        match *self {
            Latency::Fixed(d) => d.0,
            Latency::Spread { p50, p99 } => {
                // ln X ~ N(mu, sigma): median e^mu, 99th percentile e^(mu + z99·sigma)
                let median = p50.0.as_secs_f64();
                let sigma = (p99.0.as_secs_f64() / median).ln() / Z99;
                let secs = median * (sigma * normal()).exp();
                // a draw far in the tail is capped at an hour, like any latency
                std::time::Duration::from_secs_f64(secs.min(3600.0))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Latency, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Spread {
            p50: Dur,
            p99: Dur,
        }
        match serde_json::Value::deserialize(d)? {
            v @ serde_json::Value::String(_) => serde_json::from_value(v)
                .map(Latency::Fixed)
                .map_err(D::Error::custom),
            v @ serde_json::Value::Object(_) => {
                let s: Spread = serde_json::from_value(v).map_err(D::Error::custom)?;
                if s.p50.is_zero() || s.p99 < s.p50 {
                    return Err(D::Error::custom(format!(
                        "p50 ({}) must be above 0 and p99 ({}) at least p50",
                        s.p50, s.p99
                    )));
                }
                Ok(Latency::Spread {
                    p50: s.p50,
                    p99: s.p99,
                })
            }
            other => Err(D::Error::custom(format!(
                "expected a duration (\"2ms\") or {{\"p50\": \"2ms\", \"p99\": \"20ms\"}}, got {other}"
            ))),
        }
    }
}

fn default_method() -> String {
    "GET".into()
}
fn default_capacity() -> u32 {
    1024
}

/// Most body bytes a route may send; keeps a typo from allocating gigabytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

impl RoutesFile {
    /// Parses and validates; errors name the field path.
    pub fn from_json(text: &str) -> Result<RoutesFile, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let file: RoutesFile = serde_path_to_error::deserialize(value)
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
        file.validate()?;
        Ok(file)
    }

    fn validate(&self) -> Result<(), String> {
        let mut capacities: BTreeMap<&str, (u32, String)> = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for (i, r) in self.routes.iter().enumerate() {
            if !r.path.starts_with('/') {
                return Err(format!(
                    "routes[{i}].path: \"{}\" must start with '/'",
                    r.path
                ));
            }
            if r.method.is_empty() || !r.method.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "routes[{i}].method: \"{}\" is not an upper-case HTTP method",
                    r.method
                ));
            }
            for seg in r.path.split('/') {
                let braces = seg.contains('{') || seg.contains('}');
                let param = seg.len() > 2 && seg.starts_with('{') && seg.ends_with('}');
                if braces && !param {
                    return Err(format!(
                        "routes[{i}].path: \"{seg}\": a parameter is a whole segment, such as {{id}}"
                    ));
                }
            }
            if [r.login, r.ids].iter().filter(|&&b| b).count() > 1 || (r.login && r.auth) {
                return Err(format!(
                    "routes[{i}]: login, ids and auth: a login needs no auth, and a body is a token or an id"
                ));
            }
            if let Some(j) = seen.insert((r.method.as_str(), r.path.as_str()), i) {
                return Err(format!(
                    "routes[{i}]: {} {} is already routes[{j}]",
                    r.method, r.path
                ));
            }
            if let Some(s) = r.stall
                && (s.every.is_zero() || s.duration >= s.every)
            {
                return Err(format!(
                    "routes[{i}].stall: \"for\" ({}) must be shorter than \"every\" ({})",
                    s.duration, s.every
                ));
            }
            if r.body_bytes > MAX_BODY_BYTES {
                return Err(format!("routes[{i}].body_bytes: at most {MAX_BODY_BYTES}"));
            }
            for (j, c) in r.calls.iter().enumerate() {
                let at = format!("routes[{i}].calls[{j}]");
                if c.service.is_empty() {
                    return Err(format!("{at}.service: must not be empty"));
                }
                if !(0.0..=1.0).contains(&c.error_rate) {
                    return Err(format!(
                        "{at}.error_rate: must be between 0 and 1, got {}",
                        c.error_rate
                    ));
                }
                if c.capacity == 0 {
                    return Err(format!("{at}.capacity: must be at least 1"));
                }
                match capacities.get(c.service.as_str()) {
                    Some((cap, first)) if *cap != c.capacity => {
                        return Err(format!(
                            "{at}.capacity: service \"{}\" has capacity {cap} at {first}; one service has one capacity",
                            c.service
                        ));
                    }
                    Some(_) => {}
                    None => {
                        capacities.insert(&c.service, (c.capacity, at));
                    }
                }
            }
        }
        Ok(())
    }

    /// With `--grpc` the services set their own latency, errors and
    /// capacity (`userflux-services --config`): a routes file that sets them
    /// on a call is refused rather than ignored.
    pub fn check_for_grpc(&self) -> Result<(), String> {
        for (i, r) in self.routes.iter().enumerate() {
            for (j, c) in r.calls.iter().enumerate() {
                let set = [
                    ("latency", c.latency != Latency::default()),
                    ("error_rate", c.error_rate != 0.0),
                    ("capacity", c.capacity != default_capacity()),
                ];
                if let Some((field, _)) = set.iter().find(|(_, s)| *s) {
                    return Err(format!(
                        "routes[{i}].calls[{j}].{field}: with --grpc a service's latency, error_rate and capacity are set on userflux-services (--config), not on the gateway's calls"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The routes used when no file is given: a health check and three API
    /// routes with different fan-out shapes, each call with a spread and a
    /// tail (p99 four to five times its median).
    pub fn default_routes() -> RoutesFile {
        let call = |service: &str, p50_ms: u64, p99_ms: u64, error_rate: f64| Call {
            service: service.into(),
            latency: Latency::Spread {
                p50: Dur::from_millis(p50_ms),
                p99: Dur::from_millis(p99_ms),
            },
            error_rate,
            capacity: 256,
        };
        let route = |method: &str, path: &str, calls, mode, body_bytes| Route {
            method: method.into(),
            path: path.into(),
            calls,
            mode,
            body_bytes,
            stall: None,
            login: false,
            auth: false,
            ids: false,
        };
        RoutesFile {
            routes: vec![
                route("GET", "/health", vec![], Mode::Parallel, 2),
                route(
                    "GET",
                    "/api/users",
                    vec![call("users", 2, 8, 0.0)],
                    Mode::Parallel,
                    512,
                ),
                route(
                    "GET",
                    "/api/products",
                    vec![call("catalog", 5, 20, 0.0), call("pricing", 3, 15, 0.0)],
                    Mode::Parallel,
                    2048,
                ),
                route(
                    "POST",
                    "/api/orders",
                    vec![call("inventory", 3, 12, 0.0), call("payments", 8, 40, 0.01)],
                    Mode::Sequential,
                    128,
                ),
                // a session: log in, then browse, fill a cart and check out
                Route {
                    login: true,
                    ..route(
                        "POST",
                        "/api/login",
                        vec![call("auth", 2, 8, 0.0)],
                        Mode::Parallel,
                        0,
                    )
                },
                Route {
                    auth: true,
                    ..route(
                        "GET",
                        "/api/products/{id}",
                        vec![call("catalog", 5, 20, 0.0), call("pricing", 3, 15, 0.0)],
                        Mode::Parallel,
                        1024,
                    )
                },
                Route {
                    auth: true,
                    ids: true,
                    ..route(
                        "POST",
                        "/api/cart",
                        vec![call("carts", 2, 10, 0.0)],
                        Mode::Parallel,
                        0,
                    )
                },
                Route {
                    auth: true,
                    ..route(
                        "POST",
                        "/api/checkout",
                        vec![call("inventory", 3, 12, 0.0), call("payments", 8, 40, 0.0)],
                        Mode::Sequential,
                        128,
                    )
                },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let f = RoutesFile::from_json(
            r#"{"routes": [{"method": "GET", "path": "/api/users", "calls": [{"service": "users", "latency": "2ms", "error_rate": 0.0, "capacity": 64}], "body_bytes": 512}]}"#,
        )
        .unwrap();
        assert_eq!(
            f.routes[0].calls[0].latency,
            Latency::Fixed(Dur::from_millis(2))
        );
        let f = RoutesFile::from_json(
            r#"{"routes": [{"path": "/a", "calls": [{"service": "s", "latency": {"p50": "2ms", "p99": "20ms"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            f.routes[0].calls[0].latency,
            Latency::Spread {
                p50: Dur::from_millis(2),
                p99: Dur::from_millis(20)
            }
        );
        assert_eq!(f.routes[0].mode, Mode::Parallel);
    }

    #[test]
    fn errors_name_the_field() {
        for (json, want) in [
            (r#"{"routes":[{"path":"x"}]}"#, "routes[0].path"),
            (
                r#"{"routes":[{"path":"/a","calls":[{"service":"s","error_rate":2}]}]}"#,
                "routes[0].calls[0].error_rate",
            ),
            (
                r#"{"routes":[{"path":"/a","calls":[{"service":"s","latency":"2"}]}]}"#,
                "routes[0].calls[0].latency",
            ),
            (
                r#"{"routes":[{"path":"/a","calls":[{"service":"s","capacity":1}]},{"path":"/b","calls":[{"service":"s","capacity":2}]}]}"#,
                "routes[1].calls[0].capacity",
            ),
            (
                r#"{"routes":[{"path":"/a"},{"path":"/a"}]}"#,
                "routes[1]: GET /a is already routes[0]",
            ),
            (
                r#"{"routes":[{"path":"/a","pause":{}}]}"#,
                "unknown field `pause`",
            ),
            (
                r#"{"routes":[{"path":"/a","calls":[{"service":"s","latency":{"p50":"5ms","p99":"1ms"}}]}]}"#,
                "routes[0].calls[0].latency: p50 (5ms) must be above 0 and p99 (1ms) at least p50",
            ),
            (
                r#"{"routes":[{"path":"/a","calls":[{"service":"s","latency":{"p50":"5ms"}}]}]}"#,
                "routes[0].calls[0].latency: missing field `p99`",
            ),
            (
                r#"{"routes":[{"path":"/a","calls":[{"service":"s","latency":5}]}]}"#,
                "routes[0].calls[0].latency: expected a duration",
            ),
        ] {
            let e = RoutesFile::from_json(json).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
    }

    #[test]
    fn stall_windows_are_checked() {
        for (json, want) in [
            (
                r#"{"routes":[{"path":"/a","stall":{"every":"1s"}}]}"#,
                "routes[0].stall: missing field `for`",
            ),
            (
                r#"{"routes":[{"path":"/a","stall":{"every":"1s","for":"2s"}}]}"#,
                "routes[0].stall: \"for\" (2s) must be shorter",
            ),
        ] {
            let e = RoutesFile::from_json(json).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
        let ok = RoutesFile::from_json(
            r#"{"routes":[{"path":"/a","stall":{"every":"5s","for":"1s"}}]}"#,
        )
        .unwrap();
        assert_eq!(ok.routes[0].stall.unwrap().duration, Dur::from_secs(1));
    }

    #[test]
    fn a_spread_has_the_configured_median_and_99th_percentile() {
        let l = Latency::Spread {
            p50: Dur::from_millis(2),
            p99: Dur::from_millis(20),
        };
        // normal draws by Box-Muller over a fixed uniform sequence
        let mut x = 7u64;
        let mut uniform = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut draws: Vec<f64> = (0..100_000)
            .map(|_| {
                let (u, v) = (uniform().max(1e-300), uniform());
                let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
                l.sample(|| z).as_secs_f64() * 1000.0
            })
            .collect();
        draws.sort_by(f64::total_cmp);
        let (p50, p99) = (draws[50_000], draws[99_000]);
        assert!((p50 - 2.0).abs() < 0.1, "{p50}");
        assert!((p99 - 20.0).abs() < 1.5, "{p99}");
        assert_eq!(
            Latency::Fixed(Dur::from_millis(3)).sample(|| 5.0),
            std::time::Duration::from_millis(3)
        );
    }

    #[test]
    fn with_grpc_a_call_that_sets_what_a_service_owns_is_refused() {
        let plain =
            RoutesFile::from_json(r#"{"routes":[{"path":"/a","calls":[{"service":"users"}]}]}"#);
        plain.unwrap().check_for_grpc().unwrap();
        for (call, field) in [
            (r#"{"service":"users","latency":"1ms"}"#, "latency"),
            (r#"{"service":"users","error_rate":0.5}"#, "error_rate"),
            (r#"{"service":"users","capacity":8}"#, "capacity"),
        ] {
            let json = format!(r#"{{"routes":[{{"path":"/a","calls":[{call}]}}]}}"#);
            let e = RoutesFile::from_json(&json)
                .unwrap()
                .check_for_grpc()
                .unwrap_err();
            assert!(
                e.starts_with(&format!("routes[0].calls[0].{field}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn default_routes_are_valid() {
        RoutesFile::default_routes().validate().unwrap();
    }
}
