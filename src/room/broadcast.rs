//! Broadcast mode: the room, a small shared list of the clients that completed their
//! handshake, in the order they joined.
//!
//! One turn at a time orders everything: a broadcast encodes its frame once, outside any
//! lock, then waits for its turn (first come, first served) and queues the same bytes
//! to every member before the next broadcast may start. Two broadcasts therefore reach
//! every member's backlog in the same order, and one sender's messages in the order it
//! sent them (its thread broadcasts one message after the other). Nothing here blocks
//! on a socket: a frame goes to each member's backlog (a pointer copy) for its writer
//! thread (`writer.rs`), or, if it is small and nothing is queued for that member,
//! straight into the member's socket buffer with a send that never waits (`tune/nowait.rs`).
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

use crate::client::backlog::{Bell, ENTRY_COST, Stalled};
use crate::client::outbox::Client;
use crate::config::{Config, format_size};
use crate::room::writer::Writer;
use crate::util::lock::{lock, wait};
use crate::{frame, tune};

/// The broadcast room: its members in the order they joined, and the turns that order
/// every broadcast.
pub(crate) struct Room {
    state: Mutex<Members>,
    /// Signalled when a turn ends.
    turn_over: Condvar,
    /// Rung by members' writers when a broadcast may be waiting for them.
    bell: Arc<Bell>,
    max_backlog: usize,
    stall_timeout: Duration,
}

#[derive(Default)]
/// What the room's lock guards.
struct Members {
    list: Vec<Arc<Client>>,
    /// Turns handed out, and the turn being served: broadcasts go first come, first served.
    next_turn: u64,
    serving: u64,
}

impl Room {
    pub(crate) fn new(config: &Config) -> Room {
        Room {
            state: Mutex::new(Members::default()),
            turn_over: Condvar::new(),
            bell: Arc::new(Bell::default()),
            max_backlog: config.max_backlog,
            stall_timeout: config.stall_timeout,
        }
    }

    fn members(&self) -> MutexGuard<'_, Members> {
        lock(&self.state)
    }

    /// Queues a text or binary message for every member; returns how many got it. Waits
    /// while a member's backlog is full (see the module comment), for as long as that
    /// member keeps taking frames; a member that takes nothing for `stall_timeout`
    /// is closed with 1008 meanwhile. `from`: the member that sent it, if any; a member
    /// the server is closing has nothing more to say to the room.
    pub(crate) fn broadcast(&self, message: &Message, from: Option<&Client>) -> usize {
        let Some((opcode, payload)) = frame::data(message) else {
            return 0;
        };
        let frame = frame::encode(opcode, payload);
        if frame.len() + ENTRY_COST > self.max_backlog {
            warn!(
                "a broadcast of {} bytes is larger than `max_backlog` ({}); not sent",
                payload.len(),
                format_size(self.max_backlog)
            );
            return 0;
        }
        // Declared before the room's guard, so it is dropped after it (Turn::drop locks).
        let turn: Turn<'_>;
        let mut members = self.members();
        let mine = members.next_turn;
        members.next_turn += 1;
        while members.serving != mine {
            members = wait(&self.turn_over, members);
        }
        turn = Turn { room: self };
        // Looked at after the wait for the turn, which may be long (the room paces the
        // senders): a member the server closed meanwhile has nothing more to say.
        if from.is_some_and(Client::is_closing) {
            return 0;
        }
        // The common case, under the room's lock: every member has room.
        let mut queued = 0;
        let mut full = Vec::new();
        members.list.retain(|c| match c.offer(&frame) {
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
        drop(members);
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
                self.members()
                    .list
                    .retain(|m| !stuck.iter().any(|(c, _)| Arc::ptr_eq(c, m)));
            }
            let Some(first) = full.first() else {
                return queued;
            };
            if !logged {
                logged = true;
                if let Some(sender) = from.filter(|s| s.note_paced(now)) {
                    debug!(
                        "#{} {}: paced: the room waits for #{} (and {} more) to read; this sender's messages wait meanwhile (`max_backlog` is {})",
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
        for c in self.members().list.iter() {
            c.close(code, reason);
        }
        // A broadcast waiting for a member's room: they are all closing now.
        self.bell.ring();
    }

    pub(crate) fn len(&self) -> usize {
        self.members().list.len()
    }
}

/// The current broadcast's turn; ending it (also by a panic) lets the next one go.
struct Turn<'a> {
    room: &'a Room,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut members = self.room.members();
        members.serving += 1;
        if members.next_turn != members.serving {
            self.room.turn_over.notify_all();
        }
    }
}

/// A client's place in broadcast mode: its membership of the one room, or of the room
/// of its path, and its writer thread. Dropping it leaves the room first (nothing new is
/// queued), then lets the writer finish (see [`Writer`]), then gives the seat back, which
/// removes the room if it was the last.
pub(crate) struct Place<'a> {
    room: Arc<Room>,
    id: u64,
    // Fields drop in this order, after `drop` has left the room.
    _writer: Writer,
    /// With `--rooms`: the seat in the room of its path (rooms.rs), given back on drop.
    _seat: Box<dyn Send + 'a>,
}

impl<'a> Place<'a> {
    /// Plain broadcast mode: a member of the server's one room, with no seat.
    pub(crate) fn in_room(
        room: &Arc<Room>,
        client: &Arc<Client>,
        config: &Config,
    ) -> io::Result<Place<'a>> {
        Self::with_seat(room, client, config, Box::new(()))
    }

    /// Rooms mode: starts the client's writer, then adds it to `room`, holding `seat`
    /// (rooms.rs) until it leaves; on failure the seat is given back at once.
    pub(crate) fn with_seat(
        room: &Arc<Room>,
        client: &Arc<Client>,
        config: &Config,
        seat: Box<dyn Send + 'a>,
    ) -> io::Result<Place<'a>> {
        let writer = Writer::start(client, config.max_backlog, config.write_timeout, &room.bell)?;
        room.members().list.push(client.clone());
        Ok(Place {
            room: room.clone(),
            id: client.id(),
            _writer: writer,
            _seat: seat,
        })
    }

    /// Where this client's messages go.
    pub(crate) fn room(&self) -> &Room {
        &self.room
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.room.members().list.retain(|c| c.id() != self.id);
    }
}

/// What became of a frame offered to a member ([`Client::offer`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    Queued,
    /// Its backlog is full: offer it again once the writer has taken frames.
    Full,
    /// Closing or failed: it is leaving the room.
    Gone,
}

/// What the room asks of a member's outbox (outbox.rs), under the outbox lock.
impl Client {
    /// Broadcast mode: queues one frame shared with the other members, if its backlog has
    /// room for it (then [`Offer::Queued`]); [`Offer::Full`] if not (the caller waits and
    /// offers it again: see `Room::broadcast`); [`Offer::Gone`] if the client is closing or failed.
    pub(crate) fn offer(&self, frame: &Arc<[u8]>) -> Offer {
        let mut out = self.outbox();
        if out.closed || out.broken {
            return Offer::Gone;
        }
        // Nothing queued ahead of it: a small frame may go straight into the socket
        // buffer from this thread, if it fits now (tune/nowait.rs), sparing the writer thread
        // a wake-up. The outbox lock keeps the writer from starting meanwhile.
        let direct =
            frame.len() <= tune::DIRECT_MAX && !self.transport().is_tls() && out.watch.is_none();
        let Some(backlog) = out.backlog.as_mut().filter(|b| !b.finishing) else {
            return Offer::Gone;
        };
        if direct && backlog.is_idle() {
            match tune::send_now(self.socket(), frame) {
                Ok(n) if n == frame.len() => return Offer::Queued,
                Ok(n) => {
                    // The socket took the start of the frame: the writer sends the rest.
                    backlog.push_rest(Arc::from(&frame[n..]));
                    self.wake_writer(&mut out, Some(frame));
                    return Offer::Queued;
                }
                // Full, or an error the writer thread will meet again and report.
                Err(_) => {}
            }
        }
        if !backlog.push_shared(frame) {
            return Offer::Full;
        }
        self.wake_writer(&mut out, Some(frame));
        Offer::Queued
    }

    /// Broadcast mode: the room waits for this client's full backlog; has it stopped
    /// reading? Asks the kernel for its progress only when `timeout` has passed.
    pub(crate) fn check_stall(&self, now: Instant, timeout: Duration) -> Stalled {
        let mut out = self.outbox();
        let gone = out.closed || out.broken;
        match out.backlog.as_mut() {
            Some(b) if !gone => {
                b.check_stall(now, timeout, || crate::guard::tcp::progress(self.socket()))
            }
            _ => Stalled::Until(now), // gone: the caller's next offer says so
        }
    }

    /// Broadcast mode: closes a client that stopped reading while the room waited for it
    /// (1008; its queued frames are freed now). The writer sends the close when it can.
    pub(crate) fn cut_stuck(&self, waited: Duration) {
        let mut out = self.outbox();
        if out.closed || out.broken {
            return;
        }
        if let Some(backlog) = out.backlog.as_mut() {
            backlog.evict_stuck(waited);
            self.wake_writer(&mut out, None);
        }
    }

    /// Why the room dropped this client (stuck, a flood of pings, its writer's timeout),
    /// if it did: for the connection's last log line (ws/connection.rs `finish`).
    pub(crate) fn dropped_reason(&self) -> Option<String> {
        self.outbox().backlog.as_ref()?.dropped.clone()
    }

    /// Broadcast mode: the room makes this client's messages wait at `now`. Returns whether
    /// that is news worth a log line: the first time, or after a second without.
    pub(crate) fn note_paced(&self, now: Instant) -> bool {
        let mut at = lock(&self.member.paced_at);
        let news = at.is_none_or(|t| now.saturating_duration_since(t) > Duration::from_secs(1));
        *at = Some(now);
        news
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpStream;

    /// Reads what `peer` has now (up to a short wait) onto `into`.
    fn read_some(peer: &mut TcpStream, into: &mut Vec<u8>) {
        let mut buf = [0u8; 64 * 1024];
        match peer.read(&mut buf) {
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if crate::util::io::is_timeout(&e) => {}
            Err(e) => panic!("reading the peer: {e}"),
        }
    }

    /// The direct path of `Client::offer` (tune/nowait.rs) over a real socket whose
    /// reader pauses: fill the socket, let the writer drain it, and again, until a direct
    /// send is cut mid-frame; then every frame must arrive whole and in order.
    #[test]
    fn a_direct_send_cut_mid_frame_is_finished_whole_by_the_writer() {
        let (client, mut peer) = Client::over_loopback(None);
        peer.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let client = Arc::new(client);
        client.set_upgraded("/".into());
        let bell = Arc::default();
        let writer =
            Writer::start(&client, 64 << 20, Duration::from_secs(5), &bell).expect("writer");

        let (mut sent, mut received, mut cuts) = (Vec::new(), Vec::new(), 0);
        let deadline = Instant::now() + Duration::from_secs(20);
        for i in 0..200_000usize {
            if cuts >= 3 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no direct send was cut mid-frame"
            );
            let size = 1000 + (i * 37) % (crate::tune::DIRECT_MAX - 1010);
            let payload: Vec<u8> = (0..size).map(|k| (k + i) as u8).collect();
            let frame = crate::frame::encode(crate::frame::BINARY, &payload);
            assert_eq!(client.offer(&frame), Offer::Queued);
            sent.push(frame);
            let (partial, idle) = {
                let out = client.outbox();
                let b = out.backlog.as_ref().expect("backlog mode");
                (b.has_partial_head(), b.is_idle())
            };
            if partial {
                cuts += 1;
            }
            if !idle {
                // Full (cut or not): read until the writer has drained the backlog, so
                // the next frames go the direct way again.
                while !client.outbox().backlog.as_ref().expect("backlog").is_idle() {
                    assert!(Instant::now() < deadline, "the writer never drained");
                    read_some(&mut peer, &mut received);
                }
            }
        }
        assert!(cuts > 0, "no direct send was cut mid-frame");
        let total: usize = sent.iter().map(|f| f.len()).sum();
        while received.len() < total {
            assert!(Instant::now() < deadline, "not everything arrived");
            read_some(&mut peer, &mut received);
        }
        assert_eq!(received.len(), total, "nothing extra");
        let mut at = 0;
        for (i, frame) in sent.iter().enumerate() {
            assert_eq!(
                &received[at..at + frame.len()],
                &frame[..],
                "frame {i} whole, in order"
            );
            at += frame.len();
        }
        drop(writer);
    }
}
