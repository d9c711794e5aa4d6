//! Broadcast mode: the room, a small shared list of the clients that completed their
//! handshake, in the order they joined.
//!
//! One turn at a time orders everything: a broadcast encodes its frame once, outside any
//! lock, then waits for its turn (first come, first served) and queues the same bytes
//! to every member before the next broadcast may start. Two broadcasts therefore reach
//! every member's backlog in the same order, and one sender's messages in the order it
//! sent them (its thread broadcasts one message after the other). Nothing here blocks
//! on a socket: a frame goes to each member's backlog (a pointer copy) for its writer
//! thread (`backlog.rs`), or, if it is small and nothing is queued for that member,
//! straight into the member's socket buffer with a send that never waits (`nowait.rs`).
//!
//! Backpressure: a member whose backlog is full does not get the frame dropped, and is
//! not dropped itself. The broadcast keeps its turn and waits (on the room's [`Bell`],
//! which the member's writer rings when it takes frames) until the member has room, so
//! the sender's connection thread stops reading its socket and TCP slows the sender
//! down to what the slowest reading member takes. The members that have room get the
//! frame at once. A member that makes no progress for `--stall-timeout` while the room
//! waits for it is closed with 1008 and the room goes on (backlog.rs `check_stall`). So
//! one deliberately slow reader, just fast enough not to be cut, paces every sender. The turns are a queue, not a race
//! for a lock: while one member floods, another member's message waits for one frame of
//! the flood, not for all of it, and two flooding members take turns.

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use log::{debug, warn};
use tungstenite::Message;

use crate::backlog::{Bell, ENTRY_COST, Stalled, Writer};
use crate::client::{Client, Offer};
use crate::config::{Config, format_size};

pub(crate) struct Hub {
    room: Mutex<Room>,
    /// Signalled when a turn ends.
    turn_over: Condvar,
    /// Rung by members' writers when a broadcast may be waiting for them.
    bell: Arc<Bell>,
    max_backlog: usize,
    stall_timeout: Duration,
}

#[derive(Default)]
struct Room {
    members: Vec<Arc<Client>>,
    /// Turns handed out, and the turn being served: broadcasts go first come, first served.
    next_turn: u64,
    serving: u64,
}

impl Hub {
    pub(crate) fn new(config: &Config) -> Hub {
        Hub {
            room: Mutex::new(Room::default()),
            turn_over: Condvar::new(),
            bell: Arc::new(Bell::default()),
            max_backlog: config.max_backlog,
            stall_timeout: config.stall_timeout,
        }
    }

    fn room(&self) -> MutexGuard<'_, Room> {
        // Nothing in the room can be half-updated by a panic: keep using it.
        self.room.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a text or binary message for every member; returns how many got it. Waits
    /// while a member's backlog is full (see the module comment), for as long as that
    /// member keeps taking frames; a member that takes nothing for `--stall-timeout`
    /// is closed with 1008 meanwhile. `from`: the member that sent it, if any; a member
    /// the server is closing has nothing more to say to the room.
    pub(crate) fn broadcast(&self, message: &Message, from: Option<&Client>) -> usize {
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
        // Declared before the room's guard, so it is dropped after it (Turn::drop locks).
        let turn: Turn<'_>;
        let mut room = self.room();
        let mine = room.next_turn;
        room.next_turn += 1;
        while room.serving != mine {
            room = self.turn_over.wait(room).unwrap_or_else(|p| p.into_inner());
        }
        turn = Turn { hub: self };
        // Looked at after the wait for the turn, which may be long (the room paces the
        // senders): a member the server closed meanwhile has nothing more to say.
        if from.is_some_and(Client::is_closing) {
            return 0;
        }
        // The common case, under the room's lock: every member has room.
        let mut queued = 0;
        let mut full = Vec::new();
        room.members.retain(|c| match c.offer(&frame) {
            Offer::Queued => {
                queued += 1;
                true
            }
            Offer::Full => {
                full.push(c.clone());
                true
            }
            Offer::Gone => false,
        });
        drop(room);
        if !full.is_empty() {
            queued += self.wait_for(&frame, full, from);
        }
        drop(turn);
        queued
    }

    /// Offers `frame` again to the members whose backlog was full, each time a writer
    /// rings the bell, until each took it, left, or was closed for not reading. Holds the
    /// turn, not the room's lock: members may join and leave meanwhile.
    fn wait_for(
        &self,
        frame: &Arc<[u8]>,
        mut full: Vec<Arc<Client>>,
        from: Option<&Client>,
    ) -> usize {
        let mut queued = 0;
        let mut logged = false;
        loop {
            let seen = self.bell.seen();
            let now = Instant::now();
            let mut next_look = now + self.stall_timeout;
            let mut stuck = Vec::new();
            full.retain(|c| match c.offer(frame) {
                Offer::Queued => {
                    queued += 1;
                    false
                }
                Offer::Gone => false,
                Offer::Full => match c.check_stall(now, self.stall_timeout) {
                    Stalled::Until(t) => {
                        next_look = next_look.min(t);
                        true
                    }
                    Stalled::Stuck(waited) => {
                        stuck.push((c.clone(), waited));
                        false
                    }
                },
            });
            if !stuck.is_empty() {
                for (c, waited) in &stuck {
                    c.cut_stuck(*waited);
                }
                self.room()
                    .members
                    .retain(|m| !stuck.iter().any(|(c, _)| Arc::ptr_eq(c, m)));
            }
            let Some(first) = full.first() else {
                return queued;
            };
            if !logged {
                logged = true;
                if let Some(sender) = from.filter(|s| s.note_paced(now)) {
                    debug!(
                        "#{} {}: paced: the room waits for #{} (and {} more) to read; this sender's messages wait meanwhile (--max-backlog {})",
                        sender.id(),
                        sender.peer_addr(),
                        first.id(),
                        full.len() - 1,
                        format_size(self.max_backlog)
                    );
                }
            }
            self.bell
                .wait(seen, next_look.max(now + Duration::from_millis(1)));
        }
    }

    /// Queues a close frame for every member (shutdown). Never blocks on a socket.
    pub(crate) fn close_all(&self, code: u16, reason: &str) {
        for c in self.room().members.iter() {
            c.close(code, reason);
        }
        // A broadcast waiting for a member's room: they are all closing now.
        self.bell.ring();
    }

    pub(crate) fn len(&self) -> usize {
        self.room().members.len()
    }
}

/// The current broadcast's turn; ending it (also by a panic) lets the next one go.
struct Turn<'a> {
    hub: &'a Hub,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut room = self.hub.room();
        room.serving += 1;
        if room.next_turn != room.serving {
            self.hub.turn_over.notify_all();
        }
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
        let writer = Writer::start(client, config.max_backlog, config.write_timeout, &hub.bell)?;
        hub.room().members.push(client.clone());
        Ok(Member {
            hub,
            id: client.id(),
            _writer: writer,
        })
    }
}

impl Drop for Member<'_> {
    fn drop(&mut self) {
        self.hub.room().members.retain(|c| c.id() != self.id);
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
