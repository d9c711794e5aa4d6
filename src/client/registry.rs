//! The registry of one server's connections: every connection that has a thread, those
//! still waiting for their request head, and the rules admission (admission.rs) applies
//! to them.

use std::collections::{BTreeMap, HashMap, HashSet};
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
    pub(crate) clients: HashMap<u64, Arc<Client>>,
    /// Those that have not delivered a whole request head yet, oldest (lowest id) first,
    /// with when they were accepted.
    pub(crate) waiting: BTreeMap<u64, (Instant, Arc<Client>)>,
    /// Pushed out of `waiting` to make room; their threads are ending.
    pub(crate) pushed_out: HashSet<u64>,
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
    /// ending included (comparing `live()` with it let up to [`MAX_PUSHED_OUT`] threads
    /// past the budget); `--max-connections` counts the slots held, `live()`.
    pub(crate) fn refusal(&self, max: usize, fit: usize) -> Option<Refusal> {
        if fit < max && self.clients.len() >= fit {
            Some(Refusal::Memory)
        } else if self.live() >= max {
            Some(Refusal::Busy)
        } else {
            None
        }
    }

    /// Closes the oldest connection that has sent nothing yet, or else the oldest still
    /// waiting for its request head, to make room; only among those accepted before
    /// `before`, if given. Returns it, or `None` if there is none (or too many pushed out
    /// are still ending).
    pub(crate) fn push_out_oldest(&mut self, before: Option<Instant>) -> Option<Arc<Client>> {
        if self.pushed_out.len() >= MAX_PUSHED_OUT {
            return None;
        }
        let old = |(at, _): &&(Instant, Arc<Client>)| before.is_none_or(|b| *at <= b);
        // Look at a few of the oldest only: this runs on the accept loop.
        let id = self
            .waiting
            .values()
            .take(32)
            .filter(old)
            .find(|(_, c)| c.transport().is_silent())
            .or_else(|| self.waiting.values().next().filter(old))
            .map(|(_, c)| c.id())?;
        let (_, victim) = self.waiting.remove(&id)?;
        self.pushed_out.insert(id);
        // Its thread's read returns at once (end of stream), and it ends quietly.
        let _ = victim.socket().shutdown(Shutdown::Both);
        self.pushed_since_warn += 1;
        Some(victim)
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
            let (client, peer) = Client::over_loopback(None);
            reg.clients.insert(id, Arc::new(client));
            peers.push(peer);
        }
        reg.pushed_out.insert(3); // still ending: its thread is there
        assert_eq!(reg.live(), 2);
        // Memory fits 3 of --max-connections 10: three threads exist, refuse.
        assert_eq!(reg.refusal(10, 3), Some(Refusal::Memory));
        assert_eq!(reg.refusal(10, 4), None);
        // Everything fits: only the slots count, and one is free again.
        assert_eq!(reg.refusal(3, 3), None);
        assert_eq!(reg.refusal(2, 2), Some(Refusal::Busy));
    }
}
