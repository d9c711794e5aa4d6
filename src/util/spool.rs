//! Output that must never stall the server: a bounded queue per stream, drained by one
//! thread of its own, so a terminal that stops reading (Ctrl-S, a click that starts a
//! Windows console selection, a paused pager) blocks only that thread. `--trace` goes to
//! stdout through [`STDOUT`], `--stdout` through [`LINES`]; the `tinyws` binary's log, when stderr is a terminal,
//! goes to stderr through [`STDERR`] ([`Stderr`], an `io::Write` for `env_logger`). When a queue is full, what
//! does not fit is left out and counted, and the stream says where and how many (for
//! `--stdout`, the log does: its stream is the clients' text alone).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Bytes that may wait for one stream. A handshake's trace is about 3 KiB, a log line
/// about 150 bytes: minutes of a class's traffic while a terminal is paused, and a bound
/// on the memory a stopped terminal can cost.
pub(crate) const QUEUE_BYTES: usize = 1 << 20;

/// The writer thread only holds what it writes: a small stack is plenty.
pub(crate) const WRITER_STACK: usize = crate::config::HELPER_STACK;

/// Where a spool writes.
#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Where a spool says that blocks were left out.
#[derive(Clone, Copy)]
enum Marker {
    /// On the stream, where they are missing: the trace and the log are tinyws's own
    /// lines, with client text escaped.
    Inline,
    /// In the log, with the number of the line they follow, naming this `Config` field:
    /// `--stdout`'s lines are clients' messages, and a client can send any text, a
    /// marker's exact words included.
    // Only the `pipes` layer uses it: a build without that layer leaves it unused.
    #[allow(dead_code)]
    Log(&'static str),
}

/// One stream's queue and the thread that drains it.
pub(crate) struct Spool {
    stream: Stream,
    marker: Marker,
    /// The thread's name, and what the "left out" line calls a block.
    name: &'static str,
    what: &'static str,
    queue: Mutex<Queue>,
    /// Wakes the writer (something was queued) and [`Spool::drain`] (the queue emptied).
    changed: Condvar,
}

enum Entry {
    Block(Vec<u8>),
    /// This many blocks were left out here: the queue was full.
    Dropped(u64),
}

struct Queue {
    entries: VecDeque<Entry>,
    /// Bytes queued or being written: what [`QUEUE_BYTES`] bounds.
    bytes: usize,
    /// The writer thread runs (or could not be started: then everything is dropped).
    started: bool,
    /// The writer thread took entries and has not finished writing them.
    writing: bool,
    /// Blocks left out over the whole run.
    dropped_total: u64,
}

impl Spool {
    const fn new(stream: Stream, marker: Marker, name: &'static str, what: &'static str) -> Spool {
        Spool {
            stream,
            marker,
            name,
            what,
            queue: Mutex::new(Queue {
                entries: VecDeque::new(),
                bytes: 0,
                started: false,
                writing: false,
                dropped_total: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding it; if it did, the queue is still consistent.
        crate::util::lock::lock(&self.queue)
    }

    /// Queues `block` for the stream, or counts it as left out if the queue is full.
    /// Never blocks on the stream. Returns whether this was the first block left out (the
    /// caller may say so once, on another stream).
    pub(crate) fn push(&'static self, block: Vec<u8>) -> bool {
        let mut q = self.queue();
        self.start(&mut q);
        let mut first_drop = false;
        if q.bytes + block.len() > QUEUE_BYTES || !q.started {
            q.dropped_total += 1;
            first_drop = q.dropped_total == 1;
            if let Some(Entry::Dropped(n)) = q.entries.back_mut() {
                *n += 1;
            } else if q.started {
                q.entries.push_back(Entry::Dropped(1));
            }
        } else {
            q.bytes += block.len();
            q.entries.push_back(Entry::Block(block));
        }
        self.changed.notify_all();
        first_drop
    }

    /// Starts the writer thread, if it is not running.
    fn start(&'static self, q: &mut Queue) {
        if !q.started {
            // If it cannot start, there is nothing to tell it with: the blocks are left
            // out, counted. (The thread waits for the lock held here.)
            q.started = std::thread::Builder::new()
                .name(self.name.into())
                .stack_size(WRITER_STACK)
                .spawn(move || self.write_forever())
                .is_ok();
        }
    }

    /// The writer thread: waits for blocks and writes them, in order. Only this thread
    /// ever blocks on the stream.
    fn write_forever(&'static self) {
        let mut q = self.queue();
        // Blocks written so far: lines, for `--stdout`.
        let mut blocks = 0u64;
        loop {
            while q.entries.is_empty() {
                q.writing = false;
                self.changed.notify_all();
                q = crate::util::lock::wait(&self.changed, q);
            }
            q.writing = true;
            let entries = std::mem::take(&mut q.entries);
            drop(q);
            let mut out: Box<dyn Write> = match self.stream {
                Stream::Stdout => Box::new(io::stdout().lock()),
                Stream::Stderr => Box::new(io::stderr().lock()),
            };
            let mut written = 0;
            for entry in entries {
                // Errors (a closed pipe) are ignored: output must never take anything down.
                match entry {
                    Entry::Block(block) => {
                        let _ = out.write_all(&block);
                        written += block.len();
                        blocks += 1;
                    }
                    Entry::Dropped(n) => self.mark(&mut out, n, blocks),
                }
            }
            let _ = out.flush();
            drop(out);
            q = self.queue();
            q.bytes -= written;
        }
    }

    /// Says that `n` blocks were left out after the first `blocks`.
    fn mark(&self, out: &mut impl Write, n: u64, blocks: u64) {
        let waited = crate::config::format_size(QUEUE_BYTES);
        match self.marker {
            Marker::Inline => {
                let _ = writeln!(
                    out,
                    "-- {n} {} left out here: this stream was not read while {waited} waited",
                    self.what
                );
            }
            Marker::Log(field) => log::warn!(
                "`{field}`: {n} {} left out after line {blocks} of standard output: it was not read while {waited} waited",
                self.what
            ),
        }
    }

    /// Blocks left out over the whole run.
    // Only the `pipes` layer uses it: a build without that layer leaves it unused.
    #[allow(dead_code)]
    pub(crate) fn dropped(&self) -> u64 {
        self.queue().dropped_total
    }

    /// Waits, at most `limit`, until everything queued so far is written. Returns
    /// whether it is.
    pub(crate) fn drain(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (_queue, drained) =
            crate::util::lock::wait_until(&self.changed, self.queue(), deadline, |q| {
                !(q.started && (q.writing || !q.entries.is_empty()))
            });
        drained
    }
}

/// `--trace`.
// Only the `teach` layer uses it: a build without that layer leaves it unused.
#[allow(dead_code)]
pub(crate) static STDOUT: Spool = Spool::new(
    Stream::Stdout,
    Marker::Inline,
    "tinyws-trace",
    "trace block(s)",
);
/// `--stdout`: the messages clients send, one line each (pipes.rs); nothing else, so a
/// script reads only messages. Never together with [`STDOUT`]: `Config::validate`
/// refuses `trace` with `stdout`.
// Only the `pipes` layer uses it: a build without that layer leaves it unused.
#[allow(dead_code)]
pub(crate) static LINES: Spool = Spool::new(
    Stream::Stdout,
    Marker::Log("stdout"),
    "tinyws-stdout",
    "message line(s)",
);
/// The log of the `tinyws` binary ([`Stderr`]).
pub(crate) static STDERR: Spool =
    Spool::new(Stream::Stderr, Marker::Inline, "tinyws-log", "log line(s)");

/// Writes to stderr without ever blocking the caller: through a bounded queue that one
/// thread drains (see the module documentation). For a logger, e.g.
/// `env_logger::Builder::target(env_logger::Target::Pipe(Box::new(tinyws::Stderr)))`,
/// which is how the `tinyws` binary logs: a paused terminal must not stall the server.
/// Call [`Stderr::drain`] before the process exits, so the last lines are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

impl Stderr {
    /// Starts the thread that writes to stderr now, instead of at the first line: for a
    /// program that wants its threads started in a known order (after
    /// [`Server::bind`](crate::Server::bind), which limits malloc's arenas only while it
    /// is the process's one thread), or counts them.
    pub fn start() {
        STDERR.start(&mut STDERR.queue());
    }

    /// Waits, at most `limit`, until every line written so far is on stderr. Returns
    /// whether it is.
    pub fn drain(limit: Duration) -> bool {
        STDERR.drain(limit)
    }
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        STDERR.push(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
