//! Cookie lifetimes from the server, through the real engine (issue #27):
//! `Set-Cookie: a=b; Max-Age=9223372036854775807` panicked the worker
//! (a `SystemTime` overflow) and the run exited 1; now every lifetime
//! saturates and the cookie goes back on the next steps.

use std::sync::Arc;
use userflux::{Scripted, Seen, load_run, ok, only_run, run_with_config};

#[test]
fn a_huge_or_far_lifetime_is_a_cookie_that_outlives_the_iteration() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Scripted::start(Arc::new(|r: &Seen| match r.path.as_str() {
        "/login" => ok(
            "Set-Cookie: a=b; Max-Age=9223372036854775807\r\n\
             Set-Cookie: c=d; Path=/; Max-Age=-99999999999999999999999\r\n\
             Set-Cookie: e=f; Path=/; Expires=Fri, 31-Dec-9999 23:59:59 GMT\r\n\
             Set-Cookie: g=h; Path=/; Expires=Thu, 01-Jan-1970 00:00:01 GMT\r\n",
            "in",
        ),
        _ => ok("", "ok"),
    }));
    let config = format!(
        r#"{{"target": "{}", "threads": 1, "requests": 20,
          "stages": [{{"duration": "0s", "target": 1}}, {{"duration": "20s", "target": 1}}],
          "flows": [{{"name": "f", "steps": [
            {{"name": "login", "path": "/login"}},
            {{"name": "next", "path": "/next"}}]}}]}}"#,
        server.url()
    );
    let runs = tmp.path().join("runs");
    let out = run_with_config(&config, &tmp.path().join("c.json"), &runs, &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    userflux::assert_ok(&out);
    let (s, _) = load_run(&only_run(&runs));
    assert_eq!((s.totals.requests, s.totals.errors), (20, 0), "{text}");
    assert_eq!(s.flows["f"].iterations, 10);
    let seen = server.seen();
    assert_eq!(seen.len(), 20);
    for r in seen.iter().filter(|r| r.path == "/next") {
        // the huge Max-Age and the far Expires stay; the negative Max-Age
        // and the dashed past Expires delete (never stored)
        assert_eq!(
            r.headers.get("cookie").map(String::as_str),
            Some("a=b; e=f"),
            "{}",
            r.path
        );
    }
}
