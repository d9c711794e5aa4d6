//! The one way tinyws takes a lock and waits on a condition variable.
//!
//! A panic in a handler unwinds through code that may hold one of the server's locks,
//! which poisons it. Every structure behind these locks stays consistent at every point
//! where a panic can happen (whole frames queued, counts updated together), so a
//! poisoned lock is still usable: one client's panic must not take the rest of the
//! server with it. Hence no `lock().unwrap()` anywhere.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Locks `mutex`, poisoned or not (see the module comment).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sleeps on `cond` until woken (or spuriously).
pub(crate) fn wait<'a, T>(cond: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cond.wait(guard).unwrap_or_else(|p| p.into_inner())
}

/// Sleeps on `cond` until `done` holds or `deadline` passes; returns the guard and
/// whether `done` holds. `done` is checked first, under the lock, so a wake-up between
/// the caller's last look and this sleep is never lost.
pub(crate) fn wait_until<'a, T>(
    cond: &Condvar,
    mut guard: MutexGuard<'a, T>,
    deadline: Instant,
    mut done: impl FnMut(&mut T) -> bool,
) -> (MutexGuard<'a, T>, bool) {
    loop {
        if done(&mut guard) {
            return (guard, true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (guard, false);
        }
        guard = cond
            .wait_timeout(guard, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_poisoned_lock_is_still_usable() {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 2);
    }

    #[test]
    fn wait_until_returns_when_done_or_at_the_deadline() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let (m, c) = &*pair;
        let (g, done) = wait_until(
            c,
            lock(m),
            Instant::now() + Duration::from_millis(20),
            |v| *v,
        );
        drop(g);
        assert!(!done, "nothing set it: the deadline ends the wait");
        let p2 = pair.clone();
        let setter = std::thread::spawn(move || {
            *lock(&p2.0) = true;
            p2.1.notify_all();
        });
        let (g, done) = wait_until(c, lock(m), Instant::now() + Duration::from_secs(10), |v| *v);
        assert!(done && *g);
        drop(g);
        setter.join().unwrap();
    }
}
