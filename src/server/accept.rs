//! Binding the port and the accept loop: [`Server`]. What a running server does besides
//! (its handle, its shutdown) is running.rs.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use log::{info, warn};

use crate::client::handle::ServerHandle;
use crate::client::registry::Registry;
use crate::config::Config;
use crate::error::Error;
use crate::handler::Handler;
use crate::layers::Layers;
use crate::room::broadcast::Room;
use crate::server::admission::{self, MAX_REJECTERS, REJECTER_STACK};
use crate::server::running::{Running, Stopped, shutdown_clients};
use crate::shared::Shared;
use crate::tune::{self, MAX_SPARE, Threads};
use crate::{room::writer, server::budget};

/// The stack of the signal thread (signals.rs, the binary and `shutdown_on_signals`), counted in the budget.
const SIGNAL_STACK: usize = crate::config::HELPER_STACK;

/// A bound, not yet running, WebSocket server. [`run`](Server::run) serves on the
/// calling thread; [`spawn`](Server::spawn) on a new one.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Checks `config` and opens the listening socket. Errors say what to change.
    pub fn bind(config: Config, handler: impl Handler) -> Result<Server, Error> {
        config.validate().map_err(Error::InvalidConfig)?;
        // A setting of a layer this build left out (layers/mod.rs).
        crate::layers::refused(&crate::layers::LAYERS, &config).map_err(Error::InvalidConfig)?;
        let prefix = config
            .name
            .as_ref()
            .map_or(String::new(), |name| format!("{name}: "));
        // A frame limit above the message limit means the message limit (config.rs).
        if let Some(line) = config.clamp_note() {
            info!("{prefix}{line}");
        }
        let config = config.effective();
        // First, while a program that binds before starting threads has only this one:
        // glibc's arenas would otherwise reserve 64 MiB of address space each (tune/heap.rs).
        let arenas = tune::bound_arenas();
        let [stdin, stdout] = crate::layers::threads(&config);
        let threads = [
            (MAX_SPARE, config.stack_size),
            (MAX_REJECTERS, REJECTER_STACK),
            (1, SIGNAL_STACK),
            stdin,
            stdout,
        ];
        let budget = budget::plan(&config, arenas, writer::WRITER_STACK, &threads);
        let layers = Layers::open(&config)?;
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(addr).map_err(|e| Error::from_bind(addr, e))?;
        let local_addr = listener.local_addr().map_err(|e| Error::Listen(addr, e))?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                room: Arc::new(Room::new(&config)),
                threads: Threads::new(config.stack_size),
                layers,
                config,
                handler: Box::new(handler),
                stopping: AtomicBool::new(false),
                registry: Arc::new(Mutex::new(Registry::default())),
                changed: Condvar::new(),
                local_addr,
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
        ServerHandle {
            control: self.shared.clone(),
        }
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
        let server = ServerHandle {
            control: shared.clone(),
        };
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
