//! Stand-in for answer.rs in a build without the `teach` layer: no request is the
//! layer's.

use crate::client::response::Plain;
use crate::config::Config;
use crate::layers::teach::inspect::{Inspector, Recorder};

pub(crate) fn plain(
    _req: &Plain<'_>,
    _inspector: &Inspector,
    _host_ok: impl Fn() -> bool,
    _open: crate::layers::teach::wire::Open,
) -> bool {
    false
}

pub(crate) fn recorder(
    _inspector: &std::sync::Arc<Inspector>,
    _config: &Config,
    _id: u64,
    _peer: std::net::SocketAddr,
    _head: &[u8],
) -> Option<Recorder> {
    None
}
