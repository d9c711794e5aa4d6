//! A server running, and its end: the handle [`Server::spawn`](crate::Server::spawn)
//! returns ([`Running`]), how a run ended ([`Stopped`]), what a [`ServerHandle`] does on
//! the shared state ([`Control`]), and the shutdown that closes every client. Not needed
//! to follow one echo.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{info, warn};

use crate::client::handle::{Control, ServerHandle};
use crate::client::outbox::Client;
use crate::shared::Shared;
use crate::util::lock::wait_until;

/// A server running on its own thread, as returned by
/// [`Server::spawn`](crate::Server::spawn).
pub struct Running {
    pub(crate) handle: ServerHandle,
    pub(crate) thread: JoinHandle<Stopped>,
}

/// How a server ended, as [`Server::run`](crate::Server::run), [`Running::stop`] and
/// [`Running::join`] say: every client closed in time, or the shutdown timeout cut some.
/// Its `Display` is the line the server logs: "stopped: 3 connection(s) closed" or
/// "stopped: 1 of 3 connection(s) did not close within 2s and were cut".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stopped {
    /// Connections open when the shutdown began (handshakes included), each sent a
    /// close 1001 or, still in its handshake, cut.
    pub connections: usize,
    /// Of those, the ones still open after
    /// [`Config::shutdown_timeout`](crate::Config#structfield.shutdown_timeout), whose TCP
    /// connection was cut (their clients see 1006, no close handshake).
    pub cut: usize,
}

impl Stopped {
    /// Whether every connection ended within the shutdown timeout (none was cut).
    pub fn is_clean(&self) -> bool {
        self.cut == 0
    }
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.cut == 0 {
            write!(f, "stopped: {} connection(s) closed", self.connections)
        } else {
            write!(
                f,
                "stopped: {} of {} connection(s) did not close within the shutdown timeout and were cut",
                self.cut, self.connections
            )
        }
    }
}

impl Running {
    /// The handle of the running server.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Shuts the server down and waits for it to finish (at most about
    /// `shutdown_timeout`): how it ended.
    pub fn stop(self) -> Stopped {
        self.handle.shutdown();
        self.join()
    }

    /// Waits until the server is shut down some other way (a handler,
    /// [`ServerHandle::shutdown_on_signals`], another thread's [`ServerHandle::shutdown`])
    /// and has finished: how it ended.
    pub fn join(self) -> Stopped {
        // The accept thread runs no handler code: a panic there is tinyws's bug.
        self.thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// What a [`ServerHandle`] does (handle.rs), on the server's shared state.
impl Control for Shared {
    fn shutdown(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        // The accept loop is blocked in accept(); a connection of our own wakes it.
        let mut wake = self.local_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        if let Err(e) = TcpStream::connect_timeout(&wake, Duration::from_secs(1)) {
            warn!(
                "{}could not wake the accept loop at {wake}: {e}; it stops at the next connection",
                self.prefix
            );
        }
    }

    fn is_stopping(&self) -> bool {
        Shared::is_stopping(self)
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn connections(&self) -> usize {
        self.registry().clients.len()
    }

    fn broadcast(&self, message: &tungstenite::Message) -> usize {
        if self.config.rooms {
            return self.layers.rooms.broadcast_all(message);
        }
        self.room.broadcast(message, None)
    }

    fn broadcast_to(&self, path: &str, message: &tungstenite::Message) -> usize {
        if !self.config.rooms {
            return 0;
        }
        self.layers
            .rooms
            .get(path)
            .map_or(0, |room| room.broadcast(message, None))
    }

    fn rooms(&self) -> Vec<(String, usize)> {
        self.layers.rooms.list()
    }

    fn members(&self) -> usize {
        if self.config.rooms {
            return self.layers.rooms.members();
        }
        self.room.len()
    }

    fn name(&self) -> Option<&str> {
        self.config.name.as_deref()
    }

    fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// Sends 1001 to every upgraded client, cuts connections still in their handshake, and
/// waits (bounded) for them to end.
pub(crate) fn shutdown_clients(shared: &Shared) -> Stopped {
    let prefix = &shared.prefix;
    // Inspector polls wait on the records, not the socket: end their waits now.
    shared.layers.inspect.stop();
    let clients: Vec<Arc<Client>> = shared.registry().clients.to_vec();
    let mut stopped = Stopped {
        connections: clients.len(),
        cut: 0,
    };
    if !clients.is_empty() {
        info!(
            "{prefix}shutting down: sending close 1001 to {} connection(s)",
            clients.len()
        );
    }
    for c in &clients {
        c.shut_down();
    }
    // Broadcast members queue their close behind frames already waiting; that never
    // blocks, so also reach the ones whose outbox was busy for shut_down.
    shared
        .room
        .close_all(1001, crate::client::outbox::GOING_AWAY);
    shared
        .layers
        .rooms
        .close_all(1001, crate::client::outbox::GOING_AWAY);
    // Let go of them now: a client that completes its close handshake must see TCP close
    // when its own connection ends (RFC 6455 §7.1.1), not when the last one has.
    drop(clients);
    let deadline = Instant::now() + shared.config.shutdown_timeout;
    if !wait_until_empty(shared, deadline) {
        let reg = shared.registry();
        stopped.cut = reg.clients.len();
        warn!(
            "{prefix}{} connection(s) did not close within {}; cutting them",
            reg.clients.len(),
            crate::config::format_duration(shared.config.shutdown_timeout)
        );
        for c in reg.clients.iter() {
            let _ = c.socket().shutdown(Shutdown::Both);
        }
        drop(reg);
        wait_until_empty(shared, Instant::now() + Duration::from_secs(1));
    }
    shared.threads.stop();
    info!("{prefix}{stopped}");
    stopped
}

fn wait_until_empty(shared: &Shared, deadline: Instant) -> bool {
    let (_registry, empty) = wait_until(&shared.changed, shared.registry(), deadline, |reg| {
        reg.clients.is_empty()
    });
    empty
}
