//! The HPACK decoder (RFC 7541): a server's header block to name-value
//! pairs, with the full dynamic table (insertions, size updates, eviction)
//! and Huffman strings.
//!
//! This is the code that parses what a hostile server sends, so it is our
//! own rather than a crate's: the `hpack` crate is unmaintained and panics
//! on one byte (RUSTSEC-2023-0084, RUSTSEC-2023-0085), `fluke-hpack` 0.3.1
//! reproduces that panic (bearcove/loona#247), and each of them returns an
//! owned `Vec` per field, where this decoder hands the caller borrowed
//! slices (of the block, the table, or two reused buffers) and allocates
//! nothing once warm. It is checked against the RFC 7541 Appendix C
//! vectors below and fuzzed (`fuzz/fuzz_targets/hpack_decode.rs`).
//! Integers are capped at 2^32-1 and strings at the block's length, so a
//! block costs at most its own length in work beyond the caller's.

use super::huffman::{self, HuffmanError};
use super::table::Dynamic;
use std::fmt;

/// The dynamic table size we allow (SETTINGS_HEADER_TABLE_SIZE; we leave
/// it at the protocol's default, so we never send it).
pub const TABLE_SIZE: usize = 4096;

/// Why a header block does not decode: each is a COMPRESSION_ERROR that
/// ends the connection (the table can no longer be trusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpackError {
    /// The block ends in the middle of a field.
    Truncated,
    /// An integer over 2^32-1.
    IntegerOverflow,
    /// Index 0, or past the end of the tables.
    BadIndex(usize),
    Huffman(HuffmanError),
    /// A dynamic table size update over the size we allowed.
    TableSizeTooLarge(usize),
    /// A dynamic table size update after the first field of a block.
    LateSizeUpdate,
}

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HpackError::Truncated => write!(f, "header block ends inside a field"),
            HpackError::IntegerOverflow => write!(f, "integer over 2^32-1"),
            HpackError::BadIndex(i) => write!(f, "no table entry {i}"),
            HpackError::Huffman(HuffmanError::Eos) => write!(f, "EOS inside a Huffman string"),
            HpackError::Huffman(HuffmanError::BadPadding) => {
                write!(f, "bad padding after a Huffman string")
            }
            HpackError::TableSizeTooLarge(n) => {
                write!(f, "table size update to {n} over the {TABLE_SIZE} allowed")
            }
            HpackError::LateSizeUpdate => write!(f, "table size update after a field"),
        }
    }
}

/// Where a decoded string is: in the block, or in one of our buffers.
#[derive(Clone, Copy)]
enum Str {
    Block(usize, usize),
    Name,
    Value,
}

/// One connection's decoder; decode its header blocks in the order they
/// arrive, every one of them (even for streams we no longer want), or the
/// table goes out of step.
#[derive(Debug)]
pub struct Decoder {
    table: Dynamic,
    name: Vec<u8>,
    value: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            table: Dynamic::new(TABLE_SIZE),
            name: Vec::new(),
            value: Vec::new(),
        }
    }

    /// The dynamic table, for tests and diagnostics.
    pub fn table(&self) -> &Dynamic {
        &self.table
    }

    /// Decodes a whole header block, calling `on(name, value)` for each
    /// field in order. On an error some fields may have been reported;
    /// the connection must end.
    pub fn decode(
        &mut self,
        block: &[u8],
        mut on: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), HpackError> {
        let mut at = 0;
        let mut fields = 0usize;
        while at < block.len() {
            let b = block[at];
            if b & 0x80 != 0 {
                // Indexed field (§6.1).
                let i = integer(block, &mut at, 7)?;
                let (n, v) = self.table.get(i).ok_or(HpackError::BadIndex(i))?;
                on(n, v);
            } else if b & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3): only before the first field.
                if fields > 0 {
                    return Err(HpackError::LateSizeUpdate);
                }
                let size = integer(block, &mut at, 5)?;
                if size > TABLE_SIZE {
                    return Err(HpackError::TableSizeTooLarge(size));
                }
                self.table.set_max(size);
                continue;
            } else {
                // A literal (§6.2): with incremental indexing (01), without
                // (0000) or never indexed (0001).
                let (prefix, index) = if b & 0x40 != 0 { (6, true) } else { (4, false) };
                let i = integer(block, &mut at, prefix)?;
                let name = if i == 0 {
                    self.string(block, &mut at, Str::Name)?
                } else {
                    let (n, _) = self.table.get(i).ok_or(HpackError::BadIndex(i))?;
                    self.name.clear();
                    self.name.extend_from_slice(n);
                    Str::Name
                };
                let value = self.string(block, &mut at, Str::Value)?;
                let n = match name {
                    Str::Block(a, z) => &block[a..z],
                    _ => &self.name[..],
                };
                let v = match value {
                    Str::Block(a, z) => &block[a..z],
                    _ => &self.value[..],
                };
                on(n, v);
                if index {
                    self.table.insert(n, v);
                }
            }
            fields += 1;
        }
        Ok(())
    }

    /// Reads a string literal (§5.2): raw strings stay in the block,
    /// Huffman strings are decoded into the buffer `into` names.
    fn string(&mut self, block: &[u8], at: &mut usize, into: Str) -> Result<Str, HpackError> {
        let huff = *block.get(*at).ok_or(HpackError::Truncated)? & 0x80 != 0;
        let len = integer(block, at, 7)?;
        let start = *at;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= block.len())
            .ok_or(HpackError::Truncated)?;
        *at = end;
        if !huff {
            return Ok(Str::Block(start, end));
        }
        let buf = match into {
            Str::Name => &mut self.name,
            _ => &mut self.value,
        };
        buf.clear();
        huffman::decode(&block[start..end], buf).map_err(HpackError::Huffman)?;
        Ok(into)
    }
}

/// Reads an integer with an N-bit prefix (§5.1) at `*at`.
pub fn integer(block: &[u8], at: &mut usize, prefix: u8) -> Result<usize, HpackError> {
    let mask = (1u32 << prefix) - 1;
    let first = *block.get(*at).ok_or(HpackError::Truncated)? as u32 & mask;
    *at += 1;
    if first < mask {
        return Ok(first as usize);
    }
    let mut v = mask as u64;
    let mut shift = 0;
    loop {
        let b = *block.get(*at).ok_or(HpackError::Truncated)?;
        *at += 1;
        v += ((b & 0x7f) as u64) << shift;
        if v > u32::MAX as u64 {
            return Err(HpackError::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return Ok(v as usize);
        }
        shift += 7;
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fields(d: &mut Decoder, block: &[u8]) -> Result<Vec<(String, String)>, HpackError> {
        let mut out = Vec::new();
        d.decode(block, |n, v| {
            out.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ))
        })?;
        Ok(out)
    }

    fn table(d: &Decoder) -> Vec<(String, String)> {
        (62..62 + d.table().len())
            .map(|i| {
                let (n, v) = d.table().get(i).unwrap();
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// One RFC 7541 Appendix C sequence: blocks decoded on one connection,
    /// each with its header list, dynamic table and table size after it.
    type Step = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static [(&'static str, &'static str)],
        usize,
    );

    const REQ1: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ];
    const REQ2: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
        ("cache-control", "no-cache"),
    ];
    const REQ3: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ];
    const T1: &[(&str, &str)] = &[(":authority", "www.example.com")];
    const T2: &[(&str, &str)] = &[
        ("cache-control", "no-cache"),
        (":authority", "www.example.com"),
    ];
    const T3: &[(&str, &str)] = &[
        ("custom-key", "custom-value"),
        ("cache-control", "no-cache"),
        (":authority", "www.example.com"),
    ];
    const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
    const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
    const LOC: &str = "https://www.example.com";
    const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
    const RESP1: &[(&str, &str)] = &[
        (":status", "302"),
        ("cache-control", "private"),
        ("date", DATE1),
        ("location", LOC),
    ];
    const RESP2: &[(&str, &str)] = &[
        (":status", "307"),
        ("cache-control", "private"),
        ("date", DATE1),
        ("location", LOC),
    ];
    const RESP3: &[(&str, &str)] = &[
        (":status", "200"),
        ("cache-control", "private"),
        ("date", DATE2),
        ("location", LOC),
        ("content-encoding", "gzip"),
        ("set-cookie", COOKIE),
    ];
    const RT1: &[(&str, &str)] = &[
        ("location", LOC),
        ("date", DATE1),
        ("cache-control", "private"),
        (":status", "302"),
    ];
    const RT2: &[(&str, &str)] = &[
        (":status", "307"),
        ("location", LOC),
        ("date", DATE1),
        ("cache-control", "private"),
    ];
    const RT3: &[(&str, &str)] = &[
        ("set-cookie", COOKIE),
        ("content-encoding", "gzip"),
        ("date", DATE2),
    ];

    #[rustfmt::skip]
    fn appendix_c() -> Vec<(&'static str, usize, Vec<Step>)> {
        vec![
            ("C.3 requests without Huffman", TABLE_SIZE, vec![
                ("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", REQ1, T1, 57),
                ("8286 84be 5808 6e6f 2d63 6163 6865", REQ2, T2, 110),
                ("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65", REQ3, T3, 164),
            ]),
            ("C.4 requests with Huffman", TABLE_SIZE, vec![
                ("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", REQ1, T1, 57),
                ("8286 84be 5886 a8eb 1064 9cbf", REQ2, T2, 110),
                ("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", REQ3, T3, 164),
            ]),
            ("C.5 responses without Huffman", 256, vec![
                ("4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", RESP1, RT1, 222),
                ("4803 3330 37c1 c0bf", RESP2, RT2, 222),
                ("88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31", RESP3, RT3, 215),
            ]),
            ("C.6 responses with Huffman", 256, vec![
                ("4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3", RESP1, RT1, 222),
                ("4883 640e ffc1 c0bf", RESP2, RT2, 222),
                ("88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07", RESP3, RT3, 215),
            ]),
        ]
    }

    #[test]
    fn decodes_the_rfc_7541_appendix_c_sequences_with_their_table_states() {
        for (name, size, steps) in appendix_c() {
            let mut d = Decoder::new();
            if size != TABLE_SIZE {
                // The RFC's responses use a 256-byte table: as a server's
                // size update at the start of the first block would set it.
                d.decode(&[0x3f, 0xe1, 0x01], |_, _| panic!("no field"))
                    .unwrap();
                assert_eq!(d.table().max(), 256);
            }
            for (i, (block, want, want_table, want_size)) in steps.into_iter().enumerate() {
                let got = fields(&mut d, &hex(block)).unwrap();
                assert_eq!(got, pairs(want), "{name} #{}", i + 1);
                assert_eq!(table(&d), pairs(want_table), "{name} #{} table", i + 1);
                assert_eq!(d.table().size(), want_size, "{name} #{} size", i + 1);
            }
        }
    }

    #[test]
    fn decodes_the_rfc_7541_field_examples_and_integers() {
        // C.2.1-C.2.4
        let mut d = Decoder::new();
        let lit = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
        assert_eq!(
            fields(&mut d, &lit).unwrap(),
            pairs(&[("custom-key", "custom-header")])
        );
        assert_eq!(d.table().size(), 55);
        let mut d = Decoder::new();
        let path = hex("040c 2f73 616d 706c 652f 7061 7468");
        assert_eq!(
            fields(&mut d, &path).unwrap(),
            pairs(&[(":path", "/sample/path")])
        );
        let never = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
        assert_eq!(
            fields(&mut d, &never).unwrap(),
            pairs(&[("password", "secret")])
        );
        assert_eq!(
            fields(&mut d, &[0x82]).unwrap(),
            pairs(&[(":method", "GET")])
        );
        assert!(d.table().is_empty());
        // C.1: 10 on 5 bits; 1337 on 5 bits; 42 on 8 bits
        let mut at = 0;
        assert_eq!(integer(&[0b1110_1010], &mut at, 5), Ok(10));
        let mut at = 0;
        assert_eq!(
            integer(&[0b0001_1111, 0b1001_1010, 0b0000_1010], &mut at, 5),
            Ok(1337)
        );
        assert_eq!(at, 3);
        let mut at = 0;
        assert_eq!(integer(&[42], &mut at, 8), Ok(42));
    }

    #[test]
    fn refuses_broken_blocks_without_panicking() {
        let cases: &[(&[u8], HpackError)] = &[
            (&[0x3f], HpackError::Truncated), // RUSTSEC-2023-0085's input
            (&[0x80], HpackError::BadIndex(0)),
            (&[0xbe], HpackError::BadIndex(62)),
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                HpackError::IntegerOverflow,
            ),
            (
                &[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80],
                HpackError::IntegerOverflow,
            ),
            (&[0x3f, 0xe2, 0x1f], HpackError::TableSizeTooLarge(4097)),
            (&[0x82, 0x20], HpackError::LateSizeUpdate),
            (&[0x40, 0x05, b'a'], HpackError::Truncated),
            (&[0x04], HpackError::Truncated),
            (
                &[0x04, 0x81, 0xff],
                HpackError::Huffman(HuffmanError::BadPadding),
            ),
            (&[0x44, 0x7f], HpackError::Truncated),
            (
                &[0x0f, 0x80, 0x80, 0x80, 0x80, 0x10],
                HpackError::IntegerOverflow,
            ),
        ];
        for (block, want) in cases {
            let mut d = Decoder::new();
            assert_eq!(d.decode(block, |_, _| {}), Err(*want), "{block:02x?}");
        }
        // a size update to 0 and back is fine at the start
        let mut d = Decoder::new();
        d.decode(&[0x40, 1, b'a', 1, b'b'], |_, _| {}).unwrap();
        assert_eq!(d.table().len(), 1);
        d.decode(&[0x20, 0x3f, 0xe1, 0x1f, 0x82], |_, _| {})
            .unwrap();
        assert!(d.table().is_empty());
    }
}
