//! The accept loop, the connection cap, and graceful shutdown.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{info, warn};

use crate::admission::{self, MAX_REJECTERS, REJECTER_STACK};
use crate::config::Config;
use crate::error::Error;
use crate::handler::Handler;
use crate::lock::wait_until;
use crate::outbox::Client;
use crate::registry::Registry;
use crate::room::Room;
use crate::shared::Shared;
use crate::tune::{self, MAX_SPARE, Threads};
use crate::{budget, writer};

/// The stack of the `tinyws` binary's signal thread (main.rs), counted in the budget.
const SIGNAL_STACK: usize = crate::config::HELPER_STACK;

/// A bound, not yet running, WebSocket server. [`run`](Server::run) serves on the
/// calling thread; [`spawn`](Server::spawn) on a new one.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// Controls a running server from another thread: shut it down, count its connections.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

/// A server running on its own thread, as returned by [`Server::spawn`].
pub struct Running {
    handle: ServerHandle,
    thread: JoinHandle<()>,
}

impl Server {
    /// Checks `config` and opens the listening socket. Errors say what to change.
    pub fn bind(config: Config, handler: impl Handler) -> Result<Server, Error> {
        config.validate().map_err(Error::InvalidConfig)?;
        // A frame limit above the message limit means the message limit (config.rs).
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
            ],
        );
        #[cfg(feature = "tls")]
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::load(cert, key)?),
            _ => None,
        };
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(addr).map_err(|e| Error::from_bind(addr, e))?;
        let local_addr = listener.local_addr().map_err(|e| Error::Listen(addr, e))?;
        let config_stack = config.stack_size;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                room: Room::new(&config),
                config,
                handler: Box::new(handler),
                stopping: AtomicBool::new(false),
                registry: Mutex::new(Registry::default()),
                changed: Condvar::new(),
                local_addr,
                threads: Threads::new(config_stack),
                #[cfg(feature = "tls")]
                tls,
                fit: budget.fit,
                budget_warning: budget.warning,
            }),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// A handle to stop the server later, from any thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Serves until [`ServerHandle::shutdown`] is called, then closes every client with
    /// 1001 and returns once they are gone or `shutdown_timeout` has passed.
    pub fn run(self) {
        let Server { listener, shared } = self;
        let addr = shared.local_addr;
        info!(
            "listening on {}://{addr}/ ({})",
            shared.scheme(),
            where_to_connect(addr, &shared.config, shared.scheme())
        );
        info!("settings: {}", shared.config);
        if let Some(line) = &shared.budget_warning {
            warn!("{line}");
        }
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
                    warn!("accept failed: {e}; retrying in 100ms");
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
        drop(listener);
        shutdown_clients(&shared);
        // The trace's last lines, unless stdout stopped draining (trace.rs): the
        // shutdown bound must hold whatever the terminal does.
        if shared.config.trace && !crate::trace::drain(Duration::from_millis(500)) {
            warn!("--trace: stdout is not being read; the end of the trace is lost");
        }
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

    /// Shuts the server down and waits for its accept thread to finish.
    pub fn stop(self) {
        self.handle.shutdown();
        let _ = self.thread.join();
    }
}

impl ServerHandle {
    /// Stops accepting, sends close 1001 ("going away", RFC 6455 §7.4.1) to every client,
    /// and lets `run` return. Safe to call more than once, from any thread.
    pub fn shutdown(&self) {
        if self.shared.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        // The accept loop is blocked in accept(); a connection of our own wakes it.
        let mut wake = self.shared.local_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        if let Err(e) = TcpStream::connect_timeout(&wake, Duration::from_secs(1)) {
            warn!("could not wake the accept loop at {wake}: {e}; it stops at the next connection");
        }
    }

    /// Whether [`shutdown`](Self::shutdown) has been called.
    pub fn is_stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Connections being served right now, handshakes included.
    pub fn connections(&self) -> usize {
        self.shared.registry().clients.len()
    }

    /// Broadcast mode ([`Config::broadcast`]): sends a text or binary `message` to every
    /// client in the room, after the messages already sent and in the same order for all.
    /// Returns how many clients it was queued for.
    ///
    /// Under pressure it blocks, like a member's message: if a member's backlog
    /// ([`Config::max_backlog`]) is full, this waits until that member has taken enough
    /// frames, for as long as it keeps reading, so a member that keeps reading is not
    /// dropped and gets this message too. A member that makes no progress for
    /// [`Config::stall_timeout`] while this waits is closed with 1008 and not counted. So
    /// one call waits at most about `stall_timeout` for a stuck member, and otherwise as
    /// long as the slowest reading member needs to make room for one message (one slow
    /// reader, just above the cut, holds every call to its pace); a program
    /// that broadcasts faster than its members read is slowed down to their pace. Call it
    /// from a thread of your own that may wait (not from a timer that must not be late).
    /// In echo mode there is no room and this returns 0; pings, pongs, close frames and
    /// messages larger than [`Config::max_backlog`] are not sent either (0).
    pub fn broadcast(&self, message: tungstenite::Message) -> usize {
        self.shared.room.broadcast(&message, None)
    }

    /// Clients in the broadcast room right now (always 0 in echo mode).
    pub fn members(&self) -> usize {
        self.shared.room.len()
    }
}

/// Sends 1001 to every upgraded client, cuts connections still in their handshake, and
/// waits (bounded) for them to end.
fn shutdown_clients(shared: &Shared) {
    let clients: Vec<Arc<Client>> = shared.registry().clients.values().cloned().collect();
    if !clients.is_empty() {
        info!(
            "shutting down: sending close 1001 to {} connection(s)",
            clients.len()
        );
    }
    for c in &clients {
        c.shut_down();
    }
    // Broadcast members queue their close behind frames already waiting; that never
    // blocks, so also reach the ones whose outbox was busy for shut_down.
    shared.room.close_all(1001, crate::outbox::GOING_AWAY);
    let deadline = Instant::now() + shared.config.shutdown_timeout;
    if !wait_until_empty(shared, deadline) {
        let reg = shared.registry();
        warn!(
            "{} connection(s) did not close within {}; cutting them",
            reg.clients.len(),
            crate::config::format_duration(shared.config.shutdown_timeout)
        );
        for c in reg.clients.values() {
            let _ = c.socket().shutdown(Shutdown::Both);
        }
        drop(reg);
        wait_until_empty(shared, Instant::now() + Duration::from_secs(1));
    }
    shared.threads.stop();
    info!("stopped");
}

fn wait_until_empty(shared: &Shared, deadline: Instant) -> bool {
    let (_registry, empty) = wait_until(&shared.changed, shared.registry(), deadline, |reg| {
        reg.clients.is_empty()
    });
    empty
}
