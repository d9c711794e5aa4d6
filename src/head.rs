//! Reading a request head: everything up to the empty line, within a size cap and one
//! deadline for the whole head.
//!
//! tungstenite alone closes the socket silently on a request it cannot upgrade. A person
//! (or `curl`) deserves an answer, so tinyws reads the head itself first, checks it
//! (handshake.rs), and only hands a request it has accepted to tungstenite's handshake
//! (RFC 6455 §4.2.1), which reads the same bytes again (stream.rs replays them).

use std::io;
use std::time::Instant;

use crate::transport::Transport;

/// Why no complete request head could be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The head grew past `max_head_size` without ending.
    TooLarge,
    /// The deadline passed; `partial` says whether any byte had arrived.
    TimedOut {
        partial: bool,
    },
    /// The client closed or reset the connection before the head was complete.
    Closed,
    Io(io::Error),
}

/// A request head read from the socket. `buf[..len]` is the head (through the empty
/// line); anything after it arrived early and belongs to the WebSocket stream.
#[derive(Default)]
pub(crate) struct Head {
    pub buf: Vec<u8>,
    pub len: usize,
}

/// Reads until the empty line that ends the head, with a total deadline (not per read):
/// a client sending one byte per write still succeeds if it finishes in time, and one
/// trickling forever is cut off when the deadline passes.
pub(crate) fn read_head(
    transport: &Transport,
    max: usize,
    deadline: Instant,
) -> Result<Head, HeadError> {
    let mut buf = Vec::with_capacity(1024.min(max + 1));
    let mut scanned = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::TimedOut {
                partial: !buf.is_empty(),
            });
        }
        transport
            .socket()
            .set_read_timeout(Some(left))
            .map_err(HeadError::Io)?;
        if buf.len() == buf.capacity() {
            buf.reserve((max + 1 - buf.len()).min(buf.len().max(1024)));
        }
        let start = buf.len();
        let room = (max + 1).saturating_sub(start).min(buf.capacity() - start);
        buf.resize(start + room, 0);
        match transport.read_head(&mut buf[start..], deadline) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => buf.truncate(start + n),
            Err(e) => {
                buf.truncate(start);
                match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => continue,
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                        return Err(HeadError::Closed);
                    }
                    _ => return Err(HeadError::Io(e)),
                }
            }
        }
        if let Some(len) = find_head_end(&buf, scanned) {
            if len > max {
                return Err(HeadError::TooLarge);
            }
            return Ok(Head { buf, len });
        }
        if buf.len() > max {
            return Err(HeadError::TooLarge);
        }
        scanned = buf.len();
    }
}

/// Length of the head (through the blank line) if `buf` holds a complete one. Accepts
/// bare LF line ends as well as CRLF, as httparse does, so a request typed by hand into
/// `nc` works. Only bytes from `from - 3` on are examined again.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3).max(1);
    (start..buf.len()).find_map(|i| {
        let blank = buf[i] == b'\n'
            && (buf[i - 1] == b'\n' || (i >= 2 && buf[i - 1] == b'\r' && buf[i - 2] == b'\n'));
        blank.then_some(i + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_accepts_crlf_and_lf() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nxyz", 0), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        // the blank line straddles two reads
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n", 17), Some(18));
        assert_eq!(find_head_end(b"\n", 0), None);
    }
}
