//! `Server-Timing` (W3C): the time a server says it spent, per named part,
//! e.g. `payments;dur=8.3, inventory;dur=2.9;desc="cache miss"`. A gateway
//! that fans out to services names each call here, so Userflux can say
//! which downstream service made a slow response slow (issue #17).
//!
//! The framer copies the raw header values of a response (only for
//! endpoints that collect them; the only cost otherwise is one header-name
//! comparison); [`parse`] walks them once the response is complete, and
//! [`Timings`] keeps one latency histogram per metric name per endpoint
//! next to the measured latency. A malformed entry is counted, never an
//! error of the request.

use crate::stats::{Hist, MAX_LATENCY_US};

/// Most metric names kept per endpoint; further names are counted under
/// [`OTHER`] (a server that puts ids in names must not grow memory).
pub const MAX_METRICS: usize = 32;
/// Where metrics past [`MAX_METRICS`] are counted.
pub const OTHER: &str = "other";

/// Calls `entry(name, dur_ms)` for each metric of a `Server-Timing` value
/// (several headers joined by commas are one value); `dur_ms` is `None`
/// when the metric has no `dur`. Returns how many entries were malformed
/// (no name, a bad `dur`, an unterminated quote), which are skipped.
pub fn parse(value: &[u8], mut entry: impl FnMut(&[u8], Option<f64>)) -> u32 {
    let mut malformed = 0;
    let mut p = Parser { s: value, i: 0 };
    loop {
        p.skip_ws();
        if p.done() {
            return malformed;
        }
        if p.peek() == Some(b',') {
            p.i += 1; // an empty list element is allowed
            continue;
        }
        match p.metric() {
            Some((name, dur)) => entry(name, dur),
            None => {
                malformed += 1;
                p.skip_to_comma();
            }
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// A quoted string, escapes allowed; false when it never ends.
    fn quoted(&mut self) -> bool {
        self.i += 1; // the opening quote
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => return true,
                b'\\' => self.i += 1,
                _ => {}
            }
        }
        false
    }

    /// One `name *( ";" param )` entry, up to (not past) its comma; `None`
    /// when malformed.
    fn metric(&mut self) -> Option<(&'a [u8], Option<f64>)> {
        let name = self.token();
        if name.is_empty() {
            return None;
        }
        let mut dur = None;
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Some((name, dur)),
                Some(b',') => {
                    self.i += 1;
                    return Some((name, dur));
                }
                Some(b';') => self.i += 1,
                Some(_) => return None,
            }
            self.skip_ws();
            let param = self.token();
            if param.is_empty() {
                return None;
            }
            self.skip_ws();
            if self.peek() != Some(b'=') {
                continue; // a parameter without a value
            }
            self.i += 1;
            self.skip_ws();
            let value = if self.peek() == Some(b'"') {
                let start = self.i;
                if !self.quoted() {
                    return None;
                }
                &self.s[start + 1..self.i - 1]
            } else {
                self.token()
            };
            // W3C Server Timing: a parameter named again is ignored, so
            // the first `dur` wins (issue #27)
            if param.eq_ignore_ascii_case(b"dur") && dur.is_none() {
                dur = Some(parse_ms(value)?);
            }
        }
    }

    fn skip_to_comma(&mut self) {
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b',' => return,
                b'"' => {
                    self.i -= 1;
                    if !self.quoted() {
                        return;
                    }
                }
                _ => {}
            }
        }
    }
}

/// RFC 9110 `tchar`, as a table: this runs for every byte of every
/// response's Server-Timing.
fn is_tchar(b: u8) -> bool {
    const TABLE: [bool; 256] = {
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            let b = i as u8;
            t[i] = b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                );
            i += 1;
        }
        t
    };
    TABLE[b as usize]
}

/// A `dur` in milliseconds (a non-negative decimal number), as whole
/// microseconds: digits past the third decimal are rounded. Integer
/// arithmetic, not `f64::from_str`: this runs for every entry of every
/// response (`cargo bench --bench hot_path server_timing`).
fn parse_ms(v: &[u8]) -> Option<f64> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &v[..0]),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if !digits(int) || !digits(frac) || int.len() > 12 {
        return None;
    }
    let mut us = int.iter().fold(0u64, |a, &d| a * 10 + u64::from(d - b'0')) * 1000;
    let mut scale = 100;
    for &d in frac.iter().take(3) {
        us += u64::from(d - b'0') * scale;
        scale /= 10;
    }
    if frac.get(3).is_some_and(|&d| d >= b'5') {
        us += 1;
    }
    Some(us as f64 / 1000.0)
}

/// Per endpoint: one histogram (µs) per metric name, at most
/// [`MAX_METRICS`] names plus [`OTHER`], and the count of malformed entries.
#[derive(Clone, Debug, Default)]
pub struct Timings {
    /// Names in the order first seen; `hists[i]` belongs to `names[i]`.
    pub names: Vec<Box<str>>,
    pub hists: Vec<Hist>,
    pub malformed: u64,
}

impl Timings {
    /// Records the metrics of one response's raw `Server-Timing` value.
    pub fn record(&mut self, value: &[u8]) {
        let malformed = parse(value, |name, dur| {
            if let Some(ms) = dur {
                self.add_one(name, ms);
            }
        });
        self.malformed += u64::from(malformed);
    }

    fn add_one(&mut self, name: &[u8], ms: f64) {
        let us = (ms * 1000.0).round().clamp(0.0, MAX_LATENCY_US as f64) as u64;
        // Names are tokens (ASCII) by the grammar, so a byte compare finds
        // a known one without decoding it.
        let i = match self.names.iter().position(|n| n.as_bytes() == name) {
            Some(i) => i,
            None => {
                let Ok(name) = std::str::from_utf8(name) else {
                    self.malformed += 1;
                    return;
                };
                let name = name.to_string();
                self.index_of(&name)
            }
        };
        self.hists[i].record(us);
    }

    /// The histogram for `name`, created on first sight (or [`OTHER`]'s
    /// once [`MAX_METRICS`] names are taken).
    fn slot(&mut self, name: &str) -> &mut Hist {
        let i = self.index_of(name);
        &mut self.hists[i]
    }

    fn index_of(&mut self, name: &str) -> usize {
        match self.names.iter().position(|n| &**n == name) {
            Some(i) => i,
            None if self.names.len() < MAX_METRICS || name == OTHER => {
                self.names.push(name.into());
                self.hists.push(Hist::new());
                self.names.len() - 1
            }
            None => match self.names.iter().position(|n| &**n == OTHER) {
                Some(i) => i,
                None => {
                    self.names.push(OTHER.into());
                    self.hists.push(Hist::new());
                    self.names.len() - 1
                }
            },
        }
    }

    /// Adds `other`'s histograms, name by name.
    pub fn add(&mut self, other: &Timings) {
        for (name, h) in other.names.iter().zip(&other.hists) {
            if !h.is_empty() {
                self.slot(name).add(h);
            }
        }
        self.malformed += other.malformed;
    }

    /// Empties the counts, keeping names and histograms for reuse.
    pub fn reset(&mut self) {
        for h in &mut self.hists {
            h.reset();
        }
        self.malformed = 0;
    }

    /// Each metric with something recorded, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Hist)> {
        self.names
            .iter()
            .zip(&self.hists)
            .filter(|(_, h)| !h.is_empty())
            .map(|(n, h)| (&**n, h))
    }

    pub fn is_empty(&self) -> bool {
        self.malformed == 0 && self.hists.iter().all(Hist::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(v: &str) -> (Vec<(String, Option<f64>)>, u32) {
        let mut out = Vec::new();
        let bad = parse(v.as_bytes(), |n, d| {
            out.push((String::from_utf8(n.to_vec()).unwrap(), d))
        });
        (out, bad)
    }

    #[test]
    fn parses_the_w3c_grammar() {
        type Case<'a> = (&'a str, &'a [(&'a str, Option<f64>)], u32);
        let cases: &[Case<'_>] = &[
            ("payments;dur=8.3", &[("payments", Some(8.3))], 0),
            (
                "payments;dur=8.3, inventory;dur=2.9",
                &[("payments", Some(8.3)), ("inventory", Some(2.9))],
                0,
            ),
            // spacing, parameter order, quoted desc with a comma and an escape
            (
                " db ; desc=\"a, \\\"b\\\"\" ; dur = 12 ,cache;dur=0",
                &[("db", Some(12.0)), ("cache", Some(0.0))],
                0,
            ),
            ("miss", &[("miss", None)], 0),
            (
                "cpu;dur=2.5;desc=x, , edge",
                &[("cpu", Some(2.5)), ("edge", None)],
                0,
            ),
            ("DUR;DUR=1", &[("DUR", Some(1.0))], 0),
            // the first dur wins, a later one is ignored (even a bad one)
            (
                "a;dur=1;dur=2, b;dur=3;DUR=4",
                &[("a", Some(1.0)), ("b", Some(3.0))],
                0,
            ),
            ("a;desc=x;dur=5;dur=zz", &[("a", Some(5.0))], 0),
            // malformed entries are skipped and counted, the rest kept
            ("a;dur=abc, b;dur=1", &[("b", Some(1.0))], 1),
            ("a;dur=-1, b;dur=2", &[("b", Some(2.0))], 1),
            (
                "a;dur=1.2.3, b;dur=.5, c;dur=7.",
                &[("b", Some(0.5)), ("c", Some(7.0))],
                1,
            ),
            (
                "a;dur=0.0004, b;dur=0.0005, c;dur=12.3456",
                &[("a", Some(0.0)), ("b", Some(0.001)), ("c", Some(12.346))],
                0,
            ),
            ("=x, b;dur=3", &[("b", Some(3.0))], 1),
            ("a;desc=\"never ends", &[], 1),
            ("a b;dur=1, c;dur=4", &[("c", Some(4.0))], 1),
            ("", &[], 0),
        ];
        for (value, want, bad) in cases {
            let (got, n) = entries(value);
            let want: Vec<(String, Option<f64>)> =
                want.iter().map(|(n, d)| (n.to_string(), *d)).collect();
            assert_eq!((&got, n), (&want, *bad), "{value:?}");
        }
    }

    #[test]
    fn keeps_a_histogram_per_name_and_caps_the_names() {
        let mut t = Timings::default();
        t.record(b"payments;dur=8.3, inventory;dur=2.9");
        t.record(b"payments;dur=10");
        let got: Vec<(&str, u64)> = t.iter().map(|(n, h)| (n, h.len())).collect();
        assert_eq!(got, vec![("payments", 2), ("inventory", 1)]);
        assert_eq!(
            t.hists[0].hdr().max(),
            10_007,
            "µs, to 3 significant digits"
        );
        for i in 0..40 {
            t.record(format!("m{i};dur=1").as_bytes());
        }
        assert_eq!(t.names.len(), MAX_METRICS + 1);
        let other = t.iter().find(|(n, _)| *n == OTHER).unwrap().1;
        assert_eq!(other.len(), 40 - (MAX_METRICS as u64 - 2));
        t.record(b"x;dur=zz");
        assert_eq!(t.malformed, 1);
        let mut sum = Timings::default();
        sum.add(&t);
        sum.add(&t);
        assert_eq!(
            sum.iter().find(|(n, _)| *n == "payments").unwrap().1.len(),
            4
        );
        assert_eq!(sum.malformed, 2);
        t.reset();
        assert!(t.is_empty() && t.names.len() == MAX_METRICS + 1);
    }
}
