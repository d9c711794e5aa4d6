//! Reading a request head: everything up to the empty line, within a size cap and one
//! deadline for the whole head.
//!
//! tungstenite alone closes the socket silently on a request it cannot upgrade. A person
//! (or `curl`) deserves an answer, so tinyws reads the head itself first, checks it
//! (handshake.rs), and only hands a request it has accepted to tungstenite's handshake
//! (RFC 6455 §4.2.1), which reads the same bytes again (stream.rs replays them). The
//! checks, and the trace that narrates them, read a header's values with [`values`] and
//! [`list`].

use std::io;
use std::time::Instant;

use crate::client::transport::Transport;
use crate::util::io::is_timeout;

/// At most this many header lines; more get `431` (http/route.rs), like a head over the
/// size cap.
pub(crate) const MAX_HEADERS: usize = 64;

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
                // A timeout or a signal: look at the deadline again and read for what is
                // left of it (`transport::retry` would wait the whole old timeout again).
                if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(match e.kind() {
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                        HeadError::Closed
                    }
                    _ => HeadError::Io(e),
                });
            }
        }
        // A head that ended past `max` is also more than `max` bytes read.
        match find_head_end(&buf, scanned) {
            Some(len) if len <= max => return Ok(Head { buf, len }),
            _ if buf.len() > max => return Err(HeadError::TooLarge),
            _ => {}
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

/// The values of every header called `name`, trimmed; non-UTF-8 values read as U+FFFD.
pub(crate) fn values<'h>(
    headers: &'h [httparse::Header<'h>],
    name: &'static str,
) -> impl Iterator<Item = &'h str> {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| trim(std::str::from_utf8(h.value).unwrap_or("\u{fffd}")))
}

/// The elements of the comma list in every header called `name` (a list may come on
/// several lines, RFC 9110 §5.3), trimmed; empty ones are skipped (§5.6.1).
pub(crate) fn list<'h>(
    headers: &'h [httparse::Header<'h>],
    name: &'static str,
) -> impl Iterator<Item = &'h str> {
    values(headers, name)
        .flat_map(|v| v.split(','))
        .map(trim)
        .filter(|t| !t.is_empty())
}

/// Strips the whitespace HTTP allows around a value: spaces and tabs only (RFC 9110
/// §5.6.3), not all of Unicode's, so `a` followed by U+00A0 is not read as `a`.
fn trim(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::route::tests::heady_bytes;
    use proptest::prelude::*;
    use std::io::Write;
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::time::Duration;

    /// Optional whitespace is spaces and tabs (RFC 9110 §5.6.3): other Unicode spaces
    /// stay part of the value, where the checks refuse them.
    #[test]
    fn values_and_lists_trim_spaces_and_tabs_only() {
        let table: [(&[u8], &[&str], &[&str]); 6] = [
            (b" a \t", &["a"], &["a"]),
            (b"\ta, b ,,c", &["a, b ,,c"], &["a", "b", "c"]),
            ("a\u{a0}".as_bytes(), &["a\u{a0}"], &["a\u{a0}"]),
            ("\u{3000}a".as_bytes(), &["\u{3000}a"], &["\u{3000}a"]),
            ("a,\u{2003}".as_bytes(), &["a,\u{2003}"], &["a", "\u{2003}"]),
            (b"\xff", &["\u{fffd}"], &["\u{fffd}"]),
        ];
        for (value, want_values, want_list) in table {
            let headers = [httparse::Header { name: "X", value }];
            let got: Vec<_> = values(&headers, "x").collect();
            assert_eq!(got, want_values, "values of {value:?}");
            let got: Vec<_> = list(&headers, "x").collect();
            assert_eq!(got, want_list, "list of {value:?}");
        }
    }

    #[test]
    fn head_end_accepts_crlf_and_lf() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nxyz", 0), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        // the blank line straddles two reads
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n", 17), Some(18));
        assert_eq!(find_head_end(b"\n", 0), None);
    }

    /// A naive reference for the end of the head: the first LF followed by LF or CRLF.
    fn naive_head_end(buf: &[u8]) -> Option<usize> {
        (1..buf.len()).find_map(|i| {
            let blank =
                buf[i] == b'\n' && (buf[i - 1] == b'\n' || (i >= 2 && buf[i - 2..i] == *b"\n\r"));
            blank.then_some(i + 1)
        })
    }

    proptest! {
        #[test]
        fn head_end_matches_the_naive_scan_wherever_reads_split(
            buf in heady_bytes(),
            split in any::<prop::sample::Index>(),
        ) {
            let want = naive_head_end(&buf);
            // read_head scans from where the previous read ended, only if no end was found.
            let from = split.index(buf.len() + 1);
            if naive_head_end(&buf[..from]).is_none() {
                prop_assert_eq!(find_head_end(&buf, from), want);
            }
            prop_assert_eq!(find_head_end(&buf, 0), want);
        }
    }

    /// A connected pair on loopback: (client side, server side).
    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// read_head over a real socket, with the input cut into arbitrary writes: it never
        /// keeps more than `max + 1` bytes, returns exactly the head when one ends within
        /// `max`, and otherwise `TooLarge` or `Closed` (the writer closes, so no timeout).
        #[test]
        fn read_head_stays_within_its_limit(
            data in heady_bytes(),
            cuts in proptest::collection::vec(1usize..64, 0..12),
            max in 8usize..256,
        ) {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let (mut client, server) = pair(&listener);
            let sent = data.clone();
            let writer = std::thread::spawn(move || {
                let mut rest = &sent[..];
                for cut in cuts {
                    let n = cut.min(rest.len());
                    if client.write_all(&rest[..n]).is_err() { return; }
                    rest = &rest[n..];
                    let _ = client.flush();
                }
                let _ = client.write_all(rest);
                let _ = client.shutdown(Shutdown::Write);
                // keep the socket open until the reader is done, so it sees FIN, not RST
                let _ = std::io::Read::read(&mut client, &mut [0u8; 1]);
            });
            let server = crate::client::transport::Transport::new(server);
            let result = read_head(&server, max, Instant::now() + Duration::from_secs(5));
            let _ = server.socket().shutdown(Shutdown::Both);
            writer.join().unwrap();
            let want = naive_head_end(&data).filter(|&end| end <= max);
            match result {
                Ok(head) => {
                    prop_assert!(head.buf.len() <= max + 1);
                    prop_assert_eq!(Some(head.len), want);
                    prop_assert_eq!(&head.buf[..], &data[..head.buf.len()]);
                }
                Err(HeadError::TooLarge) => {
                    prop_assert_eq!(want, None);
                    prop_assert!(data.len() > max);
                }
                Err(HeadError::Closed) => {
                    prop_assert_eq!(want, None);
                    prop_assert!(data.len() <= max);
                }
                Err(e) => prop_assert!(false, "{:?}", e),
            }
        }
    }
}
