//! The registry of one server's connections: every connection that has a thread, those
//! still waiting for their request head, and the rules admission (admission.rs) applies
//! to them.

use std::collections::VecDeque;
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Instant;

use crate::client::outbox::Client;

/// Connections pushed out to make room (admission.rs) whose threads have not ended yet:
/// at most this many at once, so a flood of new connections cannot pile up threads.
const MAX_PUSHED_OUT: usize = 64;

/// Every connection of one server, from accept to close, and what admission needs to
/// know about them.
#[derive(Default)]
pub(crate) struct Registry {
    /// Every connection that has a thread, from accept to close.
    pub(crate) clients: Clients,
    /// Those that have not delivered a whole request head yet, as (id, when accepted,
    /// client), oldest first. Sorted by id, since ids only grow and admission adds each
    /// new one at the back under the same lock: [`Self::stop_waiting`] finds one by binary
    /// search (a `BTreeMap` keeps the same order in a larger binary).
    pub(crate) waiting: VecDeque<(u64, Instant, Arc<Client>)>,
    /// Pushed out of `waiting` to make room; their threads are ending. At most
    /// [`MAX_PUSHED_OUT`]: a list is as quick to search as a set, and smaller.
    pub(crate) pushed_out: Vec<u64>,
    /// Pushed out since the last warning, and when that was.
    pub(crate) pushed_since_warn: u64,
    pub(crate) warned_at: Option<Instant>,
    pub(crate) rejecters: usize,
    pub(crate) next_id: u64,
}

impl Registry {
    /// Connections that hold a slot: all but those already pushed out.
    pub(crate) fn live(&self) -> usize {
        self.clients.len() - self.pushed_out.len()
    }

    /// Whether a new connection must be refused, after any push-out: the memory budget
    /// (when it is what limits, `fit < max`) counts every thread, a pushed-out one still
    /// ending included (it still holds its memory); `--max-connections` counts the slots
    /// held, `live()`.
    pub(crate) fn refusal(&self, max: usize, fit: usize) -> Option<Refusal> {
        if fit < max && self.clients.len() >= fit {
            Some(Refusal::Memory)
        } else if self.live() >= max {
            Some(Refusal::Busy)
        } else {
            None
        }
    }

    /// Connection `id` is no longer waiting for its request head; it, if it was.
    pub(crate) fn stop_waiting(&mut self, id: u64) -> Option<Arc<Client>> {
        let i = self.waiting.binary_search_by_key(&id, |w| w.0).ok()?;
        // Moves the entries on the shorter side: most leave in about the order they came.
        self.waiting.remove(i).map(|(_, _, client)| client)
    }

    /// Closes the oldest connection that has sent nothing yet, or else the oldest still
    /// waiting for its request head, to make room; only among those accepted before
    /// `before`, if given. Returns it, or `None` if there is none (or too many pushed out
    /// are still ending).
    pub(crate) fn push_out_oldest(&mut self, before: Option<Instant>) -> Option<Arc<Client>> {
        if self.pushed_out.len() >= MAX_PUSHED_OUT {
            return None;
        }
        let old = |(_, at, _): &&(u64, Instant, Arc<Client>)| before.is_none_or(|b| *at <= b);
        // Look at a few of the oldest only: this runs on the accept loop.
        let id = self
            .waiting
            .iter()
            .take(32)
            .filter(old)
            .find(|(_, _, c)| c.transport().is_silent())
            .or_else(|| self.waiting.front().filter(old))
            .map(|(id, _, _)| *id)?;
        let victim = self.stop_waiting(id)?;
        self.pushed_out.push(id);
        // Its thread's read returns at once (end of stream), and it ends quietly.
        let _ = victim.socket().shutdown(Shutdown::Both);
        self.pushed_since_warn += 1;
        Some(victim)
    }
}

/// Every connection that has a thread, sorted by id: ids only grow and admission adds
/// each new one at the end under the registry's lock, so [`Clients::remove`] finds one
/// by binary search. (Not a `HashMap`: the same lookups, with the table's growth and
/// hashing code in the binary for a list of at most `max_connections`.)
#[derive(Default)]
pub(crate) struct Clients(Vec<Arc<Client>>);

impl Clients {
    /// Adds `client`, whose id is above every one held.
    pub(crate) fn push(&mut self, client: Arc<Client>) {
        debug_assert!(self.0.last().is_none_or(|last| last.id() < client.id()));
        self.0.push(client);
    }

    /// Removes connection `id`, if it is there.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Arc<Client>> {
        let i = self.0.binary_search_by_key(&id, |c| c.id()).ok()?;
        Some(self.0.remove(i))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Arc<Client>> {
        self.0.iter()
    }
}

/// Why admission refuses a connection with `503`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Past the connections that fit the memory budget (budget.rs).
    Memory,
    /// At `--max-connections`, every slot past its request head.
    Busy,
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
        reg.pushed_out.push(3); // still ending: its thread is there
        assert_eq!(reg.live(), 2);
        // Memory fits 3 of --max-connections 10: three threads exist, refuse.
        assert_eq!(reg.refusal(10, 3), Some(Refusal::Memory));
        assert_eq!(reg.refusal(10, 4), None);
        // Everything fits: only the slots count, and one is free again.
        assert_eq!(reg.refusal(3, 3), None);
        assert_eq!(reg.refusal(2, 2), Some(Refusal::Busy));
    }

    /// Connections end in any order; each removal takes that one, and only once.
    #[test]
    fn clients_are_removed_by_id_in_any_order() {
        let mut clients = Clients::default();
        let mut peers = Vec::new();
        for id in [2, 5, 9, 12] {
            let (client, peer) = Client::over_loopback_as(id, None);
            clients.push(Arc::new(client));
            peers.push(peer);
        }
        assert_eq!(clients.remove(9).map(|c| c.id()), Some(9));
        assert!(clients.remove(9).is_none(), "not removed twice");
        assert!(clients.remove(3).is_none(), "never there");
        assert_eq!(clients.remove(2).map(|c| c.id()), Some(2));
        let left: Vec<u64> = clients.iter().map(|c| c.id()).collect();
        assert_eq!(left, [5, 12]);
        assert_eq!(clients.len(), 2);
    }

    /// Connections stop waiting in any order; the oldest still waiting is pushed out.
    #[test]
    fn the_oldest_still_waiting_is_pushed_out() {
        let mut reg = Registry::default();
        let mut peers = Vec::new();
        for id in 1..=4 {
            let (client, peer) = Client::over_loopback_as(id, None);
            let client = Arc::new(client);
            reg.clients.push(client.clone());
            reg.waiting.push_back((id, Instant::now(), client));
            peers.push(peer);
        }
        assert!(reg.stop_waiting(3).is_some());
        assert!(reg.stop_waiting(3).is_none(), "not waiting twice");
        assert!(reg.stop_waiting(1).is_some());
        assert!(reg.push_out_oldest(None).is_some());
        assert_eq!(reg.pushed_out, [2]);
        let left: Vec<u64> = reg.waiting.iter().map(|w| w.0).collect();
        assert_eq!(left, [4]);
    }
}
