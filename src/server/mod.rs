//! The server itself: binding the port and the accept loop (accept.rs), a slot and a
//! thread for each connection (admission.rs), the run handle and the shutdown
//! (running.rs), Ctrl-C (signals.rs), and the worst case against the memory limits
//! (budget.rs).
//!
//! The top of the crate: it may call every other part, and only lib.rs calls it.

pub(crate) mod accept;
pub(crate) mod admission;
pub(crate) mod budget;
pub(crate) mod running;
pub(crate) mod signals;
