//! Broadcast mode, the chat room: broadcast.rs the room (its members, one order of
//! messages for all, the pacing, the cut of a member that stalls), writer.rs each
//! member's writer thread.
//!
//! Called by ws/ (a member joins, its messages go out), server/, the shared state and
//! layers/rooms.rs; may call client/, tune/, util/ and the root's config.rs and frame.rs.

pub(crate) mod broadcast;
pub(crate) mod writer;
