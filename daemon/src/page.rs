//! The dashboard's page and its assets, embedded in the binary: the daemon
//! serves them from memory and the page loads nothing from anywhere else
//! (its Content-Security-Policy says so to the browser too). uPlot is
//! vendored, pinned, under `assets/vendor/uplot/` with its licence.

use crate::http::Response;

/// `default-src 'self'`: scripts, styles, fetches and the event stream from
/// the daemon only. uPlot sets element styles from script, hence the
/// inline styles.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: [Asset; 5] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../assets/index.html"),
    },
    Asset {
        path: "/assets/dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/dashboard.js"),
    },
    Asset {
        path: "/assets/dashboard.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/dashboard.css"),
    },
    Asset {
        path: "/assets/uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/vendor/uplot/uPlot.iife.min.js"),
    },
    Asset {
        path: "/assets/uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/vendor/uplot/uPlot.min.css"),
    },
];

/// The page or an asset at `path`, if there is one.
pub fn asset(path: &str) -> Option<Response> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|a| a.path == path).map(|a| Response {
        status: 200,
        content_type: a.content_type,
        body: a.body.as_bytes().to_vec(),
        headers: vec![
            ("Content-Security-Policy", CSP.into()),
            ("X-Content-Type-Options", "nosniff".into()),
            ("Cache-Control", "no-cache".into()),
        ],
    })
}

/// Headers for a run's own report served from its directory: it is the
/// analytics' self-contained HTML (images inline as data: URLs).
pub fn report_headers() -> Vec<(&'static str, String)> {
    vec![
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:".into(),
        ),
        ("X-Content-Type-Options", "nosniff".into()),
    ]
}
