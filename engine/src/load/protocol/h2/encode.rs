//! The HPACK encoder for requests (RFC 7541 §6): a field whose name and
//! value are in the static table is one index byte, a static name with
//! another value is an indexed name and a literal value, anything else is
//! a literal name and value — all "without indexing", so we keep no
//! dynamic table, never send a table size update, and a block once encoded
//! stays valid for every request on every connection. That is what lets a
//! static endpoint's request headers be encoded once and reused
//! ([`RequestHead`]). Strings are sent raw (Huffman is optional; servers
//! must decode either).

use super::table::STATIC;

/// Header fields HTTP/2 forbids in a request (RFC 9113 §8.2.2), and
/// `host`, which becomes `:authority`.
const DROPPED: [&[u8]; 6] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
    b"host",
];

/// Writes an integer with an N-bit prefix; `first` holds the bits above
/// the prefix (§5.1).
pub fn write_integer(out: &mut Vec<u8>, first: u8, prefix: u8, mut v: usize) {
    let mask = (1usize << prefix) - 1;
    if v < mask {
        out.push(first | v as u8);
        return;
    }
    out.push(first | mask as u8);
    v -= mask;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    write_integer(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// Appends one field; `name` must be lower case already.
pub fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let mut by_name = 0;
    for (i, &(n, v)) in STATIC.iter().enumerate() {
        if n == name {
            if v == value {
                write_integer(out, 0x80, 7, i + 1);
                return;
            }
            if by_name == 0 {
                by_name = i + 1;
            }
        }
    }
    // Literal without indexing (§6.2.2).
    write_integer(out, 0x00, 4, by_name);
    if by_name == 0 {
        write_string(out, name);
    }
    write_string(out, value);
}

/// A request's header block, encoded once. `headers` are the request's
/// fields as the config writes them: names are lower-cased, and fields
/// HTTP/2 forbids (`connection`, `transfer-encoding`, …) and `host` (the
/// `authority` argument carries it) are left out; `te` is kept only as
/// `trailers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    block: Vec<u8>,
}

impl RequestHead {
    pub fn new<'a>(
        method: &str,
        scheme: &str,
        authority: &str,
        path: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> RequestHead {
        let mut block = Vec::with_capacity(64);
        encode_request(&mut block, method, scheme, authority, path, headers);
        RequestHead { block }
    }

    /// The encoded block, for [`super::Session::open`].
    pub fn block(&self) -> &[u8] {
        &self.block
    }
}

/// Appends a request's header block to `out` (see [`RequestHead`]); for
/// templated requests, into a buffer the caller reuses.
pub fn encode_request<'a>(
    out: &mut Vec<u8>,
    method: &str,
    scheme: &str,
    authority: &str,
    path: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    write_field(out, b":method", method.as_bytes());
    write_field(out, b":scheme", scheme.as_bytes());
    write_field(out, b":authority", authority.as_bytes());
    write_field(out, b":path", path.as_bytes());
    let mut lower = [0u8; 64];
    for (name, value) in headers {
        let n = name.as_bytes();
        let mut owned;
        let n: &[u8] = if n.len() <= lower.len() {
            let l = &mut lower[..n.len()];
            l.copy_from_slice(n);
            l.make_ascii_lowercase();
            l
        } else {
            owned = n.to_vec();
            owned.make_ascii_lowercase();
            &owned
        };
        if DROPPED.contains(&n) || (n == b"te" && !value.eq_ignore_ascii_case("trailers")) {
            continue;
        }
        write_field(out, n, value.trim().as_bytes());
    }
}

/// Most header fields a rendered request may carry into HTTP/2.
const MAX_FIELDS: usize = 128;

/// Encodes a rendered HTTP/1.1 request (what the plan and the templates
/// render for every protocol) as an HTTP/2 header block appended to
/// `block`, with `scheme`; `Host` becomes `:authority`. Returns where the
/// body starts in `request` (the rest of it is the body). One rendering
/// path serves both protocols: a static request is converted once when the
/// plan is built, a templated one after each rendering.
pub fn from_h1(request: &[u8], scheme: &str, block: &mut Vec<u8>) -> Result<usize, &'static str> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut fields);
    let head = match req.parse(request) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("the rendered request has no end of head"),
        Err(httparse::Error::TooManyHeaders) => return Err("more than 128 header fields"),
        Err(_) => return Err("the rendered request is not valid HTTP"),
    };
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Err("the rendered request has no request line");
    };
    let authority = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .unwrap_or("");
    let mut headers = [("", ""); MAX_FIELDS];
    let mut n = 0;
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            return Err("a header value is not UTF-8");
        };
        headers[n] = (h.name, value);
        n += 1;
    }
    encode_request(
        block,
        method,
        scheme,
        authority,
        path,
        headers[..n].iter().copied(),
    );
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::super::hpack::Decoder;
    use super::*;

    fn decode(block: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        Decoder::new()
            .decode(block, |n, v| {
                out.push((
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                ))
            })
            .unwrap();
        out
    }

    #[test]
    fn encodes_the_rfc_example_request_as_indexes_and_literals() {
        // C.2.4 and the start of C.3.1 (without indexing here).
        let h = RequestHead::new("GET", "http", "www.example.com", "/", []);
        assert_eq!(&h.block()[..3], &[0x82, 0x86, 0x01]);
        assert_eq!(h.block()[3], 15);
        assert_eq!(&h.block()[4..19], b"www.example.com");
        assert_eq!(h.block()[19], 0x84);
        assert_eq!(h.block().len(), 20);
    }

    #[test]
    fn round_trips_through_the_decoder_dropping_forbidden_fields() {
        let long_name = "X-".to_string() + &"a".repeat(100);
        let h = RequestHead::new(
            "POST",
            "https",
            "localhost:8080",
            "/api/items?id=1",
            [
                ("Content-Type", "application/json"),
                ("Host", "elsewhere"),
                ("Connection", "keep-alive"),
                ("TE", "gzip"),
                ("te", "trailers"),
                ("accept-encoding", "gzip, deflate"),
                (long_name.as_str(), &"v".repeat(300)),
            ],
        );
        let got = decode(h.block());
        let want: Vec<(String, String)> = [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "localhost:8080"),
            (":path", "/api/items?id=1"),
            ("content-type", "application/json"),
            ("te", "trailers"),
            ("accept-encoding", "gzip, deflate"),
            (&long_name.to_ascii_lowercase(), &"v".repeat(300)),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        // POST and accept-encoding: gzip, deflate are whole static entries
        assert_eq!(h.block()[0], 0x83);
        assert!(h.block().windows(1).any(|w| w[0] == 0x80 | 16));
    }

    #[test]
    fn a_rendered_http1_request_becomes_a_block_and_its_body() {
        let req = b"POST /api/login?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: 7\r\nConnection: keep-alive\r\n\r\n{\"a\":1}";
        let mut block = Vec::new();
        let at = from_h1(req, "http", &mut block).unwrap();
        assert_eq!(&req[at..], b"{\"a\":1}");
        let got = decode(&block);
        let names: Vec<_> = got.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(
            names,
            [
                ":method=POST",
                ":scheme=http",
                ":authority=127.0.0.1:8080",
                ":path=/api/login?x=1",
                "content-type=application/json",
                "content-length=7"
            ]
        );
        assert!(from_h1(b"GET / HTTP/1.1\r\n", "http", &mut Vec::new()).is_err());
    }

    #[test]
    fn integers_round_trip_at_every_prefix() {
        for prefix in 1..=8u8 {
            for v in [
                0usize,
                1,
                30,
                31,
                126,
                127,
                128,
                254,
                255,
                1337,
                1 << 20,
                u32::MAX as usize,
            ] {
                let mut out = Vec::new();
                write_integer(&mut out, 0, prefix, v);
                let mut at = 0;
                assert_eq!(super::super::hpack::integer(&out, &mut at, prefix), Ok(v));
                assert_eq!(at, out.len());
            }
        }
    }
}
