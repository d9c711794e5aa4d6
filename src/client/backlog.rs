//! Broadcast mode: each member's bounded backlog, and the rule that tells a member that
//! reads slowly from one that stopped reading.
//!
//! In broadcast mode every frame for a client (broadcasts, pongs, keepalive pings, close
//! frames) is queued in its [`Backlog`] under the outbox lock, and the client's writer
//! thread (writer.rs) writes them in order. The backlog is bounded (`max_backlog`), and
//! the room respects the bound by waiting, not by dropping (room/broadcast.rs says how,
//! with the [`Bell`]). A member that makes no progress ([`Backlog::check_stall`] says
//! what counts) for `stall_timeout` (or twice its retransmission timeout, if longer)
//! while the room waits for it is stuck: its queued frames are dropped at once and
//! replaced by a close frame 1008 (RFC 6455 §7.4.1, "policy violation": no more specific
//! code fits "stopped reading"). The member's own frames (pongs, keepalive pings) never wait; only
//! a member that queues more than twice the bound of them without reading (a flood of
//! pings) is closed for it, the same way. If even the close cannot be written within the
//! write timeout, the TCP connection is cut.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::config::{format_duration, format_size};
use crate::guard::tcp::Progress;
use crate::util::lock::{lock, wait_until};

/// What the backlog counts for each queued frame besides its bytes: the queue's entry
/// (a pointer and a length). The frame's bytes are shared by every member that queues
/// them, but the bound is per member, so they are counted for each.
pub(crate) const ENTRY_COST: usize = std::mem::size_of::<Arc<[u8]>>();

/// At most this many frames go into one `writev` call.
pub(crate) const BATCH: usize = 64;

/// At most this many bytes go into one `writev` call, so that the writer's count of bytes
/// written (`written`) moves each time the system takes this much more, not only when a
/// whole batch (up to a backlog, 256 KiB by default) is in the socket. (When the system
/// takes more still depends on its send buffer: Linux wakes a blocked writer only once
/// half of it is free, which is why the kernel's acknowledgements count there too.) Off
/// Linux that count is the room's only sign that a member still reads (see
/// [`Backlog::check_stall`]). The unit of the write floor, too (guard/floor.rs).
pub(crate) const CHUNK: usize = crate::guard::floor::WRITE_CHUNK;

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
    /// The bound: `max_backlog`.
    pub(crate) limit: usize,
    /// The writer is asleep on the condition variable and needs a notification.
    waiting: bool,
    /// The writer took frames and has not come back for more: it may be mid-write.
    busy: bool,
    /// The first queued frame is the rest of one whose start is already in the socket
    /// (a direct send that did not fit, see `tune/nowait.rs`): it must be written, even when
    /// the member is evicted, or the close 1008 would land inside a frame.
    partial_head: bool,
    /// The connection thread is done with this client, which is leaving the room: the
    /// writer finishes the close frame, if one is queued, and exits.
    pub(crate) finishing: bool,
    /// The member was evicted (stuck, or a ping flood): the backlog is a close 1008 (or
    /// it is already written).
    pub(crate) evicted: bool,
    /// Why the server dropped this client, for the connection's log line.
    pub(crate) dropped: Option<String>,
    /// A broadcast waits for this backlog to have room: ring `bell` when frames leave.
    paced: bool,
    bell: Arc<Bell>,
    /// Batches the writer has taken so far: its progress, as the room sees it.
    takes: u64,
    /// Bytes the writer has written to the socket so far (it counts them outside the
    /// lock, after each `writev` of at most [`CHUNK`]): progress too, on every platform.
    written: Arc<AtomicU64>,
    /// Since when the room has been waiting for this member, and its progress then.
    stall: Option<Stall>,
}

/// The room waits for a member (its backlog is full) since `since`; its progress then.
#[derive(Debug, Clone, Copy)]
struct Stall {
    since: Instant,
    takes: u64,
    written: u64,
    /// The kernel's count of bytes and segments the peer acknowledged, where it says.
    acked: Option<(u64, u32)>,
    /// How long this member may go without progress: `--stall-timeout`, or twice the
    /// connection's retransmission timeout if that is longer (a lossy link).
    limit: Duration,
}

impl Stall {
    fn new(
        since: Instant,
        takes: u64,
        written: u64,
        timeout: Duration,
        p: Option<Progress>,
    ) -> Stall {
        Stall {
            since,
            takes,
            written,
            acked: p.map(|p| (p.acked, p.delivered)),
            limit: p.map_or(timeout, |p| timeout.max(p.rto.saturating_mul(2))),
        }
    }
}

/// What [`Backlog::check_stall`] found about a member the room waits for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stalled {
    /// It made progress, or has not had `stall_timeout` yet: look again by this time.
    Until(Instant),
    /// Nothing acknowledged, written or taken for this long (`stall_timeout`, or twice
    /// the retransmission timeout): it stopped reading.
    Stuck(Duration),
}

/// Where broadcasts that wait for full backlogs sleep; writer threads ring it when they
/// take frames from a backlog a broadcast waits for, or end. A counter under a mutex, so
/// a ring between a broadcast's look at the backlogs and its sleep is never lost.
#[derive(Debug, Default)]
pub(crate) struct Bell {
    rung: Mutex<u64>,
    cond: Condvar,
}

impl Bell {
    fn count(&self) -> std::sync::MutexGuard<'_, u64> {
        lock(&self.rung)
    }

    /// How many times it has rung: pass it to [`wait`](Self::wait) after looking.
    pub(crate) fn seen(&self) -> u64 {
        *self.count()
    }

    pub(crate) fn ring(&self) {
        *self.count() += 1;
        self.cond.notify_all();
    }

    /// Sleeps until it rings after `seen`, or until `until`.
    pub(crate) fn wait(&self, seen: u64, until: Instant) {
        let _ = wait_until(&self.cond, self.count(), until, |rung| *rung != seen);
    }
}

impl Backlog {
    pub(crate) fn new(limit: usize, bell: Arc<Bell>) -> Backlog {
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
            paced: false,
            bell,
            takes: 0,
            written: Arc::default(),
            stall: None,
        }
    }

    /// Queues whole frames of the member's own (pongs, pings, the close), which never
    /// wait. Unless `force` (a close frame must always get through), a push that would
    /// pass twice the limit (only a member that floods pings and reads nothing gets
    /// there) evicts the client instead and returns `false`.
    pub(crate) fn push(&mut self, frames: Arc<[u8]>, force: bool) -> bool {
        let cost = frames.len() + ENTRY_COST;
        let cap = self.limit.saturating_mul(2);
        if !force && self.queued + cost > cap {
            self.evict(format!(
                "more than {} waiting, its own control frames included (twice `max_backlog`): it sends pings and reads nothing; closed with 1008",
                format_size(cap)
            ));
            return false;
        }
        self.queued += cost;
        self.frames.push_back(frames);
        true
    }

    /// A broadcast frame: queues it if it fits within the limit and returns `true`;
    /// otherwise marks the backlog as one a broadcast waits for (the writer will ring the
    /// bell when it takes frames) and returns `false`.
    pub(crate) fn push_shared(&mut self, frame: &Arc<[u8]>) -> bool {
        let cost = frame.len() + ENTRY_COST;
        if self.queued + cost > self.limit {
            self.paced = true;
            return false;
        }
        self.stall = None;
        self.queued += cost;
        self.frames.push_back(frame.clone());
        true
    }

    /// The room is waiting for this member (its backlog is full) at `now`: has it made
    /// progress within its limit (`timeout`, or twice the connection's retransmission
    /// timeout if longer)? Progress is a batch taken by the writer, bytes the writer wrote
    /// (at most [`CHUNK`] per `writev`, so a reader that frees that much counts), bytes or
    /// segments the peer acknowledged (`progress`, asked of the kernel only when the
    /// stall starts and when its limit has passed), or nothing left waiting in the
    /// socket (then our own writer is what is slow). Where the kernel says nothing (not
    /// Linux), the writer's counts are all there is.
    pub(crate) fn check_stall(
        &mut self,
        now: Instant,
        timeout: Duration,
        progress: impl FnOnce() -> Option<Progress>,
    ) -> Stalled {
        let written = self.written.load(Ordering::Relaxed);
        let Some(stall) = self.stall else {
            let fresh = Stall::new(now, self.takes, written, timeout, progress());
            self.stall = Some(fresh);
            return Stalled::Until(now + fresh.limit);
        };
        if stall.takes != self.takes || stall.written != written {
            self.stall = Some(Stall {
                since: now,
                takes: self.takes,
                written,
                ..stall
            });
            return Stalled::Until(now + stall.limit);
        }
        let due = stall.since + stall.limit;
        if now < due {
            return Stalled::Until(due);
        }
        match progress() {
            Some(p) if Some((p.acked, p.delivered)) != stall.acked || !p.waiting => {
                let fresh = Stall::new(now, self.takes, written, timeout, Some(p));
                self.stall = Some(fresh);
                Stalled::Until(now + fresh.limit)
            }
            _ => Stalled::Stuck(stall.limit),
        }
    }

    /// Closes a member the room waited for in vain for `waited` (see
    /// [`check_stall`](Self::check_stall)).
    pub(crate) fn evict_stuck(&mut self, waited: Duration) {
        self.evict(format!(
            "its backlog was full and it read nothing for {} (`stall_timeout`, or twice its retransmission timeout if longer): it stopped reading; closed with 1008",
            format_duration(waited)
        ));
    }

    /// Whether a broadcast may be waiting for this member: ring the room's bell.
    pub(crate) fn unpace(&mut self) {
        if std::mem::take(&mut self.paced) {
            self.bell.ring();
        }
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
    /// overtakes nothing (tune/nowait.rs).
    pub(crate) fn is_idle(&self) -> bool {
        self.frames.is_empty() && !self.busy && !self.finishing
    }

    /// Drops everything not yet being written (memory is freed now, not when the client
    /// is gone) and queues a close 1008 after the frame in flight, and after the rest of
    /// a frame that is partly in the socket already.
    fn evict(&mut self, why: String) {
        let rest = if self.partial_head {
            self.frames.pop_front()
        } else {
            None
        };
        self.frames = VecDeque::new();
        self.evicted = true;
        self.dropped = Some(why);
        self.stall = None;
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
    pub(crate) fn take(&mut self, batch: &mut Vec<Arc<[u8]>>) {
        let n = self.frames.len().min(BATCH);
        let mut cost = 0;
        for f in self.frames.drain(..n) {
            cost += f.len() + ENTRY_COST;
            batch.push(f);
        }
        self.queued = self.queued.saturating_sub(cost);
        self.busy = true;
        self.partial_head = false; // now in flight
        self.takes += 1;
        self.unpace();
        if self.frames.is_empty() && self.frames.capacity() > 1024 {
            self.frames = VecDeque::new(); // do not keep a burst's capacity while idle
        }
    }

    /// Whether the writer must be woken; it sleeps again only after saying so.
    pub(crate) fn take_waiter(&mut self) -> bool {
        std::mem::take(&mut self.waiting)
    }

    /// The writer is about to sleep: the next frame queued must wake it.
    pub(crate) fn sleep(&mut self) {
        self.waiting = true;
    }

    /// The writer has written the batch it took.
    pub(crate) fn written_batch(&mut self) {
        self.busy = false;
    }

    /// Whether any frame waits for the writer.
    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The connection thread is done with the client (`finishing`).
    pub(crate) fn finish(&mut self) {
        self.finishing = true;
        self.unpace();
    }

    /// Drops every queued frame, freeing them now: nobody will read them.
    pub(crate) fn clear(&mut self) {
        self.frames = VecDeque::new();
        self.queued = 0;
    }

    /// The writer's count of bytes written, which it updates outside the lock.
    pub(crate) fn written_counter(&self) -> Arc<AtomicU64> {
        self.written.clone()
    }

    /// The frames still queued, in order (to write them inline after all).
    pub(crate) fn into_frames(self) -> VecDeque<Arc<[u8]>> {
        self.frames
    }
}

/// What a member's writer thread and the room keep in its `Client` (outbox.rs), outside
/// the outbox.
#[derive(Debug, Default)]
pub(crate) struct Member {
    /// Wakes the writer thread (frames queued, or the connection is over).
    pub(crate) wake: Condvar,
    /// When the room last made this client's messages wait (for the log).
    pub(crate) paced_at: Mutex<Option<Instant>>,
}

/// The close frame that replaces the backlog of a member that stopped reading (RFC 6455
/// §7.4.1: 1008).
pub(crate) fn eviction_close() -> Vec<u8> {
    crate::frame::close(1008, "not reading")
}

#[cfg(test)]
impl Backlog {
    /// Whether the first queued frame is the rest of one partly in the socket already.
    pub(crate) fn has_partial_head(&self) -> bool {
        self.partial_head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(limit: usize) -> Backlog {
        Backlog::new(limit, Arc::default())
    }

    /// A broadcast that does not fit waits (the backlog is marked as one a broadcast
    /// waits for) instead of evicting anyone; the member's own control frames never wait,
    /// and only past twice the limit replace the backlog with one close 1008.
    #[test]
    fn a_full_backlog_makes_broadcasts_wait_and_only_own_frames_past_twice_evict() {
        let mut b = backlog(100 + 2 * ENTRY_COST);
        let f: Arc<[u8]> = vec![0x82; 50].into();
        assert!(b.push_shared(&f));
        assert!(b.push_shared(&f));
        assert_eq!(b.queued, 100 + 2 * ENTRY_COST);
        assert!(!b.paced);
        assert!(
            !b.push_shared(&vec![0x82; 1].into()),
            "over the limit: wait"
        );
        assert!(b.paced, "the writer must ring the bell");
        assert_eq!(b.frames.len(), 2, "nothing dropped");
        assert!(!b.evicted && b.dropped.is_none());
        // A pong goes in past the limit, up to twice it.
        assert!(b.push(vec![0x8a; 100].into(), false));
        assert!(
            !b.push(vec![0x8a; 100].into(), false),
            "past twice the limit"
        );
        assert_eq!(b.frames.len(), 1);
        assert_eq!(&b.frames[0][..4], &[0x88, 13, 0x03, 0xf0]); // 1008 = 0x03f0
        assert_eq!(&b.frames[0][4..], b"not reading");
        assert_eq!(b.queued, 15 + ENTRY_COST);
        assert!(
            b.dropped
                .as_deref()
                .unwrap()
                .contains("twice `max_backlog`")
        );
        // A close frame always fits.
        assert!(b.push(vec![0x88; 200].into(), true));
    }

    /// The writer taking frames rings the bell once for a waiting broadcast, not for
    /// every batch.
    #[test]
    fn taking_frames_rings_the_bell_only_when_a_broadcast_waits() {
        let bell = Arc::new(Bell::default());
        let mut b = Backlog::new(100 + 2 * ENTRY_COST, bell.clone());
        let f: Arc<[u8]> = vec![0x82; 50].into();
        let mut batch = Vec::new();
        assert!(b.push_shared(&f));
        b.take(&mut batch);
        assert_eq!(bell.seen(), 0, "nobody waits");
        assert!(b.push_shared(&f) && b.push_shared(&f));
        assert!(!b.push_shared(&f));
        batch.clear();
        b.take(&mut batch);
        assert_eq!(bell.seen(), 1);
        assert!(b.push_shared(&f), "room again");
        batch.clear();
        b.take(&mut batch);
        assert_eq!(bell.seen(), 1);
    }

    /// A member is stuck only after a whole `timeout` with nothing taken, nothing
    /// acknowledged, and bytes still waiting in its socket.
    #[test]
    fn a_stall_is_progress_free_time_with_bytes_waiting() {
        let t = Duration::from_millis(50);
        let t0 = Instant::now();
        let mut b = backlog(1000);
        let p = |acked, waiting| {
            move || {
                Some(Progress {
                    acked,
                    delivered: 0,
                    waiting,
                    rto: Duration::from_millis(1),
                })
            }
        };
        assert_eq!(b.check_stall(t0, t, p(10, true)), Stalled::Until(t0 + t));
        assert_eq!(
            b.check_stall(t0 + t / 2, t, || panic!("not asked before the timeout")),
            Stalled::Until(t0 + t)
        );
        // Acknowledged bytes: progress, the clock starts again.
        assert_eq!(
            b.check_stall(t0 + t, t, p(20, true)),
            Stalled::Until(t0 + 2 * t)
        );
        // Nothing waits in the socket: our writer is the slow one, not the member.
        assert_eq!(
            b.check_stall(t0 + 2 * t, t, p(20, false)),
            Stalled::Until(t0 + 3 * t)
        );
        // A batch taken: progress.
        let mut batch = Vec::new();
        assert!(b.push_shared(&vec![0x82; 5].into()));
        b.take(&mut batch);
        b.stall = b.stall.or(Some(Stall {
            since: t0 + 2 * t,
            takes: 0,
            written: 0,
            acked: Some((20, 0)),
            limit: t,
        }));
        assert_eq!(
            b.check_stall(t0 + 3 * t, t, || panic!("takes count first")),
            Stalled::Until(t0 + 4 * t)
        );
        assert_eq!(b.check_stall(t0 + 4 * t, t, p(20, true)), Stalled::Stuck(t));
        // Without the kernel's word (not Linux), only the writer's progress counts: bytes
        // it wrote (a part of a batch) are progress.
        let mut b = backlog(1000);
        assert_eq!(b.check_stall(t0, t, || None), Stalled::Until(t0 + t));
        b.written.fetch_add(CHUNK as u64, Ordering::Relaxed);
        assert_eq!(
            b.check_stall(t0 + t, t, || panic!("written counts first")),
            Stalled::Until(t0 + 2 * t)
        );
        assert_eq!(b.check_stall(t0 + 2 * t, t, || None), Stalled::Stuck(t));
        // A slow link's retransmission timeout: never stuck sooner than twice it.
        let mut b = backlog(1000);
        let slow = || {
            Some(Progress {
                acked: 1,
                delivered: 1,
                waiting: true,
                rto: Duration::from_millis(300),
            })
        };
        let long = Duration::from_millis(600);
        assert_eq!(b.check_stall(t0, t, slow), Stalled::Until(t0 + long));
        assert_eq!(
            b.check_stall(t0 + t, t, || panic!("early")),
            Stalled::Until(t0 + long)
        );
        assert_eq!(b.check_stall(t0 + long, t, slow), Stalled::Stuck(long));
        b.evict_stuck(t);
        assert!(
            b.dropped
                .as_deref()
                .unwrap()
                .contains("50ms (`stall_timeout`, or twice")
        );
        // Room again ends the wait: the next full backlog starts a new clock.
        let mut b = backlog(1000);
        assert_eq!(b.check_stall(t0, t, || None), Stalled::Until(t0 + t));
        assert!(b.push_shared(&vec![0x82; 5].into()));
        assert!(b.stall.is_none());
    }

    /// A client that keeps up: the writer took a full backlog's worth and wrote it, the
    /// client read it, and the writer has not yet had a CPU to come back. New frames up to
    /// the limit must still fit (this made clients that kept up wait, or be evicted).
    #[test]
    fn a_batch_taken_by_the_writer_no_longer_counts_against_the_limit() {
        let mut b = backlog(100 + 2 * ENTRY_COST);
        let f: Arc<[u8]> = vec![0x82; 50].into();
        assert!(b.push_shared(&f));
        assert!(b.push_shared(&f));
        let mut batch = Vec::new();
        b.take(&mut batch);
        assert_eq!(batch.len(), 2);
        assert!(b.busy);
        assert!(b.push_shared(&f), "waits for a batch in flight");
        assert!(b.push_shared(&f), "waits for a batch in flight");
        assert!(
            !b.push_shared(&vec![0x82; 1].into()),
            "the limit still holds"
        );
    }

    /// The writer takes at most BATCH frames; the rest stay queued, whole and counted,
    /// and a drained burst does not keep its queue's capacity.
    #[test]
    fn take_leaves_the_rest_queued_and_counted_and_frees_a_drained_burst() {
        let frame_cost = 3 + ENTRY_COST;
        let mut b = backlog(usize::MAX);
        for i in 0..1100u32 {
            assert!(b.push_shared(&vec![0x82, 1, i as u8].into()));
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
    fn eviction_keeps_the_rest_of_a_frame_already_started_on_the_wire() {
        let mut b = backlog(100 + 2 * ENTRY_COST);
        assert!(b.is_idle());
        b.push_rest(vec![0xAA; 30].into());
        assert!(!b.is_idle());
        assert!(b.push_shared(&vec![0x82; 50].into()));
        assert!(!b.push_shared(&vec![0x82; 50].into())); // full: waits
        b.evict_stuck(Duration::from_millis(50));
        assert_eq!(b.frames.len(), 2, "the rest, then the close");
        assert_eq!(&b.frames[0][..], &[0xAA; 30][..]);
        assert_eq!(&b.frames[1][..4], &[0x88, 13, 0x03, 0xf0]);
        assert_eq!(b.queued, 30 + 15 + 2 * ENTRY_COST);
    }
}
