//! Entry points for the fuzz targets in `fuzz/` and for the test that
//! replays their corpus (`tests/fuzz_corpus.rs`): the same code runs under
//! libFuzzer and under `cargo test`. Each must never panic, whatever the
//! input, and must keep its own invariants.

use crate::framing::{Framed, Framer};

/// Response framing: the input's first byte chooses HEAD or not and where
/// to cut the rest into two reads; everything after is the server's bytes,
/// framed response after response until it runs out, then an EOF.
pub fn framing(data: &[u8]) {
    let Some((&ctl, wire)) = data.split_first() else {
        return;
    };
    let head_request = ctl & 1 == 1;
    let cut = if wire.is_empty() {
        0
    } else {
        ctl as usize % (wire.len() + 1)
    };
    let mut f = Framer::new();
    f.start(head_request);
    for mut piece in [&wire[..cut], &wire[cut..]] {
        while !piece.is_empty() {
            match f.feed(piece) {
                Err(_) => return, // a counted parse error; the connection would close
                Ok((n, framed)) => {
                    assert!(n <= piece.len(), "consumed more than it was given");
                    if let Framed::Partial = framed {
                        assert_eq!(n, piece.len(), "a partial feed uses all its input");
                    } else {
                        f.start(head_request);
                    }
                    piece = &piece[n..];
                }
            }
        }
    }
    let _ = f.eof();
}

/// Template parsing and rendering: any text is a template or an error
/// message, never a panic; a template renders, and text without `{{` is
/// sent exactly as written. The scope has a data set `u` (columns `id`,
/// `name`) and, in a flow, the captured value `token` (which holds a CR
/// LF, so rendering it into a header must refuse).
pub fn template(data: &[u8]) {
    use crate::template::{Ctx, Scope, Template, Vars, unsafe_in_body, unsafe_in_header};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sets = [std::sync::Arc::new(crate::data::DataSet::from_rows(
        "u",
        &["id", "name"],
        &[&["1", "ann"], &["2", "b\"ob"]],
    ))];
    let names = ["token".to_string()];
    let env = |n: &str| (n == "HOME").then(|| "/home/u".to_string());
    let scope = Scope {
        data: &sets,
        vars: Some((&names, &names)),
        env: &env,
    };
    let Ok(t) = Template::parse(text, &scope) else {
        return;
    };
    if !Template::is_templated(text) {
        assert_eq!(t.fixed().as_deref(), Some(text.as_bytes()));
    }
    let mut vars = Vars::new(1);
    vars.set(0, b"evil\r\nX: 1");
    let seq = std::sync::atomic::AtomicU64::new(0);
    let mut rng = fastrand::Rng::with_seed(data.len() as u64);
    for (forbidden, uses_var) in [
        (unsafe_in_body as fn(u8) -> bool, false),
        (unsafe_in_header, true),
    ] {
        let mut ctx = Ctx {
            vu: 3,
            iteration: 1,
            data: &sets,
            rows: &[1],
            vars: Some(&vars),
            ..Ctx::new(&seq, &mut rng)
        };
        let mut out = Vec::new();
        let var = t
            .exprs()
            .any(|e| matches!(e, crate::template::Expr::Var(_)));
        let r = t.render(&mut out, &mut ctx, forbidden);
        assert_eq!(r.is_err(), uses_var && var, "{text:?}");
    }
}

/// Config parsing: any bytes, in any accepted form, are either a config or
/// errors with messages — never a panic.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::config::Config::parse_migrating(text).and_then(|(c, _)| c.resolve()) {
        Ok(c) => {
            // A resolved config survives the round trip it makes through config.json.
            let again =
                crate::config::Config::from_json(&serde_json::to_string(&c).expect("serializes"));
            assert!(
                again.is_ok(),
                "a resolved config must re-validate: {again:?}"
            );
            // A valid search makes valid trials, at both ends of its range.
            if let Some(spec) = &c.search {
                for value in [spec.from, spec.max] {
                    let trial = crate::run::search::trial_config(&c, spec, value, spec.trial.0);
                    let checked = trial.resolve();
                    assert!(
                        checked.is_ok(),
                        "a search's trial must validate: {checked:?}"
                    );
                }
            }
        }
        Err(e) => assert!(!e.problems.is_empty()),
    }
}

/// A config to a plan and a run (issue #21): whatever validates builds a
/// plan without panic, and a run of it ends with a summary. Endpoints and
/// flows alike (issue #27: flows got around the bounds that keep a run
/// finite). The run is held to one worker, 50 ms (10 ms of graceful stop
/// and of graceful ramp-down) and 16 connections per endpoint or flow, and
/// every host, an endpoint's or a step's, is moved to a closed loopback
/// port (no DNS, no traffic beyond refused connects).
pub fn plan(data: &[u8]) {
    use crate::config::Config;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut config) = Config::parse_migrating(text).and_then(|(c, _)| c.resolve()) else {
        return;
    };
    config.target = Some("http://127.0.0.1:1".into());
    let urls = config
        .endpoints
        .iter_mut()
        .map(|e| (&mut e.url, &mut e.path))
        .chain(
            config
                .flows
                .iter_mut()
                .flat_map(|f| f.steps.iter_mut().map(|s| (&mut s.url, &mut s.path))),
        );
    for (url, path) in urls {
        if url.take().is_some() {
            *path = Some("/".into());
        }
    }
    let mut plan = match crate::run::prepare(&config) {
        Ok(p) => p,
        Err(e) => panic!("a validated config must build a plan: {e}"),
    };
    const MOST: u32 = 16;
    plan.workers = 1;
    plan.duration = plan.duration.min(std::time::Duration::from_millis(50));
    plan.graceful_stop = plan.graceful_stop.min(std::time::Duration::from_millis(10));
    plan.graceful_ramp_down = plan
        .graceful_ramp_down
        .min(std::time::Duration::from_millis(10));
    for s in &mut plan.stages {
        s.target = s.target.min(MOST);
    }
    for e in &mut plan.endpoints {
        e.initial_workers = e.initial_workers.min(MOST);
        if let Some(a) = &mut e.autoscale {
            a.min_workers = a.min_workers.min(MOST);
            a.max_workers = a.max_workers.min(MOST);
        }
        if let Some(o) = &mut e.open {
            o.pre_allocated = o.pre_allocated.min(MOST);
            o.max_vus = o.max_vus.min(MOST);
        }
    }
    let root = std::env::temp_dir().join(format!(
        "userflux-fuzz-plan-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let dir = crate::rundir::RunDir::create_in(&root).expect("a temporary run directory");
    let status = parking_lot::Mutex::new(crate::run::initial_status(&dir, &config));
    let (_keep, stop) = crossbeam_channel::unbounded();
    let summary = crate::run::execute(&config, plan, &dir, &status, stop, false);
    let _ = std::fs::remove_dir_all(&root);
    let summary = summary.expect("the run ends with a summary");
    assert_ne!(
        summary.state,
        crate::summary::RunState::Failed,
        "the engine failed: {:?}",
        summary.stop_reason
    );
}
