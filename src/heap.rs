//! Giving freed message buffers back to the system after a burst.
//!
//! A connection that goes quiet frees the buffers its messages needed (`conn.rs`
//! `shrink`), but glibc's malloc keeps freed memory in its arenas for the next
//! allocation; it returns only what lies at the very top of an arena. So after a burst
//! in which many clients sent large messages at once, the server's RSS stays at the
//! burst's peak while it is idle again. Measured with 1,000 connections that each
//! echoed one 60 KB message: 136 KiB of RSS per idle connection; `malloc_trim(0)`, which
//! hands every whole free page in every arena back to the kernel, brought that to
//! 15.7 KiB (14 KiB is a connection that never sent anything).
//!
//! [`freed`] counts the bytes quiet connections report; each time the count passes
//! [`TRIM_AFTER`], the thread that passes it calls `malloc_trim(0)`. So a trim (it walks
//! every arena's free lists, under each arena's lock, so threads allocating meanwhile may
//! wait for it) runs at most once per 4 MiB freed, and only on a connection that has
//! been quiet for a second; what is left untrimmed after a burst is at most about 4 MiB.
//! Only messages over half a KiB count (smaller ones grow no buffer).
//!
//! Only with glibc: musl's allocator gives freed memory back by itself, and has no
//! `malloc_trim`. Like stack.rs and nowait.rs, one `unsafe` libc call.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes freed by quiet connections after which the heap is trimmed.
pub(crate) const TRIM_AFTER: usize = 4 << 20;

/// Bytes freed since the last trim.
static FREED: AtomicUsize = AtomicUsize::new(0);

/// A connection freed about `bytes` of buffers. Trims the heap when the total since the
/// last trim passes [`TRIM_AFTER`]; returns whether this call did.
pub(crate) fn freed(bytes: usize) -> bool {
    if bytes == 0 {
        return false;
    }
    // Add, or take the whole count if this passes the mark: then exactly one thread trims
    // per mark passed, and no other thread's bytes are lost.
    let mut count = FREED.load(Ordering::Relaxed);
    loop {
        let total = count.saturating_add(bytes);
        let passes = total >= TRIM_AFTER;
        let next = if passes { 0 } else { total };
        match FREED.compare_exchange_weak(count, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) if passes => break,
            Ok(_) => return false,
            Err(now) => count = now,
        }
    }
    trim();
    true
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim has no preconditions; it takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_each_time_the_freed_bytes_pass_the_mark() {
        // FREED is shared with the other tests of this process, which may free a few KiB
        // meanwhile; steps of a whole quarter of the mark dwarf that.
        let quarter = TRIM_AFTER / 4;
        let mut trims = 0;
        for _ in 0..16 {
            trims += usize::from(freed(quarter));
        }
        assert_eq!(trims, 4, "trims for 4 × the mark");
        assert!(!freed(0), "nothing freed, no trim");
    }
}
