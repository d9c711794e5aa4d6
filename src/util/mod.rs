//! Small parts every other part uses: one way to take a lock (lock.rs), a timeout told
//! from a failure (io.rs), a connection's name on its log lines (tag.rs), credentials
//! hidden (secrets.rs), bounded queues for stdout and the log (spool.rs).
//!
//! Calls nothing of the crate but config.rs.

pub(crate) mod io;
pub(crate) mod lock;
pub(crate) mod secrets;
pub(crate) mod spool;
pub(crate) mod tag;
