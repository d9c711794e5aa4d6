//! The signals a server program wants, shared by the `tinyws` binary and library users
//! ([`ServerHandle::shutdown_on_signals`]): Ctrl-C (and on Unix SIGTERM and SIGHUP) start
//! the graceful shutdown, 1001 to every client; a second one exits at once.
//!
//! Opt-in, because a library must not take a program's signals without being asked: a
//! program that never calls it keeps the default (Ctrl-C kills it, and its clients see
//! the connection drop without a close frame, 1006).

#[cfg(any(unix, windows))]
use std::time::Duration;

use std::sync::Mutex;

use crate::client::handle::ServerHandle;
use crate::error::Error;
use crate::util::lock::lock;

/// How long the last log lines may take to reach stderr before a second signal exits.
#[cfg(any(unix, windows))]
const LOG_DRAIN: Duration = Duration::from_millis(500);

/// The exit status of a second Ctrl-C: 128 + SIGINT, what a shell reports for it.
#[cfg(any(unix, windows))]
const EXIT_AT_ONCE: i32 = 130;

impl ServerHandle {
    /// Shuts this server down gracefully on Ctrl-C: it stops accepting, sends close 1001
    /// ("going away") to every client and [`run`](crate::Server::run) returns once they
    /// are gone or `shutdown_timeout` has passed. A second Ctrl-C exits the process at once
    /// (status 130), for a shutdown that takes too long.
    ///
    /// On Unix: SIGINT (Ctrl-C), SIGTERM (`kill`, systemd) and SIGHUP (the terminal was
    /// closed); a second SIGINT or SIGTERM exits, a second SIGHUP does not (closing a
    /// terminal can deliver two). On Windows: Ctrl-C and Ctrl-Break, through the `ctrlc`
    /// crate; closing the console window ends the process as soon as the handler
    /// returns, so stop with Ctrl-C. Elsewhere (e.g. WASI) it does nothing.
    ///
    /// Several servers in one process may each ask: one signal shuts down every one of
    /// them that is still running. A server stopped some other way (its
    /// [`shutdown`](Self::shutdown)) is left out; only when none is running or shutting
    /// down any more does a signal exit the process at once (the program asked for the
    /// signals, and nothing else handles them). Asking twice for the same server is the
    /// same as once. On Unix the handlers replace any the program installed before for
    /// these three signals.
    ///
    /// The signals are watched by one small thread per process (64 KiB of stack, counted
    /// in the memory budget), blocked until a signal comes: no polling. Call it after
    /// [`Server::bind`](crate::Server::bind) (or [`spawn`](crate::Server::spawn)).
    ///
    /// ```no_run
    /// use tinyws::{Config, Echo, Server};
    ///
    /// let server = Server::bind(Config::default(), Echo)?;
    /// server.handle().shutdown_on_signals()?; // Ctrl-C: 1001 to every client
    /// let stopped = server.run();
    /// println!("{stopped}");
    /// # Ok::<(), tinyws::Error>(())
    /// ```
    pub fn shutdown_on_signals(&self) -> Result<(), Error> {
        let mut watched = lock(&WATCHED);
        if !watched.servers.iter().any(|w| w.handle.same(self)) {
            watched.servers.push(Watched {
                handle: self.clone(),
                signalled: false,
            });
        }
        if watched.started {
            return Ok(());
        }
        match watch() {
            Ok(()) => {
                watched.started = true;
                Ok(())
            }
            Err(e) => {
                watched.servers.retain(|w| !w.handle.same(self));
                Err(Error::Signals(e))
            }
        }
    }
}

/// Every server of this process that asked for the signals, and whether the one
/// watcher runs.
struct Registry {
    servers: Vec<Watched>,
    started: bool,
}

struct Watched {
    handle: ServerHandle,
    /// A signal started its shutdown (so the next one is the "again" of the rule).
    signalled: bool,
}

static WATCHED: Mutex<Registry> = Mutex::new(Registry {
    servers: Vec::new(),
    started: false,
});

/// What arrived, for the second-signal rule.
#[cfg(any(unix, windows))]
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arrived {
    /// SIGINT, SIGTERM, Ctrl-C, Ctrl-Break: a second one exits.
    Stop(&'static str),
    /// SIGHUP: a second one does not (closing a terminal can deliver two).
    Hangup,
}

#[cfg(any(unix, windows))]
impl Arrived {
    fn name(self) -> &'static str {
        match self {
            Arrived::Stop(name) => name,
            Arrived::Hangup => "signal 1 (SIGHUP)",
        }
    }
}

/// A signal came: shut down every watched server still running; if none is, the
/// shutdown takes too long for whoever sent it (or every server was stopped by code):
/// exit at once, except on a repeated SIGHUP.
#[cfg(any(unix, windows))]
fn arrived(signal: Arrived) {
    let mut watched = lock(&WATCHED);
    let mut started_any = false;
    for w in watched
        .servers
        .iter_mut()
        .filter(|w| !w.handle.is_stopping())
    {
        log::info!(
            "{}{}: shutting down (send it again to exit at once)",
            w.handle.control.prefix(),
            signal.name()
        );
        w.signalled = true;
        w.handle.shutdown();
        started_any = true;
    }
    if started_any {
        return;
    }
    let shutting_down = watched.servers.iter().any(|w| w.signalled);
    if signal == Arrived::Hangup && shutting_down {
        log::info!("{} again: still shutting down", signal.name());
        return;
    }
    if shutting_down {
        log::warn!("{} while shutting down: exiting at once", signal.name());
    } else {
        log::warn!(
            "{}: every server that asked for the signals was already stopped: exiting at once",
            signal.name()
        );
    }
    exit_at_once();
}

/// Unix: a handler for SIGINT, SIGTERM and SIGHUP writes which one came into a pipe,
/// and one thread reads the pipe and calls [`arrived`] (the self-pipe trick). It works
/// whatever the program's threads block, unlike a thread in `sigwait`, and telling the
/// three apart is what a repeated SIGHUP needs. It replaced signal-hook's iterator, the
/// same mechanism, for 17 KB of the binary (docs/performance.md, "Binary size"); unlike
/// it, it does not chain to a handler the program installed before.
#[cfg(unix)]
mod pipe {
    use std::io::Read;
    use std::os::fd::{AsRawFd, IntoRawFd};
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

    use super::Arrived;

    const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    /// The pipe's write end, for the handler; never closed once set.
    static WRITE_END: AtomicI32 = AtomicI32::new(-1);

    /// Which of [`SIGNALS`] is in the pipe and not yet read. The handler writes a signal
    /// only if it is not already there, so the pipe holds at most 3 bytes: its write can
    /// neither block nor fail, and so leaves `errno` as the interrupted code had it (libc
    /// sets it only on failure). A signal repeated before the thread reads the first
    /// counts once, as with signal-hook's iterator.
    static PENDING: [AtomicBool; 3] = [const { AtomicBool::new(false) }; 3];

    /// The signal handler: async-signal-safe, it only touches atomics and calls write(2).
    extern "C" fn on_signal(signal: libc::c_int) {
        let Some(i) = SIGNALS.iter().position(|&s| s == signal) else {
            return;
        };
        if PENDING[i].swap(true, Ordering::AcqRel) {
            return;
        }
        let byte = i as u8;
        // SAFETY: write(2) is async-signal-safe; it reads one byte from this frame; the
        // descriptor is the pipe's write end, set before any handler was installed and
        // never closed.
        #[allow(unsafe_code)]
        unsafe {
            libc::write(
                WRITE_END.load(Ordering::Acquire),
                (&raw const byte).cast(),
                1,
            )
        };
    }

    pub(super) fn watch() -> std::io::Result<()> {
        let (mut reader, writer) = std::io::pipe()?;
        WRITE_END.store(writer.as_raw_fd(), Ordering::Release);
        // Blocked in read(2) until a signal comes: no polling.
        std::thread::Builder::new()
            .name("tinyws-signals".into())
            .stack_size(crate::config::HELPER_STACK)
            .spawn(move || {
                let mut byte = [0u8];
                loop {
                    match reader.read(&mut byte) {
                        Ok(1) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        // Not expected: the write end is never closed.
                        Ok(_) => return,
                        Err(e) => {
                            log::error!("reading the signal pipe failed, signals are ignored from now on: {e}");
                            return;
                        }
                    }
                    let i = usize::from(byte[0]).min(SIGNALS.len() - 1);
                    // Cleared first: one that comes while this one is handled is the next.
                    PENDING[i].store(false, Ordering::Release);
                    super::arrived(match SIGNALS[i] {
                        libc::SIGHUP => Arrived::Hangup,
                        libc::SIGTERM => Arrived::Stop("signal 15 (SIGTERM)"),
                        _ => Arrived::Stop("signal 2 (SIGINT)"),
                    });
                }
            })?;
        // The handler may write to it at any time from now on: never closed.
        let _ = writer.into_raw_fd();
        SIGNALS.iter().try_for_each(|&signal| install(signal))
    }

    /// Makes [`on_signal`] the handler of `signal`.
    #[allow(unsafe_code)]
    fn install(signal: libc::c_int) -> std::io::Result<()> {
        // SAFETY: an all-zero sigaction is a valid value (no flags, empty mask); the
        // handler is an `extern "C" fn(c_int)`, as sa_sigaction without SA_SIGINFO
        // expects; sigaction reads `action` and writes nothing (no old action asked).
        // SA_RESTART: the program's blocking calls resume after the handler instead of
        // failing with EINTR.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

#[cfg(unix)]
use pipe::watch;

/// Windows has no signals: Ctrl-C, Ctrl-Break and closing the console window arrive as
/// console control events, which the `ctrlc` crate (feature `termination`) delivers to
/// one thread of its own; it allows one handler per process, which is all this needs.
#[cfg(windows)]
fn watch() -> std::io::Result<()> {
    ctrlc::set_handler(|| arrived(Arrived::Stop("Ctrl-C")))
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Neither Unix nor Windows (e.g. WASI): no way to ask for a graceful shutdown; the
/// server runs until the process is killed.
#[cfg(not(any(unix, windows)))]
fn watch() -> std::io::Result<()> {
    Ok(())
}

/// The second-signal rule: the shutdown takes too long for whoever sent it.
#[cfg(any(unix, windows))]
fn exit_at_once() -> ! {
    // Bounded: the terminal may be the paused one (spool.rs).
    crate::util::spool::Stderr::drain(LOG_DRAIN);
    std::process::exit(EXIT_AT_ONCE);
}
