//! An open WebSocket, on its client's thread: connection.rs runs tungstenite's handshake,
//! the read → reply loop and the close handshake; stream.rs is what tungstenite reads
//! and writes (the request head replayed, then the socket; replies batched in the
//! client's outbox); lab.rs gives the frame lab a connection's stream over bytes in
//! memory.
//!
//! Called by server/admission.rs with the upgrade http/ accepted (http/serve.rs builds the
//! `Upgrade`; http/ also names its types); may call the shared state and the handler,
//! layers/ (the trace, the pipes), room/, client/ and below.

pub(crate) mod connection;
pub(crate) mod lab;
pub(crate) mod stream;
