//! One connected client as other threads see it: who it is ([`Client`]), and its outbox,
//! the one door every byte bound for it goes through.
//!
//! A connection's own thread owns the tungstenite `WebSocket` and spends its life blocked
//! in `read()`. Other threads (shutdown, the room) still need to send to it,
//! and tungstenite has no read/write split. So every byte bound for a client goes through
//! its [`Outbox`], under one lock, as whole frames: frames from different threads never
//! interleave, and nothing is written after a close frame (RFC 6455 §5.5.1).
//!
//! In echo mode the thread that queues also writes, inline. In broadcast mode the outbox
//! hands whole frames to the client's backlog instead, and only the client's writer
//! thread touches the socket (`backlog.rs`, `writer.rs`): the lock is then never held across a
//! blocking write, so a client that stops reading cannot hold up whoever sends to it.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use tungstenite::Message;

use crate::client::backlog::{Backlog, ENTRY_COST, Member, eviction_close};
use crate::client::handle::ServerHandle;
use crate::client::transport::Transport;
use crate::frame;
use crate::tune;
use crate::util::lock::lock;

/// A connected client, shared between its connection thread and the rest of the server.
#[derive(Debug)]
pub struct Client {
    id: u64,
    peer: SocketAddr,
    path: OnceLock<String>,
    /// The subprotocol answered in the `101`, if any (set with the path).
    protocol: OnceLock<String>,
    /// Set once the WebSocket handshake completed; before that, the bytes written are HTTP.
    upgraded: AtomicBool,
    /// Shutdown wants a close 1001 sent ([`shut_down`](Client::shut_down)).
    going_away: AtomicBool,
    transport: Transport,
    out: Mutex<Outbox>,
    /// Broadcast mode: what its writer thread and the room keep here (backlog.rs).
    pub(crate) member: Member,
    /// The server it is connected to, for handlers ([`server`](Client::server)).
    server: ServerHandle,
    /// The handler gave a message tinyws does not send: said once per connection.
    warned_unsendable: AtomicBool,
}

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Whole frames waiting for the next flush.
    pub(crate) pending: Vec<u8>,
    /// A close frame was queued: everything after it is dropped.
    pub(crate) closed: bool,
    /// A write failed or timed out, possibly mid-frame: nothing more may be written.
    pub(crate) broken: bool,
    /// `--trace` and the inspector ([`Watch`]). Boxed: a connection that is neither
    /// traced nor inspected pays one pointer for it.
    pub(crate) watch: Option<Box<dyn Watch>>,
    /// Broadcast mode: frames wait here for the writer thread instead of being written.
    pub(crate) backlog: Option<Backlog>,
}

/// An observer of what is written to a client: the core's one hook for the teaching
/// layer's trace and inspector (trace.rs `Frames`). Attached once, where an upgrade
/// begins (connection.rs `handshake`, through trace.rs `Observers::attach`), beside the
/// stream's observer of what the client sends; a connection nobody watches never
/// formats a byte.
pub(crate) trait Watch: Send + std::fmt::Debug {
    /// `bytes` about to be written: frames once `upgraded`, else an HTTP answer (the `101`).
    fn wrote(&mut self, bytes: &[u8], upgraded: bool);
}

impl Client {
    pub(crate) fn new(
        id: u64,
        peer: SocketAddr,
        transport: Transport,
        server: ServerHandle,
    ) -> Client {
        Client {
            id,
            peer,
            path: OnceLock::new(),
            protocol: OnceLock::new(),
            upgraded: AtomicBool::new(false),
            going_away: AtomicBool::new(false),
            transport,
            out: Mutex::new(Outbox::default()),
            member: Member::default(),
            server,
            warned_unsendable: AtomicBool::new(false),
        }
    }

    /// The bytes in and out: the socket, and TLS if the connection uses it.
    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The TCP socket (timeouts, `shutdown`).
    pub(crate) fn socket(&self) -> &TcpStream {
        self.transport.socket()
    }

    /// Before closing a TLS connection: its close_notify ([`Transport::close_notify`]).
    /// Every TLS connection that got as far as its request ends through here: HTTP
    /// answers, closes, failures.
    pub(crate) fn end_tls(&self) {
        if self.outbox().broken {
            // A write failed, maybe in the middle of a record: the client cannot read
            // anything after it, and the write would only wait again.
            return;
        }
        self.transport.close_notify();
    }

    /// A number unique to this connection within the server's run; logs show it as `#id`.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client's address and port.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The request path of the upgrade, e.g. `/echo` (without the query string).
    pub fn path(&self) -> &str {
        self.path.get().map_or("", String::as_str)
    }

    /// The server this client is connected to: count its members, broadcast to the room
    /// (e.g. "alice joined" from [`on_open`](crate::Handler::on_open)), or shut it down.
    /// With [`Config::rooms`](crate::Config#structfield.rooms) its `broadcast` and
    /// `members` mean every room: for this client's own room use
    /// `client.server().broadcast_to(client.path(), msg)` and the entry of
    /// `client.server().rooms()` for `client.path()`.
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }

    /// Sends a text or binary `message` to this client only, in echo and broadcast mode
    /// alike: a reply for the asker ("nickname taken", a status) while what the handler
    /// returns goes to the whole room. Returns whether it was queued (or, in echo mode,
    /// written); `false` if the connection is closing or failed, for a message that is not
    /// [`Message::Text`] or [`Message::Binary`] (dropped with a warning, as a returned one
    /// is: see [`Handler`](crate::Handler)), and in broadcast mode for one larger than
    /// [`Config::max_backlog`](crate::Config#structfield.max_backlog).
    ///
    /// It takes the way every other frame for this client takes, with the same bounds.
    /// In echo mode it is written at once, on the calling thread (the connection's own,
    /// from a handler), after anything already queued; a client that reads nothing (or
    /// less than 16 KiB per [`Config::write_timeout`](crate::Config#structfield.write_timeout))
    /// makes that write fail after that long, which ends the connection. In broadcast mode it is queued in the client's backlog
    /// behind the room's messages already queued for it and never waits for the socket: the
    /// client's writer thread sends it in that order. Like the client's pongs, it does not
    /// wait for room in the backlog: a client that has more than twice `max_backlog`
    /// waiting is closed with 1008, as for a flood of pings.
    pub fn send(&self, message: Message) -> bool {
        let Some((opcode, payload)) = frame::data(&message) else {
            self.unsendable(&message);
            return false;
        };
        if !self.is_upgraded() {
            return false; // before the 101, bytes on the wire are HTTP
        }
        let frame = frame::encode(opcode, payload);
        let mut out = self.outbox();
        if out.closed || out.broken {
            return false;
        }
        match out.backlog.as_ref() {
            Some(b) if b.finishing => false,
            Some(b) if frame.len() + ENTRY_COST > b.limit => {
                let limit = b.limit;
                drop(out);
                log::warn!(
                    "#{} {}: a message of {} bytes for this client is larger than `max_backlog` ({}); not sent",
                    self.id,
                    self.peer,
                    payload.len(),
                    crate::config::format_size(limit)
                );
                false
            }
            Some(_) => {
                // In the backlog's order: anything pending first (nothing, normally).
                let _ = self.write_out_until(&mut out, None);
                self.enqueue(&mut out, frame)
            }
            None => {
                out.pending.extend_from_slice(&frame);
                self.write_out_until(&mut out, None).is_ok()
            }
        }
    }

    /// A handler gave a message that is not text or binary (returned it, or passed it to
    /// [`send`](Self::send)): it is dropped, and the first time on a connection a warning
    /// names it, in both modes ([`Handler`](crate::Handler) says why).
    pub(crate) fn unsendable(&self, message: &Message) {
        if self.warned_unsendable.swap(true, Ordering::AcqRel) {
            return;
        }
        let variant = match message {
            Message::Text(_) => "Text",
            Message::Binary(_) => "Binary",
            Message::Ping(_) => "Ping",
            Message::Pong(_) => "Pong",
            Message::Close(_) => "Close",
            Message::Frame(_) => "Frame",
        };
        log::warn!(
            "#{} {}: the handler gave a Message::{variant}, which tinyws does not send (only Text and Binary); dropped (said once per connection)",
            self.id,
            self.peer
        );
    }

    /// The subprotocol the server chose in its `101` (RFC 6455 §1.9), one of
    /// [`Config::protocols`](crate::Config#structfield.protocols) that the client
    /// offered; `None` if it offered none of them, or nothing.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.get().map(String::as_str)
    }

    /// The end of the opening handshake: sends the `101` that tungstenite queued (the
    /// stream holds it back, stream.rs) and marks the client upgraded, both under the outbox
    /// lock. Shutdown decides under the same lock whether a client gets a close frame or
    /// is cut ([`shut_down`](Self::shut_down)), so a client sees its 101 and then the
    /// 1001, or neither; never a 101 and then a silent end.
    pub(crate) fn upgrade(&self, path: String, protocol: Option<String>) -> io::Result<()> {
        let mut out = self.outbox();
        self.write_out_until(&mut out, None)?;
        if let Some(protocol) = protocol {
            let _ = self.protocol.set(protocol);
        }
        let _ = self.path.set(path);
        self.upgraded.store(true, Ordering::Release);
        Ok(())
    }

    /// Shutdown: an upgraded client gets a close 1001 (RFC 6455 §7.4.1, going away), a
    /// client still in its handshake is cut at once. This never waits for the outbox: a
    /// writer blocked on a client that stopped reading must not hold up the shutdown
    /// (the shutdown timeout cuts it later). If another thread holds it, the request
    /// stays in `going_away`, and the connection's thread sends the 1001 before it next
    /// waits for the client ([`close_if_going_away`](Self::close_if_going_away)); a
    /// connection thread still in [`upgrade`](Self::upgrade) checks for the shutdown
    /// itself (connection.rs).
    pub(crate) fn shut_down(&self) {
        self.going_away.store(true, Ordering::Release);
        // Short: a client that stopped reading must not hold up the others.
        self.transport
            .set_write_timeout(std::time::Duration::from_millis(200));
        let mut out = match self.out.try_lock() {
            Ok(out) => out,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        if self.is_upgraded() {
            self.close_locked(&mut out, 1001, GOING_AWAY);
        } else {
            let _ = self.socket().shutdown(std::net::Shutdown::Both);
        }
    }

    /// Sends the close 1001 that [`shut_down`](Self::shut_down) asked for, if it could
    /// not (the wire calls this before each blocking read). Does nothing otherwise, or
    /// once a close frame went out.
    pub(crate) fn close_if_going_away(&self) {
        if self.going_away.load(Ordering::Acquire) {
            self.close(1001, GOING_AWAY);
        }
    }

    pub(crate) fn is_upgraded(&self) -> bool {
        self.upgraded.load(Ordering::Acquire)
    }

    pub(crate) fn outbox(&self) -> MutexGuard<'_, Outbox> {
        // A panic while holding the lock leaves the outbox consistent (whole frames or
        // `broken`), so a poisoned lock is still usable.
        lock(&self.out)
    }

    /// Appends whole frames (or, before the upgrade, HTTP bytes); writes them out once
    /// `threshold` bytes are waiting.
    pub(crate) fn queue(&self, bytes: &[u8], threshold: usize) -> io::Result<()> {
        let mut out = self.outbox();
        if out.broken {
            return Err(already_failed());
        }
        if out.closed {
            return Ok(());
        }
        if self.is_upgraded() && frame::contains_close(bytes) {
            out.closed = true;
        }
        if out.pending.is_empty()
            && bytes.len() >= threshold
            && out.backlog.is_none()
            && out.watch.is_none()
        {
            // Nothing waits before it: write it from the caller's buffer instead of
            // copying it into the outbox first (one copy less per large reply).
            return self.write_now(&mut out, bytes, None);
        }
        out.pending.extend_from_slice(bytes);
        if out.pending.len() >= threshold || out.backlog.is_some() {
            self.write_out_until(&mut out, None)?;
        }
        Ok(())
    }

    /// Writes everything queued, under the write floor (guard/floor.rs).
    pub(crate) fn flush(&self) -> io::Result<()> {
        self.write_out_until(&mut self.outbox(), None)
    }

    /// Writes out everything queued (in broadcast mode, to the backlog), never waiting
    /// past `until` if given (`--stdin`'s one deadline for a line's clients: pipes.rs).
    pub(crate) fn write_out_until(
        &self,
        out: &mut Outbox,
        until: Option<Instant>,
    ) -> io::Result<()> {
        if out.pending.is_empty() {
            return Ok(());
        }
        if out.backlog.is_some() {
            // Traced by enqueue, which knows whether they are sent or replaced by a 1008.
            let frames: Arc<[u8]> = Arc::from(&out.pending[..]);
            out.pending.clear();
            self.enqueue(out, frames);
            return Ok(());
        }
        if let Some(watch) = out.watch.as_mut() {
            watch.wrote(&out.pending, self.is_upgraded());
        }
        let pending = std::mem::take(&mut out.pending);
        let result = self.write_now(out, &pending, until);
        tune::keep(&mut out.pending, pending); // for the next burst of replies
        result
    }

    /// Writes `bytes` to the socket under the client's write floor, never waiting past
    /// `until` if given; a failure marks the connection broken.
    fn write_now(&self, out: &mut Outbox, bytes: &[u8], until: Option<Instant>) -> io::Result<()> {
        if out.broken {
            return Err(already_failed());
        }
        self.transport.write_all_until(bytes, until).map_err(|e| {
            out.broken = true;
            crate::guard::floor::write_failure(e)
        })
    }

    /// Broadcast mode: queues whole frames for the writer thread. A close frame always
    /// fits; anything else that would pass twice the limit replaces it with a close 1008
    /// (see `backlog.rs`). Returns whether the frames were queued.
    ///
    /// The client's own frames pass here and broadcasts through [`offer`](Self::offer),
    /// so `--trace` shows each where it is queued, in the order the writer will send them.
    fn enqueue(&self, out: &mut Outbox, frames: Arc<[u8]>) -> bool {
        let closing = out.closed;
        let Some(backlog) = out.backlog.as_mut() else {
            return false;
        };
        let queued = backlog.push(frames.clone(), closing);
        self.wake_writer(out, queued.then_some(&frames));
        queued
    }

    /// Broadcast mode, after the backlog took `frames`, or (`None`) evicted the client
    /// instead and now ends with its close 1008: wakes the writer if it sleeps, and shows
    /// the watch what the writer will send, where it is queued.
    pub(crate) fn wake_writer(&self, out: &mut Outbox, frames: Option<&[u8]>) {
        if out.backlog.as_mut().is_some_and(Backlog::take_waiter) {
            self.member.wake.notify_one();
        }
        out.closed |= frames.is_none();
        if let Some(watch) = out.watch.as_mut() {
            match frames {
                Some(frames) => watch.wrote(frames, true),
                None => watch.wrote(&eviction_close(), true),
            }
        }
    }

    /// Whether a close frame was queued for this client (by either side) or it failed:
    /// the room sends it nothing more, and takes nothing more from it.
    pub(crate) fn is_closing(&self) -> bool {
        let out = self.outbox();
        out.closed || out.broken
    }

    /// Sends a close frame with `code` and `reason` (RFC 6455 §5.5.1) after whatever is
    /// queued, unless a close frame was already sent or the connection failed. Returns
    /// whether the frame was written.
    pub(crate) fn close(&self, code: u16, reason: &str) -> bool {
        self.close_locked(&mut self.outbox(), code, reason)
    }

    fn close_locked(&self, out: &mut Outbox, code: u16, reason: &str) -> bool {
        if out.closed || out.broken || !self.is_upgraded() {
            return false;
        }
        out.pending.extend_from_slice(&frame::close(code, reason));
        out.closed = true;
        self.write_out_until(out, None).is_ok()
    }
}

/// The reason of the close 1001 on shutdown.
pub(crate) const GOING_AWAY: &str = "server shutting down";

/// Writing to a connection whose earlier write failed, possibly mid-frame.
fn already_failed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection already failed")
}

#[cfg(test)]
impl Client {
    /// For unit tests: the client completed its handshake on `path`.
    pub(crate) fn set_upgraded(&self, path: String) {
        let _ = self.path.set(path);
        self.upgraded.store(true, Ordering::Release);
    }

    /// For unit tests: a client (id 1) over a real loopback connection with this read
    /// timeout, and the peer's end of it.
    pub(crate) fn over_loopback(read_timeout: Option<std::time::Duration>) -> (Client, TcpStream) {
        Client::over_loopback_as(1, read_timeout)
    }

    /// [`Client::over_loopback`], as connection `id`.
    pub(crate) fn over_loopback_as(
        id: u64,
        read_timeout: Option<std::time::Duration>,
    ) -> (Client, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let peer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (socket, addr) = listener.accept().expect("accept");
        socket.set_read_timeout(read_timeout).expect("timeout");
        let client = Client::new(
            id,
            addr,
            Transport::new(socket),
            crate::client::handle::detached(),
        );
        (client, peer)
    }
}
