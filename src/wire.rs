//! The stream tungstenite reads and writes: the TCP socket, plus three tricks.
//!
//! 1. **Replay.** tinyws reads the request head itself (see `http.rs`); tungstenite's
//!    handshake must then see those same bytes. The wire serves them first: exactly the
//!    head during the handshake (tungstenite refuses bytes after it), then anything the
//!    client sent early, then the socket.
//! 2. **Bulk reads.** tungstenite reads at most its read buffer at a time, and an idle
//!    connection keeps that buffer (zero-filled, so resident) for its whole life. tinyws
//!    gives tungstenite a small one ([`IDLE_READ`]) to keep idle connections cheap. When
//!    a read fills it, more data is likely waiting (a large message, or a pipelined
//!    burst), so the wire reads up to `read_buffer_size` at once into its own buffer and
//!    serves tungstenite from memory: few syscalls per large message. That buffer is
//!    kept while messages keep coming (allocating it zero-fills it, which cost more than
//!    the copy for messages of a few KiB) and freed once the connection has been quiet
//!    for a second (`conn.rs` calls [`Wire::release_bulk`]), so it costs nothing while
//!    idle. Measured in docs/performance.md.
//! 3. **Frame edges.** The wire follows the frame headers in the bytes it hands
//!    tungstenite ([`Edge`]), so `conn.rs` knows when tungstenite holds no part of a frame
//!    or message and can be given fresh, small buffers (its own keep their largest size).
//! 4. **Deferred writes.** Replies go to the client's outbox, and are written when the
//!    connection is about to block on the socket for more input, or when
//!    `write_buffer_size` bytes are waiting. A burst of pipelined messages that arrived in
//!    one read is answered with one `write` syscall, not one per message, and a lone
//!    message is answered at once (no timer, no Nagle delay: `TCP_NODELAY` is set).

use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::client::Client;
use crate::http::Head;

/// The read buffer tinyws gives tungstenite: what an idle connection keeps. A message up
/// to about this size arrives in one read; larger ones switch the wire to bulk reads.
pub(crate) const IDLE_READ: usize = 1024;

pub(crate) struct Wire {
    client: Arc<Client>,
    /// Bytes read (the head, early frames, or a bulk read) but not yet handed to
    /// tungstenite: `buf[pos..end]`.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// How far into `buf` reads may go: the head's end during the handshake.
    limit: usize,
    /// Size of a bulk read (`read_buffer_size`).
    bulk: usize,
    /// The last socket read filled its buffer: more is probably waiting.
    burst: bool,
    /// Bytes were queued since the last flush.
    dirty: bool,
    threshold: usize,
    /// `--trace`: decodes and prints every frame the client sends.
    trace: Option<crate::trace::Frames>,
    /// Where the bytes handed to tungstenite stand in the client's frames.
    edge: Edge,
    /// The largest write since `take_largest`.
    largest: usize,
}

impl Wire {
    /// `head` is the request head and what followed it, `bulk` the largest read
    /// (`read_buffer_size`), `threshold` the outgoing bytes that force a write
    /// (`write_buffer_size`).
    pub(crate) fn new(
        client: Arc<Client>,
        head: Head,
        bulk: usize,
        threshold: usize,
        trace: Option<crate::trace::Detail>,
    ) -> Wire {
        let trace = trace.map(|detail| crate::trace::Frames::new(client.id(), "<-", detail));
        Wire {
            client,
            pos: 0,
            end: head.buf.len(),
            limit: head.len,
            buf: head.buf,
            bulk,
            burst: false,
            dirty: false,
            threshold,
            trace,
            edge: Edge::default(),
            largest: 0,
        }
    }

    /// Whether every byte handed to tungstenite so far belongs to a whole frame and a
    /// whole message: then tungstenite holds nothing of the client's that a fresh
    /// `WebSocket` over this wire would lose.
    pub(crate) fn at_message_edge(&self) -> bool {
        self.edge.at_rest()
    }

    /// After the handshake: let the bytes that followed the head through.
    pub(crate) fn end_handshake(&mut self) {
        if let Some(trace) = self.trace.as_mut().filter(|_| self.limit < self.end) {
            // Frames the client sent right behind its request head.
            trace.feed(&self.buf[self.limit..self.end]);
        }
        self.limit = usize::MAX;
        self.release();
    }

    /// Frees the buffer once it is drained, unless it is the bulk buffer: that one waits
    /// for [`release_bulk`](Self::release_bulk).
    fn release(&mut self) {
        if self.pos >= self.end {
            self.pos = 0;
            self.end = 0;
            if self.buf.len() != self.bulk {
                self.buf = Vec::new();
            }
        }
    }

    /// Whether the bulk read buffer is allocated.
    pub(crate) fn holds_bulk(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Frees the bulk read buffer if nothing in it is waiting to be read (the connection
    /// has gone quiet). Returns the bytes freed.
    pub(crate) fn release_bulk(&mut self) -> usize {
        if self.pos < self.end {
            return 0;
        }
        self.pos = 0;
        self.end = 0;
        std::mem::take(&mut self.buf).capacity()
    }

    /// Whether a frame read or written since [`take_largest`](Self::take_largest) may have
    /// grown tungstenite's buffers past their idle size. Half of its read buffer, because
    /// it reserves a frame's whole length on top of the bytes it already holds
    /// (`FrameCodec::read_frame`), so a frame over half of it can double it.
    pub(crate) fn has_grown(&self) -> bool {
        self.largest.max(self.edge.largest) > IDLE_READ / 2
    }

    /// The largest frame read plus the largest written since the last call: about what
    /// tungstenite's read and write buffers grew to.
    pub(crate) fn take_largest(&mut self) -> usize {
        std::mem::take(&mut self.largest) + std::mem::take(&mut self.edge.largest)
    }

    pub(crate) fn client(&self) -> &Arc<Client> {
        &self.client
    }
}

impl Read for Wire {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.serve(out)?;
        if self.limit == usize::MAX {
            // Past the handshake: these bytes are frames, whichever way they came.
            self.edge.feed(&out[..n]);
        }
        Ok(n)
    }
}

impl Wire {
    /// Hands tungstenite the next bytes: buffered ones first, else from the socket.
    fn serve(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.end {
            if self.dirty {
                // About to block waiting for the client: send what we owe it first.
                self.dirty = false;
                self.client.flush()?;
            }
            // And the shutdown's 1001, if this thread held the outbox when it came.
            self.client.close_if_going_away();
            if !(self.burst && out.len() < self.bulk) {
                let n = self.client.read_in(out)?;
                if let Some(trace) = self.trace.as_mut() {
                    trace.feed(&out[..n]);
                }
                self.burst = n > 0 && n == out.len();
                return Ok(n);
            }
            if self.buf.len() != self.bulk {
                self.buf = vec![0; self.bulk];
            }
            let n = self.client.read_in(&mut self.buf)?;
            if let Some(trace) = self.trace.as_mut() {
                trace.feed(&self.buf[..n]);
            }
            self.burst = n == self.bulk;
            self.pos = 0;
            self.end = n;
            if n == 0 {
                self.release();
                return Ok(0);
            }
        }
        // During the handshake `limit` stops at the head's end; tungstenite stops
        // reading once it has parsed the head, so it never sees the early frames here.
        let n = out.len().min(self.end.min(self.limit) - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.release();
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.largest = self.largest.max(buf.len());
        // During the handshake the 101 only waits in the outbox: `Client::upgrade` sends
        // it, under the lock that shutdown decides under (client.rs).
        let threshold = if self.in_handshake() {
            usize::MAX
        } else {
            self.threshold
        };
        self.client.queue(buf, threshold)?;
        self.dirty = true;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.in_handshake() {
            return Ok(()); // see `write`
        }
        self.dirty = false;
        self.client.flush()
    }
}

impl Wire {
    /// Before [`end_handshake`](Self::end_handshake).
    fn in_handshake(&self) -> bool {
        self.limit != usize::MAX
    }
}

/// Follows frame headers (RFC 6455 §5.2) through a stream of bytes, skipping payloads,
/// to tell whether the bytes so far end exactly at the end of a message. Only lengths, FIN
/// and opcodes are read; tungstenite validates everything else and fails the connection
/// on a bad frame, after which nobody asks.
#[derive(Debug, Default)]
struct Edge {
    /// The header being read (at most 14 bytes: 2, 8 of extended length, 4 of mask).
    head: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to come.
    left: u64,
    /// A data frame without FIN was seen, and not yet the continuation with FIN (§5.4).
    fragmented: bool,
    /// The largest payload length seen (reset by `Wire::take_largest`).
    largest: usize,
}

impl Edge {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.left > 0 {
                let skip = bytes
                    .len()
                    .min(usize::try_from(self.left).unwrap_or(usize::MAX));
                self.left -= skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            self.head[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have < 2 {
                continue;
            }
            let (b0, b1) = (self.head[0], self.head[1]);
            let extended = match b1 & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
            if self.have < 2 + extended + mask {
                continue;
            }
            self.left = match extended {
                0 => u64::from(b1 & 0x7f),
                2 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
                _ => {
                    let mut len = [0u8; 8];
                    len.copy_from_slice(&self.head[2..10]);
                    u64::from_be_bytes(len)
                }
            };
            self.largest = self
                .largest
                .max(usize::try_from(self.left).unwrap_or(usize::MAX));
            if b0 & 0x08 == 0 {
                // A data frame (text, binary, continuation) opens or ends a message;
                // control frames may come between its fragments and change nothing.
                self.fragmented = b0 & 0x80 == 0;
            }
            self.have = 0;
        }
    }

    fn at_rest(&self) -> bool {
        self.have == 0 && self.left == 0 && !self.fragmented
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;
    use std::time::Duration;

    /// A wire over a real socket pair, past the handshake, with a 16 KiB bulk buffer.
    fn wire() -> (Wire, TcpStream) {
        let (client, peer) = Client::over_loopback(Some(Duration::from_secs(5)));
        let client = Arc::new(client);
        let head = Head {
            buf: Vec::new(),
            len: 0,
        };
        let mut wire = Wire::new(client, head, 16 * 1024, 4096, None);
        wire.end_handshake();
        (wire, peer)
    }

    /// Reads exactly `n` bytes through the wire, `IDLE_READ` at a time, as tungstenite does.
    fn read_through(wire: &mut Wire, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut chunk = [0u8; IDLE_READ];
        while got.len() < n {
            let k = wire
                .read(&mut chunk[..IDLE_READ.min(n - got.len())])
                .expect("read");
            assert!(k > 0, "closed early");
            got.extend_from_slice(&chunk[..k]);
        }
        got
    }

    #[test]
    fn the_bulk_buffer_is_kept_between_messages_and_freed_on_request() {
        let (mut wire, mut peer) = wire();
        assert!(
            !wire.holds_bulk(),
            "an idle connection holds no bulk buffer"
        );
        let message: Vec<u8> = (0..10_000).map(|i| (i * 7) as u8).collect();
        for round in 0..3 {
            peer.write_all(&message).expect("write");
            std::thread::sleep(Duration::from_millis(20)); // all of it arrives at once
            assert_eq!(
                read_through(&mut wire, message.len()),
                message,
                "round {round}"
            );
            // Drained, but kept for the next message (allocating zero-fills it).
            assert!(
                wire.holds_bulk(),
                "round {round}: the bulk buffer was dropped"
            );
        }
        assert_eq!(wire.release_bulk(), 16 * 1024, "the bytes freed");
        assert!(!wire.holds_bulk(), "release_bulk did not free it");
        // And it comes back when data streams in again.
        peer.write_all(&message).expect("write");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(read_through(&mut wire, message.len()), message);
        assert!(wire.holds_bulk());
    }

    /// The examples of RFC 6455 §5.7, one after another, with a ping between two
    /// fragments: the edge must be at rest exactly where each message ends, whether the
    /// bytes come one at a time or all at once.
    #[test]
    fn edge_finds_message_ends_in_the_rfc_examples() {
        let hello_masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let hel = [0x01, 0x03, 0x48, 0x65, 0x6c]; // text, no FIN
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let lo = [0x80, 0x02, 0x6c, 0x6f]; // continuation, FIN
        let mut b256 = vec![0x82, 0x7e, 0x01, 0x00];
        b256.extend([7u8; 256]);
        let mut b64k = vec![0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0];
        b64k.extend(vec![9u8; 65536]);
        let empty_masked_close = [0x88, 0x80, 1, 2, 3, 4];
        // What clients send: masked, with 16-bit and 64-bit lengths.
        let mut m300 = vec![0x82, 0xfe, 0x01, 0x2c, 1, 2, 3, 4];
        m300.extend([5u8; 300]);
        let mut m64k = vec![0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        m64k.extend(vec![6u8; 65536]);
        let parts: [(&[u8], bool); 9] = [
            (&hello_masked, true),
            (&hel, false),
            (&ping, false), // a control frame inside a fragmented message
            (&lo, true),
            (&b256, true),
            (&b64k, true),
            (&empty_masked_close, true),
            (&m300, true),
            (&m64k, true),
        ];
        // One byte at a time: at rest after a part exactly when it ends a message, and
        // never in the middle of a frame.
        let mut edge = Edge::default();
        for (i, (part, ends_message)) in parts.iter().enumerate() {
            for (j, &byte) in part.iter().enumerate() {
                edge.feed(&[byte]);
                if j + 1 < part.len() {
                    assert!(!edge.at_rest(), "part {i}: at rest after byte {j}");
                }
            }
            assert_eq!(edge.at_rest(), *ends_message, "part {i}");
        }
        // All at once, and in uneven pieces that cut headers.
        let all: Vec<u8> = parts.iter().flat_map(|(p, _)| p.iter().copied()).collect();
        let mut edge = Edge::default();
        edge.feed(&all);
        assert!(edge.at_rest());
        let mut edge = Edge::default();
        for piece in all.chunks(3) {
            edge.feed(piece);
        }
        assert!(edge.at_rest());
        edge.feed(&hel[..1]);
        assert!(!edge.at_rest(), "half a header");
    }

    /// Edge sees what tungstenite reads after the handshake: not the request head, but
    /// the frames that arrived right behind it, and then the socket.
    #[test]
    fn edge_follows_early_frames_after_the_head_and_then_the_socket() {
        let (client, mut peer) = Client::over_loopback(Some(Duration::from_secs(5)));
        let head = b"GET / HTTP/1.1\r\n\r\n";
        let whole = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
        let mut buf = head.to_vec();
        buf.extend_from_slice(&whole);
        buf.extend_from_slice(&whole[..3]); // and the start of a second frame
        let mut wire = Wire::new(
            Arc::new(client),
            Head {
                buf,
                len: head.len(),
            },
            16 * 1024,
            4096,
            None,
        );
        // The handshake reads the head only.
        let mut got = [0u8; 64];
        let n = wire.read(&mut got).expect("head");
        assert_eq!(&got[..n], head);
        assert!(wire.at_message_edge(), "the head is not a frame");
        wire.end_handshake();
        let n = wire.read(&mut got).expect("early frames");
        assert_eq!(n, whole.len() + 3);
        assert!(!wire.at_message_edge(), "in the middle of the second frame");
        peer.write_all(&whole[3..]).expect("write");
        let n = wire.read(&mut got).expect("the rest");
        assert_eq!(n, whole.len() - 3);
        assert!(wire.at_message_edge(), "both frames whole");
        assert!(!wire.has_grown(), "two-byte frames grow nothing");
    }
}
