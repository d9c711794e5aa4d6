//! Broadcast mode: the thread that writes one member's backlog to its socket.
//!
//! Why a second thread per client: the connection thread spends its life blocked in
//! `read()`, which another thread cannot interrupt, and tungstenite has no read/write
//! split. A broadcast must reach an idle client at once, without waiting for its reader
//! to time out (that would be polling) and without the sender writing to the socket
//! itself with a blocking write (a client that stops reading would then block the
//! sender, and the whole room behind it). So in broadcast mode a small writer thread,
//! asleep on a condition variable until there is something to send, writes the frames
//! queued in the client's backlog (backlog.rs), in order. The one exception, a small
//! frame sent straight from the broadcasting thread (`tune/nowait.rs`), happens under the
//! same lock, only while nothing is queued: frames never interleave on the wire, and
//! nothing overtakes what was queued before it.

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::debug;

use crate::client::backlog::{BATCH, Backlog, Bell, CHUNK};
use crate::client::outbox::{Client, Outbox};
use crate::config::format_duration;
use crate::util::io::is_timeout;
use crate::util::lock::{wait, wait_until};

/// The writer only holds a few frame pointers: a small stack is plenty.
pub(crate) const WRITER_STACK: usize = crate::config::HELPER_STACK;

/// After the close 1008 of an eviction, how long the client has to answer before the
/// connection is cut (RFC 6455 §7.1.1: the server closes TCP; it should not wait long).
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A client's writer thread. Dropping it ends the connection's writing side: a queued
/// close frame is still sent (bounded by the write timeout), anything else is dropped,
/// and the thread is joined, so thread counts are exact when the connection is gone.
pub(crate) struct Writer {
    client: Arc<Client>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Puts the client's outbox in backlog mode and starts its writer thread.
    pub(crate) fn start(
        client: &Arc<Client>,
        limit: usize,
        write_timeout: Duration,
        bell: &Arc<Bell>,
    ) -> io::Result<Writer> {
        {
            let mut out = client.outbox();
            let mut backlog = Backlog::new(limit, bell.clone());
            if !out.pending.is_empty() {
                // Bytes queued before the switch (the end of the handshake) go first.
                backlog.push(Arc::from(&out.pending[..]), true);
                out.pending.clear();
            }
            out.backlog = Some(backlog);
        }
        let c = client.clone();
        let spawned = thread::Builder::new()
            .stack_size(WRITER_STACK)
            .spawn(move || run(&c, write_timeout));
        match spawned {
            Ok(thread) => Ok(Writer {
                client: client.clone(),
                thread: Some(thread),
            }),
            Err(e) => {
                // Back to writing inline, with whatever was queued still in order.
                let mut out = client.outbox();
                if let Some(b) = out.backlog.take() {
                    for f in b.into_frames() {
                        out.pending.extend_from_slice(&f);
                    }
                }
                Err(e)
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(b) = self.client.outbox().backlog.as_mut() {
            b.finish();
        }
        self.client.member.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the writer does next.
enum Next {
    Write,
    Exit,
    /// The close 1008 of an eviction is written: wait briefly for the reader to end.
    Linger,
}

/// The writer thread: sleep until frames are queued, write them in order, repeat.
fn run(client: &Client, write_timeout: Duration) {
    let mut batch: Vec<Arc<[u8]>> = Vec::with_capacity(BATCH);
    let Some(written) = client
        .outbox()
        .backlog
        .as_ref()
        .map(Backlog::written_counter)
    else {
        return;
    };
    // Once the connection thread is done, draining the rest has this deadline.
    let mut drain_until: Option<Instant> = None;
    loop {
        let mut out = client.outbox();
        let next = loop {
            if out.broken {
                break Next::Exit;
            }
            let closed = out.closed;
            let Some(b) = out.backlog.as_mut() else {
                break Next::Exit;
            };
            b.written_batch();
            if !b.is_empty() {
                if b.finishing && !closed {
                    // The client is gone without a close handshake: nobody will read it.
                    b.clear();
                    break Next::Exit;
                }
                b.take(&mut batch);
                if b.finishing && drain_until.is_none() {
                    drain_until = Some(Instant::now() + write_timeout);
                }
                break Next::Write;
            }
            if closed {
                // The close frame is the last frame ever queued, and it is written:
                // nothing may follow it (RFC 6455 §5.5.1).
                break if b.evicted && !b.finishing {
                    Next::Linger
                } else {
                    Next::Exit
                };
            }
            if b.finishing {
                break Next::Exit;
            }
            b.sleep();
            out = wait(&client.member.wake, out);
        };
        if let Some(b) = out
            .backlog
            .as_mut()
            .filter(|_| !matches!(next, Next::Write))
        {
            b.unpace(); // leaving: a broadcast waiting for it must look again
        }
        match next {
            Next::Exit => return,
            Next::Linger => {
                let finished = wait_finishing(client, out, CLOSE_WAIT);
                if !finished {
                    // The client did not answer the close: wake its reader by cutting TCP.
                    let _ = client.socket().shutdown(Shutdown::Both);
                }
                return;
            }
            Next::Write => {}
        }
        drop(out);
        let result = write_frames(client, &batch, drain_until, &written);
        batch.clear(); // free shared frames before taking the lock again
        if let Err(e) = result {
            fail(client, &e, write_timeout);
            return;
        }
    }
}

/// Waits up to `limit` for the connection thread to finish; returns whether it did.
fn wait_finishing(
    client: &Client,
    out: std::sync::MutexGuard<'_, Outbox>,
    limit: Duration,
) -> bool {
    let deadline = Instant::now() + limit;
    let (_out, finished) = wait_until(&client.member.wake, out, deadline, |out| {
        let Some(b) = out.backlog.as_mut() else {
            return true;
        };
        b.sleep(); // the connection thread's end must wake us
        b.finishing
    });
    finished
}

/// A write failed or timed out, maybe mid-frame: nothing more may be written. Frees the
/// backlog and cuts TCP, which also wakes the connection thread from its `read()`.
fn fail(client: &Client, e: &io::Error, write_timeout: Duration) {
    let mut out = client.outbox();
    out.broken = true;
    if let Some(b) = out.backlog.as_mut() {
        b.clear();
        b.unpace();
        let timed_out = is_timeout(e);
        b.dropped = match (b.dropped.take(), timed_out) {
            (Some(why), _) => Some(format!(
                "{why}, but the close frame could not be written ({e})"
            )),
            (None, true) => Some(format!(
                "it took less than 16 KiB in {} of waiting (the `write_timeout`): it reads too slowly, or not at all",
                format_duration(write_timeout)
            )),
            (None, false) => None, // the client vanished: its reader reports that
        };
    }
    drop(out);
    debug!("#{} writer: {e}", client.id());
    let _ = client.socket().shutdown(Shutdown::Both);
}

/// Writes whole frames with `writev` calls of at most [`CHUNK`] bytes, counting what
/// each call wrote in `written`. The member may keep them waiting at most the write
/// timeout per 16 KiB it takes (the write floor, guard/floor.rs `Pace`); `deadline` bounds
/// the total.
fn write_frames(
    client: &Client,
    frames: &[Arc<[u8]>],
    deadline: Option<Instant>,
    written: &AtomicU64,
) -> io::Result<()> {
    if client.transport().is_tls() {
        // The TLS session encrypts frame by frame; its records go out in order.
        return frames.iter().try_for_each(|f| {
            for piece in f.chunks(CHUNK) {
                client.transport().write_all(piece)?;
                written.fetch_add(piece.len() as u64, Ordering::Relaxed);
            }
            Ok(())
        });
    }
    let mut out = client.transport().paced();
    let mut slices = [IoSlice::new(&[]); BATCH];
    let n = frames.len().min(BATCH);
    for (slice, frame) in slices.iter_mut().zip(frames) {
        *slice = IoSlice::new(frame);
    }
    let mut rest = &mut slices[..n];
    while !rest.is_empty() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let wrote = {
            // The first CHUNK bytes of what is left.
            let mut chunk = [IoSlice::new(&[]); BATCH];
            let (mut len, mut k) = (0, 0);
            for s in rest.iter() {
                if len >= CHUNK {
                    break;
                }
                let take = s.len().min(CHUNK - len);
                chunk[k] = IoSlice::new(&s[..take]);
                k += 1;
                len += take;
            }
            out.write_gathered(&chunk[..k])?
        };
        if wrote == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        written.fetch_add(wrote as u64, Ordering::Relaxed);
        IoSlice::advance_slices(&mut rest, wrote);
    }
    Ok(())
}
