//! One connected client as other threads see it: its identity and the write side of
//! its socket.
//!
//! A connection's own thread owns the tungstenite `WebSocket` and spends its life blocked
//! in `read()`. Other threads (shutdown today, broadcast later) still need to send to it,
//! and tungstenite has no read/write split. So every byte bound for a client goes through
//! its [`Outbox`], under one lock, as whole frames: frames from different threads never
//! interleave, and nothing is written after a close frame (RFC 6455 §5.5.1).
//!
//! In echo mode the thread that queues also writes, inline. In broadcast mode the outbox
//! hands whole frames to the client's backlog instead, and only the client's writer
//! thread touches the socket (see `backlog.rs`): the lock is then never held across a
//! blocking write, so a client that stops reading cannot hold up whoever sends to it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::backlog::{Backlog, Stalled};

/// A connected client, shared between its connection thread and the rest of the server.
#[derive(Debug)]
pub struct Client {
    id: u64,
    peer: SocketAddr,
    path: OnceLock<String>,
    /// Set once the WebSocket handshake completed; before that, the bytes written are HTTP.
    upgraded: AtomicBool,
    /// Shutdown wants a close 1001 sent ([`shut_down`](Client::shut_down)).
    going_away: AtomicBool,
    /// The client has sent at least one byte (admission prefers to push out those that
    /// have not: server.rs).
    spoke: AtomicBool,
    pub(crate) socket: TcpStream,
    /// `wss://`: the TLS session every byte to and from this client passes through.
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::Tls>,
    out: Mutex<Outbox>,
    /// Broadcast mode: wakes the writer thread (frames queued, or the connection is over).
    pub(crate) wake: Condvar,
    /// Broadcast mode: when the room last made this client's messages wait (for the log).
    paced_at: Mutex<Option<Instant>>,
}

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Whole frames waiting for the next flush.
    pub(crate) pending: Vec<u8>,
    /// A close frame was queued: everything after it is dropped.
    pub(crate) closed: bool,
    /// A write failed or timed out, possibly mid-frame: nothing more may be written.
    pub(crate) broken: bool,
    /// `--trace`: narrates every byte written, as HTTP before the upgrade, as frames after.
    trace: Option<crate::trace::Frames>,
    /// Broadcast mode: frames wait here for the writer thread instead of being written.
    pub(crate) backlog: Option<Backlog>,
}

impl Client {
    pub(crate) fn new(id: u64, peer: SocketAddr, socket: TcpStream) -> Client {
        Client {
            id,
            peer,
            path: OnceLock::new(),
            upgraded: AtomicBool::new(false),
            going_away: AtomicBool::new(false),
            spoke: AtomicBool::new(false),
            socket,
            #[cfg(feature = "tls")]
            tls: None,
            out: Mutex::new(Outbox::default()),
            wake: Condvar::new(),
            paced_at: Mutex::new(None),
        }
    }

    /// Serve this client over TLS (`wss://`, HTTPS).
    #[cfg(feature = "tls")]
    pub(crate) fn with_tls(mut self, tls: crate::tls::Tls) -> Client {
        self.tls = Some(tls);
        self
    }

    /// Reads what the client sent, decrypted if the connection uses TLS. Blocks at most
    /// the socket's read timeout.
    pub(crate) fn read_in(&self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.read(&self.socket, buf, None);
        }
        retry(|| (&self.socket).read(buf))
    }

    /// Like [`read_in`](Self::read_in), for the request head: a TLS read may need many
    /// socket reads (handshake, a record in pieces), and none of them may pass `deadline`.
    /// (A plain read is one socket read; the caller has set its timeout.)
    pub(crate) fn read_head_bytes(
        &self,
        buf: &mut [u8],
        #[allow(unused_variables)] deadline: std::time::Instant,
    ) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        let read = match &self.tls {
            Some(tls) => tls.read(&self.socket, buf, Some(deadline)),
            None => (&self.socket).read(buf),
        };
        #[cfg(not(feature = "tls"))]
        let read = (&self.socket).read(buf);
        if matches!(read, Ok(n) if n > 0) {
            self.spoke.store(true, Ordering::Relaxed);
        }
        read
    }

    /// Whether the client has sent nothing yet: no byte read from the socket (a TLS
    /// handshake's included, though it yields no plaintext yet), none waiting in it.
    pub(crate) fn is_silent(&self) -> bool {
        if self.spoke.load(Ordering::Relaxed) {
            return false;
        }
        #[cfg(feature = "tls")]
        if self.tls.as_ref().is_some_and(crate::tls::Tls::heard) {
            self.spoke.store(true, Ordering::Relaxed);
            return false;
        }
        !crate::nowait::has_input(&self.socket)
    }

    /// Writes all of `bytes` to the client, encrypted if the connection uses TLS. Blocks
    /// at most the socket's write timeout per write.
    pub(crate) fn write_raw(&self, bytes: &[u8]) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.write_all(&self.socket, bytes);
        }
        (&self.socket).write_all(bytes)
    }

    /// Whether the connection uses TLS.
    pub(crate) fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Before closing a TLS connection: tell the client no data was cut off (RFC 8446
    /// §6.1: close_notify before closing the write side; a strict client reports a
    /// truncation attack otherwise). Every TLS connection that got as far as its request
    /// ends through here: HTTP answers, closes, failures. Sending it twice is harmless
    /// (rustls sends it once). Bounded: a client that stopped reading holds it up at most a
    /// second (or the shorter write timeout already set).
    pub(crate) fn end_tls(&self) {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            if self.outbox().broken {
                // A write failed, maybe in the middle of a record: the client cannot read
                // anything after it, and the write would only wait again.
                return;
            }
            let cap = std::time::Duration::from_secs(1);
            if self
                .socket
                .write_timeout()
                .ok()
                .flatten()
                .is_none_or(|t| t > cap)
            {
                let _ = self.socket.set_write_timeout(Some(cap));
            }
            tls.close_notify(&self.socket);
        }
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

    pub(crate) fn set_upgraded(&self, path: String) {
        let _ = self.path.set(path);
        self.upgraded.store(true, Ordering::Release);
    }

    /// The end of the opening handshake: sends the `101` that tungstenite queued (the
    /// wire holds it back, wire.rs) and marks the client upgraded, both under the outbox
    /// lock. Shutdown decides under the same lock whether a client gets a close frame or
    /// is cut ([`shut_down`](Self::shut_down)), so a client sees its 101 and then the
    /// 1001, or neither; never a 101 and then a silent end.
    pub(crate) fn upgrade(&self, path: String) -> io::Result<()> {
        let mut out = self.outbox();
        self.write_out(&mut out)?;
        self.set_upgraded(path);
        Ok(())
    }

    /// Shutdown: an upgraded client gets a close 1001 (RFC 6455 §7.4.1, going away), a
    /// client still in its handshake is cut at once. This never waits for the outbox: a
    /// writer blocked on a client that stopped reading must not hold up the shutdown
    /// (the shutdown timeout cuts it later). If another thread holds it, the request
    /// stays in `going_away`, and the connection's thread sends the 1001 before it next
    /// waits for the client ([`close_if_going_away`](Self::close_if_going_away)); a
    /// connection thread still in [`upgrade`](Self::upgrade) checks for the shutdown
    /// itself (conn.rs).
    pub(crate) fn shut_down(&self) {
        self.going_away.store(true, Ordering::Release);
        // Short: a client that stopped reading must not hold up the others.
        let _ = self
            .socket
            .set_write_timeout(Some(std::time::Duration::from_millis(200)));
        let mut out = match self.out.try_lock() {
            Ok(out) => out,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        if self.is_upgraded() {
            self.close_locked(&mut out, 1001, GOING_AWAY);
        } else {
            let _ = self.socket.shutdown(std::net::Shutdown::Both);
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

    /// `--trace`: from now on, print everything written to this client.
    pub(crate) fn trace_writes(&self, detail: crate::trace::Detail) {
        self.outbox().trace = Some(crate::trace::Frames::new(self.id, "->", detail));
    }

    pub(crate) fn is_upgraded(&self) -> bool {
        self.upgraded.load(Ordering::Acquire)
    }

    pub(crate) fn outbox(&self) -> MutexGuard<'_, Outbox> {
        // A panic while holding the lock leaves the outbox consistent (whole frames or
        // `broken`), so a poisoned lock is still usable.
        self.out.lock().unwrap_or_else(|p| p.into_inner())
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
        if self.is_upgraded() && has_close_frame(bytes) {
            out.closed = true;
        }
        if out.pending.is_empty()
            && bytes.len() >= threshold
            && out.backlog.is_none()
            && out.trace.is_none()
        {
            // Nothing waits before it: write it from the caller's buffer instead of
            // copying it into the outbox first (one copy less per large reply).
            return self.send(&mut out, bytes);
        }
        out.pending.extend_from_slice(bytes);
        if out.pending.len() >= threshold || out.backlog.is_some() {
            self.write_out(&mut out)?;
        }
        Ok(())
    }

    /// Frees the outbox's buffer if nothing waits in it (the connection has gone quiet):
    /// it keeps the size of the largest burst of replies, up to 64 KiB. Returns the bytes
    /// freed.
    pub(crate) fn release_idle(&self) -> usize {
        let mut out = self.outbox();
        if !out.pending.is_empty() {
            return 0;
        }
        std::mem::take(&mut out.pending).capacity()
    }

    /// Writes everything queued. Blocks at most the socket's write timeout.
    pub(crate) fn flush(&self) -> io::Result<()> {
        let mut out = self.outbox();
        self.write_out(&mut out)
    }

    fn write_out(&self, out: &mut Outbox) -> io::Result<()> {
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
        if let Some(trace) = out.trace.as_mut() {
            if self.is_upgraded() {
                trace.feed(&out.pending);
            } else {
                let text = crate::trace::http_lines("->", "response", &out.pending);
                crate::trace::emit(self.id, &text);
            }
        }
        let mut pending = std::mem::take(&mut out.pending);
        let result = self.send(out, &pending);
        pending.clear();
        if pending.capacity() <= 64 * 1024 {
            out.pending = pending; // but do not keep a large reply's buffer while idle
        }
        result
    }

    /// Writes `bytes` to the socket; a failure marks the connection broken.
    fn send(&self, out: &mut Outbox, bytes: &[u8]) -> io::Result<()> {
        if out.broken {
            return Err(already_failed());
        }
        self.write_raw(bytes).map_err(|e| {
            out.broken = true;
            match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    io::Error::new(io::ErrorKind::BrokenPipe, WriteStalled)
                }
                _ => e,
            }
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
        if backlog.take_waiter() {
            self.wake.notify_one();
        }
        if let Some(trace) = out.trace.as_mut() {
            if queued {
                trace.feed(&frames);
            } else {
                // Dropped with the rest of the backlog: what goes out instead is the close.
                trace.feed(&crate::backlog::eviction_close());
            }
        }
        if !queued {
            out.closed = true; // the backlog now ends with its 1008 close frame
        }
        queued
    }

    /// Broadcast mode: queues one frame shared with the other members, if its backlog has
    /// room for it (then [`Offer::Queued`]); [`Offer::Full`] if not (the caller waits and
    /// offers it again: see hub.rs); [`Offer::Gone`] if the client is closing or failed.
    pub(crate) fn offer(&self, frame: &Arc<[u8]>) -> Offer {
        let mut out = self.outbox();
        if out.closed || out.broken {
            return Offer::Gone;
        }
        // Nothing queued ahead of it: a small frame may go straight into the socket
        // buffer from this thread, if it fits now (nowait.rs), sparing the writer thread
        // a wake-up. The outbox lock keeps the writer from starting meanwhile.
        let direct =
            frame.len() <= crate::nowait::DIRECT_MAX && !self.is_tls() && out.trace.is_none();
        let Some(backlog) = out.backlog.as_mut() else {
            return Offer::Gone;
        };
        if backlog.is_finishing() {
            return Offer::Gone;
        }
        if direct && backlog.is_idle() {
            match crate::nowait::send(&self.socket, frame) {
                Ok(n) if n == frame.len() => return Offer::Queued,
                Ok(n) => {
                    // The socket took the start of the frame: the writer sends the rest.
                    backlog.push_rest(Arc::from(&frame[n..]));
                    if backlog.take_waiter() {
                        self.wake.notify_one();
                    }
                    return Offer::Queued;
                }
                // Full, or an error the writer thread will meet again and report.
                Err(_) => {}
            }
        }
        if !backlog.push_shared(frame) {
            return Offer::Full;
        }
        if backlog.take_waiter() {
            self.wake.notify_one();
        }
        if let Some(trace) = out.trace.as_mut() {
            trace.feed(frame);
        }
        Offer::Queued
    }

    /// Broadcast mode: the room waits for this client's full backlog; has it stopped
    /// reading? Asks the kernel for its progress only when `timeout` has passed.
    pub(crate) fn check_stall(&self, now: Instant, timeout: Duration) -> Stalled {
        let mut out = self.outbox();
        if out.closed || out.broken {
            return Stalled::Until(now); // gone: the caller's next offer says so
        }
        match out.backlog.as_mut() {
            Some(b) => b.check_stall(now, timeout, || crate::nowait::progress(&self.socket)),
            None => Stalled::Until(now),
        }
    }

    /// Broadcast mode: closes a client that stopped reading while the room waited for it
    /// (1008; its queued frames are freed now). The writer sends the close when it can.
    pub(crate) fn cut_stuck(&self, waited: Duration) {
        let mut out = self.outbox();
        if out.closed || out.broken {
            return;
        }
        let Some(backlog) = out.backlog.as_mut() else {
            return;
        };
        backlog.evict_stuck(waited);
        if backlog.take_waiter() {
            self.wake.notify_one();
        }
        out.closed = true; // the backlog now ends with its 1008 close frame
        if let Some(trace) = out.trace.as_mut() {
            trace.feed(&crate::backlog::eviction_close());
        }
    }

    /// Broadcast mode: the room makes this client's messages wait at `now`. Returns whether
    /// that is news worth a log line: the first time, or after a second without.
    pub(crate) fn note_paced(&self, now: Instant) -> bool {
        let mut at = self.paced_at.lock().unwrap_or_else(|p| p.into_inner());
        let news = at.is_none_or(|t| now.saturating_duration_since(t) > Duration::from_secs(1));
        *at = Some(now);
        news
    }

    /// Whether a close frame was queued for this client (by either side) or it failed:
    /// the room sends it nothing more, and takes nothing more from it.
    pub(crate) fn is_closing(&self) -> bool {
        let out = self.outbox();
        out.closed || out.broken
    }

    /// Why the server dropped this client (stuck, ping flood, write timeout), if it did.
    pub(crate) fn dropped_reason(&self) -> Option<String> {
        self.outbox().backlog.as_ref()?.dropped.clone()
    }

    /// Sends a close frame with `code` and `reason` (RFC 6455 §5.5.1) after whatever is
    /// queued, unless a close frame was already sent or the connection failed. Returns
    /// whether the frame was written.
    pub(crate) fn close(&self, code: u16, reason: &str) -> bool {
        let mut out = self.outbox();
        Self::close_locked(self, &mut out, code, reason)
    }

    fn close_locked(&self, out: &mut Outbox, code: u16, reason: &str) -> bool {
        if out.closed || out.broken || !self.is_upgraded() {
            return false;
        }
        out.pending.extend_from_slice(&close_frame(code, reason));
        out.closed = true;
        self.write_out(out).is_ok()
    }
}

/// The reason of the close 1001 on shutdown.
pub(crate) const GOING_AWAY: &str = "server shutting down";

/// What became of a frame offered to a member ([`Client::offer`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    Queued,
    /// Its backlog is full: offer it again once the writer has taken frames.
    Full,
    /// Closing or failed: it is leaving the room.
    Gone,
}

/// A write blocked for the whole write timeout: the client stopped reading. Carried
/// inside the `io::Error`, so the connection's end is told apart from a vanished peer by
/// type, not by the message text.
#[derive(Debug)]
pub(crate) struct WriteStalled;

impl std::fmt::Display for WriteStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("write timed out: the client stopped reading")
    }
}

impl std::error::Error for WriteStalled {}

/// Runs a blocking socket call again when a signal interrupted it. A socket with a
/// timeout (`SO_RCVTIMEO`, `SO_SNDTIMEO`: every client socket here) is never restarted
/// by the kernel after an interruption (signal(7)), whatever `SA_RESTART` says, and
/// attaching `strace -p` or a debugger interrupts every blocked call: without this, that
/// dropped every open connection ("Interrupted system call"). std retries `accept` and
/// `write_all` itself, but not a single `read` or `write`. Each retry waits the socket's
/// whole timeout again, so signals arriving faster than the timeout (nothing in tinyws
/// sends any) would postpone a keepalive ping until they stop.
pub(crate) fn retry<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            done => return done,
        }
    }
}

pub(crate) fn is_stalled(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<WriteStalled>())
}

/// Writing to a connection whose earlier write failed, possibly mid-frame.
fn already_failed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection already failed")
}

/// An unmasked close frame as a server sends it: FIN + opcode 8, the length, the code in
/// network byte order, then the UTF-8 reason, cut to fit the 125-byte limit of control
/// frames (RFC 6455 §5.5).
pub(crate) fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let reason = &reason.as_bytes()[..cut];
    let mut f = Vec::with_capacity(4 + reason.len());
    f.push(0x88);
    f.push(2 + reason.len() as u8);
    f.extend_from_slice(&code.to_be_bytes());
    f.extend_from_slice(reason);
    f
}

/// Whether a run of whole, unmasked server frames contains a close frame (opcode 8).
pub(crate) fn has_close_frame(mut bytes: &[u8]) -> bool {
    while bytes.len() >= 2 {
        if bytes[0] & 0x0f == 0x8 {
            return true;
        }
        let (header, len) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (4, u16::from_be_bytes([bytes[2], bytes[3]]) as u64),
            127 if bytes.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&bytes[2..10]);
                (10, u64::from_be_bytes(n))
            }
            126 | 127 => return false,
            n => (2, n as u64),
        };
        let skip = (header as u64).saturating_add(len);
        if skip >= bytes.len() as u64 {
            return false;
        }
        bytes = &bytes[skip as usize..];
    }
    false
}

#[cfg(test)]
impl Client {
    /// For unit tests: a client (id 1) over a real loopback connection with this read
    /// timeout, and the peer's end of it.
    pub(crate) fn over_loopback(read_timeout: Option<std::time::Duration>) -> (Client, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let peer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (socket, addr) = listener.accept().expect("accept");
        socket.set_read_timeout(read_timeout).expect("timeout");
        (Client::new(1, addr, socket), peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_frame_layout() {
        assert_eq!(
            close_frame(1001, "bye"),
            [0x88, 5, 0x03, 0xe9, b'b', b'y', b'e']
        );
        let long = "é".repeat(100); // 200 bytes: cut to 122, a char boundary
        let f = close_frame(1000, &long);
        assert_eq!(f[1] as usize, f.len() - 2);
        assert!(f.len() - 2 <= 125);
        assert!(std::str::from_utf8(&f[4..]).is_ok());
    }

    #[test]
    fn finds_close_frames_among_others() {
        let text = [0x81, 2, b'h', b'i'];
        let mut run = text.to_vec();
        assert!(!has_close_frame(&run));
        run.extend_from_slice(&close_frame(1000, ""));
        assert!(has_close_frame(&run));
        let mut big = vec![0x82, 126, 0x01, 0x00];
        big.extend(std::iter::repeat_n(0x88, 256)); // payload bytes that look like close
        assert!(!has_close_frame(&big));
        big.extend_from_slice(&close_frame(1001, "x"));
        assert!(has_close_frame(&big));
    }

    /// A signal (or `strace -p`) interrupting a blocked read must not end the connection.
    /// The socket has a read timeout, so the kernel returns EINTR instead of restarting.
    #[test]
    #[cfg(unix)] // signals and pthread_kill: Unix only
    #[allow(unsafe_code)]
    fn a_signal_during_a_blocked_read_is_not_an_error() {
        use std::os::unix::thread::JoinHandleExt;
        use std::sync::atomic::AtomicUsize;
        use std::time::Duration;

        let (client, mut peer) = Client::over_loopback(Some(Duration::from_secs(10)));
        let client = Arc::new(client);
        // A handler that does nothing: the signal only interrupts the read.
        let caught = Arc::new(AtomicBool::new(false));
        let registered = signal_hook::flag::register(signal_hook::consts::SIGUSR2, caught.clone())
            .expect("register SIGUSR2");
        let entered = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (client, entered) = (client.clone(), entered.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16];
                entered.store(1, Ordering::SeqCst);
                client.read_in(&mut buf).map(|n| buf[..n].to_vec())
            })
        };
        while entered.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // Several signals some time apart, so at least one lands while it waits in recv.
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(40));
            // SAFETY: the thread has not been joined, so its pthread_t is valid; SIGUSR2
            // has a handler (registered above), so the signal cannot end the process.
            let rc = unsafe { libc::pthread_kill(reader.as_pthread_t(), libc::SIGUSR2) };
            assert_eq!(rc, 0, "pthread_kill");
        }
        peer.write_all(b"still here").expect("write");
        let got = reader.join().expect("the reader thread");
        signal_hook::low_level::unregister(registered);
        assert!(caught.load(Ordering::SeqCst), "the signal was delivered");
        assert_eq!(got.expect("read_in failed").as_slice(), b"still here");
    }
}
