//! The server's frames applied to the session: the partial-frame buffer,
//! SETTINGS, DATA and our receive windows, header blocks (HEADERS +
//! CONTINUATION, bounded) into streams, RST_STREAM, GOAWAY, PING and
//! WINDOW_UPDATE; connection errors queue a GOAWAY, stream errors an
//! RST_STREAM.

use super::super::error::{ErrorCode, H2Error, ProtocolError};
use super::super::frame::{self, Frame, MAX_WINDOW, Parsed, setting};
use super::super::stream::{BlockEnd, Response};
use super::{Event, MAX_CONTINUATIONS, MAX_HEADER_BLOCK, MAX_HEADER_LIST, Session};
use std::time::Instant;

impl Session {
    /// Consumes `input` — all of it: a frame split over reads is kept until
    /// its end arrives. Events go to `on` as frames complete. An `Err` is a
    /// connection error: a GOAWAY is queued, write it and close; the
    /// streams still open are then for [`Session::drain_open`].
    pub fn recv(
        &mut self,
        mut input: &[u8],
        now: Instant,
        on: &mut impl FnMut(Event<'_>),
    ) -> Result<(), ProtocolError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = (|| {
            if !self.partial.is_empty() {
                input = self.finish_partial(input, now, on)?;
            }
            while !input.is_empty() {
                if !self.settings_seen {
                    not_settings(input)?;
                }
                match frame::parse(input, self.cfg.max_frame)? {
                    Parsed::Partial => {
                        self.partial.extend_from_slice(input);
                        break;
                    }
                    Parsed::Frame(f, n) => {
                        self.frame(f, now, on)?;
                        input = &input[n..];
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            self.fail(e);
        }
        r
    }

    /// Completes the frame in `partial` from `input`; returns the input
    /// left after it.
    fn finish_partial<'i>(
        &mut self,
        input: &'i [u8],
        now: Instant,
        on: &mut impl FnMut(Event<'_>),
    ) -> Result<&'i [u8], ProtocolError> {
        let mut input = input;
        if self.partial.len() < frame::HEADER_LEN {
            let take = (frame::HEADER_LEN - self.partial.len()).min(input.len());
            self.partial.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.partial.len() < frame::HEADER_LEN {
                return Ok(input);
            }
        }
        if !self.settings_seen {
            not_settings(&self.partial)?;
        }
        let total = match frame::parse(&self.partial, self.cfg.max_frame)? {
            Parsed::Frame(_, n) => n,
            Parsed::Partial => {
                let head: [u8; frame::HEADER_LEN] = self.partial[..frame::HEADER_LEN]
                    .try_into()
                    .unwrap_or_default();
                frame::HEADER_LEN + frame::Head::read(&head).len as usize
            }
        };
        let take = (total - self.partial.len()).min(input.len());
        self.partial.extend_from_slice(&input[..take]);
        input = &input[take..];
        if self.partial.len() < total {
            return Ok(input);
        }
        let buf = std::mem::take(&mut self.partial);
        let r = match frame::parse(&buf, self.cfg.max_frame) {
            Ok(Parsed::Frame(f, _)) => self.frame(f, now, on),
            Ok(Parsed::Partial) => Ok(()),
            Err(e) => Err(e),
        };
        self.partial = buf;
        self.partial.clear();
        r.map(|()| input)
    }

    fn fail(&mut self, e: ProtocolError) {
        if self.failed.is_none() {
            // We accept no server streams, so the last one we processed is 0.
            frame::write_goaway(&mut self.out, 0, e.code(), b"");
            self.failed = Some(e);
        }
    }

    /// A stream id the server may not use: one of its own (even), or one we
    /// have not opened yet.
    fn idle(&self, id: u32) -> bool {
        id.is_multiple_of(2) || id >= self.next_id
    }

    fn frame(
        &mut self,
        f: Frame<'_>,
        now: Instant,
        on: &mut impl FnMut(Event<'_>),
    ) -> Result<(), ProtocolError> {
        if !self.settings_seen && !matches!(f, Frame::Settings { ack: false, .. }) {
            return Err(ProtocolError::NoSettingsFirst);
        }
        if self.block_stream != 0 && !matches!(f, Frame::Continuation { .. }) {
            return Err(ProtocolError::BadFrame("a frame inside a header block"));
        }
        match f {
            Frame::Data {
                stream,
                data,
                end_stream,
                flow_len,
            } => self.data(stream, data, end_stream, flow_len, now, on)?,
            Frame::Headers {
                stream,
                block,
                end_stream,
                end_headers,
            } => {
                if self.idle(stream) {
                    return Err(ProtocolError::BadFrame(
                        "HEADERS on a stream we did not open",
                    ));
                }
                if end_headers {
                    self.header_block(stream, block, end_stream, now, on)?;
                } else {
                    if block.len() > MAX_HEADER_BLOCK {
                        return Err(ProtocolError::HeaderBlockTooLarge);
                    }
                    self.block.clear();
                    self.block.extend_from_slice(block);
                    self.block_stream = stream;
                    self.block_end_stream = end_stream;
                    self.continuations = 0;
                }
            }
            Frame::Continuation {
                stream,
                block,
                end_headers,
            } => {
                if self.block_stream == 0 || stream != self.block_stream {
                    return Err(ProtocolError::BadFrame("CONTINUATION without its HEADERS"));
                }
                self.continuations += 1;
                if self.continuations > MAX_CONTINUATIONS
                    || self.block.len() + block.len() > MAX_HEADER_BLOCK
                {
                    return Err(ProtocolError::HeaderBlockTooLarge);
                }
                self.block.extend_from_slice(block);
                if end_headers {
                    let whole = std::mem::take(&mut self.block);
                    self.block_stream = 0;
                    let r = self.header_block(stream, &whole, self.block_end_stream, now, on);
                    self.block = whole;
                    self.block.clear();
                    r?;
                }
            }
            Frame::Priority { .. } | Frame::Unknown { .. } => {}
            Frame::RstStream { stream, code } => {
                if self.idle(stream) {
                    return Err(ProtocolError::BadFrame(
                        "RST_STREAM on a stream we did not open",
                    ));
                }
                if let Some(slot) = self.by_id.remove(&stream) {
                    let tag = self.streams[slot].tag;
                    self.release(slot);
                    on(Event::Failed {
                        stream,
                        tag,
                        error: H2Error::Reset(code),
                    });
                }
            }
            Frame::Settings { ack: true, .. } => {}
            Frame::Settings {
                ack: false,
                payload,
            } => {
                if !self.settings_seen {
                    // no limit unless the server sets one (RFC 9113 §6.5.2);
                    // `initial_max_streams` held only until now
                    self.max_streams = u32::MAX;
                }
                self.settings(payload, now)?;
                frame::write_settings_ack(&mut self.out);
                if !self.settings_seen {
                    self.settings_seen = true;
                    on(Event::Settings {
                        max_concurrent_streams: self.max_streams,
                        after: now.saturating_duration_since(self.created),
                    });
                }
            }
            Frame::PushPromise { .. } => return Err(ProtocolError::PushPromise),
            Frame::Ping { ack: false, data } => frame::write_ping(&mut self.out, true, data),
            Frame::Ping { ack: true, data } => {
                if let Some((sent, at)) = self.ping
                    && sent == data
                {
                    self.ping = None;
                    on(Event::PingRtt(now.saturating_duration_since(at)));
                }
            }
            Frame::GoAway {
                last_stream, code, ..
            } => {
                self.goaway = Some((last_stream, code));
                on(Event::GoAway { last_stream, code });
                let mut above: Vec<(u32, usize)> = self
                    .by_id
                    .iter()
                    .filter(|&(&id, _)| id > last_stream)
                    .map(|(&id, &slot)| (id, slot))
                    .collect();
                above.sort_unstable();
                for (id, slot) in above {
                    self.by_id.remove(&id);
                    let tag = self.streams[slot].tag;
                    self.release(slot);
                    on(Event::Unprocessed { stream: id, tag });
                }
            }
            Frame::WindowUpdate {
                stream: 0,
                increment,
            } => {
                if increment == 0 {
                    return Err(ProtocolError::BadFrame("WINDOW_UPDATE of 0"));
                }
                self.conn_send_window += increment as i64;
                if self.conn_send_window > MAX_WINDOW as i64 {
                    return Err(ProtocolError::FlowControl);
                }
                self.resume_bodies(now);
            }
            Frame::WindowUpdate { stream, increment } => {
                if self.idle(stream) {
                    return Err(ProtocolError::BadFrame(
                        "WINDOW_UPDATE on a stream we did not open",
                    ));
                }
                if let Some(&slot) = self.by_id.get(&stream) {
                    if increment == 0 {
                        self.stream_error(slot, ProtocolError::BadFrame("WINDOW_UPDATE of 0"), on);
                        return Ok(());
                    }
                    let s = &mut self.streams[slot];
                    s.send_window += increment as i64;
                    if s.send_window > MAX_WINDOW as i64 {
                        self.stream_error(slot, ProtocolError::FlowControl, on);
                        return Ok(());
                    }
                    self.resume_bodies(now);
                }
            }
        }
        Ok(())
    }

    fn settings(&mut self, payload: &[u8], now: Instant) -> Result<(), ProtocolError> {
        for (id, v) in frame::settings(payload) {
            match id {
                setting::ENABLE_PUSH if v > 1 => {
                    return Err(ProtocolError::BadFrame("ENABLE_PUSH other than 0 or 1"));
                }
                setting::MAX_CONCURRENT_STREAMS => self.max_streams = v,
                setting::INITIAL_WINDOW_SIZE => {
                    if v > MAX_WINDOW {
                        return Err(ProtocolError::FlowControl);
                    }
                    let delta = v as i64 - self.peer_initial_window;
                    self.peer_initial_window = v as i64;
                    for &slot in self.by_id.values() {
                        let s = &mut self.streams[slot];
                        s.send_window += delta;
                        if s.send_window > MAX_WINDOW as i64 {
                            return Err(ProtocolError::FlowControl);
                        }
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME..(1 << 24)).contains(&v) {
                        return Err(ProtocolError::BadFrame("MAX_FRAME_SIZE out of range"));
                    }
                    self.peer_max_frame = v;
                }
                // HEADER_TABLE_SIZE: our encoder keeps no dynamic table.
                // MAX_HEADER_LIST_SIZE: advisory; our requests are the
                // config's headers. Unknown settings are ignored (§6.5.2).
                _ => {}
            }
        }
        self.resume_bodies(now);
        Ok(())
    }

    fn data(
        &mut self,
        stream: u32,
        data: &[u8],
        end_stream: bool,
        flow_len: u32,
        now: Instant,
        on: &mut impl FnMut(Event<'_>),
    ) -> Result<(), ProtocolError> {
        if self.idle(stream) {
            return Err(ProtocolError::BadFrame("DATA on a stream we did not open"));
        }
        // The connection window counts every DATA frame, even on streams
        // that are gone (§6.9).
        self.conn_recv_window -= flow_len as i64;
        if self.conn_recv_window < 0 {
            return Err(ProtocolError::FlowControl);
        }
        self.conn_unacked += flow_len;
        if self.conn_unacked >= self.cfg.conn_window / 2 {
            frame::write_window_update(&mut self.out, 0, self.conn_unacked);
            self.conn_recv_window += self.conn_unacked as i64;
            self.conn_unacked = 0;
        }
        let Some(&slot) = self.by_id.get(&stream) else {
            return Ok(());
        };
        let s = &mut self.streams[slot];
        s.recv_window -= flow_len as i64;
        if s.recv_window < 0 {
            self.stream_error(slot, ProtocolError::FlowControl, on);
            return Ok(());
        }
        if let Err(e) = s.data(data) {
            self.stream_error(slot, e, on);
            return Ok(());
        }
        if end_stream {
            let end = s.complete();
            self.finish(slot, end, now, on);
            return Ok(());
        }
        s.unacked += flow_len;
        if s.unacked >= self.cfg.stream_window / 2 {
            let inc = s.unacked;
            s.recv_window += inc as i64;
            s.unacked = 0;
            frame::write_window_update(&mut self.out, stream, inc);
        }
        Ok(())
    }

    fn header_block(
        &mut self,
        stream: u32,
        block: &[u8],
        end_stream: bool,
        now: Instant,
        on: &mut impl FnMut(Event<'_>),
    ) -> Result<(), ProtocolError> {
        // Every block is decoded, even for a stream that is gone, or the
        // HPACK table would fall out of step with the server's.
        let slot = self.by_id.get(&stream).copied();
        let Some(slot) = slot else {
            return self
                .decoder
                .decode(block, |_, _| {})
                .map_err(ProtocolError::Hpack);
        };
        let s = &mut self.streams[slot];
        s.begin_block(now);
        self.decoder
            .decode(block, |n, v| s.field(n, v, MAX_HEADER_LIST))
            .map_err(ProtocolError::Hpack)?;
        let end = s.end_block(end_stream);
        self.finish(slot, end, now, on);
        Ok(())
    }

    /// Acts on the end of a header block or of the body.
    fn finish(&mut self, slot: usize, end: BlockEnd, now: Instant, on: &mut impl FnMut(Event<'_>)) {
        match end {
            BlockEnd::More => {}
            BlockEnd::Error(e) => self.stream_error(slot, e, on),
            BlockEnd::Complete => {
                let s = &mut self.streams[slot];
                let id = s.id;
                if !s.local_closed {
                    // The server answered before our body ended (§8.1):
                    // stop sending it.
                    frame::write_rst_stream(&mut self.out, id, ErrorCode::Cancel);
                    self.waiting.retain(|&w| w != id);
                    if let Some(since) = s.waiting_since.take() {
                        s.window_wait += now.saturating_duration_since(since);
                    }
                }
                self.by_id.remove(&id);
                let s = &self.streams[slot];
                on(Event::Response(Response {
                    stream: id,
                    tag: s.tag,
                    status: s.status,
                    body_bytes: s.body_bytes,
                    opened: s.opened,
                    first_byte: s.first_byte.unwrap_or(now),
                    window_wait: s.window_wait,
                    kept: s.kept(),
                    timing: &s.timing,
                    grpc: s.grpc_result,
                    grpc_message: s.grpc_message(),
                    grpc_why: s.grpc_why(),
                }));
                self.release(slot);
            }
        }
    }

    /// Resets one stream for a fault of the server's (§5.4.2).
    fn stream_error(&mut self, slot: usize, e: ProtocolError, on: &mut impl FnMut(Event<'_>)) {
        let id = self.streams[slot].id;
        let tag = self.streams[slot].tag;
        frame::write_rst_stream(&mut self.out, id, e.code());
        self.by_id.remove(&id);
        self.waiting.retain(|&w| w != id);
        self.release(slot);
        on(Event::Failed {
            stream: id,
            tag,
            error: H2Error::Protocol(e),
        });
    }
}

/// The server's first frame must be SETTINGS (§3.4): its type byte tells,
/// before its length (an HTTP/1.1 answer's "HTT" would read as 4.7 MB).
fn not_settings(head: &[u8]) -> Result<(), ProtocolError> {
    match head.get(3) {
        Some(&k) if k != frame::kind::SETTINGS => Err(ProtocolError::NoSettingsFirst),
        _ => Ok(()),
    }
}
