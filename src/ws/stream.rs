//! The stream tungstenite reads and writes for one connection: the client's transport,
//! plus two things tinyws needs from it.
//!
//! 1. **Replay.** tinyws reads the request head itself (head.rs) to check it; tungstenite's
//!    handshake must then see those same bytes. The stream serves them first: exactly the
//!    head during the handshake (tungstenite refuses bytes after it), then anything the
//!    client sent right behind it, then the socket.
//! 2. **Deferred writes.** Replies go to the client's outbox (outbox.rs), and are written
//!    when the connection is about to block on the socket for more input, or when
//!    `write_buffer_size` bytes are waiting. A burst of pipelined messages that arrived in
//!    one read is answered with one `write` syscall, not one per message, and a lone
//!    message is answered at once (no timer, no Nagle delay: `TCP_NODELAY` is set). So the
//!    echo of a message is written here, from the *read* side: `ws.write(reply)` in
//!    connection.rs only queues it.
//!
//! How reads reach the socket is [`tune::Reads`]'s business (tune/mod.rs says how to read it).

use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::client::head::Head;
use crate::client::outbox::Client;
use crate::layers::teach::trace;
use crate::tune;

pub(crate) struct Stream {
    client: Arc<Client>,
    /// What tungstenite has not read yet of the request head; `None` once the
    /// handshake is over.
    replay: Option<Vec<u8>>,
    /// Bytes were queued since the last flush.
    dirty: bool,
    /// Outgoing bytes that force a write (`write_buffer_size`).
    threshold: usize,
    /// `--trace` and the inspector: decodes and narrates every frame the client sends.
    trace: Option<Box<trace::Frames>>,
    reads: tune::Reads,
}

impl Stream {
    /// `head` is the request head and what followed it, `bulk` the largest read
    /// (`read_buffer_size`).
    pub(crate) fn new(
        client: Arc<Client>,
        head: Head,
        bulk: usize,
        threshold: usize,
        trace: Option<trace::Frames>,
    ) -> Stream {
        let mut replay = head.buf;
        let mut reads = tune::Reads::new(bulk);
        // What the client sent right behind its head: after the handshake, before the socket.
        reads.preload(replay.split_off(head.len));
        Stream {
            client,
            replay: Some(replay),
            dirty: false,
            threshold,
            trace: trace.map(Box::new),
            reads,
        }
    }

    /// After the handshake, which has read all of the head.
    pub(crate) fn end_handshake(&mut self) {
        self.replay = None;
    }

    pub(crate) fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// About to block waiting for the client: send what we owe it first (the deferred
    /// replies), and the shutdown's 1001 if this thread held the outbox when it came.
    fn before_waiting(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.dirty) {
            self.client.flush()?;
        }
        self.client.close_if_going_away();
        Ok(())
    }
}

/// What tune/quiet.rs needs to give back a quiet connection's memory.
impl tune::Quiets for Stream {
    fn reads(&mut self) -> &mut tune::Reads {
        &mut self.reads
    }

    fn set_read_timeout(&self, timeout: Option<std::time::Duration>) {
        let _ = self.client.socket().set_read_timeout(timeout);
    }

    fn release_idle(&self) -> usize {
        tune::release_idle(&mut self.client.outbox().pending)
    }

    fn stand_in(&self) -> Stream {
        Stream::new(self.client.clone(), Head::default(), 0, 0, None)
    }
}

impl Read for Stream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(replay) = self.replay.as_mut() {
            if replay.is_empty() {
                // The head is all this stream gives before the handshake ends: "nothing
                // more yet", as a non-blocking socket says. A connection never gets here
                // (tungstenite stops reading once it has parsed the head), and reading the
                // socket would put its bytes before the early ones; the frame lab's
                // stream, all head, does (lab.rs).
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = out.len().min(replay.len());
            out[..n].copy_from_slice(&replay[..n]);
            replay.drain(..n);
            if replay.is_empty() {
                // Freed before tungstenite allocates what a connection keeps: freed
                // after, it leaves a hole below them, 1 KiB more per idle connection.
                *replay = Vec::new();
            }
            return Ok(n);
        }
        if !self.reads.has_buffered() {
            self.before_waiting()?;
        }
        let transport = self.client.transport();
        let n = self.reads.read(out, |buf| transport.read(buf))?;
        // Frames, the early ones included.
        if let Some(trace) = self.trace.as_mut() {
            trace.feed(&out[..n]);
        }
        self.reads.handed(&out[..n]);
        Ok(n)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.reads.wrote(buf.len());
        // During the handshake the 101 only waits in the outbox: `Client::upgrade` sends
        // it, under the lock that shutdown decides under (outbox.rs).
        let threshold = if self.replay.is_some() {
            usize::MAX
        } else {
            self.threshold
        };
        self.client.queue(buf, threshold)?;
        self.dirty = true;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.replay.is_some() {
            return Ok(()); // see `write`
        }
        self.dirty = false;
        self.client.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::Quiets;
    use std::time::Duration;

    /// Early frames: what the client sent right behind its request head is served after
    /// the handshake, before the socket, and the handshake sees only the head.
    #[test]
    fn the_head_then_early_frames_then_the_socket() {
        let (client, mut peer) = Client::over_loopback(Some(Duration::from_secs(5)));
        let head = b"GET / HTTP/1.1\r\n\r\n";
        let whole = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
        let mut buf = head.to_vec();
        buf.extend_from_slice(&whole);
        buf.extend_from_slice(&whole[..3]); // and the start of a second frame
        let mut stream = Stream::new(
            Arc::new(client),
            Head {
                buf,
                len: head.len(),
            },
            16 * 1024,
            4096,
            None,
        );
        let mut got = [0u8; 64];
        let n = stream.read(&mut got).expect("head");
        assert_eq!(&got[..n], head);
        assert!(stream.reads().at_message_edge(), "the head is not a frame");
        stream.end_handshake();
        let n = stream.read(&mut got).expect("early frames");
        assert_eq!(n, whole.len() + 3);
        assert!(
            !stream.reads().at_message_edge(),
            "in the middle of the second frame"
        );
        peer.write_all(&whole[3..]).expect("write");
        let n = stream.read(&mut got).expect("the rest");
        assert_eq!(n, whole.len() - 3);
        assert!(stream.reads().at_message_edge(), "both frames whole");
        assert!(!stream.reads().has_grown(), "two-byte frames grow nothing");
    }

    /// A stream whose handshake never ends (the frame lab's, ws/lab.rs): its head, then
    /// "nothing more yet" however often it is asked, and what is written waits in the
    /// outbox, never on the socket.
    #[test]
    fn a_stream_that_is_all_head_says_would_block_and_sends_nothing() {
        let (client, mut peer) = Client::over_loopback(Some(Duration::from_secs(5)));
        let client = Arc::new(client);
        let bytes = vec![0x89, 0x80, 1, 2, 3, 4]; // a masked, empty ping
        let head = Head {
            len: bytes.len(),
            buf: bytes.clone(),
        };
        let mut stream = Stream::new(client.clone(), head, 0, 0, None);
        let mut got = [0u8; 64];
        let n = stream.read(&mut got).expect("the head");
        assert_eq!(&got[..n], bytes.as_slice());
        for _ in 0..2 {
            let e = stream.read(&mut got).expect_err("nothing more");
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        }
        stream.write_all(&[0x8a, 0x00]).expect("write");
        stream.flush().expect("flush");
        assert_eq!(client.outbox().pending, [0x8a, 0x00]);
        peer.set_nonblocking(true).expect("nonblocking");
        let e = peer.read(&mut got).expect_err("nothing on the socket");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}
