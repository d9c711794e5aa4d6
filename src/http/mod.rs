//! One request, from its head to its answer or its upgrade. serve.rs reads the head,
//! hands the teaching layer its own paths first (layers/teach/answer.rs), and answers
//! the rest: the refusals and the page itself, a file through layers/files.rs `serve`;
//! route.rs, the routing step, decides what the request is;
//! handshake.rs holds the checks of an upgrade (RFC 6455 §4.2.1, the Origin, the
//! subprotocol). An accepted upgrade goes on to ws/.
//!
//! Called by server/admission.rs; may call ws/ (the upgrade it hands over), the shared
//! state, layers/ and everything below them, never server/.

pub(crate) mod handshake;
pub(crate) mod route;
pub(crate) mod serve;
