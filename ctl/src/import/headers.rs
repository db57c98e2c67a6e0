//! Which recorded request headers a step keeps. A browser sends a dozen
//! headers that describe itself or its connection; a load test wants the
//! ones the application reads (`authorization`, `content-type`, `accept`,
//! custom `x-` headers). The rest are dropped, each with its reason in the
//! report.

/// Why a header is dropped, or `None` to keep it.
pub fn drop_reason(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    if n.starts_with(':') {
        return Some("HTTP/2 pseudo-headers; the engine writes the request line");
    }
    match n.as_str() {
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "te"
        | "trailer" | "upgrade" => Some("hop-by-hop, the connection's own"),
        "host" | "content-length" => Some("set by the engine"),
        "cookie" => Some("cookies: the flow's cookie jar sends what responses set"),
        "accept-encoding" => {
            Some("compression: the engine reads bodies as sent, and a run measures uncompressed")
        }
        "if-none-match"
        | "if-modified-since"
        | "if-match"
        | "if-unmodified-since"
        | "if-range"
        | "cache-control"
        | "pragma" => Some("the browser's cache; a load test asks for whole responses"),
        "user-agent"
        | "accept-language"
        | "referer"
        | "dnt"
        | "upgrade-insecure-requests"
        | "priority"
        | "purpose"
        | "sec-purpose"
        | "sec-gpc"
        | "x-client-data" => Some("browser noise"),
        _ if n.starts_with("sec-ch-") || n.starts_with("sec-fetch-") => Some("browser noise"),
        _ if n.starts_with("sec-websocket") => Some("hop-by-hop, the connection's own"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_headers_stay_and_browser_ones_go() {
        for keep in [
            "Authorization",
            "content-type",
            "Accept",
            "X-Request-Id",
            "Origin",
            "x-csrf-token",
        ] {
            assert_eq!(drop_reason(keep), None, "{keep}");
        }
        for drop in [
            ":authority",
            ":path",
            "Connection",
            "Host",
            "Cookie",
            "Accept-Encoding",
            "sec-ch-ua-platform",
            "Sec-Fetch-Mode",
            "User-Agent",
            "If-None-Match",
            "Content-Length",
        ] {
            assert!(drop_reason(drop).is_some(), "{drop}");
        }
    }
}
