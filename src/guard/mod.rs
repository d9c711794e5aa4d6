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
//! | [`floor::Paced`] (floor.rs), `Pace` | the socket with a write timeout (`SO_SNDTIMEO`) | a client that reads a trickle, or nothing, holding a reply, a file, its room's writer or another client's `--stdin` line without end | tests/write_rate.rs (8), files.rs `a_file_answer_holds_a_slot_and_a_client_that_reads_nothing_is_cut_after_the_write_timeout` |
//! | [`floor::write_failure`]`(e)`, [`floor::is_stalled`]`(e)` | `e`; "the write timed out" | (the floor's timeout as [`floor::WriteStalled`], so that a stalled client's end is told by type, not by the message text) | tests/write_rate.rs |
//! | [`tcp::progress`] (tcp.rs) | "how far the client has read" | a room member that reads nothing passing for a slow reader, and a trickle passing for a reader under the write floor (Linux; elsewhere the bytes written count) | room.rs `at_the_defaults_a_slow_steady_reader_is_never_cut_and_a_stuck_one_is`, broadcast.rs `a_member_that_stops_reading_gets_a_close_1008_when_it_reads_again`, tcp.rs unit test |
//! | [`tcp::has_input`] | "the client spoke" | silent sockets hoarding the connection slots (client/registry.rs pushes them out first) | room.rs `silent_sockets_cannot_hoard_the_handshake_slots` |
//! | [`warnings::from`] (warnings.rs) | `Some("")`: "warn" | one client writing thousands of `warn` lines a second, filling a small board's flash | binary.rs `many_refused_origins_from_one_machine_write_one_warning`, warnings.rs unit tests |
//!
//! It may call tune/, util/ and the root's config.rs and frame.rs; every part above it
//! may call it. One of the few places with `unsafe` (tcp.rs: one `recv(2)` and one
//! `getsockopt(2)`).

pub(crate) mod escape;
pub(crate) mod floor;
pub(crate) mod tcp;
pub(crate) mod warnings;
