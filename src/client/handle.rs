//! [`ServerHandle`]: what a program (or a handler, through [`Client::server`]) may ask of
//! a running server: shut it down, count its connections, broadcast to its room.
//!
//! A trait object, not the server's shared state (shared.rs): a [`Client`] carries the
//! handle and the shared state holds the clients, so naming it here would be an import
//! cycle. The shared state implements [`Control`] further up (server/running.rs).
//!
//! [`Client`]: crate::Client
//! [`Client::server`]: crate::Client::server

use std::net::SocketAddr;
use std::sync::Arc;

use tungstenite::Message;

/// What the handle asks of the server; implemented by the server's shared state.
pub(crate) trait Control: Send + Sync {
    fn shutdown(&self);
    fn is_stopping(&self) -> bool;
    fn local_addr(&self) -> SocketAddr;
    fn connections(&self) -> usize;
    fn broadcast(&self, message: &Message) -> usize;
    fn broadcast_to(&self, path: &str, message: &Message) -> usize;
    fn rooms(&self) -> Vec<(String, usize)>;
    fn members(&self) -> usize;
    /// What the server's own log lines start with (`Config::name`), or nothing.
    fn prefix(&self) -> &str;
    /// `Config::name`, for the connections' log lines (util/tag.rs).
    // Only the `pipes` layer asks (its log lines name connections): unused without it.
    #[allow(dead_code)]
    fn name(&self) -> Option<&str>;
}

/// Controls a running server from any thread: shut it down, count its connections,
/// broadcast to its room. [`Server::handle`](crate::Server::handle) gives one to your
/// program, [`Client::server`](crate::Client::server) to a handler. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    /// The server's shared state (`--stdin`'s thread holds it weakly: pipes.rs).
    pub(crate) control: Arc<dyn Control>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr())
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// Whether both are handles of the same server.
    pub(crate) fn same(&self, other: &ServerHandle) -> bool {
        Arc::ptr_eq(&self.control, &other.control)
    }

    /// Stops accepting, sends close 1001 ("going away", RFC 6455 §7.4.1) to every client,
    /// and lets `run` return. Safe to call more than once, from any thread, a handler's
    /// included (it does not wait for the clients to go).
    pub fn shutdown(&self) {
        self.control.shutdown();
    }

    /// Whether [`shutdown`](Self::shutdown) has been called.
    pub fn is_stopping(&self) -> bool {
        self.control.is_stopping()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.control.local_addr()
    }

    /// Connections being served right now, handshakes included.
    pub fn connections(&self) -> usize {
        self.control.connections()
    }

    /// Broadcast mode ([`Config::broadcast`](crate::Config#structfield.broadcast)): sends
    /// a text or binary `message` to every client in the room, after the messages already
    /// sent and in the same order for all. Returns how many clients it was queued for.
    ///
    /// Under pressure it blocks, like a member's message: if a member's backlog
    /// ([`Config::max_backlog`](crate::Config#structfield.max_backlog)) is full, this waits
    /// until that member has taken enough frames, for as long as it keeps reading, so a
    /// member that keeps reading is not dropped and gets this message too. A member that
    /// makes no progress for [`Config::stall_timeout`](crate::Config#structfield.stall_timeout)
    /// while this waits is closed with 1008 and not counted. So one call waits at most
    /// about `stall_timeout` for a stuck member, and otherwise as long as the slowest
    /// reading member needs to make room for one message (one slow reader, just above the
    /// cut, holds every call to its pace); a program that broadcasts faster than its
    /// members read is slowed down to their pace. Call it from a thread of your own that
    /// may wait (not from a timer that must not be late). From a handler it waits the same
    /// way, as a returned message does. In echo mode there is no room and this returns 0;
    /// pings, pongs, close frames and messages larger than `max_backlog` are not sent
    /// either (0). To send to one client only, see [`Client::send`](crate::Client::send).
    ///
    /// With [`Config::rooms`](crate::Config#structfield.rooms) (a room per path) this
    /// sends to every room, one room after the other, and returns how many members of all
    /// rooms got it: each room gets it in its one order, and each room's members pace it
    /// as above. To send to one room, use [`broadcast_to`](Self::broadcast_to).
    pub fn broadcast(&self, message: Message) -> usize {
        self.control.broadcast(&message)
    }

    /// Rooms mode ([`Config::rooms`](crate::Config#structfield.rooms)): sends `message`
    /// to the room of `path` (e.g. `/chat/lobby`, the request path of its members without
    /// the query), as a member's message would go, after the messages already sent to
    /// it; it blocks under pressure like [`broadcast`](Self::broadcast). Returns how many
    /// members got it: 0 when the room has no members (rooms exist only while they have
    /// some, so nothing is kept for later), and always 0 in plain broadcast or echo mode,
    /// where there are no rooms per path (use [`broadcast`](Self::broadcast)).
    pub fn broadcast_to(&self, path: &str, message: Message) -> usize {
        self.control.broadcast_to(path, &message)
    }

    /// Rooms mode ([`Config::rooms`](crate::Config#structfield.rooms)): every room right
    /// now, by path (sorted), with how many members each has. A room is removed when its
    /// last member leaves, so an empty room is not listed (it shows 0 members only for a
    /// moment: while its first member joins, or its last one leaves). Empty in plain
    /// broadcast and echo mode (see [`members`](Self::members) for the one room).
    pub fn rooms(&self) -> Vec<(String, usize)> {
        self.control.rooms()
    }

    /// Clients in the broadcast room right now (always 0 in echo mode); with
    /// [`Config::rooms`](crate::Config#structfield.rooms), in all rooms together.
    pub fn members(&self) -> usize {
        self.control.members()
    }
}

/// For unit tests: a handle to no server (stopped, empty).
#[cfg(test)]
pub(crate) fn detached() -> ServerHandle {
    struct Detached;
    impl Control for Detached {
        fn shutdown(&self) {}
        fn is_stopping(&self) -> bool {
            true
        }
        fn local_addr(&self) -> SocketAddr {
            SocketAddr::from(([127, 0, 0, 1], 0))
        }
        fn connections(&self) -> usize {
            0
        }
        fn broadcast(&self, _: &Message) -> usize {
            0
        }
        fn broadcast_to(&self, _: &str, _: &Message) -> usize {
            0
        }
        fn rooms(&self) -> Vec<(String, usize)> {
            Vec::new()
        }
        fn members(&self) -> usize {
            0
        }
        fn prefix(&self) -> &str {
            ""
        }
        fn name(&self) -> Option<&str> {
            None
        }
    }
    ServerHandle {
        control: Arc::new(Detached),
    }
}
