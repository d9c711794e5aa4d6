//! The signals a server program wants, shared by the `tinyws` binary and library users
//! ([`ServerHandle::shutdown_on_signals`]): Ctrl-C (and on Unix SIGTERM and SIGHUP) start
//! the graceful shutdown, 1001 to every client; a second one exits at once.
//!
//! Opt-in, because a library must not take a program's signals without being asked: a
//! program that never calls it keeps the default (Ctrl-C kills it, and its clients see
//! the connection drop without a close frame, 1006).

#[cfg(any(unix, windows))]
use std::time::Duration;

use crate::error::Error;
use crate::handle::ServerHandle;

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
    /// terminal can deliver two). A signal that comes after the server was stopped some
    /// other way (its [`shutdown`](Self::shutdown)) exits at once too: the program asked
    /// for the signal and nothing else handles it any more. On Windows: Ctrl-C and
    /// Ctrl-Break, through the `ctrlc` crate, which allows one handler per process (a
    /// second call fails); closing the console window ends the process as soon as the
    /// handler returns, so stop with Ctrl-C. Elsewhere (e.g. WASI) it does nothing.
    ///
    /// The signals are watched by one small thread (64 KiB of stack, counted in the
    /// memory budget), blocked until a signal comes: no polling. Call it once per server,
    /// after [`Server::bind`](crate::Server::bind) (or [`spawn`](crate::Server::spawn)).
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
        watch(self.clone()).map_err(Error::Signals)
    }
}

/// Unix: signal-hook's iterator tells SIGINT, SIGTERM and SIGHUP apart, which a repeated
/// SIGHUP needs.
#[cfg(unix)]
fn watch(handle: ServerHandle) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    // The iterator blocks in the signal thread until a signal arrives: no polling.
    std::thread::Builder::new()
        .name("tinyws-signals".into())
        .stack_size(crate::config::HELPER_STACK)
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                seen += 1;
                if seen == 1 && !handle.is_stopping() {
                    log::info!(
                        "{}signal {signal}: shutting down (send it again to exit at once)",
                        handle.prefix()
                    );
                    handle.shutdown();
                } else if signal == SIGHUP && seen > 1 {
                    // Closing a terminal can deliver SIGHUP twice (the kernel to the
                    // foreground job, the shell to all its jobs): not a request to hurry.
                    log::info!(
                        "{}signal {signal} again: still shutting down",
                        handle.prefix()
                    );
                } else {
                    log::warn!(
                        "{}signal {signal} while shutting down: exiting at once",
                        handle.prefix()
                    );
                    exit_at_once();
                }
            }
        })
        .map(drop)
}

/// Windows has no signals: Ctrl-C, Ctrl-Break and closing the console window arrive as
/// console control events, which the `ctrlc` crate (feature `termination`) delivers to
/// one thread of its own.
#[cfg(windows)]
fn watch(handle: ServerHandle) -> std::io::Result<()> {
    let mut seen = 0;
    ctrlc::set_handler(move || {
        seen += 1;
        if seen == 1 && !handle.is_stopping() {
            log::info!(
                "{}Ctrl-C: shutting down (press it again to exit at once)",
                handle.prefix()
            );
            handle.shutdown();
        } else {
            log::warn!(
                "{}Ctrl-C while shutting down: exiting at once",
                handle.prefix()
            );
            exit_at_once();
        }
    })
    .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Neither Unix nor Windows (e.g. WASI): no way to ask for a graceful shutdown; the
/// server runs until the process is killed.
#[cfg(not(any(unix, windows)))]
fn watch(_: ServerHandle) -> std::io::Result<()> {
    Ok(())
}

/// The second-signal rule: the shutdown takes too long for whoever sent it.
#[cfg(any(unix, windows))]
fn exit_at_once() -> ! {
    // Bounded: the terminal may be the paused one (spool.rs).
    crate::spool::Stderr::drain(LOG_DRAIN);
    std::process::exit(EXIT_AT_ONCE);
}
