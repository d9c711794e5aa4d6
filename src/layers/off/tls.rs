//! Stand-in for tls.rs in a build without the `tls` layer: the same names, and but for
//! [`transport`] (the plain socket) never reached (`bind` refuses `tls_cert` and
//! `tls_key` in such a build: layers/mod.rs).

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;

use crate::client::outbox::Client;
use crate::client::transport::Transport;
use crate::error::Error;
use crate::util::tag::Tag;

/// Never made: no certificate in this build.
#[derive(Debug)]
pub(crate) enum ServerConfig {}

pub(crate) fn load(_cert: &Path, _key: &Path) -> Result<Arc<ServerConfig>, Error> {
    Err(Error::InvalidConfig(
        "this tinyws was built without TLS".into(),
    ))
}

/// No failure is TLS's in this build.
pub(crate) fn read_failed(_tag: Tag<'_>, _client: &Client, _e: &io::Error) -> bool {
    false
}

/// The plain socket: no certificate, so no session, in this build.
pub(crate) fn transport(
    _config: Option<&Arc<ServerConfig>>,
    socket: TcpStream,
    _peer: SocketAddr,
) -> Option<Transport> {
    Some(Transport::new(socket))
}
