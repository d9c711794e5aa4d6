//! Giving freed message buffers back to the system after a burst.
//!
//! A connection that goes quiet frees the buffers its messages needed (`tune/quiet.rs`
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
//! `malloc_trim`. Like stack.rs and nowait.rs, a few `unsafe` libc calls: this one,
//! [`bound_arenas`] and [`address_space_limit`].
//!
//! ## One malloc arena
//!
//! glibc gives threads up to 8 × cores malloc arenas, and on 64-bit each one *reserves*
//! 64 MiB of address space (1 MiB on 32-bit). Under an address-space limit (`ulimit -v`,
//! `prlimit --as`, a 32-bit board's 3 GiB) that reserve, not what a connection uses, is
//! what runs out: with 256 MiB, tinyws aborted on `memory allocation of 7 bytes failed`
//! after 347 echo connections, and after 214 in broadcast mode. With one arena
//! the same limit holds 1,500 echo or 1,000 broadcast connections. So [`bound_arenas`]
//! sets `M_ARENA_MAX` to [`ARENAS`] at startup where address space is limited (a
//! `RLIMIT_AS`, or a 32-bit target), unless `MALLOC_ARENA_MAX` or
//! `GLIBC_TUNABLES=glibc.malloc.arena_max=N` says otherwise (the environment wins).
//! Without such a limit the reserve costs nothing real, and one arena for thousands of
//! threads fragments the heap: glibc's default stays.

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

/// The malloc arenas tinyws asks glibc for. Measured on the benchmark's echo and
/// broadcast loads (docs/performance.md, "One malloc arena"): within the noise of the
/// 2-core machine against glibc's default, while 2 arenas already cost 64 MiB more of
/// address space.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
pub(crate) const ARENAS: usize = 1;

/// What [`bound_arenas`] found or did, for the memory budget (budget.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Only glibc builds make Bounded and Default; elsewhere they are matched, never made.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
pub(crate) enum Arenas {
    /// At most this many arenas: set by tinyws, or read from the environment.
    Bounded(usize),
    /// glibc's default (8 × cores on 64-bit): the environment asked for it in a form
    /// not read here, or other threads were already running.
    Default,
    /// Not glibc: no per-thread arenas to reserve address space.
    #[cfg_attr(all(target_os = "linux", target_env = "gnu"), allow(dead_code))]
    NotGlibc,
}

/// Limits glibc's malloc arenas to [`ARENAS`], unless the environment sets a limit
/// (`MALLOC_ARENA_MAX`, or `glibc.malloc.arena_max` in `GLIBC_TUNABLES`), which glibc
/// has already applied. `mallopt` is not thread-safe (glibc's manual: "MT-Unsafe
/// const:mallopt": other threads read the setting without a lock), so it is called only
/// while this is the process's only thread: from [`Server::bind`](crate::Server::bind)
/// in a program that binds before it starts threads (the `tinyws` binary does), and not
/// at all in one that started threads first; then glibc's default stays.
pub(crate) fn bound_arenas() -> Arenas {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if let Some(n) = arenas_from_environment() {
            return n;
        }
        // The reserve only matters where address space is scarce: under a limit
        // (`ulimit -v`, `prlimit --as`) or on a 32-bit target. Elsewhere glibc's default
        // stays: one arena shared by every thread fragments the heap under churn (the
        // soak, waves of 5,000 clients: 13 MiB resident after each wave with the default,
        // 30 then 56 MiB with one arena).
        if (cfg!(target_pointer_width = "64") && address_space_limit().is_none())
            || !only_thread()
            || !set_arena_max(ARENAS)
        {
            return Arenas::Default;
        }
        Arenas::Bounded(ARENAS)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    Arenas::NotGlibc
}

/// The arena limit the environment gives glibc, if any (glibc read it at startup).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn arenas_from_environment() -> Option<Arenas> {
    let value = |v: &str| match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => Arenas::Bounded(n),
        _ => Arenas::Default,
    };
    if let Some(v) = std::env::var_os("MALLOC_ARENA_MAX") {
        return Some(value(&v.to_string_lossy()));
    }
    let tunables = std::env::var_os("GLIBC_TUNABLES")?;
    let tunables = tunables.to_string_lossy();
    tunables
        .split(':')
        .find_map(|t| t.strip_prefix("glibc.malloc.arena_max="))
        .map(value)
}

/// Whether the calling thread is the process's only one (/proc/self/task has one entry).
/// Only this thread could start another, so the answer stays true until it does.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn only_thread() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.take(2).count() == 1)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_arena_max(n: usize) -> bool {
    let Ok(n) = libc::c_int::try_from(n) else {
        return false;
    };
    // SAFETY: mallopt takes plain integers. Its one hazard, other threads reading the
    // setting while it changes, is excluded: the caller checked that no other thread
    // exists. glibc returns 1 on success.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, n) == 1 }
}

/// The cores glibc counts for its arena limit, at worst: the online ones (`sysconf`; glibc
/// before 2.35 counts those, later ones the CPUs the process may run on, never more).
/// Not std's `available_parallelism`: it also lowers the count to a cgroup's CPU quota,
/// which glibc ignores (the memory budget would count too few arenas), and its cgroup
/// parsing cost 17 KB of the binary.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn glibc_cores() -> u64 {
    // SAFETY: sysconf only reads a system setting; it has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
}

/// Only glibc has arenas to count ([`Arenas::Default`] comes only from it).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn glibc_cores() -> u64 {
    1
}

/// The soft address-space limit (`RLIMIT_AS`: `ulimit -v`, `prlimit --as`), if any.
#[cfg(unix)]
#[allow(unsafe_code)]
pub(crate) fn address_space_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct, which `limit` is, and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0;
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on most targets, not all
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as u64)
}

#[cfg(not(unix))]
pub(crate) fn address_space_limit() -> Option<u64> {
    None
}

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
