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
//!    freed as soon as a read finds the socket drained, so it costs nothing while idle.
//!    Measured in docs/performance.md.
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

    /// Frees the buffer once it is drained, unless a burst is under way (then it is
    /// about to be refilled).
    fn release(&mut self) {
        if self.pos >= self.end {
            self.pos = 0;
            self.end = 0;
            if !self.burst || self.buf.len() != self.bulk {
                self.buf = Vec::new();
            }
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
