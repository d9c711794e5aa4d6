//! What every socket call shares: telling a timeout from a failure.

use std::io;

/// Whether a socket call ended because its timeout passed. A timed-out blocking socket
/// reports `WouldBlock` on Unix (EAGAIN) and `TimedOut` on Windows (WSAETIMEDOUT).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
