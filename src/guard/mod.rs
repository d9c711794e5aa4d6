//! The defences against hostile clients: code whose only job is that one client cannot
//! hurt the others or the server, fenced off here so that the rest of `src/` reads
//! without it.
//!
//! A client may send anything, or nothing, as slowly as it likes. Nothing in this folder
//! changes what a well-behaved client sees. A reader following one echo can skip the
//! folder: each item below says what a call may be read as, what it protects against, and
//! which tests pin it.
//!
//! | item | read it as | protects against | pinned by |
//! |---|---|---|---|
//! | [`escape::client`] (escape.rs), `line`, `guard`, `shown_headers` | `x` (the headers as `name: "value"` pairs, credentials hidden) | client text that drives the terminal, forges or splits a log line, reorders one with bidirectional controls | tests/escape.rs, hostile.rs `the_trace_escapes_control_bytes_from_the_network`, escape.rs unit tests |
//! | [`warnings::from`] (warnings.rs) | `Some("")`: "warn" | one client writing thousands of `warn` lines a second, filling a small board's flash | binary.rs `many_refused_origins_from_one_machine_write_one_warning`, warnings.rs unit tests |
//!
//! It may call tune/, util/ and the root's config.rs and frame.rs; every part above it
//! may call it.

pub(crate) mod escape;
pub(crate) mod warnings;
