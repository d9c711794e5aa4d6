//! The write floor: writes to a client may wait for it at most the write timeout per
//! [`WRITE_CHUNK`] (16 KiB) it takes, and then fail ([`WriteStalled`]), so that a client
//! that reads a trickle, or nothing, cannot hold a reply, a file, its room's writer or
//! another client's `--stdin` line without end. [`Pace`] says how, and why `SO_SNDTIMEO`
//! alone is not enough; [`Paced`] is the socket under it, which every write to a client
//! goes through (client/transport.rs, and TLS's records).

use std::io::{self, IoSlice, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::util::io::is_timeout;

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
            && crate::guard::tcp::progress(socket).is_none_or(|p| !p.waiting)
        {
            self.waited_us.store(0, Ordering::Relaxed);
        }
    }

    /// A write is about to wait: if nothing is summed yet, the sum starts here.
    fn mark(&self, socket: &TcpStream) {
        if self.waited_us.load(Ordering::Relaxed) == 0 {
            let acked = crate::guard::tcp::progress(socket).map_or(0, |p| p.acked);
            self.mark.store(acked, Ordering::Relaxed);
        }
    }

    /// A write that waited wrote `n` bytes: once the client has taken 16 KiB since the
    /// mark, the sum starts again. Returns whether it did.
    fn took(&self, socket: &TcpStream, n: usize) -> bool {
        let mark = self.mark.load(Ordering::Relaxed);
        let taken = match crate::guard::tcp::progress(socket) {
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

    /// Runs a blocking write `call` with `SO_SNDTIMEO` set to what is left of the
    /// timeout, counting the time it took and what the client took meanwhile. A signal
    /// ends a call early (see transport.rs `retry`): then it is called again with what is
    /// left then. A call that timed out without writing a byte may still have seen the
    /// client take 16 KiB: Linux wakes a blocked writer only once a third of its send buffer is free,
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
    pub(crate) until: Option<Instant>,
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
    /// writer's batches of frames. Like [`write`](Self::write).
    pub(crate) fn write_gathered(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if let Some(sent) = at_once(crate::tune::send_now_vectored(self.socket, bufs)) {
            return sent;
        }
        let socket = self.socket;
        self.pace
            .wait_for(socket, self.until, || (&*socket).write_vectored(bufs))
    }
}

impl Write for Paced<'_> {
    /// One `write` of `buf`. What fits in the socket's buffer now goes at once, in one
    /// call, without waiting (on Linux: tune/nowait.rs); otherwise at most
    /// [`WRITE_CHUNK`] bytes, waiting at most what is left of the timeout (and never
    /// past `until`), and `TimedOut` once nothing is left.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(sent) = at_once(crate::tune::send_now(self.socket, buf)) {
            return sent;
        }
        let buf = &buf[..buf.len().min(WRITE_CHUNK)];
        let socket = self.socket;
        self.pace
            .wait_for(socket, self.until, || (&*socket).write(buf))
    }

    /// rustls hands over all its records at once: they go one (of at most 16 KiB) per
    /// call, each counted as it is taken.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(buf) => self.write(buf),
            None => Ok(0),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
