//! `--stdin` and `--stdout` ([`Config::stdin`](crate::Config#structfield.stdin),
//! [`Config::stdout`](crate::Config#structfield.stdout)): the process's standard streams
//! as a feed in and a log out, so a shell script can be a device (`sensor-script |
//! tinyws --broadcast --stdin`) and `tinyws --stdout > messages.log` collects what
//! clients say.
//!
//! Both streams are the process's, so the counters here are too (statics). Log lines
//! name the `Config` field ("`stdin`: …"); the binary's log adds the flag, as for every
//! library line (main.rs `WithFlags`).
//!
//! In: one thread reads lines and sends each as a text message. In broadcast mode
//! through the room (like `ServerHandle::broadcast`, so with `rooms` to every room): when a member's
//! backlog is full the thread waits, and so does the writer of the pipe, which is the
//! pacing a live feed wants. Echo mode has no room: each connection past its handshake
//! gets the frame through its own outbox, written inline; the clients of one line share
//! one deadline, the write timeout (see [`deliver`]), and one that cannot take the line
//! by then is disconnected.
//!
//! Out: each text message becomes one line in a bounded queue (`spool.rs`) that one
//! thread writes to stdout, so a stdout nobody reads never stalls a connection.

use std::io::{self, BufRead, Write as _};
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use log::{info, warn};
use tungstenite::Message;

use crate::client::handle::{Control, ServerHandle};
use crate::client::outbox::Client;
use crate::client::registry::Registry;
use crate::config::Config;
use crate::config::format_size;
use crate::guard::escape;
use crate::util::lock::lock;
use crate::util::spool::LINES;
use crate::util::tag::Tag;

/// The stdin reader holds one line (at most `max_message_size`) and the stdin buffer.
pub(crate) const READER_STACK: usize = crate::config::HELPER_STACK;

/// `--stdout`: lines queued, binary messages skipped.
static QUEUED: AtomicU64 = AtomicU64::new(0);
static BINARY: AtomicU64 = AtomicU64::new(0);

/// Whether the `n`th occurrence of something is logged: the 1st, 10th, 100th, … A
/// script that sends only bad lines gets a handful of log lines, each with the count.
fn worth_logging(n: u64) -> bool {
    let mut p = 1;
    while p < n {
        p = p.saturating_mul(10);
    }
    p == n
}

/// `--stdout`: a message a client sent, before the handler sees it. Text becomes one
/// line; binary is skipped and counted (bytes would break the lines, and base64 would
/// make a log nobody can grep).
pub(crate) fn record(client: &Client, message: &Message) {
    match message {
        Message::Text(text) => {
            QUEUED.fetch_add(1, Ordering::Relaxed);
            if LINES.push(line_of(text.as_str())) {
                warn!(
                    "`stdout`: standard output is not being read; message lines are left out (up to {} wait), counted in the log and at shutdown",
                    format_size(crate::util::spool::QUEUE_BYTES)
                );
            }
        }
        Message::Binary(_) => {
            let n = BINARY.fetch_add(1, Ordering::Relaxed) + 1;
            if worth_logging(n) {
                info!(
                    "{} {}: a binary message is not written to stdout (`stdout` takes text messages only); skipped ({n} so far)",
                    tag(client),
                    client.peer_addr()
                );
            }
        }
        _ => {}
    }
}

/// A text message as one line, escaped by escape.rs: printable text as sent (the usual
/// JSON or chat line comes out exactly as sent); a backslash as `\\`, CR, LF, tab and
/// NUL as `\r`, `\n`, `\t`, `\0`, and other control, bidirectional-text and line
/// separator characters as `\u{1b}`. So one message is always one line, nothing in it
/// acts on a terminal, and a script gets the exact text back (docs/reference.md, "Static
/// files and pipes").
fn line_of(text: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(text.len() + 1);
    let _ = write!(line, "{}", escape::line(text));
    line.push(b'\n');
    line
}

/// At shutdown: the last lines out (at most `limit`), and what became of them.
pub(crate) fn finish_stdout(limit: Duration) {
    let written = LINES.drain(limit);
    let dropped = LINES.dropped();
    let queued = QUEUED.load(Ordering::Relaxed);
    info!(
        "`stdout`: {} message line(s) written, {dropped} left out (standard output not read), {} binary message(s) skipped{}",
        queued.saturating_sub(dropped),
        BINARY.load(Ordering::Relaxed),
        if written {
            ""
        } else {
            "; the last lines are lost: standard output is not being read"
        }
    );
}

/// `--stdin`: starts the thread that sends each line of standard input. It holds the
/// server weakly: once the server is gone it ends at its next line (a thread blocked on
/// stdin cannot be woken; the process's exit ends it).
pub(crate) fn read_stdin(server: &ServerHandle, registry: &Arc<Mutex<Registry>>, config: &Config) {
    let to = Feed {
        server: Arc::downgrade(&server.control),
        registry: Arc::downgrade(registry),
        broadcast: config.broadcast,
        write_timeout: config.write_timeout,
    };
    let max = config.max_message_size;
    let spawned = std::thread::Builder::new()
        .name("tinyws-stdin".into())
        .stack_size(READER_STACK)
        .spawn(move || feed(io::stdin().lock(), max, &to));
    if let Err(e) = spawned {
        warn!(
            "`stdin`: cannot start the thread that reads standard input ({e}); no lines will be sent"
        );
    }
}

/// Where the lines go: held weakly, so a server that is gone ends the thread.
struct Feed {
    server: Weak<dyn Control>,
    /// Echo mode: the connections, each sent every line.
    registry: Weak<Mutex<Registry>>,
    broadcast: bool,
    write_timeout: Duration,
}

/// Reads lines until the end of `input` and sends each one.
fn feed(mut input: impl BufRead, max: usize, to: &Feed) {
    let (mut lines, mut too_long, mut not_utf8) = (0u64, 0u64, 0u64);
    let mut line = Vec::new();
    loop {
        let read = next_line(&mut input, max, &mut line);
        let Some(server) = to.server.upgrade().filter(|s| !s.is_stopping()) else {
            return;
        };
        match read {
            Ok(Line::End) => {
                info!(
                    "`stdin`: end of standard input after {lines} line(s) ({too_long} too long, dropped; {not_utf8} not UTF-8); the server keeps running"
                );
                return;
            }
            Ok(Line::TooLong) => {
                lines += 1;
                too_long += 1;
                // Dropped whole: a reading cut in the middle is worse than none.
                if worth_logging(too_long) {
                    warn!(
                        "`stdin`: line {lines} is longer than `max_message_size` ({}); dropped ({too_long} so far)",
                        format_size(max)
                    );
                }
            }
            Ok(Line::Full) => {
                lines += 1;
                let text = match std::str::from_utf8(&line) {
                    Ok(text) => text.to_string(),
                    Err(_) => {
                        // A text message must be UTF-8 (RFC 6455 §5.6); a Latin-1 degree
                        // sign should not cost the whole reading.
                        not_utf8 += 1;
                        if worth_logging(not_utf8) {
                            warn!(
                                "`stdin`: line {lines} is not UTF-8; sent with U+FFFD for the invalid bytes ({not_utf8} so far)"
                            );
                        }
                        String::from_utf8_lossy(&line).into_owned()
                    }
                };
                send(to, &*server, text);
            }
            Err(e) => {
                warn!(
                    "`stdin`: reading standard input failed ({e}) after {lines} line(s); no more lines will be sent, the server keeps running"
                );
                return;
            }
        }
    }
}

/// Sends one line to the room, or in echo mode to every connection past its handshake.
fn send(to: &Feed, server: &dyn Control, text: String) {
    if to.broadcast {
        // The way `ServerHandle::broadcast` goes: the room, or with `rooms` every room.
        server.broadcast(&Message::text(text));
        return;
    }
    let Some(registry) = to.registry.upgrade() else {
        return;
    };
    // In id order, the order they connected in: the registry keeps them so.
    let clients: Vec<Arc<Client>> = lock(&registry)
        .clients
        .iter()
        .filter(|c| c.is_upgraded())
        .cloned()
        .collect();
    let frame = crate::frame::encode(crate::frame::TEXT, text.as_bytes());
    let deadline = Instant::now() + to.write_timeout;
    for client in clients {
        deliver(&client, &frame, deadline);
    }
}

/// Echo mode: writes one line's frame to `client`, inline (its thread waits in `read`),
/// after what its thread queued and never after a close frame (outbox.rs). The clients
/// of a line share one `deadline`: written one after another, each waiting its own
/// write timeout, N clients that read nothing would hold every line up N times that
/// for everyone else. So each write waits only until the deadline (and within the
/// client's write floor, which sums its waits across lines); once it has passed, each
/// remaining client still gets what fits in its socket buffer now (one that reads has
/// emptied it meanwhile), and one that cannot take the whole line is disconnected: its
/// frame may be cut, so it cannot be skipped.
fn deliver(client: &Client, frame: &[u8], deadline: Instant) {
    let Err(e) = queue_until(client, frame, deadline) else {
        return;
    };
    let why = if crate::guard::floor::is_stalled(&e) {
        " within `write_timeout` of the line"
    } else {
        ""
    };
    info!(
        "{} {}: a line from `stdin` could not be written{why} ({e}); disconnected",
        tag(client),
        client.peer_addr()
    );
    // Its thread, blocked in `read`, ends at once instead of at its next ping.
    let _ = client.socket().shutdown(Shutdown::Both);
}

/// Appends `frame` to `client`'s outbox and writes out everything queued, under the
/// client's write floor and never waiting past `deadline`.
fn queue_until(client: &Client, frame: &[u8], deadline: Instant) -> io::Result<()> {
    let mut out = client.outbox();
    if out.broken || out.closed {
        // Already ending (and said so, once): the line is not for it. Failing here
        // would log every line until its thread has left the registry.
        return Ok(());
    }
    out.pending.extend_from_slice(frame);
    client.write_out_until(&mut out, Some(deadline))
}

/// How the log names `client`, as the core does (`#7`, or `sensors #7`).
fn tag(client: &Client) -> Tag<'_> {
    Tag {
        name: client.server().control.name(),
        id: client.id(),
    }
}

/// What [`next_line`] read.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A line, in the buffer, without its `\n` or `\r\n`.
    Full,
    /// A line over the limit: skipped to its end, the buffer empty.
    TooLong,
    /// The end of the input.
    End,
}

/// Reads one line of at most `max` bytes (not counting `\n` or `\r\n`) into `line`. A
/// longer line is read to its end and dropped, holding no more than `max + 1` bytes. A
/// last line without `\n` still counts.
fn next_line(input: &mut impl BufRead, max: usize, line: &mut Vec<u8>) -> io::Result<Line> {
    line.clear();
    let (mut any, mut too_long) = (false, false);
    loop {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            if !any {
                return Ok(Line::End);
            }
            break;
        }
        any = true;
        let newline = buf.iter().position(|&b| b == b'\n');
        let chunk = &buf[..newline.unwrap_or(buf.len())];
        // One byte more than the limit may be the `\r` of a `\r\n`.
        if !too_long && line.len() + chunk.len() <= max.saturating_add(1) {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line.clear();
        }
        let used = newline.map_or(buf.len(), |i| i + 1);
        input.consume(used);
        if newline.is_some() {
            break;
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if too_long || line.len() > max {
        line.clear();
        return Ok(Line::TooLong);
    }
    Ok(Line::Full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(Line, Vec<u8>)> {
        // A tiny buffer, so lines arrive in pieces.
        let mut r = io::BufReader::with_capacity(3, input);
        let mut out = Vec::new();
        let mut line = Vec::new();
        loop {
            let l = next_line(&mut r, max, &mut line).unwrap();
            if l == Line::End {
                return out;
            }
            out.push((l, line.clone()));
        }
    }

    #[test]
    fn lines_are_cut_at_newlines_and_long_ones_dropped_whole() {
        let got = lines(b"one\r\ntwo\n\nabcdef\nfive5\r\nlast", 5);
        let want: Vec<(Line, Vec<u8>)> = vec![
            (Line::Full, b"one".to_vec()),
            (Line::Full, b"two".to_vec()),
            (Line::Full, b"".to_vec()),
            (Line::TooLong, b"".to_vec()),
            (Line::Full, b"five5".to_vec()),
            (Line::Full, b"last".to_vec()),
        ];
        assert_eq!(got, want);
        assert_eq!(lines(b"", 5), vec![]);
        assert_eq!(lines(b"123456", 5), vec![(Line::TooLong, vec![])]);
        assert_eq!(lines(b"12345\r", 5), vec![(Line::Full, b"12345".to_vec())]);
    }

    #[test]
    fn a_long_line_holds_at_most_the_limit() {
        let mut input = vec![b'x'; 1 << 20];
        input.extend_from_slice(b"\nok\n");
        let mut r = io::BufReader::new(&input[..]);
        let mut line = Vec::new();
        assert_eq!(next_line(&mut r, 1000, &mut line).unwrap(), Line::TooLong);
        assert!(line.capacity() <= 64 * 1024, "{}", line.capacity());
        assert_eq!(next_line(&mut r, 1000, &mut line).unwrap(), Line::Full);
        assert_eq!(line, b"ok");
    }

    #[test]
    fn a_message_is_one_line() {
        assert_eq!(line_of("{\"t\": 21.5}"), b"{\"t\": 21.5}\n");
        // A typed `\n` and a line break come out differently.
        assert_eq!(line_of("a\nb\r\nc\\n"), b"a\\nb\\r\\nc\\\\n\n");
        assert_eq!(
            line_of("`x` \u{1b}[2J \u{2028}"),
            b"`x` \\u{1b}[2J \\u{2028}\n"
        );
        assert_eq!(line_of(""), b"\n");
    }

    #[test]
    fn logged_at_powers_of_ten() {
        let logged: Vec<u64> = (1..=1000).filter(|&n| worth_logging(n)).collect();
        assert_eq!(logged, [1, 10, 100, 1000]);
    }
}
