//! The registry of one server's connections: every connection that has a thread, those
//! still waiting for their request head (guard/slots.rs), and the rule admission
//! (admission.rs) refuses by.

use std::net::Shutdown;
use std::sync::Arc;

use crate::client::outbox::Client;
use crate::guard::slots::{Waiter, Waiting};

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
}

/// A client as the push-out rule sees it.
impl Waiter for Client {
    fn is_silent(&self) -> bool {
        self.transport().is_silent()
    }

    fn cut(&self) {
        let _ = self.socket().shutdown(Shutdown::Both);
    }

    fn name(&self) -> String {
        format!("#{} {}", self.id(), self.peer_addr())
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
        // Pushed out, still ending: its thread is there.
        let third = reg.clients.iter().last().unwrap().clone();
        reg.waiting.push(3, std::time::Instant::now(), third);
        reg.waiting.make_room(
            3,
            3,
            3,
            "127.0.0.1:1".parse().unwrap(),
            std::time::Instant::now(),
        );
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
}
