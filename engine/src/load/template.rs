//! `{{ expr }}` templates in an endpoint's or a flow step's path, header
//! values and body: parsed once when the config loads, rendered into a
//! buffer the connection owns for every request.
//!
//! A template is a list of literal bytes and expressions. Rendering writes
//! them in order; nothing is allocated once the buffer has grown to the
//! request's size. A request without `{{` is no template at all: it keeps
//! today's pre-rendered bytes (see `request::render`).
//!
//! Expressions: `vu`, `iteration`, `seq`, `uuid`, `rand_int(a,b)`,
//! `rand_str(n)`, `now_ms`, `env.NAME` (read once, at parse time: it
//! becomes a literal), `data.SET.COLUMN` and `vars.NAME`. One `seq` is
//! taken per request, so `{{seq}}` twice in one request is the same number;
//! `uuid`, `rand_int` and `rand_str` are drawn anew at each use.
//!
//! Postman's dynamic variables are aliases, so a collection's (or a Tressi
//! config's) `{{$timestamp}}` runs as written: `$timestamp` (Unix seconds),
//! `$isoTimestamp` (UTC, ISO 8601 with milliseconds), `$guid` (`uuid`) and
//! `$randomInt` (`rand_int(0,1000)`, Postman's range).

use crate::data::DataSet;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest `rand_str(n)`.
pub const MAX_RAND_STR: u32 = 4096;

/// One `{{ }}` expression, resolved to indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Vu,
    Iteration,
    Seq,
    Uuid,
    RandInt(i64, i64),
    RandStr(u32),
    NowMs,
    /// `$timestamp`: Unix time in seconds.
    NowS,
    /// `$isoTimestamp`: `2026-12-03T07:45:06.123Z`.
    NowIso,
    /// Column `col` of the current row of data set `set`.
    Data {
        set: usize,
        col: usize,
    },
    /// The flow's captured value number `n` (see [`Scope::vars`]).
    Var(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(Box<[u8]>),
    Expr(Expr),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pub parts: Vec<Part>,
}

/// What names a template may use where it appears.
pub struct Scope<'a> {
    /// The run's data sets, in index order.
    pub data: &'a [std::sync::Arc<DataSet>],
    /// In a flow step: the names captured by earlier steps (index = the
    /// value's number in [`Vars`]), and every name the flow captures (to
    /// tell "later step" from "no step"). `None` outside a flow.
    pub vars: Option<(&'a [String], &'a [String])>,
    /// Environment variables (`std::env::var` in a run; a map in tests).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Template {
    /// Whether text holds a template at all (else it is sent as it is).
    pub fn is_templated(text: &str) -> bool {
        text.contains("{{")
    }

    /// A template of literal text only.
    pub fn literal(text: &[u8]) -> Template {
        let mut t = Template::default();
        t.push_lit(text);
        t
    }

    /// Parses `text`; the error says what is wrong (the caller adds the
    /// field path).
    pub fn parse(text: &str, scope: &Scope<'_>) -> Result<Template, String> {
        let mut t = Template::default();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            t.push_lit(&rest.as_bytes()[..open]);
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(format!(
                    "\"{{{{\" without a closing \"}}}}\" in \"{}\"",
                    clip(&rest[open..])
                ));
            };
            let inner = after[..close].trim();
            match parse_expr(inner, scope)? {
                Resolved::Expr(e) => t.parts.push(Part::Expr(e)),
                Resolved::Text(s) => t.push_lit(s.as_bytes()),
            }
            rest = &after[close + 2..];
        }
        t.push_lit(rest.as_bytes());
        Ok(t)
    }

    /// Appends another template's parts (literals joined).
    pub fn append(&mut self, other: Template) {
        for p in other.parts {
            match p {
                Part::Lit(b) => self.push_lit(&b),
                e => self.parts.push(e),
            }
        }
    }

    fn push_lit(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        if let Some(Part::Lit(last)) = self.parts.last_mut() {
            let mut v = std::mem::take(last).into_vec();
            v.extend_from_slice(b);
            *last = v.into_boxed_slice();
        } else {
            self.parts.push(Part::Lit(b.into()));
        }
    }

    /// Whether any part is an expression (else the text is fixed).
    pub fn is_dynamic(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Expr(_)))
    }

    /// Every expression, for what a request needs before it renders (a
    /// `seq`, data rows).
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e),
            Part::Lit(_) => None,
        })
    }

    /// The literal text, when there is no expression.
    pub fn fixed(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for p in &self.parts {
            match p {
                Part::Lit(b) => out.extend_from_slice(b),
                Part::Expr(_) => return None,
            }
        }
        Some(out)
    }

    /// Writes the template into `out`. A captured value (`vars.`) with a
    /// byte `forbidden` refuses (it would break the request line or a
    /// header): the error names the variable.
    pub fn render(
        &self,
        out: &mut Vec<u8>,
        ctx: &mut Ctx<'_>,
        forbidden: fn(u8) -> bool,
    ) -> Result<(), RenderError> {
        for p in &self.parts {
            match p {
                Part::Lit(b) => out.extend_from_slice(b),
                Part::Expr(e) => ctx.write(e, out, forbidden)?,
            }
        }
        Ok(())
    }
}

/// A captured value could not be put into a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderError {
    /// Value number `n` was captured with a byte the request line or a
    /// header cannot carry (CR, LF, NUL; spaces in a path).
    Unsafe(usize),
    /// Value number `n` was not captured in this iteration.
    Missing(usize),
}

/// Captured values of one flow iteration: one buffer, a range per name.
#[derive(Debug, Default)]
pub struct Vars {
    buf: Vec<u8>,
    spans: Vec<Option<(u32, u32)>>,
}

impl Vars {
    pub fn new(n: usize) -> Vars {
        Vars {
            buf: Vec::new(),
            spans: vec![None; n],
        }
    }

    /// Forgets every value (a new iteration); keeps the buffer.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.spans.iter_mut().for_each(|s| *s = None);
    }

    pub fn set(&mut self, n: usize, value: &[u8]) {
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(value);
        self.spans[n] = Some((start, self.buf.len() as u32));
    }

    pub fn get(&self, n: usize) -> Option<&[u8]> {
        let (a, b) = self.spans.get(n).copied().flatten()?;
        Some(&self.buf[a as usize..b as usize])
    }
}

/// What rendering reads besides the template.
pub struct Ctx<'a> {
    pub vu: u64,
    pub iteration: u64,
    /// The request's `seq`, taken from `seq_source` at its first use.
    pub seq: Option<u64>,
    pub seq_source: &'a AtomicU64,
    /// A shard's `seq` values interleave with the other shards'.
    pub shard: Option<crate::shard::Shard>,
    pub rng: &'a mut fastrand::Rng,
    pub data: &'a [std::sync::Arc<DataSet>],
    /// The current row of each data set (by set index).
    pub rows: &'a [u32],
    pub vars: Option<&'a Vars>,
}

impl<'a> Ctx<'a> {
    /// VU 0, iteration 0, no data sets, variables or shard (set the fields
    /// a render needs over it).
    pub fn new(seq_source: &'a AtomicU64, rng: &'a mut fastrand::Rng) -> Ctx<'a> {
        Ctx {
            vu: 0,
            iteration: 0,
            seq: None,
            seq_source,
            shard: None,
            rng,
            data: &[],
            rows: &[],
            vars: None,
        }
    }
}

impl Ctx<'_> {
    fn write(
        &mut self,
        e: &Expr,
        out: &mut Vec<u8>,
        forbidden: fn(u8) -> bool,
    ) -> Result<(), RenderError> {
        let mut num = itoa::Buffer::new();
        match *e {
            Expr::Vu => out.extend_from_slice(num.format(self.vu).as_bytes()),
            Expr::Iteration => out.extend_from_slice(num.format(self.iteration).as_bytes()),
            Expr::Seq => {
                let (src, shard) = (self.seq_source, self.shard);
                let n = *self.seq.get_or_insert_with(|| {
                    let j = src.fetch_add(1, Ordering::Relaxed);
                    shard.map_or(j, |s| s.nth(j))
                });
                out.extend_from_slice(num.format(n).as_bytes());
            }
            Expr::Uuid => write_uuid(self.rng.u128(..), out),
            Expr::RandInt(a, b) => {
                out.extend_from_slice(num.format(self.rng.i64(a..=b)).as_bytes())
            }
            Expr::RandStr(n) => {
                for _ in 0..n {
                    out.push(self.rng.alphanumeric() as u8);
                }
            }
            Expr::NowMs => {
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                out.extend_from_slice(num.format(ms).as_bytes());
            }
            Expr::NowS => {
                let s = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                out.extend_from_slice(num.format(s).as_bytes());
            }
            Expr::NowIso => {
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                write_iso(ms, out);
            }
            Expr::Data { set, col } => {
                let row = self.rows.get(set).copied().unwrap_or(0) as usize;
                out.extend_from_slice(self.data[set].cell(row, col).as_bytes());
            }
            Expr::Var(n) => {
                let v = self
                    .vars
                    .and_then(|v| v.get(n))
                    .ok_or(RenderError::Missing(n))?;
                if v.iter().any(|&b| forbidden(b)) {
                    return Err(RenderError::Unsafe(n));
                }
                out.extend_from_slice(v);
            }
        }
        Ok(())
    }
}

/// Bytes a header value cannot carry.
pub fn unsafe_in_header(b: u8) -> bool {
    b == b'\r' || b == b'\n' || b == 0
}

/// Bytes a request target cannot carry.
pub fn unsafe_in_path(b: u8) -> bool {
    b <= b' ' || b == 0x7f
}

/// Anything goes in a body.
pub fn unsafe_in_body(_: u8) -> bool {
    false
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC; the civil date by
/// Howard Hinnant's `civil_from_days`).
fn write_iso(ms: u64, out: &mut Vec<u8>) {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ms % 1000
    );
}

/// A version 4 UUID from 128 random bits, in its hyphenated form.
fn write_uuid(bits: u128, out: &mut Vec<u8>) {
    // version 4 in bits 48..52, variant 10 in bits 64..66 (RFC 9562 §5.4)
    let v = (bits & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let _ = write!(
        out,
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (v >> 96) as u32,
        (v >> 80) as u16,
        (v >> 64) as u16,
        (v >> 48) as u16,
        v as u64 & 0xFFFF_FFFF_FFFF
    );
}

enum Resolved {
    Expr(Expr),
    /// `env.NAME`: read once, a literal from then on.
    Text(String),
}

const KNOWN: &str = "vu, iteration, seq, uuid, rand_int(a,b), rand_str(n), now_ms, env.NAME, data.SET.COLUMN, vars.NAME; Postman's $timestamp, $isoTimestamp, $guid, $randomInt";

fn parse_expr(s: &str, scope: &Scope<'_>) -> Result<Resolved, String> {
    let simple = match s {
        "vu" => Some(Expr::Vu),
        "iteration" => Some(Expr::Iteration),
        "seq" => Some(Expr::Seq),
        "uuid" => Some(Expr::Uuid),
        "now_ms" => Some(Expr::NowMs),
        // Postman's dynamic variables (see the module's doc).
        "$timestamp" => Some(Expr::NowS),
        "$isoTimestamp" => Some(Expr::NowIso),
        "$guid" => Some(Expr::Uuid),
        "$randomInt" => Some(Expr::RandInt(0, 1000)),
        _ => None,
    };
    if let Some(e) = simple {
        return Ok(Resolved::Expr(e));
    }
    if s.is_empty() {
        return Err("empty \"{{ }}\"".into());
    }
    if let Some(name) = s.strip_prefix("env.") {
        return match (scope.env)(name) {
            Some(v) => Ok(Resolved::Text(v)),
            None => Err(format!(
                "environment variable {name} is not set (\"{{{{env.{name}}}}}\")"
            )),
        };
    }
    if let Some(rest) = s.strip_prefix("data.") {
        let Some((set, col)) = rest.split_once('.') else {
            return Err(format!("\"{s}\": write data.SET.COLUMN"));
        };
        let Some(si) = scope.data.iter().position(|d| d.name == set) else {
            let known: Vec<&str> = scope.data.iter().map(|d| d.name.as_str()).collect();
            return Err(if known.is_empty() {
                format!("unknown data set \"{set}\" (the config has no \"data\")")
            } else {
                format!(
                    "unknown data set \"{set}\" (the config's: {})",
                    known.join(", ")
                )
            });
        };
        let d = &scope.data[si];
        let Some(ci) = d.columns.iter().position(|c| c == col) else {
            return Err(format!(
                "data set \"{set}\" ({}) has no column \"{col}\" (its columns: {})",
                d.path.display(),
                d.columns.join(", ")
            ));
        };
        return Ok(Resolved::Expr(Expr::Data { set: si, col: ci }));
    }
    if let Some(name) = s.strip_prefix("vars.") {
        let Some((before, all)) = scope.vars else {
            return Err(format!(
                "\"vars.{name}\" outside a flow: only a flow's steps capture values"
            ));
        };
        return match before.iter().position(|v| v == name) {
            Some(i) => Ok(Resolved::Expr(Expr::Var(i))),
            None if all.iter().any(|v| v == name) => Err(format!(
                "\"vars.{name}\" is captured by a later step, not an earlier one"
            )),
            None => Err(format!(
                "unknown variable \"vars.{name}\" (captured before this step: {})",
                if before.is_empty() {
                    "none".to_string()
                } else {
                    before.join(", ")
                }
            )),
        };
    }
    if let Some(open) = s.find('(') {
        let name = s[..open].trim();
        let Some(args) = s[open + 1..].strip_suffix(')') else {
            return Err(format!("\"{s}\": missing \")\""));
        };
        let args: Vec<&str> = args.split(',').map(str::trim).collect();
        let int = |a: &str| {
            a.parse::<i64>()
                .map_err(|_| format!("{name}: \"{a}\" is not an integer"))
        };
        return match name {
            "rand_int" => {
                if args.len() != 2 {
                    return Err(format!(
                        "rand_int takes two integers (a, b), got {}",
                        args.len()
                    ));
                }
                let (a, b) = (int(args[0])?, int(args[1])?);
                if a > b {
                    return Err(format!(
                        "rand_int({a},{b}): the first must not exceed the second"
                    ));
                }
                Ok(Resolved::Expr(Expr::RandInt(a, b)))
            }
            "rand_str" => {
                if args.len() != 1 {
                    return Err(format!(
                        "rand_str takes one length, got {} arguments",
                        args.len()
                    ));
                }
                let n = int(args[0])?;
                if !(1..=MAX_RAND_STR as i64).contains(&n) {
                    return Err(format!(
                        "rand_str({n}): the length must be 1 to {MAX_RAND_STR}"
                    ));
                }
                Ok(Resolved::Expr(Expr::RandStr(n as u32)))
            }
            _ => Err(format!("unknown function \"{name}\" (known: {KNOWN})")),
        };
    }
    if let Some(ours) = ghz_name(s) {
        return Err(format!(
            "unknown variable \"{s}\": ghz's {{{{{s}}}}} is {{{{{ours}}}}} here (known: {KNOWN})"
        ));
    }
    Err(format!("unknown variable \"{s}\" (known: {KNOWN})"))
}

/// Ours for a ghz template name (its Go template's call data and its
/// sprig-style helpers), as a ghz user types them in `-d`.
fn ghz_name(s: &str) -> Option<&'static str> {
    Some(match s.split_whitespace().next()? {
        ".RequestNumber" => "seq",
        ".WorkerID" => "vu",
        ".UUID" => "uuid",
        ".TimestampUnixMilli" => "now_ms",
        ".TimestampUnix" => "$timestamp",
        ".Timestamp" => "$isoTimestamp",
        "randomString" => "rand_str(n)",
        "randomInt" => "rand_int(a,b)",
        _ => return None,
    })
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cret".to_string())
    }

    fn users() -> Arc<DataSet> {
        Arc::new(DataSet::from_rows(
            "users",
            &["name", "id"],
            &[&["ann", "1"], &["bob", "2"], &["cy", "3"]],
        ))
    }

    fn scope<'a>(
        data: &'a [Arc<DataSet>],
        vars: Option<(&'a [String], &'a [String])>,
    ) -> Scope<'a> {
        Scope {
            data,
            vars,
            env: &env,
        }
    }

    fn render(t: &Template, data: &[Arc<DataSet>], rows: &[u32], vars: Option<&Vars>) -> String {
        let seq = AtomicU64::new(41);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut ctx = Ctx {
            vu: 3,
            iteration: 9,
            data,
            rows,
            vars,
            ..Ctx::new(&seq, &mut rng)
        };
        let mut out = Vec::new();
        t.render(&mut out, &mut ctx, unsafe_in_header).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn postman_dynamic_variables_are_aliases() {
        let s = scope(&[], None);
        let t = Template::parse(
            "{{$guid}} {{$randomInt}} {{$timestamp}} {{ $isoTimestamp }}",
            &s,
        )
        .unwrap();
        let exprs: Vec<&Expr> = t.exprs().collect();
        assert_eq!(
            exprs,
            [
                &Expr::Uuid,
                &Expr::RandInt(0, 1000),
                &Expr::NowS,
                &Expr::NowIso
            ]
        );
        let out = render(&t, &[], &[], None);
        let parts: Vec<&str> = out.split(' ').collect();
        assert_eq!(parts[0].len(), 36, "{out}");
        assert!(parts[1].parse::<u32>().unwrap() <= 1000, "{out}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let ts: u64 = parts[2].parse().unwrap();
        assert!(now.abs_diff(ts) <= 2, "{out}");
        assert_eq!(parts[3].len(), 24, "{out}");
        assert!(
            parts[3].ends_with('Z') && parts[3].as_bytes()[10] == b'T',
            "{out}"
        );
        // Unknown `$` names are still errors, naming the aliases.
        let e = Template::parse("{{$randomEmail}}", &s).unwrap_err();
        assert!(e.contains("$timestamp"), "{e}");
    }

    #[test]
    fn iso_timestamps_are_utc_civil_dates() {
        let iso = |ms| {
            let mut v = Vec::new();
            write_iso(ms, &mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        // `date -u -d @951782400` (a leap day of a century leap year)
        assert_eq!(iso(951_782_400_007), "2000-02-29T00:00:00.007Z");
        assert_eq!(iso(1_796_283_906_123), "2026-12-03T07:45:06.123Z");
    }

    #[test]
    fn renders_each_expression() {
        let data = [users()];
        let s = scope(&data, None);
        let t = Template::parse(
            "/u/{{ vu }}/{{iteration}}/{{seq}}-{{seq}}?t={{env.TOKEN}}&n={{data.users.name}}",
            &s,
        )
        .unwrap();
        assert_eq!(render(&t, &data, &[1], None), "/u/3/9/41-41?t=s3cret&n=bob");
        assert!(
            !t.parts
                .iter()
                .any(|p| matches!(p, Part::Lit(b) if b.is_empty()))
        );

        let t = Template::parse("{{rand_int(5, 7)}}", &s).unwrap();
        for _ in 0..50 {
            let n: i64 = render(&t, &data, &[0], None).parse().unwrap();
            assert!((5..=7).contains(&n));
        }
        let t = Template::parse("{{rand_str(12)}}", &s).unwrap();
        let r = render(&t, &data, &[0], None);
        assert_eq!(r.len(), 12);
        assert!(r.bytes().all(|b| b.is_ascii_alphanumeric()));

        let t = Template::parse("{{uuid}}", &s).unwrap();
        let u = render(&t, &data, &[0], None);
        let groups: Vec<&str> = u.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('4'), "version 4: {u}");
        assert!("89ab".contains(&groups[3][..1]), "variant 10: {u}");

        let t = Template::parse("{{now_ms}}", &s).unwrap();
        let ms: u64 = render(&t, &data, &[0], None).parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(now.abs_diff(ms) < 60_000);
    }

    #[test]
    fn text_without_braces_is_one_literal() {
        let s = scope(&[], None);
        let t = Template::parse("/plain?x=1", &s).unwrap();
        assert!(!t.is_dynamic());
        assert_eq!(t.fixed().unwrap(), b"/plain?x=1");
        assert!(!Template::is_templated("/plain?x={1}"));
    }

    #[test]
    fn vars_render_from_the_iteration_and_refuse_unsafe_bytes() {
        let before = vec!["token".to_string()];
        let all = vec!["token".to_string(), "later".to_string()];
        let s = scope(&[], Some((&before, &all)));
        let t = Template::parse("Bearer {{vars.token}}", &s).unwrap();
        let mut vars = Vars::new(1);
        vars.set(0, b"abc");
        assert_eq!(render(&t, &[], &[], Some(&vars)), "Bearer abc");
        vars.clear();
        vars.set(0, b"a\r\nX-Evil: 1");
        let seq = AtomicU64::new(0);
        let mut rng = fastrand::Rng::with_seed(1);
        let mut ctx = Ctx {
            vars: Some(&vars),
            ..Ctx::new(&seq, &mut rng)
        };
        let mut out = Vec::new();
        assert_eq!(
            t.render(&mut out, &mut ctx, unsafe_in_header),
            Err(RenderError::Unsafe(0))
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let data = [users()];
        let before = vec!["token".to_string()];
        let all = vec!["token".to_string(), "cart".to_string()];
        let flow = scope(&data, Some((&before, &all)));
        let plain = scope(&data, None);
        for (text, s, want) in [
            ("{{vars.tokn}}", &flow, "unknown variable \"vars.tokn\""),
            ("{{vars.cart}}", &flow, "captured by a later step"),
            ("{{vars.token}}", &plain, "outside a flow"),
            ("{{rand_itn(1,2)}}", &plain, "unknown function \"rand_itn\""),
            ("{{rand_int(1)}}", &plain, "rand_int takes two integers"),
            ("{{rand_int(9,2)}}", &plain, "must not exceed"),
            ("{{rand_int(a,2)}}", &plain, "\"a\" is not an integer"),
            ("{{rand_str(0)}}", &plain, "length must be 1"),
            (
                "{{data.people.name}}",
                &plain,
                "unknown data set \"people\"",
            ),
            ("{{data.users.email}}", &plain, "has no column \"email\""),
            ("{{data.users}}", &plain, "data.SET.COLUMN"),
            ("{{env.NOPE_NOT_SET}}", &plain, "NOPE_NOT_SET is not set"),
            ("/a/{{vu", &plain, "without a closing"),
            ("{{}}", &plain, "empty"),
            ("{{ whatever }}", &plain, "unknown variable \"whatever\""),
            // ghz's names get ours
            (
                "{{.RequestNumber}}",
                &plain,
                "unknown variable \".RequestNumber\": ghz's {{.RequestNumber}} is {{seq}} here",
            ),
            (
                "{{ .WorkerID }}",
                &plain,
                "ghz's {{.WorkerID}} is {{vu}} here",
            ),
            ("{{.UUID}}", &plain, "ghz's {{.UUID}} is {{uuid}} here"),
        ] {
            let e = Template::parse(text, s).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
