//! When the engine itself fails: a panic hook that keeps the run's files
//! true, and the fault injection the tests use to prove it.
//!
//! A panic in any thread is recorded here ("thread 'userflux-worker-0'
//! panicked at src/worker.rs:120:5: …") and handed to the binary's callback,
//! which marks `status.json` failed at once, so no run is left `running` by
//! a dead engine. A worker's panic is then caught where the worker was
//! started: it reports what it measured, the run stops, and the summary is
//! written with the state `failed` (issue #21).

use parking_lot::Mutex;
use std::panic::PanicHookInfo;

/// The first panic of the process, formatted.
static FIRST: Mutex<Option<String>> = Mutex::new(None);

/// The environment variable that injects a fault, for tests only.
pub const FAULT_ENV: &str = "USERFLUX_TEST_FAULT";

/// A fault a test can inject through [`FAULT_ENV`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `worker-panic`: worker 0 panics when it reports its second second.
    WorkerPanic,
    /// `aggregator-panic`: the aggregator panics at the run's second second.
    AggregatorPanic,
}

impl Fault {
    /// The fault [`FAULT_ENV`] asks for; an unknown value is an error.
    pub fn from_env() -> Result<Option<Fault>, String> {
        match std::env::var(FAULT_ENV).as_deref() {
            Err(_) | Ok("") => Ok(None),
            Ok("worker-panic") => Ok(Some(Fault::WorkerPanic)),
            Ok("aggregator-panic") => Ok(Some(Fault::AggregatorPanic)),
            Ok(other) => Err(format!(
                "{FAULT_ENV}={other}: unknown fault (worker-panic, aggregator-panic)"
            )),
        }
    }
}

/// Installs the hook: each panic is formatted, kept (the first one), passed
/// to `on_panic`, then printed as Rust's default hook does.
pub fn install(on_panic: impl Fn(&str) + Send + Sync + 'static) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = describe(info);
        FIRST.lock().get_or_insert_with(|| text.clone());
        on_panic(&text);
        default(info);
    }));
}

/// The first panic recorded by the hook, if any.
pub fn first() -> Option<String> {
    FIRST.lock().clone()
}

fn describe(info: &PanicHookInfo<'_>) -> String {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    match info.location() {
        Some(at) => format!("thread '{name}' panicked at {at}: {message}"),
        None => format!("thread '{name}' panicked: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_described_with_its_thread_and_place() {
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&seen);
        install(move |t| sink.lock().push(t.to_string()));
        let r = std::thread::Builder::new()
            .name("probe".into())
            .spawn(|| panic!("boom {}", 42))
            .unwrap()
            .join();
        assert!(r.is_err());
        let _ = std::panic::take_hook();
        let seen = seen.lock();
        let ours: Vec<&String> = seen.iter().filter(|t| t.contains("'probe'")).collect();
        assert_eq!(ours.len(), 1, "{seen:?}");
        assert!(
            ours[0].starts_with("thread 'probe' panicked at engine/src/fault.rs:"),
            "{}",
            ours[0]
        );
        assert!(ours[0].ends_with(": boom 42"), "{}", ours[0]);
        assert!(first().is_some());
    }
}
