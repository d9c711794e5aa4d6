//! The stream tungstenite reads and writes: the TCP socket, plus two tricks.
//!
//! 1. **Replay.** tinyws reads the request head itself (see `http.rs`); tungstenite's
//!    handshake must then see those same bytes. The wire serves them first: exactly the
//!    head during the handshake (tungstenite refuses bytes after it), then anything the
//!    client sent early, then the socket.
//! 2. **Deferred writes.** Replies go to the client's outbox, and are written when the
//!    connection is about to block on the socket for more input, or when
//!    `write_buffer_size` bytes are waiting. A burst of pipelined messages that arrived in
//!    one read is answered with one `write` syscall, not one per message, and a lone
//!    message is answered at once (no timer, no Nagle delay: `TCP_NODELAY` is set).

use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::client::Client;
use crate::http::Head;

pub(crate) struct Wire {
    client: Arc<Client>,
    replay: Vec<u8>,
    pos: usize,
    /// How far into `replay` reads may go: the head's end during the handshake.
    limit: usize,
    /// Bytes were queued since the last flush.
    dirty: bool,
    threshold: usize,
    /// `--trace`: decodes and prints every frame the client sends.
    trace: Option<crate::trace::Frames>,
}

impl Wire {
    pub(crate) fn new(client: Arc<Client>, head: Head, threshold: usize, trace: bool) -> Wire {
        let trace = trace.then(|| crate::trace::Frames::new(client.id(), "<-"));
        Wire {
            trace,
            client,
            limit: head.len,
            replay: head.buf,
            pos: 0,
            dirty: false,
            threshold,
        }
    }

    /// After the handshake: let the bytes that followed the head through.
    pub(crate) fn end_handshake(&mut self) {
        if let Some(trace) = self.trace.as_mut() {
            // Frames the client sent right behind its request head.
            trace.feed(&self.replay[self.limit..]);
        }
        self.limit = self.replay.len();
        self.release_replay();
    }

    fn release_replay(&mut self) {
        if self.pos >= self.replay.len() {
            self.replay = Vec::new();
            self.pos = 0;
            self.limit = 0;
        }
    }

    pub(crate) fn client(&self) -> &Arc<Client> {
        &self.client
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.limit {
            let n = buf.len().min(self.limit - self.pos);
            buf[..n].copy_from_slice(&self.replay[self.pos..self.pos + n]);
            self.pos += n;
            self.release_replay();
            return Ok(n);
        }
        if self.dirty {
            // About to block waiting for the client: send what we owe it first.
            self.dirty = false;
            self.client.flush()?;
        }
        let n = (&self.client.socket).read(buf)?;
        if let Some(trace) = self.trace.as_mut() {
            trace.feed(&buf[..n]);
        }
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
