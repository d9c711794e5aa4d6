//! Small parts every other part uses: one way to take a lock (lock.rs), client text in
//! the log (escape.rs), credentials hidden (secrets.rs), a warning once per machine a
//! minute (warnings.rs), bounded queues for stdout and the log (spool.rs).
//!
//! Calls nothing of the crate but config.rs.

pub(crate) mod escape;
pub(crate) mod lock;
pub(crate) mod secrets;
pub(crate) mod spool;
pub(crate) mod warnings;
