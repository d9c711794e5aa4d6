//! The threads that serve connections: one per client, kept for a moment afterwards.
//!
//! Every client gets its own OS thread for its whole life. Starting a thread and ending
//! it costs about 55 µs of CPU on the benchmark machine (`clone`, the stack and its guard
//! page, the signal stack Rust sets up, `munmap` at exit): about half of what a whole
//! handshake costs the server. So a thread whose client is gone waits a moment
//! ([`SPARE_WAIT`]) for the next client instead of exiting, and at most [`MAX_SPARE`] wait.
//! A burst of connections (a class joining, a reconnect storm, a benchmark) reuses them;
//! an idle server has none left after `SPARE_WAIT`, and a waiting thread uses no CPU (it
//! sleeps on a condition variable and wakes once, to exit).

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How long a thread without a client waits for a new one before exiting.
pub(crate) const SPARE_WAIT: Duration = Duration::from_secs(2);
/// At most this many threads wait; one more finishing its client exits at once.
pub(crate) const MAX_SPARE: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct Threads {
    state: Mutex<State>,
    /// Signalled when a job is queued for a waiting thread, or at shutdown.
    wake: Condvar,
    stack_size: usize,
}

#[derive(Default)]
struct State {
    /// Threads waiting for a job.
    waiting: usize,
    /// Jobs handed to waiting threads and not yet picked up: never more than `waiting`.
    jobs: VecDeque<Job>,
    stopping: bool,
}

impl Threads {
    pub(crate) fn new(stack_size: usize) -> Arc<Threads> {
        Arc::new(Threads {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            stack_size,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        crate::util::lock::lock(&self.state)
    }

    /// Runs `job` on a waiting thread, or on a new one. Fails only if a new thread is
    /// needed and the system will not start one (then `job` is dropped, not run).
    pub(crate) fn run(self: &Arc<Self>, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let mut state = self.state();
        if state.waiting > state.jobs.len() {
            state.jobs.push_back(Box::new(job));
            drop(state);
            self.wake.notify_one();
            return Ok(());
        }
        drop(state);
        let threads = self.clone();
        thread::Builder::new()
            .stack_size(self.stack_size)
            .spawn(move || threads.work(Box::new(job)))
            .map(drop)
    }

    /// Wakes the waiting threads so they exit now (server shutdown).
    pub(crate) fn stop(&self) {
        self.state().stopping = true;
        self.wake.notify_all();
    }

    fn work(&self, first: Job) {
        let mut next = Some(first);
        while let Some(job) = next {
            // A panic here (a bug: handler panics are caught in connection.rs) ends this
            // thread, as it would without reuse; the count of waiting threads is only
            // raised in `next_job`, so it stays right.
            job();
            next = self.next_job();
        }
    }

    /// Waits up to `SPARE_WAIT` for the next job, unless enough threads wait already.
    fn next_job(&self) -> Option<Job> {
        let mut state = self.state();
        if state.waiting >= MAX_SPARE || state.stopping {
            return None;
        }
        state.waiting += 1;
        let deadline = Instant::now() + SPARE_WAIT;
        // Jobs first: one queued for us counts on us even if our time is up.
        let (mut state, _) = crate::util::lock::wait_until(&self.wake, state, deadline, |s| {
            !s.jobs.is_empty() || s.stopping
        });
        state.waiting -= 1;
        state.jobs.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn thread_id_of(threads: &Arc<Threads>) -> thread::ThreadId {
        let (tx, rx) = mpsc::channel();
        threads
            .run(move || tx.send(thread::current().id()).expect("send"))
            .expect("run");
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the job ran")
    }

    /// Waits (bounded) until `n` threads wait for work.
    fn until_waiting(threads: &Threads, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while threads.state().waiting != n {
            assert!(Instant::now() < deadline, "never {n} waiting threads");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_finished_thread_serves_the_next_job() {
        let threads = Threads::new(64 * 1024);
        let first = thread_id_of(&threads);
        until_waiting(&threads, 1);
        assert_eq!(
            thread_id_of(&threads),
            first,
            "the waiting thread was reused"
        );
        threads.stop();
        until_waiting(&threads, 0);
    }

    #[test]
    fn jobs_at_once_get_threads_of_their_own_and_spares_are_capped() {
        let threads = Threads::new(64 * 1024);
        let n = MAX_SPARE + 4;
        let gate = Arc::new(std::sync::Barrier::new(n + 1));
        for _ in 0..n {
            let gate = gate.clone();
            // Each job blocks until all have started: only possible on n threads.
            threads
                .run(move || {
                    gate.wait();
                })
                .expect("run");
        }
        gate.wait();
        until_waiting(&threads, MAX_SPARE);
        thread::sleep(Duration::from_millis(50));
        assert_eq!(
            threads.state().waiting,
            MAX_SPARE,
            "the extra threads exited"
        );
        threads.stop();
        until_waiting(&threads, 0);
    }

    #[test]
    fn a_waiting_thread_exits_after_the_linger() {
        let threads = Threads::new(64 * 1024);
        thread_id_of(&threads);
        until_waiting(&threads, 1);
        let deadline = Instant::now() + SPARE_WAIT + Duration::from_secs(3);
        while threads.state().waiting != 0 {
            assert!(Instant::now() < deadline, "the spare thread never exited");
            thread::sleep(Duration::from_millis(20));
        }
    }
}
