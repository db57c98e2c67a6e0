//! The HPACK tables (RFC 7541 §2.3): the static table of 61 common fields
//! and the dynamic table a server's encoder fills, which our decoder keeps
//! in step with it — entries newest first, sized by name + value + 32
//! bytes, evicted oldest first when an insert or a size update needs room.
//!
//! An evicted entry's buffers go to a spare list and back into the next
//! insert, so a connection whose server indexes fields stops allocating
//! once the table has turned over.

use std::collections::VecDeque;

/// RFC 7541 Appendix A.
pub const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The size an entry counts for (§4.1).
pub fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

/// The dynamic table of one direction of one connection.
#[derive(Debug)]
pub struct Dynamic {
    /// Newest first: index 62 is `entries[0]`.
    entries: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// Sum of the entries' sizes.
    size: usize,
    /// The current maximum size (set by the encoder's size updates, never
    /// over what we allowed).
    max: usize,
    /// Buffers of evicted entries, reused by the next inserts.
    spare: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Dynamic {
    pub fn new(max: usize) -> Dynamic {
        Dynamic {
            entries: VecDeque::new(),
            size: 0,
            max,
            spare: Vec::new(),
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The current maximum size.
    pub fn max(&self) -> usize {
        self.max
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The field at an HPACK index (1-61 static, then dynamic newest
    /// first); `None` for 0 or past the end.
    pub fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        match index {
            0 => None,
            1..=61 => Some(STATIC[index - 1]),
            _ => self
                .entries
                .get(index - 62)
                .map(|(n, v)| (n.as_slice(), v.as_slice())),
        }
    }

    /// Adds a field, evicting old ones for room; a field larger than the
    /// whole table empties it and is not added (§4.4).
    pub fn insert(&mut self, name: &[u8], value: &[u8]) {
        let need = entry_size(name, value);
        if need > self.max {
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max - need);
        let (mut n, mut v) = self.spare.pop().unwrap_or_default();
        n.clear();
        v.clear();
        n.extend_from_slice(name);
        v.extend_from_slice(value);
        self.entries.push_front((n, v));
        self.size += need;
    }

    /// A dynamic table size update (§6.3): the caller has checked it is
    /// within what we allowed.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
        self.evict_to(max);
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            let Some(e) = self.entries.pop_back() else {
                break;
            };
            self.size -= entry_size(&e.0, &e.1);
            // Keep a few spares: more would hold memory a shrunk table
            // no longer needs.
            if self.spare.len() < 16 {
                self.spare.push(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_static_then_dynamic_newest_first_and_evicts_oldest() {
        let mut t = Dynamic::new(100);
        assert_eq!(t.get(0), None);
        assert_eq!(t.get(2), Some((&b":method"[..], &b"GET"[..])));
        assert_eq!(t.get(61), Some((&b"www-authenticate"[..], &b""[..])));
        assert_eq!(t.get(62), None);
        t.insert(b"a", b"1"); // 34
        t.insert(b"b", b"22"); // 35
        assert_eq!(t.get(62), Some((&b"b"[..], &b"22"[..])));
        assert_eq!(t.get(63), Some((&b"a"[..], &b"1"[..])));
        assert_eq!(t.size(), 69);
        t.insert(b"c", b"333"); // 36: 105 > 100, so "a" goes
        assert_eq!((t.len(), t.size()), (2, 71));
        assert_eq!(t.get(64), None);
        t.insert(b"big", &[b'x'; 80]); // 115 > 100: empties the table
        assert!(t.is_empty() && t.size() == 0);
        t.insert(b"a", b"1");
        t.set_max(10);
        assert!(t.is_empty());
    }
}
