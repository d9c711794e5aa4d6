//! The bytes of one connection, in and out: a TCP socket, with a TLS session around it
//! when the server speaks `wss://`; below it, what every socket call shares (retrying
//! after a signal, telling a timeout from a failure) and the write floor ([`Pace`]) every
//! write to a client passes. Nothing here knows about HTTP or frames.

use std::fmt::Debug;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// An encrypted session around the socket: the `tls` layer's (tls.rs) is the only one.
/// The transport calls it through this seam and never names it, so a build without
/// that layer has no TLS code at all.
pub(crate) trait Encryption: Send + Sync + Debug {
    /// Whether any byte of the client's was read, even one only of the TLS handshake.
    fn heard(&self) -> bool;
    /// Decrypted bytes from `socket`; what the session must send meanwhile goes to
    /// `out`. No socket read passes `deadline`, if given.
    fn read(
        &self,
        socket: &TcpStream,
        out: &mut dyn Write,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> io::Result<usize>;
    /// Encrypts `bytes` and writes the records to `out`.
    fn write_all(&self, out: &mut dyn Write, bytes: &[u8]) -> io::Result<()>;
    /// Tells the client nothing was cut off (close_notify).
    fn close_notify(&self, out: &mut dyn Write);
}

#[derive(Debug)]
pub(crate) struct Transport {
    socket: TcpStream,
    /// `wss://`: the TLS session every byte to and from this client passes through.
    tls: Option<Box<dyn Encryption>>,
    /// The client has sent at least one byte (admission prefers to push out those that
    /// have not: admission.rs).
    spoke: AtomicBool,
    /// The write floor: how long writes to this client may still wait ([`Pace`]).
    pace: Pace,
}

impl Transport {
    pub(crate) fn new(socket: TcpStream) -> Transport {
        Transport {
            socket,
            tls: None,
            spoke: AtomicBool::new(false),
            pace: Pace::default(),
        }
    }

    /// Serve this connection over TLS (`wss://`, HTTPS).
    pub(crate) fn with_tls(mut self, tls: Box<dyn Encryption>) -> Transport {
        self.tls = Some(tls);
        self
    }

    /// The TCP socket: its read timeout, `shutdown`, and the plain-text answers written
    /// around TLS.
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// Sets the write timeout: the write floor's ([`Pace`]), and the socket's own
    /// `SO_SNDTIMEO` for the few plain-text bytes written to it directly.
    pub(crate) fn set_write_timeout(&self, timeout: Duration) {
        self.pace.set_timeout(timeout);
        let _ = self.socket.set_write_timeout(Some(timeout));
    }

    /// The socket as a writer under the write floor, for one new write: a client that
    /// took everything sent before owes nothing from then.
    pub(crate) fn paced(&self) -> Paced<'_> {
        self.pace.start(&self.socket);
        Paced::new(&self.socket, &self.pace)
    }

    /// Reads what the client sent, decrypted if the connection uses TLS. Blocks at most
    /// the socket's read timeout.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.decrypt(buf, None)
            .unwrap_or_else(|| retry(|| (&self.socket).read(buf)))
    }

    /// Like [`read`](Self::read), for the request head: a TLS read may need many socket
    /// reads (handshake, a record in pieces), and none of them may pass `deadline`. (A
    /// plain read is one socket read; the caller has set its timeout.)
    pub(crate) fn read_head(&self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        let read = self
            .decrypt(buf, Some(deadline))
            .unwrap_or_else(|| (&self.socket).read(buf));
        if matches!(read, Ok(n) if n > 0) {
            self.spoke.store(true, Ordering::Relaxed);
        }
        read
    }

    /// A TLS read (`None` without TLS), which may write too (handshake messages, alerts):
    /// under the floor.
    fn decrypt(&self, buf: &mut [u8], deadline: Option<Instant>) -> Option<io::Result<usize>> {
        let tls = self.tls.as_ref()?;
        let mut out = Paced::new(&self.socket, &self.pace);
        Some(tls.read(&self.socket, &mut out, buf, deadline))
    }

    /// Whether the client has sent nothing yet: no byte read from the socket (a TLS
    /// handshake's included, though it yields no plaintext yet), none waiting in it.
    pub(crate) fn is_silent(&self) -> bool {
        if self.spoke.load(Ordering::Relaxed) {
            return false;
        }
        if self.tls.as_ref().is_some_and(|tls| tls.heard()) {
            self.spoke.store(true, Ordering::Relaxed);
            return false;
        }
        !crate::client::tcp::has_input(&self.socket)
    }

    /// Writes all of `bytes`, encrypted if the connection uses TLS, under the write floor
    /// ([`Pace`]): a client that takes too little makes it fail with a timeout.
    pub(crate) fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        self.write_all_until(bytes, None)
    }

    /// Like [`write_all`](Self::write_all), but no write waits past `until`, if given
    /// (`--stdin` in echo mode: pipes.rs `deliver` says why).
    pub(crate) fn write_all_until(&self, bytes: &[u8], until: Option<Instant>) -> io::Result<()> {
        let mut out = self.paced();
        out.until = until;
        match &self.tls {
            Some(tls) => tls.write_all(&mut out, bytes),
            None => out.write_all(bytes),
        }
    }

    /// Whether the connection uses TLS.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Before closing a TLS connection: tell the client no data was cut off (RFC 8446
    /// §6.1: close_notify before closing the write side; a strict client reports a
    /// truncation attack otherwise). Sending it twice is harmless (rustls sends it once).
    /// Bounded: a client that stopped reading holds it up at most a second (or the
    /// shorter write timeout). Nothing to do without TLS.
    pub(crate) fn close_notify(&self) {
        if let Some(tls) = &self.tls {
            let cap = Duration::from_secs(1);
            let pace = Pace::default();
            pace.set_timeout(self.pace.timeout().map_or(cap, |t| t.min(cap)));
            tls.close_notify(&mut Paced::new(&self.socket, &pace));
        }
    }
}

// What every socket call here shares: retrying after a signal, and telling a timeout
// from a failure. Then the write floor ([`Pace`]) every write to a client passes.

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

/// Whether a socket call ended because its timeout passed. A timed-out blocking socket
/// reports `WouldBlock` on Unix (EAGAIN) and `TimedOut` on Windows (WSAETIMEDOUT).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Writes waited the whole write timeout for the client and it took less than
/// [`WRITE_CHUNK`] meanwhile: it reads too slowly, or not at all. Carried inside the
/// `io::Error`, so the connection's end is told apart from a vanished peer by type, not
/// by the message text.
#[derive(Debug)]
pub(crate) struct WriteStalled;

impl std::fmt::Display for WriteStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "write timed out: the client took less than 16 KiB within the write timeout (it reads too slowly, or not at all)",
        )
    }
}

impl std::error::Error for WriteStalled {}

/// A failed write as the rest of tinyws sees it: a timeout becomes [`WriteStalled`].
pub(crate) fn write_failure(e: io::Error) -> io::Error {
    if is_timeout(&e) {
        io::Error::new(io::ErrorKind::BrokenPipe, WriteStalled)
    } else {
        e
    }
}

pub(crate) fn is_stalled(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<WriteStalled>())
}

/// The unit of the write floor: a client must take this much per write timeout of
/// waiting. Also the most one waiting write call hands the kernel, so that each call
/// returns, and is counted, as soon as the client took that much.
pub(crate) const WRITE_CHUNK: usize = 16 * 1024;

/// The write floor of one connection: writes may wait for the client at most the write
/// timeout in all per [`WRITE_CHUNK`] it takes. `SO_SNDTIMEO` alone bounds each `write`
/// call, and a client that reads a trickle makes each call return with a few bytes
/// written before its timeout: a reply, a file or (in echo mode) every other client's
/// `--stdin` line could then wait for it without end. So the time writes wait is summed
/// here, every blocking call is given only what is left of it (`SO_SNDTIMEO` set to the
/// rest before the call), and the sum starts again from zero each time the client has
/// taken another 16 KiB, or has taken everything sent to it. (Linux counts
/// `SO_SNDTIMEO` across a whole call; BSD and macOS may start it again inside one call
/// when some room comes free, which this cannot see: there a call of 16 KiB may last
/// longer. Not tested there.)
///
/// What the client took: on Linux, the bytes its TCP acknowledged (tcp.rs), that is what
/// it read plus its small receive window; not what the server's socket buffer accepted,
/// which the kernel keeps enlarging for a slow reader (by tens of KiB a second, up to
/// megabytes) and which would let a trickle pass for a reader. Elsewhere the bytes
/// written, and each new write starts afresh.
///
/// Every write to a client passes here, from one thread at a time (the outbox lock, the
/// writer thread, the TLS session lock), so the counters need no lock; atomics make them
/// shareable. 24 bytes per connection.
#[derive(Debug, Default)]
pub(crate) struct Pace {
    /// The write timeout in milliseconds; 0 until one is set: writes then wait as long
    /// as the socket lets them.
    timeout_ms: AtomicU32,
    /// Microseconds writes waited for the client since the sum started (last) again.
    waited_us: AtomicU64,
    /// When the sum started: the bytes the client had acknowledged then (Linux), or
    /// (elsewhere) the bytes written to it since.
    mark: AtomicU64,
}

/// Waits shorter than this are not worth a system call to ask whether the client caught
/// up (a write that did not block takes microseconds).
const WORTH_ASKING: Duration = Duration::from_millis(1);

impl Pace {
    /// Sets the write timeout (at least a millisecond; `Config::check` keeps it under
    /// 24 h, which fits in 32 bits of milliseconds).
    pub(crate) fn set_timeout(&self, timeout: Duration) {
        let ms = u32::try_from(timeout.as_millis())
            .unwrap_or(u32::MAX)
            .max(1);
        self.timeout_ms.store(ms, Ordering::Relaxed);
    }

    /// The write timeout, if one is set.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        match self.timeout_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(u64::from(ms))),
        }
    }

    fn waited(&self) -> Duration {
        Duration::from_micros(self.waited_us.load(Ordering::Relaxed))
    }

    /// Before a new write (a reply, an answer, a batch of frames): a client that has
    /// taken everything sent to it so far owes nothing from before.
    pub(crate) fn start(&self, socket: &TcpStream) {
        if self.waited() >= WORTH_ASKING
            && crate::client::tcp::progress(socket).is_none_or(|p| !p.waiting)
        {
            self.waited_us.store(0, Ordering::Relaxed);
        }
    }

    /// A write is about to wait: if nothing is summed yet, the sum starts here.
    fn mark(&self, socket: &TcpStream) {
        if self.waited_us.load(Ordering::Relaxed) == 0 {
            let acked = crate::client::tcp::progress(socket).map_or(0, |p| p.acked);
            self.mark.store(acked, Ordering::Relaxed);
        }
    }

    /// A write that waited wrote `n` bytes: once the client has taken 16 KiB since the
    /// mark, the sum starts again. Returns whether it did.
    fn took(&self, socket: &TcpStream, n: usize) -> bool {
        let mark = self.mark.load(Ordering::Relaxed);
        let taken = match crate::client::tcp::progress(socket) {
            Some(p) => p.acked.saturating_sub(mark),
            None => {
                let written = mark + n as u64;
                self.mark.store(written, Ordering::Relaxed);
                written
            }
        };
        let renewed = taken >= WRITE_CHUNK as u64;
        if renewed {
            self.waited_us.store(0, Ordering::Relaxed);
        }
        renewed
    }

    /// How long the next waiting call may wait: what is left of the timeout, and never
    /// past `until`; `None` for as long as the socket lets it.
    fn left(&self, until: Option<Instant>) -> Option<Duration> {
        let floor = self.timeout().map(|t| t.saturating_sub(self.waited()));
        let cap = until.map(|u| u.saturating_duration_since(Instant::now()));
        match (floor, cap) {
            (Some(floor), Some(cap)) => Some(floor.min(cap)),
            (floor, cap) => floor.or(cap),
        }
    }

    /// One `write` of `buf`. What fits in the socket's buffer now goes at once, in one
    /// call, without waiting (on Linux: tune/nowait.rs); otherwise at most
    /// [`WRITE_CHUNK`] bytes, waiting at most what is left of the timeout (and never
    /// past `until`), and `TimedOut` once nothing is left.
    pub(crate) fn write(
        &self,
        socket: &TcpStream,
        buf: &[u8],
        until: Option<Instant>,
    ) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(sent) = at_once(crate::tune::send_now(socket, buf)) {
            return sent;
        }
        let buf = &buf[..buf.len().min(WRITE_CHUNK)];
        self.wait_for(socket, until, || (&*socket).write(buf))
    }

    /// One `writev` of `bufs`, which should hold at most [`WRITE_CHUNK`] bytes: like
    /// [`write`](Self::write).
    pub(crate) fn write_vectored(
        &self,
        socket: &TcpStream,
        bufs: &[IoSlice<'_>],
        until: Option<Instant>,
    ) -> io::Result<usize> {
        if let Some(sent) = at_once(crate::tune::send_now_vectored(socket, bufs)) {
            return sent;
        }
        self.wait_for(socket, until, || (&*socket).write_vectored(bufs))
    }

    /// Runs a blocking write `call` with `SO_SNDTIMEO` set to what is left of the
    /// timeout, counting the time it took and what the client took meanwhile. A signal
    /// ends a call early (see [`retry`]): then it is called again with what is left then.
    /// A call that timed out without writing a byte may still have seen the client take
    /// 16 KiB: Linux wakes a blocked writer only once a third of its send buffer is free,
    /// which the kernel may have grown to hundreds of KiB for this client, so a reader
    /// well above the floor can leave a call without room for a whole timeout. Then it
    /// goes on waiting, from zero. `until` caps the wait whatever the floor leaves.
    fn wait_for(
        &self,
        socket: &TcpStream,
        until: Option<Instant>,
        mut call: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        loop {
            if let Some(left) = self.left(until) {
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                socket.set_write_timeout(Some(left))?;
                self.mark(socket);
            }
            let started = Instant::now();
            let result = call();
            // At least a microsecond: a sum of zero means none started.
            let waited =
                u64::try_from(started.elapsed().as_micros()).map_or(u64::MAX, |us| us.max(1));
            self.waited_us.fetch_add(waited, Ordering::Relaxed);
            match result {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) && self.took(socket, 0) => {}
                Ok(n) => {
                    self.took(socket, n);
                    return Ok(n);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// What a send that never waits means for a write: `None` if it must wait (nothing fit,
/// or a signal came), else what it wrote or how it failed.
fn at_once(sent: io::Result<usize>) -> Option<io::Result<usize>> {
    match sent {
        Ok(0) => None,
        Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => None,
        done => Some(done),
    }
}

/// A client's socket as an `io::Write` whose every call goes through its [`Pace`]: what
/// TLS writes its records to, and what a plain connection's writes use.
pub(crate) struct Paced<'a> {
    socket: &'a TcpStream,
    pace: &'a Pace,
    /// No write waits past this, whatever the floor would allow (what fits in the
    /// socket's buffer still goes after it).
    until: Option<Instant>,
}

impl<'a> Paced<'a> {
    pub(crate) fn new(socket: &'a TcpStream, pace: &'a Pace) -> Paced<'a> {
        Paced {
            socket,
            pace,
            until: None,
        }
    }

    /// One `writev` of `bufs` (at most [`WRITE_CHUNK`] bytes in all): the broadcast
    /// writer's batches of frames.
    pub(crate) fn write_gathered(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.pace.write_vectored(self.socket, bufs, self.until)
    }
}

impl Write for Paced<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pace.write(self.socket, buf, self.until)
    }

    /// rustls hands over all its records at once: they go one (of at most 16 KiB) per
    /// call, each counted as it is taken.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(buf) => self.pace.write(self.socket, buf, self.until),
            None => Ok(0),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// Signals and pthread_kill: Unix only.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    /// A signal (or `strace -p`) interrupting a blocked read must not end the connection.
    /// The socket has a read timeout, so the kernel returns EINTR instead of restarting.
    #[test]
    #[allow(unsafe_code)]
    fn a_signal_during_a_blocked_read_is_not_an_error() {
        use std::os::unix::thread::JoinHandleExt;
        use std::sync::atomic::AtomicUsize;
        use std::time::Duration;

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut peer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (socket, _) = listener.accept().expect("accept");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let transport = Arc::new(Transport::new(socket));
        // A handler that does nothing: the signal only interrupts the read.
        let caught = Arc::new(AtomicBool::new(false));
        let registered = signal_hook::flag::register(signal_hook::consts::SIGUSR2, caught.clone())
            .expect("register SIGUSR2");
        let entered = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (transport, entered) = (transport.clone(), entered.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16];
                entered.store(1, Ordering::SeqCst);
                transport.read(&mut buf).map(|n| buf[..n].to_vec())
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
        assert_eq!(got.expect("read failed").as_slice(), b"still here");
    }
}
