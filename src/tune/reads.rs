//! The read side of a connection's stream (stream.rs), tuned: bulk reads while data
//! streams in, and frame edges for tune/quiet.rs. To the stream, [`Reads::read`] is
//! simply a read from the socket into `out`.
//!
//! **Bulk reads.** tungstenite reads at most its read buffer at a time, and an idle
//! connection keeps that buffer (zero-filled, so resident) for its whole life. tinyws gives
//! tungstenite a small one ([`IDLE_READ`]) to keep idle connections cheap. When a read
//! fills it, more data is likely waiting (a large message, or a pipelined burst), so the
//! next read takes up to `read_buffer_size` at once into a buffer of its own and serves
//! tungstenite from memory: few syscalls per large message. That buffer is kept while
//! messages keep coming (allocating it zero-fills it, which cost more than the copy for
//! messages of a few KiB) and freed once the connection has been quiet for a second
//! ([`Reads::release_bulk`], from quiet.rs), so it costs nothing while idle. Measured in
//! docs/performance.md.
//!
//! **Frame edges.** [`Edge`] follows the frame headers in the bytes handed to tungstenite
//! (with scan.rs), so quiet.rs knows when tungstenite holds no part of a frame or
//! message and can be given fresh, small buffers (its own keep their largest size), and
//! how large the frames were.

use std::io;

use super::{Piece, Scanner};

/// The read buffer tinyws gives tungstenite: what an idle connection keeps. A message up
/// to about this size arrives in one read; larger ones switch to bulk reads.
pub(crate) const IDLE_READ: usize = 1024;

pub(crate) struct Reads {
    /// A bulk read not yet handed on: `buf[pos..end]`.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Size of a bulk read (`read_buffer_size`; 0: never).
    bulk: usize,
    /// The last socket read filled its buffer: more is probably waiting.
    burst: bool,
    edge: Edge,
    /// The largest write since `take_largest`.
    largest_write: usize,
}

impl Reads {
    pub(crate) fn new(bulk: usize) -> Reads {
        Reads {
            buf: Vec::new(),
            pos: 0,
            end: 0,
            bulk,
            burst: false,
            edge: Edge::default(),
            largest_write: 0,
        }
    }

    /// Serves `bytes` (what the client sent right behind its request head) before the
    /// socket, as if a bulk read had brought them.
    pub(crate) fn preload(&mut self, bytes: Vec<u8>) {
        self.end = bytes.len();
        self.buf = bytes;
    }

    /// Bytes of a bulk read wait here: the next read does not touch the socket.
    pub(crate) fn has_buffered(&self) -> bool {
        self.pos < self.end
    }

    /// Reads into `out`: from the bulk buffer if it holds bytes, else from `socket`,
    /// straight into `out` or, after a read that filled its buffer, into the bulk buffer.
    pub(crate) fn read(
        &mut self,
        out: &mut [u8],
        mut socket: impl FnMut(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.pos >= self.end {
            if !(self.burst && out.len() < self.bulk) {
                let n = socket(out)?;
                self.burst = n > 0 && n == out.len();
                return Ok(n);
            }
            if self.buf.len() != self.bulk {
                self.buf = vec![0; self.bulk];
            }
            let n = socket(&mut self.buf)?;
            self.burst = n == self.bulk;
            if n == 0 {
                return Ok(0);
            }
            self.pos = 0;
            self.end = n;
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.end && self.buf.len() != self.bulk {
            // The preloaded bytes, all handed on: a client that keeps talking never
            // goes quiet, so they would otherwise stay for the connection's life.
            self.release_bulk();
        }
        Ok(n)
    }

    /// Frame bytes handed to tungstenite, whichever way they came.
    pub(crate) fn handed(&mut self, bytes: &[u8]) {
        self.edge.feed(bytes);
    }

    /// tungstenite wrote `len` bytes (a frame, or the 101).
    pub(crate) fn wrote(&mut self, len: usize) {
        self.largest_write = self.largest_write.max(len);
    }

    /// Whether every byte handed to tungstenite so far belongs to a whole frame and a
    /// whole message: then tungstenite holds nothing of the client's that a fresh
    /// `WebSocket` over this stream would lose.
    pub(crate) fn at_message_edge(&self) -> bool {
        self.edge.at_rest()
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
        self.largest_write.max(self.edge.largest) > IDLE_READ / 2
    }

    /// The largest frame read plus the largest written since the last call: about what
    /// tungstenite's read and write buffers grew to.
    pub(crate) fn take_largest(&mut self) -> usize {
        std::mem::take(&mut self.largest_write) + std::mem::take(&mut self.edge.largest)
    }
}

/// Where the bytes handed to tungstenite stand in the client's frames and messages.
/// Only lengths, FIN and opcodes are read; tungstenite validates everything else and
/// fails the connection on a bad frame, after which nobody asks.
#[derive(Debug, Default)]
struct Edge {
    scanner: Scanner,
    /// A data frame without FIN was seen, and not yet the continuation with FIN (§5.4).
    fragmented: bool,
    /// The largest payload length seen (reset by `Reads::take_largest`).
    largest: usize,
}

impl Edge {
    fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(piece) = self.scanner.next(&mut bytes) {
            if let Piece::Header(h) = piece {
                self.largest = self
                    .largest
                    .max(usize::try_from(h.len).unwrap_or(usize::MAX));
                // §5.5: control frames (close, ping, pong, reserved 0xB-0xF) have the
                // opcode's high bit set.
                if h.opcode & 0x8 == 0 {
                    // A data frame (text, binary, continuation) opens or ends a message;
                    // control frames may come between its fragments and change nothing.
                    self.fragmented = !h.fin;
                }
            }
        }
    }

    fn at_rest(&self) -> bool {
        self.scanner.between_frames() && !self.fragmented
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// Reads exactly `n` bytes through `reads`, `IDLE_READ` at a time, as tungstenite does.
    fn read_through(reads: &mut Reads, socket: &TcpStream, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut chunk = [0u8; IDLE_READ];
        while got.len() < n {
            let want = IDLE_READ.min(n - got.len());
            let k = reads
                .read(&mut chunk[..want], |buf| (&*socket).read(buf))
                .expect("read");
            assert!(k > 0, "closed early");
            got.extend_from_slice(&chunk[..k]);
        }
        got
    }

    #[test]
    fn the_bytes_behind_the_head_are_freed_once_handed_on() {
        // A client that sends a frame every second never goes quiet: the copy of what
        // came behind its head must not wait for release_bulk.
        let mut reads = Reads::new(16 * 1024);
        let early: Vec<u8> = (0..5_000).map(|i| i as u8).collect();
        reads.preload(early.clone());
        let mut got = Vec::new();
        let mut chunk = [0u8; IDLE_READ];
        while got.len() < early.len() {
            let k = reads
                .read(&mut chunk, |_| panic!("read the socket before the preload"))
                .expect("read");
            got.extend_from_slice(&chunk[..k]);
        }
        assert_eq!(got, early);
        assert!(!reads.holds_bulk(), "the preloaded bytes are still held");
    }

    #[test]
    fn the_bulk_buffer_is_kept_between_messages_and_freed_on_request() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut peer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (socket, _) = listener.accept().expect("accept");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut reads = Reads::new(16 * 1024);
        assert!(
            !reads.holds_bulk(),
            "an idle connection holds no bulk buffer"
        );
        let message: Vec<u8> = (0..10_000).map(|i| (i * 7) as u8).collect();
        for round in 0..3 {
            peer.write_all(&message).expect("write");
            std::thread::sleep(Duration::from_millis(20)); // all of it arrives at once
            assert_eq!(
                read_through(&mut reads, &socket, message.len()),
                message,
                "round {round}"
            );
            // Drained, but kept for the next message (allocating zero-fills it).
            assert!(
                reads.holds_bulk(),
                "round {round}: the bulk buffer was dropped"
            );
        }
        assert_eq!(reads.release_bulk(), 16 * 1024, "the bytes freed");
        assert!(!reads.holds_bulk(), "release_bulk did not free it");
        // And it comes back when data streams in again.
        peer.write_all(&message).expect("write");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(read_through(&mut reads, &socket, message.len()), message);
        assert!(reads.holds_bulk());
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
        assert_eq!(edge.largest, 65536);
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
}
