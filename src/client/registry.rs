//! The registry of one server's connections: every connection that has a thread, those
//! still waiting for their request head, and the rule admission (admission.rs) refuses
//! by.
//!
//! Sockets that hoard the connection slots: a connection holds a slot of
//! `--max-connections` from its accept; until it has sent a whole request head it is
//! *waiting*, and about half the slots may be waiting. When all the slots are taken, a new
//! connection pushes out the oldest waiting one that has sent nothing yet (else the oldest
//! waiting one); when only the waiting half is, it pushes out one that has waited at least
//! [`PUSH_OUT_GRACE`], and is let in anyway if none has (slots are free: a reconnect storm
//! of slow phones is not pushed out). So sockets that never send (or trickle) cannot lock
//! new clients out, they only push each other out. Admission asks [`Waiting::make_room`]
//! for each new connection on the accept loop, so nothing here waits for a client.

use std::collections::VecDeque;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, warn};

use crate::client::outbox::Client;
use crate::client::response::{Response, unavailable};

/// Every connection of one server, from accept to close, and what admission needs to
/// know about them.
#[derive(Default)]
pub(crate) struct Registry {
    /// Every connection that has a thread, from accept to close, sorted by id: ids only
    /// grow and admission adds each new one at the end under the registry's lock, so
    /// [`Self::remove`] finds one by binary search. (Not a `HashMap`: the same lookups,
    /// with the table's growth and hashing code in the binary for a list of at most
    /// `max_connections`.)
    pub(crate) clients: Vec<Arc<Client>>,
    /// Those that have not delivered a whole request head yet, and those pushed out of
    /// them to make room, whose threads are ending.
    pub(crate) waiting: Waiting,
    pub(crate) rejecters: usize,
    pub(crate) next_id: u64,
}

impl Registry {
    /// A new connection, accepted `at`, enters the registry, waiting for its request
    /// head. Its id is above every one held (see `clients`).
    pub(crate) fn add(&mut self, at: Instant, client: &Arc<Client>) {
        debug_assert!(
            self.clients
                .last()
                .is_none_or(|last| last.id() < client.id())
        );
        self.clients.push(client.clone());
        self.waiting.push(client.id(), at, client.clone());
    }

    /// Connection `id`'s thread ended: it leaves the registry.
    pub(crate) fn remove(&mut self, id: u64) {
        if let Ok(i) = self.clients.binary_search_by_key(&id, |c| c.id()) {
            self.clients.remove(i);
        }
        self.waiting.ended(id);
    }

    /// Connections that hold a slot: all but those already pushed out.
    pub(crate) fn live(&self) -> usize {
        self.clients.len() - self.waiting.pushed_out()
    }

    /// Whether a new connection must be refused, after any push-out: the memory budget
    /// (when it is what limits, `fit < max`) counts every thread, a pushed-out one still
    /// ending included (it still holds its memory); `--max-connections` counts the slots
    /// held, `live()`. Says why for the log, and gives the `503`.
    pub(crate) fn refusal(&self, max: usize, fit: usize) -> Option<(String, Response)> {
        if fit < max && self.clients.len() >= fit {
            Some((
                format!(
                    "refused with 503, at the {fit} connections that fit the memory limit (see the memory budget line at startup)"
                ),
                unavailable("The server has no memory left for another connection"),
            ))
        } else if self.live() >= max {
            Some((
                format!(
                    "refused with 503, at the cap of {max} connections set by `max_connections`"
                ),
                unavailable(&format!("The server is at its limit of {max} connections")),
            ))
        } else {
            None
        }
    }
}

/// At most one warning about pushed-out connections per this long.
const PUSH_OUT_WARN_EVERY: Duration = Duration::from_secs(10);

/// While slots are free, a connection waiting for its request head is pushed out only
/// once it has waited this long: a phone's TLS handshake on a poor link takes a few
/// hundred milliseconds, a socket hoarded to lock clients out much longer.
const PUSH_OUT_GRACE: Duration = Duration::from_secs(1);

/// Connections pushed out to make room whose threads have not ended yet: at most this
/// many at once, so a flood of new connections cannot pile up threads.
const MAX_PUSHED_OUT: usize = 64;

/// The connections of one server still waiting for their request head, and those pushed
/// out of the list whose threads are ending.
#[derive(Default)]
pub(crate) struct Waiting {
    /// As (id, when accepted, client), oldest first. Sorted by id, since ids only grow
    /// and admission adds each new one at the back under the registry's lock:
    /// [`Self::stop`] finds one by binary search (a `BTreeMap` keeps the same order in a
    /// larger binary).
    list: VecDeque<(u64, Instant, Arc<Client>)>,
    /// Pushed out to make room; their threads are ending. At most [`MAX_PUSHED_OUT`]: a
    /// list is as quick to search as a set, and smaller.
    pushed_out: Vec<u64>,
    /// Pushed out since the last warning, and when that was.
    pushed_since_warn: u64,
    warned_at: Option<Instant>,
}

impl Waiting {
    /// Connection `id`, accepted `at`, waits for its request head (its id is above every
    /// one held).
    pub(crate) fn push(&mut self, id: u64, at: Instant, client: Arc<Client>) {
        self.list.push_back((id, at, client));
    }

    /// Connections pushed out whose threads are still ending: they hold no slot.
    pub(crate) fn pushed_out(&self) -> usize {
        self.pushed_out.len()
    }

    /// Connection `id` has delivered its whole request head: it no longer counts as
    /// waiting. `false` if it was pushed out meanwhile: end it quietly.
    pub(crate) fn head_received(&mut self, id: u64) -> bool {
        self.stop(id).is_some() || !self.pushed_out.contains(&id)
    }

    /// Connection `id`'s thread ended.
    pub(crate) fn ended(&mut self, id: u64) {
        self.stop(id);
        self.pushed_out.retain(|&p| p != id);
    }

    /// Connection `id` is no longer waiting for its request head; it, if it was.
    fn stop(&mut self, id: u64) -> Option<Arc<Client>> {
        let i = self.list.binary_search_by_key(&id, |w| w.0).ok()?;
        // Moves the entries on the shorter side: most leave in about the order they came.
        self.list.remove(i).map(|(_, _, client)| client)
    }

    /// Before `peer` is let in at `now`, with `live` connections holding a slot of `cap`
    /// (`max_connections`, `max`, or fewer that fit the memory limit): pushes out a
    /// waiting one if the rule above says so, and says so: at `debug` each time, at `warn`
    /// at most once per [`PUSH_OUT_WARN_EVERY`], naming the limit that made room short.
    pub(crate) fn make_room(
        &mut self,
        live: usize,
        cap: usize,
        max: usize,
        peer: SocketAddr,
        now: Instant,
    ) {
        let waiting_cap = (cap / 2).max(1);
        let full = live >= cap;
        if !full && self.list.len() < waiting_cap {
            return;
        }
        let before = (!full).then(|| now.checked_sub(PUSH_OUT_GRACE)).flatten();
        if !full && before.is_none() {
            return;
        }
        let Some(victim) = self.push_out_oldest(before) else {
            return;
        };
        debug!(
            "#{} {}: closed before its request head, to make room for {peer} ({cap} slots: at most {waiting_cap} may wait for a request head)",
            victim.id(),
            victim.peer_addr()
        );
        if self
            .warned_at
            .is_none_or(|t| now.duration_since(t) >= PUSH_OUT_WARN_EVERY)
        {
            let limit = if cap == max {
                "`max_connections`"
            } else {
                "the connections that fit the memory limit, see the memory budget line at startup"
            };
            warn!(
                "{} connection(s) that had not sent a request were closed to make room for new ones: {waiting_cap} were waiting for a request head (half of the {cap} slots, {limit}); many sockets that send nothing may be an attack (docs/security.md)",
                self.pushed_since_warn
            );
            self.pushed_since_warn = 0;
            self.warned_at = Some(now);
        }
    }

    /// Closes the oldest connection that has sent nothing yet, or else the oldest still
    /// waiting for its request head, to make room; only among those accepted before
    /// `before`, if given. Returns it, or `None` if there is none (or too many pushed out
    /// are still ending).
    fn push_out_oldest(&mut self, before: Option<Instant>) -> Option<Arc<Client>> {
        if self.pushed_out.len() >= MAX_PUSHED_OUT {
            return None;
        }
        let old = |(_, at, _): &&(u64, Instant, Arc<Client>)| before.is_none_or(|b| *at <= b);
        // Look at a few of the oldest only: this runs on the accept loop.
        let id = self
            .list
            .iter()
            .take(32)
            .filter(old)
            .find(|(_, _, c)| c.transport().is_silent())
            .or_else(|| self.list.front().filter(old))
            .map(|(id, _, _)| *id)?;
        let victim = self.stop(id)?;
        self.pushed_out.push(id);
        // Its thread's read returns at once (end of stream), and it ends quietly.
        let _ = victim.socket().shutdown(Shutdown::Both);
        self.pushed_since_warn += 1;
        Some(victim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory budget counts the threads of pushed-out connections
    /// still ending; --max-connections counts only the slots held.
    #[test]
    fn the_memory_budget_counts_pushed_out_threads_and_the_cap_does_not() {
        let mut reg = Registry::default();
        let mut peers = Vec::new(); // the other ends, kept open
        for id in 1..=3 {
            let (client, peer) = Client::over_loopback_as(id, None);
            reg.clients.push(Arc::new(client));
            peers.push(peer);
        }
        // Pushed out, still ending: its thread is there.
        let third = reg.clients.iter().last().unwrap().clone();
        reg.waiting.push(3, Instant::now(), third);
        reg.waiting
            .make_room(3, 3, 3, "127.0.0.1:1".parse().unwrap(), Instant::now());
        assert_eq!(reg.live(), 2);
        let why = |max, fit| reg.refusal(max, fit).map(|(why, _)| why);
        // Memory fits 3 of --max-connections 10: three threads exist, refuse.
        assert!(why(10, 3).is_some_and(|w| w.contains("memory limit")));
        assert_eq!(why(10, 4), None);
        // Everything fits: only the slots count, and one is free again.
        assert_eq!(why(3, 3), None);
        assert!(why(2, 2).is_some_and(|w| w.contains("`max_connections`")));
    }

    /// Connections end in any order; each removal takes that one, and only once.
    #[test]
    fn clients_are_removed_by_id_in_any_order() {
        let mut reg = Registry::default();
        let mut peers = Vec::new();
        for id in [2, 5, 9, 12] {
            let (client, peer) = Client::over_loopback_as(id, None);
            reg.clients.push(Arc::new(client));
            peers.push(peer);
        }
        let ids = |reg: &Registry| reg.clients.iter().map(|c| c.id()).collect::<Vec<_>>();
        reg.remove(9);
        assert_eq!(ids(&reg), [2, 5, 12]);
        reg.remove(9); // not removed twice
        reg.remove(3); // never there
        reg.remove(2);
        assert_eq!(ids(&reg), [5, 12]);
    }

    /// Connection `id`, which has sent a byte (`spoke`) or nothing; its other end is kept
    /// open in `peers`.
    fn waiter(id: u64, spoke: bool, peers: &mut Vec<std::net::TcpStream>) -> Arc<Client> {
        let (client, mut peer) = Client::over_loopback_as(id, None);
        if spoke {
            std::io::Write::write_all(&mut peer, b"G").unwrap();
        }
        peers.push(peer);
        Arc::new(client)
    }

    fn ids(w: &Waiting) -> Vec<u64> {
        w.list.iter().map(|e| e.0).collect()
    }

    /// Connections stop waiting in any order; the oldest still waiting is pushed out.
    #[test]
    fn the_oldest_still_waiting_is_pushed_out() {
        let (mut w, mut peers) = (Waiting::default(), Vec::new());
        for id in 1..=4 {
            w.push(id, Instant::now(), waiter(id, true, &mut peers));
        }
        assert!(w.head_received(3));
        assert!(w.stop(3).is_none(), "not waiting twice");
        assert!(w.head_received(1));
        assert!(w.push_out_oldest(None).is_some());
        assert_eq!(w.pushed_out, [2]);
        assert!(!w.head_received(2), "pushed out: ends quietly");
        assert_eq!(ids(&w), [4]);
        w.ended(2);
        assert_eq!(w.pushed_out(), 0);
    }

    /// Full: a silent one goes before an older one that spoke; with slots free, only
    /// one past the grace goes, and none otherwise.
    #[test]
    fn a_silent_one_goes_first_and_free_slots_wait_for_the_grace() {
        let peer = "127.0.0.1:1".parse().unwrap();
        let now = Instant::now();
        let (mut w, mut peers) = (Waiting::default(), Vec::new());
        w.push(1, now, waiter(1, true, &mut peers));
        w.push(2, now, waiter(2, false, &mut peers));
        w.make_room(2, 2, 2, peer, now);
        assert_eq!(ids(&w), [1]);
        // 1 slot of 2 held, waiting for its head: the waiting half is full, but the
        // one waiting has not had its grace.
        w.make_room(1, 2, 2, peer, now);
        assert_eq!(ids(&w), [1]);
        w.make_room(1, 2, 2, peer, now + PUSH_OUT_GRACE);
        assert!(ids(&w).is_empty());
    }
}
