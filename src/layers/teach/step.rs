//! The steps `--trace` narrates of the HTTP checks, named by http/route.rs and
//! http/handshake.rs. Compiled in every build (the stand-in mounts this same file), since
//! the checks name their steps whether or not the layer is there to write them.

use crate::client::response::Response;

/// A check of the request that passed (`ok`), a remark (`--`), the `Sec-WebSocket-Accept`
/// computation (`==`), or how a plain request ends: the lines of http/route.rs's and
/// http/handshake.rs's narration (`check_narrated`), each written by `Display` in
/// trace.rs (in layers/off/teach/trace.rs: as nothing).
// Read only by that `Display`: a build without the layer never reads the fields.
#[allow(dead_code)]
#[derive(Debug)]
pub(crate) enum Step<'a> {
    Version,
    Method(&'a str),
    /// A plain request (its method) with `--static`.
    Static(&'a str),
    Path {
        path: &'a str,
        only: Option<&'a str>,
        rooms: bool,
    },
    /// The values of `Upgrade`, of `Connection`, joined.
    Upgrade(String),
    Connection(String),
    Host {
        host: &'a str,
        listed: bool,
    },
    WsVersion,
    Key(&'a str),
    NoOrigin,
    Origin {
        origin: &'a str,
        host: &'a str,
        listed: bool,
    },
    /// The offered subprotocols (escaped), the one chosen, and the server's list.
    Protocol {
        list: &'a str,
        chosen: &'a str,
        ours: &'a [String],
    },
    /// None of those offered is in the server's list.
    NoProtocol {
        list: &'a str,
        ours: &'a [String],
    },
    Rewritten,
    /// The client's key.
    Accept(&'a str),
    Page {
        head_only: bool,
        path: &'a str,
    },
    File {
        head_only: bool,
        path: &'a str,
    },
    Refused(&'a Response),
}
