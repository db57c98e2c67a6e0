//! The start barrier of a sharded run on Kubernetes (issue #29): every pod
//! of the Job starts its run at one instant, decided once the last pod is
//! ready — not at a time fixed when the manifest was printed, which a pod
//! pulled late (image pull, node autoscaling) missed.
//!
//! It uses Kubernetes itself and nothing else: a pod that has prepared its
//! run writes a file its readinessProbe checks, so the kubelet marks it
//! Ready; then it lists the Job's pods from the API server (`get`/`list`
//! on pods, the narrowest RBAC there is) until all N shards are Ready.
//! Every pod then computes the same start from the same data — the latest
//! Ready condition's `lastTransitionTime` plus a margin — so there is no
//! leader, no election, and nothing is written to the cluster. A pod that
//! finds the others not ready within the timeout, or that saw them ready
//! too late for the computed start, fails plainly instead of running out
//! of step.
//!
//! The HTTPS GET is a small blocking rustls request (the engine's TLS
//! stack), with the service account's token and CA; HTTP/1.0, so the
//! answer is never chunked and ends with the connection.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// The Job's name (pods labelled `job-name=NAME`); set, the barrier is on.
pub const BARRIER_ENV: &str = "USERFLUX_BARRIER";
/// Longest wait for every pod to be Ready (default [`DEFAULT_TIMEOUT`]).
pub const TIMEOUT_ENV: &str = "USERFLUX_BARRIER_TIMEOUT";
/// Time from the last pod's readiness to the start (default [`DEFAULT_MARGIN`]).
pub const MARGIN_ENV: &str = "USERFLUX_BARRIER_MARGIN";
/// The file the readinessProbe checks, written once the run is prepared.
pub const READY_FILE_ENV: &str = "USERFLUX_READY_FILE";
/// Where the service account's `token`, `ca.crt` and `namespace` are
/// (default [`SERVICE_ACCOUNT_DIR`]; tests point it elsewhere).
pub const SERVICE_ACCOUNT_ENV: &str = "USERFLUX_SERVICE_ACCOUNT_DIR";
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Long enough for every pod to see the last one ready (they poll every
/// `POLL`, 1 s) and for the readiness to reach the API server.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(10);
/// How often the pods are listed.
const POLL: Duration = Duration::from_secs(1);
/// An Indexed Job's pod annotation holding its index.
const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
/// Largest answer read from the API server.
const MAX_ANSWER: u64 = 64 * 1024 * 1024;

/// The barrier's settings, from the environment.
#[derive(Debug, Clone)]
pub struct Barrier {
    pub job: String,
    pub shards: u32,
    pub timeout: Duration,
    pub margin: Duration,
    pub ready_file: Option<PathBuf>,
    pub account: PathBuf,
}

/// What listing the pods showed.
#[derive(Debug, PartialEq)]
pub enum Seen {
    /// Shards Ready so far, of all.
    Waiting { ready: usize },
    /// Every shard Ready; the latest became Ready at this time.
    AllReady { last: SystemTime },
    /// A pod of the Job failed before the start: the run cannot be whole.
    PodFailed { index: String },
}

impl Barrier {
    /// The barrier if `USERFLUX_BARRIER` names a Job; errors name the
    /// variable that was wrong.
    pub fn from_env(shards: Option<u32>) -> Result<Option<Barrier>, String> {
        let Ok(job) = std::env::var(BARRIER_ENV) else {
            return Ok(None);
        };
        let Some(shards) = shards else {
            return Err(format!(
                "{BARRIER_ENV}={job}: a barrier is for a sharded run (--shard, or JOB_COMPLETION_INDEX and USERFLUX_SHARD_COUNT)"
            ));
        };
        let duration = |var: &str, default: Duration| -> Result<Duration, String> {
            match std::env::var(var) {
                Err(_) => Ok(default),
                Ok(v) => humantime::parse_duration(&v).map_err(|e| format!("{var}={v}: {e}")),
            }
        };
        Ok(Some(Barrier {
            job,
            shards,
            timeout: duration(TIMEOUT_ENV, DEFAULT_TIMEOUT)?,
            margin: duration(MARGIN_ENV, DEFAULT_MARGIN)?,
            ready_file: std::env::var_os(READY_FILE_ENV).map(PathBuf::from),
            account: std::env::var_os(SERVICE_ACCOUNT_ENV)
                .map_or_else(|| PathBuf::from(SERVICE_ACCOUNT_DIR), PathBuf::from),
        }))
    }

    /// Marks this pod ready, then waits for every shard's pod to be, and
    /// returns the start time all of them compute (and its RFC 3339
    /// text). `Ok(None)` when `stopped` says to stop first (with why).
    pub fn wait(
        &self,
        mut stopped: impl FnMut(Duration) -> Option<String>,
        mut log: impl FnMut(&str),
    ) -> Result<Result<(SystemTime, String), String>, String> {
        let api = Api::from_env(&self.account)?;
        if let Some(f) = &self.ready_file {
            std::fs::write(f, "ready\n")
                .map_err(|e| format!("{READY_FILE_ENV} {}: {e}", f.display()))?;
        }
        log(&format!(
            "barrier: waiting for the {} pods of job {} to be ready (at most {})",
            self.shards,
            self.job,
            humantime::format_duration(self.timeout)
        ));
        let t0 = Instant::now();
        let path = format!(
            "/api/v1/namespaces/{}/pods?labelSelector=job-name%3D{}",
            api.namespace, self.job
        );
        let mut ready = 0;
        let mut last_error = None;
        loop {
            match api.get(&path) {
                Ok(list) => match seen(&list, self.shards) {
                    Ok(Seen::AllReady { last }) => {
                        let start = last + self.margin;
                        let text = humantime::format_rfc3339_seconds(start).to_string();
                        if let Ok(late) = SystemTime::now().duration_since(start)
                            && late > Duration::from_secs(1)
                        {
                            return Err(format!(
                                "barrier: every pod was ready, but this one saw it {:.1} s after the start they agreed on ({text}); a larger {MARGIN_ENV} gives the pods more time",
                                late.as_secs_f64()
                            ));
                        }
                        log(&format!(
                            "barrier: every pod ready; the run starts at {text}"
                        ));
                        return Ok(Ok((start, text)));
                    }
                    Ok(Seen::PodFailed { index }) => {
                        return Err(format!(
                            "barrier: the pod of shard {index} failed before the start; the run cannot be whole"
                        ));
                    }
                    Ok(Seen::Waiting { ready: r }) => ready = r,
                    Err(e) => last_error = Some(e),
                },
                Err(Fatal(e)) => return Err(e),
                Err(Retry(e)) => last_error = Some(e),
            }
            if t0.elapsed() >= self.timeout {
                let why = last_error.map_or(String::new(), |e| format!(" (last error: {e})"));
                return Err(format!(
                    "barrier: {ready} of {} pods of job {} ready after {}; the run did not start{why}",
                    self.shards,
                    self.job,
                    humantime::format_duration(self.timeout)
                ));
            }
            if let Some(why) = stopped(POLL) {
                return Ok(Err(why));
            }
        }
    }
}

/// What a pod list (`v1` PodList JSON) says of the Job's `shards` shards.
pub fn seen(list: &str, shards: u32) -> Result<Seen, String> {
    let v: Value = serde_json::from_str(list)
        .map_err(|e| format!("the API server's pod list is not JSON: {e}"))?;
    let items = v["items"]
        .as_array()
        .ok_or("the API server's answer has no items")?;
    let mut ready: BTreeMap<String, SystemTime> = BTreeMap::new();
    for pod in items {
        let Some(index) = pod["metadata"]["annotations"][INDEX_ANNOTATION].as_str() else {
            continue;
        };
        if pod["status"]["phase"] == "Failed" {
            return Ok(Seen::PodFailed {
                index: index.to_string(),
            });
        }
        let conditions = pod["status"]["conditions"].as_array();
        let Some(c) = conditions
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready" && c["status"] == "True")
        else {
            continue;
        };
        let at = c["lastTransitionTime"].as_str().unwrap_or_default();
        let at = humantime::parse_rfc3339_weak(at)
            .map_err(|e| format!("pod of shard {index}: lastTransitionTime \"{at}\": {e}"))?;
        ready.insert(index.to_string(), at);
    }
    if ready.len() >= shards as usize {
        let last = ready
            .values()
            .max()
            .copied()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Ok(Seen::AllReady { last })
    } else {
        Ok(Seen::Waiting { ready: ready.len() })
    }
}

/// A failed GET: worth retrying, or not (the service account may not list pods).
enum GetError {
    Retry(String),
    Fatal(String),
}
use GetError::{Fatal, Retry};

/// The API server as a pod sees it.
struct Api {
    host: String,
    port: u16,
    token: String,
    namespace: String,
    tls: std::sync::Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
}

impl Api {
    fn from_env(account: &std::path::Path) -> Result<Api, String> {
        let var = |k: &str| {
            std::env::var(k).map_err(|_| {
                format!(
                    "{k} is not set: the barrier needs the Kubernetes API server ({BARRIER_ENV})"
                )
            })
        };
        let host = var("KUBERNETES_SERVICE_HOST")?;
        let port = var("KUBERNETES_SERVICE_PORT")?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("KUBERNETES_SERVICE_PORT={port}: not a port"))?;
        let read = |f: &str| {
            let p = account.join(f);
            std::fs::read_to_string(&p)
                .map(|t| t.trim().to_string())
                .map_err(|e| {
                    format!(
                        "{}: {e} (the pod's service account token must be mounted)",
                        p.display()
                    )
                })
        };
        let (token, namespace) = (read("token")?, read("namespace")?);
        let spec = crate::tls::TlsSpec {
            ca_file: Some(account.join("ca.crt").display().to_string()),
            ..Default::default()
        };
        let tls = spec.client_config(None)?;
        let name = spec.name_for(&host)?;
        Ok(Api {
            host,
            port,
            token,
            namespace,
            tls,
            name,
        })
    }

    /// The body of `GET path`, if the answer is 200.
    fn get(&self, path: &str) -> Result<String, GetError> {
        use std::net::ToSocketAddrs;
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| Retry(format!("{}: {e}", self.host)))?
            .next()
            .ok_or_else(|| Retry(format!("{}: no address", self.host)))?;
        let tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| Retry(format!("connect to {addr}: {e}")))?;
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = tcp.set_write_timeout(Some(Duration::from_secs(10)));
        let conn = rustls::ClientConnection::new(self.tls.clone(), self.name.clone())
            .map_err(|e| Fatal(format!("TLS to the API server: {e}")))?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let req = format!(
            "GET {path} HTTP/1.0\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nAccept: application/json\r\n\r\n",
            self.token
        );
        s.write_all(req.as_bytes())
            .map_err(|e| Retry(format!("the API server: {e}")))?;
        let mut answer = Vec::new();
        // an answer that ends without TLS close_notify is still whole (HTTP/1.0 ends with the connection)
        if let Err(e) = Read::by_ref(&mut s)
            .take(MAX_ANSWER)
            .read_to_end(&mut answer)
            && e.kind() != std::io::ErrorKind::UnexpectedEof
        {
            return Err(Retry(format!("the API server: {e}")));
        }
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| Retry("the API server's answer has no end of head".into()))?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| Retry("the API server's answer has no status".into()))?;
        match status {
            200 => Ok(body.to_string()),
            401 | 403 => Err(Fatal(format!(
                "barrier: the API server refused to list pods ({status}): the pod's service account needs get and list on pods (the manifest's Role): {}",
                body.chars().take(300).collect::<String>()
            ))),
            _ => Err(Retry(format!("the API server answered {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(index: &str, phase: &str, ready: Option<&str>) -> Value {
        let conditions: Vec<Value> = ready
            .map(
                |t| serde_json::json!({"type": "Ready", "status": "True", "lastTransitionTime": t}),
            )
            .into_iter()
            .collect();
        serde_json::json!({
            "metadata": {"annotations": {INDEX_ANNOTATION: index}},
            "status": {"phase": phase, "conditions": conditions}
        })
    }

    fn list(pods: Vec<Value>) -> String {
        serde_json::json!({"kind": "PodList", "items": pods}).to_string()
    }

    #[test]
    fn every_pod_computes_the_start_from_the_last_ready() {
        let l = list(vec![
            pod("0", "Running", Some("2026-12-02T10:00:05Z")),
            pod("1", "Running", Some("2026-12-02T10:00:09Z")),
            pod("2", "Running", Some("2026-12-02T10:00:01Z")),
        ]);
        assert_eq!(
            seen(&l, 3).unwrap(),
            Seen::AllReady {
                last: humantime::parse_rfc3339("2026-12-02T10:00:09Z").unwrap()
            }
        );
    }

    #[test]
    fn not_ready_pending_and_foreign_pods_are_waited_for() {
        let mut foreign = pod("x", "Running", Some("2026-12-02T10:00:00Z"));
        foreign["metadata"] = serde_json::json!({});
        let l = list(vec![
            pod("0", "Running", Some("2026-12-02T10:00:05Z")),
            pod("1", "Pending", None),
            foreign,
        ]);
        assert_eq!(seen(&l, 3).unwrap(), Seen::Waiting { ready: 1 });
    }

    #[test]
    fn a_failed_pod_ends_the_wait() {
        let l = list(vec![
            pod("0", "Running", Some("2026-12-02T10:00:05Z")),
            pod("1", "Failed", None),
        ]);
        assert_eq!(seen(&l, 2).unwrap(), Seen::PodFailed { index: "1".into() });
    }

    #[test]
    fn a_bad_answer_is_said() {
        assert!(seen("<html>", 2).unwrap_err().contains("not JSON"));
        let l = list(vec![pod("0", "Running", Some("yesterday"))]);
        assert!(
            seen(&l, 1)
                .unwrap_err()
                .contains("lastTransitionTime \"yesterday\"")
        );
    }
}
