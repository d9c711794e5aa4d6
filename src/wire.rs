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
//! 3. **Deferred writes.** Replies go to the client's outbox, and are written when the
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
        trace: bool,
    ) -> Wire {
        let trace = trace.then(|| crate::trace::Frames::new(client.id(), "<-"));
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
        }
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
    /// has gone quiet).
    pub(crate) fn release_bulk(&mut self) {
        if self.pos >= self.end {
            self.pos = 0;
            self.end = 0;
            self.buf = Vec::new();
        }
    }

    pub(crate) fn client(&self) -> &Arc<Client> {
        &self.client
    }
}

impl Read for Wire {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.end {
            if self.dirty {
                // About to block waiting for the client: send what we owe it first.
                self.dirty = false;
                self.client.flush()?;
            }
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
        self.client.queue(buf, self.threshold)?;
        self.dirty = true;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.dirty = false;
        self.client.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// A wire over a real socket pair, past the handshake, with a 16 KiB bulk buffer.
    fn wire() -> (Wire, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let peer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (socket, addr) = listener.accept().expect("accept");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let client = Arc::new(Client::new(1, addr, socket));
        let head = Head {
            buf: Vec::new(),
            len: 0,
        };
        let mut wire = Wire::new(client, head, 16 * 1024, 4096, false);
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
        wire.release_bulk();
        assert!(!wire.holds_bulk(), "release_bulk did not free it");
        // And it comes back when data streams in again.
        peer.write_all(&message).expect("write");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(read_through(&mut wire, message.len()), message);
        assert!(wire.holds_bulk());
    }
}
