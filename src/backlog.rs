//! Broadcast mode: each client's bounded backlog, and the thread that writes it.
//!
//! Why a second thread per client: the connection thread spends its life blocked in
//! `read()`, which another thread cannot interrupt, and tungstenite has no read/write
//! split. A broadcast must reach an idle client at once, without waiting for its reader
//! to time out (that would be polling) and without the sender writing to the socket
//! itself with a blocking write (a client that stops reading would then block the
//! sender, and the whole room behind it). So in broadcast mode every frame for a client
//! (broadcasts, pongs, keepalive pings, close frames) is queued in its [`Backlog`] under
//! the outbox lock, and a small writer thread, asleep on a condition variable until
//! there is something to send, writes them in order. The one exception: a small
//! broadcast for a member with nothing queued and an idle writer goes straight into the
//! socket buffer from the broadcasting thread, with a send that never blocks
//! (`nowait.rs`), under the same lock; what does not fit is queued first. So frames
//! never interleave on the wire, and nothing overtakes what was queued before it.
//!
//! The backlog is bounded (`max_backlog`). A frame that would overflow it does not wait
//! and does not grow memory: the client's queued frames are dropped at once and replaced
//! by a close frame 1008 (RFC 6455 §7.4.1, "policy violation": no more specific code
//! fits "reads too slowly"). If even that cannot be written within the write timeout,
//! the TCP connection is cut.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::debug;

use crate::client::{Client, Outbox, close_frame};
use crate::config::{format_duration, format_size};

/// What the backlog counts for each queued frame besides its bytes: the queue's entry
/// (a pointer and a length). The frame's bytes are shared by every member that queues
/// them, but the bound is per member, so they are counted for each.
pub(crate) const ENTRY_COST: usize = std::mem::size_of::<Arc<[u8]>>();

/// The writer only holds a few frame pointers: a small stack is plenty.
pub(crate) const WRITER_STACK: usize = 64 * 1024;

/// At most this many frames go into one `writev` call.
const BATCH: usize = 64;

/// After the close 1008 of an overflow, how long the client has to answer before the
/// connection is cut (RFC 6455 §7.1.1: the server closes TCP; it should not wait long).
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Frames waiting for one client's writer thread. Lives in the client's outbox, under
/// its lock.
#[derive(Debug)]
pub(crate) struct Backlog {
    frames: VecDeque<Arc<[u8]>>,
    /// Cost (bytes + [`ENTRY_COST`]) of the frames in `frames`: what the limit bounds.
    /// The batch the writer took is not counted: it may already be in the kernel, even
    /// read by the client, before the writer gets a CPU again to say so, and a client
    /// that keeps up must not be evicted for that. That batch was within the limit when
    /// it was taken, so a client holds at most about twice the limit.
    queued: usize,
    limit: usize,
    /// The writer is asleep on the condition variable and needs a notification.
    waiting: bool,
    /// The writer took frames and has not come back for more: it may be mid-write.
    busy: bool,
    /// The first queued frame is the rest of one whose start is already in the socket
    /// (a direct send that did not fit, see `nowait.rs`): it must be written, even when
    /// the backlog overflows, or the close 1008 would land inside a frame.
    partial_head: bool,
    /// The connection thread is done: finish the close frame, if one is queued, and exit.
    finishing: bool,
    /// The backlog overflowed and was replaced by a close 1008.
    evicted: bool,
    /// Why the server dropped this client, for the connection's log line.
    pub(crate) dropped: Option<String>,
}

impl Backlog {
    fn new(limit: usize) -> Backlog {
        Backlog {
            frames: VecDeque::new(),
            queued: 0,
            limit,
            waiting: false,
            busy: false,
            partial_head: false,
            finishing: false,
            evicted: false,
            dropped: None,
        }
    }

    /// Queues whole frames. Unless `force` (a close frame must always get through), a
    /// push that would pass the limit evicts the client instead and returns `false`.
    pub(crate) fn push(&mut self, frames: Arc<[u8]>, force: bool) -> bool {
        let cost = frames.len() + ENTRY_COST;
        if !force && self.queued + cost > self.limit {
            self.evict();
            return false;
        }
        self.queued += cost;
        self.frames.push_back(frames);
        true
    }

    /// Queues the rest of a frame whose start went straight into the socket. Only into
    /// an idle backlog ([`is_idle`](Self::is_idle)), so it is the first frame; always fits.
    pub(crate) fn push_rest(&mut self, rest: Arc<[u8]>) {
        debug_assert!(self.frames.is_empty() && !self.busy);
        self.queued += rest.len() + ENTRY_COST;
        self.frames.push_back(rest);
        self.partial_head = true;
    }

    /// Nothing is queued and the writer is not writing: a frame written to the socket now
    /// overtakes nothing (nowait.rs).
    pub(crate) fn is_idle(&self) -> bool {
        self.frames.is_empty() && !self.busy && !self.finishing
    }

    /// Drops everything not yet being written (memory is freed now, not when the client
    /// is gone) and queues a close 1008 after the frame in flight, and after the rest of
    /// a frame that is partly in the socket already.
    fn evict(&mut self) {
        let rest = if self.partial_head {
            self.frames.pop_front()
        } else {
            None
        };
        self.frames = VecDeque::new();
        self.evicted = true;
        self.dropped = Some(format!(
            "more than {} waiting to be sent (--max-backlog): it reads too slowly; closed with 1008",
            format_size(self.limit)
        ));
        let close: Arc<[u8]> = eviction_close().into();
        self.queued = close.len() + ENTRY_COST;
        if let Some(rest) = rest {
            self.queued += rest.len() + ENTRY_COST;
            self.frames.push_back(rest);
        }
        self.frames.push_back(close);
    }

    /// The writer takes up to [`BATCH`] frames to write; they no longer count against
    /// the limit (see `queued`).
    fn take(&mut self, batch: &mut Vec<Arc<[u8]>>) {
        let n = self.frames.len().min(BATCH);
        let mut cost = 0;
        for f in self.frames.drain(..n) {
            cost += f.len() + ENTRY_COST;
            batch.push(f);
        }
        self.queued = self.queued.saturating_sub(cost);
        self.busy = true;
        self.partial_head = false; // now in flight
        if self.frames.is_empty() && self.frames.capacity() > 1024 {
            self.frames = VecDeque::new(); // do not keep a burst's capacity while idle
        }
    }

    /// Whether the writer must be woken; it sleeps again only after saying so.
    pub(crate) fn take_waiter(&mut self) -> bool {
        std::mem::take(&mut self.waiting)
    }
}

/// The close frame that replaces an overflowing backlog (RFC 6455 §7.4.1: 1008).
pub(crate) fn eviction_close() -> Vec<u8> {
    close_frame(1008, "reading too slowly")
}

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
    ) -> io::Result<Writer> {
        {
            let mut out = client.outbox();
            let mut backlog = Backlog::new(limit);
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
                    for f in b.frames {
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
            b.finishing = true;
        }
        self.client.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the writer does next.
enum Next {
    Write,
    Exit,
    /// The close 1008 of an overflow is written: wait briefly for the reader to end.
    Linger,
}

/// The writer thread: sleep until frames are queued, write them in order, repeat.
fn run(client: &Client, write_timeout: Duration) {
    let mut batch: Vec<Arc<[u8]>> = Vec::with_capacity(BATCH);
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
            b.busy = false; // the last batch is written
            if !b.frames.is_empty() {
                if b.finishing && !closed {
                    // The client is gone without a close handshake: nobody will read it.
                    b.frames = VecDeque::new();
                    b.queued = 0;
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
            b.waiting = true;
            out = client.wake.wait(out).unwrap_or_else(|p| p.into_inner());
        };
        match next {
            Next::Exit => return,
            Next::Linger => {
                let finished = wait_finishing(client, out, CLOSE_WAIT);
                if !finished {
                    // The client did not answer the close: wake its reader by cutting TCP.
                    let _ = client.socket.shutdown(Shutdown::Both);
                }
                return;
            }
            Next::Write => {}
        }
        drop(out);
        let result = write_frames(client, &batch, drain_until);
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
    mut out: std::sync::MutexGuard<'_, Outbox>,
    limit: Duration,
) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let Some(b) = out.backlog.as_mut() else {
            return true;
        };
        if b.finishing {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        b.waiting = true;
        out = client
            .wake
            .wait_timeout(out, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// A write failed or timed out, maybe mid-frame: nothing more may be written. Frees the
/// backlog and cuts TCP, which also wakes the connection thread from its `read()`.
fn fail(client: &Client, e: &io::Error, write_timeout: Duration) {
    let mut out = client.outbox();
    out.broken = true;
    if let Some(b) = out.backlog.as_mut() {
        b.frames = VecDeque::new();
        b.queued = 0;
        let timed_out = matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        );
        b.dropped = match (b.dropped.take(), timed_out) {
            (Some(why), _) => Some(format!(
                "{why}, but the close frame could not be written ({e})"
            )),
            (None, true) => Some(format!(
                "a write blocked for {} (--write-timeout): it stopped reading",
                format_duration(write_timeout)
            )),
            (None, false) => None, // the client vanished: its reader reports that
        };
    }
    drop(out);
    debug!("#{} writer: {e}", client.id());
    let _ = client.socket.shutdown(Shutdown::Both);
}

/// Writes whole frames with as few `writev` calls as the socket allows. Each call
/// blocks at most the socket's write timeout; `deadline` bounds the total.
fn write_frames(
    client: &Client,
    frames: &[Arc<[u8]>],
    deadline: Option<Instant>,
) -> io::Result<()> {
    if client.is_tls() {
        // The TLS session encrypts frame by frame; its records go out in order.
        return frames.iter().try_for_each(|f| client.write_raw(f));
    }
    let mut socket: &TcpStream = &client.socket;
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
        match socket.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut rest, written),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn overflow_replaces_the_backlog_with_one_close_1008() {
        let mut b = Backlog::new(100 + 2 * ENTRY_COST);
        assert!(b.push(vec![0x82; 50].into(), false));
        assert!(b.push(vec![0x82; 50].into(), false));
        assert_eq!(b.queued, 100 + 2 * ENTRY_COST);
        assert!(!b.push(vec![0x82; 1].into(), false));
        assert_eq!(b.frames.len(), 1);
        assert_eq!(&b.frames[0][..4], &[0x88, 20, 0x03, 0xf0]); // 1008 = 0x03f0
        assert_eq!(&b.frames[0][4..], b"reading too slowly");
        assert_eq!(b.queued, 22 + ENTRY_COST);
        assert!(b.dropped.as_deref().unwrap().contains("--max-backlog"));
        // A close frame always fits.
        assert!(b.push(vec![0x88; 200].into(), true));
    }

    /// A client that keeps up: the writer took a full backlog's worth and wrote it, the
    /// client read it, and the writer has not yet had a CPU to come back. New frames up to
    /// the limit must still fit (this evicted clients that kept up, under load).
    #[test]
    fn a_batch_taken_by_the_writer_no_longer_counts_against_the_limit() {
        let mut b = Backlog::new(100 + 2 * ENTRY_COST);
        assert!(b.push(vec![0x82; 50].into(), false));
        assert!(b.push(vec![0x82; 50].into(), false));
        let mut batch = Vec::new();
        b.take(&mut batch);
        assert_eq!(batch.len(), 2);
        assert!(b.busy);
        assert!(
            b.push(vec![0x82; 50].into(), false),
            "evicted for a batch in flight"
        );
        assert!(
            b.push(vec![0x82; 50].into(), false),
            "evicted for a batch in flight"
        );
        assert!(
            !b.push(vec![0x82; 1].into(), false),
            "the limit still holds"
        );
    }

    /// The writer takes at most BATCH frames; the rest stay queued, whole and counted,
    /// and a drained burst does not keep its queue's capacity.
    #[test]
    fn take_leaves_the_rest_queued_and_counted_and_frees_a_drained_burst() {
        let frame_cost = 3 + ENTRY_COST;
        let mut b = Backlog::new(usize::MAX);
        for i in 0..1100u32 {
            assert!(b.push(vec![0x82, 1, i as u8].into(), false));
        }
        assert!(b.frames.capacity() > 1024, "a burst's worth of capacity");
        let mut batch = Vec::new();
        b.take(&mut batch);
        assert_eq!(batch.len(), BATCH);
        assert_eq!(b.frames.len(), 1100 - BATCH, "frames lost from the queue");
        assert_eq!(b.queued, (1100 - BATCH) * frame_cost, "what stays queued");
        assert_eq!(b.frames[0][2], BATCH as u8, "the next frame is next");
        while !b.frames.is_empty() {
            batch.clear();
            b.take(&mut batch);
        }
        assert_eq!(b.queued, 0);
        assert_eq!(b.frames.capacity(), 0, "the burst's capacity is kept");
    }

    #[test]
    fn overflow_keeps_the_rest_of_a_frame_already_started_on_the_wire() {
        let mut b = Backlog::new(100 + 2 * ENTRY_COST);
        assert!(b.is_idle());
        b.push_rest(vec![0xAA; 30].into());
        assert!(!b.is_idle());
        assert!(b.push(vec![0x82; 50].into(), false));
        assert!(!b.push(vec![0x82; 50].into(), false)); // overflow
        assert_eq!(b.frames.len(), 2, "the rest, then the close");
        assert_eq!(&b.frames[0][..], &[0xAA; 30][..]);
        assert_eq!(&b.frames[1][..4], &[0x88, 20, 0x03, 0xf0]);
        assert_eq!(b.queued, 30 + 22 + 2 * ENTRY_COST);
    }

    /// Reads what `peer` has now (up to a short wait) onto `into`.
    fn read_some(peer: &mut TcpStream, into: &mut Vec<u8>) {
        let mut buf = [0u8; 64 * 1024];
        match peer.read(&mut buf) {
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading the peer: {e}"),
        }
    }

    /// The direct path of `Client::send_shared` (nowait.rs) over a real socket whose
    /// reader pauses: fill the socket, let the writer drain it, and again, until a direct
    /// send is cut mid-frame; then every frame must arrive whole and in order.
    #[test]
    fn a_direct_send_cut_mid_frame_is_finished_whole_by_the_writer() {
        let (client, mut peer) = Client::over_loopback(None);
        peer.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let client = Arc::new(client);
        client.set_upgraded("/".into());
        let writer = Writer::start(&client, 64 << 20, Duration::from_secs(5)).expect("writer");

        let (mut sent, mut received, mut cuts) = (Vec::new(), Vec::new(), 0);
        let deadline = Instant::now() + Duration::from_secs(20);
        for i in 0..200_000usize {
            if cuts >= 3 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no direct send was cut mid-frame"
            );
            let size = 1000 + (i * 37) % (crate::nowait::DIRECT_MAX - 1010);
            let payload: Vec<u8> = (0..size).map(|k| (k + i) as u8).collect();
            let frame = crate::hub::data_frame(0x2, &payload);
            assert!(client.send_shared(&frame));
            sent.push(frame);
            let (partial, idle) = {
                let out = client.outbox();
                let b = out.backlog.as_ref().expect("backlog mode");
                (b.partial_head, b.is_idle())
            };
            if partial {
                cuts += 1;
            }
            if !idle {
                // Full (cut or not): read until the writer has drained the backlog, so
                // the next frames go the direct way again.
                while !client.outbox().backlog.as_ref().expect("backlog").is_idle() {
                    assert!(Instant::now() < deadline, "the writer never drained");
                    read_some(&mut peer, &mut received);
                }
            }
        }
        assert!(cuts > 0, "no direct send was cut mid-frame");
        let total: usize = sent.iter().map(|f| f.len()).sum();
        while received.len() < total {
            assert!(Instant::now() < deadline, "not everything arrived");
            read_some(&mut peer, &mut received);
        }
        assert_eq!(received.len(), total, "nothing extra");
        let mut at = 0;
        for (i, frame) in sent.iter().enumerate() {
            assert_eq!(
                &received[at..at + frame.len()],
                &frame[..],
                "frame {i} whole, in order"
            );
            at += frame.len();
        }
        drop(writer);
    }
}
