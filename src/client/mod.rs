//! One client and the bytes to and from it: the `Client` and every byte bound for it
//! (outbox.rs, and in broadcast mode its backlog.rs); the socket or TLS and retries
//! (transport.rs, under guard/'s write floor); the request head read
//! (head.rs) and the HTTP answers written, closing without a reset (response.rs); the
//! list of clients (registry.rs) and the `ServerHandle` a client carries (handle.rs).
//!
//! Knows nothing of routing, rooms or the optional layers (they see its bytes through
//! the outbox's `Watch` and the transport's `Encryption`): it may call only guard/,
//! tune/, util/ and the root's config.rs and frame.rs.

pub(crate) mod backlog;
pub(crate) mod handle;
pub(crate) mod head;
pub(crate) mod outbox;
pub(crate) mod registry;
pub(crate) mod response;
pub(crate) mod transport;
