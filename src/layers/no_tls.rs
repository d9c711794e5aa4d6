//! Stand-in for tls.rs in a build without the `tls` layer: the same names, never
//! reached (`bind` refuses `tls_cert` and `tls_key` in such a build: layers.rs), so the
//! transport is the plain socket.

use std::io::{self, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

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

/// Never made: no TLS session in this build.
#[derive(Debug)]
pub(crate) enum Tls {}

impl Tls {
    pub(crate) fn new(config: &Arc<ServerConfig>) -> io::Result<Tls> {
        match **config {}
    }

    pub(crate) fn heard(&self) -> bool {
        match *self {}
    }

    pub(crate) fn read(
        &self,
        _socket: &TcpStream,
        _out: &mut impl Write,
        _buf: &mut [u8],
        _deadline: Option<Instant>,
    ) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn write_all(&self, _out: &mut impl Write, _bytes: &[u8]) -> io::Result<()> {
        match *self {}
    }

    pub(crate) fn close_notify(&self, _out: &mut impl Write) {
        match *self {}
    }
}
