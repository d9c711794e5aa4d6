//! One request, from its head to its answer or its upgrade. serve.rs reads the head and
//! answers every plain request from start to finish (the refusals, the page, the
//! inspector, files); route.rs, the routing step, decides what the request is;
//! handshake.rs holds the checks of an upgrade (RFC 6455 §4.2.1, the Origin, the
//! subprotocol). An accepted upgrade goes on to ws/.
//!
//! Called by server/admission.rs; may call ws/ (the upgrade it hands over), the shared
//! state, layers/ and everything below them, never server/.

pub(crate) mod handshake;
pub(crate) mod route;
pub(crate) mod serve;
