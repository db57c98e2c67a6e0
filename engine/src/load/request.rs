//! Requests rendered to bytes once per endpoint, before the run, and
//! written as they are for every request — or, for a templated request
//! (see [`crate::template`]) or a flow step with cookies, a
//! [`RequestTemplate`] rendered into the connection's own buffer.

use crate::config::Method;
use crate::cookies::Jar;
use crate::template::{
    Ctx, RenderError, Template, unsafe_in_body, unsafe_in_header, unsafe_in_path,
};
use crate::url::HttpUrl;
use std::collections::BTreeMap;
use std::io::Write as _;

/// `User-Agent` sent unless the endpoint sets its own.
pub const USER_AGENT: &str = concat!("userflux/", env!("CARGO_PKG_VERSION"));

/// The whole HTTP/1.1 request: request line, headers, body.
pub fn render(
    method: Method,
    url: &HttpUrl,
    headers: &BTreeMap<String, String>,
    body: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let has = |name: &str| headers.keys().any(|k| k.eq_ignore_ascii_case(name));
    out.extend_from_slice(format!("{} {} HTTP/1.1\r\n", method.as_str(), url.path).as_bytes());
    if !has("host") {
        out.extend_from_slice(format!("Host: {}\r\n", url.authority()).as_bytes());
    }
    if !has("user-agent") {
        out.extend_from_slice(format!("User-Agent: {USER_AGENT}\r\n").as_bytes());
    }
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    let needs_length = matches!(method, Method::Post | Method::Put | Method::Patch);
    if body.is_some() || needs_length {
        out.extend_from_slice(
            format!("Content-Length: {}\r\n", body.map_or(0, str::len)).as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    if let Some(b) = body {
        out.extend_from_slice(b.as_bytes());
    }
    out
}

/// A request whose bytes change from one send to the next.
#[derive(Debug)]
pub struct RequestTemplate {
    /// `METHOD path HTTP/1.1\r\n`; the path is a template.
    line: Template,
    /// Bytes of `METHOD ` before the path, and of ` HTTP/1.1\r\n` after it.
    around: (usize, usize),
    /// `Host`, `User-Agent` and the user's headers, each line with its CRLF.
    headers: Template,
    body: Option<Template>,
    /// POST, PUT and PATCH say `Content-Length: 0` without a body.
    needs_length: bool,
}

impl RequestTemplate {
    /// The same request as [`render`] gives, from templates: `path` is the
    /// whole request target; `headers` are the user's, in order.
    pub fn new(
        method: Method,
        url: &HttpUrl,
        path: Template,
        headers: Vec<(String, Template)>,
        body: Option<Template>,
    ) -> RequestTemplate {
        let mut line = Template::literal(format!("{} ", method.as_str()).as_bytes());
        line.append(path);
        line.append(Template::literal(b" HTTP/1.1\r\n"));
        let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        let mut h = Template::default();
        if !has("host") {
            h.append(Template::literal(
                format!("Host: {}\r\n", url.authority()).as_bytes(),
            ));
        }
        if !has("user-agent") {
            h.append(Template::literal(
                format!("User-Agent: {USER_AGENT}\r\n").as_bytes(),
            ));
        }
        for (k, v) in headers {
            h.append(Template::literal(format!("{k}: ").as_bytes()));
            h.append(v);
            h.append(Template::literal(b"\r\n"));
        }
        RequestTemplate {
            line,
            around: (method.as_str().len() + 1, b" HTTP/1.1\r\n".len()),
            headers: h,
            body,
            needs_length: matches!(method, Method::Post | Method::Put | Method::Patch),
        }
    }

    /// Every template of the request.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        [&self.line, &self.headers].into_iter().chain(&self.body)
    }

    /// Renders the whole request into `out` (cleared first), with the
    /// jar's `Cookie` header for the request's host when given. Allocates nothing once `out` has
    /// grown to the request's size.
    pub fn render(
        &self,
        out: &mut Vec<u8>,
        ctx: &mut Ctx<'_>,
        jar: Option<(&Jar, &str)>,
    ) -> Result<(), RenderError> {
        out.clear();
        self.line.render(out, ctx, unsafe_in_path)?;
        let path_end = out.len() - self.around.1;
        self.headers.render(out, ctx, unsafe_in_header)?;
        if let Some((jar, host)) = jar
            && !jar.is_empty()
        {
            // the host and the rendered path pick the cookies; nothing is copied
            let path = std::str::from_utf8(&out[self.around.0..path_end]).unwrap_or("");
            let mask = jar.matching(host, path, std::time::SystemTime::now());
            jar.write_matching(mask, out);
        }
        let mark = out.len();
        if let Some(b) = &self.body {
            b.render(out, ctx, unsafe_in_body)?;
        }
        let len = out.len() - mark;
        let mut tail = [0u8; 48];
        let mut w = std::io::Cursor::new(&mut tail[..]);
        if self.body.is_some() || self.needs_length {
            let _ = write!(w, "Content-Length: {len}\r\n");
        }
        let _ = w.write_all(b"\r\n");
        let used = w.position() as usize;
        out.splice(mark..mark, tail[..used].iter().copied());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_line_headers_and_body() {
        let url = HttpUrl::parse("http://127.0.0.1:8080/api/orders?x=1").unwrap();
        let mut h = BTreeMap::new();
        h.insert("content-type".to_string(), "application/json".to_string());
        let r = String::from_utf8(render(Method::Post, &url, &h, Some("{\"item\":42}"))).unwrap();
        assert_eq!(
            r,
            format!(
                "POST /api/orders?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: {USER_AGENT}\r\ncontent-type: application/json\r\nContent-Length: 11\r\n\r\n{{\"item\":42}}"
            )
        );
    }

    #[test]
    fn user_host_wins_and_get_has_no_length() {
        let url = HttpUrl::parse("http://127.0.0.1/").unwrap();
        let mut h = BTreeMap::new();
        h.insert("HOST".to_string(), "example.test".to_string());
        let r = String::from_utf8(render(Method::Get, &url, &h, None)).unwrap();
        assert!(!r.contains("Host: 127.0.0.1"));
        assert!(r.contains("HOST: example.test\r\n"));
        assert!(!r.contains("Content-Length"));
        assert!(r.ends_with("\r\n\r\n"));
    }

    #[test]
    fn a_template_of_literals_renders_what_render_does() {
        use std::sync::atomic::AtomicU64;
        let url = HttpUrl::parse("http://127.0.0.1:8080/api/orders?x=1").unwrap();
        let mut h = BTreeMap::new();
        h.insert("content-type".to_string(), "application/json".to_string());
        for (method, body) in [
            (Method::Post, Some("{\"item\":42}")),
            (Method::Post, None),
            (Method::Get, None),
            (Method::Get, Some("x")),
        ] {
            let want = render(method, &url, &h, body);
            let t = RequestTemplate::new(
                method,
                &url,
                Template::literal(url.path.as_bytes()),
                h.iter()
                    .map(|(k, v)| (k.clone(), Template::literal(v.as_bytes())))
                    .collect(),
                body.map(|b| Template::literal(b.as_bytes())),
            );
            let seq = AtomicU64::new(0);
            let mut rng = fastrand::Rng::with_seed(1);
            let mut ctx = Ctx::new(&seq, &mut rng);
            let mut out = Vec::new();
            t.render(&mut out, &mut ctx, None).unwrap();
            assert_eq!(
                String::from_utf8(out.clone()).unwrap(),
                String::from_utf8(want).unwrap()
            );
            // with a jar, its cookies for the path come before the length
            let mut jar = Jar::default();
            jar.store("h", b"sid=1; Path=/api", "/", std::time::SystemTime::now());
            t.render(&mut out, &mut ctx, Some((&jar, "h"))).unwrap();
            let text = String::from_utf8(out.clone()).unwrap();
            assert!(
                text.contains("content-type: application/json\r\nCookie: sid=1\r\n"),
                "{text}"
            );
        }
    }
}
