//! Rooms mode (`--rooms`): one room per request path, `/chat/lobby` and `/chat/42` apart.
//!
//! Each room is a [`Room`] as in plain broadcast mode (room/broadcast.rs), with all its guarantees:
//! one order for its members, bounded backlogs, senders paced by its own members. This
//! file only finds a client's room by its path, and makes sure there is one room per path
//! at any time: a room exists while it has a seat taken (a member, or a client joining),
//! and is removed with its last seat, so an empty room costs nothing and at most one room
//! exists per connection.
//!
//! Why seats and not the member lists: a client that found its room must not see it
//! removed before it is in its list (it would be alone in a room nobody else can reach).
//! The seat is taken under the map's lock, before the writer thread starts, and given
//! back under it after the member left, so the count a room is removed at is exact.
//! Nothing blocks under the map's lock: a broadcast takes the room out, then sends.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use crate::client::outbox::Client;
use crate::config::Config;
use crate::room::broadcast::{Place, Room};
use crate::util::lock::lock;

/// The rooms of a `--rooms` server, by path (empty otherwise).
#[derive(Default)]
pub(crate) struct Rooms {
    /// The key is shared with the rooms' seats: one copy of a path per room, however many
    /// members (a path may be as long as `max_head_size`).
    by_path: Mutex<HashMap<Arc<str>, Entry>>,
}

struct Entry {
    room: Arc<Room>,
    /// Members, and clients on their way in (see the module comment).
    seats: usize,
}

impl Rooms {
    /// Makes `client` a member of the room of `path`, which is made if it is the first.
    pub(crate) fn join<'a>(
        &'a self,
        path: &str,
        client: &Arc<Client>,
        config: &Config,
    ) -> io::Result<Place<'a>> {
        let (room, path) = {
            let mut rooms = lock(&self.by_path);
            let key = match rooms.get_key_value(path) {
                Some((key, _)) => key.clone(),
                None => Arc::from(path),
            };
            let entry = rooms.entry(key.clone()).or_insert_with(|| Entry {
                room: Arc::new(Room::new(config)),
                seats: 0,
            });
            entry.seats += 1;
            (entry.room.clone(), key)
        };
        // Taken: given back when the place is dropped, or now if joining fails.
        let seat = Seat { rooms: self, path };
        Place::with_seat(&room, client, config, Box::new(seat))
    }

    fn leave(&self, path: &str) {
        let mut rooms = lock(&self.by_path);
        if let Some(entry) = rooms.get_mut(path) {
            entry.seats -= 1;
            if entry.seats == 0 {
                rooms.remove(path);
                if rooms.is_empty() {
                    // The map's own table too: a server whose rooms are all gone is
                    // back to what it cost at start.
                    *rooms = HashMap::new();
                }
            }
        }
    }

    /// The room of `path`, if it has members.
    pub(crate) fn get(&self, path: &str) -> Option<Arc<Room>> {
        lock(&self.by_path).get(path).map(|e| e.room.clone())
    }

    /// Every room, taken out of the map (its lock is not held while they are used).
    fn all(&self) -> Vec<(Arc<str>, Arc<Room>)> {
        lock(&self.by_path)
            .iter()
            .map(|(path, e)| (path.clone(), e.room.clone()))
            .collect()
    }

    /// Every room, sorted by path, and how many members each has (0 only for a moment:
    /// while its first client is joining, or its last one leaving).
    pub(crate) fn list(&self) -> Vec<(String, usize)> {
        let mut list: Vec<(String, usize)> = self
            .all()
            .into_iter()
            .map(|(path, room)| (path.to_string(), room.len()))
            .collect();
        // Paths are unique (map keys): the same order as a stable sort, in less code.
        list.sort_unstable();
        list
    }

    /// Members of all rooms.
    pub(crate) fn members(&self) -> usize {
        self.all().iter().map(|(_, room)| room.len()).sum()
    }

    /// Sends `message` to every room, one after the other (each room keeps its one order;
    /// between rooms there is no order to keep). Returns how many members got it.
    pub(crate) fn broadcast_all(&self, message: &tungstenite::Message) -> usize {
        self.all()
            .iter()
            .map(|(_, room)| room.broadcast(message, None))
            .sum()
    }

    /// Queues a close frame for every member of every room (shutdown).
    pub(crate) fn close_all(&self, code: u16, reason: &str) {
        for (_, room) in self.all() {
            room.close_all(code, reason);
        }
    }
}

/// A seat taken in the room of `path` ([`Rooms::join`]); given back on drop.
struct Seat<'a> {
    rooms: &'a Rooms,
    path: Arc<str>,
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        self.rooms.leave(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client over loopback with its own id (a room tells members apart by it),
    /// upgraded for `path`.
    fn client(path: &str) -> (Arc<Client>, std::net::TcpStream) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let peer =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (socket, addr) = listener.accept().expect("accept");
        let transport = crate::client::transport::Transport::new(socket);
        let client = Arc::new(Client::new(
            id,
            addr,
            transport,
            crate::client::handle::detached(),
        ));
        client.set_upgraded(path.into());
        (client, peer)
    }

    #[test]
    fn a_room_lives_as_long_as_its_members_and_paths_do_not_share_one() {
        let rooms = Rooms::default();
        let config = Config::default();
        let (a, _pa) = client("/chat/a");
        let (b, _pb) = client("/chat/b");
        let (a2, _pa2) = client("/chat/a");
        let in_a = rooms.join("/chat/a", &a, &config).expect("join");
        let in_b = rooms.join("/chat/b", &b, &config).expect("join");
        let in_a2 = rooms.join("/chat/a", &a2, &config).expect("join");
        assert!(std::ptr::eq(in_a.room(), in_a2.room()), "one room per path");
        assert!(!std::ptr::eq(in_a.room(), in_b.room()));
        assert_eq!(
            rooms.list(),
            [("/chat/a".to_string(), 2), ("/chat/b".to_string(), 1)]
        );
        assert_eq!(rooms.members(), 3);
        drop(in_b);
        assert!(
            rooms.get("/chat/b").is_none(),
            "removed with its last member"
        );
        drop(in_a);
        assert_eq!(rooms.list(), [("/chat/a".to_string(), 1)]);
        drop(in_a2);
        assert!(rooms.list().is_empty());
        assert_eq!(lock(&rooms.by_path).capacity(), 0, "nothing left of them");
    }
}
