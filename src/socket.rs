//! What every blocking socket call in tinyws shares: retrying after a signal, telling a
//! timeout from a failure, and closing without losing the last answer.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

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

/// How long to keep reading after a final answer (an HTTP error, a failing close), so
/// that closing does not reset it.
pub(crate) const DRAIN_FOR: Duration = Duration::from_secs(1);

/// At most this much is read and dropped after an HTTP answer.
pub(crate) const DRAIN_MAX: usize = 64 * 1024;

/// Shuts the write side (the peer sees FIN after what was sent), then reads and drops
/// input until the peer closes, `linger` passes or `max` bytes were read. Closing a
/// socket with unread input makes the kernel send RST instead of FIN, and the peer may
/// then lose what was sent last before it reads it.
pub(crate) fn shut_and_drain(mut stream: &TcpStream, linger: Duration, max: usize) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + linger;
    let mut sink = [0u8; 1024];
    let mut drained = 0usize;
    while drained < max {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match retry(|| stream.read(&mut sink)) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}
