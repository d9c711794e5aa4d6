//! The optimisations: measured, kept, and fenced off here so that the rest of `src/` reads
//! without them.
//!
//! Everything in this folder makes tinyws cheaper (less memory per idle connection, fewer
//! system calls and wake-ups per message) without changing what any client sees. A
//! reader can skip the folder: each item below says what the core may take it to mean,
//! and where an optimisation works only on Linux, elsewhere it is a plain no-op (or the
//! plain way of doing the same thing). The measurements behind each one are in
//! docs/performance.md, "What was tuned".
//!
//! | item | read it as | what it saves |
//! |---|---|---|
//! | [`Reads`] (reads.rs) | "read from the socket into `out`" | system calls on large messages; the idle read buffer |
//! | `Reads::preload`, `has_buffered` | "read these bytes first"; "no bytes wait" | (the early frames behind the head, replayed; replies flushed just before a read that would block) |
//! | [`IDLE_READ`] | tungstenite's read buffer size | the memory an idle connection's tungstenite keeps |
//! | [`Quiet`] (quiet.rs) | "the read timeout is the keepalive timer" | memory a quiet connection no longer needs |
//! | `Quiet::timed_out` | `false`: "the keepalive interval passed" | (a timeout that only gave memory back is read again) |
//! | [`keep`], [`release_idle`] (quiet.rs) | "drop the buffer"; nothing | an allocation per burst of replies, and the outbox's buffer while quiet |
//! | [`send_now`] (nowait.rs) | "could not send now" (`WouldBlock`) | a writer-thread wake-up per small broadcast; the write floor's system calls when a write fits |
//! | [`Threads`] (threads.rs), [`MAX_SPARE`] | "run this on a new thread"; how many may wait | thread start-up on a burst of connections |
//! | [`bound_arenas`] (heap.rs) | nothing | address space under `ulimit -v`, on 32-bit boards |
//! | stack.rs, used by [`Quiet`] | nothing | stack pages the handshake touched |
//! | [`Scanner`] (scan.rs), used by [`Reads`] and the trace | nothing | nothing itself: it finds the frame edges [`Reads`] needs |
//!
//! A few things stay outside, where they must: the `#[inline(never)]` on the large
//! functions of http/serve.rs and ws/connection.rs (so the idle read loop's stack stays
//! shallow: stack.rs), and the request parser's header slots on the heap instead of the
//! stack (http/route.rs). The folder calls nothing outside it but frame.rs and
//! util/lock.rs: what it needs of a connection's stream it declares ([`Quiets`], which
//! ws/stream.rs implements).

mod heap;
mod nowait;
mod quiet;
mod reads;
mod scan;
mod stack;
mod threads;

pub(crate) use heap::{Arenas, address_space_limit, bound_arenas, glibc_cores};
pub(crate) use nowait::{DIRECT_MAX, send_now, send_now_vectored};
pub(crate) use quiet::{Quiet, Quiets, keep, release_idle};
pub(crate) use reads::{IDLE_READ, Reads};
pub(crate) use scan::{Piece, Scanner};
pub(crate) use threads::{MAX_SPARE, Threads};
