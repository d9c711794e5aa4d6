//! Startup errors. Each message is one line that says what to do about it.
//!
//! Errors that concern a single client never surface here: they are answered on that
//! client's socket (an HTTP status or a close code) and logged, and the server goes on.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// Why a server could not start.
#[derive(Debug)]
pub enum Error {
    /// Another program already listens on the port.
    AddrInUse(SocketAddr),
    /// Ports below 1024 need privileges.
    PermissionDenied(SocketAddr),
    /// The `--bind` address does not belong to this machine.
    AddrNotAvailable(SocketAddr),
    /// Any other failure to open the listening socket.
    Listen(SocketAddr, io::Error),
    /// A setting is out of range; the message names the flag.
    InvalidConfig(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AddrInUse(a) => write!(
                f,
                "port {} is in use on {}; stop the other server or pick another port with --port",
                a.port(),
                a.ip()
            ),
            Error::PermissionDenied(a) => write!(
                f,
                "not allowed to listen on port {}; ports below 1024 need root or CAP_NET_BIND_SERVICE, so pick one above 1023 with --port",
                a.port()
            ),
            Error::AddrNotAvailable(a) => write!(
                f,
                "{} is not an address of this machine; pick one of its addresses with --bind, or 0.0.0.0 for all",
                a.ip()
            ),
            Error::Listen(a, e) => write!(f, "cannot listen on {a}: {e}"),
            Error::InvalidConfig(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Listen(_, e) => Some(e),
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
