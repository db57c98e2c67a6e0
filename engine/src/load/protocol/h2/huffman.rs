//! The HPACK Huffman code (RFC 7541 §5.2 and Appendix B): decoding what a
//! server sends, encoding for tests and for peers that want it.
//!
//! The code is canonical (codes of one length are consecutive numbers,
//! shorter codes numerically first), so decoding needs no tree: per length,
//! the first code and how many there are, computed at compile time from
//! the RFC's table. The decoder keeps up to 37 bits in a `u64`, looks the
//! top 8 up in a table of the codes of 8 bits or fewer, and otherwise
//! tries lengths 5 to 30 on the top bits; the test
//! `the_table_is_a_complete_canonical_code` pins the property this relies
//! on. Padding must be under 8 bits and all ones (the start of EOS), and
//! EOS itself inside a string is an error (§5.2).

/// Why a Huffman string does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuffmanError {
    /// The EOS symbol appeared inside the string.
    Eos,
    /// The string ended with 8 or more bits of padding, or padding that is
    /// not the start of EOS.
    BadPadding,
}

/// (code aligned to the least significant bit, length in bits) for bytes
/// 0-255 and EOS (256), from RFC 7541 Appendix B.
#[rustfmt::skip]
pub(super) const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28),
    (0xfffffe4, 28), (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28),
    (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28),
    (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28),
    (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28),
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28),
    (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28),
    (0xffffff8, 28), (0xffffff9, 28), (0xffffffa, 28), (0xffffffb, 28),
    (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12),
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11),
    (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11),
    (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6),
    (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6),
    (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6),
    (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8),
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10),
    (0x1ffa, 13), (0x21, 6), (0x5d, 7), (0x5e, 7),
    (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7),
    (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7),
    (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7),
    (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7),
    (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7),
    (0xfc, 8), (0x73, 7), (0xfd, 8), (0x1ffb, 13),
    (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6),
    (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5),
    (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6),
    (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7),
    (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5),
    (0x2b, 6), (0x76, 7), (0x2c, 6), (0x8, 5),
    (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7),
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15),
    (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28),
    (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20),
    (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23),
    (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23),
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23),
    (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23),
    (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23),
    (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23),
    (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24),
    (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22),
    (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21),
    (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24),
    (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), (0x7fffec, 23),
    (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21),
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23),
    (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22),
    (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23),
    (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19),
    (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25),
    (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27),
    (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25),
    (0x7fff2, 19), (0x1fffe3, 21), (0x3ffffe6, 26), (0x7ffffe0, 27),
    (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24),
    (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26),
    (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27),
    (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21),
    (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23),
    (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25), (0x1ffffef, 25),
    (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23),
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26),
    (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27),
    (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27),
    (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26),
    (0x3fffffff, 30),
];

const MIN_LEN: usize = 5;
const MAX_LEN: usize = 30;
const EOS: u16 = 256;

/// The canonical code's shape per length: first code, how many codes, and
/// where their symbols start in `syms` (ordered by code).
struct Canon {
    first: [u32; MAX_LEN + 1],
    count: [u32; MAX_LEN + 1],
    offset: [u32; MAX_LEN + 1],
    syms: [u16; 257],
}

const CANON: Canon = canon();

/// For the next 8 bits: the symbol and its length when its code is 8 bits
/// or shorter (length 0: a longer code, found by the per-length scan).
/// The common header characters (letters, digits, `-./:= `) all have
/// codes of 5-8 bits, so most symbols take one lookup.
const SHORT: [(u8, u8); 256] = short();

const fn short() -> [(u8, u8); 256] {
    let mut t = [(0u8, 0u8); 256];
    let mut sym = 0;
    while sym < 256 {
        let (code, len) = CODES[sym];
        if len <= 8 {
            let shift = 8 - len as u32;
            let base = (code << shift) as usize;
            let mut k = 0;
            while k < (1usize << shift) {
                t[base + k] = (sym as u8, len);
                k += 1;
            }
        }
        sym += 1;
    }
    t
}

const fn canon() -> Canon {
    let mut first = [u32::MAX; MAX_LEN + 1];
    let mut count = [0u32; MAX_LEN + 1];
    let mut i = 0;
    while i < 257 {
        let (code, len) = CODES[i];
        let len = len as usize;
        if code < first[len] {
            first[len] = code;
        }
        count[len] += 1;
        i += 1;
    }
    let mut offset = [0u32; MAX_LEN + 1];
    let mut at = 0;
    let mut len = 0;
    while len <= MAX_LEN {
        offset[len] = at;
        at += count[len];
        len += 1;
    }
    let mut syms = [0u16; 257];
    let mut i = 0;
    while i < 257 {
        let (code, len) = CODES[i];
        let len = len as usize;
        syms[(offset[len] + code - first[len]) as usize] = i as u16;
        i += 1;
    }
    Canon {
        first,
        count,
        offset,
        syms,
    }
}

/// Appends the decoded bytes of `src` to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let c = &CANON;
    let mut acc: u64 = 0;
    let mut bits: usize = 0;
    for &b in src {
        acc = (acc << 8) | b as u64;
        bits += 8;
        'symbols: while bits >= MIN_LEN {
            if bits >= 8 {
                let (sym, len) = SHORT[((acc >> (bits - 8)) & 0xff) as usize];
                if len > 0 {
                    out.push(sym);
                    bits -= len as usize;
                    acc &= (1u64 << bits) - 1;
                    continue 'symbols;
                }
            }
            // With 8 bits or more, the lookup ruled out lengths 5-8.
            let from = if bits >= 8 { 9 } else { MIN_LEN };
            for len in from..=bits.min(MAX_LEN) {
                let code = ((acc >> (bits - len)) as u32) & ((1u32 << len) - 1);
                let k = code.wrapping_sub(c.first[len]);
                if k < c.count[len] {
                    let sym = c.syms[(c.offset[len] + k) as usize];
                    if sym == EOS {
                        return Err(HuffmanError::Eos);
                    }
                    out.push(sym as u8);
                    bits -= len;
                    acc &= (1u64 << bits) - 1;
                    continue 'symbols;
                }
            }
            // Every 30-bit string starts with a code, so fewer bits than
            // that are waiting for the next byte.
            break;
        }
    }
    if bits >= 8 || acc != (1u64 << bits) - 1 {
        return Err(HuffmanError::BadPadding);
    }
    Ok(())
}

/// Appends the Huffman encoding of `src` to `out`, padded with ones.
pub fn encode(src: &[u8], out: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits = 0;
    for &b in src {
        let (code, len) = CODES[b as usize];
        acc = (acc << len) | code as u64;
        bits += len as usize;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        out.push(((acc << (8 - bits)) | (0xff >> bits)) as u8);
    }
}

/// Bytes `src` takes Huffman-encoded.
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src.iter().map(|&b| CODES[b as usize].1 as usize).sum();
    bits.div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_table_is_a_complete_canonical_code() {
        // Kraft sum exactly 1 (in units of 2^-30): no bit string is left
        // without a code, which the decoder's "30 bits always match" needs.
        let kraft: u64 = CODES.iter().map(|&(_, l)| 1u64 << (30 - l)).sum();
        assert_eq!(kraft, 1 << 30);
        let mut order: Vec<usize> = (0..257).collect();
        order.sort_by_key(|&i| (CODES[i].1, CODES[i].0));
        for w in order.windows(2) {
            let (a, la) = CODES[w[0]];
            let (b, lb) = CODES[w[1]];
            assert_eq!(b, (a + 1) << (lb - la), "not canonical at {w:?}");
        }
        assert_eq!(CODES[256], (0x3fff_ffff, 30));
        assert_eq!(CODES[b'/' as usize], (0x18, 6));
    }

    #[test]
    fn decodes_the_rfc_7541_strings() {
        // Appendix C.4 and C.6
        for (h, want) in [
            ("f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"),
            ("a8eb 1064 9cbf", "no-cache"),
            ("25a8 49e9 5ba9 7d7f", "custom-key"),
            ("25a8 49e9 5bb8 e8b4 bf", "custom-value"),
            ("6402", "302"),
            ("aec3 771a 4b", "private"),
            (
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
                "Mon, 21 Oct 2013 20:13:21 GMT",
            ),
            (
                "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
                "https://www.example.com",
            ),
            (
                "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            ),
        ] {
            let mut out = Vec::new();
            decode(&hex(h), &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want);
            let mut back = Vec::new();
            encode(want.as_bytes(), &mut back);
            assert_eq!(back, hex(h), "{want}");
            assert_eq!(encoded_len(want.as_bytes()), back.len());
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for n in 0..all.len() {
            let mut enc = Vec::new();
            encode(&all[..n], &mut enc);
            let mut dec = Vec::new();
            decode(&enc, &mut dec).unwrap();
            assert_eq!(dec, &all[..n]);
        }
    }

    #[test]
    fn whatever_decodes_re_encodes_to_the_same_bytes() {
        // Padding is under 8 bits of ones, so a string that decodes has
        // exactly one encoding: random inputs check the decoder (lookup
        // and scan) against the encoder's plain table walk.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let len = (next() % 12) as usize;
            // bias towards 0xff bytes so long codes and padding show up
            let src: Vec<u8> = (0..len)
                .map(|_| if next() % 3 == 0 { 0xff } else { next() as u8 })
                .collect();
            let mut dec = Vec::new();
            if decode(&src, &mut dec).is_ok() {
                accepted += 1;
                let mut enc = Vec::new();
                encode(&dec, &mut enc);
                assert_eq!(enc, src, "{src:02x?} -> {dec:02x?}");
            }
        }
        assert!(accepted > 1000, "{accepted}");
    }

    #[test]
    fn refuses_eos_and_bad_padding() {
        let mut out = Vec::new();
        // EOS (30 ones) then padding
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HuffmanError::Eos)
        );
        // a whole byte of padding
        assert_eq!(decode(&[0xff], &mut out), Err(HuffmanError::BadPadding));
        // '0' (00000) then padding of zeros
        assert_eq!(decode(&[0x00], &mut out), Err(HuffmanError::BadPadding));
        // '0' then 111: fine
        out.clear();
        assert_eq!(decode(&[0x07], &mut out), Ok(()));
        assert_eq!(out, b"0");
    }
}
