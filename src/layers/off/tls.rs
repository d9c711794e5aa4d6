//! Stand-in for tls.rs in a build without the `tls` layer: the same names, never
//! reached (`bind` refuses `tls_cert` and `tls_key` in such a build: layers/mod.rs), so the
//! transport is the plain socket.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::client::transport::Encryption;
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
pub(crate) fn answer_plain_text(_socket: &std::net::TcpStream) {}

/// Never called: no certificate, so no session, in this build.
pub(crate) fn session(config: &Arc<ServerConfig>) -> io::Result<Box<dyn Encryption>> {
    match **config {}
}
