//! The accept loop, the connection cap, and graceful shutdown.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::client::Client;
use crate::config::Config;
use crate::error::Error;
use crate::handler::Handler;
use crate::hub::Hub;
use crate::threads::{MAX_SPARE, Threads};
use crate::{backlog, budget, conn, heap, http};

/// At most this many extra threads answer `503` to clients over the cap at once, each for
/// about a second. Past that, the `503` is written without reading the request.
const MAX_REJECTERS: usize = 8;
const REJECTER_STACK: usize = 64 * 1024;
/// The stack of the `tinyws` binary's signal thread (main.rs), counted in the budget.
const SIGNAL_STACK: usize = 64 * 1024;

/// Connections pushed out to make room (see [`admit`]) whose threads have not ended yet:
/// at most this many at once, so a flood of new connections cannot pile up threads.
const MAX_PUSHED_OUT: usize = 64;

/// At most one warning about pushed-out connections per this long.
const PUSH_OUT_WARN_EVERY: Duration = Duration::from_secs(10);

/// While slots are free, a connection waiting for its request head is pushed out only
/// once it has waited this long (see [`admit`]): a phone's TLS handshake on a poor link
/// takes a few hundred milliseconds, a socket hoarded to lock clients out much longer.
const PUSH_OUT_GRACE: Duration = Duration::from_secs(1);

/// A bound, not yet running, WebSocket server. [`run`](Server::run) serves on the
/// calling thread; [`spawn`](Server::spawn) on a new one.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// State shared by the accept loop, every connection thread and every [`ServerHandle`].
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) handler: Box<dyn Handler>,
    /// Broadcast mode: the room (empty in echo mode).
    pub(crate) hub: Hub,
    stopping: AtomicBool,
    registry: Mutex<Registry>,
    /// Signalled whenever a connection ends.
    changed: Condvar,
    local_addr: SocketAddr,
    /// Connection threads, new or waiting for their next client (threads.rs).
    threads: Arc<Threads>,
    /// `wss://`: the certificate and key every connection's TLS session starts from.
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Connections that fit the memory limits at worst (budget.rs): `max_connections`
    /// unless that does not fit. Past it clients get 503, before memory runs out.
    fit: usize,
    /// The one line saying what does not fit, logged when the server starts.
    budget_warning: Option<String>,
}

#[derive(Default)]
struct Registry {
    /// Every connection that has a thread, from accept to close.
    clients: HashMap<u64, Arc<Client>>,
    /// Those that have not delivered a whole request head yet, oldest (lowest id) first,
    /// with when they were accepted.
    waiting: BTreeMap<u64, (Instant, Arc<Client>)>,
    /// Pushed out of `waiting` to make room; their threads are ending.
    pushed_out: HashSet<u64>,
    /// Pushed out since the last warning, and when that was.
    pushed_since_warn: u64,
    warned_at: Option<Instant>,
    rejecters: usize,
    next_id: u64,
}

impl Registry {
    /// Connections that hold a slot: all but those already pushed out.
    fn live(&self) -> usize {
        self.clients.len() - self.pushed_out.len()
    }

    /// Whether a new connection must be refused, after any push-out: the memory budget
    /// (when it is what limits, `fit < max`) counts every thread, a pushed-out one still
    /// ending included (comparing `live()` with it let up to [`MAX_PUSHED_OUT`] threads
    /// past the budget); `--max-connections` counts the slots held, `live()`.
    fn refusal(&self, max: usize, fit: usize) -> Option<Refusal> {
        if fit < max && self.clients.len() >= fit {
            Some(Refusal::Memory)
        } else if self.live() >= max {
            Some(Refusal::Busy)
        } else {
            None
        }
    }

    /// Closes the oldest connection that has sent nothing yet, or else the oldest still
    /// waiting for its request head, to make room; only among those accepted before
    /// `before`, if given. Returns it, or `None` if there is none (or too many pushed out
    /// are still ending).
    fn push_out_oldest(&mut self, before: Option<Instant>) -> Option<Arc<Client>> {
        if self.pushed_out.len() >= MAX_PUSHED_OUT {
            return None;
        }
        let old = |(at, _): &&(Instant, Arc<Client>)| before.is_none_or(|b| *at <= b);
        // Look at a few of the oldest only: this runs on the accept loop.
        let id = self
            .waiting
            .values()
            .take(32)
            .filter(old)
            .find(|(_, c)| c.is_silent())
            .or_else(|| self.waiting.values().next().filter(old))
            .map(|(_, c)| c.id())?;
        let (_, victim) = self.waiting.remove(&id)?;
        self.pushed_out.insert(id);
        // Its thread's read returns at once (end of stream), and it ends quietly.
        let _ = victim.socket.shutdown(Shutdown::Both);
        self.pushed_since_warn += 1;
        Some(victim)
    }
}

/// Why [`admit`] refuses a connection with `503`.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// Past the connections that fit the memory budget (budget.rs).
    Memory,
    /// At `--max-connections`, every slot past its request head.
    Busy,
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
        // First, while a program that binds before starting threads has only this one:
        // glibc's arenas would otherwise reserve 64 MiB of address space each (heap.rs).
        let arenas = heap::bound_arenas();
        let budget = budget::plan(
            &config,
            arenas,
            backlog::WRITER_STACK,
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
                hub: Hub::new(&config),
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
                Ok((socket, peer)) => admit(&shared, socket, peer),
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
    pub fn spawn(self) -> std::io::Result<Running> {
        let handle = self.handle();
        let thread = thread::Builder::new()
            .name("tinyws-accept".into())
            .spawn(move || self.run())?;
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
        self.shared.hub.broadcast(&message, None)
    }

    /// Clients in the broadcast room right now (always 0 in echo mode).
    pub fn members(&self) -> usize {
        self.shared.hub.len()
    }
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A client for a new socket, with its own TLS session when the server speaks TLS.
    fn new_client(&self, id: u64, peer: SocketAddr, socket: TcpStream) -> Option<Client> {
        let client = Client::new(id, peer, socket);
        #[cfg(feature = "tls")]
        if let Some(config) = &self.tls {
            return match crate::tls::Tls::new(config) {
                Ok(tls) => Some(client.with_tls(tls)),
                Err(e) => {
                    warn!("{peer}: cannot start a TLS session ({e}); closed");
                    None
                }
            };
        }
        Some(client)
    }

    /// Answers `503` without reading the request and without blocking the caller (the
    /// accept loop): the answer fits in the socket's send buffer. Over TLS there is no
    /// answer without a handshake, so the connection is just closed.
    fn busy_without_reading(&self, socket: &TcpStream, response: &http::Response) {
        if self.is_tls() {
            return;
        }
        let _ = socket.set_nonblocking(true);
        let _ = (&*socket).write_all(&response.to_bytes());
        let _ = socket.shutdown(Shutdown::Write);
    }

    fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    fn scheme(&self) -> &'static str {
        if self.is_tls() { "wss" } else { "ws" }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Connection `id` has delivered its whole request head: it no longer counts as
    /// waiting (see [`admit`]). `false` if it was pushed out meanwhile: end it quietly.
    pub(crate) fn head_received(&self, id: u64) -> bool {
        let mut reg = self.registry();
        reg.waiting.remove(&id).is_some() || !reg.pushed_out.contains(&id)
    }
}

/// Removes a connection from the registry when its thread ends, even by a panic.
struct Registered {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut reg = self.shared.registry();
        reg.clients.remove(&self.id);
        reg.waiting.remove(&self.id);
        reg.pushed_out.remove(&self.id);
        drop(reg);
        // Only shutdown waits for this (a syscall saved per connection otherwise). It
        // sets `stopping` before it looks at the registry, under the lock we just used.
        if self.shared.is_stopping() {
            self.shared.changed.notify_all();
        }
    }
}

/// Admission. A connection holds a slot of `--max-connections` from its accept; until it
/// has sent a whole request head it is *waiting*, and about half the slots may be
/// waiting. When all the slots are taken, a new connection pushes out the oldest waiting
/// one that has sent nothing yet (else the oldest waiting one); when only the waiting
/// half is, it pushes out one that has waited at least [`PUSH_OUT_GRACE`], and is let in
/// anyway if none has (slots are free: a reconnect storm of slow phones is not pushed
/// out). So sockets that never send (or trickle) cannot lock new clients out, they only
/// push each other out. `503` when every slot holds a connection past its request head,
/// or when the memory budget has no room for one more thread: there every connection
/// counts, the pushed-out ones still ending included (their threads are still there).
fn admit(shared: &Arc<Shared>, socket: TcpStream, peer: SocketAddr) {
    let mut reg = shared.registry();
    let max = shared.config.max_connections;
    // The slots: --max-connections, or fewer when that many would not fit the memory
    // limit (budget.rs; the startup warning said which flag to lower).
    let cap = max.min(shared.fit);
    let waiting_cap = (cap / 2).max(1);
    let now = Instant::now();
    let full = reg.live() >= cap;
    if full || reg.waiting.len() >= waiting_cap {
        let before = (!full).then(|| now.checked_sub(PUSH_OUT_GRACE)).flatten();
        if full || before.is_some() {
            push_out(&mut reg, peer, before, cap, max, waiting_cap, now);
        }
    }
    let refusal = match reg.refusal(max, shared.fit) {
        Some(Refusal::Memory) => Some((
            format!(
                "{peer}: refused with 503, at the {} connections that fit the memory limit (see the memory budget line at startup)",
                shared.fit
            ),
            http::no_memory(),
        )),
        Some(Refusal::Busy) => Some((
            format!(
                "{peer}: refused with 503, at the cap of {max} connections (--max-connections)"
            ),
            http::busy(max),
        )),
        None => None,
    };
    if let Some((why, response)) = refusal {
        let spare = reg.rejecters < MAX_REJECTERS;
        if spare {
            reg.rejecters += 1;
        }
        drop(reg);
        warn!("{why}");
        reject_busy(shared, socket, peer, spare, response);
        return;
    }
    reg.next_id += 1;
    let id = reg.next_id;
    let Some(client) = shared.new_client(id, peer, socket) else {
        return;
    };
    let client = Arc::new(client);
    reg.clients.insert(id, client.clone());
    reg.waiting.insert(id, (now, client.clone()));
    drop(reg);

    let guard = Registered {
        shared: shared.clone(),
        id,
    };
    let ctx = shared.clone();
    let accepted = Instant::now();
    let fallback = client.clone();
    let spawned = shared.threads.run(move || {
        let _guard = guard;
        conn::run(&ctx, client, accepted);
    });
    if let Err(e) = spawned {
        // The closure, and with it the guard, was dropped: the client is unregistered.
        // Out of threads or memory: answer without reading, as past the rejecter slots.
        warn!(
            "{peer}: cannot start a thread ({e}); answered 503. Lower --max-connections or --stack-size"
        );
        shared.busy_without_reading(&fallback.socket, &http::no_thread());
    }
}

/// Pushes out the oldest waiting connection (accepted before `before`, if given) to make
/// room for `peer`, and says so: at `debug` each time, at `warn` at most once per
/// [`PUSH_OUT_WARN_EVERY`], naming the limit that made room short.
fn push_out(
    reg: &mut Registry,
    peer: SocketAddr,
    before: Option<Instant>,
    cap: usize,
    max: usize,
    waiting_cap: usize,
    now: Instant,
) {
    let Some(victim) = reg.push_out_oldest(before) else {
        return;
    };
    debug!(
        "#{} {}: closed before its request head, to make room for {peer} ({cap} slots: at most {waiting_cap} may wait for a request head)",
        victim.id(),
        victim.peer_addr()
    );
    if reg
        .warned_at
        .is_none_or(|t| now.duration_since(t) >= PUSH_OUT_WARN_EVERY)
    {
        let limit = if cap == max {
            "--max-connections"
        } else {
            "the connections that fit the memory limit, see the memory budget line at startup"
        };
        warn!(
            "{} connection(s) that had not sent a request were closed to make room for new ones: {waiting_cap} were waiting for a request head (half of the {cap} slots, {limit}); many sockets that send nothing may be an attack (docs/security.md)",
            reg.pushed_since_warn
        );
        reg.pushed_since_warn = 0;
        reg.warned_at = Some(now);
    }
}

/// Answers `503` to a client over the cap without letting threads grow without bound:
/// with a spare slot, a small thread reads the request first (so closing does not reset
/// the connection and lose the answer); without one, the answer is written blindly
/// (over TLS there is no answer without a handshake: the connection is just closed).
fn reject_busy(
    shared: &Arc<Shared>,
    socket: TcpStream,
    peer: SocketAddr,
    spare: bool,
    response: http::Response,
) {
    if !spare {
        shared.busy_without_reading(&socket, &response);
        return;
    }
    let ctx = shared.clone();
    let linger = shared.config.handshake_timeout.min(Duration::from_secs(1));
    let spawned = thread::Builder::new()
        .stack_size(REJECTER_STACK)
        .spawn(move || {
            if let Some(client) = ctx.new_client(0, peer, socket) {
                let _ = client.socket.set_write_timeout(Some(linger));
                let deadline = Instant::now() + linger;
                let _ = http::read_head(&client, ctx.config.max_head_size, deadline);
                http::respond_and_close(&client, &response, linger);
            }
            ctx.registry().rejecters -= 1;
        });
    if spawned.is_err() {
        shared.registry().rejecters -= 1;
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
    shared.hub.close_all(1001, crate::client::GOING_AWAY);
    let deadline = Instant::now() + shared.config.shutdown_timeout;
    if !wait_until_empty(shared, deadline) {
        let reg = shared.registry();
        warn!(
            "{} connection(s) did not close within {}; cutting them",
            reg.clients.len(),
            crate::config::format_duration(shared.config.shutdown_timeout)
        );
        for c in reg.clients.values() {
            let _ = c.socket.shutdown(Shutdown::Both);
        }
        drop(reg);
        wait_until_empty(shared, Instant::now() + Duration::from_secs(1));
    }
    shared.threads.stop();
    info!("stopped");
}

fn wait_until_empty(shared: &Shared, deadline: Instant) -> bool {
    let mut reg = shared.registry();
    while !reg.clients.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        reg = shared
            .changed
            .wait_timeout(reg, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review of issue 13: the memory budget counts the threads of pushed-out connections
    /// still ending; --max-connections counts only the slots held.
    #[test]
    fn the_memory_budget_counts_pushed_out_threads_and_the_cap_does_not() {
        let mut reg = Registry::default();
        let mut peers = Vec::new(); // the other ends, kept open
        for id in 1..=3 {
            let (client, peer) = Client::over_loopback(None);
            reg.clients.insert(id, Arc::new(client));
            peers.push(peer);
        }
        reg.pushed_out.insert(3); // still ending: its thread is there
        assert_eq!(reg.live(), 2);
        // Memory fits 3 of --max-connections 10: three threads exist, refuse.
        assert_eq!(reg.refusal(10, 3), Some(Refusal::Memory));
        assert_eq!(reg.refusal(10, 4), None);
        // Everything fits: only the slots count, and one is free again.
        assert_eq!(reg.refusal(3, 3), None);
        assert_eq!(reg.refusal(2, 2), Some(Refusal::Busy));
    }
}
