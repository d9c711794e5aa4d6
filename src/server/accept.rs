//! The accept loop, the connection cap, and graceful shutdown.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{info, warn};

use crate::client::handle::{Control, ServerHandle};
use crate::client::outbox::Client;
use crate::client::registry::Registry;
use crate::config::Config;
use crate::error::Error;
use crate::handler::Handler;
use crate::layers::Layers;
use crate::room::broadcast::Room;
use crate::server::admission::{self, MAX_REJECTERS, REJECTER_STACK};
use crate::shared::Shared;
use crate::tune::{self, MAX_SPARE, Threads};
use crate::util::lock::wait_until;
use crate::{room::writer, server::budget};

/// The stack of the signal thread (signals.rs, the binary and `shutdown_on_signals`), counted in the budget.
const SIGNAL_STACK: usize = crate::config::HELPER_STACK;

/// A bound, not yet running, WebSocket server. [`run`](Server::run) serves on the
/// calling thread; [`spawn`](Server::spawn) on a new one.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// A server running on its own thread, as returned by [`Server::spawn`].
pub struct Running {
    handle: ServerHandle,
    thread: JoinHandle<Stopped>,
}

/// How a server ended, as [`Server::run`], [`Running::stop`] and [`Running::join`] say:
/// every client closed in time, or the shutdown timeout cut some. Its `Display` is the
/// line the server logs: "stopped: 3 connection(s) closed" or "stopped: 1 of 3
/// connection(s) did not close within 2s and were cut".
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

impl Server {
    /// Checks `config` and opens the listening socket. Errors say what to change.
    pub fn bind(config: Config, handler: impl Handler) -> Result<Server, Error> {
        config.validate().map_err(Error::InvalidConfig)?;
        // A setting of a layer this build left out (layers/mod.rs).
        crate::layers::refused(&config).map_err(Error::InvalidConfig)?;
        // A frame limit above the message limit means the message limit (config.rs).
        if let Some(line) = config.clamp_note() {
            let name = config.name.as_deref().map(|n| format!("{n}: "));
            info!("{}{line}", name.unwrap_or_default());
        }
        let config = config.effective();
        // First, while a program that binds before starting threads has only this one:
        // glibc's arenas would otherwise reserve 64 MiB of address space each (tune/heap.rs).
        let arenas = tune::bound_arenas();
        let budget = budget::plan(
            &config,
            arenas,
            writer::WRITER_STACK,
            &[
                (MAX_SPARE, config.stack_size),
                (MAX_REJECTERS, REJECTER_STACK),
                (1, SIGNAL_STACK),
                // --stdin's reader and --stdout's writer (pipes.rs, spool.rs).
                (
                    usize::from(config.stdin),
                    crate::layers::pipes::READER_STACK,
                ),
                (usize::from(config.stdout), crate::util::spool::WRITER_STACK),
            ],
        );
        let layers = Layers::open(&config)?;
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(addr).map_err(|e| Error::from_bind(addr, e))?;
        let local_addr = listener.local_addr().map_err(|e| Error::Listen(addr, e))?;
        let config_stack = config.stack_size;
        let prefix = config
            .name
            .as_ref()
            .map_or(String::new(), |name| format!("{name}: "));
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                room: Arc::new(Room::new(&config)),
                layers,
                config,
                handler: Box::new(handler),
                stopping: AtomicBool::new(false),
                registry: Arc::new(Mutex::new(Registry::default())),
                changed: Condvar::new(),
                local_addr,
                threads: Threads::new(config_stack),
                fit: budget.fit,
                budget_warning: budget.warning,
                prefix,
            }),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// A handle to stop the server later, from any thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle::new(self.shared.clone())
    }

    /// Serves until [`ServerHandle::shutdown`] is called (by your program, a handler,
    /// or [`ServerHandle::shutdown_on_signals`]), then closes every client with 1001 and
    /// returns once they are gone or `shutdown_timeout` has passed, saying which.
    pub fn run(self) -> Stopped {
        let Server { listener, shared } = self;
        let addr = shared.local_addr;
        let prefix = &shared.prefix;
        info!(
            "{prefix}listening on {}://{addr}/ ({})",
            shared.scheme(),
            where_to_connect(addr, &shared.config, shared.scheme())
        );
        info!("{prefix}settings: {}", shared.config);
        if let Some(line) = &shared.budget_warning {
            warn!("{prefix}{line}");
        }
        let server = ServerHandle::new(shared.clone());
        let page = crate::http::route::PAGE_PATH;
        shared
            .layers
            .start(&shared.config, &server, &shared.registry, page);
        loop {
            // accept, not incoming(): it hands over the peer's address with the socket,
            // which saves a getpeername call per connection.
            let accepted = listener.accept();
            if shared.stopping.load(Ordering::Acquire) {
                break;
            }
            match accepted {
                Ok((socket, peer)) => admission::admit(&shared, socket, peer),
                Err(e) => {
                    // Out of file descriptors (EMFILE/ENFILE) or a kernel hiccup: back
                    // off briefly rather than spin on an error that will repeat at once.
                    warn!("{prefix}accept failed: {e}; retrying in 100ms");
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
        drop(listener);
        let stopped = shutdown_clients(&shared);
        shared.layers.finish(&shared.config, prefix);
        stopped
    }

    /// Runs the server on a new thread.
    pub fn spawn(self) -> Result<Running, Error> {
        let handle = self.handle();
        let thread = thread::Builder::new()
            .name("tinyws-accept".into())
            .spawn(move || self.run())
            .map_err(Error::Spawn)?;
        Ok(Running { handle, thread })
    }
}

fn where_to_connect(addr: SocketAddr, config: &Config, scheme: &str) -> String {
    let path = config.path.as_deref().unwrap_or("/");
    if addr.ip().is_unspecified() {
        format!(
            "all interfaces: connect to {scheme}://localhost:{}{path} here, or {scheme}://<this machine's address>:{}{path} from others",
            addr.port(),
            addr.port()
        )
    } else {
        format!("connect to {scheme}://{addr}{path}")
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
fn shutdown_clients(shared: &Shared) -> Stopped {
    let prefix = &shared.prefix;
    // Inspector polls wait on the records, not the socket: end their waits now.
    shared.layers.inspect.stop();
    let clients: Vec<Arc<Client>> = shared.registry().clients.iter().cloned().collect();
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
