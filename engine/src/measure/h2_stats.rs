//! What an HTTP/2 row's connections reported besides its requests: the
//! server's GOAWAYs and RST_STREAMs (by error code), the requests retried
//! on another connection (above a GOAWAY's last stream id, or refused
//! with REFUSED_STREAM: never processed, so a retry cannot repeat an
//! effect), how long each connection waited for the server's SETTINGS,
//! and PING round trips. A worker keeps one per `h2` row, allocated at
//! its first event: an HTTP/1.1 row never pays for it.

use crate::stats::Hist;

/// RST_STREAM and GOAWAY codes counted one by one: RFC 9113 §7 defines
/// 0x0–0xd; anything above is pooled as `other`.
pub const CODES: usize = 14;

#[derive(Clone, Debug, Default)]
pub struct H2Stats {
    /// GOAWAY frames received.
    pub goaways: u64,
    /// RST_STREAM frames received, per error code (`CODES` = other).
    pub resets: [u64; CODES + 1],
    /// Requests sent again on a new connection (not counted as requests
    /// until that attempt ends).
    pub retried: u64,
    /// Connect (and TLS handshake) done → the server's first SETTINGS, µs,
    /// once per connection.
    pub settings: Option<Hist>,
    /// PING round trips, µs.
    pub ping_rtt: Option<Hist>,
}

impl H2Stats {
    /// A RST_STREAM with `code`.
    pub fn record_reset(&mut self, code: u32) {
        self.resets[(code as usize).min(CODES)] += 1;
    }

    /// The name of reset slot `i` (the RFC's name, or `other`).
    pub fn code_name(i: usize) -> &'static str {
        if i >= CODES {
            return "other";
        }
        crate::protocol::h2::ErrorCode::from_u32(i as u32).name()
    }

    /// The reset slot named `name` ([`H2Stats::code_name`]'s inverse); a
    /// name it does not know is a code past the ones counted one by one
    /// (`other`).
    pub fn code_slot(name: &str) -> usize {
        (0..CODES)
            .find(|&i| H2Stats::code_name(i) == name)
            .unwrap_or(CODES)
    }

    pub fn add(&mut self, o: &H2Stats) {
        self.goaways += o.goaways;
        for (a, b) in self.resets.iter_mut().zip(o.resets) {
            *a += b;
        }
        self.retried += o.retried;
        for (mine, theirs) in [
            (&mut self.settings, &o.settings),
            (&mut self.ping_rtt, &o.ping_rtt),
        ] {
            if let Some(h) = theirs {
                mine.get_or_insert_with(Hist::new).add(h);
            }
        }
    }

    pub fn reset(&mut self) {
        self.goaways = 0;
        self.resets = [0; CODES + 1];
        self.retried = 0;
        for h in [&mut self.settings, &mut self.ping_rtt]
            .into_iter()
            .flatten()
        {
            h.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_count_by_code_and_pool_unknown_codes() {
        let mut a = H2Stats::default();
        a.record_reset(7);
        a.record_reset(7);
        a.record_reset(0x1234);
        assert_eq!((a.resets[7], a.resets[CODES]), (2, 1));
        assert_eq!(H2Stats::code_name(7), "REFUSED_STREAM");
        assert_eq!(H2Stats::code_name(CODES), "other");
        for i in 0..=CODES {
            assert_eq!(H2Stats::code_slot(H2Stats::code_name(i)), i);
        }
        assert_eq!(H2Stats::code_slot("SOMETHING_NEWER"), CODES);
        let mut b = H2Stats::default();
        b.add(&a);
        b.add(&a);
        assert_eq!(b.resets[7], 4);
        b.reset();
        assert_eq!(b.resets.iter().sum::<u64>(), 0);
    }
}
