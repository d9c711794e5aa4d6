//! Startup errors. Each message is one line that says what to do about it, and names the
//! [`Config`](crate::Config) field to change in backticks (the `tinyws` binary adds the
//! command-line flag of that field).
//!
//! Errors that concern a single client never surface here: they are answered on that
//! client's socket (an HTTP status or a close code) and logged, and the server goes on.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// Why a server could not start.
///
/// `#[non_exhaustive]`: a minor release may add variants, so a `match` needs a `_` arm.
/// `Debug` prints the same line as `Display` (what `fn main() -> Result<(), tinyws::Error>`
/// shows when it fails), not the variant's structure.
#[non_exhaustive]
pub enum Error {
    /// Another program already listens on the port.
    AddrInUse(SocketAddr),
    /// Ports below 1024 need privileges.
    PermissionDenied(SocketAddr),
    /// The [`bind`](crate::Config#structfield.bind) address does not belong to this machine.
    AddrNotAvailable(SocketAddr),
    /// Any other failure to open the listening socket.
    Listen(SocketAddr, io::Error),
    /// A setting is out of range; the message names the field, in backticks.
    InvalidConfig(String),
    /// The operating system refused to start the server's thread (out of memory or over
    /// the thread limit).
    Spawn(io::Error),
    /// [`ServerHandle::shutdown_on_signals`](crate::ServerHandle::shutdown_on_signals)
    /// could not install its handler or start its thread.
    Signals(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AddrInUse(a) => write!(
                f,
                "port {} is in use on {}; stop the other server or pick another `port`",
                a.port(),
                a.ip()
            ),
            Error::PermissionDenied(a) => write!(
                f,
                "not allowed to listen on port {}; ports below 1024 need root or CAP_NET_BIND_SERVICE, so pick a `port` above 1023",
                a.port()
            ),
            Error::AddrNotAvailable(a) => write!(
                f,
                "{} is not an address of this machine; set `bind` to one of its addresses, or 0.0.0.0 for all",
                a.ip()
            ),
            Error::Listen(a, e) => write!(f, "cannot listen on {a}: {e}"),
            Error::InvalidConfig(msg) => write!(f, "{msg}"),
            Error::Spawn(e) => write!(
                f,
                "cannot start the server thread: {e}; lower `max_connections` or `stack_size`, or raise the process's thread limit"
            ),
            Error::Signals(e) => write!(
                f,
                "cannot watch for Ctrl-C and SIGTERM: {e}; the server still runs, but only ServerHandle::shutdown stops it gracefully"
            ),
        }
    }
}

/// The same one line as `Display`: `main() -> Result<(), tinyws::Error>` prints an error's
/// `Debug`, and a user should read "port 8080 is in use …", not `AddrInUse(0.0.0.0:8080)`.
/// Match on the variant to tell errors apart in code.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Listen(_, e) | Error::Spawn(e) | Error::Signals(e) => Some(e),
            _ => None,
        }
    }
}

impl Error {
    pub(crate) fn from_bind(addr: SocketAddr, e: io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::AddrInUse => Error::AddrInUse(addr),
            io::ErrorKind::PermissionDenied => Error::PermissionDenied(addr),
            io::ErrorKind::AddrNotAvailable => Error::AddrNotAvailable(addr),
            _ => Error::Listen(addr, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_config_field_and_debug_reads_like_display() {
        let addr: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let e = Error::from_bind(addr, io::ErrorKind::AddrInUse.into());
        assert_eq!(
            e.to_string(),
            "port 8080 is in use on 0.0.0.0; stop the other server or pick another `port`"
        );
        assert_eq!(format!("{e:?}"), e.to_string());
        let e = Error::from_bind(addr, io::ErrorKind::AddrNotAvailable.into());
        assert!(e.to_string().contains("set `bind` to"), "{e}");
        let e = Error::from_bind(addr, io::ErrorKind::PermissionDenied.into());
        assert!(e.to_string().contains("pick a `port` above 1023"), "{e}");
        let e = Error::Spawn(io::Error::other("no threads left"));
        assert!(
            e.to_string().starts_with(
                "cannot start the server thread: no threads left; lower `max_connections`"
            ),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());
        for e in [
            Error::from_bind(addr, io::ErrorKind::AddrInUse.into()),
            Error::from_bind(addr, io::ErrorKind::PermissionDenied.into()),
            Error::from_bind(addr, io::ErrorKind::AddrNotAvailable.into()),
            Error::Spawn(io::Error::other("x")),
        ] {
            let line = e.to_string();
            assert!(!line.contains("--") && !line.contains('\n'), "{line}");
        }
    }
}
