//! Broadcast mode: the room, a small shared list of the clients that completed their
//! handshake, in the order they joined.
//!
//! One lock orders everything: a broadcast encodes its frame once, outside the lock, then
//! queues the same bytes to every member while holding it. Two broadcasts therefore reach
//! every member's backlog in the same order, and one sender's messages in the order it
//! sent them (its thread broadcasts one message after the other). Nothing under the lock
//! can block on a socket: a frame goes to each member's backlog (a pointer copy) for its
//! writer thread (`backlog.rs`), or, if it is small and nothing is queued for that member,
//! straight into the member's socket buffer with a send that never waits (`nowait.rs`).
//! So the lock is held for at most a short copy per member, however slow a member is.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use log::warn;
use tungstenite::Message;

use crate::backlog::{ENTRY_COST, Writer};
use crate::client::Client;
use crate::config::{Config, format_size};

pub(crate) struct Hub {
    members: Mutex<Vec<Arc<Client>>>,
    max_backlog: usize,
}

impl Hub {
    pub(crate) fn new(config: &Config) -> Hub {
        Hub {
            members: Mutex::new(Vec::new()),
            max_backlog: config.max_backlog,
        }
    }

    fn members(&self) -> MutexGuard<'_, Vec<Arc<Client>>> {
        // Nothing in the list can be half-updated by a panic: keep using it.
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a text or binary message for every member; returns how many got it.
    /// Members whose backlog overflowed or that are closing leave the list here.
    pub(crate) fn broadcast(&self, message: &Message) -> usize {
        let (opcode, payload): (u8, &[u8]) = match message {
            Message::Text(t) => (0x1, t.as_bytes()),
            Message::Binary(b) => (0x2, b),
            _ => return 0, // control frames belong to one connection (RFC 6455 §5.5)
        };
        let frame = data_frame(opcode, payload);
        if frame.len() + ENTRY_COST > self.max_backlog {
            warn!(
                "a broadcast of {} bytes is larger than --max-backlog ({}); not sent",
                payload.len(),
                format_size(self.max_backlog)
            );
            return 0;
        }
        let mut members = self.members();
        members.retain(|c| c.send_shared(&frame));
        members.len()
    }

    /// Queues a close frame for every member (shutdown). Never blocks on a socket.
    pub(crate) fn close_all(&self, code: u16, reason: &str) {
        for c in self.members().iter() {
            c.close(code, reason);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.members().len()
    }
}

/// A client's place in the room and its writer thread. Dropping it leaves the room
/// first (nothing new is queued), then lets the writer finish (see [`Writer`]).
pub(crate) struct Member<'a> {
    hub: &'a Hub,
    id: u64,
    _writer: Writer,
}

impl<'a> Member<'a> {
    /// Starts the client's writer, then adds it to the room.
    pub(crate) fn join(hub: &'a Hub, client: &Arc<Client>, config: &Config) -> io::Result<Self> {
        let writer = Writer::start(client, config.max_backlog, config.write_timeout)?;
        hub.members().push(client.clone());
        Ok(Member {
            hub,
            id: client.id(),
            _writer: writer,
        })
    }
}

impl Drop for Member<'_> {
    fn drop(&mut self) {
        self.hub.members().retain(|c| c.id() != self.id);
    }
}

/// One unmasked, unfragmented server frame (RFC 6455 §5.2): FIN and the opcode, then the
/// payload length in 7 bits, or 126 and 16 bits, or 127 and 64 bits, in network byte
/// order, then the payload. Servers never mask (§5.1), so the bytes are the same for
/// every receiver and are built once per broadcast.
pub(crate) fn data_frame(opcode: u8, payload: &[u8]) -> Arc<[u8]> {
    let mut header = [0u8; 10];
    header[0] = 0x80 | opcode;
    let n = payload.len();
    let len = if n < 126 {
        header[1] = n as u8;
        2
    } else if n <= 0xffff {
        header[1] = 126;
        header[2..4].copy_from_slice(&(n as u16).to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(n as u64).to_be_bytes());
        10
    };
    let mut frame = Vec::with_capacity(len + n);
    frame.extend_from_slice(&header[..len]);
    frame.extend_from_slice(payload);
    frame.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The unmasked examples of RFC 6455 §5.7, byte for byte.
    #[test]
    fn frames_match_rfc_6455_section_5_7() {
        assert_eq!(
            &data_frame(0x1, b"Hello")[..],
            [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        let f = data_frame(0x2, &[7; 256]);
        assert_eq!(&f[..4], [0x82, 0x7e, 0x01, 0x00]);
        assert_eq!(f.len(), 4 + 256);
        let f = data_frame(0x2, &[7; 65536]);
        assert_eq!(
            &f[..10],
            [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
        assert_eq!(f.len(), 10 + 65536);
        assert!(f[10..].iter().all(|&b| b == 7));
        // The boundaries of the 7- and 16-bit lengths.
        assert_eq!(&data_frame(0x2, &[0; 125])[..2], [0x82, 125]);
        assert_eq!(&data_frame(0x2, &[0; 126])[..4], [0x82, 126, 0, 126]);
        assert_eq!(&data_frame(0x2, &[0; 65535])[..4], [0x82, 126, 0xff, 0xff]);
        assert_eq!(&data_frame(0x1, b"")[..], [0x81, 0]);
    }
}
