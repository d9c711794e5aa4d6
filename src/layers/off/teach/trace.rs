//! Stand-in for trace.rs in a build without the `teach` layer: the same names, never
//! narrating (`bind` refuses `trace` and its kin in such a build: layers/mod.rs).

use std::net::SocketAddr;
use std::time::Duration;

use crate::client::outbox::Client;
use crate::config::Config;

/// No connection is traced in this build.
pub(crate) fn follows(_config: &Config, _id: u64, _peer: SocketAddr) -> bool {
    false
}

pub(crate) fn emit(_id: u64, _block: &str) {}

/// As trace.rs's: nobody observes a connection in this build.
#[derive(Default)]
pub(crate) struct Observers;

impl Observers {
    pub(crate) fn attach(&self, _client: &Client, _config: &Config) -> Option<Frames> {
        None
    }

    pub(crate) fn upgraded(&self) {}

    pub(crate) fn not_opened(&self) {}

    pub(crate) fn ended(&self, _end: &dyn std::fmt::Display) {}
}

pub(crate) fn drain(_limit: Duration) -> bool {
    true
}

// Only layers/files.rs calls it: a build without that layer leaves it unused.
#[allow(dead_code)]
pub(crate) fn http_lines(_mark: &str, _title: &str, _bytes: &[u8]) -> String {
    String::new()
}

/// Never made: there is nowhere to narrate to.
#[derive(Debug)]
pub(crate) enum Frames {}

impl Frames {
    pub(crate) fn feed(&mut self, _bytes: &[u8]) {
        match *self {}
    }
}
