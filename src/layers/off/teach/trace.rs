//! Stand-in for trace.rs in a build without the `teach` layer: the same names, never
//! narrating (`bind` refuses `trace` and its kin in such a build: layers/mod.rs).

use std::net::SocketAddr;
use std::time::Duration;

use crate::client::outbox::Watch;
use crate::config::Config;

/// As trace.rs's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    Full,
}

impl Detail {
    pub(crate) fn of(_config: &Config) -> Detail {
        Detail::Full
    }
}

/// No connection is traced in this build.
pub(crate) fn follows(_config: &Config, _id: u64, _peer: SocketAddr) -> bool {
    false
}

pub(crate) fn emit(_id: u64, _block: &str) {}

/// Never made (answer.rs `observe` gives `None`): there is nowhere to narrate to.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    _none: (),
}

pub(crate) fn drain(_limit: Duration) -> bool {
    true
}

// Only layers/files.rs calls it: a build without that layer leaves it unused.
#[allow(dead_code)]
pub(crate) fn http_lines(_mark: &str, _title: &str, _bytes: &[u8]) -> String {
    String::new()
}

/// Never made, like [`Sink`].
#[derive(Debug)]
pub(crate) struct Frames {
    _sink: Sink,
}

impl Frames {
    pub(crate) fn new(sink: Sink, _mark: &'static str, _detail: Detail) -> Frames {
        Frames { _sink: sink }
    }

    pub(crate) fn feed(&mut self, _bytes: &[u8]) {}
}

impl Watch for Frames {
    fn wrote(&mut self, _bytes: &[u8], _upgraded: bool) {}
}
