//! Stand-in for tls.rs in a build without the `tls` layer: the same names, and but for
//! [`transport`] (the plain socket) never reached (`bind` refuses `tls_cert` and
//! `tls_key` in such a build: layers/mod.rs).

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;

use crate::client::transport::Transport;
use crate::error::Error;

/// Never made: no certificate in this build.
#[derive(Debug)]
pub(crate) enum ServerConfig {}

pub(crate) fn load(_cert: &Path, _key: &Path) -> Result<Arc<ServerConfig>, Error> {
    Err(Error::InvalidConfig(
        "this tinyws was built without TLS".into(),
    ))
}

/// Plain text on a TLS port: never, without TLS.
pub(crate) fn is_not_tls(_e: &io::Error) -> bool {
    false
}

/// Never called: no plain text is ever on a TLS port in this build.
pub(crate) fn answer_plain_text(_socket: &TcpStream) {}

/// The plain socket: no certificate, so no session, in this build.
pub(crate) fn transport(
    _config: Option<&Arc<ServerConfig>>,
    socket: TcpStream,
    _peer: SocketAddr,
) -> Option<Transport> {
    Some(Transport::new(socket))
}
