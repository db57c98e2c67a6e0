//! gRPC's length-prefixed message (the gRPC over HTTP/2 protocol spec,
//! "Length-Prefixed-Message"): one byte of compressed flag, a big-endian
//! u32 length, then the message. Requests are written with
//! [`write_message`]; a response's DATA bytes, which HTTP/2 may split
//! anywhere, go through a [`Decoder`] that hands back each whole message.
//!
//! The decoder is bounded: a length above `max_message` (4 MiB by default,
//! grpc-go's receive limit) is an error before anything is buffered, so a
//! hostile length prefix cannot make us allocate. A compressed flag is an
//! error unless the response named a `grpc-encoding` (we send no
//! `grpc-accept-encoding`, so a server has no business compressing), and
//! bytes left over at END_STREAM are a truncated message.

use thiserror::Error;

/// Bytes of the prefix: flag + length.
pub const PREFIX: usize = 5;

/// grpc-go's default receive limit (`defaultServerMaxReceiveMessageSize`
/// and the client's `defaultClientMaxReceiveMessageSize`): 4 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// A response body that is not a well-formed run of gRPC messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The flag byte is neither 0 (plain) nor 1 (compressed).
    #[error("bad length prefix: flag byte {0:#04x} is neither 0 nor 1")]
    BadFlag(u8),
    /// The length prefix says more than the configured maximum.
    #[error("message of {len} bytes is over the {max}-byte limit")]
    TooLarge { len: u32, max: usize },
    /// A compressed message without a `grpc-encoding` header naming how.
    #[error("compressed flag set but the response has no grpc-encoding")]
    CompressedWithoutEncoding,
    /// A message compressed with an encoding we do not decode.
    #[error("compressed message (grpc-encoding given); decompression is not supported")]
    Compressed,
    /// END_STREAM arrived inside a message (or inside its prefix).
    #[error("truncated message at end of stream: {have} of {want} bytes")]
    Truncated { have: usize, want: usize },
}

/// Appends one uncompressed message: the prefix, then `message`.
pub fn write_message(out: &mut Vec<u8>, message: &[u8]) {
    write_prefix(out, message.len());
    out.extend_from_slice(message);
}

/// Appends the prefix of an uncompressed message of `len` bytes (for a
/// caller that writes the message itself after it).
pub fn write_prefix(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("a gRPC message is under 4 GiB");
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
}

/// Where the decoder is inside the current message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the 5-byte prefix; `have` bytes of it are in `head`.
    Prefix { have: usize },
    /// Reading a message of `len` bytes into `buf`.
    Body { len: usize },
}

/// Splits a response's DATA bytes, fed in any split, into messages. The
/// message buffer is kept between messages and streams: a warm decoder
/// does not allocate.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    /// The response named a `grpc-encoding`.
    encoding: bool,
    head: [u8; PREFIX],
    state: State,
    buf: Vec<u8>,
    messages: u64,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new(DEFAULT_MAX_MESSAGE)
    }
}

impl Decoder {
    pub fn new(max_message: usize) -> Decoder {
        Decoder {
            max_message,
            encoding: false,
            head: [0; PREFIX],
            state: State::Prefix { have: 0 },
            buf: Vec::new(),
            messages: 0,
        }
    }

    /// Readies the decoder for a new response stream; `encoding` is whether
    /// its headers carried a `grpc-encoding` (other than `identity`).
    pub fn start(&mut self, encoding: bool) {
        self.encoding = encoding;
        self.state = State::Prefix { have: 0 };
        self.buf.clear();
        self.messages = 0;
    }

    /// Whole messages decoded since [`Decoder::start`].
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Feeds DATA bytes; `on_message` gets each whole message as it
    /// completes (valid for the call). An error leaves the decoder unusable
    /// until the next [`Decoder::start`]: the stream is a failed request.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        mut on_message: impl FnMut(&[u8]),
    ) -> Result<(), FrameError> {
        while !data.is_empty() {
            match self.state {
                State::Prefix { have } => {
                    let take = (PREFIX - have).min(data.len());
                    self.head[have..have + take].copy_from_slice(&data[..take]);
                    data = &data[take..];
                    if have + take < PREFIX {
                        self.state = State::Prefix { have: have + take };
                        continue;
                    }
                    let len = self.check_prefix()?;
                    self.buf.clear();
                    if len == 0 {
                        self.done(&mut on_message);
                    } else if data.len() >= len && self.buf.is_empty() {
                        // The whole message is in this piece: no copy.
                        self.messages += 1;
                        on_message(&data[..len]);
                        data = &data[len..];
                        self.state = State::Prefix { have: 0 };
                    } else {
                        self.state = State::Body { len };
                    }
                }
                State::Body { len } => {
                    let take = (len - self.buf.len()).min(data.len());
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.buf.len() == len {
                        self.done(&mut on_message);
                    }
                }
            }
        }
        Ok(())
    }

    fn done(&mut self, on_message: &mut impl FnMut(&[u8])) {
        self.messages += 1;
        on_message(&self.buf);
        self.buf.clear();
        self.state = State::Prefix { have: 0 };
    }

    /// Checks a complete prefix; returns the message length.
    fn check_prefix(&self) -> Result<usize, FrameError> {
        let len = u32::from_be_bytes([self.head[1], self.head[2], self.head[3], self.head[4]]);
        match self.head[0] {
            0 => {}
            1 if !self.encoding => return Err(FrameError::CompressedWithoutEncoding),
            1 => return Err(FrameError::Compressed),
            flag => return Err(FrameError::BadFlag(flag)),
        }
        if len as usize > self.max_message {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_message,
            });
        }
        Ok(len as usize)
    }

    /// END_STREAM: an error when a message was cut off.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.state {
            State::Prefix { have: 0 } => Ok(()),
            State::Prefix { have } => Err(FrameError::Truncated { have, want: PREFIX }),
            State::Body { len } => Err(FrameError::Truncated {
                have: PREFIX + self.buf.len(),
                want: PREFIX + len,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(messages: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            write_message(&mut out, m);
        }
        out
    }

    fn decode_split(data: &[u8], cuts: &[usize]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut d = Decoder::default();
        d.start(false);
        let mut got = Vec::new();
        let mut at = 0;
        for &cut in cuts.iter().chain([data.len()].iter()) {
            d.feed(&data[at..cut], |m| got.push(m.to_vec()))?;
            at = cut;
        }
        d.finish()?;
        Ok(got)
    }

    #[test]
    fn the_prefix_is_a_zero_flag_and_a_big_endian_length() {
        let mut out = Vec::new();
        write_message(&mut out, b"\x08\x2a");
        assert_eq!(out, b"\x00\x00\x00\x00\x02\x08\x2a");
    }

    #[test]
    fn messages_come_out_whole_at_every_split() {
        let big = vec![7u8; 300];
        let msgs: [&[u8]; 4] = [b"\x08\x01", b"", &big, b"\x12\x03abc"];
        let data = wire(&msgs);
        for a in 0..=data.len() {
            for b in [a, (a + 3).min(data.len()), data.len()] {
                let got = decode_split(&data, &[a, b]).unwrap();
                assert_eq!(got, msgs.map(|m| m.to_vec()), "cut at {a}, {b}");
            }
        }
        // One byte at a time.
        let cuts: Vec<usize> = (1..data.len()).collect();
        assert_eq!(decode_split(&data, &cuts).unwrap().len(), 4);
    }

    #[test]
    fn a_length_over_the_limit_fails_before_buffering() {
        let mut d = Decoder::new(16);
        d.start(false);
        let err = d
            .feed(b"\x00\x00\x00\x00\x11", |_| panic!("no message"))
            .unwrap_err();
        assert_eq!(err, FrameError::TooLarge { len: 17, max: 16 });
        let mut d = Decoder::default();
        d.start(false);
        let err = d.feed(b"\x00\xff\xff\xff\xff", |_| ()).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: u32::MAX, .. }));
        assert_eq!(d.buf.capacity(), 0, "nothing was allocated for it");
    }

    #[test]
    fn a_flag_other_than_0_or_1_is_a_bad_prefix() {
        let mut d = Decoder::default();
        d.start(false);
        assert_eq!(
            d.feed(b"\x02\x00\x00\x00\x00", |_| ()),
            Err(FrameError::BadFlag(2))
        );
    }

    #[test]
    fn a_compressed_flag_needs_grpc_encoding() {
        let mut d = Decoder::default();
        d.start(false);
        assert_eq!(
            d.feed(b"\x01\x00\x00\x00\x00", |_| ()),
            Err(FrameError::CompressedWithoutEncoding)
        );
        d.start(true);
        assert_eq!(
            d.feed(b"\x01\x00\x00\x00\x00", |_| ()),
            Err(FrameError::Compressed)
        );
    }

    #[test]
    fn end_of_stream_inside_a_message_is_truncated() {
        let mut d = Decoder::default();
        d.start(false);
        d.feed(b"\x00\x00\x00", |_| ()).unwrap();
        assert_eq!(d.finish(), Err(FrameError::Truncated { have: 3, want: 5 }));
        d.start(false);
        d.feed(b"\x00\x00\x00\x00\x04ab", |_| ()).unwrap();
        assert_eq!(d.finish(), Err(FrameError::Truncated { have: 7, want: 9 }));
        d.start(false);
        assert_eq!(d.finish(), Ok(()), "no message at all is not truncated");
        assert_eq!(d.messages(), 0);
    }
}
