//! What every thread of one server shares: its settings, the handler, the room, and the
//! registry of connections.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::config::Config;
use crate::handler::Handler;
use crate::lock::lock;
use crate::outbox::Client;
use crate::registry::Registry;
use crate::room::Room;
use crate::transport::Transport;
use crate::tune::Threads;

/// State shared by the accept loop, every connection thread and every [`ServerHandle`].
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) handler: Box<dyn Handler>,
    /// Broadcast mode: the room (empty in echo mode).
    pub(crate) room: Room,
    pub(crate) stopping: AtomicBool,
    pub(crate) registry: Mutex<Registry>,
    /// Signalled whenever a connection ends.
    pub(crate) changed: Condvar,
    pub(crate) local_addr: SocketAddr,
    /// Connection threads, new or waiting for their next client (tune/threads.rs).
    pub(crate) threads: Arc<Threads>,
    /// `wss://`: the certificate and key every connection's TLS session starts from.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// Connections that fit the memory limits at worst (budget.rs): `max_connections`
    /// unless that does not fit. Past it clients get 503, before memory runs out.
    pub(crate) fit: usize,
    /// The one line saying what does not fit, logged when the server starts.
    pub(crate) budget_warning: Option<String>,
}

impl Shared {
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.registry)
    }

    /// A client for a new socket, with its own TLS session when the server speaks TLS.
    pub(crate) fn new_client(
        &self,
        id: u64,
        peer: SocketAddr,
        socket: TcpStream,
    ) -> Option<Client> {
        let transport = Transport::new(socket);
        #[cfg(feature = "tls")]
        if let Some(config) = &self.tls {
            return match crate::tls::Tls::new(config) {
                Ok(tls) => Some(Client::new(id, peer, transport.with_tls(tls))),
                Err(e) => {
                    log::warn!("{peer}: cannot start a TLS session ({e}); closed");
                    None
                }
            };
        }
        Some(Client::new(id, peer, transport))
    }

    pub(crate) fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    pub(crate) fn scheme(&self) -> &'static str {
        if self.is_tls() { "wss" } else { "ws" }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Connection `id` has delivered its whole request head: it no longer counts as
    /// waiting (admission.rs). `false` if it was pushed out meanwhile: end it quietly.
    pub(crate) fn head_received(&self, id: u64) -> bool {
        let mut reg = self.registry();
        reg.waiting.remove(&id).is_some() || !reg.pushed_out.contains(&id)
    }
}
