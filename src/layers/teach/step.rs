//! The seam between the HTTP checks (http/route.rs, http/handshake.rs) and their
//! narration (narrate.rs): which check refused a request, and how the routing step
//! ended. Compiled in every build (the stand-in mounts this same file), since a refusal
//! names its check whether or not the layer is there to narrate it.

use crate::client::response::Response;

/// The checks of a request, in the order they are made. A refusal names the one that
/// made it; every check before it passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Check {
    /// The head can be read, and its Host is valid (and allowed).
    Head,
    /// HTTP/1.1.
    Http,
    Method,
    /// The target is a path (or an absolute URL), one that may upgrade (`--path`).
    Path,
    /// `Upgrade: websocket`, with a target tungstenite can read.
    Upgrade,
    Connection,
    /// `Sec-WebSocket-Version`.
    Version,
    /// `Sec-WebSocket-Key`.
    Key,
    Origin,
}

/// How the routing step ended (http/route.rs `Verdict::end`), for narrate.rs.
// Read only by the layer: a build without it never reads the fields.
#[allow(dead_code)]
#[derive(Debug)]
pub(crate) enum End<'a> {
    /// Every check passed: the subprotocol chosen, and whether tungstenite is handed a
    /// rewritten head.
    Upgrade {
        protocol: Option<&'a str>,
        rewritten: bool,
    },
    Page {
        head_only: bool,
        path: &'a str,
    },
    File {
        head_only: bool,
        path: &'a str,
    },
    Refused {
        by: Check,
        response: &'a Response,
    },
}
