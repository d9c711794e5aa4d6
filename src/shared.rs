//! What every thread of one server shares: its settings, the handler, the room (or the
//! rooms), and the registry of connections.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::client::handle::ServerHandle;
use crate::client::outbox::Client;
use crate::client::registry::Registry;
use crate::config::Config;
use crate::handler::Handler;
use crate::layers::Layers;
use crate::room::broadcast::Room;
use crate::tune::Threads;
use crate::util::lock::lock;
use crate::util::tag::Tag;

/// State shared by the accept loop, every connection thread and every [`ServerHandle`].
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) handler: Box<dyn Handler>,
    /// Broadcast mode: the room (empty in echo mode and with `rooms`).
    pub(crate) room: Arc<Room>,
    /// The optional layers' state: the rooms per path, the inspector, TLS, static files.
    pub(crate) layers: Layers,
    pub(crate) stopping: AtomicBool,
    /// Shared with the `--stdin` thread (pipes.rs), which holds it weakly.
    pub(crate) registry: Arc<Mutex<Registry>>,
    /// Signalled whenever a connection ends.
    pub(crate) changed: Condvar,
    pub(crate) local_addr: SocketAddr,
    /// Connection threads, new or waiting for their next client (tune/threads.rs).
    pub(crate) threads: Arc<Threads>,
    /// Connections that fit the memory limits at worst (budget.rs): `max_connections`
    /// unless that does not fit. Past it clients get 503, before memory runs out.
    pub(crate) fit: usize,
    /// The one line saying what does not fit, logged when the server starts.
    pub(crate) budget_warning: Option<String>,
    /// What the server's own log lines start with: `name: `, or nothing (`Config::name`).
    pub(crate) prefix: String,
}

impl Shared {
    /// How the log names connection `id` (see [`Tag`]).
    pub(crate) fn tag(&self, id: u64) -> Tag<'_> {
        Tag {
            name: self.config.name.as_deref(),
            id,
        }
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.registry)
    }

    /// A client for a new socket, with its own TLS session when the server speaks TLS
    /// (`None` if that cannot start: tls.rs says so).
    pub(crate) fn new_client(
        self: &Arc<Self>,
        id: u64,
        peer: SocketAddr,
        socket: TcpStream,
    ) -> Option<Client> {
        let transport = crate::layers::tls::transport(self.layers.tls.as_ref(), socket, peer)?;
        // The handler's way back to the server (Client::server); the shared state is its
        // Control (server/running.rs).
        let server = ServerHandle {
            control: self.clone(),
        };
        Some(Client::new(id, peer, transport, server))
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.layers.tls.is_some()
    }

    pub(crate) fn scheme(&self) -> &'static str {
        if self.is_tls() { "wss" } else { "ws" }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Connection `id` has delivered its whole request head: it no longer counts as
    /// waiting (client/registry.rs). `false` if it was pushed out meanwhile: end it quietly.
    pub(crate) fn head_received(&self, id: u64) -> bool {
        self.registry().waiting.head_received(id)
    }
}
