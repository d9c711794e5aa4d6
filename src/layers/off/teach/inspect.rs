//! Stand-in for inspect.rs in a build without the `teach` layer: no inspector, no
//! records; its paths are like any other (`bind` refuses `inspect` in such a build).

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use crate::client::response::Response;

/// As inspect.rs's.
pub(crate) const VIEW_PATH: &str = "/inspect";

/// Keeps no records in this build.
pub(crate) struct Inspector {
    _none: (),
}

impl Inspector {
    pub(crate) fn new(_projector: bool) -> Inspector {
        Inspector { _none: () }
    }

    pub(crate) fn recorder(
        self: &Arc<Self>,
        _id: u64,
        _peer: SocketAddr,
        _head: &[u8],
    ) -> Option<Recorder> {
        None
    }

    pub(crate) fn stop(&self) {}

    pub(crate) fn poll(
        &self,
        _target: &str,
        _head_only: bool,
        _peer: SocketAddr,
    ) -> (Response, Option<PollSlot>) {
        (projector_off(), None)
    }
}

/// Never made: no records in this build.
#[derive(Debug, Clone)]
pub(crate) enum Recorder {}

impl Recorder {
    pub(crate) fn show(&self) {
        match *self {}
    }

    pub(crate) fn upgraded(&self) {
        match *self {}
    }

    pub(crate) fn end(&self, _line: String) {
        match *self {}
    }

    pub(crate) fn discard(&self) {
        match *self {}
    }
}

/// Never made.
pub(crate) enum PollSlot {}

impl PollSlot {
    pub(crate) fn writing(&self, _socket: &TcpStream) {
        match *self {}
    }
}

/// As inspect.rs's; never made here.
#[allow(dead_code)]
pub(crate) enum Route<'h> {
    View { head_only: bool },
    Poll { target: &'h str, head_only: bool },
}

/// No route is the inspector's in this build.
pub(crate) fn route(_head: &[u8]) -> Option<Route<'_>> {
    None
}

pub(crate) fn projector_off() -> Response {
    Response::new(404, "This tinyws was built without the inspector.")
}
