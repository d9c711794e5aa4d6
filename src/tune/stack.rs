//! Giving back the stack a finished handshake used.
//!
//! An idle connection's cost is mostly its thread's stack, and a stack page, once
//! touched, stays resident until the thread ends. The handshake (tungstenite's request
//! parser keeps 124 header slots on the stack, the `http` types, the log line) runs
//! about 13 KiB deep; the idle read loop only about 7 KiB, most of it the thread's own
//! control block and start-up frames at the top. Without help each idle connection
//! would keep every page the handshake touched once, for its whole life.
//!
//! [`release_unused`] tells the kernel that the part of the current thread's stack below
//! the running code is free (`madvise(MADV_DONTNEED)`): those pages are dropped now and
//! come back zero-filled if the thread ever goes that deep again. glibc does the same to
//! a finished thread's stack before caching it. Measured with 5,000 idle connections
//! (docs/performance.md): 4 resident stack pages per connection became 2, and the whole
//! cost per idle connection went from 21.4 to 13.4 KiB.
//!
//! One of three modules with `unsafe` (with nowait.rs and heap.rs), for libc calls
//! whose contracts are simple: `pthread_getattr_np` reads the bounds of the calling thread's own stack, and
//! `madvise` discards pages strictly inside those bounds and strictly below the deepest
//! frame alive during the call. Nothing lives below the stack pointer (the x86-64 red
//! zone is 128 bytes; the margin below is 512 bytes), and no other thread uses
//! this thread's stack, so nothing that is read again is lost.

/// Bytes below a local of the function that calls `madvise` that are never released:
/// the rest of that small frame and the return address of the call into libc live there
/// while `madvise` runs. (8 KiB would keep a third page resident on every connection:
/// `release_unused` runs about 7 KiB deep.)
#[cfg_attr(
    not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl"))),
    allow(dead_code)
)]
const MARGIN: usize = 512;

/// Drops the resident pages of the calling thread's stack that lie below the current
/// frame (minus a margin). Does nothing when not running on the thread's own stack, or
/// where it is not supported.
#[inline(never)]
pub(crate) fn release_unused() {
    #[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
    linux::release_unused();
}

#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
#[allow(unsafe_code)]
mod linux {
    use super::MARGIN;

    pub(super) fn release_unused() {
        let here = 0u8;
        let here = std::hint::black_box(&here) as *const u8 as usize;
        let Some((low, high)) = stack_bounds() else {
            return;
        };
        if !(low < here && here <= high) {
            return; // not on this thread's own stack (a signal stack, say): leave it
        }
        // SAFETY: sysconf has no preconditions.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            p if p > 0 => p as usize,
            _ => return,
        };
        let low = low.next_multiple_of(page);
        let top = here.saturating_sub(MARGIN) / page * page;
        if top <= low {
            return;
        }
        // SAFETY: [low, top) lies inside this thread's own stack mapping (stack_bounds,
        // and `here` was checked to be on it) and
        // below every live frame of this thread: MARGIN below a local of this function,
        // whose frame is a few dozen bytes and which calls nothing after this but the
        // madvise syscall stub. MADV_DONTNEED on private
        // anonymous memory only makes those pages read back as zeros, and nothing reads
        // below the stack pointer before writing it.
        unsafe {
            libc::madvise(low as *mut libc::c_void, top - low, libc::MADV_DONTNEED);
        }
    }

    /// The calling thread's stack: its lowest usable address (above the guard page) and
    /// its top.
    fn stack_bounds() -> Option<(usize, usize)> {
        // SAFETY: pthread_attr_t is plain data that pthread_getattr_np fills in; it is
        // destroyed exactly once, only after a successful init; the pointers are to locals.
        unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
                return None;
            }
            let mut addr: *mut libc::c_void = std::ptr::null_mut();
            let mut size: libc::size_t = 0;
            let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
            libc::pthread_attr_destroy(&mut attr);
            (ok && !addr.is_null()).then_some((addr as usize, addr as usize + size))
        }
    }
}

#[cfg(all(
    test,
    target_os = "linux",
    any(target_env = "gnu", target_env = "musl")
))]
mod tests {
    use std::hint::black_box;
    use std::io::{Read, Seek, SeekFrom};

    /// Touches about `depth` bytes of stack below the caller and returns an address
    /// near the deepest point.
    #[inline(never)]
    fn go_deep(depth: usize) -> usize {
        let mut block = [0u8; 1024];
        black_box(&mut block);
        let here = black_box(&block) as *const _ as usize;
        if depth <= 1024 {
            here
        } else {
            go_deep(depth - 1024).min(here)
        }
    }

    /// Whether the page holding `addr` is resident, from /proc/self/pagemap (bit 63).
    fn resident(addr: usize) -> bool {
        let mut map = std::fs::File::open("/proc/self/pagemap").expect("pagemap");
        map.seek(SeekFrom::Start((addr / 4096 * 8) as u64))
            .expect("seek");
        let mut entry = [0u8; 8];
        map.read_exact(&mut entry).expect("read");
        u64::from_le_bytes(entry) >> 63 == 1
    }

    #[test]
    fn drops_the_pages_below_and_keeps_the_frames_above() {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                // Live data in this frame must survive; pages 64 KiB below must go.
                let keep: Vec<u8> = (0..=255).collect();
                let mut frame = [0u8; 256];
                frame.copy_from_slice(&keep);
                black_box(&mut frame);
                let deep = go_deep(64 * 1024);
                assert!(resident(deep), "the deep page was touched");
                super::release_unused();
                assert!(!resident(deep), "the deep page was not released");
                assert_eq!(black_box(&frame)[..], keep[..], "a live frame was zeroed");
                // Going deep again works: the pages come back, zero-filled.
                let again = go_deep(64 * 1024);
                assert!(resident(again));
            })
            .expect("spawn")
            .join()
            .expect("the thread must not crash");
    }
}
